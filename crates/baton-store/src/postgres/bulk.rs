//! Bulk writes on PostgreSQL (`StoreTx::begin_bulk`): a plan's new tasks, their
//! prerequisites and the events announcing them are gathered in memory and
//! written in three statements (`unnest` of arrays) instead of three or more
//! round trips per task. The transaction reads its own gathered tasks from
//! memory; any statement naming a table they go to (`tasks`, `task_deps`,
//! `events`) writes them first, so nothing ever reads past them. Event ids
//! are drawn from the sequence a block at a time (16 first, twice as many at
//! each draw after, up to 1,024): every event the transaction appends while
//! gathering takes its id from the block, a session's too (written at once,
//! with its id), so ids stay in the order the events were appended; a batch
//! of a session's events, numbered by the sequence itself, gives up the rest of
//! the block first. An id drawn but not used is a gap, as a rolled-back insert
//! leaves.

use std::cell::RefCell;
use std::collections::VecDeque;

use baton_core::event::{Event, NewEvent};
use baton_core::ids::{RunId, TaskId};
use baton_core::model::Task;
use baton_core::time::Timestamp;

use super::db::PgDb;
use crate::StoreError;
use crate::rows::encode;

/// How many event ids are drawn at once: at first, and at most.
const FIRST_BLOCK: i64 = 16;
const MAX_BLOCK: i64 = 1_024;

/// What a bulk transaction has gathered and not yet written.
#[derive(Default)]
pub(crate) struct Bulk {
    /// New tasks, in the order they were inserted (changes replace them).
    tasks: Vec<Task>,
    /// Global events (no session), in order.
    events: Vec<Event>,
    /// Event ids drawn and not yet used, in order.
    ids: VecDeque<i64>,
    /// How many ids were drawn last.
    drawn: i64,
}

/// Whether a statement names a table bulk writes go to.
fn touches(sql: &str) -> bool {
    sql.contains("tasks") || sql.contains("task_deps") || sql.contains("events")
}

