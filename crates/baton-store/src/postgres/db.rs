//! [`StoreRead`] and [`StoreTx`] over one PostgreSQL connection.
//!
//! The same shape as the SQLite backend's: JSON documents beside the columns
//! queries filter and sort on. Every write transaction holds the store's global
//! advisory lock (taken by the writer before the first job), so the checks a job
//! makes before it writes (a claim, a session's next `seq`, a duplicate name)
//! hold until its commit, on every coordinator sharing the database.

use std::cell::RefCell;
use std::collections::HashMap;
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
use postgres::types::ToSql;
use postgres::{Client, Row, Statement};
use serde::de::DeserializeOwned;

use super::{NOW_MS, pg_err};
use crate::StoreError;
use crate::archive;
use crate::rows::{EVENT_COLUMNS, EventRow, decode, encode, token_kind};
use crate::store::{
    ActiveOf, ArchiveTotals, Chunk, ChunkVector, DocFilter, DocHit, EmbedJob, EmbedStatus, EventFilter, HourDelta,
    HourRow, Notice, QueuedRuns, StoreRead, StoreTx, TaskFilter,
};

/// A parameter list.
type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// A connection and its prepared statements.
pub(crate) struct Conn {
    /// The connection.
    pub(crate) client: Client,
    /// Statements prepared on it, by their text.
    statements: HashMap<String, Statement>,
}

impl Conn {
    pub(crate) fn new(client: Client) -> Self {
        Self { client, statements: HashMap::new() }
    }

    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(st) = self.statements.get(sql) {
            return Ok(st.clone());
        }
        let st = self.client.prepare(sql)?;
        self.statements.insert(sql.to_owned(), st.clone());
        Ok(st)
    }

    /// Runs a query (prepared once per connection).
    pub(crate) fn query(&mut self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        let st = self.statement(sql).map_err(pg_err)?;
        self.client.query(&st, params).map_err(pg_err)
    }

    /// Runs a statement; how many rows it changed.
    pub(crate) fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        let st = self.statement(sql).map_err(pg_err)?;
        self.client.execute(&st, params).map_err(pg_err)
    }
}

/// The rows of the small tables a job reads again and again (a claim or a plan
/// asks for the same agent, project and launchers once per run), kept for the
/// job: each is a round trip on PostgreSQL. A statement that writes one of
/// these tables forgets them all.
#[derive(Default)]
pub(super) struct Memo {
    agents: HashMap<String, Option<AgentDef>>,
    projects: HashMap<ProjectId, Option<Project>>,
    launchers: Option<Vec<Launcher>>,
}

impl Memo {
    /// Forgets everything when `sql` writes a table kept here.
    pub(super) fn before(&mut self, sql: &str) {
        let writes = !sql.trim_start().starts_with("SELECT");
        if writes && ["agents", "projects", "launchers"].iter().any(|t| sql.contains(t)) {
            *self = Memo::default();
        }
    }
}

/// Reads and writes through one connection, and what a write job appended and
/// noticed.
pub(crate) struct PgDb<'c> {
    /// The connection (queries need it mutably; reads take `&self`).
    pub(super) conn: RefCell<&'c mut Conn>,
    /// What a bulk write has gathered (see [`super::bulk`]); none unless asked.
    pub(super) bulk: Option<RefCell<super::bulk::Bulk>>,
    /// Reads kept for the job (see [`Memo`]).
    pub(super) memo: RefCell<Memo>,
    /// Events appended by the current job (published from memory after the commit).
    pub(crate) appended: Vec<Event>,
    /// Notices sent by the current job.
    pub(crate) notices: Vec<Notice>,
}

impl<'c> PgDb<'c> {
    pub(crate) fn new(conn: &'c mut Conn) -> Self {
        Self {
            conn: RefCell::new(conn),
            bulk: None,
            memo: RefCell::default(),
            appended: Vec::new(),
            notices: Vec::new(),
        }
    }

    pub(super) fn rows(&self, sql: &str, params: Params<'_>) -> Result<Vec<Row>, StoreError> {
        self.before(sql)?;
        self.conn.borrow_mut().query(sql, params)
    }

    pub(super) fn row(&self, sql: &str, params: Params<'_>) -> Result<Option<Row>, StoreError> {
        Ok(self.rows(sql, params)?.into_iter().next())
    }

    pub(super) fn exec(&self, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
        self.before(sql)?;
        self.conn.borrow_mut().execute(sql, params)
    }

    fn doc<T: DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Option<T>, StoreError> {
        self.row(sql, params)?.map(|r| decode(what, r.get::<_, &str>(0))).transpose()
    }

    fn docs<T: DeserializeOwned>(
        &self,
        what: &'static str,
        sql: &str,
        params: Params<'_>,
    ) -> Result<Vec<T>, StoreError> {
        self.rows(sql, params)?.iter().map(|r| decode(what, r.get::<_, &str>(0))).collect()
    }

    pub(super) fn events_where(&self, clause: &str, params: Params<'_>) -> Result<Vec<Event>, StoreError> {
        let sql = format!("SELECT {EVENT_COLUMNS} FROM events WHERE {clause}");
        self.rows(&sql, params)?.iter().map(|r| event_row(r).into_event()).collect()
    }

    fn tokens_where(&self, clause: &str, params: Params<'_>) -> Result<Vec<TokenRecord>, StoreError> {
        let sql = format!("SELECT hash, kind, subject, created_at, id, name FROM tokens WHERE {clause}");
        Ok(self
            .rows(&sql, params)?
            .iter()
            .filter_map(|r| {
                Some(TokenRecord {
                    hash: r.get(0),
                    kind: token_kind(r.get(1))?,
                    subject: r.get(2),
                    created_at: Timestamp::from_millis(r.get(3)),
                    id: r.get(4),
                    name: r.get(5),
                })
            })
            .collect())
    }

    /// Fails with `Duplicate` when `sql` (an `INSERT … ON CONFLICT DO NOTHING`)
    /// inserted nothing.
    fn insert_new(&self, what: String, sql: &str, params: Params<'_>) -> Result<(), StoreError> {
        match self.exec(sql, params)? {
            0 => Err(StoreError::Duplicate { what }),
            _ => Ok(()),
        }
    }
}

/// Reads the columns of [`EVENT_COLUMNS`].
pub(crate) fn event_row(r: &Row) -> EventRow {
    EventRow {
        id: r.get(0),
        ts: r.get(1),
        session_id: r.get(2),
        seq: r.get(3),
        run_id: r.get(4),
        task_id: r.get(5),
        kind: r.get(6),
        data: r.get(7),
        raw: r.get(8),
    }
}

/// The text a document is searched in, by weight: its name's words, its tags,
/// its content. Split into words here (as the SQLite backend's tokenizer does), so
/// `notes/api` is found by `api`.
fn search_text(doc: &Document) -> [String; 3] {
    let words = |text: &str| crate::search::words_all(text).join(" ");
    [words(&doc.name), words(&doc.tags.join(" ")), words(doc.content.as_deref().unwrap_or(""))]
}

fn limit(n: u32) -> i64 {
    i64::from(n)
}

