//! The SQLite backend: one file in WAL mode, one writer thread with group commit,
//! and a few reader threads with their own connections.

mod db;
mod schema;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::broadcast;

use crate::StoreError;
use crate::store::{Backend, Committed, Completion, ReadJob, Store, WriteJob};
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

/// How many write jobs are committed together at most.
const MAX_GROUP: usize = 512;

/// How many committed events subscribers may fall behind before they must catch up
/// from the database. The ring is allocated whole at start (about 32 bytes a slot),
/// so it is sized for ordinary bursts; a bigger one (a plan of thousands of tasks)
/// sends its readers to the database, which they read in pages.
const EVENT_BUFFER: usize = 4_096;

/// Opens (creating and migrating as needed) the database and starts its threads.
pub fn open(options: &SqliteOptions) -> Result<Store, StoreError> {
    let open_err = |source: rusqlite::Error| StoreError::Open { path: options.path.clone(), source: Box::new(source) };
    let writer = open_connection(&options.path, false).map_err(open_err)?;
    let sync = match options.durability {
        Durability::Process => "NORMAL",
        Durability::Power => "FULL",
    };
    writer.execute_batch(&format!("PRAGMA journal_mode=WAL; PRAGMA synchronous={sync};")).map_err(open_err)?;
    schema::migrate(&writer).map_err(|e| match e {
        StoreError::Database(source) => StoreError::Open { path: options.path.clone(), source },
        other => other,
    })?;

    let (events, _) = broadcast::channel(EVENT_BUFFER);
    let (write_tx, write_rx) = mpsc::channel::<WriteJob>();
    let publisher = events.clone();
    thread::Builder::new()
        .name("baton-store-writer".into())
        .spawn(move || write_loop(writer, write_rx, publisher))
        .map_err(|e| StoreError::Open { path: options.path.clone(), source: Box::new(e) })?;

    let (read_tx, read_rx) = mpsc::channel::<ReadJob>();
    let read_rx = Arc::new(Mutex::new(read_rx));
    for i in 0..options.readers.max(1) {
        let conn = open_connection(&options.path, true).map_err(open_err)?;
        let jobs = Arc::clone(&read_rx);
        thread::Builder::new()
            .name(format!("baton-store-reader-{i}"))
            .spawn(move || read_loop(conn, jobs))
            .map_err(|e| StoreError::Open { path: options.path.clone(), source: Box::new(e) })?;
    }

    let backend = SqliteBackend { writes: write_tx, reads: read_tx };
    Ok(Store::new(Arc::new(backend), events))
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
    writes: Sender<WriteJob>,
    /// Jobs for the reader threads.
    reads: Sender<ReadJob>,
}

impl Backend for SqliteBackend {
    fn submit_write(&self, job: WriteJob) -> Result<(), StoreError> {
        self.writes.send(job).map_err(|_| StoreError::Closed)
    }

    fn submit_read(&self, job: ReadJob) -> Result<(), StoreError> {
        self.reads.send(job).map_err(|_| StoreError::Closed)
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
        let _ = catch_unwind(AssertUnwindSafe(|| job(&db)));
        if snapshot {
            let _ = conn.execute_batch("COMMIT");
        }
    }
}

fn write_loop(conn: Connection, jobs: Receiver<WriteJob>, events: broadcast::Sender<Arc<Committed>>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit_group(&conn, batch, &events);
    }
}

