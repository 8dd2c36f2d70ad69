//! The meaning index on SQLite: documents' chunks with their vectors (little-endian
//! `f32` blobs), the embedding queue, and the model the vectors are of.

use baton_core::doc::Document;
use baton_core::time::Timestamp;
use rusqlite::types::Value as SqlValue;
use rusqlite::{OptionalExtension, params, params_from_iter};

use super::db::{Db, db_err, doc_conds};
use crate::StoreError;
use crate::rows::{vector_bytes, vector_of};
use crate::store::{Chunk, ChunkVector, DocFilter, EmbedJob, EmbedStatus};

impl Db<'_> {
    pub(super) fn embed_status_now(&self) -> Result<EmbedStatus, StoreError> {
        let (model, dims, generation) = self
            .conn
            .prepare_cached("SELECT model, dims, generation FROM embed_state WHERE id = 1")
            .and_then(|mut st| {
                st.query_row([], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<u32>>(1)?, r.get(2)?)))
            })
            .map_err(db_err)?;
        let (pending, failed): (i64, i64) = self
            .conn
            .prepare_cached("SELECT COUNT(*) - COALESCE(SUM(failed), 0), COALESCE(SUM(failed), 0) FROM embed_jobs")
            .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(db_err)?;
        Ok(EmbedStatus { model, dims, generation, pending: pending as u64, failed: failed as u64 })
    }

    pub(super) fn embed_failures_now(&self, limit: u32) -> Result<Vec<EmbedJob>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT name, version, attempts, error, failed FROM embed_jobs WHERE error IS NOT NULL
                 ORDER BY failed DESC, name LIMIT ?1",
            )
            .map_err(db_err)?;
        st.query_map([limit], |r| {
            Ok(EmbedJob {
                name: r.get(0)?,
                version: r.get(1)?,
                attempts: r.get(2)?,
                error: r.get(3)?,
                failed: r.get::<_, i64>(4)? != 0,
            })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)
    }

    pub(super) fn chunk_vectors_of(&self, model: &str) -> Result<Vec<ChunkVector>, StoreError> {
        let mut st =
            self.conn.prepare_cached("SELECT name, seq, vector FROM doc_chunks WHERE model = ?1").map_err(db_err)?;
        st.query_map([model], |r| {
            Ok(ChunkVector { name: r.get(0)?, seq: r.get(1)?, vector: vector_of(&r.get::<_, Vec<u8>>(2)?) })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)
    }

    pub(super) fn chunk_text_of(&self, name: &str, seq: u32) -> Result<Option<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT text FROM doc_chunks WHERE name = ?1 AND seq = ?2")
            .and_then(|mut st| st.query_row(params![name, seq], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    pub(super) fn document_names_of(&self, filter: &DocFilter) -> Result<Vec<String>, StoreError> {
        let mut args: Vec<SqlValue> = Vec::new();
        let conds = doc_conds(filter, &mut args);
        let filter_sql = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let mut st =
            self.conn.prepare_cached(&format!("SELECT d.name FROM documents d {filter_sql}")).map_err(db_err)?;
        st.query_map(params_from_iter(args), |r| r.get(0)).and_then(|rows| rows.collect()).map_err(db_err)
    }

    /// Queues a document's new version (text only; a binary one leaves the index).
    pub(super) fn queue_document(&self, doc: &Document) -> Result<(), StoreError> {
        if doc.content.is_some() {
            self.exec(
                "INSERT INTO embed_jobs (name, version) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET version = excluded.version, attempts = 0, next_at = 0,
                     error = NULL, failed = 0",
                params![doc.name, doc.version],
            )?;
            Ok(())
        } else {
            self.unindex(&doc.name)
        }
    }

    /// Removes a document's chunks and job.
    pub(super) fn unindex(&self, name: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM embed_jobs WHERE name = ?1", [name])?;
        if self.exec("DELETE FROM doc_chunks WHERE name = ?1", [name])? > 0 {
            self.exec("UPDATE embed_state SET generation = generation + 1 WHERE id = 1", [])?;
        }
        Ok(())
    }

    pub(super) fn claim_embeddings_now(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<EmbedJob>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "UPDATE embed_jobs SET next_at = ?2 WHERE name IN
                     (SELECT name FROM embed_jobs WHERE failed = 0 AND next_at <= ?1 ORDER BY next_at, name LIMIT ?3)
                 RETURNING name, version, attempts, error",
            )
            .map_err(db_err)?;
        st.query_map(params![now.as_millis(), until.as_millis(), limit], |r| {
            Ok(EmbedJob { name: r.get(0)?, version: r.get(1)?, attempts: r.get(2)?, error: r.get(3)?, failed: false })
        })
        .and_then(|rows| rows.collect())
        .map_err(db_err)
    }

    pub(super) fn put_chunks_now(
        &self,
        name: &str,
        version: u32,
        model: &str,
        chunks: &[Chunk],
    ) -> Result<bool, StoreError> {
        let current: Option<u32> = self
            .conn
            .prepare_cached("SELECT json_extract(data, '$.version') FROM documents WHERE name = ?1")
            .and_then(|mut st| st.query_row([name], |r| r.get(0)).optional())
            .map_err(db_err)?;
        if current != Some(version) {
            return Ok(false);
        }
        self.exec("DELETE FROM doc_chunks WHERE name = ?1", [name])?;
        for c in chunks {
            self.exec(
                "INSERT INTO doc_chunks (name, seq, version, model, text, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![name, c.seq, version, model, c.text, vector_bytes(&c.vector)],
            )?;
        }
        let dims = chunks.first().map(|c| c.vector.len() as u32);
        self.exec(
            "UPDATE embed_state SET generation = generation + 1, dims = COALESCE(dims, ?1) WHERE id = 1",
            [dims],
        )?;
        self.exec("DELETE FROM embed_jobs WHERE name = ?1 AND version = ?2", params![name, version])?;
        Ok(true)
    }

    pub(super) fn embedding_failed_now(
        &self,
        name: &str,
        version: u32,
        error: &str,
        next_at: Timestamp,
        failed: bool,
    ) -> Result<(), StoreError> {
        self.exec(
            "UPDATE embed_jobs SET attempts = attempts + 1, error = ?3, next_at = ?4, failed = ?5
             WHERE name = ?1 AND version = ?2",
            params![name, version, error, next_at.as_millis(), failed],
        )?;
        Ok(())
    }

    pub(super) fn set_embed_model_now(&self, model: &str, dims: Option<u32>) -> Result<bool, StoreError> {
        let status = self.embed_status_now()?;
        let same_dims = dims.is_none() || dims == status.dims;
        if status.model.as_deref() == Some(model) && same_dims {
            return Ok(false);
        }
        self.exec("DELETE FROM doc_chunks", [])?;
        self.exec(
            "UPDATE embed_state SET model = ?1, dims = ?2, generation = generation + 1 WHERE id = 1",
            params![model, dims],
        )?;
        self.queue_embeddings_now(true)?;
        Ok(true)
    }

    pub(super) fn queue_embeddings_now(&self, all: bool) -> Result<u64, StoreError> {
        let missing = if all {
            ""
        } else {
            "AND NOT EXISTS (SELECT 1 FROM embed_jobs j WHERE j.name = d.name)
             AND NOT EXISTS (SELECT 1 FROM doc_chunks c WHERE c.name = d.name
                 AND c.version = json_extract(d.data, '$.version'))"
        };
        let sql = format!(
            "INSERT INTO embed_jobs (name, version)
             SELECT d.name, json_extract(d.data, '$.version') FROM documents d
             WHERE json_extract(d.data, '$.content') IS NOT NULL {missing}
             ON CONFLICT(name) DO UPDATE SET version = excluded.version, attempts = 0, next_at = 0,
                 error = NULL, failed = 0"
        );
        Ok(self.exec(&sql, [])? as u64)
    }
}
