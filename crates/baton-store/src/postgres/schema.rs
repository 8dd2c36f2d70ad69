//! The PostgreSQL schema, its migrations, and the check that the coordinators
//! sharing a database can work side by side.
//!
//! `schema_version` records how many migrations have run; each new one is
//! appended to [`MIGRATIONS`], never edited. Migrations run under an advisory
//! lock, so replicas starting together migrate once. Every coordinator records
//! itself in `replicas` (with the schema it knows) and refreshes that row while
//! it runs: a coordinator that would migrate the schema under a live replica of
//! an older one refuses to start instead.

use postgres::Client;

use super::{NOW_MS, WRITE_LOCK};
use crate::StoreError;

/// A migration: its SQL, and whether a coordinator that knows only the
/// migrations before it can keep working on the schema after it, beside the
/// coordinators that know it (a rolling upgrade). Compatible: new tables, new
/// indexes, new columns with defaults, nothing an older writer would leave
/// wrong. Breaking: anything else; older coordinators stop taking work first.
#[derive(Clone, Copy)]
pub(crate) struct Migration {
    sql: &'static str,
    compatible: bool,
}

impl Migration {
    const fn compatible(sql: &'static str) -> Self {
        Self { sql, compatible: true }
    }

    const fn breaking(sql: &'static str) -> Self {
        Self { sql, compatible: false }
    }
}

