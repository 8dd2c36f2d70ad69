//! The PostgreSQL backend: several coordinators ("replicas") may share one
//! database, all active.
//!
//! Each replica runs one writer thread, a few reader threads and a listener, each
//! with its own connection.
//!
//! - **Writes** are group-committed as on SQLite: one transaction per group,
//!   each job in its own savepoint. Every write transaction first takes one
//!   transaction-scoped advisory lock, so write transactions of all replicas run
//!   one at a time. That is what keeps the single-writer guarantees the
//!   scheduler is built on (a claim reads then writes; a session's next `seq` is
//!   `MAX + 1`; a name is checked before it is taken), and it means a job never
//!   meets a serialization failure, so jobs need no retry.
//! - **Event order.** Because event ids are drawn under that lock, they are
//!   committed in id order: once event *n* is visible, every event before it is
//!   too. A replica publishes events by reading `id > last` (after its own
//!   commits, and when the listener hears `NOTIFY baton_events` from another
//!   replica), so every subscriber of every replica sees one order, without gaps
//!   or repeats, and `after=ID` means the same thing everywhere.
//! - **Reads** run in `REPEATABLE READ READ ONLY` transactions: one snapshot per
//!   job.
//! - **Notices** ([`Notice`]) travel as `NOTIFY baton_notices` with a JSON
//!   payload, sent inside the transaction so they are heard only if it commits.
//!   A listener that loses its connection publishes [`Notice::Resync`] when it is
//!   back, and catches up on events from where it was.
//! - **Outages.** A lost connection fails what was in flight with
//!   [`StoreError::Unavailable`] and is re-established for the next job.

mod archive;
mod bulk;
mod db;
mod meaning;
mod schema;
pub mod tls;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use baton_core::event::Event;
use postgres::error::SqlState;
use postgres::fallible_iterator::FallibleIterator;
use postgres::{Config, NoTls};
use tokio::sync::broadcast;

use crate::StoreError;
use crate::store::{Backend, Committed, Completion, Notice, ReadJob, Store, WriteJob, WriteQueue};
use db::{Conn, PgDb};

/// The database's clock, in milliseconds since the epoch (leases and replica
/// liveness are measured on it, never on a replica's own clock).
pub(crate) const NOW_MS: &str = "(extract(epoch from clock_timestamp()) * 1000)::BIGINT";

/// The advisory lock every write transaction holds.
pub(crate) const WRITE_LOCK: i64 = 0x6261_746f_6e00;

/// How many events are read per query when catching up.
const CATCH_UP_PAGE: i64 = 1_000;

/// How long the listener waits for a notification before it checks for events
/// anyway (a safety net; `NOTIFY` is what makes delivery prompt).
const LISTEN_TICK: Duration = Duration::from_millis(500);

/// How often a replica refreshes its row in `replicas`.
const REPLICA_BEAT: Duration = Duration::from_secs(5);

/// How to reach the database.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?…]` (libpq's URL form).
    pub url: String,
    /// How many reader threads (and connections) to run.
    pub readers: usize,
    /// This coordinator's name among the replicas (random when not set).
    pub replica: String,
    /// The host it runs on, for people reading `replicas`.
    pub host: String,
}

impl PgOptions {
    /// Defaults for the database at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        let mut bytes = [0u8; 6];
        let _ = getrandom_bytes(&mut bytes);
        let replica = format!("c-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
        let host =
            std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default();
        Self { url: url.into(), readers: 3, replica, host }
    }
}

fn getrandom_bytes(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

/// A URL fit to show: its password replaced by `***`.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return "(an unreadable URL)".into() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            let masked = if userinfo.contains(':') { format!("{user}:***") } else { user.to_owned() };
            format!("{scheme}://{masked}@{host}{path}")
        }
        None => url.to_owned(),
    }
}

/// What went wrong, in full: the server's own message when it sent one (a
/// refused password, a missing database), else the client's error and its cause.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let hint = match db.code() {
            c if *c == SqlState::INVALID_PASSWORD || *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION => {
                " (check the user and password in the store URL)"
            }
            c if *c == SqlState::INVALID_CATALOG_NAME => " (create the database first: createdb NAME)",
            _ => "",
        };
        return format!("{}: {}{hint}", db.severity(), db.message());
    }
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}

