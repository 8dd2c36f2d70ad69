//! Baton after a year (`--history N`): the same requests on a first day's store
//! (a thousand tasks, more than any first page) and on one holding N more settled tasks spread over the past year, each with a
//! session, [`LINES`] printed lines, a message and a result, written straight
//! through the store (the coordinator stopped meanwhile). Each figure is
//! reported empty, full, and as their ratio (the target: at most 1.2), with the
//! coordinator's memory and the store's size per million output events.

use std::process::Command;
use std::time::{Duration, Instant};

use baton_core::event::NewEvent;
use baton_core::ids::{ProjectId, SessionId, TaskId};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_store::{HourDelta, Store, StoreError};
use serde_json::{Value, json};

use crate::harness::{Coordinator, baton_binary, rss_kib};
use crate::measures::{Measure, agent, measure, median_p99, spawn_latencies};

/// Lines printed per task: 40, or `BENCH_LINES` (100 makes a million tasks a
/// hundred million events).
static LINES: std::sync::LazyLock<usize> =
    std::sync::LazyLock::new(|| std::env::var("BENCH_LINES").ok().and_then(|v| v.parse().ok()).unwrap_or(40));
/// Tasks written per transaction.
const BATCH: usize = 500;
/// Tasks in the store the first figures are taken on (a first day's).
const FIRST_DAY: usize = 1_000;
/// Samples of each request.
const SAMPLES: usize = 30;

/// The figures measured on one store.
struct Figures {
    create: f64,
    spawned: f64,
    board: f64,
    tasks_page: f64,
    ps: f64,
    costs: f64,
    search: f64,
    rss_mib: f64,
}

pub async fn history(n: usize) -> Vec<Measure> {
    let mut c = Coordinator::start(4, "worktrees = false\n");
    agent(&c, "held", json!(["true"])).await;
    for i in 0..200 {
        let body = json!({ "name": format!("notes/{i}"), "content": format!("Note {i}: the release checklist and the database's latency budget.") });
        let _: Value = c.client.post("/api/docs", &body).await.unwrap();
    }
    // The first day: a thousand tasks, more than any first page holds.
    let place = c.store_place();
    let project: ProjectId =
        c.client.get::<Vec<Value>>("/api/projects").await.unwrap()[0]["id"].as_str().unwrap().parse().unwrap();
    c.stop();
    fill(&place, project.clone(), FIRST_DAY, 0).await;
    c.start_again();
    let empty = figures(&c).await;
    let started = Instant::now();
    c.stop();
    fill(&place, project, n, FIRST_DAY).await;
    c.start_again();
    let fill_s = started.elapsed().as_secs_f64();
    eprintln!("history: {n} tasks and {} events written in {fill_s:.0} s", n * (*LINES + 3));
    let full = figures(&c).await;
    let size = store_bytes(&c);
    let mut out = vec![measure(&format!("history: {n} tasks written, seconds"), fill_s, "-", "s")];
    for (name, unit, e, f) in [
        ("create a task", "ms", empty.create, full.create),
        ("create → spawned", "ms", empty.spawned, full.spawned),
        ("the board's first load", "ms", empty.board, full.board),
        ("GET /api/tasks, first page", "ms", empty.tasks_page, full.tasks_page),
        ("baton ps", "ms", empty.ps, full.ps),
        ("GET /api/costs", "ms", empty.costs, full.costs),
        ("a document search", "ms", empty.search, full.search),
        ("coordinator RSS", "MiB", empty.rss_mib, full.rss_mib),
    ] {
        out.push(measure(&format!("history: {name}, first day"), e, "-", unit));
        out.push(measure(&format!("history: {name}, {n} tasks on"), f, "-", unit));
        out.push(measure(&format!("history: {name}, growth"), f / e.max(1e-9), "1.2", "×"));
    }
    let events = (n * (*LINES + 3)) as f64;
    out.push(measure("history: store size", size as f64 / 1_048_576.0, "-", "MiB"));
    out.push(measure(
        "history: store size per million output events",
        size as f64 / 1_048_576.0 / (n * *LINES) as f64 * 1e6,
        "-",
        "MiB",
    ));
    out.push(measure("history: events written", events, "-", "events"));
    out
}

/// The median of [`SAMPLES`] runs of `request`, in milliseconds.
async fn median_of<F, Fut>(request: F) -> f64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        let t = Instant::now();
        request().await;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    median_p99(samples).0
}