/// Runs a group of jobs in one transaction, each in its own savepoint, then
/// commits, publishes the events of the jobs that succeeded, and answers every job.
fn commit_group(conn: &Connection, batch: Vec<WriteJob>, events: &broadcast::Sender<Arc<Committed>>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        // Dropping the jobs unrun drops their reply channels: each caller gets
        // `StoreError::Closed` and nothing is written.
        tracing::error!(error = %e, jobs = batch.len(), "could not begin a write transaction");
        return;
    }
    let mut completions: Vec<Completion> = Vec::with_capacity(batch.len());
    let mut published = Vec::new();
    for job in batch {
        if let Err(e) = conn.execute_batch("SAVEPOINT job") {
            tracing::error!(error = %e, "could not open a savepoint");
        }
        let mut db = Db::new(conn);
        match catch_unwind(AssertUnwindSafe(|| job(&mut db))) {
            Ok((true, completion)) => {
                let _ = conn.execute_batch("RELEASE job");
                published.append(&mut db.appended);
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
    match conn.execute_batch("COMMIT") {
        Ok(()) => {
            for event in published {
                let json = serde_json::to_string(&event).unwrap_or_default().into();
                let _ = events.send(Arc::new(Committed { event, json }));
            }
            for completion in completions {
                completion(Ok(()));
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed; the group was rolled back");
            let _ = conn.execute_batch("ROLLBACK");
            let err = Arc::new(e);
            for completion in completions {
                completion(Err(StoreError::Database(Box::new(SharedError(err.clone())))));
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
    use baton_core::event::{EventKind, NewEvent};
    use baton_core::ids::{ProjectId, SessionId};
    use baton_core::model::{Project, ProjectSettings};
    use baton_core::time::Timestamp;
    use serde_json::json;

    use super::*;
    use crate::EventFilter;

    fn project(name: &str) -> Project {
        Project {
            id: ProjectId::generate(),
            name: name.into(),
            path: format!("/tmp/{name}"),
            default_branch: "main".into(),
            settings: ProjectSettings::default(),
            created_at: Timestamp::now(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn writes_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        let p = project("alpha");
        rt().block_on(async {
            let store = open(&SqliteOptions::new(&path)).unwrap();
            let p2 = p.clone();
            store.write(move |tx| tx.put_project(&p2)).await.unwrap();
        });
        rt().block_on(async {
            let store = open(&SqliteOptions::new(&path)).unwrap();
            let id = p.id.clone();
            let got = store.read(move |r| r.project(&id)).await.unwrap();
            assert_eq!(got, Some(p));
        });
    }

    #[test]
    fn session_events_are_numbered_per_session() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            let (a, b) = (SessionId::generate(), SessionId::generate());
            let (a2, b2) = (a.clone(), b.clone());
            let seqs = store
                .write(move |tx| {
                    let mut seqs = Vec::new();
                    for s in [&a2, &b2, &a2, &a2] {
                        let e = tx.append_event(Some(s), None, None, NewEvent::log("x"))?;
                        seqs.push(e.seq.unwrap());
                    }
                    let global = tx.append_event(None, None, None, NewEvent::log("y"))?;
                    assert_eq!(global.seq, None);
                    Ok::<_, StoreError>(seqs)
                })
                .await
                .unwrap();
            assert_eq!(seqs, [1, 1, 2, 3]);
            let a3 = a.clone();
            let events = store.read(move |r| r.session_events(&a3, 1, 10)).await.unwrap();
            assert_eq!(events.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(), [2, 3]);
            let all = store.read(|r| r.events(&EventFilter { limit: 100, ..Default::default() })).await.unwrap();
            assert_eq!(all.len(), 5);
            assert!(all.windows(2).all(|w| w[0].id < w[1].id));
        });
    }

    #[test]
    fn a_failed_job_is_rolled_back_alone_and_publishes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            let mut sub = store.subscribe();
            let s = SessionId::generate();
            let (s1, s2) = (s.clone(), s.clone());
            let good = store.write(move |tx| {
                tx.append_event(Some(&s1), None, None, NewEvent::log("kept"))?;
                Ok::<_, StoreError>(())
            });
            let bad = store.write(move |tx| {
                tx.append_event(Some(&s2), None, None, NewEvent::log("undone"))?;
                Err::<(), _>(StoreError::Closed)
            });
            let (good, bad) = tokio::join!(good, bad);
            assert!(good.is_ok());
            assert!(bad.is_err());
            let published = sub.recv().await.unwrap();
            assert_eq!(published.event.data, json!({"message": "kept"}));
            assert!(sub.try_recv().is_err());
            let s3 = s.clone();
            let events = store.read(move |r| r.session_events(&s3, 0, 10)).await.unwrap();
            assert_eq!(events.len(), 1);
            assert_eq!(events[0].kind, EventKind::Log);
        });
    }

    #[test]
    fn duplicate_names_are_reported() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            let (p, mut q) = (project("same"), project("same"));
            q.path = "/elsewhere".into();
            store.write(move |tx| tx.put_project(&p)).await.unwrap();
            let err = store.write(move |tx| tx.put_project(&q)).await.unwrap_err();
            assert!(matches!(err, StoreError::Duplicate { .. }), "{err:?}");
        });
    }

    #[test]
    fn ids_resolve_by_prefix() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            let p = project("x");
            store.write(move |tx| tx.put_project(&p)).await.unwrap();
            let found = store.read(|r| r.ids_with_prefix("project", "p-", 5)).await.unwrap();
            assert_eq!(found.len(), 1);
            let none = store.read(|r| r.ids_with_prefix("project", "p-*", 5)).await.unwrap();
            assert!(none.is_empty());
        });
    }

    #[test]
    fn newer_schemas_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.db");
        drop(open(&SqliteOptions::new(&path)).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 999").unwrap();
        drop(conn);
        assert!(matches!(open(&SqliteOptions::new(&path)), Err(StoreError::TooNew { found: 999, .. })));
    }

    fn document(name: &str, content: &str, tags: &[&str], version: u32) -> baton_core::doc::Document {
        baton_core::doc::Document {
            name: name.into(),
            content: Some(content.into()),
            blob: None,
            content_type: "text/markdown".into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            metadata: Default::default(),
            relations: Vec::new(),
            project_id: None,
            version,
            size: content.len() as u64,
            written_by: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        }
    }

    #[test]
    fn documents_are_searched_by_relevance_and_keep_their_versions() {
        use crate::DocFilter;
        use baton_core::doc::fts_query;
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            store
                .write(|tx| {
                    tx.put_document(&document("notes/api", "The REST API uses bearer tokens.", &["api"], 1))?;
                    tx.put_document(&document("notes/db", "SQLite in WAL mode; tokens hashed.", &["db"], 1))?;
                    tx.put_document(&document("tokens", "Everything about tokens: tokens, tokens.", &["security"], 1))?;
                    tx.put_document(&document("notes/api", "The REST API uses bearer tokens and cookies.", &["api"], 2))
                })
                .await
                .unwrap();
            let search = |q: &str, tags: Vec<String>| {
                let filter = DocFilter { query: fts_query(q), tags, limit: 10, ..Default::default() };
                let store = store.clone();
                async move { store.read(move |r| r.documents(&filter)).await.unwrap() }
            };
            let hits = search("tokens", vec![]).await;
            let names: Vec<&str> = hits.iter().map(|h| h.doc.name.as_str()).collect();
            assert_eq!(names[0], "tokens", "the name and the most mentions rank first: {names:?}");
            assert_eq!(names.len(), 3);
            assert!(hits[0].snippet.as_deref().unwrap().contains("[tokens]"));
            assert!(hits[0].score.unwrap() >= hits[1].score.unwrap());
            let hits = search("tokens", vec!["db".into()]).await;
            assert_eq!(hits.iter().map(|h| h.doc.name.as_str()).collect::<Vec<_>>(), ["notes/db"]);
            assert_eq!(search("cook", vec![]).await.len(), 1, "the last word matches as a prefix");
            assert_eq!(search("\"bearer\" AND (x* NEAR :", vec![]).await.len(), 0, "no syntax error");
            let (cur, old, versions) = store
                .read(|r| {
                    Ok::<_, StoreError>((
                        r.document("notes/api")?,
                        r.document_version("notes/api", 1)?,
                        r.document_versions("notes/api")?,
                    ))
                })
                .await
                .unwrap();
            assert_eq!(cur.unwrap().version, 2);
            assert_eq!(old.unwrap().content.as_deref(), Some("The REST API uses bearer tokens."));
            assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1]);
            let deleted = store.write(|tx| tx.delete_document("notes/api")).await.unwrap();
            assert!(deleted);
            assert_eq!(search("bearer", vec![]).await.len(), 0, "gone from the index too");
            assert!(store.read(|r| r.document_versions("notes/api")).await.unwrap().is_empty());
        });
    }

    #[test]
    fn a_read_job_sees_one_snapshot_even_while_writes_commit() {
        let dir = tempfile::tempdir().unwrap();
        rt().block_on(async {
            let store = open(&SqliteOptions::new(dir.path().join("b.db"))).unwrap();
            let p = project("before");
            let id = p.id.clone();
            store.write(move |tx| tx.put_project(&p)).await.unwrap();
            let (read_started, wrote) = (std::sync::mpsc::channel::<()>(), std::sync::mpsc::channel::<()>());
            let (started_tx, started_rx) = read_started;
            let (wrote_tx, wrote_rx) = wrote;
            let reader = {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    store
                        .read(move |r| {
                            let first = r.project(&id)?.unwrap().name;
                            started_tx.send(()).unwrap();
                            wrote_rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
                            let second = r.project(&id)?.unwrap().name;
                            Ok::<_, StoreError>((first, second))
                        })
                        .await
                })
            };
            tokio::task::spawn_blocking(move || started_rx.recv().unwrap()).await.unwrap();
            let mut renamed = project("after");
            renamed.id = id.clone();
            store.write(move |tx| tx.put_project(&renamed)).await.unwrap();
            wrote_tx.send(()).unwrap();
            let (first, second) = reader.await.unwrap().unwrap();
            assert_eq!((first.as_str(), second.as_str()), ("before", "before"), "one snapshot per read job");
            let now = store.read(move |r| r.project(&id)).await.unwrap().unwrap().name;
            assert_eq!(now, "after");
        });
    }
}