/// Maps a database error: a lost or refused connection is [`StoreError::Unavailable`].
pub(crate) fn pg_err(e: postgres::Error) -> StoreError {
    if is_outage(&e) {
        StoreError::Unavailable(Box::new(e))
    } else if e.code() == Some(&SqlState::DISK_FULL) {
        StoreError::Full(Box::new(e))
    } else {
        StoreError::Database(Box::new(e))
    }
}

/// Whether an error means the database cannot be reached (rather than that it
/// refused a statement).
fn is_outage(e: &postgres::Error) -> bool {
    if e.is_closed() {
        return true;
    }
    match e.code() {
        Some(code) => {
            code.code().starts_with("08")
                || *code == SqlState::ADMIN_SHUTDOWN
                || *code == SqlState::CRASH_SHUTDOWN
                || *code == SqlState::CANNOT_CONNECT_NOW
        }
        // No SQLSTATE: an I/O error, a closed socket.
        None => e.as_db_error().is_none(),
    }
}

/// Opens the database (migrating it as needed) and starts this replica's threads.
/// May be called from async code (it blocks the caller while it connects).
pub fn open(options: &PgOptions) -> Result<Store, StoreError> {
    // The client blocks on a runtime of its own, which cannot run inside another:
    // the connecting happens on a thread of its own.
    let options = options.clone();
    thread::scope(|scope| scope.spawn(|| open_here(&options)).join()).unwrap_or(Err(StoreError::Panicked))
}

fn open_here(options: &PgOptions) -> Result<Store, StoreError> {
    let place = redact(&options.url);
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open { place: place.clone(), source };
    let (config, _) = settings(&options.url)?;
    let mut first = connect(&config).map_err(|e| open_err(describe(&e).into()))?;
    let me = schema::Replica { id: &options.replica, host: &options.host };
    schema::migrate(&mut first.client, &me).map_err(|e| match e {
        StoreError::Database(source) | StoreError::Unavailable(source) => open_err(source),
        other => other,
    })?;
    let last =
        first.query("SELECT COALESCE(MAX(id), 0)::BIGINT FROM events", &[])?.first().map_or(0, |r| r.get::<_, i64>(0));

    let (events, _) = broadcast::channel(crate::sqlite::EVENT_BUFFER);
    let (notices, _) = broadcast::channel(crate::sqlite::NOTICE_BUFFER);
    let publisher = Arc::new(Publisher { last: Mutex::new(last), events: events.clone(), notices: notices.clone() });
    let spawn_err = |e: std::io::Error| open_err(Box::new(e));

    let (write_tx, write_rx) = mpsc::channel::<(WriteJob, bool)>();
    let fence = Arc::new(Mutex::new(None));
    let writer = Writer {
        config: config.clone(),
        conn: Some(first),
        publisher: Arc::clone(&publisher),
        replica: options.replica.clone(),
        fence: Arc::clone(&fence),
    };
    thread::Builder::new().name("baton-pg-writer".into()).spawn(move || writer.run(write_rx)).map_err(spawn_err)?;

    let (read_tx, read_rx) = mpsc::channel::<ReadJob>();
    let read_rx = Arc::new(Mutex::new(read_rx));
    for i in 0..options.readers.max(1) {
        let conn = connect(&config).map_err(|e| open_err(describe(&e).into()))?;
        let (jobs, config) = (Arc::clone(&read_rx), config.clone());
        thread::Builder::new()
            .name(format!("baton-pg-reader-{i}"))
            .spawn(move || read_loop(config, conn, jobs))
            .map_err(spawn_err)?;
    }

    let stop = Arc::new(AtomicBool::new(false));
    let listener = Listener {
        config,
        publisher,
        replica: options.replica.clone(),
        stop: Arc::clone(&stop),
        fence: Arc::clone(&fence),
    };
    let mut conn = connect(&listener.config).map_err(|e| open_err(describe(&e).into()))?;
    listener.listen(&mut conn)?;
    thread::Builder::new().name("baton-pg-listener".into()).spawn(move || listener.run(conn)).map_err(spawn_err)?;

    let backend = PgBackend { writes: write_tx, reads: read_tx, stop, fence: Arc::clone(&fence) };
    Ok(Store::new(Arc::new(backend), events, notices))
}

