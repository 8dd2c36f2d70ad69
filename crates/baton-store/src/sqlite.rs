//! The SQLite backend: one file in WAL mode, one writer thread with group commit,
//! and a few reader threads with their own connections.

mod archive;
mod db;
mod meaning;
mod schema;

pub use schema::known_version;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

use crate::StoreError;
use crate::store::{Backend, Committed, Completion, Notice, ReadJob, Store, WriteJob, WriteQueue};
use db::Db;

/// How hard commits try to reach the disk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Durability {
    /// A commit survives a crash or `kill -9` of Baton (WAL, `synchronous=NORMAL`);
    /// the last commits may be lost if the machine loses power.
    #[default]
    Process,
    /// A commit is flushed to the disk before it is acknowledged (`synchronous=FULL`).
    Power,
}

/// How to open the database.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file (created with its schema when missing).
    pub path: PathBuf,
    /// How many reader threads to run.
    pub readers: usize,
    /// What a commit guarantees.
    pub durability: Durability,
}

impl SqliteOptions {
    /// Defaults for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into(), readers: 2, durability: Durability::default() }
    }
}

/// How many committed events subscribers may fall behind before they must catch up
/// from the database. The ring is allocated whole at start (about 32 bytes a slot),
/// so it is sized for ordinary bursts; a bigger one (a plan of thousands of tasks)
/// sends its readers to the database, which they read in pages.
pub(crate) const EVENT_BUFFER: usize = 4_096;

/// How many notices subscribers may fall behind (one that does gets
/// [`Notice::Resync`] from its receiver's lag).
pub(crate) const NOTICE_BUFFER: usize = 1_024;

/// Where the writer publishes what a commit made known.
struct Publisher {
    events: broadcast::Sender<Arc<Committed>>,
    notices: broadcast::Sender<Notice>,
}

/// Opens (creating and migrating as needed) the database and starts its threads.
pub fn open(options: &SqliteOptions) -> Result<Store, StoreError> {
    let place = options.path.display().to_string();
    let open_err = |source: rusqlite::Error| StoreError::Open { place: place.clone(), source: Box::new(source) };
    let writer = open_connection(&options.path, false).map_err(open_err)?;
    let sync = match options.durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    incremental_vacuum(&writer).map_err(open_err)?;
    writer.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};")).map_err(open_err)?;
    schema::migrate(&writer).map_err(|e| match e {
        StoreError::Database(source) => StoreError::Open { place: place.clone(), source },
        other => other,
    })?;

    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (notices, _) = broadcast::channel(NOTICE_BUFFER);
    let (write_tx, write_rx) = mpsc::channel::<(WriteJob, bool)>();
    let publisher = Publisher { events: events.clone(), notices: notices.clone() };
    thread::Builder::new()
        .name("baton-store-writer".into())
        .spawn(move || write_loop(writer, write_rx, publisher))
        .map_err(|e| StoreError::Open { place: place.clone(), source: Box::new(e) })?;

    let (read_tx, read_rx) = mpsc::channel::<ReadJob>();
    let read_rx = Arc::new(Mutex::new(read_rx));
    for i in 0..options.readers.max(1) {
        let conn = open_connection(&options.path, true).map_err(open_err)?;
        let jobs = Arc::clone(&read_rx);
        thread::Builder::new()
            .name(format!("baton-store-reader-{i}"))
            .spawn(move || read_loop(conn, jobs))
            .map_err(|e| StoreError::Open { place: place.clone(), source: Box::new(e) })?;
    }

    let backend = SqliteBackend { writes: write_tx, reads: read_tx };
    Ok(Store::new(Arc::new(backend), events, notices))
}

/// Makes the file give deleted rows' space back when asked
/// (`auto_vacuum=INCREMENTAL`, see `StoreTx::reclaim_space`): set before the
/// first table of a new file, and by one `VACUUM` (a copy of the file, once) for
/// a file made before Baton set it.
fn incremental_vacuum(conn: &Connection) -> Result<(), rusqlite::Error> {
    let mode: i64 = conn.query_row("PRAGMA auto_vacuum", [], |r| r.get(0))?;
    if mode == 2 {
        return Ok(());
    }
    conn.execute_batch("PRAGMA auto_vacuum=INCREMENTAL")?;
    let tables: i64 = conn.query_row("SELECT COUNT(*) FROM sqlite_schema", [], |r| r.get(0))?;
    if tables > 0 {
        tracing::info!("the store gives deleted rows' space back from now on: converting it once (VACUUM)");
        // A copy of the file: without the disk space for it, the store works as
        // before (its file just does not shrink) and the next start tries again.
        if let Err(e) = conn.execute_batch("VACUUM") {
            tracing::warn!(error = %e, "could not convert the store to give space back; it works as before");
        }
    }
    Ok(())
}

fn open_connection(path: &Path, read_only: bool) -> Result<Connection, rusqlite::Error> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.execute_batch("PRAGMA busy_timeout=10000; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-8000;")?;
    Ok(conn)
}

/// The SQLite implementation of [`Backend`].
struct SqliteBackend {
    /// Jobs for the writer thread.
    writes: Sender<(WriteJob, bool)>,
    /// Jobs for the reader threads.
    reads: Sender<ReadJob>,
}

impl Backend for SqliteBackend {
    fn submit_write(&self, job: WriteJob, urgent: bool) -> Result<(), StoreError> {
        self.writes.send((job, urgent)).map_err(|_| StoreError::Closed)
    }

