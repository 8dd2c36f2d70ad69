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
use std::collections::{HashMap, VecDeque};

use baton_core::event::{Event, NewEvent};
use baton_core::ids::{RunId, SessionId, TaskId};
use baton_core::model::{Run, Session, Task};
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
    /// Sessions and runs written, in order (a later write of one replaces it).
    sessions: Vec<Session>,
    runs: Vec<Run>,
    /// The last `seq` of each session made in this transaction: their events
    /// are gathered too (another session's are written at once).
    seqs: HashMap<SessionId, i64>,
    /// Events, in order.
    events: Vec<Event>,
    /// Event ids drawn and not yet used, in order.
    ids: VecDeque<i64>,
    /// How many ids were drawn last.
    drawn: i64,
}

impl Bulk {
    fn is_empty(&self) -> bool {
        self.tasks.is_empty() && self.sessions.is_empty() && self.runs.is_empty() && self.events.is_empty()
    }
}

/// Whether a statement names a table bulk writes go to.
fn touches(sql: &str) -> bool {
    ["tasks", "task_deps", "events", "sessions", "runs"].iter().any(|t| sql.contains(t))
}

/// Puts `item` in place of the one of the same key in `items`, or at the end.
fn replace_or_push<T, K: PartialEq>(items: &mut Vec<T>, item: T, key: impl Fn(&T) -> &K) {
    match items.iter_mut().find(|i| key(i) == key(&item)) {
        Some(slot) => *slot = item,
        None => items.push(item),
    }
}

