//! The schema and its migrations. `PRAGMA user_version` records how many
//! migrations have run; each new one is appended to [`MIGRATIONS`], never edited.

use rusqlite::Connection;

use crate::StoreError;

/// Every migration, in order.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_session_id TEXT,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX tasks_by_project ON tasks(project_id, created_at);
CREATE INDEX tasks_by_status ON tasks(status, created_at);
CREATE INDEX tasks_by_parent ON tasks(parent_session_id) WHERE parent_session_id IS NOT NULL;
CREATE TABLE task_deps (
    task_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (task_id, depends_on)
) WITHOUT ROWID;
CREATE INDEX task_deps_reverse ON task_deps(depends_on, task_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sessions_by_task ON sessions(task_id, created_at);
CREATE INDEX sessions_by_created ON sessions(created_at);
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    status TEXT NOT NULL,
    launcher_id TEXT,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX runs_by_session ON runs(session_id, created_at);
CREATE INDEX runs_by_status ON runs(status, created_at);
CREATE INDEX runs_by_launcher ON runs(launcher_id, status);
CREATE TABLE launchers (
    id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    session_id TEXT,
    seq INTEGER,
    run_id TEXT,
    task_id TEXT,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    raw TEXT
);
CREATE UNIQUE INDEX events_by_session ON events(session_id, seq) WHERE session_id IS NOT NULL;
CREATE INDEX events_by_task ON events(task_id, id) WHERE task_id IS NOT NULL;
CREATE TABLE tokens (
    hash TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    subject TEXT,
    created_at INTEGER NOT NULL
);
CREATE INDEX tokens_by_subject ON tokens(kind, subject);
"#,
    r#"
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE orchestrations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE heartbeats (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX heartbeats_by_project ON heartbeats(project_id, id);
"#,
    r#"
CREATE TABLE documents (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    project_id TEXT,
    updated_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE document_versions (
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (name, version)
) WITHOUT ROWID;
CREATE VIRTUAL TABLE documents_fts USING fts5(name, tags, content, tokenize = 'unicode61 remove_diacritics 2');
"#,
    r#"
CREATE INDEX sessions_by_agent_session ON sessions(json_extract(data, '$.agent_session_id'))
    WHERE json_extract(data, '$.agent_session_id') IS NOT NULL;
"#,
    r#"
ALTER TABLE tokens ADD COLUMN id TEXT;
ALTER TABLE tokens ADD COLUMN name TEXT;
CREATE UNIQUE INDEX tokens_by_id ON tokens(id) WHERE id IS NOT NULL;
CREATE TABLE launcher_orders (
    launcher_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (launcher_id, kind, subject)
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE session_states (
    session_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
) WITHOUT ROWID;
"#,
    r#"
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    bytes BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fence INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE login_codes (
    hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE merge_requests (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    done INTEGER NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX merge_requests_pending ON merge_requests(done, created_at);
"#,
    r#"
ALTER TABLE runs ADD COLUMN project_id TEXT;
ALTER TABLE runs ADD COLUMN agent TEXT;
UPDATE runs SET project_id = json_extract(data, '$.project_id'), agent = json_extract(data, '$.agent');
CREATE INDEX runs_by_project ON runs(project_id, status);
CREATE INDEX runs_by_agent ON runs(agent, status);
CREATE TABLE project_spend (
    project_id TEXT PRIMARY KEY,
    cost_usd REAL NOT NULL
) WITHOUT ROWID;
INSERT INTO project_spend (project_id, cost_usd)
    SELECT json_extract(data, '$.project_id'), TOTAL(json_extract(data, '$.usage.cost_usd')) FROM sessions
    GROUP BY json_extract(data, '$.project_id');
CREATE INDEX heartbeats_by_time ON heartbeats(at);
"#,
    r#"
CREATE TABLE pools (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
-- The queue in order with what a claim leaves out, read from the index alone.
DROP INDEX runs_by_status;
CREATE INDEX runs_by_status ON runs(status, created_at, project_id, agent);
"#,
    r#"
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
-- The outbox: `seq` is each webhook's order of delivery.
CREATE TABLE deliveries (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX deliveries_by_webhook ON deliveries(webhook_id, status, seq);
CREATE TABLE action_links (
    hash TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL,
    data TEXT NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- The first answer to each request made under an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
-- Every task newest first, for pages of the whole list.
CREATE INDEX tasks_by_created ON tasks(created_at);
-- What each hour saw, kept up to date as tasks end and agents spend.
CREATE TABLE hours (
    hour INTEGER NOT NULL,
    project_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    succeeded INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cancelled INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, project_id, agent)
) WITHOUT ROWID;
CREATE TABLE hourly_queue (
    hour INTEGER PRIMARY KEY,
    queued INTEGER NOT NULL
);
"#,
    r#"
-- What lives between an agent's tasks: its memory's blocks (every version),
-- its journal, its inbox; and the lead Baton runs per project.
CREATE TABLE memory_blocks (
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    version INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (owner, label, version)
);
CREATE TABLE journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    agent TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX journal_by_agent ON journal(agent, seq);
CREATE TABLE agent_messages (
    id TEXT PRIMARY KEY,
    to_agent TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX agent_messages_by_agent ON agent_messages(to_agent, state, created_at);
CREATE TABLE leads (
    project_id TEXT PRIMARY KEY,
    fence BIGINT NOT NULL,
    data TEXT NOT NULL
);
"#,
    r#"
-- Chat: what came in (deduplicated by the service's ids, acted on once), the
-- threads bound to tasks, and the outbox of posts.
CREATE TABLE chat_inbound (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX chat_inbound_by_state ON chat_inbound(state, received_at);
CREATE TABLE chat_threads (
    key TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    open INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX chat_threads_by_task ON chat_threads(task_id);
CREATE INDEX chat_threads_open ON chat_threads(open);
CREATE TABLE chat_posts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX chat_posts_by_state ON chat_posts(state, created_at);
CREATE TABLE permissions (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    data TEXT NOT NULL
);
-- Work that starts by itself: schedules and incoming webhooks.
CREATE TABLE schedules (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    next_at INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX schedules_by_next ON schedules(next_at);
CREATE TABLE triggers (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE trigger_hits (
    trigger_name TEXT NOT NULL,
    webhook_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (trigger_name, webhook_id)
);
CREATE INDEX trigger_hits_by_time ON trigger_hits(trigger_name, at);
"#,
    r#"
-- What each project's agents spent, kept up to date as usage arrives:
-- GET /api/costs reads it instead of summing every session.
CREATE TABLE spend (
    project_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, agent)
);
INSERT INTO spend (project_id, agent, input_tokens, output_tokens, cost_usd)
SELECT json_extract(data, '$.project_id'), json_extract(data, '$.agent'),
       COALESCE(SUM(json_extract(data, '$.usage.input_tokens')), 0),
       COALESCE(SUM(json_extract(data, '$.usage.output_tokens')), 0),
       COALESCE(SUM(json_extract(data, '$.usage.cost_usd')), 0)
FROM sessions GROUP BY 1, 2;
"#,
    r#"
-- The context store's meaning index: each document's passages with their
-- vectors (of one model), the documents waiting to be embedded (queued by the
-- push itself), and which model the vectors are of.
CREATE TABLE doc_chunks (
    name TEXT NOT NULL,
    seq INTEGER NOT NULL,
    version INTEGER NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BLOB NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE INDEX doc_chunks_by_model ON doc_chunks(model);
CREATE TABLE embed_jobs (
    name TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    failed INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX embed_jobs_due ON embed_jobs(failed, next_at);
CREATE TABLE embed_state (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    model TEXT,
    dims INTEGER,
    generation INTEGER NOT NULL DEFAULT 0
);
INSERT INTO embed_state (id, generation) VALUES (1, 0);
"#,
    r#"
-- Worksets (groups of projects a task changes together) and the journals of
-- landings across their repositories.
CREATE TABLE worksets (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE landings (
    task_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
-- A document's tags beside its JSON: filtering by tag reads them, not the
-- whole document.
ALTER TABLE documents ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
UPDATE documents SET tags = COALESCE(json_extract(data, '$.tags'), '[]');
-- How many documents each word is in (read by hybrid searches).
CREATE VIRTUAL TABLE documents_vocab USING fts5vocab(documents_fts, 'row');
"#,
    r#"
-- Output archived: the lines a settled task's agent printed, moved out of
-- events into compressed slices (one session each); where the archiver has
-- read the events up to; and sessions whose output waits for their task to
-- settle.
CREATE TABLE event_archives (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id TEXT NOT NULL,
    task_id TEXT,
    first_id INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX event_archives_by_session ON event_archives(session_id, first_seq);
CREATE INDEX event_archives_by_task ON event_archives(task_id, first_id) WHERE task_id IS NOT NULL;
CREATE TABLE retention (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    scanned INTEGER NOT NULL
);
INSERT INTO retention (id, scanned) VALUES (1, 0);
CREATE TABLE output_waiting (
    session_id TEXT PRIMARY KEY
);
"#,
];

/// The newest schema this Baton knows.
pub fn known_version() -> i64 {
    MIGRATIONS.len() as i64
}

/// Brings the schema up to date, one migration per transaction.
pub(crate) fn migrate(conn: &Connection) -> Result<(), StoreError> {
    let db = |e: rusqlite::Error| StoreError::Database(Box::new(e));
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(db)?;
    let known = MIGRATIONS.len() as i64;
    if version > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        let batch = format!("BEGIN IMMEDIATE; {sql}; PRAGMA user_version = {}; COMMIT;", i + 1);
        if let Err(e) = conn.execute_batch(&batch) {
            let _ = conn.execute_batch("ROLLBACK");
            return Err(db(e));
        }
        tracing::info!(version = i + 1, "database migrated");
    }
    Ok(())
}