    fn submit_read(&self, job: ReadJob) -> Result<(), StoreError> {
        self.reads.send(job).map_err(|_| StoreError::Closed)
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }
}

fn read_loop(conn: Connection, jobs: Arc<Mutex<Receiver<ReadJob>>>) {
    loop {
        let job = {
            let Ok(rx) = jobs.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let db = Db::new(&conn);
        // One read transaction per job: every statement of it sees the same
        // snapshot (a task and its runs as of one commit, never half of two).
        let snapshot = conn.execute_batch("BEGIN DEFERRED").is_ok();
        // A panicking job drops its reply sender, so its caller gets `Closed`.
        let _ = catch_unwind(AssertUnwindSafe(|| job(Ok(&db))));
        if snapshot {
            let _ = conn.execute_batch("COMMIT");
        }
    }
}

fn write_loop(conn: Connection, jobs: Receiver<(WriteJob, bool)>, publisher: Publisher) {
    let mut queue = WriteQueue::default();
    while let Some(group) = queue.next_group(&jobs) {
        let left = commit_group(&conn, group, &publisher, &mut || queue.urgent_waiting(&jobs));
        queue.put_back(left);
    }
}

/// Runs a group of jobs in one transaction, each in its own savepoint, then
/// commits, publishes the events of the jobs that succeeded, and answers every job.
/// When `urgent` says an urgent job is waiting, the group stops after the job in
/// progress; the jobs not run are returned.
fn commit_group(
    conn: &Connection,
    batch: Vec<WriteJob>,
    publisher: &Publisher,
    urgent: &mut dyn FnMut() -> bool,
) -> Vec<WriteJob> {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // The database is locked by another process past the busy timeout, or
        // cannot be written: each job is told so, and nothing is written.
        tracing::error!(error = %e, jobs = batch.len(), "could not begin a write transaction");
        let err = Arc::new(e);
        for job in batch {
            let (_, completion) = job(Err(StoreError::Unavailable(Box::new(SharedError(err.clone())))));
            completion(Ok(()));
        }
        return Vec::new();
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let mut published = Vec::new();
    let mut notices = Vec::new();
    let mut batch = batch.into_iter();
    let mut first = true;
    while let Some(job) = batch.next() {
        if !first && urgent() {
            let left: Vec<WriteJob> = std::iter::once(job).chain(batch).collect();
            finish_group(conn, completions, published, notices, publisher);
            return left;
        }
        first = false;
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "could not open a savepoint");
        }
        let mut db = Db::new(conn);
        match catch_unwind(AssertUnwindSafe(|| job(Ok(&mut db)))) {
            Ok((true, completion)) => {
                let _ = conn.execute_batch("RELEASE job");
                published.append(&mut db.appended);
                notices.append(&mut db.notices);
                completions.push(completion);
            }
            Ok((false, completion)) => {
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
                completions.push(completion);
            }
            Err(_) => {
                tracing::error!("a store write job panicked; its writes were rolled back");
                let _ = conn.execute_batch("ROLLBACK TO job; RELEASE job");
            }
        }
    }
    finish_group(conn, completions, published, notices, publisher);
    Vec::new()
}

/// Commits a group, publishes what its jobs appended and noticed, answers them.
fn finish_group(
    conn: &Connection,
    completions: Vec<Completion>,
    published: Vec<baton_core::event::Event>,
    notices: Vec<Notice>,
    publisher: &Publisher,
) {
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for event in published {
                let json = serde_json::to_string(&event).unwrap_or_default().into();
                let _ = publisher.events.send(Arc::new(Committed { event, json }));
            }
            for notice in notices {
                let _ = publisher.notices.send(notice);
            }
            for completion in completions {
                completion(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed; the group was rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            let full = db::is_full(&e);
            let err = Arc::new(e);
            for completion in completions {
                let shared = Box::new(SharedError(err.clone()));
                completion(Err(if full { StoreError::Full(shared) } else { StoreError::Database(shared) }));
            }
        }
    }
}

/// One database error reported to several callers.
#[derive(Debug)]
struct SharedError(Arc<rusqlite::Error>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auto_vacuum(path: &Path) -> i64 {
        Connection::open(path).unwrap().query_row("PRAGMA auto_vacuum", [], |r| r.get(0)).unwrap()
    }

    #[test]
    fn a_store_gives_space_back_new_or_made_before() {
        let dir = tempfile::tempdir().unwrap();
        let new = dir.path().join("new.db");
        drop(open(&SqliteOptions::new(&new)).unwrap());
        assert_eq!(auto_vacuum(&new), 2, "incremental from the first table");

        // A file an older Baton made: converted once at its first start, its rows kept.
        let old = dir.path().join("old.db");
        let conn = Connection::open(&old).unwrap();
        conn.execute_batch("CREATE TABLE keep (x TEXT); INSERT INTO keep VALUES ('still here');").unwrap();
        drop(conn);
        assert_eq!(auto_vacuum(&old), 0);
        drop(open(&SqliteOptions::new(&old)).unwrap());
        assert_eq!(auto_vacuum(&old), 2);
        let kept: String = Connection::open(&old).unwrap().query_row("SELECT x FROM keep", [], |r| r.get(0)).unwrap();
        assert_eq!(kept, "still here");
    }
}