/// The connection settings a store URL names, TLS included.
fn settings(url: &str) -> Result<(PgConfig, tls::TlsSettings), StoreError> {
    let place = redact(url);
    let open_err = |source: Box<dyn std::error::Error + Send + Sync>| StoreError::Open { place: place.clone(), source };
    let (url, tls_settings) = tls::split(url).map_err(|e| open_err(e.into()))?;
    let tls = tls::client_config(&tls_settings).map_err(|e| open_err(e.into()))?.map(tls::Rustls);
    let mut config = Config::from_str(&url).map_err(|e| {
        open_err(
            format!("the store URL cannot be read ({e}); it looks like postgres://USER:PASSWORD@HOST:5432/DB").into(),
        )
    })?;
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    config.keepalives_idle(Duration::from_secs(15));
    config.application_name("baton");
    config.ssl_mode(match tls_settings.mode {
        tls::SslMode::Disable => postgres::config::SslMode::Disable,
        tls::SslMode::Prefer => postgres::config::SslMode::Prefer,
        _ => postgres::config::SslMode::Require,
    });
    Ok((PgConfig { pg: config, tls }, tls_settings))
}

/// What `baton doctor` and `baton backup` say of a PostgreSQL store.
#[derive(Debug, Clone)]
pub struct ServerReport {
    /// `server_version`.
    pub version: String,
    /// The TLS version of the connection, when it is encrypted.
    pub tls: Option<String>,
    /// How far the server's certificate was checked: `the CA and the host name`,
    /// `the CA`, or `nothing`.
    pub verified: &'static str,
    /// `wal_level` (point-in-time recovery needs `replica` or `logical`).
    pub wal_level: String,
    /// `archive_mode`.
    pub archive_mode: String,
    /// Baton's schema in it, when Baton has been there.
    pub schema: Option<i64>,
}

/// Connects to the store at `url` (changing nothing) and reports the server,
/// the connection's encryption and what was verified, and the settings a
/// backup depends on.
pub fn inspect(url: &str) -> Result<ServerReport, StoreError> {
    let url = url.to_owned();
    thread::scope(|scope| scope.spawn(|| inspect_here(&url)).join()).unwrap_or(Err(StoreError::Panicked))
}

fn inspect_here(url: &str) -> Result<ServerReport, StoreError> {
    let place = redact(url);
    let (config, tls_settings) = settings(url)?;
    let mut conn = connect(&config).map_err(|e| StoreError::Open { place, source: describe(&e).into() })?;
    let one = |c: &mut Conn, sql: &str| -> Result<String, StoreError> {
        Ok(c.query(sql, &[])?.first().map(|r| r.get::<_, String>(0)).unwrap_or_default())
    };
    let version = one(&mut conn, "SHOW server_version")?;
    let wal_level = one(&mut conn, "SHOW wal_level")?;
    let archive_mode = one(&mut conn, "SHOW archive_mode")?;
    let tls = conn
        .query("SELECT version FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl", &[])?
        .first()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_else(|| "TLS".into()));
    let verified = match (tls.is_some(), tls_settings.mode, tls_settings.root_cert.is_some()) {
        (false, ..) => "nothing",
        (true, tls::SslMode::VerifyFull, _) => "the CA and the host name",
        (true, tls::SslMode::VerifyCa, _) | (true, tls::SslMode::Require, true) => "the CA",
        _ => "nothing",
    };
    let schema = match conn.query("SELECT version FROM schema_version", &[]) {
        Ok(rows) => rows.first().map(|r| r.get::<_, i64>(0)),
        Err(_) => None,
    };
    Ok(ServerReport { version, tls, verified, wal_level, archive_mode, schema })
}

