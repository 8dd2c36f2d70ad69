//! Output archived on PostgreSQL: slices in `event_archives`, the archiver's
//! place in `retention`, sessions waiting in `output_waiting` (see
//! [`crate::archive`]). Deleted events' space is reused after autovacuum; the
//! deletes come a slice at a time, never as one long transaction.

use baton_core::ids::SessionId;
use baton_core::time::Timestamp;

use super::db::PgDb;
use crate::StoreError;
use crate::archive::{self, ARCHIVED_KINDS, SLICE_EVENTS, Scope, SliceRef, Slices};
use crate::store::ArchiveTotals;

/// The archived kinds' names.
fn kind_names() -> Vec<&'static str> {
    ARCHIVED_KINDS.iter().map(|k| k.as_str()).collect()
}

impl Slices for PgDb<'_> {
    fn slice_refs(&self, scope: &Scope<'_>, after: i64) -> Result<Vec<SliceRef>, StoreError> {
        let (sql, key) = scope.refs_sql();
        Ok(self.rows(sql, &[&key, &after])?.iter().map(|r| SliceRef { id: r.get(0), first: r.get(1) }).collect())
    }

    fn slice_data(&self, id: i64) -> Result<Vec<u8>, StoreError> {
        Ok(self.row("SELECT data FROM event_archives WHERE id = $1", &[&id])?.map_or_else(Vec::new, |r| r.get(0)))
    }
}

impl PgDb<'_> {
    pub(super) fn output_sessions_now(
        &self,
        after: i64,
        before: Timestamp,
        scan: u32,
    ) -> Result<(Vec<SessionId>, i64), StoreError> {
        let rows = self.rows(
            "SELECT id, ts, session_id, kind FROM events WHERE id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64::from(scan)],
        )?;
        let read = rows.iter().map(|r| Ok::<_, StoreError>((r.get(0), r.get(1), r.get(2), r.get(3))));
        archive::printed(read, after, before.as_millis())
    }

    pub(super) fn retention_scanned_now(&self) -> Result<i64, StoreError> {
        Ok(self.row("SELECT scanned FROM retention WHERE id = 1", &[])?.map_or(0, |r| r.get(0)))
    }

    pub(super) fn output_waiting_now(
        &self,
        after: Option<&SessionId>,
        limit: u32,
    ) -> Result<Vec<SessionId>, StoreError> {
        let rows = self.rows(
            "SELECT session_id FROM output_waiting WHERE session_id > $1 ORDER BY session_id LIMIT $2",
            &[&after.map_or("", |s| s.as_str()), &i64::from(limit)],
        )?;
        Ok(rows.iter().filter_map(|r| SessionId::parse(r.get::<_, &str>(0)).ok()).collect())
    }

    pub(super) fn archive_totals_now(&self) -> Result<ArchiveTotals, StoreError> {
        let row = self.row(
            "SELECT COUNT(*), COALESCE(SUM(count), 0)::BIGINT, COALESCE(SUM(bytes), 0)::BIGINT,
                    COALESCE(SUM(length(data)), 0)::BIGINT
             FROM event_archives",
            &[],
        )?;
        Ok(row.map_or_else(ArchiveTotals::default, |r| ArchiveTotals {
            slices: r.get::<_, i64>(0) as u64,
            events: r.get::<_, i64>(1) as u64,
            bytes: r.get::<_, i64>(2) as u64,
            stored: r.get::<_, i64>(3) as u64,
        }))
    }

    pub(super) fn archive_output_now(&mut self, session: &SessionId) -> Result<u32, StoreError> {
        let kinds = kind_names();
        let events = self.events_where(
            "session_id = $1 AND kind = ANY($2) ORDER BY seq LIMIT $3",
            &[&session.as_str(), &kinds, &i64::from(SLICE_EVENTS)],
        )?;
        if events.is_empty() {
            return Ok(0);
        }
        let slice = archive::pack(&events)?;
        self.exec(
            archive::INSERT_SLICE,
            &[
                &session.as_str(),
                &slice.task,
                &slice.ids.0,
                &slice.ids.1,
                &slice.seqs.0,
                &slice.seqs.1,
                &slice.count,
                &slice.bytes,
                &slice.data,
            ],
        )?;
        self.exec(
            "DELETE FROM events WHERE session_id = $1 AND kind = ANY($2) AND seq BETWEEN $3 AND $4",
            &[&session.as_str(), &kinds, &slice.seqs.0, &slice.seqs.1],
        )?;
        Ok(events.len() as u32)
    }

    pub(super) fn wait_output_now(&mut self, session: &SessionId, waiting: bool) -> Result<(), StoreError> {
        self.exec(archive::waiting_sql(waiting), &[&session.as_str()]).map(|_| ())
    }
}