/// Every migration, in order.
const MIGRATIONS: &[Migration] = &[
    Migration::breaking(
        r#"
CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE agents (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE tasks (
    id TEXT PRIMARY KEY,
    n BIGSERIAL,
    project_id TEXT NOT NULL,
    status TEXT NOT NULL,
    parent_session_id TEXT,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX tasks_by_project ON tasks(project_id, created_at);
CREATE INDEX tasks_by_status ON tasks(status, created_at);
CREATE INDEX tasks_by_parent ON tasks(parent_session_id) WHERE parent_session_id IS NOT NULL;
CREATE TABLE task_deps (
    task_id TEXT NOT NULL,
    depends_on TEXT NOT NULL,
    PRIMARY KEY (task_id, depends_on)
);
CREATE INDEX task_deps_reverse ON task_deps(depends_on, task_id);
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    n BIGSERIAL,
    task_id TEXT NOT NULL,
    project_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    agent_session_id TEXT,
    input_tokens BIGINT NOT NULL,
    output_tokens BIGINT NOT NULL,
    cost_usd DOUBLE PRECISION NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX sessions_by_task ON sessions(task_id, created_at);
CREATE INDEX sessions_by_created ON sessions(created_at);
CREATE INDEX sessions_by_agent_session ON sessions(agent_session_id) WHERE agent_session_id IS NOT NULL;
CREATE TABLE runs (
    id TEXT PRIMARY KEY,
    n BIGSERIAL,
    session_id TEXT NOT NULL,
    status TEXT NOT NULL,
    launcher_id TEXT,
    created_at BIGINT NOT NULL,
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
    id BIGSERIAL PRIMARY KEY,
    ts BIGINT NOT NULL,
    session_id TEXT,
    seq BIGINT,
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
    created_at BIGINT NOT NULL,
    id TEXT UNIQUE,
    name TEXT
);
CREATE INDEX tokens_by_subject ON tokens(kind, subject);
CREATE TABLE launcher_orders (
    launcher_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    subject TEXT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (launcher_id, kind, subject)
);
CREATE TABLE session_states (
    session_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE plans (
    id TEXT PRIMARY KEY,
    n BIGSERIAL,
    project_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE orchestrations (
    id TEXT PRIMARY KEY,
    n BIGSERIAL,
    project_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE TABLE heartbeats (
    id BIGSERIAL PRIMARY KEY,
    project_id TEXT NOT NULL,
    at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX heartbeats_by_project ON heartbeats(project_id, id);
CREATE TABLE documents (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    project_id TEXT,
    updated_at BIGINT NOT NULL,
    search TSVECTOR NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX documents_search ON documents USING GIN (search);
CREATE TABLE document_versions (
    name TEXT NOT NULL,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (name, version)
);
CREATE TABLE blobs (
    sha256 TEXT PRIMARY KEY,
    bytes BYTEA NOT NULL
);
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    fence BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE TABLE login_codes (
    hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE TABLE merge_requests (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    done BOOLEAN NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX merge_requests_pending ON merge_requests(done, created_at);
"#,
    ),
    // Runs carry their project and agent, which an older writer would leave out.
    Migration::breaking(
        r#"
ALTER TABLE runs ADD COLUMN project_id TEXT;
ALTER TABLE runs ADD COLUMN agent TEXT;
UPDATE runs SET project_id = data::json->>'project_id', agent = data::json->>'agent';
CREATE INDEX runs_by_project ON runs(project_id, status);
CREATE INDEX runs_by_agent ON runs(agent, status);
CREATE TABLE project_spend (
    project_id TEXT PRIMARY KEY,
    cost_usd DOUBLE PRECISION NOT NULL
);
INSERT INTO project_spend (project_id, cost_usd)
    SELECT project_id, SUM(cost_usd) FROM sessions GROUP BY project_id;
CREATE INDEX heartbeats_by_time ON heartbeats(at);
"#,
    ),
    Migration::compatible(
        r#"
CREATE TABLE pools (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
-- The queue in order with what a claim leaves out, read from the index alone.
DROP INDEX runs_by_status;
CREATE INDEX runs_by_status ON runs(status, created_at, n, project_id, agent);
"#,
    ),
    Migration::compatible(
        r#"
CREATE TABLE webhooks (
    id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
-- The outbox: `seq` is each webhook's order of delivery (commit order, as
-- every write transaction holds the writer lock).
CREATE TABLE deliveries (
    seq BIGSERIAL PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    webhook_id TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX deliveries_by_webhook ON deliveries(webhook_id, status, seq);
CREATE TABLE action_links (
    hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
"#,
    ),
    // The hourly aggregates are kept by every writer as tasks end: an older one
    // would leave them short.
    Migration::breaking(
        r#"
-- The first answer to each request made under an Idempotency-Key, per caller.
CREATE TABLE idempotency_keys (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_by_age ON idempotency_keys(created_at);
-- Every task newest first, for pages of the whole list.
CREATE INDEX tasks_by_created ON tasks(created_at, n);
-- What each hour saw, kept up to date as tasks end and agents spend.
CREATE TABLE hours (
    hour BIGINT NOT NULL,
    project_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    succeeded BIGINT NOT NULL DEFAULT 0,
    failed BIGINT NOT NULL DEFAULT 0,
    cancelled BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, project_id, agent)
);
CREATE TABLE hourly_queue (
    hour BIGINT PRIMARY KEY,
    queued BIGINT NOT NULL
);
"#,
    ),
    Migration::compatible(
        r#"
-- What lives between an agent's tasks: its memory's blocks (every version),
-- its journal, its inbox; and the lead Baton runs per project.
CREATE TABLE memory_blocks (
    owner TEXT NOT NULL,
    label TEXT NOT NULL,
    version BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (owner, label, version)
);
CREATE TABLE journal (
    seq BIGSERIAL PRIMARY KEY,
    agent TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX journal_by_agent ON journal(agent, seq);
CREATE TABLE agent_messages (
    id TEXT PRIMARY KEY,
    to_agent TEXT NOT NULL,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX agent_messages_by_agent ON agent_messages(to_agent, state, created_at);
CREATE TABLE leads (
    project_id TEXT PRIMARY KEY,
    fence BIGINT NOT NULL,
    data TEXT NOT NULL
);
"#,
    ),
    Migration::compatible(
        r#"
-- Chat: what came in (deduplicated by the service's ids, acted on once), the
-- threads bound to tasks, and the outbox of posts.
CREATE TABLE chat_inbound (
    key TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX chat_inbound_by_state ON chat_inbound(state, received_at);
CREATE TABLE chat_threads (
    key TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    open BOOLEAN NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX chat_threads_by_task ON chat_threads(task_id);
CREATE INDEX chat_threads_open ON chat_threads(open);
CREATE TABLE chat_posts (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created_at BIGINT NOT NULL,
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
    next_at BIGINT NOT NULL,
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
    at BIGINT NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (trigger_name, webhook_id)
);
CREATE INDEX trigger_hits_by_time ON trigger_hits(trigger_name, at);
"#,
    ),
    // What each project's agents spent, kept by every writer as usage arrives
    // (an older one would leave it short).
    Migration::breaking(
        r#"
CREATE TABLE spend (
    project_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    input_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, agent)
);
INSERT INTO spend (project_id, agent, input_tokens, output_tokens, cost_usd)
SELECT project_id, agent, COALESCE(SUM(input_tokens), 0)::BIGINT, COALESCE(SUM(output_tokens), 0)::BIGINT,
       COALESCE(SUM(cost_usd), 0)
FROM sessions GROUP BY project_id, agent;
"#,
    ),
    // The context store's meaning index. Every writer queues a pushed document
    // for embedding in the push's transaction (an older one would not).
    Migration::breaking(
        r#"
CREATE TABLE doc_chunks (
    name TEXT NOT NULL,
    seq BIGINT NOT NULL,
    version BIGINT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    vector BYTEA NOT NULL,
    PRIMARY KEY (name, seq)
);
CREATE INDEX doc_chunks_by_model ON doc_chunks(model);
CREATE TABLE embed_jobs (
    name TEXT PRIMARY KEY,
    version BIGINT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_at BIGINT NOT NULL DEFAULT 0,
    error TEXT,
    failed BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX embed_jobs_due ON embed_jobs(failed, next_at);
CREATE TABLE embed_state (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    model TEXT,
    dims BIGINT,
    generation BIGINT NOT NULL DEFAULT 0
);
INSERT INTO embed_state (id, generation) VALUES (1, 0);
"#,
    ),
    // Worksets and the journals of landings across their repositories: new
    // tables an older coordinator never reads.
    Migration::compatible(
        r#"
CREATE TABLE worksets (
    name TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
CREATE TABLE landings (
    task_id TEXT PRIMARY KEY,
    data TEXT NOT NULL
);
"#,
    ),
    // Output archived: a settled task's printed lines moved out of events into
    // compressed slices, the archiver's place, and sessions waiting for their
    // task to settle: new tables an older coordinator never reads (it reads
    // archived output as gone).
    Migration::compatible(
        r#"
CREATE TABLE event_archives (
    id BIGSERIAL PRIMARY KEY,
    session_id TEXT NOT NULL,
    task_id TEXT,
    first_id BIGINT NOT NULL,
    last_id BIGINT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    count BIGINT NOT NULL,
    bytes BIGINT NOT NULL,
    data BYTEA NOT NULL
);
CREATE INDEX event_archives_by_session ON event_archives(session_id, first_seq);
CREATE INDEX event_archives_by_task ON event_archives(task_id, first_id) WHERE task_id IS NOT NULL;
CREATE TABLE retention (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    scanned BIGINT NOT NULL
);
INSERT INTO retention (id, scanned) VALUES (1, 0);
CREATE TABLE output_waiting (
    session_id TEXT PRIMARY KEY
);
"#,
    ),
];

/// Every migration this build runs: [`MIGRATIONS`], then, for tests of rolling
/// upgrades only, `BATON_TEST_EXTRA_MIGRATIONS` (`compatible,breaking,...`):
/// one empty table each, so a build can play the next version of itself.
fn migrations() -> &'static [Migration] {
    static ALL: std::sync::OnceLock<Vec<Migration>> = std::sync::OnceLock::new();
    ALL.get_or_init(|| {
        let mut all: Vec<Migration> = MIGRATIONS.to_vec();
        let extra = std::env::var("BATON_TEST_EXTRA_MIGRATIONS").unwrap_or_default();
        for (i, kind) in extra.split(',').map(str::trim).filter(|k| !k.is_empty()).enumerate() {
            let sql: &'static str = format!("CREATE TABLE test_migration_{} (n INT)", MIGRATIONS.len() + i + 1).leak();
            all.push(Migration { sql, compatible: kind == "compatible" });
        }
        all
    })
}

/// The newest schema this build knows.
pub(crate) fn known() -> i64 {
    migrations().len() as i64
}

/// The oldest schema a coordinator must know to work on schema `version`: the
/// last breaking migration up to it.
fn floor_of(version: i64) -> i64 {
    migrations().iter().take(version.max(0) as usize).rposition(|m| !m.compatible).map_or(0, |i| i as i64 + 1)
}

/// The advisory lock migrations run under.
const MIGRATION_LOCK: i64 = 0x6261_746f_6e01;

/// How long a replica that stopped refreshing its row still counts as running.
pub(crate) const REPLICA_LIVE_MS: i64 = 30_000;

/// How long a coordinator about to run a breaking migration waits for the
/// older ones to stop taking work.
const FENCE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// This coordinator, as recorded in `replicas`.
pub(crate) struct Replica<'a> {
    pub(crate) id: &'a str,
    pub(crate) host: &'a str,
}

/// Brings the schema up to date and records this replica.
///
/// Beside live replicas that know an older schema: compatible migrations run
/// under them (they keep working); before a breaking one, the schema's `floor`
/// is raised, each of them stops taking work at its next beat and says so in
/// its row, and only then does the migration run, under the write lock (so no
/// write of theirs lands after it). A replica of a Baton that cannot stop
/// itself that way (older than the floor, and not `aware`) makes this one
/// refuse to start instead.
pub(crate) fn migrate(client: &mut Client, me: &Replica<'_>) -> Result<(), StoreError> {
    let db = super::pg_err;
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL);
             CREATE TABLE IF NOT EXISTS replicas (
                 id TEXT PRIMARY KEY, host TEXT NOT NULL, baton TEXT NOT NULL, schema_version BIGINT NOT NULL,
                 started_at BIGINT NOT NULL, seen_at BIGINT NOT NULL)",
        )
        .or_else(|e| if is_concurrent_create(&e) { Ok(()) } else { Err(db(e)) })?;
    client.execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK]).map_err(db)?;
    let result = client
        .batch_execute(
            "ALTER TABLE schema_version ADD COLUMN IF NOT EXISTS floor BIGINT NOT NULL DEFAULT 0;
             ALTER TABLE replicas ADD COLUMN IF NOT EXISTS aware BOOLEAN NOT NULL DEFAULT FALSE;
             ALTER TABLE replicas ADD COLUMN IF NOT EXISTS stopped TEXT",
        )
        .map_err(db)
        .and_then(|()| migrate_locked(client, me));
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK]);
    result
}

/// Two replicas creating the bookkeeping tables at the same moment: one wins.
fn is_concurrent_create(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::DUPLICATE_TABLE)
}

/// A live replica other than this one.
struct Other {
    id: String,
    host: String,
    baton: String,
    schema: i64,
    aware: bool,
}

fn live_others(client: &mut Client, me: &Replica<'_>) -> Result<Vec<Other>, StoreError> {
    let sql = format!(
        "SELECT id, host, baton, schema_version, aware FROM replicas WHERE seen_at > {NOW_MS} - $1 AND id <> $2 AND stopped IS NULL"
    );
    let rows = client.query(&sql, &[&REPLICA_LIVE_MS, &me.id]).map_err(super::pg_err)?;
    Ok(rows
        .iter()
        .map(|r| Other { id: r.get(0), host: r.get(1), baton: r.get(2), schema: r.get(3), aware: r.get(4) })
        .collect())
}

fn migrate_locked(client: &mut Client, me: &Replica<'_>) -> Result<(), StoreError> {
    let db = super::pg_err;
    let known = known();
    let (version, floor): (i64, i64) =
        match client.query_opt("SELECT version, floor FROM schema_version", &[]).map_err(db)? {
            Some(row) => (row.get(0), row.get(1)),
            None => {
                client.execute("INSERT INTO schema_version (version) VALUES (0)", &[]).map_err(db)?;
                (0, 0)
            }
        };
    if version > known && floor > known {
        return Err(StoreError::TooNew { found: version, known });
    }
    if version > known {
        tracing::info!(schema = version, known, "the database's schema is newer than this Baton's and works with it");
    }
    let target_floor = floor_of(known);
    if version < known && target_floor > floor {
        fence_older(client, me, target_floor)?;
    }
    for (i, m) in migrations().iter().enumerate().skip(version.max(0) as usize) {
        let v = i as i64 + 1;
        let batch = format!(
            "BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK}); {}; UPDATE schema_version SET version = {v}, floor = GREATEST(floor, {}); COMMIT;",
            m.sql,
            floor_of(v)
        );
        if let Err(e) = client.batch_execute(&batch) {
            let _ = client.batch_execute("ROLLBACK");
            return Err(db(e));
        }
        tracing::info!(version = v, compatible = m.compatible, "database migrated");
    }
    let upsert = format!(
        "INSERT INTO replicas (id, host, baton, schema_version, started_at, seen_at, aware) VALUES ($1, $2, $3, $4, {NOW_MS}, {NOW_MS}, TRUE)
         ON CONFLICT (id) DO UPDATE SET seen_at = excluded.seen_at, schema_version = excluded.schema_version, aware = TRUE, stopped = NULL"
    );
    client.execute(&upsert, &[&me.id, &me.host, &env!("CARGO_PKG_VERSION"), &known]).map_err(db)?;
    // Replicas gone for a day are forgotten.
    let prune = format!("DELETE FROM replicas WHERE seen_at < {NOW_MS} - 86400000");
    client.execute(&prune, &[]).map_err(db)?;
    Ok(())
}

/// Before a breaking migration: every live replica that knows less than
/// `floor` stops taking work (refused when one cannot), or this one refuses
/// to start and the floor is put back.
fn fence_older(client: &mut Client, me: &Replica<'_>, floor: i64) -> Result<(), StoreError> {
    let db = super::pg_err;
    let older: Vec<Other> = live_others(client, me)?.into_iter().filter(|o| o.schema < floor).collect();
    if older.is_empty() {
        return Ok(());
    }
    let name = |o: &Other| format!("coordinator {} on {} (Baton {}, schema {})", o.id, o.host, o.baton, o.schema);
    if let Some(o) = older.iter().find(|o| !o.aware) {
        return Err(StoreError::Incompatible {
            message: format!(
                "{} cannot work on database schema {floor}, which this Baton needs, and cannot stop itself for a \
                 rolling upgrade (its Baton is older than rolling upgrades): stop it, start this one, then upgrade it",
                name(o)
            ),
        });
    }
    let before: i64 = client.query_one("SELECT floor FROM schema_version", &[]).map_err(db)?.get(0);
    client.execute("UPDATE schema_version SET floor = $1", &[&floor]).map_err(db)?;
    tracing::warn!(
        floor,
        older = older.len(),
        "a breaking migration: waiting for older coordinators to stop taking work"
    );
    let started = std::time::Instant::now();
    loop {
        let waiting: Vec<Other> = live_others(client, me)?.into_iter().filter(|o| o.schema < floor).collect();
        if waiting.is_empty() {
            return Ok(());
        }
        if started.elapsed() > FENCE_WAIT {
            client.execute("UPDATE schema_version SET floor = $1", &[&before]).map_err(db)?;
            return Err(StoreError::Incompatible {
                message: format!(
                    "{} did not stop taking work within {}s for the move to database schema {floor}: stop it, then start this one",
                    name(&waiting[0]),
                    FENCE_WAIT.as_secs()
                ),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// What a running replica that knows schema `known` must do, from the
/// database's `floor`: `Some(reason)` to stop taking work.
pub(crate) fn fence_reason(client: &mut Client, known: i64) -> Result<Option<String>, StoreError> {
    let row = client.query_opt("SELECT version, floor FROM schema_version", &[]).map_err(super::pg_err)?;
    Ok(row.and_then(|r| {
        let (version, floor): (i64, i64) = (r.get(0), r.get(1));
        (floor > known).then(|| {
            format!(
                "this coordinator (Baton {}, database schema {known}) stopped taking work: the database is moving to \
                 schema {} (now {version}), which coordinators older than schema {floor} cannot use; upgrade it and start it again",
                env!("CARGO_PKG_VERSION"),
                floor.max(version)
            )
        })
    }))
}