/// The connection settings, with TLS when the URL asks for it.
#[derive(Clone)]
struct PgConfig {
    pg: Config,
    tls: Option<tls::Rustls>,
}

fn connect(config: &PgConfig) -> Result<Conn, postgres::Error> {
    let mut client = match &config.tls {
        Some(tls) => config.pg.connect(tls.clone())?,
        None => config.pg.connect(NoTls)?,
    };
    // A statement that runs this long is a bug or a dead database; either way it
    // must not hold the write lock forever.
    client.batch_execute("SET statement_timeout = '60s'; SET idle_in_transaction_session_timeout = '60s'")?;
    Ok(Conn::new(client))
}

/// The PostgreSQL implementation of [`Backend`].
struct PgBackend {
    /// Jobs for the writer thread.
    writes: Sender<(WriteJob, bool)>,
    /// Jobs for the reader threads.
    reads: Sender<ReadJob>,
    /// Tells the listener to stop.
    stop: Arc<AtomicBool>,
    /// Why this replica stopped taking work, when it did.
    fence: Arc<Mutex<Option<String>>>,
}

impl Backend for PgBackend {
    fn submit_write(&self, job: WriteJob, urgent: bool) -> Result<(), StoreError> {
        self.writes.send((job, urgent)).map_err(|_| StoreError::Closed)
    }

    fn submit_read(&self, job: ReadJob) -> Result<(), StoreError> {
        self.reads.send(job).map_err(|_| StoreError::Closed)
    }

    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn stopped(&self) -> Option<String> {
        self.fence.lock().ok().and_then(|f| f.clone())
    }
}

impl Drop for PgBackend {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Publishes committed events in id order, once each, and notices.
struct Publisher {
    /// The newest event published.
    last: Mutex<i64>,
    events: broadcast::Sender<Arc<Committed>>,
    notices: broadcast::Sender<Notice>,
}

impl Publisher {
    /// Publishes the events a commit of this replica just made, from memory,
    /// after any of other replicas' committed before them (read from the
    /// database only when there is a gap to fill: ids drawn under the write lock
    /// are this transaction's, so anything between the last published and ours
    /// committed before it).
    fn publish_own(&self, conn: &mut Conn, mut mine: Vec<Event>) -> Result<(), StoreError> {
        let Ok(mut last) = self.last.lock() else { return Ok(()) };
        // The listener may have read them already.
        mine.retain(|e| e.id > *last);
        let Some(first) = mine.first().map(|e| e.id) else { return Ok(()) };
        if first > *last + 1 {
            let sql =
                format!("SELECT {} FROM events WHERE id > $1 AND id < $2 ORDER BY id", crate::rows::EVENT_COLUMNS);
            for row in conn.query(&sql, &[&*last, &first])? {
                self.publish(&mut last, db::event_row(&row).into_event()?);
            }
        }
        for event in mine {
            self.publish(&mut last, event);
        }
        Ok(())
    }

    fn publish(&self, last: &mut i64, event: Event) {
        *last = event.id;
        let json = serde_json::to_string(&event).unwrap_or_default().into();
        let _ = self.events.send(Arc::new(Committed { event, json }));
    }

    /// Publishes every committed event after the last one published.
    fn catch_up(&self, conn: &mut Conn) -> Result<(), StoreError> {
        let Ok(mut last) = self.last.lock() else { return Ok(()) };
        let sql = format!(
            "SELECT {} FROM events WHERE id > $1 ORDER BY id LIMIT {CATCH_UP_PAGE}",
            crate::rows::EVENT_COLUMNS
        );
        loop {
            let rows = conn.query(&sql, &[&*last])?;
            for row in &rows {
                self.publish(&mut last, db::event_row(row).into_event()?);
            }
            if (rows.len() as i64) < CATCH_UP_PAGE {
                return Ok(());
            }
        }
    }
}

/// A notice as sent through `NOTIFY`: who sent it (a replica ignores its own,
/// which it published at its commit).
#[derive(serde::Serialize, serde::Deserialize)]
struct Envelope {
    from: String,
    #[serde(flatten)]
    notice: Notice,
}

/// The writer thread's state.
struct Writer {
    config: PgConfig,
    /// The connection (`None` after it was lost, until the next job).
    conn: Option<Conn>,
    publisher: Arc<Publisher>,
    replica: String,
    /// Why this replica stopped taking work (a breaking migration by a newer
    /// one), when it did: every write is then refused.
    fence: Arc<Mutex<Option<String>>>,
}

impl Writer {
    fn run(mut self, jobs: Receiver<(WriteJob, bool)>) {
        let mut queue = WriteQueue::default();
        while let Some(group) = queue.next_group(&jobs) {
            let left = self.commit_group(group, &mut || queue.urgent_waiting(&jobs));
            queue.put_back(left);
        }
    }