impl PgDb<'_> {
    /// Starts gathering (see the module's documentation).
    pub(super) fn begin_bulk_now(&mut self) {
        self.bulk.get_or_insert_with(|| RefCell::new(Bulk::default()));
    }

    /// Writes what was gathered before `sql` runs, when `sql` could see it.
    pub(super) fn before(&self, sql: &str) -> Result<(), StoreError> {
        let due = self.bulk.as_ref().is_some_and(|b| {
            let b = b.borrow();
            !(b.tasks.is_empty() && b.events.is_empty())
        });
        if due && touches(sql) { self.flush_bulk() } else { Ok(()) }
    }

    /// Gathers a new task; false when not gathering.
    pub(super) fn bulk_insert(&self, task: &Task) -> bool {
        let Some(bulk) = &self.bulk else { return false };
        bulk.borrow_mut().tasks.push(task.clone());
        true
    }

    /// A gathered task's current state.
    pub(super) fn bulk_task(&self, id: &TaskId) -> Option<Task> {
        self.bulk.as_ref()?.borrow().tasks.iter().find(|t| t.id == *id).cloned()
    }

    /// Replaces a gathered task; false when it is not one.
    pub(super) fn bulk_put(&self, task: &Task) -> bool {
        let Some(bulk) = &self.bulk else { return false };
        let mut b = bulk.borrow_mut();
        match b.tasks.iter_mut().find(|t| t.id == task.id) {
            Some(t) => {
                *t = task.clone();
                true
            }
            None => false,
        }
    }

    /// Gathers a global event (no session); none when not gathering.
    pub(super) fn bulk_event(
        &mut self,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        event: NewEvent,
    ) -> Result<Option<Event>, StoreError> {
        let Some(id) = self.bulk_id()? else { return Ok(None) };
        let stored = Event {
            id,
            ts: event.ts.unwrap_or_else(Timestamp::now),
            session_id: None,
            seq: None,
            run_id: run.cloned(),
            task_id: task.cloned(),
            kind: event.kind,
            data: event.data,
            raw: event.raw,
        };
        self.bulk.as_ref().expect("gathering").borrow_mut().events.push(stored.clone());
        self.appended.push(stored.clone());
        Ok(Some(stored))
    }

    /// The next event id from the block (drawn when it is empty); none when
    /// not gathering.
    pub(super) fn bulk_id(&self) -> Result<Option<i64>, StoreError> {
        let Some(bulk) = &self.bulk else { return Ok(None) };
        if bulk.borrow().ids.is_empty() {
            let n = (bulk.borrow().drawn * 2).clamp(FIRST_BLOCK, MAX_BLOCK);
            let drawn: Vec<i64> = self
                .conn
                .borrow_mut()
                .query(
                    "SELECT nextval(q.seq) FROM (SELECT pg_get_serial_sequence('events', 'id')::regclass AS seq) q,
                     generate_series(1, $1::BIGINT) ORDER BY 1",
                    &[&n],
                )?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let mut b = bulk.borrow_mut();
            b.ids.extend(drawn);
            b.drawn = n;
        }
        let id = bulk.borrow_mut().ids.pop_front();
        id.map(Some).ok_or_else(|| StoreError::Database("no event id was drawn".into()))
    }

    /// Gives up the ids drawn and not used (events numbered by the sequence
    /// itself come next).
    pub(super) fn give_up_ids(&self) {
        if let Some(bulk) = &self.bulk {
            bulk.borrow_mut().ids.clear();
        }
    }

    /// Writes what was gathered: the tasks, their prerequisites and the events,
    /// a statement each (the ids drawn and not used are kept).
    pub(super) fn flush_bulk(&self) -> Result<(), StoreError> {
        let Some(bulk) = &self.bulk else { return Ok(()) };
        let (tasks, events) = {
            let mut b = bulk.borrow_mut();
            (std::mem::take(&mut b.tasks), std::mem::take(&mut b.events))
        };
        let mut conn = self.conn.borrow_mut();
        if !tasks.is_empty() {
            let ids: Vec<&str> = tasks.iter().map(|t| t.id.as_str()).collect();
            let projects: Vec<&str> = tasks.iter().map(|t| t.project_id.as_str()).collect();
            let statuses: Vec<&str> = tasks.iter().map(|t| t.status.as_str()).collect();
            let parents: Vec<Option<&str>> =
                tasks.iter().map(|t| t.parent_session_id.as_ref().map(|s| s.as_str())).collect();
            let created: Vec<i64> = tasks.iter().map(|t| t.created_at.as_millis()).collect();
            let data: Vec<String> = tasks.iter().map(|t| encode("task", t)).collect::<Result<_, _>>()?;
            let inserted = conn.execute(
                "INSERT INTO tasks (id, project_id, status, parent_session_id, created_at, data)
                 SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[])
                 ON CONFLICT DO NOTHING",
                &[&ids, &projects, &statuses, &parents, &created, &data],
            )?;
            if inserted != tasks.len() as u64 {
                return Err(StoreError::Duplicate { what: "a task of the batch".into() });
            }
            let (from, to): (Vec<&str>, Vec<&str>) =
                tasks.iter().flat_map(|t| t.depends_on.iter().map(|d| (t.id.as_str(), d.as_str()))).unzip();
            if !from.is_empty() {
                conn.execute(
                    "INSERT INTO task_deps (task_id, depends_on) SELECT * FROM unnest($1::TEXT[], $2::TEXT[])
                     ON CONFLICT DO NOTHING",
                    &[&from, &to],
                )?;
            }
        }
        if !events.is_empty() {
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            let ts: Vec<i64> = events.iter().map(|e| e.ts.as_millis()).collect();
            let runs: Vec<Option<&str>> = events.iter().map(|e| e.run_id.as_ref().map(|r| r.as_str())).collect();
            let task_ids: Vec<Option<&str>> = events.iter().map(|e| e.task_id.as_ref().map(|t| t.as_str())).collect();
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            let data: Vec<String> = events.iter().map(|e| encode("event data", &e.data)).collect::<Result<_, _>>()?;
            let raw: Vec<Option<&str>> = events.iter().map(|e| e.raw.as_deref()).collect();
            conn.execute(
                "INSERT INTO events (id, ts, run_id, task_id, kind, data, raw)
                 SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[], $7::TEXT[])",
                &[&ids, &ts, &runs, &task_ids, &kinds, &data, &raw],
            )?;
        }
        Ok(())
    }
}
