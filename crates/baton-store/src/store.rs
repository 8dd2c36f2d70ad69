//! The store interface: [`Store`], the read and write views, and the job plumbing
//! a backend implements.

use std::sync::Arc;

use baton_core::agent::AgentDef;
use baton_core::api::{SessionState, Spend};
use baton_core::chat::{ChatInbound, ChatPost, ChatThread, PermissionRequest};
use baton_core::doc::{DocVersion, Document};
use baton_core::event::{Event, EventKind, NewEvent};
use baton_core::ids::{LauncherId, OrchestrationId, PlanId, ProjectId, RunId, SessionId, TaskId};
use baton_core::memory::{AgentMessage, JournalEntry, MemoryBlock, MessageState};
use baton_core::model::{
    IdempotentAnswer, Launcher, LauncherOrder, LeadHeartbeat, LeadRecord, MergeRequest, Orchestration, OrderKind, Plan,
    PoolState, Project, Run, Session, Task, TokenKind, TokenRecord,
};
use baton_core::status::{RunStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_core::triggers::{Schedule, Trigger, TriggerHit};
use baton_core::webhook::{ActionLink, Delivery, Webhook};
use baton_core::workset::{Landing, Workset};
use tokio::sync::{broadcast, oneshot};

use crate::StoreError;

/// Which tasks to list.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    /// Only this project's.
    pub project: Option<ProjectId>,
    /// Only these statuses (any, when empty).
    pub statuses: Vec<TaskStatus>,
    /// Only tasks started by this session.
    pub parent_session: Option<SessionId>,
    /// At most this many, newest first (all, when `None`).
    pub limit: Option<u32>,
    /// Only tasks older than this one (the last of the page before): pages by
    /// key, so tasks made or changed meanwhile neither repeat nor go missing.
    pub before: Option<TaskId>,
}

/// What happened in one hour, to add to its aggregates.
#[derive(Debug, Clone, PartialEq)]
pub struct HourDelta {
    /// The hour (its start, in milliseconds, a multiple of 3,600,000).
    pub hour: i64,
    /// The project.
    pub project: ProjectId,
    /// The agent.
    pub agent: String,
    /// A task that ended, in this status.
    pub finished: Option<TaskStatus>,
    /// Money spent, in US dollars.
    pub cost_usd: f64,
}

/// One hour's aggregates for one project and agent.
#[derive(Debug, Clone, PartialEq)]
pub struct HourRow {
    /// The hour (its start, in milliseconds).
    pub hour: i64,
    /// The project.
    pub project: ProjectId,
    /// The agent.
    pub agent: String,
    /// Tasks ended, by status.
    pub finished: Vec<(TaskStatus, u64)>,
    /// Money spent, in US dollars.
    pub cost_usd: f64,
}

/// Which events of the global stream to read.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    /// Only events after this position.
    pub after: i64,
    /// Only this session's.
    pub session: Option<SessionId>,
    /// Only this task's (its sessions' events and its own changes).
    pub task: Option<TaskId>,
    /// Only these kinds (any, when empty).
    pub kinds: Vec<EventKind>,
    /// At most this many.
    pub limit: u32,
}

/// Which documents to list or search.
#[derive(Debug, Clone, Default)]
pub struct DocFilter {
    /// Words to search for (the last one also as a prefix), taken as words, never
    /// as a search syntax; results are then ranked by relevance, else newest first.
    pub query: Option<String>,
    /// Only documents with every one of these tags.
    pub tags: Vec<String>,
    /// Only this project's.
    pub project: Option<ProjectId>,
    /// Only names starting with this.
    pub prefix: Option<String>,
    /// Only documents with a relation to this one.
    pub related_to: Option<String>,
    /// At most this many.
    pub limit: u32,
    /// Rank by the query's telling words only: those in more than half of the
    /// documents, and in more than a thousand (whose weight in the ranking is
    /// nearly nil, and whose cost is the highest), are left out; a query of
    /// nothing else finds nothing by its words. For a hybrid search, where
    /// meaning ranks too (SQLite; PostgreSQL ranks every word).
    pub telling: bool,
}

/// A document found, with how well it matched.
#[derive(Debug, Clone, PartialEq)]
pub struct DocHit {
    /// The document.
    pub doc: Document,
    /// Relevance (higher is better), for a search.
    pub score: Option<f64>,
    /// The matching passage, with the matches in `[` `]`, for a search.
    pub snippet: Option<String>,
}

/// What the archive of output holds (see [`crate::archive`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArchiveTotals {
    /// Slices stored.
    pub slices: u64,
    /// Events in them.
    pub events: u64,
    /// Their size as JSON lines.
    pub bytes: u64,
    /// Their size compressed, as stored.
    pub stored: u64,
}

/// Where the context store's meaning index stands: the embedding model its
/// vectors are of, and how many documents wait to be embedded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EmbedStatus {
    /// The model (and its settings) the stored vectors are of; none before the
    /// first configured start.
    pub model: Option<String>,
    /// How many dimensions its vectors have (learned from the first answer
    /// unless configured).
    pub dims: Option<u32>,
    /// Grows whenever a vector is added or removed: an index kept in memory is
    /// current while this is unchanged.
    pub generation: i64,
    /// Documents waiting to be embedded (or re-embedded).
    pub pending: u64,
    /// Documents the endpoint could not embed (a wrong dimension), each with why.
    pub failed: u64,
}

