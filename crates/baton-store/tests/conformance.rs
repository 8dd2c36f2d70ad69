//! One conformance suite for the Store, run against every backend: the SQLite
//! file always, and PostgreSQL when `BATON_TEST_PG` names a server to make
//! throwaway databases on (`scripts/test` starts one). Without a server the
//! PostgreSQL half is skipped, unless `BATON_TEST_STORE=postgres` asks for it.

use std::future::Future;
use std::time::Duration;

use baton_core::doc::Document;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::{LauncherId, ProjectId, RunId, SessionId, TaskId};
use baton_core::model::{
    IdempotentAnswer, Launcher, LauncherOrder, LeadHeartbeat, MergeRequest, OrderKind, PoolState, Project,
    ProjectSettings, Run, Session, Task, TokenKind, TokenRecord,
};
use baton_core::status::{RunStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_store::postgres::PgOptions;
use baton_store::sqlite::SqliteOptions;
use baton_store::{
    ActiveOf, Chunk, DocFilter, EventFilter, HourDelta, Notice, QueuedRuns, Store, StoreError, TaskFilter,
};
use baton_testkit::pg::TestDatabase as PgDatabase;
use serde_json::json;

/// Where a store under test lives, so it can be opened again.
enum Place {
    Sqlite(std::path::PathBuf, #[allow(dead_code)] tempfile::TempDir),
    Postgres(PgDatabase),
}

impl Place {
    fn open(&self) -> Store {
        match self {
            Place::Sqlite(path, _) => baton_store::sqlite::open(&SqliteOptions::new(path)).unwrap(),
            Place::Postgres(db) => baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap(),
        }
    }

    fn name(&self) -> &'static str {
        match self {
            Place::Sqlite(..) => "sqlite",
            Place::Postgres(_) => "postgres",
        }
    }
}

/// A throwaway database when a PostgreSQL server was given (required when the
/// suite runs on PostgreSQL).
fn pg() -> Option<PgDatabase> {
    match baton_testkit::pg::server() {
        Some(_) => Some(PgDatabase::create()),
        None => {
            assert!(
                !baton_testkit::pg::wanted(),
                "BATON_TEST_STORE=postgres needs BATON_TEST_PG (scripts/test sets both)"
            );
            None
        }
    }
}

fn places() -> Vec<Place> {
    let dir = tempfile::tempdir().unwrap();
    let mut out = vec![Place::Sqlite(dir.path().join("b.db"), dir)];
    if let Some(db) = pg() {
        out.push(Place::Postgres(db));
    }
    out
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Runs `test` against a fresh store of every backend.
fn each<F, Fut>(test: F)
where
    F: Fn(Store, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    for place in places() {
        let name = place.name();
        rt().block_on(test(place.open(), name));
    }
}

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

fn task(project: &ProjectId, status: TaskStatus) -> Task {
    serde_json::from_value(json!({
        "id": TaskId::generate(), "project_id": project, "title": "t", "prompt": "p", "agent": "a",
        "status": status, "created_at": Timestamp::now(), "updated_at": Timestamp::now(),
    }))
    .unwrap()
}

fn session(task: &Task, agent_session_id: Option<&str>, cost: f64) -> Session {
    serde_json::from_value(json!({
        "id": SessionId::generate(), "task_id": task.id, "project_id": task.project_id, "agent": "a",
        "executor": "command", "status": "running", "agent_session_id": agent_session_id,
        "usage": {"input_tokens": 10, "output_tokens": 5, "cost_usd": cost},
        "created_at": Timestamp::now(), "updated_at": Timestamp::now(),
    }))
    .unwrap()
}

fn run(session: &Session, status: RunStatus, launcher: Option<&LauncherId>) -> Run {
    serde_json::from_value(json!({
        "id": RunId::generate(), "session_id": session.id, "task_id": session.task_id,
        "project_id": session.project_id, "agent": "a", "kind": "start", "status": status, "message": "m",
        "launcher_id": launcher, "created_at": Timestamp::now(),
    }))
    .unwrap()
}

fn launcher(name: &str) -> Launcher {
    serde_json::from_value(json!({
        "id": LauncherId::generate(), "name": name, "hostname": "h", "version": "v", "slots": 2,
        "executors": ["command"], "status": "online", "last_seen": Timestamp::now(),
        "registered_at": Timestamp::now(),
    }))
    .unwrap()
}

fn document(name: &str, content: &str, tags: &[&str], version: u32) -> Document {
    Document {
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
fn writes_survive_reopening() {
    for place in places() {
        let p = project("alpha");
        rt().block_on(async {
            let store = place.open();
            let p2 = p.clone();
            store.write(move |tx| tx.put_project(&p2)).await.unwrap();
        });
        rt().block_on(async {
            let store = place.open();
            let id = p.id.clone();
            let got = store.read(move |r| r.project(&id)).await.unwrap();
            assert_eq!(got, Some(p), "{}", place.name());
        });
    }
}

#[test]
fn session_events_are_numbered_per_session() {
    each(|store, backend| async move {
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
        assert_eq!(seqs, [1, 1, 2, 3], "{backend}");
        let a3 = a.clone();
        let events = store.read(move |r| r.session_events(&a3, 1, 10)).await.unwrap();
        assert_eq!(events.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(), [2, 3], "{backend}");
        let all = store.read(|r| r.events(&EventFilter { limit: 100, ..Default::default() })).await.unwrap();
        assert_eq!(all.len(), 5, "{backend}");
        assert!(all.windows(2).all(|w| w[0].id < w[1].id), "{backend}");
        let last = store.read(|r| r.last_event_id()).await.unwrap();
        assert_eq!(last, all.last().unwrap().id, "{backend}");
        let logs = store
            .read(move |r| {
                r.events(&EventFilter {
                    session: Some(b),
                    kinds: vec![EventKind::Log],
                    limit: 10,
                    after: 0,
                    task: None,
                })
            })
            .await
            .unwrap();
        assert_eq!(logs.len(), 1, "{backend}");
        // A batch continues the numbering, in order.
        let a4 = a.clone();
        let batch = store
            .write(move |tx| {
                let events = vec![NewEvent::log("b1"), NewEvent::log("b2'\"\\"), NewEvent::log("b3")];
                tx.append_events(&a4, None, None, events)
            })
            .await
            .unwrap();
        assert_eq!(batch.iter().map(|e| e.seq.unwrap()).collect::<Vec<_>>(), [4, 5, 6], "{backend}");
        assert!(batch.windows(2).all(|w| w[0].id < w[1].id) && batch[0].id > last, "{backend}");
        let a5 = a.clone();
        let stored = store.read(move |r| r.session_events(&a5, 3, 10)).await.unwrap();
        assert_eq!(stored, batch, "{backend}: stored as returned");
    });
}

#[test]
fn a_failed_job_is_rolled_back_alone_and_publishes_nothing() {
    each(|store, backend| async move {
        let mut sub = store.subscribe();
        let mut notices = store.notices();
        let s = SessionId::generate();
        let (s1, s2) = (s.clone(), s.clone());
        let good = store.write(move |tx| {
            tx.append_event(Some(&s1), None, None, NewEvent::log("kept"))?;
            tx.notify(Notice::Work { executors: vec!["codex".into()], launchers: Vec::new() })
        });
        let bad = store.write(move |tx| {
            tx.append_event(Some(&s2), None, None, NewEvent::log("undone"))?;
            tx.notify(Notice::MergeQueued)?;
            Err::<(), _>(StoreError::Closed)
        });
        let (good, bad) = tokio::join!(good, bad);
        assert!(good.is_ok(), "{backend}");
        assert!(bad.is_err(), "{backend}");
        let published = tokio::time::timeout(Duration::from_secs(5), sub.recv()).await.unwrap().unwrap();
        assert_eq!(published.event.data, json!({"message": "kept"}), "{backend}");
        let notice = tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.unwrap().unwrap();
        assert_eq!(notice, Notice::Work { executors: vec!["codex".into()], launchers: Vec::new() }, "{backend}");
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(sub.try_recv().is_err(), "{backend}: nothing else published");
        assert!(notices.try_recv().is_err(), "{backend}: the failed job's notice is not sent");
        let events = store.read(move |r| r.session_events(&s, 0, 10)).await.unwrap();
        assert_eq!(events.len(), 1, "{backend}");
        assert_eq!(events[0].seq, Some(1), "{backend}: the rolled-back event took no number");
    });
}

#[test]
fn duplicates_are_reported() {
    each(|store, backend| async move {
        let (p, mut q) = (project("same"), project("same"));
        q.path = "/elsewhere".into();
        let p2 = p.clone();
        store.write(move |tx| tx.put_project(&p2)).await.unwrap();
        let err = store.write(move |tx| tx.put_project(&q)).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate { .. }), "{backend}: {err:?}");
        let mut r = project("other");
        r.path = p.path.clone();
        let err = store.write(move |tx| tx.put_project(&r)).await.unwrap_err();
        assert!(matches!(err, StoreError::Duplicate { .. }), "{backend}: the same path: {err:?}");
        let t = task(&p.id, TaskStatus::Queued);
        let t2 = t.clone();
        store.write(move |tx| tx.insert_task(&t2)).await.unwrap();
        // A job may go on after a duplicate (the transaction stays usable).
        let again = store
            .write(move |tx| {
                let dup = tx.insert_task(&t);
                tx.append_event(None, None, None, NewEvent::log("after"))?;
                Ok::<_, StoreError>(dup.is_err())
            })
            .await
            .unwrap();
        assert!(again, "{backend}");
        let mut renamed = p.clone();
        renamed.name = "renamed".into();
        store.write(move |tx| tx.put_project(&renamed)).await.unwrap();
        assert_eq!(store.read(|r| r.projects()).await.unwrap()[0].name, "renamed", "{backend}");
    });
}

#[test]
fn ids_resolve_by_prefix() {
    each(|store, backend| async move {
        let p = project("x");
        store.write(move |tx| tx.put_project(&p)).await.unwrap();
        let found = store.read(|r| r.ids_with_prefix("project", "p-", 5)).await.unwrap();
        assert_eq!(found.len(), 1, "{backend}");
        for bad in ["p-*", "p-%", "p-_", "p-'"] {
            let none = store.read(move |r| r.ids_with_prefix("project", bad, 5)).await.unwrap();
            assert!(none.is_empty(), "{backend}: {bad}");
        }
    });
}

#[test]
fn documents_are_searched_by_relevance_and_keep_their_versions() {
    each(|store, backend| async move {
        store
            .write(|tx| {
                tx.put_document(&document("notes/api", "The REST API uses bearer tokens.", &["api"], 1))?;
                tx.put_document(&document("notes/db", "SQLite in WAL mode; tokens hashed.", &["db", "x"], 1))?;
                tx.put_document(&document("tokens", "Everything about tokens: tokens, tokens.", &["security"], 1))?;
                tx.put_document(&document("notes/api", "The REST API uses bearer tokens and cookies.", &["api"], 2))
            })
            .await
            .unwrap();
        let search = |q: &str, tags: Vec<String>| {
            let filter = DocFilter { query: Some(q.into()), tags, limit: 10, ..Default::default() };
            let store = store.clone();
            async move { store.read(move |r| r.documents(&filter)).await.unwrap() }
        };
        let hits = search("tokens", vec![]).await;
        let names: Vec<&str> = hits.iter().map(|h| h.doc.name.as_str()).collect();
        assert_eq!(names[0], "tokens", "{backend}: the name and the most mentions rank first: {names:?}");
        assert_eq!(names.len(), 3, "{backend}");
        assert!(hits[0].snippet.as_deref().unwrap().contains("[tokens]"), "{backend}: {:?}", hits[0].snippet);
        assert!(hits[0].score.unwrap() >= hits[1].score.unwrap(), "{backend}");
        let hits = search("tokens", vec!["db".into()]).await;
        assert_eq!(hits.iter().map(|h| h.doc.name.as_str()).collect::<Vec<_>>(), ["notes/db"], "{backend}");
        assert_eq!(search("TOKENS hashed", vec!["db".into(), "x".into()]).await.len(), 1, "{backend}");
        assert_eq!(search("cook", vec![]).await.len(), 1, "{backend}: the last word matches as a prefix");
        assert_eq!(search("api", vec![]).await.len(), 1, "{backend}: a word of a name");
        assert_eq!(search("\"bearer\" AND (x* NEAR : & | ! <->", vec![]).await.len(), 0, "{backend}: no syntax error");
        assert_eq!(search("*** ( ) :", vec![]).await.len(), 0, "{backend}: nothing to search for");
        let listed = store
            .read(|r| r.documents(&DocFilter { prefix: Some("notes/".into()), limit: 10, ..Default::default() }))
            .await
            .unwrap();
        assert_eq!(listed.len(), 2, "{backend}");
        assert!(listed[0].score.is_none(), "{backend}");
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
        assert_eq!(cur.unwrap().version, 2, "{backend}");
        assert_eq!(old.unwrap().content.as_deref(), Some("The REST API uses bearer tokens."), "{backend}");
        assert_eq!(versions.iter().map(|v| v.version).collect::<Vec<_>>(), [2, 1], "{backend}");
        assert!(store.write(|tx| tx.delete_document("notes/api")).await.unwrap(), "{backend}");
        assert!(!store.write(|tx| tx.delete_document("notes/api")).await.unwrap(), "{backend}");
        assert_eq!(search("bearer", vec![]).await.len(), 0, "{backend}: gone from the index too");
        assert!(store.read(|r| r.document_versions("notes/api")).await.unwrap().is_empty(), "{backend}");

        let bytes: Vec<u8> = (0..=255).collect();
        let b2 = bytes.clone();
        store.write(move |tx| tx.put_blob("abc", &b2)).await.unwrap();
        store.write(|tx| tx.put_blob("abc", b"kept once: not replaced")).await.unwrap();
        assert_eq!(store.read(|r| r.blob("abc")).await.unwrap(), Some(bytes), "{backend}");
        assert_eq!(store.read(|r| r.blob("nope")).await.unwrap(), None, "{backend}");
    });
}

#[test]
fn the_meaning_index_queues_pushes_and_keeps_one_model() {
    each(|store, backend| async move {
        let now = Timestamp::now();
        let later = now.plus_millis(60_000);
        store
            .write(|tx| {
                tx.put_document(&document("a", "alpha", &["x"], 1))?;
                tx.put_document(&document("b", "beta", &[], 1))?;
                tx.set_embed_model("m1", None)
            })
            .await
            .unwrap();
        let status = store.read(|r| r.embed_status()).await.unwrap();
        assert_eq!((status.model.as_deref(), status.pending, status.failed), (Some("m1"), 2, 0), "{backend}");
        // Claimed documents are held: a second claim gets none of them.
        let jobs = store.write(move |tx| tx.claim_embeddings(now, later, 10)).await.unwrap();
        assert_eq!(jobs.iter().map(|j| j.name.as_str()).collect::<Vec<_>>(), ["a", "b"], "{backend}");
        assert!(store.write(move |tx| tx.claim_embeddings(now, later, 10)).await.unwrap().is_empty(), "{backend}");
        let chunk = |v: Vec<f32>| vec![Chunk { seq: 0, text: "alpha".into(), vector: v }];
        let gen0 = store.read(|r| r.embed_status()).await.unwrap().generation;
        // A vector for a version that is no longer current is not kept.
        store.write(|tx| tx.put_document(&document("a", "alpha two", &["x"], 2))).await.unwrap();
        assert!(
            !store.write(move |tx| tx.put_chunks("a", 1, "m1", &chunk(vec![1.0, 0.0]))).await.unwrap(),
            "{backend}"
        );
        assert!(store.write(move |tx| tx.put_chunks("a", 2, "m1", &chunk(vec![1.0, 0.5]))).await.unwrap(), "{backend}");
        let (status, vectors, text) = store
            .read(|r| Ok::<_, StoreError>((r.embed_status()?, r.chunk_vectors("m1")?, r.chunk_text("a", 0)?)))
            .await
            .unwrap();
        assert_eq!((status.pending, status.dims), (1, Some(2)), "{backend}: b waits; dimensions learned");
        assert!(status.generation > gen0, "{backend}");
        assert_eq!(vectors.len(), 1, "{backend}");
        assert_eq!((vectors[0].name.as_str(), &vectors[0].vector), ("a", &vec![1.0, 0.5]), "{backend}");
        assert_eq!(text.as_deref(), Some("alpha"), "{backend}");
        // A failure: retried later, or given up on with the reason.
        store.write(move |tx| tx.embedding_failed("b", 1, "wrong dimension", later, true)).await.unwrap();
        let (status, failures) =
            store.read(|r| Ok::<_, StoreError>((r.embed_status()?, r.embed_failures(10)?))).await.unwrap();
        assert_eq!((status.pending, status.failed), (0, 1), "{backend}");
        assert_eq!(
            (failures[0].name.as_str(), failures[0].error.as_deref()),
            ("b", Some("wrong dimension")),
            "{backend}"
        );
        assert!(store.write(move |tx| tx.claim_embeddings(later, later, 10)).await.unwrap().is_empty(), "{backend}");
        // Only the missing are queued; a reindex queues all and clears failures.
        assert_eq!(store.write(|tx| tx.queue_embeddings(false)).await.unwrap(), 0, "{backend}");
        assert_eq!(store.write(|tx| tx.queue_embeddings(true)).await.unwrap(), 2, "{backend}");
        assert_eq!(store.read(|r| r.embed_status()).await.unwrap().failed, 0, "{backend}");
        // Filters name the documents they allow.
        let names = store
            .read(|r| r.document_names(&DocFilter { tags: vec!["x".into()], ..Default::default() }))
            .await
            .unwrap();
        assert_eq!(names, ["a"], "{backend}");
        // Another model: every vector of the old one goes, every document waits.
        assert!(!store.write(|tx| tx.set_embed_model("m1", None)).await.unwrap(), "{backend}");
        assert!(store.write(|tx| tx.set_embed_model("m2", Some(3))).await.unwrap(), "{backend}");
        let (status, old) =
            store.read(|r| Ok::<_, StoreError>((r.embed_status()?, r.chunk_vectors("m1")?))).await.unwrap();
        assert!(old.is_empty(), "{backend}");
        assert_eq!((status.model.as_deref(), status.dims, status.pending), (Some("m2"), Some(3), 2), "{backend}");
        // A removed document leaves the index; a binary one is never queued.
        store.write(|tx| tx.delete_document("a")).await.unwrap();
        let mut binary = document("c", "", &[], 1);
        binary.content = None;
        store.write(move |tx| tx.put_document(&binary)).await.unwrap();
        assert_eq!(store.read(|r| r.embed_status()).await.unwrap().pending, 1, "{backend}");
    });
}

#[test]
fn a_hybrid_search_ranks_by_its_telling_words_only() {
    each(|store, backend| async move {
        store
            .write(|tx| {
                for i in 0..1100 {
                    let text = if i % 100 == 0 { "common words and a rare one" } else { "common words" };
                    tx.put_document(&document(&format!("d/{i}"), text, &[], 1))?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let search = |q: &str, telling: bool| {
            let filter = DocFilter { query: Some(q.into()), limit: 20, telling, ..Default::default() };
            let store = store.clone();
            async move { store.read(move |r| r.documents(&filter)).await.unwrap().len() }
        };
        assert_eq!(search("common", false).await, 20, "{backend}");
        assert_eq!(search("common rare", true).await, 11, "{backend}");
        assert_eq!(search("rare", true).await, 11, "{backend}");
        if backend == "sqlite" {
            assert_eq!(search("common", true).await, 0, "{backend}: in every document, and over a thousand");
        }
    });
}

#[test]
fn a_read_job_sees_one_snapshot_even_while_writes_commit() {
    each(|store, backend| async move {
        let p = project("before");
        let id = p.id.clone();
        store.write(move |tx| tx.put_project(&p)).await.unwrap();
        let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
        let (wrote_tx, wrote_rx) = std::sync::mpsc::channel::<()>();
        let reader = {
            let store = store.clone();
            let id = id.clone();
            tokio::spawn(async move {
                store
                    .read(move |r| {
                        let first = r.project(&id)?.unwrap().name;
                        started_tx.send(()).unwrap();
                        wrote_rx.recv_timeout(Duration::from_secs(5)).unwrap();
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
        assert_eq!((first.as_str(), second.as_str()), ("before", "before"), "{backend}: one snapshot per read job");
        let now = store.read(move |r| r.project(&id)).await.unwrap().unwrap().name;
        assert_eq!(now, "after", "{backend}");
    });
}

#[test]
fn leases_change_hands_only_when_expired() {
    each(|store, backend| async move {
        let take = |holder: &'static str, ttl: i64| {
            let store = store.clone();
            async move { store.write(move |tx| tx.acquire_lease("timers", holder, ttl)).await.unwrap() }
        };
        assert_eq!(take("a", 60_000).await, Some(1), "{backend}");
        assert_eq!(take("b", 60_000).await, None, "{backend}: a's lease holds");
        assert_eq!(take("a", 300).await, Some(1), "{backend}: renewing keeps the fence");
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(take("b", 60_000).await, Some(2), "{backend}: expired, it changes hands");
        assert_eq!(take("a", 60_000).await, None, "{backend}");
        store.write(|tx| tx.release_lease("timers", "a")).await.unwrap();
        assert_eq!(take("a", 60_000).await, None, "{backend}: only the holder releases");
        store.write(|tx| tx.release_lease("timers", "b")).await.unwrap();
        assert_eq!(take("a", 60_000).await, Some(3), "{backend}: released, it is free");
        let before = Timestamp::now();
        let clock = store.read(|r| r.clock()).await.unwrap();
        assert!((clock.millis_since(before)).abs() < 5_000, "{backend}: the database's clock");
    });
}

#[test]
fn login_codes_work_once_while_fresh() {
    each(|store, backend| async move {
        let later = Timestamp::now().plus_millis(60_000);
        store.write(move |tx| tx.put_login_code("h1", later)).await.unwrap();
        let first = store.write(|tx| tx.take_login_code("h1")).await.unwrap();
        assert_eq!(first, Some(later), "{backend}");
        assert_eq!(store.write(|tx| tx.take_login_code("h1")).await.unwrap(), None, "{backend}: once");
        assert_eq!(store.write(|tx| tx.take_login_code("never")).await.unwrap(), None, "{backend}");
    });
}

#[test]
fn tasks_page_by_key_and_hours_add_up() {
    each(|store, backend| async move {
        let project = ProjectId::generate();
        let mut made = Vec::new();
        for _ in 0..5 {
            let t = task(&project, TaskStatus::Pending);
            let put = t.clone();
            store.write(move |tx| tx.insert_task(&put)).await.unwrap();
            made.push(t.id);
        }
        let page = |before: Option<TaskId>| {
            let store = store.clone();
            async move {
                let filter = TaskFilter { limit: Some(2), before, ..Default::default() };
                store.read(move |r| r.tasks(&filter)).await.unwrap().into_iter().map(|t| t.id).collect::<Vec<_>>()
            }
        };
        let first = page(None).await;
        assert_eq!(first, [made[4].clone(), made[3].clone()], "{backend}: newest first");
        // A task made meanwhile is not in the next page, and nothing repeats.
        let late = task(&project, TaskStatus::Pending);
        store.write(move |tx| tx.insert_task(&late)).await.unwrap();
        let second = page(first.last().cloned()).await;
        assert_eq!(second, [made[2].clone(), made[1].clone()], "{backend}");
        let third = page(second.last().cloned()).await;
        assert_eq!(third, [made[0].clone()], "{backend}");
        let hour = 3_600_000 * 100;
        for (status, cost) in [(Some(TaskStatus::Succeeded), 0.5), (Some(TaskStatus::Failed), 0.25), (None, 1.0)] {
            let d = HourDelta { hour, project: project.clone(), agent: "a".into(), finished: status, cost_usd: cost };
            store.write(move |tx| tx.add_hour(&d)).await.unwrap();
        }
        store.write(move |tx| tx.set_hourly_queue(hour, 3)).await.unwrap();
        store.write(move |tx| tx.set_hourly_queue(hour, 7)).await.unwrap();
        let rows = store.read(move |r| r.hours(hour, None)).await.unwrap();
        assert_eq!(rows.len(), 1, "{backend}");
        assert_eq!(rows[0].finished, [(TaskStatus::Succeeded, 1), (TaskStatus::Failed, 1)], "{backend}");
        assert!((rows[0].cost_usd - 1.75).abs() < 1e-9, "{backend}");
        assert_eq!(store.read(move |r| r.hourly_queue(hour)).await.unwrap(), [(hour, 7)], "{backend}: the last sample");
        assert!(store.read(move |r| r.hours(hour + 3_600_000, None)).await.unwrap().is_empty(), "{backend}");
    });
}

#[test]
fn memory_journal_inbox_and_leads_round_trip() {
    use baton_core::memory::{AgentMessage, JournalEntry, JournalKind, MemoryBlock, MessageState};
    each(|store, backend| async move {
        let block = |label: &str, version: u32, text: &str| MemoryBlock {
            owner: "w".into(),
            label: label.into(),
            text: text.into(),
            limit: 100,
            description: String::new(),
            read_only: false,
            agents: Vec::new(),
            version,
            written_by: None,
            updated_at: Timestamp::now(),
        };
        for b in [block("notes", 1, "one"), block("notes", 2, "two"), block("persona", 1, "me")] {
            store.write(move |tx| tx.put_memory_block(&b)).await.unwrap();
        }
        let again = block("notes", 2, "clash");
        let refused = store.write(move |tx| tx.put_memory_block(&again)).await;
        assert!(matches!(refused, Err(StoreError::Duplicate { .. })), "{backend}: {refused:?}");
        let now: Vec<(String, String)> =
            store.read(|r| r.memory_blocks("w")).await.unwrap().into_iter().map(|b| (b.label, b.text)).collect();
        assert_eq!(now, [("notes".into(), "two".into()), ("persona".into(), "me".into())], "{backend}");
        let versions = store.read(|r| r.memory_versions("w", "notes")).await.unwrap();
        assert_eq!(versions.iter().map(|b| b.version).collect::<Vec<_>>(), [2, 1], "{backend}");
        for text in ["first", "second"] {
            let e = JournalEntry {
                seq: 0,
                agent: "w".into(),
                kind: JournalKind::Note,
                task_id: None,
                text: text.into(),
                data: serde_json::Value::Null,
                at: Timestamp::now(),
            };
            store.write(move |tx| tx.append_journal(&e)).await.unwrap();
        }
        let journal = store.read(|r| r.journal("w", 10)).await.unwrap();
        assert_eq!(journal.iter().map(|e| e.text.as_str()).collect::<Vec<_>>(), ["second", "first"], "{backend}");
        assert!(journal[0].seq > journal[1].seq, "{backend}");
        let mut m = AgentMessage {
            id: "msg-1".into(),
            to: "w".into(),
            from: "admin".into(),
            from_session: None,
            text: "hi".into(),
            state: MessageState::Queued,
            task_id: None,
            reason: None,
            created_at: Timestamp::now(),
            updated_at: Timestamp::now(),
        };
        let put = m.clone();
        store.write(move |tx| tx.put_message(&put)).await.unwrap();
        m.state = MessageState::Delivered;
        let put = m.clone();
        store.write(move |tx| tx.put_message(&put)).await.unwrap();
        let queued = store.read(|r| r.messages("w", &[MessageState::Queued], 10)).await.unwrap();
        assert!(queued.is_empty(), "{backend}");
        assert_eq!(store.read(|r| r.message("msg-1")).await.unwrap(), Some(m), "{backend}");
        let project = ProjectId::generate();
        let lead = baton_core::model::LeadRecord {
            project_id: project.clone(),
            agent: "lead".into(),
            wanted: true,
            task_id: None,
            session_id: None,
            fence: 1,
            restarts: 0,
            restarted_at: None,
            reviving: false,
            note: None,
            started_at: Timestamp::now(),
            deadline: Timestamp::now(),
            done_at: None,
            wake_at: None,
            wake_note: None,
        };
        let put = lead.clone();
        assert!(store.write(move |tx| tx.put_lead(&put, None)).await.unwrap(), "{backend}");
        let put = lead.clone();
        assert!(!store.write(move |tx| tx.put_lead(&put, None)).await.unwrap(), "one record only: {backend}");
        let stale = baton_core::model::LeadRecord { fence: 2, wanted: false, ..lead.clone() };
        assert!(!store.write(move |tx| tx.put_lead(&stale, Some(0))).await.unwrap(), "a stale fence: {backend}");
        let next = baton_core::model::LeadRecord { fence: 2, ..lead.clone() };
        let put = next.clone();
        assert!(store.write(move |tx| tx.put_lead(&put, Some(1))).await.unwrap(), "{backend}");
        let lead = next;
        assert_eq!(store.read(move |r| r.lead(&project)).await.unwrap(), Some(lead), "{backend}");
    });
}

#[test]
fn chat_threads_and_posts_round_trip() {
    use baton_core::chat::{ChatPost, ChatService, ChatThread, PostKind};
    each(|store, backend| async move {
        let task = TaskId::generate();
        let thread = |thread: &str| ChatThread {
            key: format!("slack:C1:{thread}"),
            service: ChatService::Slack,
            project_id: ProjectId::generate(),
            channel: "C1".into(),
            thread: thread.into(),
            task_id: task.clone(),
            session_id: None,
            status_message: None,
            shown: None,
            answered: 0,
            created_at: Timestamp::now(),
        };
        let (open, closed) = (thread("1.1"), thread("2.2"));
        let (a, b) = (open.clone(), closed.clone());
        store.write(move |tx| tx.put_chat_thread(&a, true)).await.unwrap();
        store.write(move |tx| tx.put_chat_thread(&b, false)).await.unwrap();
        let keys = |ts: Vec<ChatThread>| ts.into_iter().map(|t| t.key).collect::<Vec<_>>();
        assert_eq!(keys(store.read(|r| r.chat_threads_open()).await.unwrap()), vec![open.key.clone()], "{backend}");
        let of = task.clone();
        let all = store.read(move |r| r.chat_threads_of_task(&of)).await.unwrap();
        assert_eq!(keys(all), [open.key.clone(), closed.key.clone()], "{backend}");
        let again = open.clone();
        store.write(move |tx| tx.put_chat_thread(&again, false)).await.unwrap();
        assert!(store.read(|r| r.chat_threads_open()).await.unwrap().is_empty(), "{backend}: closed");
        let mut post = ChatPost {
            id: "post-1".into(),
            service: ChatService::Slack,
            project_id: open.project_id.clone(),
            channel: "C1".into(),
            thread: Some("1.1".into()),
            post: PostKind::New,
            as_agent: None,
            text: "hello".into(),
            buttons: Vec::new(),
            bind: None,
            status_of: None,
            state: "pending".into(),
            attempts: 0,
            next_at: Timestamp::now(),
            result: None,
            error: None,
            created_at: Timestamp::now(),
        };
        let put = post.clone();
        store.write(move |tx| tx.put_chat_post(&put)).await.unwrap();
        assert_eq!(store.read(|r| r.chat_posts_pending(10)).await.unwrap(), [post.clone()], "{backend}");
        post.state = "sent".into();
        post.attempts = 1;
        let put = post.clone();
        store.write(move |tx| tx.put_chat_post(&put)).await.unwrap();
        assert!(store.read(|r| r.chat_posts_pending(10)).await.unwrap().is_empty(), "{backend}");
        assert_eq!(store.read(|r| r.chat_post("post-1")).await.unwrap(), Some(post), "{backend}");
    });
}

#[test]
fn an_idempotency_key_keeps_its_first_answer() {
    each(|store, backend| async move {
        let answer = |key: &str, body: &str| IdempotentAnswer {
            scope: "caller".into(),
            key: key.into(),
            request: "digest".into(),
            status: 201,
            body: body.into(),
            created_at: Timestamp::now(),
        };
        let first = answer("k1", "{\"id\":1}");
        let put = first.clone();
        store.write(move |tx| tx.put_idempotent_answer(&put)).await.unwrap();
        let again = answer("k1", "{\"id\":2}");
        let refused = store.write(move |tx| tx.put_idempotent_answer(&again)).await;
        assert!(matches!(refused, Err(StoreError::Duplicate { .. })), "{backend}: {refused:?}");
        let got = store.write(|tx| tx.idempotent_answer("caller", "k1")).await.unwrap();
        assert_eq!(got, Some(first), "{backend}: the first answer stays");
        assert_eq!(
            store.write(|tx| tx.idempotent_answer("another", "k1")).await.unwrap(),
            None,
            "{backend}: per caller"
        );
        let later = Timestamp::now().plus_millis(1);
        assert_eq!(store.write(move |tx| tx.prune_idempotent_answers(later)).await.unwrap(), 1, "{backend}");
        assert_eq!(store.write(|tx| tx.idempotent_answer("caller", "k1")).await.unwrap(), None, "{backend}: pruned");
    });
}

#[test]
fn merge_requests_are_pending_until_done() {
    each(|store, backend| async move {
        let request = |id: &str| MergeRequest {
            id: id.into(),
            task_id: TaskId::generate(),
            strategy: None,
            created_at: Timestamp::now(),
            awaited: true,
            outcome: None,
        };
        let (a, b) = (request("mr-a"), request("mr-b"));
        let (a2, b2) = (a.clone(), b.clone());
        store
            .write(move |tx| {
                tx.put_merge_request(&a2)?;
                tx.put_merge_request(&b2)
            })
            .await
            .unwrap();
        let pending = store.read(|r| r.pending_merges()).await.unwrap();
        assert_eq!(pending.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(), ["mr-a", "mr-b"], "{backend}");
        let mut done = a.clone();
        done.outcome = Some(json!({"task": "x"}));
        store.write(move |tx| tx.put_merge_request(&done)).await.unwrap();
        let pending = store.read(|r| r.pending_merges()).await.unwrap();
        assert_eq!(pending, [b], "{backend}");
        let got = store.read(|r| r.merge_request("mr-a")).await.unwrap().unwrap();
        assert_eq!(got.outcome, Some(json!({"task": "x"})), "{backend}");
        store.write(|tx| tx.delete_merge_request("mr-a")).await.unwrap();
        assert!(store.read(|r| r.merge_request("mr-a")).await.unwrap().is_none(), "{backend}");
    });
}

#[test]
fn revoking_tokens_sends_notices() {
    each(|store, backend| async move {
        let mut notices = store.notices();
        let record = |hash: &str, kind: TokenKind, subject: Option<&str>| TokenRecord {
            hash: hash.into(),
            kind,
            subject: subject.map(str::to_owned),
            created_at: Timestamp::now(),
            id: Some(format!("tok-{hash}")),
            name: Some("ci".into()),
        };
        let (a, b) = (record("h-a", TokenKind::Admin, None), record("h-b", TokenKind::Session, Some("s-1")));
        let (a2, b2) = (a.clone(), b.clone());
        store
            .write(move |tx| {
                tx.put_token(&a2)?;
                tx.put_token(&b2)
            })
            .await
            .unwrap();
        assert_eq!(store.read(|r| r.token_by_id("tok-h-a")).await.unwrap(), Some(a), "{backend}");
        assert_eq!(store.read(|r| r.tokens(TokenKind::Session)).await.unwrap(), [b], "{backend}");
        assert!(store.write(|tx| tx.delete_token("h-a")).await.unwrap(), "{backend}");
        assert_eq!(store.write(|tx| tx.delete_tokens("session", Some("s-1"))).await.unwrap(), 1, "{backend}");
        assert_eq!(store.write(|tx| tx.delete_tokens("session", Some("s-1"))).await.unwrap(), 0, "{backend}");
        let mut heard = Vec::new();
        for _ in 0..2 {
            heard.push(tokio::time::timeout(Duration::from_secs(5), notices.recv()).await.unwrap().unwrap());
        }
        assert_eq!(
            heard,
            [
                Notice::TokenRevoked { hash: "h-a".into() },
                Notice::TokensRevoked { kind: "session".into(), subject: Some("s-1".into()) }
            ],
            "{backend}"
        );
        assert!(store.read(|r| r.token("h-b")).await.unwrap().is_none(), "{backend}");
    });
}

#[test]
fn the_queue_pages_past_full_projects_and_counts_by_index() {
    each(|store, backend| async move {
        let (a, b) = (project("a"), project("b"));
        let l = launcher("l");
        let (la, pa, pb) = (l.id.clone(), a.id.clone(), b.id.clone());
        store
            .write(move |tx| {
                tx.put_project(&a)?;
                tx.put_project(&b)?;
                tx.put_launcher(&l)?;
                // Five queued runs of A, then one of B, then one of agent "z" in A.
                for i in 0..7 {
                    let t = task(if i == 5 { &b.id } else { &a.id }, TaskStatus::Queued);
                    tx.insert_task(&t)?;
                    let s = session(&t, None, 0.0);
                    tx.put_session(&s)?;
                    let mut r = run(&s, RunStatus::Queued, None);
                    r.created_at = Timestamp::from_millis(1_000 + i);
                    if i == 6 {
                        r.agent = "z".into();
                    }
                    tx.put_run(&r)?;
                }
                let t = task(&a.id, TaskStatus::Running);
                tx.insert_task(&t)?;
                let s = session(&t, None, 0.0);
                tx.put_session(&s)?;
                tx.put_run(&run(&s, RunStatus::Running, Some(&l.id)))
            })
            .await
            .unwrap();
        let (pa2, pb2) = (pa.clone(), pb.clone());
        let (pages, counts) = store
            .read(move |r| {
                let first = r.queued_runs(&QueuedRuns { limit: 3, ..Default::default() })?;
                let rest =
                    r.queued_runs(&QueuedRuns { after: Some(first[2].id.clone()), limit: 10, ..Default::default() })?;
                let not_a =
                    r.queued_runs(&QueuedRuns { not_projects: vec![pa2.clone()], limit: 10, ..Default::default() })?;
                let not_a_agent =
                    r.queued_runs(&QueuedRuns { not_agents: vec!["a".into()], limit: 10, ..Default::default() })?;
                let counts = (
                    r.active_run_count(ActiveOf::Project(&pa2))?,
                    r.active_run_count(ActiveOf::Project(&pb2))?,
                    r.active_run_count(ActiveOf::Agent("a"))?,
                    r.active_run_count(ActiveOf::Launcher(&la))?,
                    r.active_run_count(ActiveOf::QueuedOfAgent("a"))?,
                    r.active_run_count(ActiveOf::QueuedOfAgent("z"))?,
                );
                // Several launchers counted at once, in the order asked; tasks by id.
                let other = LauncherId::generate();
                let many = r.active_run_counts(&[other.clone(), la.clone(), other])?;
                let mut ids: Vec<TaskId> = first.iter().map(|r| r.task_id.clone()).collect();
                ids.push(TaskId::generate());
                let mut found: Vec<TaskId> = r.tasks_by_id(&ids)?.into_iter().map(|t| t.id).collect();
                found.sort();
                ids.truncate(3);
                ids.sort();
                assert_eq!(found, ids, "the tasks that exist");
                assert_eq!(many, vec![0, 1, 0]);
                Ok::<_, StoreError>(((first, rest, not_a, not_a_agent), counts))
            })
            .await
            .unwrap();
        let (first, rest, not_a, not_a_agent) = pages;
        assert_eq!(first.len(), 3, "{backend}");
        assert_eq!(rest.len(), 4, "{backend}: the page after the first three");
        assert!(first.iter().chain(&rest).all(|r| r.status == RunStatus::Queued), "{backend}");
        let created: Vec<i64> = first.iter().chain(&rest).map(|r| r.created_at.as_millis()).collect();
        assert_eq!(created, (1_000..1_007).collect::<Vec<_>>(), "{backend}: oldest first, nothing twice");
        assert_eq!(not_a.len(), 1, "{backend}");
        assert_eq!(not_a[0].project_id, pb, "{backend}");
        assert_eq!(not_a_agent.len(), 1, "{backend}");
        assert_eq!(not_a_agent[0].agent, "z", "{backend}");
        assert_eq!(counts, (1, 0, 1, 1, 6, 1), "{backend}");
    });
}

#[test]
fn spend_is_a_running_total_and_heartbeats_are_pruned() {
    each(|store, backend| async move {
        let p = project("spend");
        let pid = p.id.clone();
        let beat = |at: i64| LeadHeartbeat {
            project_id: pid.clone(),
            source: "lead".into(),
            session_key: None,
            state: json!(null),
            at: Timestamp::from_millis(at),
        };
        let beats = [beat(1_000), beat(2_000), beat(3_000)];
        let pid2 = p.id.clone();
        let gone = store
            .write(move |tx| {
                tx.put_project(&p)?;
                tx.add_project_spend(&p.id, 0.25)?;
                tx.add_project_spend(&p.id, 1.5)?;
                for b in &beats {
                    tx.add_heartbeat(b)?;
                }
                // Everything is older than this, but the newest is kept.
                tx.prune_heartbeats(Timestamp::from_millis(10_000))
            })
            .await
            .unwrap();
        assert_eq!(gone, 2, "{backend}");
        let (spent, left, other) = store
            .read(move |r| {
                Ok::<_, StoreError>((
                    r.project_spent(&pid2)?,
                    r.heartbeats(&pid2, 10)?,
                    r.project_spent(&ProjectId::generate())?,
                ))
            })
            .await
            .unwrap();
        assert!((spent - 1.75).abs() < 1e-9, "{backend}: {spent}");
        assert_eq!(other, 0.0, "{backend}");
        assert_eq!(left.len(), 1, "{backend}");
        assert_eq!(left[0].at.as_millis(), 3_000, "{backend}");
    });
}

#[test]
fn what_the_governor_learned_of_pools_is_kept() {
    each(|store, backend| async move {
        let lowered = PoolState {
            name: "anthropic".into(),
            limit: Some(2),
            paused_until: Some(Timestamp::from_millis(5_000)),
            throttled_at: vec![Timestamp::from_millis(1_000), Timestamp::from_millis(2_000)],
        };
        let (first, second) = (lowered.clone(), PoolState { name: "openai".into(), ..PoolState::default() });
        store
            .write(move |tx| {
                tx.put_pool_state(&second)?;
                tx.put_pool_state(&PoolState { limit: Some(1), ..first.clone() })?;
                // Written again: the newest is kept.
                tx.put_pool_state(&first)
            })
            .await
            .unwrap();
        let states = store.read(|r| r.pool_states()).await.unwrap();
        assert_eq!(states.len(), 2, "{backend}");
        assert_eq!(states[0], lowered, "{backend}: by name, as written last");
        assert_eq!(states[1].name, "openai", "{backend}");
        assert_eq!(states[1].limit, None, "{backend}");
    });
}

#[test]
fn the_outbox_keeps_each_webhooks_order() {
    use baton_core::webhook::{ActionLink, Delivery, DeliveryStatus, LinkAction, Webhook, WebhookEvent, WebhookFormat};
    each(|store, backend| async move {
        let hook = |id: &str| Webhook {
            id: id.into(),
            url: format!("http://127.0.0.1:9/{id}"),
            events: vec!["*".into()],
            project_id: None,
            format: WebhookFormat::Json,
            secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0".into(),
            created_at: Timestamp::from_millis(1_000),
            disabled: None,
        };
        let delivery = |id: &str, webhook: &str| Delivery {
            id: id.into(),
            webhook_id: webhook.into(),
            event: WebhookEvent::TaskFailed,
            payload: json!({"type": "task.failed"}),
            status: DeliveryStatus::Pending,
            attempts: Vec::new(),
            next_at: Timestamp::from_millis(2_000),
            created_at: Timestamp::from_millis(2_000),
            finished_at: None,
            prepared: false,
            retry_from: None,
        };
        let (a, b) = (hook("wh_a"), hook("wh_b"));
        store
            .write(move |tx| {
                tx.put_webhook(&a)?;
                tx.put_webhook(&b)?;
                // Ids that sort against the order they were written in.
                for (id, webhook) in [("msg_9", "wh_a"), ("msg_1", "wh_a"), ("msg_5", "wh_b"), ("msg_0", "wh_a")] {
                    tx.put_delivery(&delivery(id, webhook))?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let next = store.read(|r| r.next_deliveries()).await.unwrap();
        let mut heads: Vec<&str> = next.iter().map(|d| d.id.as_str()).collect();
        heads.sort_unstable();
        assert_eq!(heads, ["msg_5", "msg_9"], "{backend}: the first written of each webhook");
        // The head is delivered: the next in order takes its place, and a
        // rewrite keeps a delivery's place.
        let mut done = delivery("msg_9", "wh_a");
        done.status = DeliveryStatus::Delivered;
        let again = delivery("msg_1", "wh_a");
        store
            .write(move |tx| {
                tx.put_delivery(&done)?;
                tx.put_delivery(&again)
            })
            .await
            .unwrap();
        let next = store.read(|r| r.next_deliveries()).await.unwrap();
        assert!(next.iter().any(|d| d.id == "msg_1"), "{backend}: {next:?}");
        let listed = store.read(|r| r.deliveries("wh_a", 10)).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["msg_0", "msg_1", "msg_9"], "{backend}: newest first");
        assert_eq!(store.read(|r| r.delivery_counts("wh_a")).await.unwrap(), (2, 0), "{backend}");
        assert_eq!(store.read(|r| r.delivery("msg_9")).await.unwrap().unwrap().status, DeliveryStatus::Delivered);

        let link = ActionLink {
            task_id: TaskId::generate(),
            action: LinkAction::Approve,
            created_at: Timestamp::from_millis(1_000),
            expires_at: Timestamp::from_millis(5_000),
            used_at: None,
        };
        let stored = link.clone();
        store.write(move |tx| tx.put_action_link("h1", &stored)).await.unwrap();
        assert_eq!(store.read(|r| r.action_link("h1")).await.unwrap(), Some(link), "{backend}");
        assert_eq!(store.read(|r| r.action_link("h2")).await.unwrap(), None, "{backend}");
        // Pruning takes ended deliveries and expired links, never pending ones.
        let gone = store.write(|tx| tx.prune_webhook_records(Timestamp::from_millis(9_000))).await.unwrap();
        assert_eq!(gone, 2, "{backend}: msg_9 and the link");
        assert_eq!(store.read(|r| r.deliveries("wh_a", 10)).await.unwrap().len(), 2, "{backend}");
        assert!(store.write(|tx| tx.delete_webhook("wh_a")).await.unwrap(), "{backend}");
        assert!(!store.write(|tx| tx.delete_webhook("wh_a")).await.unwrap(), "{backend}");
        assert_eq!(store.read(|r| r.deliveries("wh_a", 10)).await.unwrap().len(), 0, "{backend}");
        let hooks = store.read(|r| r.webhooks()).await.unwrap();
        assert_eq!(hooks.len(), 1, "{backend}");
        assert_eq!(hooks[0].id, "wh_b", "{backend}");
    });
}

#[test]
fn tasks_runs_sessions_and_launchers_round_trip() {
    each(|store, backend| async move {
        let p = project("rt");
        let (q1, q2, done) =
            (task(&p.id, TaskStatus::Queued), task(&p.id, TaskStatus::Queued), task(&p.id, TaskStatus::Succeeded));
        let mut dependent = task(&p.id, TaskStatus::Pending);
        dependent.depends_on = vec![q1.id.clone()];
        let s1 = session(&q1, Some("claude-1"), 0.25);
        let s2 = session(&q2, None, 0.5);
        let l = launcher("l1");
        let r1 = run(&s1, RunStatus::Running, Some(&l.id));
        let r2 = run(&s2, RunStatus::Queued, None);
        let order = LauncherOrder {
            launcher_id: l.id.clone(),
            kind: OrderKind::Checkpoint,
            subject: r1.id.to_string(),
            data: json!({}),
            created_at: Timestamp::now(),
            sent_at: None,
        };
        let all = (p.clone(), [q1.clone(), q2.clone(), done.clone(), dependent.clone()], s1.clone(), s2.clone());
        let more = (l.clone(), r1.clone(), r2.clone(), order.clone());
        store
            .write(move |tx| {
                let (p, tasks, s1, s2) = all;
                let (l, r1, r2, order) = more;
                tx.put_project(&p)?;
                for t in &tasks {
                    tx.insert_task(t)?;
                }
                tx.put_session(&s1)?;
                tx.put_session(&s2)?;
                tx.add_spend(&s1.project_id, &s1.agent, &s1.usage)?;
                tx.add_spend(&s2.project_id, &s2.agent, &s2.usage)?;
                tx.put_launcher(&l)?;
                tx.put_run(&r1)?;
                tx.put_run(&r2)?;
                tx.put_order(&order)
            })
            .await
            .unwrap();
        let pid = p.id.clone();
        let queued = store
            .read(move |r| {
                r.tasks(&TaskFilter { project: Some(pid), statuses: vec![TaskStatus::Queued], ..Default::default() })
            })
            .await
            .unwrap();
        assert_eq!(queued.iter().map(|t| &t.id).collect::<Vec<_>>(), [&q2.id, &q1.id], "{backend}: newest first");
        let limited = store.read(|r| r.tasks(&TaskFilter { limit: Some(1), ..Default::default() })).await.unwrap();
        assert_eq!(limited.len(), 1, "{backend}");
        let q1id = q1.id.clone();
        let deps = store.read(move |r| r.dependents(&q1id)).await.unwrap();
        assert_eq!(deps, [dependent], "{backend}");
        let mut counts = store.read(|r| r.task_counts(None)).await.unwrap();
        counts.sort_by_key(|(s, _)| s.as_str());
        assert_eq!(
            counts,
            [(TaskStatus::Pending, 1), (TaskStatus::Queued, 2), (TaskStatus::Succeeded, 1)],
            "{backend}"
        );
        let found = store.read(|r| r.session_by_agent_session("claude-1")).await.unwrap();
        assert_eq!(found.map(|s| s.id), Some(s1.id.clone()), "{backend}");
        let spend = store.read(|r| r.spend(None)).await.unwrap();
        assert_eq!(spend.len(), 1, "{backend}");
        assert!((spend[0].usage.cost_usd - 0.75).abs() < 1e-9, "{backend}");
        assert_eq!(spend[0].usage.input_tokens, 20, "{backend}");
        let lid = l.id.clone();
        let (active, in_queue, orders, of_session) = store
            .read(move |r| {
                Ok::<_, StoreError>((
                    r.active_runs_of_launcher(&lid)?,
                    r.runs_in_status(RunStatus::Queued, 10)?,
                    r.orders_of_launcher(&lid)?,
                    r.runs_of_session(&s2.id)?,
                ))
            })
            .await
            .unwrap();
        assert_eq!(active, std::slice::from_ref(&r1), "{backend}");
        assert_eq!(in_queue, std::slice::from_ref(&r2), "{backend}");
        assert_eq!(orders, [order], "{backend}");
        assert_eq!(of_session, [r2], "{backend}");
        let (lid, subject) = (l.id.clone(), r1.id.to_string());
        assert!(
            store.write(move |tx| tx.delete_order(&lid, OrderKind::Checkpoint, &subject)).await.unwrap(),
            "{backend}"
        );
        let mut moved = r1.clone();
        moved.status = RunStatus::Succeeded;
        store.write(move |tx| tx.put_run(&moved)).await.unwrap();
        let lid = l.id.clone();
        assert!(store.read(move |r| r.active_runs_of_launcher(&lid)).await.unwrap().is_empty(), "{backend}");
        let launchers = store.read(|r| r.launchers()).await.unwrap();
        assert_eq!(launchers, [l], "{backend}");
    });
}

#[test]
fn newer_schemas_are_refused() {
    for place in places() {
        drop(place.open());
        match &place {
            Place::Sqlite(path, _) => {
                let conn = rusqlite::Connection::open(path).unwrap();
                conn.execute_batch("PRAGMA user_version = 999").unwrap();
            }
            Place::Postgres(db) => {
                // Past a breaking migration this build does not know.
                db.execute("UPDATE schema_version SET version = 999, floor = 999");
            }
        }
        let err = match place {
            Place::Sqlite(ref path, _) => baton_store::sqlite::open(&SqliteOptions::new(path)).err(),
            Place::Postgres(ref db) => baton_store::postgres::open(&PgOptions::new(&db.url)).err(),
        };
        assert!(matches!(err, Some(StoreError::TooNew { found: 999, .. })), "{}: {err:?}", place.name());
        // A newer schema whose migrations past this build are all compatible opens
        // (a replica not yet upgraded, during a rolling upgrade).
        if let Place::Postgres(db) = &place {
            db.execute("UPDATE schema_version SET floor = 0");
            drop(baton_store::postgres::open(&PgOptions::new(&db.url)).expect("a compatible newer schema opens"));
        }
    }
}

// PostgreSQL only: several replicas on one database.

#[test]
fn replicas_see_one_order_of_events_under_concurrent_writers() {
    let Some(db) = pg() else { return };
    rt().block_on(async {
        let (a, b) = (
            baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap(),
            baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap(),
        );
        let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
        const WRITERS: usize = 8;
        const EACH: usize = 250;
        let mut jobs = Vec::new();
        for w in 0..WRITERS {
            let store = if w % 2 == 0 { a.clone() } else { b.clone() };
            jobs.push(tokio::spawn(async move {
                let session = SessionId::generate();
                for i in 0..EACH {
                    let s = session.clone();
                    store
                        .write(move |tx| {
                            // Half the writers append one by one, half in batches.
                            if w % 4 < 2 {
                                tx.append_event(Some(&s), None, None, NewEvent::log(format!("{w}-{i}")))?;
                            } else {
                                tx.append_events(&s, None, None, vec![NewEvent::log(format!("{w}-{i}"))])?;
                            }
                            Ok::<_, StoreError>(())
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for j in jobs {
            j.await.unwrap();
        }
        let total = WRITERS * EACH;
        let stored = a.read(move |r| r.events(&EventFilter { limit: 10_000, ..Default::default() })).await.unwrap();
        assert_eq!(stored.len(), total);
        let ids: Vec<i64> = stored.iter().map(|e| e.id).collect();
        for (name, sub) in [("a", &mut on_a), ("b", &mut on_b)] {
            let mut seen = Vec::new();
            while seen.len() < total {
                let c = tokio::time::timeout(Duration::from_secs(10), sub.recv())
                    .await
                    .unwrap_or_else(|_| panic!("replica {name} published {} of {total}", seen.len()))
                    .unwrap();
                seen.push(c.event.id);
            }
            assert_eq!(seen, ids, "replica {name}: every committed event, once, in id order");
        }
        // Per session, the numbers have no gap and no repeat.
        let mut by_session: std::collections::HashMap<_, Vec<i64>> = Default::default();
        for e in &stored {
            by_session.entry(e.session_id.clone().unwrap()).or_default().push(e.seq.unwrap());
        }
        for seqs in by_session.values() {
            assert_eq!(*seqs, (1..=EACH as i64).collect::<Vec<_>>());
        }
    });
}

#[test]
fn notices_reach_every_replica() {
    let Some(db) = pg() else { return };
    rt().block_on(async {
        let a = baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap();
        let b = baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap();
        let (mut on_a, mut on_b) = (a.notices(), b.notices());
        a.write(|tx| tx.notify(Notice::MergeDone { id: "mr-1".into() })).await.unwrap();
        for (name, rx) in [("a", &mut on_a), ("b", &mut on_b)] {
            let n = tokio::time::timeout(Duration::from_secs(5), rx.recv()).await.unwrap().unwrap();
            assert_eq!(n, Notice::MergeDone { id: "mr-1".into() }, "{name}");
        }
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(on_a.try_recv().is_err(), "a replica hears its own notice once");
    });
}

#[test]
fn a_replica_of_another_schema_is_refused() {
    let Some(db) = pg() else { return };
    drop(baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap());
    db.execute(
        "INSERT INTO replicas (id, host, baton, schema_version, started_at, seen_at)
         VALUES ('c-old', 'old-host', '0.0.1', 0, 0, (extract(epoch from clock_timestamp()) * 1000)::BIGINT)",
    );
    // Nothing to migrate: it opens beside the old replica (which minds its own schema).
    drop(baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap());
    // The meaning index's migration (a breaking one) and the worksets' and the
    // archive's after it still to run: refused, since a replica older than rolling upgrades cannot
    // stop itself for it. (Schema 8's floor is 8, the spend totals, breaking.)
    db.execute(
        "DROP TABLE event_archives, retention, output_waiting, worksets, landings, doc_chunks, embed_jobs, embed_state;
         UPDATE schema_version SET version = version - 3, floor = 8",
    );
    let Err(err) = baton_store::postgres::open(&PgOptions::new(&db.url)) else { panic!("refused") };
    let text = err.to_string();
    assert!(matches!(err, StoreError::Incompatible { .. }), "{err:?}");
    assert!(text.contains("c-old") && text.contains("old-host") && text.contains("schema 0"), "{text}");
    // Once it has stopped (its row is stale), this one starts.
    db.execute("UPDATE replicas SET seen_at = 0 WHERE id = 'c-old'");
    drop(baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap());
}

#[test]
fn bad_urls_and_passwords_are_told_clearly() {
    let Some(db) = pg() else { return };
    let err = baton_store::postgres::open(&PgOptions::new("postgres://u:secret@host:notaport/db")).err().unwrap();
    let text = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(text.contains("cannot be read") && !text.contains("secret"), "{text}");
    let wrong = match db.url.split_once("://").and_then(|(_, rest)| rest.split_once('@')) {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap();
            format!("postgres://{user}:wrong-password@{host}")
        }
        None => panic!("BATON_TEST_PG must name a user: {}", db.url),
    };
    let err = baton_store::postgres::open(&PgOptions::new(&wrong)).err().unwrap();
    let text = format!("{err}: {}", std::error::Error::source(&err).map(|s| s.to_string()).unwrap_or_default());
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong-password"), "the password is not repeated: {text}");
}

#[test]
fn a_lost_connection_is_unavailable_then_recovers() {
    let Some(db) = pg() else { return };
    rt().block_on(async {
        let store = baton_store::postgres::open(&PgOptions::new(&db.url)).unwrap();
        let mut sub = store.subscribe();
        let mut notices = store.notices();
        store.write(|tx| tx.append_event(None, None, None, NewEvent::log("before"))).await.unwrap();
        // Every connection of the store is cut, as a restart of PostgreSQL would.
        db.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        );
        let first = store.write(|tx| tx.append_event(None, None, None, NewEvent::log("during"))).await;
        if let Err(e) = &first {
            assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        }
        let read = store.read(|r| r.last_event_id()).await;
        if let Err(e) = &read {
            assert!(matches!(e, StoreError::Unavailable(_)), "{e:?}");
        }
        store.write(|tx| tx.append_event(None, None, None, NewEvent::log("after"))).await.unwrap();
        let mut messages = Vec::new();
        while messages.last().map(String::as_str) != Some("after") {
            let c = tokio::time::timeout(Duration::from_secs(10), sub.recv()).await.unwrap().unwrap();
            messages.push(c.event.data["message"].as_str().unwrap().to_owned());
        }
        let expected: Vec<&str> =
            if first.is_ok() { vec!["before", "during", "after"] } else { vec!["before", "after"] };
        assert_eq!(messages, expected);
        let resync = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                if notices.recv().await.unwrap() == Notice::Resync {
                    return;
                }
            }
        })
        .await;
        assert!(resync.is_ok(), "the listener tells that notices may have been missed");
    });
}

/// A session's events by sequence number, its task's whole and paged (999 at a
/// time), and the task's messages alone.
async fn read_all(
    store: Store,
    sid: SessionId,
    tid: TaskId,
) -> (
    Vec<baton_core::event::Event>,
    Vec<baton_core::event::Event>,
    Vec<baton_core::event::Event>,
    Vec<baton_core::event::Event>,
) {
    let by_seq = store.read(move |r| r.session_events(&sid, 0, 100_000)).await.unwrap();
    let (t2, t3) = (tid.clone(), tid.clone());
    let by_task = store
        .read(move |r| r.events(&EventFilter { task: Some(t2), limit: 100_000, ..Default::default() }))
        .await
        .unwrap();
    // Paged, 999 at a time, from the middle on, and by kind.
    let mut paged = Vec::new();
    let mut after = 0;
    loop {
        let t = t3.clone();
        let page = store
            .read(move |r| r.events(&EventFilter { task: Some(t), after, limit: 999, ..Default::default() }))
            .await
            .unwrap();
        match page.last() {
            Some(e) => after = e.id,
            None => break,
        }
        paged.extend(page);
    }
    let messages = store
        .read(move |r| {
            r.events(&EventFilter {
                task: Some(tid),
                kinds: vec![EventKind::Message],
                limit: 100,
                ..Default::default()
            })
        })
        .await
        .unwrap();
    (by_seq, by_task, paged, messages)
}

#[test]
fn archived_output_reads_as_it_did_and_its_space_comes_back() {
    each(|store, backend| async move {
        let p = project("archive");
        let t = task(&p.id, TaskStatus::Succeeded);
        let s = session(&t, None, 0.0);
        let (sid, tid) = (s.id.clone(), t.id.clone());
        store
            .write(move |tx| {
                tx.put_project(&p)?;
                tx.insert_task(&t)?;
                tx.put_session(&s)?;
                // 25,000 lines printed, with a message every 1,000 (which stays).
                for chunk in 0..25 {
                    let mut events: Vec<NewEvent> = (0..1000)
                        .map(|i| NewEvent::output("stdout", format!("line {} of the run", chunk * 1000 + i)))
                        .collect();
                    events.push(NewEvent::message("assistant", format!("message {chunk}")));
                    tx.append_events(&s.id, None, Some(&t.id), events)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let before = read_all(store.clone(), sid.clone(), tid.clone()).await;
        assert_eq!(before.0.len(), 25_025, "{backend}");
        assert_eq!(before.2, before.1, "{backend}: paged reads the same");

        // Found by a scan of the events up to a time, then archived a slice at a time.
        let (sessions, upto) =
            store.read(|r| r.output_sessions(0, Timestamp::now().plus_millis(1000), 100_000)).await.unwrap();
        assert_eq!(sessions, std::slice::from_ref(&sid), "{backend}");
        assert_eq!(upto, before.1.last().unwrap().id, "{backend}");
        let none = store.read(|r| r.output_sessions(0, Timestamp::from_millis(0), 100_000)).await.unwrap();
        assert_eq!(none, (Vec::new(), 0), "{backend}: nothing before the cutoff");
        let mut moved = Vec::new();
        loop {
            let s = sid.clone();
            let n = store.write(move |tx| tx.archive_output(&s)).await.unwrap();
            if n == 0 {
                break;
            }
            moved.push(n);
        }
        assert_eq!(moved, [10_000, 10_000, 5_000], "{backend}");
        let totals = store.read(|r| r.archive_totals()).await.unwrap();
        assert_eq!((totals.slices, totals.events), (3, 25_000), "{backend}");
        assert!(totals.stored * 5 < totals.bytes, "{backend}: compressed ({totals:?})");
        let live = store.read(|r| r.events(&EventFilter { limit: 100_000, ..Default::default() })).await.unwrap();
        assert_eq!(live.len(), 25, "{backend}: only messages stay in the table");

        let after = read_all(store.clone(), sid.clone(), tid.clone()).await;
        assert_eq!(after, before, "{backend}: reads the same after archiving");
        if backend == "sqlite" {
            let pages = store.write(|tx| tx.reclaim_space()).await.unwrap();
            assert!(pages > 0, "{backend}: deleted rows' pages go back");
        }

        // Waiting sessions page by id; the archiver's place only moves on.
        let s = sid.clone();
        store
            .write(move |tx| {
                tx.wait_output(&s, true)?;
                tx.wait_output(&s, true)?;
                tx.set_retention_scanned(50)?;
                tx.set_retention_scanned(40)
            })
            .await
            .unwrap();
        let (waiting, scanned) =
            store.read(|r| Ok::<_, StoreError>((r.output_waiting(None, 10)?, r.retention_scanned()?))).await.unwrap();
        assert_eq!((waiting, scanned), (vec![sid.clone()], 50), "{backend}");
        let s = sid.clone();
        let rest = store.read(move |r| r.output_waiting(Some(&s), 10)).await.unwrap();
        assert!(rest.is_empty(), "{backend}");
    });
}

#[test]
fn a_bulk_write_reads_its_own_tasks_and_stores_them_with_their_events_in_order() {
    each(|store, backend| async move {
        let p = project("bulk");
        let p2 = p.clone();
        store.write(move |tx| tx.put_project(&p2)).await.unwrap();
        let mut feed = store.subscribe();
        let before = store.read(|r| r.last_event_id()).await.unwrap();
        let first = task(&p.id, TaskStatus::Pending);
        let (pid, id) = (p.id.clone(), first.id.clone());
        let sid = SessionId::generate();
        let (made, appended) = store
            .write(move |tx| {
                tx.begin_bulk();
                let mut made: Vec<TaskId> = Vec::new();
                // Every message, in the order appended.
                let mut appended: Vec<String> = Vec::new();
                for i in 0..1_500 {
                    let mut t = task(&pid, TaskStatus::Pending);
                    if i == 0 {
                        t = first.clone();
                    } else {
                        t.depends_on = vec![made[i - 1].clone()];
                    }
                    tx.insert_task(&t)?;
                    tx.append_event(None, None, Some(&t.id), NewEvent::log(format!("made {i}")))?;
                    appended.push(format!("made {i}"));
                    // A session's events between them: written at once, in order.
                    if i % 100 == 7 {
                        tx.append_event(Some(&sid), None, Some(&t.id), NewEvent::log(format!("session {i}")))?;
                        appended.push(format!("session {i}"));
                    }
                    if i == 700 {
                        let batch = vec![NewEvent::log("batch a"), NewEvent::log("batch b")];
                        tx.append_events(&sid, None, None, batch)?;
                        appended.extend(["batch a".to_owned(), "batch b".to_owned()]);
                    }
                    made.push(t.id);
                }
                // Read back from the transaction, changed, and read again.
                let mut t = tx.task(&id)?.expect("its own task");
                t.status = TaskStatus::AwaitingApproval;
                tx.put_task(&t)?;
                assert_eq!(tx.task(&id)?.map(|t| t.status), Some(TaskStatus::AwaitingApproval));
                // A statement naming their table sees them all.
                let listed = tx.tasks(&TaskFilter { project: Some(pid.clone()), ..Default::default() })?;
                assert_eq!(listed.len(), 1_500);
                // And the transaction goes on gathering after it.
                let late = task(&pid, TaskStatus::Pending);
                tx.insert_task(&late)?;
                tx.append_event(None, None, Some(&late.id), NewEvent::log("late"))?;
                appended.push("late".to_owned());
                made.push(late.id);
                Ok::<_, StoreError>((made, appended))
            })
            .await
            .unwrap();
        let events = store
            .read(move |r| r.events(&EventFilter { after: before, limit: 10_000, ..Default::default() }))
            .await
            .unwrap();
        assert_eq!(events.len(), 1_501 + 15 + 2, "{backend}");
        assert!(events.windows(2).all(|w| w[0].id < w[1].id), "{backend}");
        let messages: Vec<String> =
            events.iter().map(|e| e.data["message"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(messages, appended, "{backend}: ids in the order the events were appended");
        let seqs: Vec<i64> = events.iter().filter(|e| e.session_id.is_some()).filter_map(|e| e.seq).collect();
        assert_eq!(seqs, (1..=17).collect::<Vec<_>>(), "{backend}: the session numbered in order");
        assert_eq!(events.last().map(|e| e.task_id.clone()), Some(made.last().cloned()), "{backend}");
        let third = made[2].clone();
        let stored = store.read(move |r| r.task(&third)).await.unwrap().unwrap();
        assert_eq!(stored.depends_on, vec![made[1].clone()], "{backend}");
        let dependents = store
            .read({
                let m = made[1].clone();
                move |r| r.dependents(&m)
            })
            .await
            .unwrap();
        assert_eq!(dependents.len(), 1, "{backend}: prerequisites stored");
        let status = store
            .read({
                let m = made[0].clone();
                move |r| r.task(&m)
            })
            .await
            .unwrap()
            .map(|t| t.status);
        assert_eq!(status, Some(TaskStatus::AwaitingApproval), "{backend}");
        // Published after the commit, in order.
        let mut published = Vec::new();
        while let Ok(Ok(c)) = tokio::time::timeout(Duration::from_secs(2), feed.recv()).await {
            published.push(c.event.id);
            if published.len() == 1_501 + 15 + 2 {
                break;
            }
        }
        assert_eq!(published, events.iter().map(|e| e.id).collect::<Vec<_>>(), "{backend}");
    });
}

#[test]
fn an_urgent_write_passes_a_group_in_progress() {
    each(|store, backend| async move {
        let ran: std::sync::Arc<std::sync::Mutex<Vec<String>>> = Default::default();
        let job = |name: String, ms: u64| {
            let ran = std::sync::Arc::clone(&ran);
            move |_: &mut dyn baton_store::StoreTx| {
                std::thread::sleep(Duration::from_millis(ms));
                ran.lock().unwrap().push(name);
                Ok::<_, StoreError>(())
            }
        };
        // The first job holds the writer while the others queue: they make one
        // group, of 40 jobs of 10 ms each.
        let mut slow = Vec::new();
        slow.push(tokio::spawn({
            let (store, job) = (store.clone(), job("first".into(), 100));
            async move { store.write(job).await }
        }));
        tokio::time::sleep(Duration::from_millis(20)).await;
        for i in 0..40 {
            let (store, job) = (store.clone(), job(format!("slow {i}"), 10));
            slow.push(tokio::spawn(async move { store.write(job).await }));
        }
        while !ran.lock().unwrap().iter().any(|n| n == "slow 2") {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        store.write_urgent(job("urgent".into(), 0)).await.unwrap();
        for handle in slow {
            handle.await.unwrap().unwrap();
        }
        let ran = ran.lock().unwrap().clone();
        let at = ran.iter().position(|n| n == "urgent").unwrap();
        assert_eq!(ran.len(), 42, "{backend}");
        // Run after the job in progress, not after the group's 37 others.
        assert!(at < 15, "{backend}: the urgent job ran {at}th: {ran:?}");
    });
}

#[test]
fn a_job_reads_its_own_writes_of_agents_projects_and_launchers() {
    each(|store, backend| async move {
        let agent = |model: &str| {
            let text = format!("---\nname: memo\nmodel: {model}\ncommand: [\"true\"]\n---\nbody\n");
            baton_core::agent::AgentDef::from_markdown(&text, "memo", "test", baton_core::agent::ExecutorKind::Command)
                .unwrap()
        };
        let (first, second) = (agent("one"), agent("two"));
        let mut p = project("memo");
        let l = launcher("memo");
        let seen = store
            .write(move |tx| {
                tx.put_agent(&first)?;
                let a1 = tx.agent("memo")?.and_then(|a| a.model);
                tx.put_agent(&second)?;
                let a2 = tx.agent("memo")?.and_then(|a| a.model);
                tx.delete_agent("memo")?;
                let a3 = tx.agent("memo")?.is_some();
                tx.put_project(&p)?;
                let p1 = tx.project(&p.id)?.map(|p| p.name);
                p.name = "renamed".into();
                tx.put_project(&p)?;
                let p2 = tx.project(&p.id)?.map(|p| p.name);
                let l1 = tx.launchers()?.len();
                tx.put_launcher(&l)?;
                let l2 = tx.launchers()?.len();
                Ok::<_, StoreError>((a1, a2, a3, p1, p2, l1, l2))
            })
            .await
            .unwrap();
        let expected = (
            Some("one".to_owned()),
            Some("two".to_owned()),
            false,
            Some("memo".to_owned()),
            Some("renamed".to_owned()),
            0,
            1,
        );
        assert_eq!(seen, expected, "{backend}");
    });
}

#[test]
fn a_bulk_write_gathers_new_sessions_their_runs_and_events_in_order() {
    each(|store, backend| async move {
        let p = project("gather");
        let (p2, pid) = (p.clone(), p.id.clone());
        // A session from before, with two events.
        let old_task = task(&p.id, TaskStatus::Running);
        let old = session(&old_task, None, 0.0);
        let (ot, os) = (old_task.clone(), old.clone());
        store
            .write(move |tx| {
                tx.put_project(&p2)?;
                tx.insert_task(&ot)?;
                tx.put_session(&os)?;
                tx.append_event(Some(&os.id), None, None, NewEvent::log("old 1"))?;
                tx.append_event(Some(&os.id), None, None, NewEvent::log("old 2"))?;
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
        let before = store.read(|r| r.last_event_id()).await.unwrap();
        let old_id = old.id.clone();
        let (made, appended) = store
            .write(move |tx| {
                tx.begin_bulk();
                let mut made = Vec::new();
                let mut appended: Vec<String> = Vec::new();
                let mut log = |tx: &mut dyn baton_store::StoreTx, s: Option<&SessionId>, m: String| {
                    appended.push(m.clone());
                    tx.append_event(s, None, None, NewEvent::log(m)).map(|e| e.seq)
                };
                for i in 0..5 {
                    let t = task(&pid, TaskStatus::Queued);
                    tx.insert_task(&t)?;
                    log(tx, None, format!("task {i}"))?;
                    let s = session(&t, None, 0.0);
                    tx.insert_session(&s)?;
                    assert_eq!(log(tx, Some(&s.id), format!("session {i}"))?, Some(1));
                    let mut r = run(&s, RunStatus::Queued, None);
                    r.created_at = Timestamp::from_millis(5_000);
                    tx.put_run(&r)?;
                    assert_eq!(log(tx, Some(&s.id), format!("run {i}"))?, Some(2));
                    // Written again before the end: the last write counts.
                    r.message = format!("second {i}");
                    tx.put_run(&r)?;
                    if i == 2 {
                        // A session from before is numbered after its own events.
                        assert_eq!(log(tx, Some(&old_id), "old 3".into())?, Some(3));
                        // A read of the runs sees those gathered so far.
                        let queued = tx.queued_runs(&QueuedRuns { limit: 100, ..Default::default() })?;
                        assert_eq!(queued.len(), 3);
                        assert_eq!(log(tx, Some(&s.id), format!("after {i}"))?, Some(3));
                    }
                    made.push((s.id, r.id));
                }
                Ok::<_, StoreError>((made, appended))
            })
            .await
            .unwrap();
        let events = store
            .read(move |r| r.events(&EventFilter { after: before, limit: 100, ..Default::default() }))
            .await
            .unwrap();
        let messages: Vec<String> =
            events.iter().map(|e| e.data["message"].as_str().unwrap_or("").to_owned()).collect();
        assert_eq!(messages, appended, "{backend}: ids in the order the events were appended");
        let runs = store.read(|r| r.queued_runs(&QueuedRuns { limit: 100, ..Default::default() })).await.unwrap();
        let order: Vec<RunId> = runs.iter().map(|r| r.id.clone()).collect();
        assert_eq!(order, made.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>(), "{backend}: queued in order");
        assert!(runs.iter().all(|r| r.message.starts_with("second")), "{backend}");
        let (sid, _) = made[4].clone();
        let stored = store.read(move |r| r.session(&sid)).await.unwrap();
        assert!(stored.is_some(), "{backend}: the session is stored");
    });
}