    /// The connection, made again if it was lost.
    fn connection(&mut self) -> Result<&mut Conn, StoreError> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() {
            let conn = connect(&self.config).map_err(|e| StoreError::Unavailable(Box::new(e)))?;
            tracing::info!("the store's writer is connected to the database again");
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("just connected"))
    }

    /// Runs a group of jobs in one transaction under the write lock, each in its
    /// own savepoint, then commits, publishes, and answers every job. When
    /// `urgent` says an urgent job is waiting, the group stops after the job in
    /// progress and commits; the jobs not run are returned.
    fn commit_group(&mut self, batch: Vec<WriteJob>, urgent: &mut dyn FnMut() -> bool) -> Vec<WriteJob> {
        let replica = self.replica.clone();
        // A connection the server closed is found out here: made again once
        // (no job has run yet) before the group is told the database is away.
        let mut begun = self.begin();
        if let Err(e) = &begun {
            self.lost(e);
            begun = self.begin();
        }
        if let Err(e) = begun {
            self.lost(&e);
            fail_all(batch, &e);
            return Vec::new();
        }
        // Checked under the write lock: a breaking migration takes it too, so no
        // write of this replica lands after the migration once it stopped.
        let fenced = self.fence.lock().ok().and_then(|f| f.clone());
        let conn = self.conn.as_mut().expect("connected");
        if let Some(message) = fenced {
            let _ = conn.client.batch_execute("ROLLBACK");
            for job in batch {
                let (_, completion) = job(Err(StoreError::Incompatible { message: message.clone() }));
                completion(Err(StoreError::Incompatible { message: message.clone() }));
            }
            return Vec::new();
        }
        let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
        let (mut appended, mut notices) = (Vec::new(), Vec::new());
        // A job alone needs no savepoint: if it fails, the transaction is rolled back.
        let alone = batch.len() == 1;
        let mut undone = false;
        // What ends the previous job's savepoint, sent with the next one's start
        // (one round trip a job); the last is ended by the commit.
        let mut pending = "";
        let mut batch = batch.into_iter();
        let mut left = Vec::new();
        while let Some(job) = batch.next() {
            if !pending.is_empty() && urgent() {
                left = std::iter::once(job).chain(batch).collect();
                break;
            }
            if !alone {
                let _ = conn.client.batch_execute(&format!("{pending}SAVEPOINT job"));
            }
            let mut db = PgDb::new(conn);
            let ran = catch_unwind(AssertUnwindSafe(|| job(Ok(&mut db))));
            let ok = matches!(ran, Ok((true, _)));
            if ok {
                appended.append(&mut db.appended);
                notices.append(&mut db.notices);
            }
            pending = match (ok, alone) {
                (true, false) => "RELEASE job; ",
                (false, false) => "ROLLBACK TO job; RELEASE job; ",
                (true, true) => "",
                (false, true) => {
                    undone = true;
                    ""
                }
            };
            match ran {
                Ok((_, completion)) => completions.push(completion),
                Err(_) => tracing::error!("a store write job panicked; its writes were rolled back"),
            }
        }
        let mut end = pending.to_string();
        if undone {
            end.push_str("ROLLBACK");
        } else {
            // The notifications and the commit in one round trip.
            for notice in &notices {
                let payload = serde_json::to_string(&Envelope { from: replica.clone(), notice: notice.clone() })
                    .unwrap_or_default();
                end.push_str(&format!("NOTIFY baton_notices, '{}'; ", payload.replace('\'', "''")));
            }
            if !appended.is_empty() {
                end.push_str(&format!("NOTIFY baton_events, '{}'; ", replica.replace('\'', "''")));
            }
            end.push_str("COMMIT");
        }
        let committed = conn.client.batch_execute(&end).map_err(pg_err);
        match committed {
            Ok(()) => {
                if let Err(e) = self.publisher.publish_own(conn, appended) {
                    // The listener catches up when its connection is back.
                    tracing::warn!(error = %e, "could not publish the events just committed");
                }
                for notice in notices {
                    let _ = self.publisher.notices.send(notice);
                }
                for completion in completions {
                    completion(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "commit failed; the group was rolled back");
                let _ = conn.client.batch_execute("ROLLBACK");
                if matches!(e, StoreError::Unavailable(_)) {
                    self.conn = None;
                }
                let e = Arc::new(e);
                for completion in completions {
                    completion(Err(shared(&e)));
                }
            }
        }
        left
    }

    /// Begins a write transaction holding the write lock (one round trip).
    fn begin(&mut self) -> Result<(), StoreError> {
        let conn = self.connection()?;
        conn.client.batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})")).map_err(pg_err)
    }

    /// Forgets the connection when `e` says it is gone.
    fn lost(&mut self, e: &StoreError) {
        if matches!(e, StoreError::Unavailable(_)) {
            self.conn = None;
        }
    }
}