async fn figures(c: &Coordinator) -> Figures {
    let get = |path: &'static str| async move {
        let _: Value = c.client.get(path).await.unwrap();
    };
    let create = median_of(|| async {
        let body = json!({ "project": "repo", "agent": "held", "prompt": "held", "approval": "required" });
        let _: Value = c.client.post("/api/tasks", &body).await.unwrap();
    })
    .await;
    let board = median_of(|| async {
        get("/api/tasks?limit=500").await;
        get("/api/stats/hourly?hours=24").await;
    })
    .await;
    let tasks_page = median_of(|| get("/api/tasks?limit=50")).await;
    let costs = median_of(|| get("/api/costs")).await;
    let search = median_of(|| get("/api/docs/search?q=latency%20budget&limit=10")).await;
    let ps = median_of(|| async {
        let out = Command::new(baton_binary())
            .arg("ps")
            .env("BATON_URL", &c.url)
            .env("BATON_TOKEN", &c.token)
            .current_dir(&c.repo)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    })
    .await;
    let (spawned, _) = spawn_latencies(c, &c.stamps, SAMPLES).await;
    Figures {
        create,
        spawned: median_p99(spawned).0,
        board,
        tasks_page,
        ps,
        costs,
        search,
        rss_mib: rss_kib(c.pid()) as f64 / 1024.0,
    }
}

/// Writes `n` settled tasks over the past year (numbered from `from`), [`BATCH`]
/// per transaction.
async fn fill(place: &Result<std::path::PathBuf, String>, project: ProjectId, n: usize, from: usize) {
    let store: Store = match place {
        Ok(path) => baton_store::sqlite::open(&baton_store::sqlite::SqliteOptions::new(path)).unwrap(),
        Err(url) => baton_store::postgres::open(&baton_store::postgres::PgOptions::new(url)).unwrap(),
    };
    let now = Timestamp::now().as_millis();
    let year: i64 = 365 * 24 * 3_600_000;
    for first in (0..n).step_by(BATCH) {
        let project = project.clone();
        let last = (first + BATCH).min(n);
        store
            .write(move |tx| {
                for i in first..last {
                    let at = now - year + year / n as i64 * i as i64;
                    write_task(tx, &project, from + i, at)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }
    drop(store);
    tokio::time::sleep(Duration::from_millis(200)).await;
}

/// One settled task of the history, finished at `at`, with its session and events.
pub(crate) fn write_task(
    tx: &mut dyn baton_store::StoreTx,
    project: &ProjectId,
    i: usize,
    at: i64,
) -> Result<(), StoreError> {
    let (task_id, session_id) = (TaskId::generate(), SessionId::generate());
    let ts = Timestamp::from_millis(at);
    let status = if i.is_multiple_of(10) { TaskStatus::Failed } else { TaskStatus::Succeeded };
    let agent = ["held", "coder", "reviewer"][i % 3];
    let task = serde_json::from_value(json!({
        "id": task_id, "project_id": project, "title": format!("history {i}"), "prompt": "p", "agent": agent,
        "status": status, "created_at": Timestamp::from_millis(at - 60_000), "updated_at": ts,
        "started_at": Timestamp::from_millis(at - 55_000), "finished_at": ts, "session_id": session_id,
        "usage": { "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.02 },
    }))
    .map_err(|source| StoreError::Corrupt { what: "task", source })?;
    tx.insert_task(&task)?;
    let session = serde_json::from_value(json!({
        "id": session_id, "task_id": task_id, "project_id": project, "agent": agent, "executor": "command",
        "status": "idle", "usage": { "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.02 },
        "created_at": Timestamp::from_millis(at - 60_000), "updated_at": ts,
    }))
    .map_err(|source| StoreError::Corrupt { what: "session", source })?;
    tx.put_session(&session)?;
    let mut events: Vec<NewEvent> = (0..*LINES)
        .map(|l| {
            let mut e = NewEvent::output("stdout", format!("step {l}: compiling crate {i} module {l} ... ok"));
            e.ts = Some(Timestamp::from_millis(at - 50_000 + l as i64 * 1000));
            e
        })
        .collect();
    events.push(NewEvent::message("assistant", format!("Task {i} is done: every step passed.")));
    events.push(NewEvent::log("WIP commit"));
    events.push(NewEvent::new(baton_core::event::EventKind::Result, json!({ "result": "done" })));
    tx.append_events(&session_id, None, Some(&task_id), events)?;
    tx.add_hour(&HourDelta {
        hour: at - at.rem_euclid(3_600_000),
        project: project.clone(),
        agent: agent.to_owned(),
        finished: Some(status),
        cost_usd: 0.02,
    })
}

/// The store's size on disk: the SQLite file and its WAL, or the database.
pub(crate) fn store_bytes(c: &Coordinator) -> u64 {
    match c.store_place() {
        Ok(path) => ["", "-wal"]
            .iter()
            .filter_map(|s| std::fs::metadata(format!("{}{s}", path.display())).ok())
            .map(|m| m.len())
            .sum(),
        Err(url) => {
            let out = Command::new("psql")
                .args([url.as_str(), "-Atc", "SELECT pg_database_size(current_database())"])
                .output()
                .ok();
            out.and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok()).unwrap_or(0)
        }
    }
}
