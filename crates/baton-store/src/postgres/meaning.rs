//! The meaning index on PostgreSQL: documents' chunks with their vectors
//! (little-endian `f32`s in `BYTEA`), the embedding queue, and the model the
//! vectors are of. Vectors are ranked in the coordinator (an exact scan), so any
//! PostgreSQL serves them: no extension is needed.

use baton_core::doc::Document;
use baton_core::time::Timestamp;

use super::db::PgDb;
use crate::StoreError;
use crate::rows::{vector_bytes, vector_of};
use crate::store::{Chunk, ChunkVector, DocFilter, EmbedJob, EmbedStatus};

/// The version of a `documents` row `d`.
const DOC_VERSION: &str = "((d.data::jsonb)->>'version')::BIGINT";

/// A job from a row of `name, version, attempts, error, failed`.
fn job_of(r: &postgres::Row) -> EmbedJob {
    EmbedJob {
        name: r.get(0),
        version: r.get::<_, i64>(1) as u32,
        attempts: r.get::<_, i64>(2) as u32,
        error: r.get(3),
        failed: r.get(4),
    }
}

impl PgDb<'_> {
    pub(super) fn embed_status_now(&self) -> Result<EmbedStatus, StoreError> {
        let row = self.row(
            "SELECT s.model, s.dims, s.generation,
                    (SELECT COUNT(*) FROM embed_jobs WHERE NOT failed),
                    (SELECT COUNT(*) FROM embed_jobs WHERE failed)
             FROM embed_state s WHERE s.id = 1",
            &[],
        )?;
        Ok(row.map_or_else(EmbedStatus::default, |r| EmbedStatus {
            model: r.get(0),
            dims: r.get::<_, Option<i64>>(1).map(|d| d as u32),
            generation: r.get(2),
            pending: r.get::<_, i64>(3) as u64,
            failed: r.get::<_, i64>(4) as u64,
        }))
    }

    pub(super) fn embed_failures_now(&self, limit: u32) -> Result<Vec<EmbedJob>, StoreError> {
        let rows = self.rows(
            "SELECT name, version, attempts, error, failed FROM embed_jobs WHERE error IS NOT NULL
             ORDER BY failed DESC, name LIMIT $1",
            &[&i64::from(limit)],
        )?;
        Ok(rows.iter().map(job_of).collect())
    }

    pub(super) fn chunk_vectors_of(&self, model: &str) -> Result<Vec<ChunkVector>, StoreError> {
        let rows = self.rows("SELECT name, seq, vector FROM doc_chunks WHERE model = $1", &[&model])?;
        Ok(rows
            .iter()
            .map(|r| ChunkVector { name: r.get(0), seq: r.get::<_, i64>(1) as u32, vector: vector_of(r.get(2)) })
            .collect())
    }

    pub(super) fn chunk_text_of(&self, name: &str, seq: u32) -> Result<Option<String>, StoreError> {
        Ok(self
            .row("SELECT text FROM doc_chunks WHERE name = $1 AND seq = $2", &[&name, &i64::from(seq)])?
            .map(|r| r.get(0)))
    }

    pub(super) fn document_names_of(&self, filter: &DocFilter) -> Result<Vec<String>, StoreError> {
        let tags: Vec<&str> = filter.tags.iter().map(String::as_str).collect();
        let project = filter.project.as_ref().map(|p| p.as_str());
        let rows = self.rows(
            "SELECT d.name FROM documents d
             WHERE (cardinality($1::text[]) = 0 OR (d.data::jsonb)->'tags' @> to_jsonb($1::text[]))
             AND ($2::text IS NULL OR d.project_id = $2)
             AND ($3::text IS NULL OR starts_with(d.name, $3))
             AND ($4::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements((d.data::jsonb)->'relations') r WHERE r->>'target' = $4))",
            &[&tags, &project, &filter.prefix.as_deref(), &filter.related_to.as_deref()],
        )?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Queues a document's new version (text only; a binary one leaves the index).
    pub(super) fn queue_document(&self, doc: &Document) -> Result<(), StoreError> {
        if doc.content.is_none() {
            return self.unindex(&doc.name);
        }
        self.exec(
            "INSERT INTO embed_jobs (name, version) VALUES ($1, $2)
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, attempts = 0, next_at = 0,
                 error = NULL, failed = FALSE",
            &[&doc.name, &i64::from(doc.version)],
        )?;
        Ok(())
    }

    /// Removes a document's chunks and job.
    pub(super) fn unindex(&self, name: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM embed_jobs WHERE name = $1", &[&name])?;
        if self.exec("DELETE FROM doc_chunks WHERE name = $1", &[&name])? > 0 {
            self.exec("UPDATE embed_state SET generation = generation + 1 WHERE id = 1", &[])?;
        }
        Ok(())
    }

    pub(super) fn claim_embeddings_now(
        &self,
        now: Timestamp,
        until: Timestamp,
        limit: u32,
    ) -> Result<Vec<EmbedJob>, StoreError> {
        let rows = self.rows(
            "UPDATE embed_jobs SET next_at = $2 WHERE name IN
                 (SELECT name FROM embed_jobs WHERE NOT failed AND next_at <= $1 ORDER BY next_at, name LIMIT $3)
             RETURNING name, version, attempts, error, failed",
            &[&now.as_millis(), &until.as_millis(), &i64::from(limit)],
        )?;
        Ok(rows.iter().map(job_of).collect())
    }

    pub(super) fn put_chunks_now(
        &self,
        name: &str,
        version: u32,
        model: &str,
        chunks: &[Chunk],
    ) -> Result<bool, StoreError> {
        let version = i64::from(version);
        let sql = format!("SELECT 1 FROM documents d WHERE d.name = $1 AND {DOC_VERSION} = $2");
        if self.row(&sql, &[&name, &version])?.is_none() {
            return Ok(false);
        }
        self.exec("DELETE FROM doc_chunks WHERE name = $1", &[&name])?;
        for c in chunks {
            self.exec(
                "INSERT INTO doc_chunks (name, seq, version, model, text, vector) VALUES ($1, $2, $3, $4, $5, $6)",
                &[&name, &i64::from(c.seq), &version, &model, &c.text, &vector_bytes(&c.vector)],
            )?;
        }
        let dims = chunks.first().map(|c| c.vector.len() as i64);
        self.exec(
            "UPDATE embed_state SET generation = generation + 1, dims = COALESCE(dims, $1) WHERE id = 1",
            &[&dims],
        )?;
        self.exec("DELETE FROM embed_jobs WHERE name = $1 AND version = $2", &[&name, &version])?;
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
            "UPDATE embed_jobs SET attempts = attempts + 1, error = $3, next_at = $4, failed = $5
             WHERE name = $1 AND version = $2",
            &[&name, &i64::from(version), &error, &next_at.as_millis(), &failed],
        )?;
        Ok(())
    }

    pub(super) fn set_embed_model_now(&self, model: &str, dims: Option<u32>) -> Result<bool, StoreError> {
        let status = self.embed_status_now()?;
        if status.model.as_deref() == Some(model) && (dims.is_none() || dims == status.dims) {
            return Ok(false);
        }
        self.exec("DELETE FROM doc_chunks", &[])?;
        self.exec(
            "UPDATE embed_state SET model = $1, dims = $2, generation = generation + 1 WHERE id = 1",
            &[&model, &dims.map(i64::from)],
        )?;
        self.queue_embeddings_now(true)?;
        Ok(true)
    }

    pub(super) fn queue_embeddings_now(&self, all: bool) -> Result<u64, StoreError> {
        let missing = if all {
            String::new()
        } else {
            format!(
                "AND NOT EXISTS (SELECT 1 FROM embed_jobs j WHERE j.name = d.name)
                 AND NOT EXISTS (SELECT 1 FROM doc_chunks c WHERE c.name = d.name AND c.version = {DOC_VERSION})"
            )
        };
        let sql = format!(
            "INSERT INTO embed_jobs (name, version)
             SELECT d.name, {DOC_VERSION} FROM documents d
             WHERE (d.data::jsonb)->>'content' IS NOT NULL {missing}
             ON CONFLICT (name) DO UPDATE SET version = excluded.version, attempts = 0, next_at = 0,
                 error = NULL, failed = FALSE"
        );
        self.exec(&sql, &[])
    }
}