impl StoreRead for PgDb<'_> {
    fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError> {
        if let Some(kept) = self.memo.borrow().projects.get(id) {
            return Ok(kept.clone());
        }
        let project: Option<Project> =
            self.doc("project", "SELECT data FROM projects WHERE id = $1", &[&id.as_str()])?;
        self.memo.borrow_mut().projects.insert(id.clone(), project.clone());
        Ok(project)
    }

    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError> {
        self.doc("project", "SELECT data FROM projects WHERE name = $1", &[&name])
    }

    fn project_by_path(&self, path: &str) -> Result<Option<Project>, StoreError> {
        self.doc("project", "SELECT data FROM projects WHERE path = $1", &[&path])
    }

    fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.docs("project", "SELECT data FROM projects ORDER BY created_at, id", &[])
    }

    fn agent(&self, name: &str) -> Result<Option<AgentDef>, StoreError> {
        if let Some(kept) = self.memo.borrow().agents.get(name) {
            return Ok(kept.clone());
        }
        let agent: Option<AgentDef> = self.doc("agent", "SELECT data FROM agents WHERE name = $1", &[&name])?;
        self.memo.borrow_mut().agents.insert(name.to_owned(), agent.clone());
        Ok(agent)
    }

    fn agents(&self) -> Result<Vec<AgentDef>, StoreError> {
        self.docs("agent", "SELECT data FROM agents ORDER BY name", &[])
    }

    fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError> {
        if let Some(t) = self.bulk_task(id) {
            return Ok(Some(t));
        }
        self.doc("task", "SELECT data FROM tasks WHERE id = $1", &[&id.as_str()])
    }

    fn tasks_by_id(&self, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        let ids: Vec<&str> = ids.iter().map(|t| t.as_str()).collect();
        self.docs("task", "SELECT data FROM tasks WHERE id = ANY($1)", &[&ids])
    }

    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError> {
        let project = filter.project.as_ref().map(|p| p.as_str());
        let parent = filter.parent_session.as_ref().map(|s| s.as_str());
        let statuses: Vec<&str> = filter.statuses.iter().map(|s| s.as_str()).collect();
        let before = filter.before.as_ref().map(|t| t.as_str());
        let mut sql = String::from(
            "SELECT data FROM tasks WHERE ($1::text IS NULL OR project_id = $1)
             AND ($2::text IS NULL OR parent_session_id = $2) AND (cardinality($3::text[]) = 0 OR status = ANY($3))
             AND ($4::text IS NULL OR (created_at, n) < (SELECT created_at, n FROM tasks WHERE id = $4))
             ORDER BY created_at DESC, n DESC",
        );
        if let Some(n) = filter.limit {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        self.docs("task", &sql, &[&project, &parent, &statuses, &before])
    }

    fn dependents(&self, id: &TaskId) -> Result<Vec<Task>, StoreError> {
        self.docs(
            "task",
            "SELECT t.data FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = $1 ORDER BY t.created_at, t.n",
            &[&id.as_str()],
        )
    }

    fn hours(&self, since_hour: i64, project: Option<&ProjectId>) -> Result<Vec<HourRow>, StoreError> {
        let rows = self.rows(
            "SELECT hour, project_id, agent, succeeded, failed, cancelled, cost_usd FROM hours
             WHERE hour >= $1 AND ($2::text IS NULL OR project_id = $2) ORDER BY hour, project_id, agent",
            &[&since_hour, &project.map(|p| p.as_str())],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| {
                let n = [r.get::<_, i64>(3), r.get::<_, i64>(4), r.get::<_, i64>(5)];
                crate::rows::hour_row(r.get(0), r.get(1), r.get(2), n, r.get(6))
            })
            .collect())
    }

    fn memory_blocks(&self, owner: &str) -> Result<Vec<MemoryBlock>, StoreError> {
        self.docs(
            "memory block",
            "SELECT DISTINCT ON (label) data FROM memory_blocks WHERE owner = $1 ORDER BY label, version DESC",
            &[&owner],
        )
    }

    fn memory_versions(&self, owner: &str, label: &str) -> Result<Vec<MemoryBlock>, StoreError> {
        self.docs(
            "memory block",
            "SELECT data FROM memory_blocks WHERE owner = $1 AND label = $2 ORDER BY version DESC",
            &[&owner, &label],
        )
    }

    fn journal(&self, agent: &str, limit: u32) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = self.rows(
            "SELECT seq, data FROM journal WHERE agent = $1 ORDER BY seq DESC LIMIT $2",
            &[&agent, &i64::from(limit)],
        )?;
        rows.iter()
            .map(|r| decode::<JournalEntry>("journal entry", r.get(1)).map(|e| JournalEntry { seq: r.get(0), ..e }))
            .collect()
    }

    fn message(&self, id: &str) -> Result<Option<AgentMessage>, StoreError> {
        self.doc("message", "SELECT data FROM agent_messages WHERE id = $1", &[&id])
    }

    fn messages(&self, to: &str, states: &[MessageState], limit: u32) -> Result<Vec<AgentMessage>, StoreError> {
        let all = self.docs::<AgentMessage>(
            "message",
            "SELECT data FROM agent_messages WHERE to_agent = $1 ORDER BY created_at, id",
            &[&to],
        )?;
        Ok(all.into_iter().filter(|m| states.is_empty() || states.contains(&m.state)).take(limit as usize).collect())
    }

    fn lead(&self, project: &ProjectId) -> Result<Option<LeadRecord>, StoreError> {
        self.doc("lead", "SELECT data FROM leads WHERE project_id = $1", &[&project.as_str()])
    }

    fn chat_inbound_pending(&self, limit: u32) -> Result<Vec<ChatInbound>, StoreError> {
        self.docs(
            "chat inbound",
            "SELECT data FROM chat_inbound WHERE state = 'pending' ORDER BY received_at, key LIMIT $1",
            &[&i64::from(limit)],
        )
    }

    fn chat_thread(&self, key: &str) -> Result<Option<ChatThread>, StoreError> {
        self.doc("chat thread", "SELECT data FROM chat_threads WHERE key = $1", &[&key])
    }

    fn chat_threads_of_task(&self, task: &TaskId) -> Result<Vec<ChatThread>, StoreError> {
        self.docs("chat thread", "SELECT data FROM chat_threads WHERE task_id = $1 ORDER BY key", &[&task.as_str()])
    }

    fn chat_threads_open(&self) -> Result<Vec<ChatThread>, StoreError> {
        self.docs("chat thread", "SELECT data FROM chat_threads WHERE open ORDER BY key", &[])
    }

    fn chat_posts_pending(&self, limit: u32) -> Result<Vec<ChatPost>, StoreError> {
        self.docs(
            "chat post",
            "SELECT data FROM chat_posts WHERE state = 'pending' ORDER BY created_at, id LIMIT $1",
            &[&i64::from(limit)],
        )
    }

    fn chat_post(&self, id: &str) -> Result<Option<ChatPost>, StoreError> {
        self.doc("chat post", "SELECT data FROM chat_posts WHERE id = $1", &[&id])
    }

    fn permission(&self, id: &str) -> Result<Option<PermissionRequest>, StoreError> {
        self.doc("permission", "SELECT data FROM permissions WHERE id = $1", &[&id])
    }

    fn schedules(&self) -> Result<Vec<Schedule>, StoreError> {
        self.docs("schedule", "SELECT data FROM schedules ORDER BY next_at, id", &[])
    }

    fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError> {
        self.doc("schedule", "SELECT data FROM schedules WHERE id = $1", &[&id])
    }

    fn schedules_due(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError> {
        self.docs(
            "schedule",
            "SELECT data FROM schedules WHERE next_at <= $1 ORDER BY next_at, id",
            &[&now.as_millis()],
        )
    }

    fn triggers(&self) -> Result<Vec<Trigger>, StoreError> {
        self.docs("trigger", "SELECT data FROM triggers ORDER BY name", &[])
    }

    fn trigger(&self, name: &str) -> Result<Option<Trigger>, StoreError> {
        self.doc("trigger", "SELECT data FROM triggers WHERE name = $1", &[&name])
    }

    fn trigger_hit(&self, trigger: &str, webhook_id: &str) -> Result<Option<TriggerHit>, StoreError> {
        self.doc(
            "trigger hit",
            "SELECT data FROM trigger_hits WHERE trigger_name = $1 AND webhook_id = $2",
            &[&trigger, &webhook_id],
        )
    }

    fn trigger_hits_since(&self, trigger: &str, since: Timestamp) -> Result<u64, StoreError> {
        let row = self.row(
            "SELECT COUNT(*) FROM trigger_hits WHERE trigger_name = $1 AND at >= $2",
            &[&trigger, &since.as_millis()],
        )?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn leads(&self) -> Result<Vec<LeadRecord>, StoreError> {
        self.docs("lead", "SELECT data FROM leads ORDER BY project_id", &[])
    }

    fn oldest_queued_run(&self, agent: &str) -> Result<Option<Timestamp>, StoreError> {
        let row = self.row("SELECT MIN(created_at) FROM runs WHERE agent = $1 AND status = 'queued'", &[&agent])?;
        Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)).map(Timestamp::from_millis))
    }

    fn count_in_status(&self, status: TaskStatus) -> Result<u64, StoreError> {
        let row = self.row("SELECT COUNT(*) FROM tasks WHERE status = $1", &[&status.as_str()])?;
        Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
    }

    fn hourly_queue(&self, since_hour: i64) -> Result<Vec<(i64, u64)>, StoreError> {
        let rows = self.rows("SELECT hour, queued FROM hourly_queue WHERE hour >= $1 ORDER BY hour", &[&since_hour])?;
        Ok(rows.iter().map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1) as u64)).collect())
    }

    fn task_counts(&self, project: Option<&ProjectId>) -> Result<Vec<(TaskStatus, u64)>, StoreError> {
        let rows = self.rows(
            "SELECT status, COUNT(*) FROM tasks WHERE $1::text IS NULL OR project_id = $1 GROUP BY status",
            &[&project.map(|p| p.as_str())],
        )?;
        Ok(rows
            .iter()
            .filter_map(|r| TaskStatus::from_str(r.get(0)).ok().map(|s| (s, r.get::<_, i64>(1) as u64)))
            .collect())
    }

    fn spend(&self, project: Option<&ProjectId>) -> Result<Vec<Spend>, StoreError> {
        let rows = self.rows(
            "SELECT project_id, agent, input_tokens, output_tokens, cost_usd
             FROM spend WHERE $1::text IS NULL OR project_id = $1 ORDER BY project_id, agent",
            &[&project.map(|p| p.as_str())],
        )?;
        rows.iter()
            .map(|r| {
                Ok(Spend {
                    project_id: ProjectId::from_str(r.get(0)).map_err(|_| StoreError::Corrupt {
                        what: "session",
                        source: serde::de::Error::custom("malformed project id"),
                    })?,
                    agent: r.get(1),
                    usage: Usage {
                        input_tokens: r.get::<_, Option<i64>>(2).unwrap_or(0) as u64,
                        output_tokens: r.get::<_, Option<i64>>(3).unwrap_or(0) as u64,
                        cost_usd: r.get::<_, Option<f64>>(4).unwrap_or(0.0),
                    },
                })
            })
            .collect()
    }

    fn document(&self, name: &str) -> Result<Option<Document>, StoreError> {
        self.doc("document", "SELECT data FROM documents WHERE name = $1", &[&name])
    }

    fn document_version(&self, name: &str, version: u32) -> Result<Option<Document>, StoreError> {
        self.doc(
            "document",
            "SELECT data FROM document_versions WHERE name = $1 AND version = $2",
            &[&name, &i64::from(version)],
        )
    }

    fn document_versions(&self, name: &str) -> Result<Vec<DocVersion>, StoreError> {
        let docs: Vec<Document> = self.docs(
            "document",
            "SELECT data FROM document_versions WHERE name = $1 ORDER BY version DESC",
            &[&name],
        )?;
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
        let query = match &filter.query {
            Some(text) => {
                let words = crate::search::words(text);
                let Some((last, rest)) = words.split_last() else { return Ok(Vec::new()) };
                let mut q: String = rest.iter().map(|w| format!("{w} & ")).collect();
                q.push_str(&format!("{last}:*"));
                Some(q)
            }
            None => None,
        };
        let project = filter.project.as_ref().map(|p| p.as_str());
        let (select, order) = match query {
            Some(_) => (
                "d.data, ts_rank_cd(d.search, q)::FLOAT8,
                 ts_headline('simple', COALESCE((d.data::jsonb)->>'content', ''), q,
                     'StartSel=[, StopSel=], MaxWords=16, MinWords=4, ShortWord=0, MaxFragments=1, FragmentDelimiter=…')",
                "ts_rank_cd(d.search, q) DESC, d.updated_at DESC",
            ),
            None => ("d.data, NULL::FLOAT8, NULL::TEXT", "d.updated_at DESC"),
        };
        let sql = format!(
            "SELECT {select} FROM documents d, (SELECT to_tsquery('simple', $1) AS q) query
             WHERE ($1::text IS NULL OR d.search @@ q)
             AND (cardinality($2::text[]) = 0 OR (d.data::jsonb)->'tags' @> to_jsonb($2::text[]))
             AND ($3::text IS NULL OR d.project_id = $3)
             AND ($4::text IS NULL OR starts_with(d.name, $4))
             AND ($5::text IS NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements((d.data::jsonb)->'relations') r WHERE r->>'target' = $5))
             ORDER BY {order} LIMIT $6"
        );
        let query = query.as_deref();
        let tags: Vec<&str> = filter.tags.iter().map(String::as_str).collect();
        let rows = self.rows(
            &sql,
            &[&query, &tags, &project, &filter.prefix.as_deref(), &filter.related_to.as_deref(), &limit(filter.limit)],
        )?;
        rows.iter()
            .map(|r| Ok(DocHit { doc: decode("document", r.get::<_, &str>(0))?, score: r.get(1), snippet: r.get(2) }))
            .collect()
    }

    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.doc("session", "SELECT data FROM sessions WHERE id = $1", &[&id.as_str()])
    }

    fn session_by_agent_session(&self, agent_session_id: &str) -> Result<Option<Session>, StoreError> {
        self.doc(
            "session",
            "SELECT data FROM sessions WHERE agent_session_id = $1 ORDER BY created_at DESC, n DESC LIMIT 1",
            &[&agent_session_id],
        )
    }

    fn sessions_of_task(&self, id: &TaskId) -> Result<Vec<Session>, StoreError> {
        self.docs("session", "SELECT data FROM sessions WHERE task_id = $1 ORDER BY created_at, n", &[&id.as_str()])
    }

    fn sessions(&self, n: u32) -> Result<Vec<Session>, StoreError> {
        self.docs("session", "SELECT data FROM sessions ORDER BY created_at DESC, n DESC LIMIT $1", &[&limit(n)])
    }

    fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError> {
        self.doc("run", "SELECT data FROM runs WHERE id = $1", &[&id.as_str()])
    }

    fn runs_of_session(&self, id: &SessionId) -> Result<Vec<Run>, StoreError> {
        self.docs("run", "SELECT data FROM runs WHERE session_id = $1 ORDER BY created_at, n", &[&id.as_str()])
    }

    fn runs_in_status(&self, status: RunStatus, n: u32) -> Result<Vec<Run>, StoreError> {
        self.docs(
            "run",
            "SELECT data FROM runs WHERE status = $1 ORDER BY created_at, n LIMIT $2",
            &[&status.as_str(), &limit(n)],
        )
    }

    fn active_runs_of_launcher(&self, id: &LauncherId) -> Result<Vec<Run>, StoreError> {
        self.docs(
            "run",
            "SELECT data FROM runs WHERE launcher_id = $1 AND status IN ('claimed', 'running') ORDER BY created_at, n",
            &[&id.as_str()],
        )
    }

    fn queued_runs(&self, q: &QueuedRuns) -> Result<Vec<Run>, StoreError> {
        let projects: Vec<&str> = q.not_projects.iter().map(|p| p.as_str()).collect();
        let agents: Vec<&str> = q.not_agents.iter().map(String::as_str).collect();
        self.docs(
            "run",
            "SELECT data FROM runs WHERE status = 'queued'
               AND ($1::TEXT IS NULL OR (created_at, n) > (SELECT created_at, n FROM runs WHERE id = $1))
               AND NOT (project_id = ANY($2)) AND NOT (agent = ANY($3))
             ORDER BY created_at, n LIMIT $4",
            &[&q.after.as_ref().map(|r| r.as_str()), &projects, &agents, &limit(q.limit)],
        )
    }

    fn active_run_counts(&self, launchers: &[LauncherId]) -> Result<Vec<u32>, StoreError> {
        let ids: Vec<&str> = launchers.iter().map(|l| l.as_str()).collect();
        let counts: HashMap<String, i64> = self
            .rows(
                "SELECT launcher_id, COUNT(*) FROM runs
                 WHERE launcher_id = ANY($1) AND status IN ('claimed', 'running') GROUP BY launcher_id",
                &[&ids],
            )?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        Ok(ids.iter().map(|id| counts.get(*id).copied().unwrap_or(0) as u32).collect())
    }

    fn active_run_count(&self, of: ActiveOf<'_>) -> Result<u32, StoreError> {
        let (sql, key) = match of {
            ActiveOf::Project(p) => {
                ("SELECT COUNT(*) FROM runs WHERE project_id = $1 AND status IN ('claimed', 'running')", p.as_str())
            }
            ActiveOf::Agent(a) => {
                ("SELECT COUNT(*) FROM runs WHERE agent = $1 AND status IN ('claimed', 'running')", a)
            }
            ActiveOf::Launcher(l) => {
                ("SELECT COUNT(*) FROM runs WHERE launcher_id = $1 AND status IN ('claimed', 'running')", l.as_str())
            }
            ActiveOf::QueuedOfAgent(a) => ("SELECT COUNT(*) FROM runs WHERE agent = $1 AND status = 'queued'", a),
        };
        Ok(self.row(sql, &[&key])?.map_or(0, |r| r.get::<_, i64>(0) as u32))
    }

    fn project_spent(&self, project: &ProjectId) -> Result<f64, StoreError> {
        let row = self.row("SELECT cost_usd FROM project_spend WHERE project_id = $1", &[&project.as_str()])?;
        Ok(row.map_or(0.0, |r| r.get(0)))
    }

    fn launcher(&self, id: &LauncherId) -> Result<Option<Launcher>, StoreError> {
        self.doc("launcher", "SELECT data FROM launchers WHERE id = $1", &[&id.as_str()])
    }

    fn launchers(&self) -> Result<Vec<Launcher>, StoreError> {
        if let Some(kept) = &self.memo.borrow().launchers {
            return Ok(kept.clone());
        }
        let launchers: Vec<Launcher> = self.docs("launcher", "SELECT data FROM launchers ORDER BY id", &[])?;
        self.memo.borrow_mut().launchers = Some(launchers.clone());
        Ok(launchers)
    }

    fn ids_with_prefix(&self, kind: &str, prefix: &str, n: u32) -> Result<Vec<String>, StoreError> {
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
        let sql = format!("SELECT id FROM {table} WHERE starts_with(id, $1) ORDER BY id LIMIT $2");
        Ok(self.rows(&sql, &[&prefix, &limit(n)])?.iter().map(|r| r.get(0)).collect())
    }

    fn session_events(&self, id: &SessionId, after_seq: i64, n: u32) -> Result<Vec<Event>, StoreError> {
        let live = self.events_where(
            "session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
            &[&id.as_str(), &after_seq, &limit(n)],
        )?;
        archive::merged(self, live, archive::Scope::SessionSeq(id.as_str()), after_seq, n, |_| true)
    }

    fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError> {
        let session = filter.session.as_ref().map(|s| s.as_str());
        let task = filter.task.as_ref().map(|t| t.as_str());
        let kinds: Vec<&str> = filter.kinds.iter().map(|k| k.as_str()).collect();
        let live = self.events_where(
            "id > $1 AND ($2::text IS NULL OR session_id = $2) AND ($3::text IS NULL OR task_id = $3)
             AND (cardinality($4::text[]) = 0 OR kind = ANY($4)) ORDER BY id LIMIT $5",
            &[&filter.after, &session, &task, &kinds, &limit(filter.limit)],
        )?;
        match archive::scope_of(filter) {
            Some(scope) => {
                archive::merged(self, live, scope, filter.after, filter.limit, |e| archive::keeps(filter, e))
            }
            None => Ok(live),
        }
    }

    fn last_event_id(&self) -> Result<i64, StoreError> {
        Ok(self.row("SELECT COALESCE(MAX(id), 0)::BIGINT FROM events", &[])?.map_or(0, |r| r.get(0)))
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

    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens_where("hash = $1", &[&hash])?.pop())
    }

    fn tokens(&self, kind: TokenKind) -> Result<Vec<TokenRecord>, StoreError> {
        self.tokens_where("kind = $1 ORDER BY created_at, hash", &[&kind.as_str()])
    }

    fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(self.tokens_where("id = $1", &[&id])?.pop())
    }

    fn session_state(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError> {
        self.doc("session state", "SELECT data FROM session_states WHERE session_id = $1", &[&id.as_str()])
    }

    fn orders_of_launcher(&self, id: &LauncherId) -> Result<Vec<LauncherOrder>, StoreError> {
        let mut orders: Vec<LauncherOrder> =
            self.docs("launcher order", "SELECT data FROM launcher_orders WHERE launcher_id = $1", &[&id.as_str()])?;
        orders.sort_by_key(|o| o.created_at);
        Ok(orders)
    }

    fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.row("SELECT bytes FROM blobs WHERE sha256 = $1", &[&sha256])?.map(|r| r.get(0)))
    }

    fn pending_merges(&self) -> Result<Vec<MergeRequest>, StoreError> {
        self.docs("merge request", "SELECT data FROM merge_requests WHERE NOT done ORDER BY created_at, id", &[])
    }

    fn merge_request(&self, id: &str) -> Result<Option<MergeRequest>, StoreError> {
        self.doc("merge request", "SELECT data FROM merge_requests WHERE id = $1", &[&id])
    }

    fn clock(&self) -> Result<Timestamp, StoreError> {
        let sql = format!("SELECT {NOW_MS}");
        Ok(Timestamp::from_millis(self.row(&sql, &[])?.map_or(0, |r| r.get(0))))
    }

    fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError> {
        self.doc("plan", "SELECT data FROM plans WHERE id = $1", &[&id.as_str()])
    }

    fn plans(&self, n: u32) -> Result<Vec<Plan>, StoreError> {
        self.docs("plan", "SELECT data FROM plans ORDER BY created_at DESC, n DESC LIMIT $1", &[&limit(n)])
    }

    fn orchestration(&self, id: &OrchestrationId) -> Result<Option<Orchestration>, StoreError> {
        self.doc("orchestration", "SELECT data FROM orchestrations WHERE id = $1", &[&id.as_str()])
    }

    fn orchestrations(&self, n: u32) -> Result<Vec<Orchestration>, StoreError> {
        self.docs(
            "orchestration",
            "SELECT data FROM orchestrations ORDER BY created_at DESC, n DESC LIMIT $1",
            &[&limit(n)],
        )
    }

    fn heartbeats(&self, project: &ProjectId, n: u32) -> Result<Vec<LeadHeartbeat>, StoreError> {
        self.docs(
            "heartbeat",
            "SELECT data FROM heartbeats WHERE project_id = $1 ORDER BY id DESC LIMIT $2",
            &[&project.as_str(), &limit(n)],
        )
    }

    fn pool_states(&self) -> Result<Vec<PoolState>, StoreError> {
        self.docs("pool", "SELECT data FROM pools ORDER BY name", &[])
    }

    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError> {
        self.docs("webhook", "SELECT data FROM webhooks ORDER BY created_at, id", &[])
    }

    fn webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError> {
        self.doc("webhook", "SELECT data FROM webhooks WHERE id = $1", &[&id])
    }

    fn deliveries(&self, webhook: &str, n: u32) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "delivery",
            "SELECT data FROM deliveries WHERE webhook_id = $1 ORDER BY seq DESC LIMIT $2",
            &[&webhook, &limit(n)],
        )
    }

    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError> {
        self.doc("delivery", "SELECT data FROM deliveries WHERE id = $1", &[&id])
    }

    fn delivery_counts(&self, webhook: &str) -> Result<(u32, u32), StoreError> {
        let row = self.row(
            "SELECT COUNT(*) FILTER (WHERE status = 'pending'), COUNT(*) FILTER (WHERE status = 'failed')
             FROM deliveries WHERE webhook_id = $1",
            &[&webhook],
        )?;
        Ok(row.map_or((0, 0), |r| (r.get::<_, i64>(0) as u32, r.get::<_, i64>(1) as u32)))
    }

    fn next_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.docs(
            "delivery",
            "SELECT d.data FROM webhooks w JOIN deliveries d ON d.seq = (
                 SELECT seq FROM deliveries WHERE webhook_id = w.id AND status = 'pending' ORDER BY seq LIMIT 1)",
            &[],
        )
    }

    fn action_link(&self, hash: &str) -> Result<Option<ActionLink>, StoreError> {
        self.doc("action link", "SELECT data FROM action_links WHERE hash = $1", &[&hash])
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
        self.doc("workset", "SELECT data FROM worksets WHERE name = $1", &[&name])
    }

    fn worksets(&self) -> Result<Vec<Workset>, StoreError> {
        self.docs("workset", "SELECT data FROM worksets ORDER BY name", &[])
    }

    fn landings(&self) -> Result<Vec<Landing>, StoreError> {
        self.docs("landing", "SELECT data FROM landings ORDER BY task_id", &[])
    }
}

