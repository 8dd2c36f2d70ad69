//! [`StoreRead`] and [`StoreTx`] over one SQLite connection.
//!
//! Things are stored as JSON documents beside the few columns that queries filter
//! and sort on; `put_*` writes both from the same value, so they cannot disagree.

use std::str::FromStr;

use baton_core::agent::AgentDef;
use baton_core::api::{SessionState, Spend};
use baton_core::chat::{ChatInbound, ChatPost, ChatThread, PermissionRequest};
use baton_core::doc::{DocVersion, Document};
use baton_core::event::{Event, NewEvent};
use baton_core::ids::{LauncherId, OrchestrationId, PlanId, ProjectId, RunId, SessionId, TaskId};
use baton_core::memory::{AgentMessage, JournalEntry, MemoryBlock, MessageState};
use baton_core::model::{
    IdempotentAnswer, Launcher, LauncherOrder, LeadHeartbeat, LeadRecord, MergeRequest, Orchestration, OrderKind, Plan,
    PoolState, Project, Run, Session, Task, TokenKind, TokenRecord, Usage,
};
use baton_core::status::{RunStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_core::triggers::{Schedule, Trigger, TriggerHit};
use baton_core::webhook::{ActionLink, Delivery, Webhook};
use baton_core::workset::{Landing, Workset};
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde::de::DeserializeOwned;

use crate::StoreError;
use crate::archive;
use crate::rows::{EVENT_COLUMNS, EventRow, decode, encode, token_kind};
use crate::store::{
    ActiveOf, ArchiveTotals, Chunk, ChunkVector, DocFilter, DocHit, EmbedJob, EmbedStatus, EventFilter, HourDelta,
    HourRow, Notice, QueuedRuns, StoreRead, StoreTx, TaskFilter,
};

/// One connection, and what a write job appended and noticed (published after
/// the commit).
pub(crate) struct Db<'c> {
    /// The connection.
    pub(super) conn: &'c Connection,
    /// Events appended by the current job.
    pub(crate) appended: Vec<Event>,
    /// Notices sent by the current job.
    pub(crate) notices: Vec<Notice>,
}

impl<'c> Db<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Self {
        Self { conn, appended: Vec::new(), notices: Vec::new() }
    }

    fn doc<T: DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Option<T>, StoreError> {
        let text: Option<String> = self
            .conn
            .prepare_cached(sql)
            .and_then(|mut st| st.query_row(params, |r| r.get(0)).optional())
            .map_err(db_err)?;
        text.map(|t| decode(what, &t)).transpose()
    }

    fn docs<T: DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &str,
        params: impl rusqlite::Params,
    ) -> Result<Vec<T>, StoreError> {
        let mut st = self.conn.prepare_cached(sql).map_err(db_err)?;
        let texts = st
            .query_map(params, |r| r.get::<_, String>(0))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        texts.iter().map(|t| decode(what, t)).collect()
    }

    pub(super) fn exec(&self, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.conn.prepare_cached(sql).and_then(|mut st| st.execute(params)).map_err(db_err)
    }

    fn exec_unique(&self, what: &str, sql: &str, params: impl rusqlite::Params) -> Result<usize, StoreError> {
        self.conn.prepare_cached(sql).and_then(|mut st| st.execute(params)).map_err(|e| match e.sqlite_error_code() {
            Some(rusqlite::ErrorCode::ConstraintViolation) => StoreError::Duplicate { what: what.to_owned() },
            _ => db_err(e),
        })
    }

    pub(super) fn events_where(&self, clause: &str, values: Vec<SqlValue>) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {clause}");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let rows = st
            .query_map(params_from_iter(values), read_event_row)
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        rows.into_iter().map(EventRow::into_event).collect()
    }
}

/// How many documents a word must be in before a hybrid search leaves it out.
const COMMON_FLOOR: i64 = 1000;

impl Db<'_> {
    /// The words but those in more than half of the documents and in more than
    /// [`COMMON_FLOOR`] of them (below that, ranking them costs little).
    fn telling_words(&self, words: Vec<String>) -> Result<Vec<String>, StoreError> {
        let total: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM documents")
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(db_err)?;
        let mut st = self.conn.prepare_cached("SELECT doc FROM documents_vocab WHERE term = ?1").map_err(db_err)?;
        let mut kept = Vec::with_capacity(words.len());
        for w in words {
            let docs: i64 = st.query_row([&w], |r| r.get(0)).optional().map_err(db_err)?.unwrap_or(0);
            if docs * 2 <= total || docs <= COMMON_FLOOR {
                kept.push(w);
            }
        }
        Ok(kept)
    }
}

/// The conditions on `d` (a `documents` row) a filter's tags, project, prefix
/// and relation make, their values appended to `args`.
pub(super) fn doc_conds(filter: &DocFilter, args: &mut Vec<SqlValue>) -> Vec<String> {
    let mut conds = Vec::new();
    let mut arg = |v: SqlValue| {
        args.push(v);
        format!("?{}", args.len())
    };
    for tag in &filter.tags {
        let n = arg(SqlValue::Text(tag.clone()));
        conds.push(format!("EXISTS (SELECT 1 FROM json_each(d.tags) WHERE value = {n})"));
    }
    if let Some(p) = &filter.project {
        let n = arg(SqlValue::Text(p.to_string()));
        conds.push(format!("d.project_id = {n}"));
    }
    if let Some(prefix) = &filter.prefix {
        let n = arg(SqlValue::Text(prefix.clone()));
        conds.push(format!("substr(d.name, 1, length({n})) = {n}"));
    }
    if let Some(target) = &filter.related_to {
        let n = arg(SqlValue::Text(target.clone()));
        conds.push(format!(
            "EXISTS (SELECT 1 FROM json_each(d.data, '$.relations') WHERE json_extract(value, '$.target') = {n})"
        ));
    }
    conds
}

/// Takes a lease unless another holder's is still valid; renewing keeps the
/// fencing number, a change of hands increments it.
const LEASE_SQL: &str = "INSERT INTO leases (name, holder, fence, expires_at) VALUES (?1, ?2, 1, ?3)
     ON CONFLICT(name) DO UPDATE SET
         fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence ELSE leases.fence + 1 END,
         holder = excluded.holder, expires_at = excluded.expires_at
     WHERE leases.holder = excluded.holder OR leases.expires_at < ?4
     RETURNING fence";

fn read_event_row(r: &Row<'_>) -> rusqlite::Result<EventRow> {
    Ok(EventRow {
        id: r.get(0)?,
        ts: r.get(1)?,
        session_id: r.get(2)?,
        seq: r.get(3)?,
        run_id: r.get(4)?,
        task_id: r.get(5)?,
        kind: r.get(6)?,
        data: r.get(7)?,
        raw: r.get(8)?,
    })
}

pub(crate) fn db_err(e: rusqlite::Error) -> StoreError {
    if is_full(&e) { StoreError::Full(Box::new(e)) } else { StoreError::Database(Box::new(e)) }
}

/// Whether SQLite failed for want of disk space.
pub(crate) fn is_full(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull)
}

