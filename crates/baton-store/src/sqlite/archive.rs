//! Output archived on SQLite: slices in `event_archives`, the archiver's place in
//! `retention`, sessions waiting in `output_waiting` (see [`crate::archive`]).

use baton_core::ids::SessionId;
use baton_core::time::Timestamp;
use rusqlite::{OptionalExtension, params};

use super::db::{Db, db_err};
use crate::StoreError;
use crate::archive::{self, ARCHIVED_KINDS, SLICE_EVENTS, Scope, SliceRef, Slices};
use crate::store::ArchiveTotals;

/// The archived kinds as an SQL list.
fn kinds_sql() -> String {
    ARCHIVED_KINDS.iter().map(|k| format!("'{}'", k.as_str())).collect::<Vec<_>>().join(",")
}

/// How many pages one call gives back (4 MiB of 4 KiB pages).
const RECLAIM_PAGES: u64 = 1_024;

impl Slices for Db<'_> {
    fn slice_refs(&self, scope: &Scope<'_>, after: i64) -> Result<Vec<SliceRef>, StoreError> {
        let (sql, key) = scope.refs_sql();
        let mut st = self.conn.prepare_cached(sql).map_err(db_err)?;
        st.query_map(params![key, after], |r| Ok(SliceRef { id: r.get(0)?, first: r.get(1)? }))
            .and_then(|rows| rows.collect())
            .map_err(db_err)
    }

    fn slice_data(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        self.conn
            .prepare_cached("SELECT data FROM event_archives WHERE id = ?1")
            .and_then(|mut st| st.query_row([id], |r| r.get(0)))
            .map_err(db_err)
    }
}

impl Db<'_> {
    pub(super) fn output_sessions_now(
        &self,
        after: i64,
        before: Timestamp,
        scan: u32,
    ) -> Result<(Vec<SessionId>, i64), StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT id, ts, session_id, kind FROM events WHERE id > ?1 ORDER BY id LIMIT ?2")
            .map_err(db_err)?;
        let rows =
            st.query_map(params![after, scan], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))).map_err(db_err)?;
        archive::printed(rows, after, before.as_millis()).map_err(db_err)
    }

    pub(super) fn retention_scanned_now(&self) -> Result<i64, StoreError> {
        self.conn.query_row("SELECT scanned FROM retention WHERE id = 1", [], |r| r.get(0)).map_err(db_err)
    }

    pub(super) fn output_waiting_now(
        &self,
        after: Option<&SessionId>,
        limit: u32,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT session_id FROM output_waiting WHERE session_id > ?1 ORDER BY session_id LIMIT ?2")
            .map_err(db_err)?;
        let ids: Vec<String> = st
            .query_map(params![after.map_or("", |s| s.as_str()), limit], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(db_err)?;
        Ok(ids.iter().filter_map(|s| SessionId::parse(s).ok()).collect())
    }

    pub(super) fn archive_totals_now(&self) -> Result<ArchiveTotals, StoreError> {
        self.conn
            .query_row(
                "SELECT COUNT(*), COALESCE(SUM(count), 0), COALESCE(SUM(bytes), 0), COALESCE(SUM(length(data)), 0)
                 FROM event_archives",
                [],
                |r| {
                    Ok(ArchiveTotals {
                        slices: r.get::<_, i64>(0)? as u64,
                        events: r.get::<_, i64>(1)? as u64,
                        bytes: r.get::<_, i64>(2)? as u64,
                        stored: r.get::<_, i64>(3)? as u64,
                    })
                },
            )
            .map_err(db_err)
    }

    pub(super) fn archive_output_now(&mut self, session: &SessionId) -> Result<u32, StoreError> {
        let kinds = kinds_sql();
        let events = self.events_where(
            &format!("session_id = ?1 AND kind IN ({kinds}) ORDER BY seq LIMIT ?2"),
            vec![session.to_string().into(), i64::from(SLICE_EVENTS).into()],
        )?;
        if events.is_empty() {
            return Ok(0);
        }
        let slice = archive::pack(&events)?;
        self.exec(
            archive::INSERT_SLICE,
            params![
                session.as_str(),
                slice.task,
                slice.ids.0,
                slice.ids.1,
                slice.seqs.0,
                slice.seqs.1,
                slice.count,
                slice.bytes,
                slice.data
            ],
        )?;
        self.exec(
            &format!("DELETE FROM events WHERE session_id = ?1 AND kind IN ({kinds}) AND seq BETWEEN ?2 AND ?3"),
            params![session.as_str(), slice.seqs.0, slice.seqs.1],
        )?;
        Ok(events.len() as u32)
    }

    pub(super) fn wait_output_now(&mut self, session: &SessionId, waiting: bool) -> Result<(), StoreError> {
        self.exec(archive::waiting_sql(waiting), [session.as_str()]).map(|_| ())
    }

    pub(super) fn reclaim_space_now(&mut self) -> Result<u64, StoreError> {
        let free: i64 = self.conn.query_row("PRAGMA freelist_count", [], |r| r.get(0)).map_err(db_err)?;
        if free == 0 {
            return Ok(0);
        }
        let pages = (free as u64).min(RECLAIM_PAGES);
        self.conn
            .query_row(&format!("PRAGMA incremental_vacuum({pages})"), [], |_| Ok(()))
            .optional()
            .map_err(db_err)?;
        Ok(pages)
    }
}