impl StoreTx for PgDb<'_> {
    fn put_project(&mut self, p: &Project) -> Result<(), StoreError> {
        let taken = self.row(
            "SELECT 1 FROM projects WHERE id <> $1 AND (name = $2 OR path = $3)",
            &[&p.id.as_str(), &p.name, &p.path],
        )?;
        if taken.is_some() {
            return Err(StoreError::Duplicate { what: format!("a project named {:?} or at {:?}", p.name, p.path) });
        }
        let data = encode("project", p)?;
        self.exec(
            "INSERT INTO projects (id, name, path, created_at, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, path = excluded.path, data = excluded.data",
            &[&p.id.as_str(), &p.name, &p.path, &p.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn put_agent(&mut self, a: &AgentDef) -> Result<(), StoreError> {
        let data = encode("agent", a)?;
        self.exec(
            "INSERT INTO agents (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            &[&a.name, &data],
        )?;
        Ok(())
    }

    fn delete_agent(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM agents WHERE name = $1", &[&name])? > 0)
    }

    fn insert_task(&mut self, t: &Task) -> Result<(), StoreError> {
        if self.bulk_insert(t) {
            return Ok(());
        }
        let data = encode("task", t)?;
        self.insert_new(
            format!("task {}", t.id),
            "INSERT INTO tasks (id, project_id, status, parent_session_id, created_at, data)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &t.id.as_str(),
                &t.project_id.as_str(),
                &t.status.as_str(),
                &t.parent_session_id.as_ref().map(|s| s.as_str()),
                &t.created_at.as_millis(),
                &data,
            ],
        )?;
        for dep in &t.depends_on {
            self.exec(
                "INSERT INTO task_deps (task_id, depends_on) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                &[&t.id.as_str(), &dep.as_str()],
            )?;
        }
        Ok(())
    }

    fn put_task(&mut self, t: &Task) -> Result<(), StoreError> {
        if self.bulk_put(t) {
            return Ok(());
        }
        let data = encode("task", t)?;
        self.exec(
            "UPDATE tasks SET status = $2, data = $3, parent_session_id = $4 WHERE id = $1",
            &[&t.id.as_str(), &t.status.as_str(), &data, &t.parent_session_id.as_ref().map(|s| s.as_str())],
        )?;
        Ok(())
    }

    fn insert_session(&mut self, s: &Session) -> Result<(), StoreError> {
        if self.bulk_session(s, true) {
            return Ok(());
        }
        self.put_session(s)
    }

    fn put_session(&mut self, s: &Session) -> Result<(), StoreError> {
        if self.bulk_session(s, false) {
            return Ok(());
        }
        let data = encode("session", s)?;
        self.exec(
            "INSERT INTO sessions (id, task_id, project_id, agent, agent_session_id, input_tokens, output_tokens, cost_usd, created_at, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
             ON CONFLICT (id) DO UPDATE SET project_id = excluded.project_id, agent = excluded.agent,
                 agent_session_id = excluded.agent_session_id, input_tokens = excluded.input_tokens,
                 output_tokens = excluded.output_tokens, cost_usd = excluded.cost_usd, data = excluded.data",
            &[
                &s.id.as_str(),
                &s.task_id.as_str(),
                &s.project_id.as_str(),
                &s.agent,
                &s.agent_session_id,
                &(s.usage.input_tokens as i64),
                &(s.usage.output_tokens as i64),
                &s.usage.cost_usd,
                &s.created_at.as_millis(),
                &data,
            ],
        )?;
        Ok(())
    }

    fn put_run(&mut self, r: &Run) -> Result<(), StoreError> {
        if self.bulk_run(r) {
            return Ok(());
        }
        let data = encode("run", r)?;
        self.exec(
            "INSERT INTO runs (id, session_id, status, launcher_id, created_at, project_id, agent, data)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, launcher_id = excluded.launcher_id,
                 agent = excluded.agent, data = excluded.data",
            &[
                &r.id.as_str(),
                &r.session_id.as_str(),
                &r.status.as_str(),
                &r.launcher_id.as_ref().map(|l| l.as_str()),
                &r.created_at.as_millis(),
                &r.project_id.as_str(),
                &r.agent.as_str(),
                &data,
            ],
        )?;
        Ok(())
    }

    fn put_launcher(&mut self, l: &Launcher) -> Result<(), StoreError> {
        let data = encode("launcher", l)?;
        self.exec(
            "INSERT INTO launchers (id, data) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &[&l.id.as_str(), &data],
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
        // Gathered: a global event, or one of a session made in this transaction.
        let gathered = match session {
            None => self.bulk.is_some().then_some(None),
            Some(s) => self.bulk_seq(s).map(|seq| Some((s, seq))),
        };
        if let Some(numbered) = gathered {
            return self
                .bulk_event(numbered, run, task, event)?
                .ok_or_else(|| StoreError::Database("not gathering".into()));
        }
        let ts = event.ts.unwrap_or_else(Timestamp::now);
        let data = encode("event data", &event.data)?;
        let session_id = session.map(|s| s.as_str());
        // While gathering, the id comes from the block, in order with the
        // gathered events; none of those is a session's, so the session's
        // numbering below does not need them written first.
        let id = self.bulk_id()?;
        // Under the writer's lock: no other transaction numbers this session now.
        let sql = "INSERT INTO events (id, ts, session_id, seq, run_id, task_id, kind, data, raw)
             VALUES (COALESCE($8, nextval(pg_get_serial_sequence('events', 'id'))), $1, $2, CASE WHEN $2::text IS NULL THEN NULL
                 ELSE (SELECT COALESCE(MAX(seq), 0) + 1 FROM events WHERE session_id = $2) END, $3, $4, $5, $6, $7)
             RETURNING id, seq";
        let params: Params<'_> = &[
            &ts.as_millis(),
            &session_id,
            &run.map(|r| r.as_str()),
            &task.map(|t| t.as_str()),
            &event.kind.as_str(),
            &data,
            &event.raw,
            &id,
        ];
        let row = match id {
            Some(_) => self.conn.borrow_mut().query(sql, params)?.into_iter().next(),
            None => self.row(sql, params)?,
        };
        let row = row.ok_or_else(|| StoreError::Database("an insert returned no row".into()))?;
        let stored = Event {
            id: row.get(0),
            ts,
            session_id: session.cloned(),
            seq: row.get(1),
            run_id: run.cloned(),
            task_id: task.cloned(),
            kind: event.kind,
            data: event.data,
            raw: event.raw,
        };
        self.appended.push(stored.clone());
        Ok(stored)
    }

    /// One statement for a whole batch (a launcher's batch is hundreds of
    /// events): ids are drawn in the batch's order, `seq` numbers follow on.
    fn append_events(
        &mut self,
        session: &SessionId,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, StoreError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let now = Timestamp::now();
        let ts: Vec<i64> = events.iter().map(|e| e.ts.unwrap_or(now).as_millis()).collect();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        let data: Vec<String> = events.iter().map(|e| encode("event data", &e.data)).collect::<Result<_, _>>()?;
        let raw: Vec<Option<&str>> = events.iter().map(|e| e.raw.as_deref()).collect();
        // Numbered by the sequence: after every id drawn before.
        self.give_up_ids();
        let rows = self.rows(
            "INSERT INTO events (ts, session_id, seq, run_id, task_id, kind, data, raw)
             SELECT b.ts, $1, top.seq + b.n, $2, $3, b.kind, b.data, b.raw
             FROM unnest($4::BIGINT[], $5::TEXT[], $6::TEXT[], $7::TEXT[]) WITH ORDINALITY AS b(ts, kind, data, raw, n),
                  (SELECT COALESCE(MAX(seq), 0) AS seq FROM events WHERE session_id = $1) top
             ORDER BY b.n
             RETURNING id, seq",
            &[&session.as_str(), &run.map(|r| r.as_str()), &task.map(|t| t.as_str()), &ts, &kinds, &data, &raw],
        )?;
        let mut numbered: Vec<(i64, i64)> = rows.iter().map(|r| (r.get::<_, i64>(1), r.get::<_, i64>(0))).collect();
        numbered.sort_unstable();
        if numbered.len() != events.len() {
            return Err(StoreError::Database("a batch insert stored a different number of events".into()));
        }
        let stored: Vec<Event> = events
            .into_iter()
            .zip(numbered)
            .zip(ts)
            .map(|((e, (seq, id)), ts)| Event {
                id,
                ts: Timestamp::from_millis(ts),
                session_id: Some(session.clone()),
                seq: Some(seq),
                run_id: run.cloned(),
                task_id: task.cloned(),
                kind: e.kind,
                data: e.data,
                raw: e.raw,
            })
            .collect();
        self.appended.extend(stored.iter().cloned());
        Ok(stored)
    }

    fn put_token(&mut self, t: &TokenRecord) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO tokens (hash, kind, subject, created_at, id, name) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (hash) DO UPDATE SET kind = excluded.kind, subject = excluded.subject,
                 created_at = excluded.created_at, id = excluded.id, name = excluded.name",
            &[&t.hash, &t.kind.as_str(), &t.subject, &t.created_at.as_millis(), &t.id, &t.name],
        )?;
        Ok(())
    }

    fn delete_tokens(&mut self, kind: &str, subject: Option<&str>) -> Result<u64, StoreError> {
        // `IS NOT DISTINCT FROM` would not use the index on (kind, subject).
        let n = match subject {
            Some(subject) => self.exec("DELETE FROM tokens WHERE kind = $1 AND subject = $2", &[&kind, &subject])?,
            None => self.exec("DELETE FROM tokens WHERE kind = $1 AND subject IS NULL", &[&kind])?,
        };
        if n > 0 {
            self.notices.push(Notice::TokensRevoked { kind: kind.to_owned(), subject: subject.map(str::to_owned) });
        }
        Ok(n)
    }

    fn delete_token(&mut self, hash: &str) -> Result<bool, StoreError> {
        let deleted = self.exec("DELETE FROM tokens WHERE hash = $1", &[&hash])? > 0;
        if deleted {
            self.notices.push(Notice::TokenRevoked { hash: hash.to_owned() });
        }
        Ok(deleted)
    }

    fn put_session_state(&mut self, id: &SessionId, state: &SessionState) -> Result<(), StoreError> {
        let data = encode("session state", state)?;
        self.exec(
            "INSERT INTO session_states (session_id, data) VALUES ($1, $2)
             ON CONFLICT (session_id) DO UPDATE SET data = excluded.data",
            &[&id.as_str(), &data],
        )?;
        Ok(())
    }

    fn put_blob(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.exec("INSERT INTO blobs (sha256, bytes) VALUES ($1, $2) ON CONFLICT DO NOTHING", &[&sha256, &bytes])?;
        Ok(())
    }

    fn acquire_lease(&mut self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>, StoreError> {
        let sql = format!(
            "INSERT INTO leases (name, holder, fence, expires_at) VALUES ($1, $2, 1, {NOW_MS} + $3)
             ON CONFLICT (name) DO UPDATE SET
                 fence = CASE WHEN leases.holder = excluded.holder THEN leases.fence ELSE leases.fence + 1 END,
                 holder = excluded.holder, expires_at = excluded.expires_at
             WHERE leases.holder = excluded.holder OR leases.expires_at < {NOW_MS}
             RETURNING fence"
        );
        Ok(self.row(&sql, &[&name, &holder, &ttl_ms])?.map(|r| r.get(0)))
    }

    fn release_lease(&mut self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.exec("UPDATE leases SET expires_at = 0 WHERE name = $1 AND holder = $2", &[&name, &holder])?;
        Ok(())
    }

    fn idempotent_answer(&mut self, scope: &str, key: &str) -> Result<Option<IdempotentAnswer>, StoreError> {
        let row = self.row("SELECT data FROM idempotency_keys WHERE scope = $1 AND key = $2", &[&scope, &key])?;
        row.map(|r| decode("idempotent answer", r.get::<_, &str>(0))).transpose()
    }

    fn put_idempotent_answer(&mut self, answer: &IdempotentAnswer) -> Result<(), StoreError> {
        let data = encode("idempotent answer", answer)?;
        self.insert_new(
            "idempotency key".into(),
            "INSERT INTO idempotency_keys (scope, key, created_at, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (scope, key) DO NOTHING",
            &[&answer.scope, &answer.key, &answer.created_at.as_millis(), &data],
        )
    }

    fn prune_idempotent_answers(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        self.exec("DELETE FROM idempotency_keys WHERE created_at < $1", &[&before.as_millis()])
    }

    fn put_memory_block(&mut self, block: &MemoryBlock) -> Result<(), StoreError> {
        let data = encode("memory block", block)?;
        self.insert_new(
            "a version of this memory block".into(),
            "INSERT INTO memory_blocks (owner, label, version, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&block.owner, &block.label, &i64::from(block.version), &data],
        )
    }

    fn append_journal(&mut self, entry: &JournalEntry) -> Result<i64, StoreError> {
        let data = encode("journal entry", entry)?;
        let row =
            self.row("INSERT INTO journal (agent, data) VALUES ($1, $2) RETURNING seq", &[&entry.agent, &data])?;
        Ok(row.map_or(0, |r| r.get(0)))
    }

    fn add_chat_inbound(&mut self, c: &ChatInbound) -> Result<bool, StoreError> {
        let data = encode("chat inbound", c)?;
        let added = self.exec(
            "INSERT INTO chat_inbound (key, state, received_at, data) VALUES ($1, $2, $3, $4) ON CONFLICT (key) DO NOTHING",
            &[&c.key, &c.state, &c.received_at.as_millis(), &data],
        )?;
        Ok(added == 1)
    }

    fn put_chat_inbound(&mut self, c: &ChatInbound) -> Result<(), StoreError> {
        let data = encode("chat inbound", c)?;
        self.exec("UPDATE chat_inbound SET state = $2, data = $3 WHERE key = $1", &[&c.key, &c.state, &data])?;
        Ok(())
    }

    fn put_chat_thread(&mut self, t: &ChatThread, open: bool) -> Result<(), StoreError> {
        let data = encode("chat thread", t)?;
        self.exec(
            "INSERT INTO chat_threads (key, task_id, open, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (key) DO UPDATE SET task_id = excluded.task_id, open = excluded.open, data = excluded.data",
            &[&t.key, &t.task_id.as_str(), &open, &data],
        )?;
        Ok(())
    }

    fn put_chat_post(&mut self, p: &ChatPost) -> Result<(), StoreError> {
        let data = encode("chat post", p)?;
        self.exec(
            "INSERT INTO chat_posts (id, state, created_at, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data",
            &[&p.id, &p.state, &p.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn put_permission(&mut self, p: &PermissionRequest) -> Result<(), StoreError> {
        let data = encode("permission", p)?;
        self.exec(
            "INSERT INTO permissions (id, task_id, data) VALUES ($1, $2, $3) ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &[&p.id, &p.task_id.as_str(), &data],
        )?;
        Ok(())
    }

    fn put_schedule(&mut self, sc: &Schedule, expected: Option<Timestamp>) -> Result<bool, StoreError> {
        let data = encode("schedule", sc)?;
        let n = match expected {
            None => self.exec(
                "INSERT INTO schedules (id, project_id, next_at, data) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (id) DO UPDATE SET next_at = excluded.next_at, data = excluded.data",
                &[&sc.id, &sc.project_id.as_str(), &sc.next_at.as_millis(), &data],
            )?,
            Some(at) => self.exec(
                "UPDATE schedules SET next_at = $2, data = $3 WHERE id = $1 AND next_at = $4",
                &[&sc.id, &sc.next_at.as_millis(), &data, &at.as_millis()],
            )?,
        };
        Ok(n == 1)
    }

    fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM schedules WHERE id = $1", &[&id])? == 1)
    }

    fn put_trigger(&mut self, t: &Trigger) -> Result<(), StoreError> {
        let data = encode("trigger", t)?;
        self.exec(
            "INSERT INTO triggers (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            &[&t.name, &data],
        )?;
        Ok(())
    }

    fn delete_trigger(&mut self, name: &str) -> Result<bool, StoreError> {
        self.exec("DELETE FROM trigger_hits WHERE trigger_name = $1", &[&name])?;
        Ok(self.exec("DELETE FROM triggers WHERE name = $1", &[&name])? == 1)
    }

    fn add_trigger_hit(&mut self, h: &TriggerHit) -> Result<bool, StoreError> {
        let data = encode("trigger hit", h)?;
        let n = self.exec(
            "INSERT INTO trigger_hits (trigger_name, webhook_id, at, data) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            &[&h.trigger, &h.webhook_id, &h.at.as_millis(), &data],
        )?;
        Ok(n == 1)
    }

    fn prune_chat(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let at = before.as_millis();
        let a = self.exec("DELETE FROM chat_inbound WHERE state <> 'pending' AND received_at < $1", &[&at])?;
        let b = self.exec("DELETE FROM chat_posts WHERE state <> 'pending' AND created_at < $1", &[&at])?;
        Ok(a + b)
    }

    fn put_message(&mut self, m: &AgentMessage) -> Result<(), StoreError> {
        let data = encode("message", m)?;
        let state = serde_json::to_value(m.state).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        self.exec(
            "INSERT INTO agent_messages (id, to_agent, state, created_at, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, data = excluded.data",
            &[&m.id, &m.to, &state, &m.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn put_lead(&mut self, lead: &LeadRecord, expected: Option<u64>) -> Result<bool, StoreError> {
        let data = encode("lead", lead)?;
        let fence = lead.fence as i64;
        let changed = match expected {
            None => self.exec(
                "INSERT INTO leads (project_id, fence, data) VALUES ($1, $2, $3) ON CONFLICT (project_id) DO NOTHING",
                &[&lead.project_id.as_str(), &fence, &data],
            )?,
            Some(before) => self.exec(
                "UPDATE leads SET fence = $2, data = $3 WHERE project_id = $1 AND fence = $4",
                &[&lead.project_id.as_str(), &fence, &data, &(before as i64)],
            )?,
        };
        Ok(changed == 1)
    }

    fn add_hour(&mut self, d: &HourDelta) -> Result<(), StoreError> {
        let n = crate::rows::finished_counts(d.finished);
        self.exec(
            "INSERT INTO hours (hour, project_id, agent, succeeded, failed, cancelled, cost_usd) VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (hour, project_id, agent) DO UPDATE SET succeeded = hours.succeeded + excluded.succeeded,
                 failed = hours.failed + excluded.failed, cancelled = hours.cancelled + excluded.cancelled,
                 cost_usd = hours.cost_usd + excluded.cost_usd",
            &[&d.hour, &d.project.as_str(), &d.agent, &n[0], &n[1], &n[2], &d.cost_usd],
        )?;
        Ok(())
    }

    fn set_hourly_queue(&mut self, hour: i64, queued: u64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO hourly_queue (hour, queued) VALUES ($1, $2) ON CONFLICT (hour) DO UPDATE SET queued = excluded.queued",
            &[&hour, &(queued as i64)],
        )?;
        Ok(())
    }

    fn put_login_code(&mut self, hash: &str, expires: Timestamp) -> Result<(), StoreError> {
        let prune = format!("DELETE FROM login_codes WHERE expires_at < {NOW_MS}");
        self.exec(&prune, &[])?;
        self.exec(
            "INSERT INTO login_codes (hash, expires_at) VALUES ($1, $2)
             ON CONFLICT (hash) DO UPDATE SET expires_at = excluded.expires_at",
            &[&hash, &expires.as_millis()],
        )?;
        Ok(())
    }

    fn take_login_code(&mut self, hash: &str) -> Result<Option<Timestamp>, StoreError> {
        let row = self.row("DELETE FROM login_codes WHERE hash = $1 RETURNING expires_at", &[&hash])?;
        Ok(row.map(|r| Timestamp::from_millis(r.get(0))))
    }

    fn put_merge_request(&mut self, request: &MergeRequest) -> Result<(), StoreError> {
        let data = encode("merge request", request)?;
        self.exec(
            "INSERT INTO merge_requests (id, created_at, done, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET done = excluded.done, data = excluded.data",
            &[&request.id, &request.created_at.as_millis(), &request.outcome.is_some(), &data],
        )?;
        Ok(())
    }

    fn delete_merge_request(&mut self, id: &str) -> Result<(), StoreError> {
        self.exec("DELETE FROM merge_requests WHERE id = $1", &[&id])?;
        Ok(())
    }

    fn notify(&mut self, notice: Notice) -> Result<(), StoreError> {
        if !self.notices.contains(&notice) {
            self.notices.push(notice);
        }
        Ok(())
    }

    fn put_order(&mut self, order: &LauncherOrder) -> Result<(), StoreError> {
        let data = encode("launcher order", order)?;
        self.exec(
            "INSERT INTO launcher_orders (launcher_id, kind, subject, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (launcher_id, kind, subject) DO UPDATE SET data = excluded.data",
            &[&order.launcher_id.as_str(), &order.kind.as_str(), &order.subject, &data],
        )?;
        Ok(())
    }

    fn delete_order(&mut self, launcher: &LauncherId, kind: OrderKind, subject: &str) -> Result<bool, StoreError> {
        let n = self.exec(
            "DELETE FROM launcher_orders WHERE launcher_id = $1 AND kind = $2 AND subject = $3",
            &[&launcher.as_str(), &kind.as_str(), &subject],
        )?;
        Ok(n > 0)
    }

    fn put_plan(&mut self, plan: &Plan) -> Result<(), StoreError> {
        let data = encode("plan", plan)?;
        self.exec(
            "INSERT INTO plans (id, project_id, created_at, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &[&plan.id.as_str(), &plan.project_id.as_str(), &plan.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn put_orchestration(&mut self, o: &Orchestration) -> Result<(), StoreError> {
        let data = encode("orchestration", o)?;
        self.exec(
            "INSERT INTO orchestrations (id, project_id, created_at, data) VALUES ($1, $2, $3, $4)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &[&o.id.as_str(), &o.project_id.as_str(), &o.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn add_heartbeat(&mut self, beat: &LeadHeartbeat) -> Result<(), StoreError> {
        let data = encode("heartbeat", beat)?;
        self.exec(
            "INSERT INTO heartbeats (project_id, at, data) VALUES ($1, $2, $3)",
            &[&beat.project_id.as_str(), &beat.at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn begin_bulk(&mut self) {
        self.begin_bulk_now();
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        self.flush_bulk()
    }

    fn archive_output(&mut self, session: &SessionId) -> Result<u32, StoreError> {
        self.archive_output_now(session)
    }

    fn set_retention_scanned(&mut self, position: i64) -> Result<(), StoreError> {
        self.exec("UPDATE retention SET scanned = GREATEST(scanned, $1) WHERE id = 1", &[&position]).map(|_| ())
    }

    fn wait_output(&mut self, session: &SessionId, waiting: bool) -> Result<(), StoreError> {
        self.wait_output_now(session, waiting)
    }

    fn reclaim_space(&mut self) -> Result<u64, StoreError> {
        Ok(0)
    }

    fn prune_heartbeats(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        self.exec(
            "DELETE FROM heartbeats WHERE at < $1
               AND id NOT IN (SELECT MAX(id) FROM heartbeats GROUP BY project_id)",
            &[&before.as_millis()],
        )
    }

    fn put_pool_state(&mut self, state: &PoolState) -> Result<(), StoreError> {
        let data = encode("pool", state)?;
        self.exec(
            "INSERT INTO pools (name, data) VALUES ($1, $2) ON CONFLICT (name) DO UPDATE SET data = excluded.data",
            &[&state.name, &data],
        )?;
        Ok(())
    }

    fn put_webhook(&mut self, webhook: &Webhook) -> Result<(), StoreError> {
        let data = encode("webhook", webhook)?;
        self.exec(
            "INSERT INTO webhooks (id, created_at, data) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            &[&webhook.id, &webhook.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn delete_webhook(&mut self, id: &str) -> Result<bool, StoreError> {
        self.exec("DELETE FROM deliveries WHERE webhook_id = $1", &[&id])?;
        Ok(self.exec("DELETE FROM webhooks WHERE id = $1", &[&id])? > 0)
    }

    fn put_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError> {
        let data = encode("delivery", delivery)?;
        self.exec(
            "INSERT INTO deliveries (id, webhook_id, status, created_at, data) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET status = excluded.status, data = excluded.data",
            &[&delivery.id, &delivery.webhook_id, &delivery.status.as_str(), &delivery.created_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn put_action_link(&mut self, hash: &str, link: &ActionLink) -> Result<(), StoreError> {
        let data = encode("action link", link)?;
        self.exec(
            "INSERT INTO action_links (hash, expires_at, data) VALUES ($1, $2, $3)
             ON CONFLICT (hash) DO UPDATE SET data = excluded.data",
            &[&hash, &link.expires_at.as_millis(), &data],
        )?;
        Ok(())
    }

    fn prune_webhook_records(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let at = before.as_millis();
        let deliveries = self.exec("DELETE FROM deliveries WHERE status <> 'pending' AND created_at < $1", &[&at])?;
        let links = self.exec("DELETE FROM action_links WHERE expires_at < $1", &[&at])?;
        Ok(deliveries + links)
    }

    fn add_spend(&mut self, project: &ProjectId, agent: &str, usage: &Usage) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO spend (project_id, agent, input_tokens, output_tokens, cost_usd) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (project_id, agent) DO UPDATE SET input_tokens = spend.input_tokens + excluded.input_tokens,
                 output_tokens = spend.output_tokens + excluded.output_tokens, cost_usd = spend.cost_usd + excluded.cost_usd",
            &[&project.as_str(), &agent, &(usage.input_tokens as i64), &(usage.output_tokens as i64), &usage.cost_usd],
        )?;
        Ok(())
    }

    fn add_project_spend(&mut self, project: &ProjectId, cost_usd: f64) -> Result<(), StoreError> {
        self.exec(
            "INSERT INTO project_spend (project_id, cost_usd) VALUES ($1, $2)
             ON CONFLICT (project_id) DO UPDATE SET cost_usd = project_spend.cost_usd + excluded.cost_usd",
            &[&project.as_str(), &cost_usd],
        )?;
        Ok(())
    }
    fn put_document(&mut self, doc: &Document) -> Result<(), StoreError> {
        let data = encode("document", doc)?;
        let [name, tags, content] = search_text(doc);
        self.exec(
            "INSERT INTO documents (name, project_id, updated_at, search, data)
             VALUES ($1, $2, $3, setweight(to_tsvector('simple', $4), 'A') || setweight(to_tsvector('simple', $5), 'B')
                 || setweight(to_tsvector('simple', $6), 'C'), $7)
             ON CONFLICT (name) DO UPDATE SET project_id = excluded.project_id, updated_at = excluded.updated_at,
                 search = excluded.search, data = excluded.data",
            &[
                &doc.name,
                &doc.project_id.as_ref().map(|p| p.as_str()),
                &doc.updated_at.as_millis(),
                &name,
                &tags,
                &content,
                &data,
            ],
        )?;
        self.exec(
            "INSERT INTO document_versions (name, version, data) VALUES ($1, $2, $3)
             ON CONFLICT (name, version) DO UPDATE SET data = excluded.data",
            &[&doc.name, &i64::from(doc.version), &data],
        )?;
        self.queue_document(doc)
    }

    fn delete_document(&mut self, name: &str) -> Result<bool, StoreError> {
        if self.exec("DELETE FROM documents WHERE name = $1", &[&name])? == 0 {
            return Ok(false);
        }
        self.exec("DELETE FROM document_versions WHERE name = $1", &[&name])?;
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
        self.insert_new(
            format!("workset {}", workset.name),
            "INSERT INTO worksets (name, data) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&workset.name, &data],
        )
    }

    fn delete_workset(&mut self, name: &str) -> Result<bool, StoreError> {
        Ok(self.exec("DELETE FROM worksets WHERE name = $1", &[&name])? > 0)
    }

    fn put_landing(&mut self, landing: &Landing) -> Result<(), StoreError> {
        let data = encode("landing", landing)?;
        self.exec(
            "INSERT INTO landings (task_id, data) VALUES ($1, $2) ON CONFLICT (task_id) DO UPDATE SET data = excluded.data",
            &[&landing.task_id.as_str(), &data],
        )?;
        Ok(())
    }

    fn delete_landing(&mut self, task: &TaskId) -> Result<(), StoreError> {
        self.exec("DELETE FROM landings WHERE task_id = $1", &[&task.as_str()])?;
        Ok(())
    }
}