impl StoreRead for Db<'_> {
    fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError> {
        self.doc("project", "SELECT data FROM projects WHERE id = ?1", [id.as_str()])
    }

    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        self.doc("project", "SELECT data FROM projects WHERE name = ?1", [name])
    }

    fn project_by_path(&self, path: &str) -> Result<Option<Project>, StoreError> {
        self.doc("project", "SELECT data FROM projects WHERE path = ?1", [path])
    }

    fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.docs("project", "SELECT data FROM projects ORDER BY created_at, id", [])
    }

    fn agent(&self, name: &str) -> Result<Option<AgentDef>, StoreError> {
        self.doc("agent", "SELECT data FROM agents WHERE name = ?1", [name])
    }

    fn agents(&self) -> Result<Vec<AgentDef>, StoreError> {
        self.docs("agent", "SELECT data FROM agents ORDER BY name", [])
    }

    fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        self.doc("task", "SELECT data FROM tasks WHERE id = ?1", [id.as_str()])
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
        let mut clauses = Vec::new();
        let mut values: Vec<SqlValue> = Vec::new();
        if let Some(p) = &filter.project {
            values.push(SqlValue::Text(p.to_string()));
            clauses.push(format!("project_id = ?{}", values.len()));
        }
        if let Some(s) = &filter.parent_session {
            values.push(SqlValue::Text(s.to_string()));
            clauses.push(format!("parent_session_id = ?{}", values.len()));
        }
        if !filter.statuses.is_empty() {
            let names: Vec<String> = filter.statuses.iter().map(|s| format!("'{}'", s.as_str())).collect();
            clauses.push(format!("status IN ({})", names.join(",")));
        }
        if let Some(before) = &filter.before {
            values.push(SqlValue::Text(before.to_string()));
            clauses.push(format!(
                "(created_at, rowid) < (SELECT created_at, rowid FROM tasks WHERE id = ?{})",
                values.len()
            ));
        }
        let mut sql = String::from("SELECT data FROM tasks");
        if !clauses.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&clauses.join(" AND "));
        }
        sql.push_str(" ORDER BY created_at DESC, rowid DESC");
        if let Some(limit) = filter.limit {
            sql.push_str(&format!(" LIMIT {limit}"));
        }
        self.docs("task", &sql, params_from_iter(values))
    }

    fn dependents(&self, id: &TaskId) -> Result<Vec<Task>, StoreError> {
        self.docs(
            "task",
            "SELECT t.data FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = ?1 ORDER BY t.created_at",
            [id.as_str()],
        )
    }

    fn hours(&self, since_hour: i64, project: Option<&ProjectId>) -> Result<Vec<HourRow>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT hour, project_id, agent, succeeded, failed, cancelled, cost_usd FROM hours
                 WHERE hour >= ?1 AND (?2 IS NULL OR project_id = ?2) ORDER BY hour, project_id, agent",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map(params![since_hour, project.map(|p| p.as_str())], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    [r.get::<_, i64>(3)?, r.get::<_, i64>(4)?, r.get::<_, i64>(5)?],
                    r.get::<_, f64>(6)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(hour, p, agent, n, cost)| crate::rows::hour_row(hour, &p, agent, n, cost))
            .collect())
    }

    fn memory_blocks(&self, owner: &str) -> Result<Vec<MemoryBlock>, StoreError> {
        self.docs(
            "memory block",
            "SELECT data FROM memory_blocks m WHERE owner = ?1
             AND version = (SELECT MAX(version) FROM memory_blocks WHERE owner = m.owner AND label = m.label) ORDER BY label",
            [owner],
        )
    }

    fn memory_versions(&self, owner: &str, label: &str) -> Result<Vec<MemoryBlock>, StoreError> {
        self.docs(
            "memory block",
            "SELECT data FROM memory_blocks WHERE owner = ?1 AND label = ?2 ORDER BY version DESC",
            [owner, label],
        )
    }

    fn journal(&self, agent: &str, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT seq, data FROM journal WHERE agent = ?1 ORDER BY seq DESC LIMIT ?2")
            .map_err(db_err)?;
        let rows = st
            .query_map(params![agent, limit], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(seq, data)| decode::<JournalEntry>("journal entry", &data).map(|e| JournalEntry { seq, ..e }))
            .collect()
    }

    fn message(&self, id: &str) -> Result<Option<AgentMessage>, StoreError> {
        self.doc("message", "SELECT data FROM agent_messages WHERE id = ?1", [id])
    }

    fn messages(&self, to: &str, states: &[MessageState], limit: u32) -> Result<Vec<AgentMessage>, StoreError> {
        let all = self.docs::<AgentMessage>(
            "message",
            "SELECT data FROM agent_messages WHERE to_agent = ?1 ORDER BY created_at, id",
            [to],
        )?;
        Ok(all.into_iter().filter(|m| states.is_empty() || states.contains(&m.state)).take(limit as usize).collect())
    }

    fn lead(&self, project: &ProjectId) -> Result<Option<LeadRecord>, StoreError> {
        self.doc("lead", "SELECT data FROM leads WHERE project_id = ?1", [project.as_str()])
    }

    fn chat_inbound_pending(&self, limit: u32) -> Result<Vec<ChatInbound>, StoreError> {
        self.docs(
            "chat inbound",
            "SELECT data FROM chat_inbound WHERE state = 'pending' ORDER BY received_at, key LIMIT ?1",
            [limit],
        )
    }

    fn chat_thread(&self, key: &str) -> Result<Option<ChatThread>, StoreError> {
        self.doc("chat thread", "SELECT data FROM chat_threads WHERE key = ?1", [key])
    }

    fn chat_threads_of_task(&self, task: &TaskId) -> Result<Vec<ChatThread>, StoreError> {
        self.docs("chat thread", "SELECT data FROM chat_threads WHERE task_id = ?1 ORDER BY key", [task.as_str()])
    }

    fn chat_threads_open(&self) -> Result<Vec<ChatThread>, StoreError> {
        self.docs("chat thread", "SELECT data FROM chat_threads WHERE open = 1 ORDER BY key", [])
    }

    fn chat_posts_pending(&self, limit: u32) -> Result<Vec<ChatPost>, StoreError> {
        self.docs(
            "chat post",
            "SELECT data FROM chat_posts WHERE state = 'pending' ORDER BY created_at, id LIMIT ?1",
            [limit],
        )
    }

    fn chat_post(&self, id: &str) -> Result<Option<ChatPost>, StoreError> {
        self.doc("chat post", "SELECT data FROM chat_posts WHERE id = ?1", [id])
    }

    fn permission(&self, id: &str) -> Result<Option<PermissionRequest>, StoreError> {
        self.doc("permission", "SELECT data FROM permissions WHERE id = ?1", [id])
    }

    fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.docs("schedule", "SELECT data FROM schedules ORDER BY next_at, id", [])
    }

    fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError> {
        self.doc("schedule", "SELECT data FROM schedules WHERE id = ?1", [id])
    }

    fn schedules_due(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        self.docs("schedule", "SELECT data FROM schedules WHERE next_at <= ?1 ORDER BY next_at, id", [now.as_millis()])
    }

    fn triggers(&self) -> Result<Vec<Trigger>, StoreError> {
        self.docs("trigger", "SELECT data FROM triggers ORDER BY name", [])
    }

    fn trigger(&self, name: &str) -> Result<Option<Trigger>, StoreError> {
        self.doc("trigger", "SELECT data FROM triggers WHERE name = ?1", [name])
    }

    fn trigger_hit(&self, trigger: &str, webhook_id: &str) -> Result<Option<TriggerHit>, StoreError> {
        self.doc(
            "trigger hit",
            "SELECT data FROM trigger_hits WHERE trigger_name = ?1 AND webhook_id = ?2",
            [trigger, webhook_id],
        )
    }

    fn trigger_hits_since(&self, trigger: &str, since: Timestamp) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM trigger_hits WHERE trigger_name = ?1 AND at >= ?2")
            .and_then(|mut st| st.query_row(params![trigger, since.as_millis()], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(db_err)
    }

    fn leads(&self) -> Result<Vec<LeadRecord>, StoreError> {
        self.docs("lead", "SELECT data FROM leads ORDER BY project_id", [])
    }

    fn oldest_queued_run(&self, agent: &str) -> Result<Option<Timestamp>, StoreError> {
        self.conn
            .prepare_cached("SELECT MIN(created_at) FROM runs WHERE agent = ?1 AND status = 'queued'")
            .and_then(|mut st| st.query_row([agent], |r| r.get::<_, Option<i64>>(0)))
            .map(|at| at.map(Timestamp::from_millis))
            .map_err(db_err)
    }

    fn count_in_status(&self, status: TaskStatus) -> Result<u64, StoreError> {
        self.conn
            .prepare_cached("SELECT COUNT(*) FROM tasks WHERE status = ?1")
            .and_then(|mut st| st.query_row([status.as_str()], |r| r.get::<_, i64>(0)))
            .map(|n| n as u64)
            .map_err(db_err)
    }

    fn hourly_queue(&self, since_hour: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT hour, queued FROM hourly_queue WHERE hour >= ?1 ORDER BY hour")
            .map_err(db_err)?;
        st.query_map([since_hour], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)? as u64)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)
    }

    fn task_counts(&self, project: Option<&ProjectId>) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached("SELECT status, COUNT(*) FROM tasks WHERE (?1 IS NULL OR project_id = ?1) GROUP BY status")
            .map_err(db_err)?;
        let rows = st
            .query_map([project.map(|p| p.as_str())], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        Ok(rows.into_iter().filter_map(|(s, n)| TaskStatus::from_str(&s).ok().map(|s| (s, n as u64))).collect())
    }

    fn spend(&self, project: Option<&ProjectId>) -> Result<Vec<Spend>, StoreError> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT project_id, agent, input_tokens, output_tokens, cost_usd
                 FROM spend WHERE ?1 IS NULL OR project_id = ?1 ORDER BY project_id, agent",
            )
            .map_err(db_err)?;
        let rows = st
            .query_map([project.map(|p| p.as_str())], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<i64>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                    r.get::<_, Option<f64>>(4)?,
                ))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(p, agent, input, output, cost)| {
                Ok(Spend {
                    project_id: ProjectId::from_str(&p).map_err(|_| StoreError::Corrupt {
                        what: "session",
                        source: serde::de::Error::custom("malformed project id"),
                    })?,
                    agent,
                    usage: Usage {
                        input_tokens: input.unwrap_or(0) as u64,
                        output_tokens: output.unwrap_or(0) as u64,
                        cost_usd: cost.unwrap_or(0.0),
                    },
                })
            })
            .collect()
    }

    fn document(&self, name: &str) -> Result<Option<Document>, StoreError> {
        self.doc("document", "SELECT data FROM documents WHERE name = ?1", [name])
    }

    fn document_version(&self, name: &str, version: u32) -> Result<Option<Document>, StoreError> {
        self.doc(
            "document",
            "SELECT data FROM document_versions WHERE name = ?1 AND version = ?2",
            params![name, version],
        )
    }

    fn document_versions(&self, name: &str) -> Result<Vec<DocVersion>, StoreError> {
        let docs: Vec<Document> =
            self.docs("document", "SELECT data FROM document_versions WHERE name = ?1 ORDER BY version DESC", [name])?;
        Ok(docs
            .into_iter()
            .map(|d| DocVersion {
                version: d.version,
                size: d.size,
                written_by: d.written_by,
                updated_at: d.updated_at,
            })
            .collect())
    }

    fn documents(&self, filter: &DocFilter) -> Result<Vec<DocHit>, StoreError> {
        let mut args: Vec<SqlValue> = Vec::new();
        let mut conds: Vec<String> = Vec::new();
        let arg = |v: SqlValue, args: &mut Vec<SqlValue>| {
            args.push(v);
            format!("?{}", args.len())
        };
        let (select, from, order) = match &filter.query {
            Some(text) => {
                let mut words = crate::search::words(text);
                if filter.telling {
                    words = self.telling_words(words)?;
                }
                let Some((last, rest)) = words.split_last() else { return Ok(Vec::new()) };
                let mut q: String = rest.iter().map(|w| format!("\"{w}\" ")).collect();
                q.push_str(&format!("\"{last}\"*"));
                let n = arg(SqlValue::Text(q), &mut args);
                // Ordered by FTS5's own `rank` (bm25 with these weights): FTS5
                // sorts the matches itself, so the passage (`snippet`) and the
                // document are made only for the rows the limit keeps.
                conds.push(format!("documents_fts MATCH {n}"));
                conds.push("rank MATCH 'bm25(10.0, 5.0, 1.0)'".to_owned());
                (
                    "d.data, -rank, snippet(documents_fts, 2, '[', ']', '…', 16)",
                    "documents_fts JOIN documents d ON d.id = documents_fts.rowid",
                    "rank",
                )
            }
            None => ("d.data, NULL, NULL", "documents d", "d.updated_at DESC"),
        };
        conds.extend(doc_conds(filter, &mut args));
        let limit = arg(SqlValue::Integer(filter.limit as i64), &mut args);
        let filter_sql = if conds.is_empty() { String::new() } else { format!("WHERE {}", conds.join(" AND ")) };
        let sql = format!("SELECT {select} FROM {from} {filter_sql} ORDER BY {order} LIMIT {limit}");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let rows = st
            .query_map(params_from_iter(args), |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<f64>>(1)?, r.get::<_, Option<String>>(2)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        rows.into_iter()
            .map(|(data, score, snippet)| Ok(DocHit { doc: decode("document", &data)?, score, snippet }))
            .collect()
    }

    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.doc("session", "SELECT data FROM sessions WHERE id = ?1", [id.as_str()])
    }

    fn session_by_agent_session(&self, agent_session_id: &str) -> Result<Option<Session>, StoreError> {
        self.doc(
            "session",
            "SELECT data FROM sessions WHERE json_extract(data, '$.agent_session_id') = ?1
             ORDER BY created_at DESC, rowid DESC LIMIT 1",
            [agent_session_id],
        )
    }

    fn sessions_of_task(&self, id: &TaskId) -> Result<Vec<Session>, StoreError> {
        self.docs("session", "SELECT data FROM sessions WHERE task_id = ?1 ORDER BY created_at, rowid", [id.as_str()])
    }

    fn sessions(&self, limit: u32) -> Result<Vec<Session>, StoreError> {
        self.docs("session", "SELECT data FROM sessions ORDER BY created_at DESC, rowid DESC LIMIT ?1", [limit])
    }

    fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        self.doc("run", "SELECT data FROM runs WHERE id = ?1", [id.as_str()])
    }

    fn runs_of_session(&self, id: &SessionId) -> Result<Vec<Run>, StoreError> {
        self.docs("run", "SELECT data FROM runs WHERE session_id = ?1 ORDER BY created_at, rowid", [id.as_str()])
    }

    fn runs_in_status(&self, status: RunStatus, limit: u32) -> Result<Vec<Run>, StoreError> {
        self.docs(
            "run",
            "SELECT data FROM runs WHERE status = ?1 ORDER BY created_at, rowid LIMIT ?2",
            params![status.as_str(), limit],
        )
    }

    fn active_runs_of_launcher(&self, id: &LauncherId) -> Result<Vec<Run>, StoreError> {
        self.docs(
            "run",
            "SELECT data FROM runs WHERE launcher_id = ?1 AND status IN ('claimed', 'running') ORDER BY created_at",
            [id.as_str()],
        )
    }

    fn queued_runs(&self, q: &QueuedRuns) -> Result<Vec<Run>, StoreError> {
        let list = |items: Vec<&str>| serde_json::to_string(&items).unwrap_or_else(|_| "[]".into());
        self.docs(
            "run",
            "SELECT data FROM runs WHERE status = 'queued'
               AND (?1 IS NULL OR (created_at, rowid) > (SELECT created_at, rowid FROM runs WHERE id = ?1))
               AND project_id NOT IN (SELECT value FROM json_each(?2))
               AND agent NOT IN (SELECT value FROM json_each(?3))
             ORDER BY created_at, rowid LIMIT ?4",
            params![
                q.after.as_ref().map(|r| r.as_str()),
                list(q.not_projects.iter().map(|p| p.as_str()).collect()),
                list(q.not_agents.iter().map(String::as_str).collect()),
                q.limit
            ],
        )
    }

    fn active_run_count(&self, of: ActiveOf<'_>) -> Result<u32, StoreError> {
        let (sql, key) = match of {
            ActiveOf::Project(p) => {
                ("SELECT COUNT(*) FROM runs WHERE project_id = ?1 AND status IN ('claimed', 'running')", p.as_str())
            }
            ActiveOf::Agent(a) => {
                ("SELECT COUNT(*) FROM runs WHERE agent = ?1 AND status IN ('claimed', 'running')", a)
            }
            ActiveOf::Launcher(l) => {
                ("SELECT COUNT(*) FROM runs WHERE launcher_id = ?1 AND status IN ('claimed', 'running')", l.as_str())
            }
            ActiveOf::QueuedOfAgent(a) => ("SELECT COUNT(*) FROM runs WHERE agent = ?1 AND status = 'queued'", a),
        };
        self.conn.prepare_cached(sql).and_then(|mut st| st.query_row([key], |r| r.get(0))).map_err(db_err)
    }

    fn project_spent(&self, project: &ProjectId) -> Result<f64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT cost_usd FROM project_spend WHERE project_id = ?1")
            .and_then(|mut st| st.query_row([project.as_str()], |r| r.get(0)).optional())
            .map_err(db_err)?
            .unwrap_or(0.0))
    }

    fn launcher(&self, id: &LauncherId) -> Result<Option<Launcher>, StoreError> {
        self.doc("launcher", "SELECT data FROM launchers WHERE id = ?1", [id.as_str()])
    }

    fn launchers(&self) -> Result<Vec<Launcher>, StoreError> {
        self.docs("launcher", "SELECT data FROM launchers ORDER BY id", [])
    }

    fn ids_with_prefix(&self, kind: &str, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError> {
        let table = match kind {
            "task" => "tasks",
            "session" => "sessions",
            "run" => "runs",
            "project" => "projects",
            "launcher" => "launchers",
            "plan" => "plans",
            "orchestration" => "orchestrations",
            _ => return Ok(Vec::new()),
        };
        if !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT id FROM {table} WHERE id GLOB ?1 ORDER BY id LIMIT ?2");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        st.query_map(params![format!("{prefix}*"), limit], |r| r.get(0)).and_then(|rows| rows.collect()).map_err(db_err)
    }

    fn session_events(&self, id: &SessionId, after_seq: i64, limit: u32) -> Result<Vec<Event>, StoreError> {
        let live = self.events_where(
            "session_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
            vec![SqlValue::Text(id.to_string()), SqlValue::Integer(after_seq), SqlValue::Integer(limit.into())],
        )?;
        archive::merged(self, live, archive::Scope::SessionSeq(id.as_str()), after_seq, limit, |_| true)
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let mut clause = String::from("id > ?1");
        let mut values = vec![SqlValue::Integer(filter.after)];
        if let Some(s) = &filter.session {
            values.push(SqlValue::Text(s.to_string()));
            clause.push_str(&format!(" AND session_id = ?{}", values.len()));
        }
        if let Some(t) = &filter.task {
            values.push(SqlValue::Text(t.to_string()));
            clause.push_str(&format!(" AND task_id = ?{}", values.len()));
        }
        if !filter.kinds.is_empty() {
            let names: Vec<String> = filter.kinds.iter().map(|k| format!("'{}'", k.as_str())).collect();
            clause.push_str(&format!(" AND kind IN ({})", names.join(",")));
        }
        values.push(SqlValue::Integer(filter.limit.into()));
        clause.push_str(&format!(" ORDER BY id LIMIT ?{}", values.len()));
        let live = self.events_where(&clause, values)?;
        match archive::scope_of(filter) {
            Some(scope) => {
                archive::merged(self, live, scope, filter.after, filter.limit, |e| archive::keeps(filter, e))
            }
            None => Ok(live),
        }
    }

    fn last_event_id(&self) -> Result<i64, StoreError> {
        self.conn.query_row("SELECT COALESCE(MAX(id), 0) FROM events", [], |r| r.get(0)).map_err(db_err)
    }

    fn output_sessions(&self, after: i64, before: Timestamp, scan: u32) -> Result<(Vec<SessionId>, i64), StoreError> {
        self.output_sessions_now(after, before, scan)
    }

    fn retention_scanned(&self) -> Result<i64, StoreError> {
        self.retention_scanned_now()
    }

    fn output_waiting(&self, after: Option<&SessionId>, limit: u32) -> Result<Vec<SessionId>, StoreError> {
        self.output_waiting_now(after, limit)
    }

    fn archive_totals(&self) -> Result<ArchiveTotals, StoreError> {
        self.archive_totals_now()
    }

    fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        self.doc("plan", "SELECT data FROM plans WHERE id = ?1", [id.as_str()])
    }

    fn plans(&self, limit: u32) -> Result<Vec<Plan>, StoreError> {
        self.docs("plan", "SELECT data FROM plans ORDER BY created_at DESC, rowid DESC LIMIT ?1", [limit])
    }

    fn orchestration(&self, id: &OrchestrationId) -> Result<Option<Orchestration>, StoreError> {
        self.doc("orchestration", "SELECT data FROM orchestrations WHERE id = ?1", [id.as_str()])
    }

    fn orchestrations(&self, limit: u32) -> Result<Vec<Orchestration>, StoreError> {
        self.docs(
            "orchestration",
            "SELECT data FROM orchestrations ORDER BY created_at DESC, rowid DESC LIMIT ?1",
            [limit],
        )
    }

    fn heartbeats(&self, project: &ProjectId, limit: u32) -> Result<Vec<LeadHeartbeat>, StoreError> {
        self.docs(
            "heartbeat",
            "SELECT data FROM heartbeats WHERE project_id = ?1 ORDER BY id DESC LIMIT ?2",
            params![project.as_str(), limit],
        )
    }

    fn pool_states(&self) -> Result<Vec<PoolState>, StoreError> {
        self.docs("pool", "SELECT data FROM pools ORDER BY name", [])
    }

    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.docs("webhook", "SELECT data FROM webhooks ORDER BY created_at, id", [])
    }

    fn webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        self.doc("webhook", "SELECT data FROM webhooks WHERE id = ?1", [id])
    }

    fn deliveries(&self, webhook: &str, limit: u32) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "delivery",
            "SELECT data FROM deliveries WHERE webhook_id = ?1 ORDER BY seq DESC LIMIT ?2",
            params![webhook, limit],
        )
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.doc("delivery", "SELECT data FROM deliveries WHERE id = ?1", [id])
    }

    fn delivery_counts(&self, webhook: &str) -> Result<(u32, u32), StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*) FILTER (WHERE status = 'failed')
                 FROM deliveries WHERE webhook_id = ?1",
            )
            .and_then(|mut st| st.query_row([webhook], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(db_err)
    }

    fn next_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "delivery",
            "SELECT d.data FROM webhooks w JOIN deliveries d ON d.seq = (
                 SELECT seq FROM deliveries WHERE webhook_id = w.id AND status = 'pending' ORDER BY seq LIMIT 1)",
            [],
        )
    }

    fn action_link(&self, hash: &str) -> Result<Option<ActionLink>, StoreError> {
        self.doc("action link", "SELECT data FROM action_links WHERE hash = ?1", [hash])
    }

    fn embed_status(&self) -> Result<EmbedStatus, StoreError> {
        self.embed_status_now()
    }

    fn embed_failures(&self, limit: u32) -> Result<Vec<EmbedJob>, StoreError> {
        self.embed_failures_now(limit)
    }

    fn chunk_vectors(&self, model: &str) -> Result<Vec<ChunkVector>, StoreError> {
        self.chunk_vectors_of(model)
    }

    fn chunk_text(&self, name: &str, seq: u32) -> Result<Option<String>, StoreError> {
        self.chunk_text_of(name, seq)
    }

    fn document_names(&self, filter: &DocFilter) -> Result<Vec<String>, StoreError> {
        self.document_names_of(filter)
    }

    fn workset(&self, name: &str) -> Result<Option<Workset>, StoreError> {
        self.doc("workset", "SELECT data FROM worksets WHERE name = ?1", [name])
    }

    fn worksets(&self) -> Result<Vec<Workset>, StoreError> {
        self.docs("workset", "SELECT data FROM worksets ORDER BY name", [])
    }

    fn landings(&self) -> Result<Vec<Landing>, StoreError> {
        self.docs("landing", "SELECT data FROM landings ORDER BY task_id", [])
    }

    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens_where("hash = ?1", [hash])?.pop())
    }

    fn tokens(&self, kind: TokenKind) -> Result<Vec<TokenRecord>, StoreError> {
        self.tokens_where("kind = ?1 ORDER BY created_at, hash", [kind.as_str()])
    }

    fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens_where("id = ?1", [id])?.pop())
    }

    fn session_state(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        self.doc("session state", "SELECT data FROM session_states WHERE session_id = ?1", [id.as_str()])
    }

    fn orders_of_launcher(&self, id: &LauncherId) -> Result<Vec<LauncherOrder>, StoreError> {
        let mut orders: Vec<LauncherOrder> =
            self.docs("launcher order", "SELECT data FROM launcher_orders WHERE launcher_id = ?1", [id.as_str()])?;
        orders.sort_by_key(|o| o.created_at);
        Ok(orders)
    }

    fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.conn
            .prepare_cached("SELECT bytes FROM blobs WHERE sha256 = ?1")
            .and_then(|mut st| st.query_row([sha256], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    fn pending_merges(&self) -> Result<Vec<MergeRequest>, StoreError> {
        self.docs("merge request", "SELECT data FROM merge_requests WHERE done = 0 ORDER BY created_at, id", [])
    }

    fn merge_request(&self, id: &str) -> Result<Option<MergeRequest>, StoreError> {
        self.doc("merge request", "SELECT data FROM merge_requests WHERE id = ?1", [id])
    }

    fn clock(&self) -> Result<Timestamp, StoreError> {
        Ok(Timestamp::now())
    }
}

impl Db<'_> {
    fn tokens_where(&self, clause: &str, params: impl rusqlite::Params) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT hash, kind, subject, created_at, id, name FROM tokens WHERE {clause}");
        let mut st = self.conn.prepare_cached(&sql).map_err(db_err)?;
        let rows = st
            .query_map(params, |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?))
            })
            .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
            .map_err(db_err)?;
        Ok(rows
            .into_iter()
            .filter_map(|(hash, kind, subject, created_at, id, name)| {
                let kind = token_kind(&kind)?;
                Some(TokenRecord { hash, kind, subject, created_at: Timestamp::from_millis(created_at), id, name })
            })
            .collect())
    }
}