/// A document waiting to be embedded.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbedJob {
    /// The document.
    pub name: String,
    /// The version to embed.
    pub version: u32,
    /// Tries so far.
    pub attempts: u32,
    /// Why the last try failed.
    pub error: Option<String>,
    /// Given up on until a reindex (the endpoint's answer can never fit).
    pub failed: bool,
}

/// A passage of a document with its vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Chunk {
    /// Its place in the document (0, 1, ...).
    pub seq: u32,
    /// Its text.
    pub text: String,
    /// Its embedding.
    pub vector: Vec<f32>,
}

/// A stored chunk's vector, for the index kept in memory.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkVector {
    /// The document.
    pub name: String,
    /// The chunk's place in it.
    pub seq: u32,
    /// Its embedding.
    pub vector: Vec<f32>,
}

/// Reads, inside a read snapshot or a write transaction.
pub trait StoreRead {
    /// A project by id.
    fn project(&self, id: &ProjectId) -> Result<Option<Project>, StoreError>;
    /// A project by name.
    fn project_by_name(&self, name: &str) -> Result<Option<Project>, StoreError>;
    /// A project by the path of its checkout.
    fn project_by_path(&self, path: &str) -> Result<Option<Project>, StoreError>;
    /// All projects, oldest first.
    fn projects(&self) -> Result<Vec<Project>, StoreError>;

    /// An agent definition by name.
    fn agent(&self, name: &str) -> Result<Option<AgentDef>, StoreError>;
    /// All agent definitions, by name.
    fn agents(&self) -> Result<Vec<AgentDef>, StoreError>;

    /// A task by id.
    fn task(&self, id: &TaskId) -> Result<Option<Task>, StoreError>;
    /// The tasks of these ids that exist, in any order (one statement where a
    /// statement is a round trip).
    fn tasks_by_id(&self, ids: &[TaskId]) -> Result<Vec<Task>, StoreError> {
        ids.iter().filter_map(|id| self.task(id).transpose()).collect()
    }
    /// Tasks matching a filter, newest first.
    fn tasks(&self, filter: &TaskFilter) -> Result<Vec<Task>, StoreError>;
    /// Tasks that depend on `id`.
    fn dependents(&self, id: &TaskId) -> Result<Vec<Task>, StoreError>;
    /// The newest version of each of an owner's memory blocks, by label.
    fn memory_blocks(&self, owner: &str) -> Result<Vec<MemoryBlock>, StoreError>;
    /// Every version of one block, newest first.
    fn memory_versions(&self, owner: &str, label: &str) -> Result<Vec<MemoryBlock>, StoreError>;
    /// An agent's journal, newest first, at most `limit` entries.
    fn journal(&self, agent: &str, limit: u32) -> Result<Vec<JournalEntry>, StoreError>;
    /// A message by id.
    fn message(&self, id: &str) -> Result<Option<AgentMessage>, StoreError>;
    /// The messages to an agent in these states (any, when empty), oldest first.
    fn messages(&self, to: &str, states: &[MessageState], limit: u32) -> Result<Vec<AgentMessage>, StoreError>;
    /// The lead Baton runs for a project, if any was ever started.
    fn lead(&self, project: &ProjectId) -> Result<Option<LeadRecord>, StoreError>;
    /// Every project's lead record.
    fn leads(&self) -> Result<Vec<LeadRecord>, StoreError>;
    /// What came in from chat and waits to be acted on, oldest first.
    fn chat_inbound_pending(&self, limit: u32) -> Result<Vec<ChatInbound>, StoreError>;
    /// A chat thread by its key.
    fn chat_thread(&self, key: &str) -> Result<Option<ChatThread>, StoreError>;
    /// The threads bound to a task.
    fn chat_threads_of_task(&self, task: &TaskId) -> Result<Vec<ChatThread>, StoreError>;
    /// The threads whose task may still say something.
    fn chat_threads_open(&self) -> Result<Vec<ChatThread>, StoreError>;
    /// Chat posts waiting to be sent, oldest first.
    fn chat_posts_pending(&self, limit: u32) -> Result<Vec<ChatPost>, StoreError>;
    /// A chat post by id.
    fn chat_post(&self, id: &str) -> Result<Option<ChatPost>, StoreError>;
    /// A permission request by id.
    fn permission(&self, id: &str) -> Result<Option<PermissionRequest>, StoreError>;
    /// Every schedule, soonest first.
    fn schedules(&self) -> Result<Vec<Schedule>, StoreError>;
    /// A schedule by id.
    fn schedule(&self, id: &str) -> Result<Option<Schedule>, StoreError>;
    /// Schedules due at `now` (paused ones included), soonest first.
    fn schedules_due(&self, now: Timestamp) -> Result<Vec<Schedule>, StoreError>;
    /// Every incoming-webhook trigger.
    fn triggers(&self) -> Result<Vec<Trigger>, StoreError>;
    /// A trigger by name.
    fn trigger(&self, name: &str) -> Result<Option<Trigger>, StoreError>;
    /// A delivery a trigger took, by its webhook id.
    fn trigger_hit(&self, trigger: &str, webhook_id: &str) -> Result<Option<TriggerHit>, StoreError>;
    /// How many deliveries a trigger took since `since`.
    fn trigger_hits_since(&self, trigger: &str, since: Timestamp) -> Result<u64, StoreError>;
    /// The hourly aggregates from `since_hour` (milliseconds) on, oldest first.
    fn hours(&self, since_hour: i64, project: Option<&ProjectId>) -> Result<Vec<HourRow>, StoreError>;
    /// The queue's depth sampled at each hour from `since_hour` on, oldest first.
    fn hourly_queue(&self, since_hour: i64) -> Result<Vec<(i64, u64)>, StoreError>;
    /// When the oldest queued run of an agent was queued (the head of its queue).
    fn oldest_queued_run(&self, agent: &str) -> Result<Option<Timestamp>, StoreError>;
    /// How many tasks are in `status` (by the status index alone).
    fn count_in_status(&self, status: TaskStatus) -> Result<u64, StoreError>;
    /// How many tasks are in each status (for metrics).
    fn task_counts(&self, project: Option<&ProjectId>) -> Result<Vec<(TaskStatus, u64)>, StoreError>;
    /// A document by name (its current version).
    fn document(&self, name: &str) -> Result<Option<Document>, StoreError>;
    /// One version of a document.
    fn document_version(&self, name: &str, version: u32) -> Result<Option<Document>, StoreError>;
    /// Every version of a document, newest first.
    fn document_versions(&self, name: &str) -> Result<Vec<DocVersion>, StoreError>;
    /// Documents matching a filter.
    fn documents(&self, filter: &DocFilter) -> Result<Vec<DocHit>, StoreError>;
    /// What sessions spent, summed per project and agent (one project's, or all).
    fn spend(&self, project: Option<&ProjectId>) -> Result<Vec<Spend>, StoreError>;