/// Answers every job of a group that could not begin.
fn fail_all(batch: Vec<WriteJob>, e: &StoreError) {
    let e = Arc::new(StoreError::Unavailable(e.to_string().into()));
    for job in batch {
        let (_, completion) = job(Err(shared(&e)));
        completion(Err(shared(&e)));
    }
}

/// One error reported to several callers, keeping its kind.
fn shared(e: &Arc<StoreError>) -> StoreError {
    let source: Box<dyn std::error::Error + Send + Sync> = Box::new(Shared(Arc::clone(e)));
    match **e {
        StoreError::Unavailable(_) => StoreError::Unavailable(source),
        _ => StoreError::Database(source),
    }
}

#[derive(Debug)]
struct Shared(Arc<StoreError>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match std::error::Error::source(&*self.0) {
            Some(source) => write!(f, "{}: {source}", self.0),
            None => self.0.fmt(f),
        }
    }
}

impl std::error::Error for Shared {}

fn read_loop(config: PgConfig, conn: Conn, jobs: Arc<Mutex<Receiver<ReadJob>>>) {
    let mut conn = Some(conn);
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        // One snapshot per job: a task and its runs as of one commit. A connection
        // the server closed (a restart) is only found out by using it: then a new
        // one is made, once, before the job is told the database is away.
        let mut begun = Err(StoreError::Unavailable("cannot connect to the database".into()));
        for _ in 0..2 {
            if conn.as_ref().is_none_or(|c| c.client.is_closed()) {
                conn = connect(&config).ok();
            }
            let Some(c) = conn.as_mut() else { break };
            begun = c.client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").map_err(pg_err);
            match &begun {
                Err(StoreError::Unavailable(_)) => conn = None,
                _ => break,
            }
        }
        let c = match (begun, conn.as_mut()) {
            (Ok(()), Some(c)) => c,
            (Err(e), _) => {
                let _ = catch_unwind(AssertUnwindSafe(|| job(Err(e))));
                continue;
            }
            (Ok(()), None) => unreachable!("a transaction began on a connection"),
        };
        let db = PgDb::new(c);
        // A panicking job drops its reply sender, so its caller gets `Closed`.
        let _ = catch_unwind(AssertUnwindSafe(|| job(Ok(&db))));
        drop(db);
        if c.client.batch_execute("COMMIT").is_err() {
            conn = None;
        }
    }
}