impl StoreTx for Db<'_> {
    fn put_project(&mut self, p: &Project) -> Result<(), StoreError> {
        let data = encode("project", p)?;
        self.exec_unique(
            &format!("a project named {:?} or at {:?}", p.name, p.path),
            "INSERT INTO projects (id, name, path, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET name = excluded.name, path = excluded.path, data = excluded.data",
            params![p.id.as_str(), p.name, p.path, p.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_agent(&mut self, a: &AgentDef) -> Result<(), StoreError> {
        let data = encode("agent", a)?;
        self.exec(
            "INSERT INTO agents (name, data) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
            params![a.name, data],
        )?;
        Ok(())
    }

    fn delete_agent(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM agents WHERE name = ?1", [name])? > 0)
    }

    fn insert_task(&mut self, t: &Task) -> Result<(), StoreError> {
        let data = encode("task", t)?;
        self.exec_unique(
            &format!("task {}", t.id),
            "INSERT INTO tasks (id, project_id, status, parent_session_id, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                t.id.as_str(),
                t.project_id.as_str(),
                t.status.as_str(),
                t.parent_session_id.as_ref().map(|s| s.as_str()),
                t.created_at.as_millis(),
                data
            ],
        )?;
        for dep in &t.depends_on {
            self.exec(
                "INSERT OR IGNORE INTO task_deps (task_id, depends_on) VALUES (?1, ?2)",
                [t.id.as_str(), dep.as_str()],
            )?;
        }
        Ok(())
    }

    fn put_task(&mut self, t: &Task) -> Result<(), StoreError> {
        let data = encode("task", t)?;
        self.exec(
            "UPDATE tasks SET status = ?2, data = ?3, parent_session_id = ?4 WHERE id = ?1",
            params![t.id.as_str(), t.status.as_str(), data, t.parent_session_id.as_ref().map(|s| s.as_str())],
        )?;
        Ok(())
    }

    fn put_session(&mut self, s: &Session) -> Result<(), StoreError> {
        let data = encode("session", s)?;
        self.exec(
            "INSERT INTO sessions (id, task_id, created_at, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![s.id.as_str(), s.task_id.as_str(), s.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_run(&mut self, r: &Run) -> Result<(), StoreError> {
        let data = encode("run", r)?;
        self.exec(
            "INSERT INTO runs (id, session_id, status, launcher_id, created_at, project_id, agent, data)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, launcher_id = excluded.launcher_id,
                 agent = excluded.agent, data = excluded.data",
            params![
                r.id.as_str(),
                r.session_id.as_str(),
                r.status.as_str(),
                r.launcher_id.as_ref().map(|l| l.as_str()),
                r.created_at.as_millis(),
                r.project_id.as_str(),
                r.agent.as_str(),
                data
            ],
        )?;
        Ok(())
    }

    fn put_launcher(&mut self, l: &Launcher) -> Result<(), StoreError> {
        let data = encode("launcher", l)?;
        self.exec(
            "INSERT INTO launchers (id, data) VALUES (?1, ?2) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![l.id.as_str(), data],
        )?;
        Ok(())
    }

    fn append_event(
        &mut self,
        session: Option<&SessionId>,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        event: NewEvent,
    ) -> Result<Event, StoreError> {
        let seq = match session {
            Some(s) => Some(
                self.conn
                    .prepare_cached("SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE session_id = ?1")
                    .and_then(|mut st| st.query_row([s.as_str()], |r| r.get::<_, i64>(0)))
                    .map_err(db_err)?,
            ),
            None => None,
        };
        let ts = event.ts.unwrap_or_else(Timestamp::now);
        let data = encode("event data", &event.data)?;
        self.exec(
            "INSERT INTO events (ts, session_id, seq, run_id, task_id, kind, data, raw) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                ts.as_millis(),
                session.map(|s| s.as_str()),
                seq,
                run.map(|r| r.as_str()),
                task.map(|t| t.as_str()),
                event.kind.as_str(),
                data,
                event.raw
            ],
        )?;
        let stored = Event {
            id: self.conn.last_insert_rowid(),
            ts,
            session_id: session.cloned(),
            seq,
            run_id: run.cloned(),
            task_id: task.cloned(),
            kind: event.kind,
            data: event.data,
            raw: event.raw,
        };
        self.appended.push(stored.clone());
        Ok(stored)
    }

    fn put_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT OR REPLACE INTO tokens (hash, kind, subject, created_at, id, name) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![t.hash, t.kind.as_str(), t.subject, t.created_at.as_millis(), t.id, t.name],
        )?;
        Ok(())
    }

    fn put_plan(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let data = encode("plan", plan)?;
        self.exec(
            "INSERT INTO plans (id, project_id, created_at, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![plan.id.as_str(), plan.project_id.as_str(), plan.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_orchestration(&mut self, o: &Orchestration) -> Result<(), StoreError> {
        let data = encode("orchestration", o)?;
        self.exec(
            "INSERT INTO orchestrations (id, project_id, created_at, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![o.id.as_str(), o.project_id.as_str(), o.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn add_heartbeat(&mut self, beat: &LeadHeartbeat) -> Result<(), StoreError> {
        let data = encode("heartbeat", beat)?;
        self.exec(
            "INSERT INTO heartbeats (project_id, at, data) VALUES (?1, ?2, ?3)",
            params![beat.project_id.as_str(), beat.at.as_millis(), data],
        )?;
        Ok(())
    }

    fn archive_output(&mut self, session: &SessionId) -> Result<u32, StoreError> {
        self.archive_output_now(session)
    }

    fn set_retention_scanned(&mut self, position: i64) -> Result<(), StoreError> {
        self.exec("UPDATE retention SET scanned = MAX(scanned, ?1) WHERE id = 1", [position]).map(|_| ())
    }

    fn wait_output(&mut self, session: &SessionId, waiting: bool) -> Result<(), StoreError> {
        self.wait_output_now(session, waiting)
    }

    fn reclaim_space(&mut self) -> Result<u64, StoreError> {
        self.reclaim_space_now()
    }

    fn prune_heartbeats(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let gone = self.exec(
            "DELETE FROM heartbeats WHERE at < ?1
               AND id NOT IN (SELECT MAX(id) FROM heartbeats GROUP BY project_id)",
            [before.as_millis()],
        )?;
        Ok(gone as u64)
    }

    fn put_pool_state(&mut self, state: &PoolState) -> Result<(), StoreError> {
        let data = encode("pool", state)?;
        self.exec(
            "INSERT INTO pools (name, data) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
            params![state.name, data],
        )?;
        Ok(())
    }

    fn put_memory_block(&mut self, block: &MemoryBlock) -> Result<(), StoreError> {
        let data = encode("memory block", block)?;
        self.exec_unique(
            "a version of this memory block",
            "INSERT INTO memory_blocks (owner, label, version, data) VALUES (?1, ?2, ?3, ?4)",
            params![block.owner, block.label, block.version, data],
        )?;
        Ok(())
    }

    fn append_journal(&mut self, entry: &JournalEntry) -> Result<i64, StoreError> {
        let data = encode("journal entry", entry)?;
        self.exec("INSERT INTO journal (agent, data) VALUES (?1, ?2)", params![entry.agent, data])?;
        Ok(self.conn.last_insert_rowid())
    }

    fn add_chat_inbound(&mut self, c: &ChatInbound) -> Result<bool, StoreError> {
        let data = encode("chat inbound", c)?;
        let added = self.exec(
            "INSERT INTO chat_inbound (key, state, received_at, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT(key) DO NOTHING",
            params![c.key, c.state, c.received_at.as_millis(), data],
        )?;
        Ok(added == 1)
    }

    fn put_chat_inbound(&mut self, c: &ChatInbound) -> Result<(), StoreError> {
        let data = encode("chat inbound", c)?;
        self.exec("UPDATE chat_inbound SET state = ?2, data = ?3 WHERE key = ?1", params![c.key, c.state, data])?;
        Ok(())
    }

    fn put_chat_thread(&mut self, t: &ChatThread, open: bool) -> Result<(), StoreError> {
        let data = encode("chat thread", t)?;
        self.exec(
            "INSERT INTO chat_threads (key, task_id, open, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(key) DO UPDATE SET task_id = excluded.task_id, open = excluded.open, data = excluded.data",
            params![t.key, t.task_id.as_str(), open, data],
        )?;
        Ok(())
    }

    fn put_chat_post(&mut self, p: &ChatPost) -> Result<(), StoreError> {
        let data = encode("chat post", p)?;
        self.exec(
            "INSERT INTO chat_posts (id, state, created_at, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state, data = excluded.data",
            params![p.id, p.state, p.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_permission(&mut self, p: &PermissionRequest) -> Result<(), StoreError> {
        let data = encode("permission", p)?;
        self.exec(
            "INSERT INTO permissions (id, task_id, data) VALUES (?1, ?2, ?3) ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![p.id, p.task_id.as_str(), data],
        )?;
        Ok(())
    }

    fn put_schedule(&mut self, sc: &Schedule, expected: Option<Timestamp>) -> Result<bool, StoreError> {
        let data = encode("schedule", sc)?;
        let n = match expected {
            None => self.exec(
                "INSERT INTO schedules (id, project_id, next_at, data) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT(id) DO UPDATE SET next_at = excluded.next_at, data = excluded.data",
                params![sc.id, sc.project_id.as_str(), sc.next_at.as_millis(), data],
            )?,
            Some(at) => self.exec(
                "UPDATE schedules SET next_at = ?2, data = ?3 WHERE id = ?1 AND next_at = ?4",
                params![sc.id, sc.next_at.as_millis(), data, at.as_millis()],
            )?,
        };
        Ok(n == 1)
    }

    fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM schedules WHERE id = ?1", [id])? == 1)
    }

    fn put_trigger(&mut self, t: &Trigger) -> Result<(), StoreError> {
        let data = encode("trigger", t)?;
        self.exec(
            "INSERT INTO triggers (name, data) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE SET data = excluded.data",
            params![t.name, data],
        )?;
        Ok(())
    }

    fn delete_trigger(&mut self, name: &str) -> Result<bool, StoreError> {
        self.exec("DELETE FROM trigger_hits WHERE trigger_name = ?1", [name])?;
        Ok(self.exec("DELETE FROM triggers WHERE name = ?1", [name])? == 1)
    }

    fn add_trigger_hit(&mut self, h: &TriggerHit) -> Result<bool, StoreError> {
        let data = encode("trigger hit", h)?;
        let n = self.exec(
            "INSERT INTO trigger_hits (trigger_name, webhook_id, at, data) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            params![h.trigger, h.webhook_id, h.at.as_millis(), data],
        )?;
        Ok(n == 1)
    }

    fn prune_chat(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let at = before.as_millis();
        let a = self.exec("DELETE FROM chat_inbound WHERE state <> 'pending' AND received_at < ?1", [at])?;
        let b = self.exec("DELETE FROM chat_posts WHERE state <> 'pending' AND created_at < ?1", [at])?;
        Ok((a + b) as u64)
    }

    fn put_message(&mut self, m: &AgentMessage) -> Result<(), StoreError> {
        let data = encode("message", m)?;
        let state = serde_json::to_value(m.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        self.exec(
            "INSERT INTO agent_messages (id, to_agent, state, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET state = excluded.state, data = excluded.data",
            params![m.id, m.to, state, m.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_lead(&mut self, lead: &LeadRecord, expected: Option<u64>) -> Result<bool, StoreError> {
        let data = encode("lead", lead)?;
        let changed = match expected {
            None => self.exec(
                "INSERT INTO leads (project_id, fence, data) VALUES (?1, ?2, ?3) ON CONFLICT(project_id) DO NOTHING",
                params![lead.project_id.as_str(), lead.fence as i64, data],
            )?,
            Some(fence) => self.exec(
                "UPDATE leads SET fence = ?2, data = ?3 WHERE project_id = ?1 AND fence = ?4",
                params![lead.project_id.as_str(), lead.fence as i64, data, fence as i64],
            )?,
        };
        Ok(changed == 1)
    }

    fn add_spend(&mut self, project: &ProjectId, agent: &str, usage: &Usage) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO spend (project_id, agent, input_tokens, output_tokens, cost_usd) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(project_id, agent) DO UPDATE SET input_tokens = input_tokens + excluded.input_tokens,
                 output_tokens = output_tokens + excluded.output_tokens, cost_usd = cost_usd + excluded.cost_usd",
            params![project.as_str(), agent, usage.input_tokens as i64, usage.output_tokens as i64, usage.cost_usd],
        )?;
        Ok(())
    }

    fn add_hour(&mut self, d: &HourDelta) -> Result<(), StoreError> {
        let n = crate::rows::finished_counts(d.finished);
        self.exec(
            "INSERT INTO hours (hour, project_id, agent, succeeded, failed, cancelled, cost_usd) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT(hour, project_id, agent) DO UPDATE SET succeeded = succeeded + excluded.succeeded,
                 failed = failed + excluded.failed, cancelled = cancelled + excluded.cancelled,
                 cost_usd = cost_usd + excluded.cost_usd",
            params![d.hour, d.project.as_str(), d.agent, n[0], n[1], n[2], d.cost_usd],
        )?;
        Ok(())
    }

    fn set_hourly_queue(&mut self, hour: i64, queued: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO hourly_queue (hour, queued) VALUES (?1, ?2) ON CONFLICT(hour) DO UPDATE SET queued = excluded.queued",
            params![hour, queued as i64],
        )?;
        Ok(())
    }

    fn add_project_spend(&mut self, project: &ProjectId, cost_usd: f64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO project_spend (project_id, cost_usd) VALUES (?1, ?2)
             ON CONFLICT(project_id) DO UPDATE SET cost_usd = cost_usd + excluded.cost_usd",
            params![project.as_str(), cost_usd],
        )?;
        Ok(())
    }

    fn put_document(&mut self, doc: &Document) -> Result<(), StoreError> {
        let data = encode("document", doc)?;
        let rowid: i64 = self
            .conn
            .prepare_cached(
                "INSERT INTO documents (name, project_id, updated_at, data, tags) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(name) DO UPDATE SET project_id = excluded.project_id, updated_at = excluded.updated_at,
                 data = excluded.data, tags = excluded.tags RETURNING id",
            )
            .and_then(|mut st| {
                let tags = serde_json::to_string(&doc.tags).unwrap_or_else(|_| "[]".into());
                st.query_row(
                    params![
                        doc.name,
                        doc.project_id.as_ref().map(|p| p.as_str()),
                        doc.updated_at.as_millis(),
                        data,
                        tags
                    ],
                    |r| r.get(0),
                )
            })
            .map_err(db_err)?;
        self.exec(
            "INSERT OR REPLACE INTO document_versions (name, version, data) VALUES (?1, ?2, ?3)",
            params![doc.name, doc.version, data],
        )?;
        self.exec("DELETE FROM documents_fts WHERE rowid = ?1", [rowid])?;
        self.exec(
            "INSERT INTO documents_fts (rowid, name, tags, content) VALUES (?1, ?2, ?3, ?4)",
            params![rowid, doc.name, doc.tags.join(" "), doc.content.as_deref().unwrap_or("")],
        )?;
        self.queue_document(doc)
    }

    fn delete_document(&mut self, name: &str) -> Result<bool, StoreError> {
        let rowid: Option<i64> = self
            .conn
            .prepare_cached("DELETE FROM documents WHERE name = ?1 RETURNING id")
            .and_then(|mut st| st.query_row([name], |r| r.get(0)).optional())
            .map_err(db_err)?;
        let Some(rowid) = rowid else { return Ok(false) };
        self.exec("DELETE FROM documents_fts WHERE rowid = ?1", [rowid])?;
        self.exec("DELETE FROM document_versions WHERE name = ?1", [name])?;
        self.unindex(name)?;
        Ok(true)
    }

    fn claim_embeddings(&mut self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<EmbedJob>, StoreError> {
        self.claim_embeddings_now(now, until, limit)
    }

    fn put_chunks(&mut self, name: &str, version: u32, model: &str, chunks: &[Chunk]) -> Result<bool, StoreError> {
        self.put_chunks_now(name, version, model, chunks)
    }

    fn embedding_failed(
        &mut self,
        name: &str,
        version: u32,
        error: &str,
        next_at: Timestamp,
        failed: bool,
    ) -> Result<(), StoreError> {
        self.embedding_failed_now(name, version, error, next_at, failed)
    }

    fn set_embed_model(&mut self, model: &str, dims: Option<u32>) -> Result<bool, StoreError> {
        self.set_embed_model_now(model, dims)
    }

    fn queue_embeddings(&mut self, all: bool) -> Result<u64, StoreError> {
        self.queue_embeddings_now(all)
    }

    fn insert_workset(&mut self, workset: &Workset) -> Result<(), StoreError> {
        let data = encode("workset", workset)?;
        self.exec_unique(
            &format!("workset {}", workset.name),
            "INSERT INTO worksets (name, data) VALUES (?1, ?2)",
            params![workset.name, data],
        )?;
        Ok(())
    }

    fn delete_workset(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM worksets WHERE name = ?1", [name])? > 0)
    }

    fn put_landing(&mut self, landing: &Landing) -> Result<(), StoreError> {
        let data = encode("landing", landing)?;
        self.exec(
            "INSERT INTO landings (task_id, data) VALUES (?1, ?2) ON CONFLICT(task_id) DO UPDATE SET data = excluded.data",
            params![landing.task_id.as_str(), data],
        )?;
        Ok(())
    }

    fn delete_landing(&mut self, task: &TaskId) -> Result<(), StoreError> {
        self.exec("DELETE FROM landings WHERE task_id = ?1", [task.as_str()])?;
        Ok(())
    }

    fn put_webhook(&mut self, webhook: &Webhook) -> Result<(), StoreError> {
        let data = encode("webhook", webhook)?;
        self.exec(
            "INSERT INTO webhooks (id, created_at, data) VALUES (?1, ?2, ?3)
             ON CONFLICT(id) DO UPDATE SET data = excluded.data",
            params![webhook.id, webhook.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn delete_webhook(&mut self, id: &str) -> Result<bool, StoreError> {
        self.exec("DELETE FROM deliveries WHERE webhook_id = ?1", [id])?;
        Ok(self.exec("DELETE FROM webhooks WHERE id = ?1", [id])? > 0)
    }

    fn put_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        let data = encode("delivery", delivery)?;
        self.exec(
            "INSERT INTO deliveries (id, webhook_id, status, created_at, data) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(id) DO UPDATE SET status = excluded.status, data = excluded.data",
            params![delivery.id, delivery.webhook_id, delivery.status.as_str(), delivery.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn put_action_link(&mut self, hash: &str, link: &ActionLink) -> Result<(), StoreError> {
        let data = encode("action link", link)?;
        self.exec(
            "INSERT INTO action_links (hash, expires_at, data) VALUES (?1, ?2, ?3)
             ON CONFLICT(hash) DO UPDATE SET data = excluded.data",
            params![hash, link.expires_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn prune_webhook_records(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let at = before.as_millis();
        let deliveries = self.exec("DELETE FROM deliveries WHERE status <> 'pending' AND created_at < ?1", [at])?;
        let links = self.exec("DELETE FROM action_links WHERE expires_at < ?1", [at])?;
        Ok((deliveries + links) as u64)
    }

    fn delete_tokens(&mut self, kind: &str, subject: Option<&str>) -> Result<u64, StoreError> {
        let n = self.exec("DELETE FROM tokens WHERE kind = ?1 AND subject IS ?2", params![kind, subject])?;
        if n > 0 {
            self.notices.push(Notice::TokensRevoked { kind: kind.to_owned(), subject: subject.map(str::to_owned) });
        }
        Ok(n as u64)
    }

    fn delete_token(&mut self, hash: &str) -> Result<bool, StoreError> {
        let deleted = self.exec("DELETE FROM tokens WHERE hash = ?1", [hash])? > 0;
        if deleted {
            self.notices.push(Notice::TokenRevoked { hash: hash.to_owned() });
        }
        Ok(deleted)
    }

    fn put_blob(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.exec("INSERT OR IGNORE INTO blobs (sha256, bytes) VALUES (?1, ?2)", params![sha256, bytes])?;
        Ok(())
    }

    fn acquire_lease(&mut self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>, StoreError> {
        let now = Timestamp::now().as_millis();
        self.conn
            .prepare_cached(LEASE_SQL)
            .and_then(|mut st| st.query_row(params![name, holder, now + ttl_ms, now], |r| r.get(0)).optional())
            .map_err(db_err)
    }

    fn release_lease(&mut self, name: &str, holder: &str) -> Result<(), StoreError> {
        // Expired, not deleted: the fencing number keeps growing.
        self.exec("UPDATE leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2", [name, holder])?;
        Ok(())
    }

    fn idempotent_answer(&mut self, scope: &str, key: &str) -> Result<Option<IdempotentAnswer>, StoreError> {
        self.doc(
            "idempotent answer",
            "SELECT data FROM idempotency_keys WHERE scope = ?1 AND key = ?2",
            params![scope, key],
        )
    }

    fn put_idempotent_answer(&mut self, answer: &IdempotentAnswer) -> Result<(), StoreError> {
        let data = encode("idempotent answer", answer)?;
        self.exec_unique(
            "idempotency key",
            "INSERT INTO idempotency_keys (scope, key, created_at, data) VALUES (?1, ?2, ?3, ?4)",
            params![answer.scope, answer.key, answer.created_at.as_millis(), data],
        )?;
        Ok(())
    }

    fn prune_idempotent_answers(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        Ok(self.exec("DELETE FROM idempotency_keys WHERE created_at < ?1", [before.as_millis()])? as u64)
    }

    fn put_login_code(&mut self, hash: &str, expires: Timestamp) -> Result<(), StoreError> {
        self.exec("DELETE FROM login_codes WHERE expires_at < ?1", [Timestamp::now().as_millis()])?;
        self.exec(
            "INSERT OR REPLACE INTO login_codes (hash, expires_at) VALUES (?1, ?2)",
            params![hash, expires.as_millis()],
        )?;
        Ok(())
    }

    fn take_login_code(&mut self, hash: &str) -> Result<Option<Timestamp>, StoreError> {
        self.conn
            .prepare_cached("DELETE FROM login_codes WHERE hash = ?1 RETURNING expires_at")
            .and_then(|mut st| st.query_row([hash], |r| r.get(0)).optional())
            .map(|at| at.map(Timestamp::from_millis))
            .map_err(db_err)
    }

    fn put_merge_request(&mut self, request: &MergeRequest) -> Result<(), StoreError> {
        let data = encode("merge request", request)?;
        self.exec(
            "INSERT INTO merge_requests (id, created_at, done, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET done = excluded.done, data = excluded.data",
            params![request.id, request.created_at.as_millis(), request.outcome.is_some(), data],
        )?;
        Ok(())
    }

    fn delete_merge_request(&mut self, id: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM merge_requests WHERE id = ?1", [id])?;
        Ok(())
    }

    fn notify(&mut self, notice: Notice) -> Result<(), StoreError> {
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
        Ok(())
    }

    fn put_session_state(&mut self, id: &SessionId, state: &SessionState) -> Result<(), StoreError> {
        let data = encode("session state", state)?;
        self.exec(
            "INSERT INTO session_states (session_id, data) VALUES (?1, ?2)
             ON CONFLICT(session_id) DO UPDATE SET data = excluded.data",
            params![id.as_str(), data],
        )?;
        Ok(())
    }

    fn put_order(&mut self, order: &LauncherOrder) -> Result<(), StoreError> {
        let data = encode("launcher order", order)?;
        self.exec(
            "INSERT INTO launcher_orders (launcher_id, kind, subject, data) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(launcher_id, kind, subject) DO UPDATE SET data = excluded.data",
            params![order.launcher_id.as_str(), order.kind.as_str(), order.subject, data],
        )?;
        Ok(())
    }

    fn delete_order(&mut self, launcher: &LauncherId, kind: OrderKind, subject: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "DELETE FROM launcher_orders WHERE launcher_id = ?1 AND kind = ?2 AND subject = ?3",
            params![launcher.as_str(), kind.as_str(), subject],
        )?;
        Ok(n > 0)
    }
}