    /// A session by id.
    fn session(&self, id: &SessionId) -> Result<Option<Session>, StoreError>;
    /// The newest session with this agent session id (Claude's `session_id`, ...).
    fn session_by_agent_session(&self, agent_session_id: &str) -> Result<Option<Session>, StoreError>;
    /// A task's sessions, oldest first.
    fn sessions_of_task(&self, id: &TaskId) -> Result<Vec<Session>, StoreError>;
    /// All sessions, newest first, at most `limit`.
    fn sessions(&self, limit: u32) -> Result<Vec<Session>, StoreError>;

    /// A run by id.
    fn run(&self, id: &RunId) -> Result<Option<Run>, StoreError>;
    /// A session's runs, oldest first.
    fn runs_of_session(&self, id: &SessionId) -> Result<Vec<Run>, StoreError>;
    /// Runs in a status, oldest first, at most `limit`.
    fn runs_in_status(&self, status: RunStatus, limit: u32) -> Result<Vec<Run>, StoreError>;
    /// Unfinished runs (claimed or running) of a launcher.
    fn active_runs_of_launcher(&self, id: &LauncherId) -> Result<Vec<Run>, StoreError>;
    /// Queued runs, oldest first, as a claim looks at them (see [`QueuedRuns`]).
    fn queued_runs(&self, q: &QueuedRuns) -> Result<Vec<Run>, StoreError>;
    /// How many runs are claimed or running, of a project, an agent or a launcher
    /// (counted by an index, not by reading the runs).
    fn active_run_count(&self, of: ActiveOf<'_>) -> Result<u32, StoreError>;
    /// [`StoreRead::active_run_count`] of each of these launchers, in their
    /// order (one statement where a statement is a round trip).
    fn active_run_counts(&self, launchers: &[LauncherId]) -> Result<Vec<u32>, StoreError> {
        launchers.iter().map(|l| self.active_run_count(ActiveOf::Launcher(l))).collect()
    }
    /// What a project's sessions have spent, in dollars (a running total).
    fn project_spent(&self, project: &ProjectId) -> Result<f64, StoreError>;

    /// A launcher by id.
    fn launcher(&self, id: &LauncherId) -> Result<Option<Launcher>, StoreError>;
    /// All launchers.
    fn launchers(&self) -> Result<Vec<Launcher>, StoreError>;

    /// Ids that start with `prefix` in the table of `kind` ("task", "session", "run",
    /// "project"), at most `limit`.
    fn ids_with_prefix(&self, kind: &str, prefix: &str, limit: u32) -> Result<Vec<String>, StoreError>;

    /// A session's events after sequence number `after_seq`, at most `limit`.
    fn session_events(&self, id: &SessionId, after_seq: i64, limit: u32) -> Result<Vec<Event>, StoreError>;
    /// Events of the global stream matching a filter, in order.
    fn events(&self, filter: &EventFilter) -> Result<Vec<Event>, StoreError>;
    /// The position of the newest event (0 when there is none).
    fn last_event_id(&self) -> Result<i64, StoreError>;
    /// The sessions that printed (events of [`crate::archive::ARCHIVED_KINDS`])
    /// among the events past position `after`, read in order, at most `scan` of
    /// them and none from `before` on; and the position read up to.
    fn output_sessions(&self, after: i64, before: Timestamp, scan: u32) -> Result<(Vec<SessionId>, i64), StoreError>;
    /// The position the archiver has read the events up to.
    fn retention_scanned(&self) -> Result<i64, StoreError>;
    /// Sessions whose output waits for their task to settle, by id, after `after`.
    fn output_waiting(&self, after: Option<&SessionId>, limit: u32) -> Result<Vec<SessionId>, StoreError>;
    /// What the archive of output holds.
    fn archive_totals(&self) -> Result<ArchiveTotals, StoreError>;

    /// A token by its hash.
    fn token(&self, hash: &str) -> Result<Option<TokenRecord>, StoreError>;
    /// Tokens of a kind, oldest first.
    fn tokens(&self, kind: TokenKind) -> Result<Vec<TokenRecord>, StoreError>;
    /// A token by its id.
    fn token_by_id(&self, id: &str) -> Result<Option<TokenRecord>, StoreError>;

    /// What an agent's CLI keeps of a session's conversation, when it was saved.
    fn session_state(&self, id: &SessionId) -> Result<Option<SessionState>, StoreError>;
    /// A launcher's pending orders, oldest first.
    fn orders_of_launcher(&self, id: &LauncherId) -> Result<Vec<LauncherOrder>, StoreError>;

    /// A binary document's bytes, by their SHA-256.
    fn blob(&self, sha256: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Merge requests not yet done, oldest first.
    fn pending_merges(&self) -> Result<Vec<MergeRequest>, StoreError>;
    /// A merge request.
    fn merge_request(&self, id: &str) -> Result<Option<MergeRequest>, StoreError>;
    /// The time on the database's clock (leases expire on it).
    fn clock(&self) -> Result<Timestamp, StoreError>;

    /// A plan by id.
    fn plan(&self, id: &PlanId) -> Result<Option<Plan>, StoreError>;
    /// Plans, newest first, at most `limit`.
    fn plans(&self, limit: u32) -> Result<Vec<Plan>, StoreError>;
    /// An orchestration by id.
    fn orchestration(&self, id: &OrchestrationId) -> Result<Option<Orchestration>, StoreError>;
    /// Orchestrations, newest first, at most `limit`.
    fn orchestrations(&self, limit: u32) -> Result<Vec<Orchestration>, StoreError>;
    /// A project's lead heartbeats, newest first, at most `limit`.
    fn heartbeats(&self, project: &ProjectId, limit: u32) -> Result<Vec<LeadHeartbeat>, StoreError>;
    /// What the governor learned of each concurrency pool, by name.
    fn pool_states(&self) -> Result<Vec<PoolState>, StoreError>;

    /// Every webhook, oldest first.
    fn webhooks(&self) -> Result<Vec<Webhook>, StoreError>;
    /// A webhook by id.
    fn webhook(&self, id: &str) -> Result<Option<Webhook>, StoreError>;
    /// A webhook's deliveries, newest first, at most `limit`.
    fn deliveries(&self, webhook: &str, limit: u32) -> Result<Vec<Delivery>, StoreError>;
    /// A delivery by id.
    fn delivery(&self, id: &str) -> Result<Option<Delivery>, StoreError>;
    /// How many of a webhook's deliveries are pending and how many failed.
    fn delivery_counts(&self, webhook: &str) -> Result<(u32, u32), StoreError>;
    /// The oldest pending delivery of each webhook that has one: what is sent
    /// next, in order per webhook.
    fn next_deliveries(&self) -> Result<Vec<Delivery>, StoreError>;
    /// An action link by the hash of its secret part.
    fn action_link(&self, hash: &str) -> Result<Option<ActionLink>, StoreError>;
    /// The meaning index's model, generation and backlog.
    fn embed_status(&self) -> Result<EmbedStatus, StoreError>;
    /// The documents given up on (or still failing), with why; at most `limit`.
    fn embed_failures(&self, limit: u32) -> Result<Vec<EmbedJob>, StoreError>;
    /// Every stored vector of `model`.
    fn chunk_vectors(&self, model: &str) -> Result<Vec<ChunkVector>, StoreError>;
    /// A chunk's text.
    fn chunk_text(&self, name: &str, seq: u32) -> Result<Option<String>, StoreError>;
    /// The names of the documents a filter's tags, project and prefix allow
    /// (its query and limit are not used).
    fn document_names(&self, filter: &DocFilter) -> Result<Vec<String>, StoreError>;
    /// A workset by name.
    fn workset(&self, name: &str) -> Result<Option<Workset>, StoreError>;
    /// Every workset, by name.
    fn worksets(&self) -> Result<Vec<Workset>, StoreError>;
    /// The landings across repositories begun and not finished.
    fn landings(&self) -> Result<Vec<Landing>, StoreError>;
}

/// Writes, inside a transaction. Everything written by one job commits or rolls
/// back together.
pub trait StoreTx: StoreRead {
    /// Inserts or replaces a project.
    fn put_project(&mut self, project: &Project) -> Result<(), StoreError>;
    /// Inserts or replaces an agent definition.
    fn put_agent(&mut self, agent: &AgentDef) -> Result<(), StoreError>;
    /// Removes an agent definition; whether there was one.
    fn delete_agent(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Inserts a new task (and its dependency edges).
    fn insert_task(&mut self, task: &Task) -> Result<(), StoreError>;
    /// Replaces an existing task.
    fn put_task(&mut self, task: &Task) -> Result<(), StoreError>;
    /// Inserts or replaces a session.
    fn put_session(&mut self, session: &Session) -> Result<(), StoreError>;
    /// Inserts a session just made (none of its events exist yet): a bulk
    /// write gathers its events too.
    fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        self.put_session(session)
    }
    /// Inserts or replaces a run.
    fn put_run(&mut self, run: &Run) -> Result<(), StoreError>;
    /// Inserts or replaces a launcher.
    fn put_launcher(&mut self, launcher: &Launcher) -> Result<(), StoreError>;
    /// Appends an event. A session event gets the session's next sequence number.
    fn append_event(
        &mut self,
        session: Option<&SessionId>,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        event: NewEvent,
    ) -> Result<Event, StoreError>;
    /// Appends a session's events, in order (each gets the session's next
    /// sequence number); what was stored.
    fn append_events(
        &mut self,
        session: &SessionId,
        run: Option<&RunId>,
        task: Option<&TaskId>,
        events: Vec<NewEvent>,
    ) -> Result<Vec<Event>, StoreError> {
        events.into_iter().map(|e| self.append_event(Some(session), run, task, e)).collect()
    }
    /// Stores a token.
    fn put_token(&mut self, token: &TokenRecord) -> Result<(), StoreError>;
    /// Removes every token of a kind and subject; how many there were.
    fn delete_tokens(&mut self, kind: &str, subject: Option<&str>) -> Result<u64, StoreError>;
    /// Removes a token by its hash; whether there was one.
    fn delete_token(&mut self, hash: &str) -> Result<bool, StoreError>;
    /// Asks for a bulk write: the transaction's new tasks and the events
    /// announcing them may be written together at its end, in a few statements
    /// (PostgreSQL; SQLite writes each at once, which costs no round trip).
    /// Reads within the transaction see them as usual.
    fn begin_bulk(&mut self) {}
    /// Writes what a bulk write has gathered (done before every commit).
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// Moves a session's oldest live output (at most
    /// [`crate::archive::SLICE_EVENTS`] events) into one archived slice; how
    /// many moved. Reads find them as before.
    fn archive_output(&mut self, session: &SessionId) -> Result<u32, StoreError>;
    /// Notes the position the archiver has read the events up to.
    fn set_retention_scanned(&mut self, position: i64) -> Result<(), StoreError>;
    /// Marks a session's output as waiting for its task to settle (or no longer).
    fn wait_output(&mut self, session: &SessionId, waiting: bool) -> Result<(), StoreError>;
    /// Gives the space deleted rows left back to the file system, a bounded
    /// amount at a time (SQLite's incremental vacuum; PostgreSQL's autovacuum
    /// does it there); how many pages went.
    fn reclaim_space(&mut self) -> Result<u64, StoreError>;
    /// Saves what an agent's CLI keeps of a session's conversation.
    fn put_session_state(&mut self, id: &SessionId, state: &SessionState) -> Result<(), StoreError>;
    /// Stores a binary document's bytes under their SHA-256 (kept once).
    fn put_blob(&mut self, sha256: &str, bytes: &[u8]) -> Result<(), StoreError>;
    /// Takes (or renews) the lease `name` for `holder`, valid for `ttl_ms` on the
    /// database's clock, unless another holder has it: its fencing number (which
    /// grows each time the lease changes hands), else `None`.
    fn acquire_lease(&mut self, name: &str, holder: &str, ttl_ms: i64) -> Result<Option<i64>, StoreError>;
    /// Gives a lease up (when `holder` has it).
    fn release_lease(&mut self, name: &str, holder: &str) -> Result<(), StoreError>;
    /// The answer recorded for a caller's idempotency key, if any.
    fn idempotent_answer(&mut self, scope: &str, key: &str) -> Result<Option<IdempotentAnswer>, StoreError>;
    /// Records the first answer to a request made under an idempotency key;
    /// [`StoreError::Duplicate`] if the key has one already.
    fn put_idempotent_answer(&mut self, answer: &IdempotentAnswer) -> Result<(), StoreError>;
    /// Forgets the answers recorded before `before`; how many.
    fn prune_idempotent_answers(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    /// Records a one-time login code (its hash) and when it expires.
    fn put_login_code(&mut self, hash: &str, expires: Timestamp) -> Result<(), StoreError>;
    /// Takes a login code: when it expires, if it was there (it is gone after).
    fn take_login_code(&mut self, hash: &str) -> Result<Option<Timestamp>, StoreError>;
    /// Inserts or replaces a merge request.
    fn put_merge_request(&mut self, request: &MergeRequest) -> Result<(), StoreError>;
    /// Removes a merge request.
    fn delete_merge_request(&mut self, id: &str) -> Result<(), StoreError>;
    /// Tells every coordinator sharing the store (this one included) something
    /// that is not an event: a revoked token.
    fn notify(&mut self, notice: Notice) -> Result<(), StoreError>;
    /// Inserts or replaces a launcher order (one per launcher, kind and subject).
    fn put_order(&mut self, order: &LauncherOrder) -> Result<(), StoreError>;
    /// Removes a launcher order; whether there was one.
    fn delete_order(&mut self, launcher: &LauncherId, kind: OrderKind, subject: &str) -> Result<bool, StoreError>;
    /// Inserts or replaces a plan.
    fn put_plan(&mut self, plan: &Plan) -> Result<(), StoreError>;
    /// Inserts or replaces an orchestration.
    fn put_orchestration(&mut self, orchestration: &Orchestration) -> Result<(), StoreError>;
    /// Records a lead heartbeat.
    fn add_heartbeat(&mut self, beat: &LeadHeartbeat) -> Result<(), StoreError>;
    /// Removes lead heartbeats older than `before`, except each project's newest;
    /// how many went.
    fn prune_heartbeats(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    /// Writes what the governor learned of a pool.
    fn put_pool_state(&mut self, state: &PoolState) -> Result<(), StoreError>;
    /// Adds to a project's running total of spend (see [`StoreRead::project_spent`]).
    fn add_project_spend(&mut self, project: &ProjectId, cost_usd: f64) -> Result<(), StoreError>;
    /// Adds usage to what a project's agent spent (see [`StoreRead::spend`]).
    fn add_spend(
        &mut self,
        project: &ProjectId,
        agent: &str,
        usage: &baton_core::model::Usage,
    ) -> Result<(), StoreError>;
    /// Writes a new version of a memory block ([`StoreError::Duplicate`] when
    /// that version exists: another write came first).
    fn put_memory_block(&mut self, block: &MemoryBlock) -> Result<(), StoreError>;
    /// Appends to an agent's journal; the entry's place in it.
    fn append_journal(&mut self, entry: &JournalEntry) -> Result<i64, StoreError>;
    /// Inserts or replaces a message.
    fn put_message(&mut self, message: &AgentMessage) -> Result<(), StoreError>;
    /// Writes a project's lead record if nothing changed it meanwhile: a new
    /// record when `expected` is `None` and there is none, else only while its
    /// fence is still `expected`. False when another writer came first (the
    /// caller gives up its transaction).
    fn put_lead(&mut self, lead: &LeadRecord, expected: Option<u64>) -> Result<bool, StoreError>;
    /// Records what came in from chat unless its key was seen before; false
    /// for a repeat (a retry, a redelivery), which is then left alone.
    fn add_chat_inbound(&mut self, inbound: &ChatInbound) -> Result<bool, StoreError>;
    /// Writes what became of something that came in from chat.
    fn put_chat_inbound(&mut self, inbound: &ChatInbound) -> Result<(), StoreError>;
    /// Inserts or replaces a chat thread's binding (`open` while its task may
    /// still say something).
    fn put_chat_thread(&mut self, thread: &ChatThread, open: bool) -> Result<(), StoreError>;
    /// Inserts or replaces a chat post.
    fn put_chat_post(&mut self, post: &ChatPost) -> Result<(), StoreError>;
    /// Inserts or replaces a permission request.
    fn put_permission(&mut self, p: &PermissionRequest) -> Result<(), StoreError>;
    /// Writes a schedule if it is still due at `expected` (its `next_at` when it
    /// was read; `None` for a new one or an edit): false when another writer
    /// fired it first.
    fn put_schedule(&mut self, s: &Schedule, expected: Option<Timestamp>) -> Result<bool, StoreError>;
    /// Removes a schedule; false when there was none.
    fn delete_schedule(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Inserts or replaces a trigger.
    fn put_trigger(&mut self, t: &Trigger) -> Result<(), StoreError>;
    /// Removes a trigger and its deliveries; false when there was none.
    fn delete_trigger(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Records a delivery a trigger took unless its webhook id was seen; false for a repeat.
    fn add_trigger_hit(&mut self, hit: &TriggerHit) -> Result<bool, StoreError>;
    /// Forgets chat records finished before `before` (inbound keys are kept
    /// that long for deduplication).
    fn prune_chat(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    /// Adds to one hour's aggregates.
    fn add_hour(&mut self, delta: &HourDelta) -> Result<(), StoreError>;
    /// Records the queue's depth for an hour (the last sample of it stays).
    fn set_hourly_queue(&mut self, hour: i64, queued: u64) -> Result<(), StoreError>;
    /// Writes a document's new version (the earlier ones are kept).
    fn put_document(&mut self, doc: &Document) -> Result<(), StoreError>;
    /// Removes a document and its versions; false when there was none.
    fn delete_document(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Takes up to `limit` documents due for embedding at `now`, holding each
    /// until `until` (another worker does not take them meanwhile).
    fn claim_embeddings(&mut self, now: Timestamp, until: Timestamp, limit: u32) -> Result<Vec<EmbedJob>, StoreError>;
    /// Replaces a document's chunks with these vectors of `model` if `version`
    /// is still its current one, and ends its job for that version; false when
    /// a newer version came meanwhile (its job stays).
    fn put_chunks(&mut self, name: &str, version: u32, model: &str, chunks: &[Chunk]) -> Result<bool, StoreError>;
    /// Records a failed try of a document's job (for that version): tried again
    /// at `next_at`, or never (`failed`) until a reindex.
    fn embedding_failed(
        &mut self,
        name: &str,
        version: u32,
        error: &str,
        next_at: Timestamp,
        failed: bool,
    ) -> Result<(), StoreError>;
    /// Makes `model` (with `dims`, if known) the one vectors are of: when it
    /// differs from the stored one, every vector of another is removed and every
    /// document queued. True when it changed.
    fn set_embed_model(&mut self, model: &str, dims: Option<u32>) -> Result<bool, StoreError>;
    /// Queues documents for embedding: every text document (`all`, clearing
    /// failures), or only those whose current version has no vectors and no
    /// job. How many were queued.
    fn queue_embeddings(&mut self, all: bool) -> Result<u64, StoreError>;
    /// Stores a new workset (`Duplicate` when the name is taken).
    fn insert_workset(&mut self, workset: &Workset) -> Result<(), StoreError>;
    /// Removes a workset; whether there was one.
    fn delete_workset(&mut self, name: &str) -> Result<bool, StoreError>;
    /// Records (or replaces) a task's landing journal.
    fn put_landing(&mut self, landing: &Landing) -> Result<(), StoreError>;
    /// Ends a task's landing journal.
    fn delete_landing(&mut self, task: &TaskId) -> Result<(), StoreError>;
    /// Inserts or replaces a webhook.
    fn put_webhook(&mut self, webhook: &Webhook) -> Result<(), StoreError>;
    /// Removes a webhook and its deliveries; whether there was one.
    fn delete_webhook(&mut self, id: &str) -> Result<bool, StoreError>;
    /// Inserts a delivery (after every other, in its webhook's order) or
    /// replaces one, keeping its place.
    fn put_delivery(&mut self, delivery: &Delivery) -> Result<(), StoreError>;
    /// Inserts or replaces an action link, under the hash of its secret part.
    fn put_action_link(&mut self, hash: &str, link: &ActionLink) -> Result<(), StoreError>;
    /// Removes deliveries that ended and action links that expired before
    /// `before`; how many went.
    fn prune_webhook_records(&mut self, before: Timestamp) -> Result<u64, StoreError>;
}

/// Which queued runs a claim looks at: a page of them, oldest first, leaving out
/// the projects and agents whose limits are reached, so that runs held back by a
/// limit never hide the runnable ones queued after them.
#[derive(Debug, Clone, Default)]
pub struct QueuedRuns {
    /// Only runs queued after this one (the last of the previous page).
    pub after: Option<RunId>,
    /// Leave out the runs of these projects.
    pub not_projects: Vec<ProjectId>,
    /// Leave out the runs of these agents.
    pub not_agents: Vec<String>,
    /// At most this many.
    pub limit: u32,
}

/// Whose active runs to count.
#[derive(Debug, Clone, Copy)]
pub enum ActiveOf<'a> {
    /// A project's.
    Project(&'a ProjectId),
    /// An agent's (by name).
    Agent(&'a str),
    /// A launcher's.
    Launcher(&'a LauncherId),
    /// An agent's queued runs (not claimed yet), by name.
    QueuedOfAgent(&'a str),
}

/// An event that has been committed, with its JSON text made once for every
/// subscriber.
#[derive(Debug)]
pub struct Committed {
    /// The event.
    pub event: Event,
    /// `event` as JSON (UTF-8), shared by every subscriber without a copy.
    pub json: bytes::Bytes,
}

/// Something every coordinator sharing the store must hear of that is not an
/// event. Notices are delivered after the commit of the transaction that sent
/// them, to every coordinator (the sender too), at most once: one that may have
/// been missed (a lost connection) is followed by [`Notice::Resync`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum Notice {
    /// A token was revoked (the store sends it when one is deleted).
    TokenRevoked {
        /// Its hash.
        hash: String,
    },
    /// Every token of a kind and subject was revoked (sent by the store).
    TokensRevoked {
        /// The kind (`session`, `launcher`, `admin`).
        kind: String,
        /// Whose.
        subject: Option<String>,
    },
    /// Launchers may have something to do (a run queued, a stop, an order): those
    /// that run one of `executors`, and those named in `launchers`; every one
    /// when both are empty.
    Work {
        /// Executors a run was queued for.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        executors: Vec<String>,
        /// Launchers (by id) with a slot freed, a stop or an order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        launchers: Vec<String>,
    },
    /// A merge request was queued.
    MergeQueued,
    /// A merge request was done.
    MergeDone {
        /// Its id.
        id: String,
    },
    /// A webhook delivery was recorded (or asked to be sent again).
    Deliveries,
    /// Notices may have been missed: whatever was cached must be read again.
    Resync,
}

/// Called once a job's transaction has committed (or failed to).
pub type Completion = Box<dyn FnOnce(Result<(), StoreError>) + Send>;

/// A write job: runs inside the transaction, returns whether it succeeded (a
/// failed job's writes are rolled back) and what to call after the commit. It is
/// given the error instead of a transaction when none could begin (the database
/// is unreachable).
pub type WriteJob = Box<dyn FnOnce(Result<&mut dyn StoreTx, StoreError>) -> (bool, Completion) + Send>;

/// How many write jobs are committed together at most: a group's commit
/// answers every job in it, so a bigger group makes its first jobs wait longer.
pub(crate) const MAX_GROUP: usize = 64;

/// The write jobs waiting for the writer thread, urgent ones first.
#[derive(Default)]
pub(crate) struct WriteQueue {
    urgent: std::collections::VecDeque<WriteJob>,
    others: std::collections::VecDeque<WriteJob>,
}

impl WriteQueue {
    /// The next group to commit: every job sent so far is taken from `jobs`
    /// (waiting for one when none is), then up to [`MAX_GROUP`] of them: the
    /// urgent ones when there are any, else the others. `None` once the senders
    /// are gone and nothing is left.
    pub(crate) fn next_group(&mut self, jobs: &std::sync::mpsc::Receiver<(WriteJob, bool)>) -> Option<Vec<WriteJob>> {
        if self.urgent.is_empty() && self.others.is_empty() {
            let (job, urgent) = jobs.recv().ok()?;
            self.push(job, urgent);
        }
        while let Ok((job, urgent)) = jobs.try_recv() {
            self.push(job, urgent);
        }
        // Urgent jobs make a group of their own: each is answered at its group's
        // commit, which must not wait for the others.
        let from = if self.urgent.is_empty() { &mut self.others } else { &mut self.urgent };
        let n = from.len().min(MAX_GROUP);
        Some(from.drain(..n).collect())
    }

    /// Whether an urgent job is waiting (the channel is read first): a group
    /// being run stops there and commits, so the urgent job waits for no more
    /// than the job in progress.
    pub(crate) fn urgent_waiting(&mut self, jobs: &std::sync::mpsc::Receiver<(WriteJob, bool)>) -> bool {
        while let Ok((job, urgent)) = jobs.try_recv() {
            self.push(job, urgent);
        }
        !self.urgent.is_empty()
    }

    /// Jobs of a group that was cut short, to run first in the next one (after
    /// the urgent).
    pub(crate) fn put_back(&mut self, jobs: Vec<WriteJob>) {
        for job in jobs.into_iter().rev() {
            self.others.push_front(job);
        }
    }

    fn push(&mut self, job: WriteJob, urgent: bool) {
        if urgent { self.urgent.push_back(job) } else { self.others.push_back(job) }
    }
}

/// A read job: given a snapshot, or the error that kept one from being taken.
pub type ReadJob = Box<dyn FnOnce(Result<&dyn StoreRead, StoreError>) + Send>;

/// What a database backend provides: somewhere to run write jobs (serialised,
/// transactional) and read jobs (concurrent, on a consistent snapshot).
pub trait Backend: Send + Sync {
    /// Queues a write job; an urgent one goes before the others waiting.
    fn submit_write(&self, job: WriteJob, urgent: bool) -> Result<(), StoreError>;
    /// Queues a read job.
    fn submit_read(&self, job: ReadJob) -> Result<(), StoreError>;
    /// Which database this is.
    fn kind(&self) -> &'static str;
    /// Why this coordinator stopped taking work, when it did (a newer one's
    /// breaking migration of a shared database).
    fn stopped(&self) -> Option<String> {
        None
    }
}

/// The handle to the store. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    /// The database behind it.
    backend: Arc<dyn Backend>,
    /// Where committed events are published.
    events: broadcast::Sender<Arc<Committed>>,
    /// Where notices are published.
    notices: broadcast::Sender<Notice>,
}

impl Store {
    /// A store over `backend`, publishing committed events on `events` and
    /// notices on `notices`.
    pub fn new(
        backend: Arc<dyn Backend>,
        events: broadcast::Sender<Arc<Committed>>,
        notices: broadcast::Sender<Notice>,
    ) -> Self {
        Self { backend, events, notices }
    }

    /// Subscribes to events as they are committed.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Committed>> {
        self.events.subscribe()
    }

    /// Subscribes to notices (from every coordinator sharing the store).
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    /// Which database this is, for people (`sqlite`, `postgres`).
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Why this coordinator stopped taking work, when it did: every write is
    /// refused (a newer replica moved the shared database past this build).
    pub fn stopped(&self) -> Option<String> {
        self.backend.stopped()
    }

    /// Runs `f` in a write transaction and returns its result once committed. When
    /// `f` fails, its writes are rolled back and its error returned.
    pub async fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn StoreTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_as(false, f).await
    }

    /// [`Store::write`], ahead of the jobs waiting that are not urgent (a
    /// launcher's claim: what makes work start waits behind no backlog).
    pub async fn write_urgent<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn StoreTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        self.write_as(true, f).await
    }

    async fn write_as<T, E, F>(&self, urgent: bool, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut dyn StoreTx) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        let job: WriteJob = Box::new(move |tx: Result<&mut dyn StoreTx, StoreError>| {
            let result = match tx {
                Ok(tx) => f(&mut *tx).and_then(|v| tx.flush().map(|()| v).map_err(E::from)),
                Err(e) => Err(E::from(e)),
            };
            let ok = result.is_ok();
            let completion: Completion = Box::new(move |commit: Result<(), StoreError>| {
                let out = match (commit, result) {
                    (Err(e), Ok(_)) => Err(E::from(e)),
                    (_, r) => r,
                };
                let _ = reply.send(out);
            });
            (ok, completion)
        });
        self.backend.submit_write(job, urgent)?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }

    /// Runs `f` on a read snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&dyn StoreRead) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel::<Result<T, E>>();
        self.backend.submit_read(Box::new(move |r: Result<&dyn StoreRead, StoreError>| {
            let _ = reply.send(r.map_err(E::from).and_then(f));
        }))?;
        answer.await.map_err(|_| E::from(StoreError::Closed))?
    }
}

#[cfg(test)]
mod write_queue_tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn urgent_jobs_go_first_and_groups_are_bounded() {
        let ran: Arc<Mutex<Vec<usize>>> = Arc::default();
        let job = |n: usize| -> WriteJob {
            let ran = Arc::clone(&ran);
            Box::new(move |_tx| {
                ran.lock().unwrap().push(n);
                (true, Box::new(|_| {}) as Completion)
            })
        };
        let (tx, rx) = std::sync::mpsc::channel();
        for n in 0..100 {
            tx.send((job(n), false)).unwrap();
        }
        tx.send((job(1000), true)).unwrap();
        let mut queue = WriteQueue::default();
        let group = queue.next_group(&rx).unwrap();
        assert_eq!(group.len(), 1, "the urgent job alone");
        for j in group {
            let _ = j(Err(StoreError::Closed));
        }
        assert_eq!(*ran.lock().unwrap(), vec![1000]);
        let group = queue.next_group(&rx).unwrap();
        assert_eq!(group.len(), MAX_GROUP);
        for j in group {
            let _ = j(Err(StoreError::Closed));
        }
        assert_eq!(ran.lock().unwrap()[1..], (0..MAX_GROUP).collect::<Vec<_>>()[..], "then the others in order");
        // A group cut short goes back before the others.
        let rest = queue.next_group(&rx).unwrap();
        assert_eq!(rest.len(), 100 - MAX_GROUP);
        queue.put_back(rest);
        tx.send((job(2000), true)).unwrap();
        assert!(queue.urgent_waiting(&rx));
        assert_eq!(queue.next_group(&rx).unwrap().len(), 1);
        assert_eq!(queue.next_group(&rx).unwrap().len(), 100 - MAX_GROUP);
        drop(tx);
        assert!(queue.next_group(&rx).is_none(), "none once the senders are gone");
    }
}