/// The listener thread: hears other replicas' commits and notices.
struct Listener {
    config: PgConfig,
    publisher: Arc<Publisher>,
    replica: String,
    stop: Arc<AtomicBool>,
    /// Set (and recorded in `replicas.stopped`) when the database's floor
    /// passes the schema this build knows.
    fence: Arc<Mutex<Option<String>>>,
}

impl Listener {
    /// Stops taking work when the database moves past what this build can use
    /// (and takes it up again if that move was called off).
    fn check_fence(&self, c: &mut Conn) -> Result<(), StoreError> {
        let reason = schema::fence_reason(&mut c.client, schema::known())?;
        let Ok(mut fence) = self.fence.lock() else { return Ok(()) };
        if *fence == reason {
            return Ok(());
        }
        match &reason {
            Some(r) => tracing::error!("{r}"),
            None => tracing::warn!("the database's move to a newer schema was called off; taking work again"),
        }
        *fence = reason.clone();
        drop(fence);
        c.execute("UPDATE replicas SET stopped = $2 WHERE id = $1", &[&self.replica, &reason])?;
        Ok(())
    }

    fn listen(&self, conn: &mut Conn) -> Result<(), StoreError> {
        conn.client.batch_execute("LISTEN baton_events; LISTEN baton_notices").map_err(pg_err)
    }

    fn run(self, conn: Conn) {
        let mut conn = Some(conn);
        let mut beat = Instant::now();
        let mut backoff = Duration::from_millis(100);
        while !self.stop.load(Ordering::Relaxed) {
            let Some(c) = conn.as_mut().filter(|c| !c.client.is_closed()) else {
                conn = self.reconnect();
                if conn.is_none() {
                    thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                } else {
                    backoff = Duration::from_millis(100);
                }
                continue;
            };
            // Caught up when another replica committed events, and when nothing was
            // heard for a while (a safety net).
            let heard = self.hear(c);
            if let Err(e) = heard.and_then(|due| if due { self.publisher.catch_up(c) } else { Ok(()) }) {
                tracing::warn!(error = %e, "the store's listener lost the database; reconnecting");
                conn = None;
                continue;
            }
            if beat.elapsed() >= REPLICA_BEAT {
                beat = Instant::now();
                let sql = format!("UPDATE replicas SET seen_at = {NOW_MS} WHERE id = $1");
                if let Err(e) = c.execute(&sql, &[&self.replica]).and_then(|_| self.check_fence(c)) {
                    tracing::warn!(error = %e, "could not record that this coordinator is alive");
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            let _ = c.execute("DELETE FROM replicas WHERE id = $1", &[&self.replica]);
        }
    }

    /// Waits a little for notifications and publishes the notices of others;
    /// whether another replica committed events (this one publishes its own).
    fn hear(&self, c: &mut Conn) -> Result<bool, StoreError> {
        let mut notifications = c.client.notifications();
        let mut heard = Vec::new();
        let first = notifications.timeout_iter(LISTEN_TICK).next().map_err(pg_err)?;
        if let Some(first) = first {
            heard.push(first);
            let mut pending = notifications.iter();
            while let Some(n) = pending.next().map_err(pg_err)? {
                heard.push(n);
            }
        }
        let others_events = heard.iter().any(|n| n.channel() == "baton_events" && n.payload() != self.replica);
        for n in heard.iter().filter(|n| n.channel() == "baton_notices") {
            match serde_json::from_str::<Envelope>(n.payload()) {
                Ok(envelope) if envelope.from != self.replica => {
                    let _ = self.publisher.notices.send(envelope.notice);
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "a notice could not be read"),
            }
        }
        Ok(others_events || heard.is_empty())
    }

    /// Connects and listens again; what was missed meanwhile is caught up by the
    /// caller (events) or forgotten by subscribers (notices, through `Resync`).
    fn reconnect(&self) -> Option<Conn> {
        let mut conn = connect(&self.config).ok()?;
        self.listen(&mut conn).ok()?;
        tracing::info!("the store's listener is connected to the database again");
        let _ = self.publisher.notices.send(Notice::Resync);
        Some(conn)
    }
}