impl PgDb<'_> {
    /// Starts gathering (see the module's documentation).
    pub(super) fn begin_bulk_now(&mut self) {
        self.bulk.get_or_insert_with(|| RefCell::new(Bulk::default()));
    }

    /// Writes what was gathered before `sql` runs, when `sql` could see it (and
    /// forgets the reads kept for the job when `sql` writes their tables).
    pub(super) fn before(&self, sql: &str) -> Result<(), StoreError> {
        self.memo.borrow_mut().before(sql);
        let due = self.bulk.as_ref().is_some_and(|b| !b.borrow().is_empty());
        if due && touches(sql) { self.flush_bulk() } else { Ok(()) }
    }

    /// Gathers a new task; false when not gathering.
    pub(super) fn bulk_insert(&self, task: &Task) -> bool {
        let Some(bulk) = &self.bulk else { return false };
        bulk.borrow_mut().tasks.push(task.clone());
        true
    }

    /// Gathers a session; `new` when it was just made (its events are then
    /// gathered too, numbered from 1). False when not gathering.
    pub(super) fn bulk_session(&self, session: &Session, new: bool) -> bool {
        let Some(bulk) = &self.bulk else { return false };
        let mut b = bulk.borrow_mut();
        if new {
            b.seqs.insert(session.id.clone(), 0);
        }
        replace_or_push(&mut b.sessions, session.clone(), |s| &s.id);
        true
    }

    /// Gathers a run; false when not gathering.
    pub(super) fn bulk_run(&self, run: &Run) -> bool {
        let Some(bulk) = &self.bulk else { return false };
        replace_or_push(&mut bulk.borrow_mut().runs, run.clone(), |r| &r.id);
        true
    }

    /// The next `seq` of a session made in this transaction; none for another.
    pub(super) fn bulk_seq(&self, session: &SessionId) -> Option<i64> {
        let mut b = self.bulk.as_ref()?.borrow_mut();
        let seq = b.seqs.get_mut(session)?;
        *seq += 1;
        Some(*seq)
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
        session: Option<(&SessionId, i64)>,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        event: NewEvent,
    ) -> Result<Option<Event>, StoreError> {
        let Some(id) = self.bulk_id()? else { return Ok(None) };
        let stored = Event {
            id,
            ts: event.ts.unwrap_or_else(Timestamp::now),
            session_id: session.map(|(s, _)| s.clone()),
            seq: session.map(|(_, seq)| seq),
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
        let (tasks, sessions, runs, events) = {
            let mut b = bulk.borrow_mut();
            let b = &mut *b;
            (
                std::mem::take(&mut b.tasks),
                std::mem::take(&mut b.sessions),
                std::mem::take(&mut b.runs),
                std::mem::take(&mut b.events),
            )
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
        if !sessions.is_empty() {
            let ids: Vec<&str> = sessions.iter().map(|s| s.id.as_str()).collect();
            let tasks: Vec<&str> = sessions.iter().map(|s| s.task_id.as_str()).collect();
            let projects: Vec<&str> = sessions.iter().map(|s| s.project_id.as_str()).collect();
            let agents: Vec<&str> = sessions.iter().map(|s| s.agent.as_str()).collect();
            let agent_sessions: Vec<Option<&str>> = sessions.iter().map(|s| s.agent_session_id.as_deref()).collect();
            let input: Vec<i64> = sessions.iter().map(|s| s.usage.input_tokens as i64).collect();
            let output: Vec<i64> = sessions.iter().map(|s| s.usage.output_tokens as i64).collect();
            let cost: Vec<f64> = sessions.iter().map(|s| s.usage.cost_usd).collect();
            let created: Vec<i64> = sessions.iter().map(|s| s.created_at.as_millis()).collect();
            let data: Vec<String> = sessions.iter().map(|s| encode("session", s)).collect::<Result<_, _>>()?;
            conn.execute(
                "INSERT INTO sessions (id, task_id, project_id, agent, agent_session_id, input_tokens, output_tokens, cost_usd, created_at, data)
                 SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[],
                     $7::BIGINT[], $8::FLOAT8[], $9::BIGINT[], $10::TEXT[])
                 ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, agent = excluded.agent,
                     agent_session_id = excluded.agent_session_id, input_tokens = excluded.input_tokens,
                     output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, data = excluded.data",
                &[&ids, &tasks, &projects, &agents, &agent_sessions, &input, &output, &cost, &created, &data],
            )?;
        }
        if !runs.is_empty() {
            let ids: Vec<&str> = runs.iter().map(|r| r.id.as_str()).collect();
            let sessions: Vec<&str> = runs.iter().map(|r| r.session_id.as_str()).collect();
            let statuses: Vec<&str> = runs.iter().map(|r| r.status.as_str()).collect();
            let launchers: Vec<Option<&str>> =
                runs.iter().map(|r| r.launcher_id.as_ref().map(|l| l.as_str())).collect();
            let created: Vec<i64> = runs.iter().map(|r| r.created_at.as_millis()).collect();
            let projects: Vec<&str> = runs.iter().map(|r| r.project_id.as_str()).collect();
            let agents: Vec<&str> = runs.iter().map(|r| r.agent.as_str()).collect();
            let data: Vec<String> = runs.iter().map(|r| encode("run", r)).collect::<Result<_, _>>()?;
            // In order, so that `n` (the queue's tie-break) follows it.
            conn.execute(
                "INSERT INTO runs (id, session_id, status, launcher_id, created_at, project_id, agent, data)
                 SELECT id, session_id, status, launcher_id, created_at, project_id, agent, data
                 FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::TEXT[], $7::TEXT[], $8::TEXT[])
                     WITH ORDINALITY AS r(id, session_id, status, launcher_id, created_at, project_id, agent, data, i)
                 ORDER BY i
                 ON CONFLICT (id) DO UPDATE SET status = excluded.status, launcher_id = excluded.launcher_id,
                     agent = excluded.agent, data = excluded.data",
                &[&ids, &sessions, &statuses, &launchers, &created, &projects, &agents, &data],
            )?;
        }
        if !events.is_empty() {
            let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
            let ts: Vec<i64> = events.iter().map(|e| e.ts.as_millis()).collect();
            let sessions: Vec<Option<&str>> =
                events.iter().map(|e| e.session_id.as_ref().map(|s| s.as_str())).collect();
            let seqs: Vec<Option<i64>> = events.iter().map(|e| e.seq).collect();
            let runs: Vec<Option<&str>> = events.iter().map(|e| e.run_id.as_ref().map(|r| r.as_str())).collect();
            let task_ids: Vec<Option<&str>> = events.iter().map(|e| e.task_id.as_ref().map(|t| t.as_str())).collect();
            let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
            let data: Vec<String> = events.iter().map(|e| encode("event data", &e.data)).collect::<Result<_, _>>()?;
            let raw: Vec<Option<&str>> = events.iter().map(|e| e.raw.as_deref()).collect();
            conn.execute(
                "INSERT INTO events (id, ts, session_id, seq, run_id, task_id, kind, data, raw)
                 SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[],
                     $7::TEXT[], $8::TEXT[], $9::TEXT[])",
                &[&ids, &ts, &sessions, &seqs, &runs, &task_ids, &kinds, &data, &raw],
            )?;
        }
        Ok(())
    }
}
