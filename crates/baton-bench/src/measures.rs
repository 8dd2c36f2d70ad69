//! The measures.

use std::time::{Duration, Instant};

use baton_core::model::Task;
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Coordinator, baton_binary, now_ns, pids_matching, pss_kib, rss_kib};

/// One figure.
pub struct Measure {
    pub key: String,
    pub value: f64,
    pub target: String,
    pub unit: &'static str,
}

pub(crate) fn measure(key: &str, value: f64, target: &str, unit: &'static str) -> Measure {
    Measure { key: key.into(), value, target: target.into(), unit }
}

/// The median and 99th percentile of samples.
pub(crate) fn median_p99(mut samples: Vec<f64>) -> (f64, f64) {
    samples.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99))
}

/// Defines a `command` agent (or keeps the one of that name).
pub(crate) async fn agent(c: &Coordinator, name: &str, command: Value) {
    let made = c
        .client
        .post::<Value, _>("/api/agents", &json!({ "name": name, "executor": "command", "command": command }))
        .await;
    match made {
        Ok(_) => {}
        Err(e) if e.code() == Some(baton_core::api::ErrorCode::AlreadyExists) => {}
        Err(e) => panic!("could not define agent {name}: {e}"),
    }
}

pub(crate) async fn create(c: &Coordinator, agent: &str, extra: Value) -> Task {
    let mut body = json!({ "project": "repo", "prompt": "bench", "agent": agent });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    c.client.post("/api/tasks", &body).await.unwrap()
}

/// Every measure, in order; `quick` runs a tenth of each.
pub async fn all(quick: bool) -> Vec<Measure> {
    let scale = if quick { 10 } else { 1 };
    let mut out = Vec::new();
    // Baton's own overhead: tasks that need no worktree (read-only or no-op work).
    let c = Coordinator::start(8, "worktrees = false\n");
    tokio::time::sleep(Duration::from_millis(500)).await;
    out.push(measure("coordinator idle RSS", rss_kib(c.pid()) as f64 / 1024.0, "< 20", "MiB"));
    out.extend(creates(&c, scale).await);
    out.extend(spawns(&c, scale).await);

    // 1,000 no-op tasks, end to end.
    let n = 1000 / scale;
    let secs = throughput(&c, n).await;
    let target = match (quick, crate::harness::on_postgres()) {
        (true, _) => "-",
        (false, true) => "< 15",
        (false, false) => "< 10",
    };
    out.push(measure(&format!("{n} no-op tasks end to end"), secs, target, "s"));

    // A 10,000-task DAG: validated, created and its roots scheduled in one call.
    let n = 10_000 / scale;
    out.push(measure(
        &format!("{n}-task DAG submitted and scheduled"),
        dag_submission(&c, n).await,
        if quick { "-" } else { "< 1000" },
        "ms",
    ));

    // 20,000 events a second from one agent, to 50 live clients.
    out.extend(crate::fanout::fanout(&c, 20_000, if quick { 1 } else { 3 }, 50).await);
    out.extend(board_first_load(100_000 / scale).await);
    out.extend(launcher_overhead(&c).await);
    drop(c);
    let (with_worktrees, embedded, own) = worktrees(scale).await;
    out.extend(with_worktrees);
    out.extend(remote(scale, embedded, own).await);
    out.extend(worktree_overhead(quick).await);
    out
}

/// A plan of `n` tasks submitted five times to one coordinator: the median and
/// the slowest.
pub async fn dag_alone(n: usize) -> Vec<Measure> {
    let c = Coordinator::start(8, "worktrees = false\n");
    agent(&c, "held", json!(["true"])).await;
    let mut samples = Vec::new();
    for _ in 0..5 {
        samples.push(dag_submission(&c, n).await);
    }
    let slowest = samples.iter().copied().fold(0.0, f64::max);
    let (median, _) = median_p99(samples);
    vec![
        measure(&format!("{n}-task DAG submitted and scheduled, median of 5"), median, "< 1000", "ms"),
        measure(&format!("{n}-task DAG submitted and scheduled, slowest of 5"), slowest, "-", "ms"),
    ]
}

/// Create-task latency, for tasks held back by an approval gate (the create
/// path alone).
async fn creates(c: &Coordinator, scale: usize) -> Vec<Measure> {
    agent(c, "held", json!(["true"])).await;
    for _ in 0..50 {
        create(c, "held", json!({ "approval": "required" })).await;
    }
    let mut samples = Vec::new();
    for _ in 0..2000 / scale {
        let t = Instant::now();
        create(c, "held", json!({ "approval": "required" })).await;
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (median, p99) = median_p99(samples);
    let pg = crate::harness::on_postgres();
    vec![
        measure("create task, median", median, if pg { "< 2" } else { "< 1" }, "ms"),
        measure("create task, p99", p99, "-", "ms"),
    ]
}

/// Create → agent spawned without worktrees, with the sandbox and without.
async fn spawns(c: &Coordinator, scale: usize) -> Vec<Measure> {
    let samples = spawn_latencies(c, &c.stamps, 300 / scale).await.0;
    if std::env::var_os("BENCH_DEBUG").is_some() {
        let mut sorted = samples.clone();
        sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let q = |f: f64| sorted[((sorted.len() - 1) as f64 * f) as usize];
        eprintln!(
            "spawn quantiles: p10 {:.2} p25 {:.2} p50 {:.2} p75 {:.2} p90 {:.2}",
            q(0.1),
            q(0.25),
            q(0.5),
            q(0.75),
            q(0.9)
        );
        eprintln!("sequence: {:?}", samples.iter().map(|s| (s * 10.0).round() / 10.0).collect::<Vec<_>>());
    }
    let (median, p99) = median_p99(samples);
    let own = agent_start_cost(c).await;
    let pg = crate::harness::on_postgres();
    let mut out = vec![
        measure("create → agent's first instruction, median", median, "-", "ms"),
        measure("  the agent's own start-up (excluded below)", own, "-", "ms"),
        measure("create → agent spawned, median", median - own, if pg { "< 8" } else { "< 5" }, "ms"),
        measure("create → agent spawned, p99", p99 - own, "-", "ms"),
    ];
    // The same without a sandbox: what bubblewrap adds.
    let bare = Coordinator::start(8, "worktrees = false\nsandbox = \"off\"\n");
    let (bare_median, _) = median_p99(spawn_latencies(&bare, &bare.stamps, 300 / scale).await.0);
    out.push(measure("no sandbox: create → agent spawned, median", bare_median - own, "-", "ms"));
    out.push(measure("the sandbox adds to create → spawned, median", median - bare_median, "<= 3", "ms"));
    out
}

/// Launcher overhead per running agent: what the coordinator process grows by,
/// plus each supervisor's proportional memory (its private pages and its share
/// of the binary's pages).
async fn launcher_overhead(c: &Coordinator) -> Vec<Measure> {
    agent(c, "sleeper", json!(["sleep", "60"])).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = rss_kib(c.pid());
    let k = 8;
    let mut sleepers = Vec::new();
    for _ in 0..k {
        sleepers.push(create(c, "sleeper", json!({})).await.id.to_string());
    }
    let start = Instant::now();
    let supervisors = loop {
        let pids = pids_matching(" supervise ");
        if pids.len() >= k {
            break pids;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "sleepers did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let growth = rss_kib(c.pid()).saturating_sub(before) as f64 / k as f64;
    let pss: u64 = supervisors.iter().map(|p| pss_kib(*p)).sum();
    let per_supervisor = pss as f64 / supervisors.len() as f64;
    let rss: u64 = supervisors.iter().map(|p| rss_kib(*p)).sum();
    let out = vec![
        measure("launcher overhead per running agent", (growth + per_supervisor) / 1024.0, "< 2", "MiB"),
        measure("  of which supervisor PSS", per_supervisor / 1024.0, "-", "MiB"),
        measure("  supervisor RSS (shared pages counted)", rss as f64 / supervisors.len() as f64 / 1024.0, "-", "MiB"),
    ];
    for id in sleepers {
        let _: Value = c.client.post(&format!("/api/tasks/{id}/stop"), &json!({})).await.unwrap();
    }
    out
}

/// The same, with each task in its own worktree (the default): `git worktree
/// add` before the agent starts, a WIP commit and the branch's summary after.
/// Spare worktrees (`worktree_pool`, default 2) make the checkout before the
/// agent starts; without them (pool 0) each task waits for `git init` and a
/// checkout, and without the sandbox what bubblewrap adds is left out. The
/// measures, the embedded launcher's create → spawned and the agent's own
/// start-up.
pub(crate) async fn worktrees(scale: usize) -> (Vec<Measure>, f64, f64) {
    let mut out = Vec::new();
    for (config, label) in [("worktree_pool = 0\n", "no spare worktrees"), ("sandbox = \"off\"\n", "no sandbox")] {
        let c = Coordinator::start(8, config);
        let own = agent_start_cost(&c).await;
        let (median, p99) = median_p99(spawn_latencies(&c, &c.stamps, 100 / scale).await.0);
        out.push(measure(&format!("with worktrees, {label}: create → agent spawned, median"), median - own, "-", "ms"));
        out.push(measure(&format!("with worktrees, {label}: create → agent spawned, p99"), p99 - own, "-", "ms"));
    }
    let c = Coordinator::start(8, "");
    let own = agent_start_cost(&c).await;
    let (spawned, ended) = spawn_latencies(&c, &c.stamps, 100 / scale).await;
    let (median, p99) = median_p99(spawned);
    let embedded = median - own;
    out.push(measure("with worktrees: create → agent spawned, median", embedded, "< 5", "ms"));
    out.push(measure("with worktrees: create → agent spawned, p99", p99 - own, "< 15", "ms"));
    let (ended, _) = median_p99(ended);
    out.push(measure("with worktrees: agent's end → task succeeded (WIP, push), median", ended, "-", "ms"));
    // Back to back, the runs above outpace the spare worktrees' refill (each
    // waits 150 ms, then a checkout): the same with each task created once the
    // previous one's spare is made again, as when tasks last longer than that.
    let mut paced = Vec::new();
    for _ in 0..100 / scale {
        tokio::time::sleep(Duration::from_millis(400)).await;
        paced.extend(spawn_latencies(&c, &c.stamps, 1).await.0);
    }
    let (median, p99) = median_p99(paced);
    out.push(measure("with worktrees, paced: create → agent spawned, median", median - own, "< 5", "ms"));
    out.push(measure("with worktrees, paced: create → agent spawned, p99", p99 - own, "< 12", "ms"));
    let n = 200 / scale;
    out.push(measure(&format!("with worktrees: {n} no-op tasks end to end"), throughput(&c, n).await, "-", "s"));
    (out, embedded, own)
}

/// A launcher with a data directory of its own (its mirror fetched over `/git`,
/// as on another host): create → spawned with a warm mirror, against the
/// embedded launcher's figure, and how many fetches each task costs.
async fn remote(scale: usize, embedded: f64, own: f64) -> Vec<Measure> {
    let c = Coordinator::start_with(8, "", &["--no-launcher"]);
    let remote = crate::harness::RemoteLauncher::start(&c, 8).await;
    spawn_latencies(&c, &remote.stamps, 2).await;
    let fetches = c.metric("baton_git_fetches_total").await;
    let n = 100 / scale;
    let (spawned, ended) = spawn_latencies(&c, &remote.stamps, n).await;
    let per_task = (c.metric("baton_git_fetches_total").await - fetches) / n as f64;
    let (median, _) = median_p99(spawned);
    let (ended, _) = median_p99(ended);
    vec![
        measure("remote launcher, warm mirror: create → spawned, median", median - own, "-", "ms"),
        measure("  / the embedded launcher's", (median - own) / embedded, "<= 2", "×"),
        measure("remote launcher: agent's end → task succeeded (WIP, push), median", ended, "-", "ms"),
        measure("remote launcher: fetches per task", per_task, "<= 1", ""),
    ]
}

/// Creates tasks one after another, each with the stamp agent writing into
/// `stamps`; the milliseconds from just before each `POST` to the stamp, and
/// from the stamp to the task's end (the run's report, its WIP commit and push).
pub(crate) async fn spawn_latencies(c: &Coordinator, stamps: &std::path::Path, n: usize) -> (Vec<f64>, Vec<f64>) {
    let stamp_dir = stamps.to_string_lossy().into_owned();
    agent(c, "stamp", json!([baton_binary().with_file_name("baton-bench"), "stamp", stamp_dir])).await;
    let mut samples = Vec::with_capacity(n);
    let mut ends = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = now_ns();
        let task = create(c, "stamp", json!({})).await;
        let file = stamps.join(task.id.as_str());
        let start = Instant::now();
        let stamped = loop {
            if let Ok(text) = std::fs::read_to_string(&file) {
                break text.trim().parse::<u128>().unwrap();
            }
            assert!(start.elapsed() < Duration::from_secs(10), "the agent never ran");
            tokio::time::sleep(Duration::from_millis(3)).await;
        };
        samples.push(stamped.saturating_sub(t0) as f64 / 1e6);
        wait_done(c, task.id.as_str()).await;
        let finished = c.client.task(task.id.as_str()).await.unwrap().task.finished_at.unwrap();
        ends.push(finished.as_millis() as f64 - stamped as f64 / 1e6);
    }
    (samples, ends)
}

/// Milliseconds to submit a plan of `n` tasks, each depending on up to three
/// earlier ones (a deterministic pseudo-random DAG), held by approval gates so
/// the measure is the scheduling, not the running.
async fn dag_submission(c: &Coordinator, n: usize) -> f64 {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |below: usize| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as usize) % below.max(1)
    };
    let tasks: Vec<Value> = (0..n)
        .map(|i| {
            let mut deps: Vec<String> =
                (0..if i == 0 { 0 } else { 1 + next(3) }).map(|_| format!("t{}", next(i))).collect();
            deps.sort();
            deps.dedup();
            json!({ "name": format!("t{i}"), "prompt": format!("step {i}"), "depends_on": deps })
        })
        .collect();
    let plan = json!({ "project": "repo", "defaults": { "agent": "held", "approval": "required" }, "tasks": tasks });
    let t = Instant::now();
    let created: Value = c.client.post("/api/plans", &plan).await.expect("the plan is accepted");
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    assert_eq!(created["tasks"].as_array().map(Vec::len), Some(n));
    ms
}

/// The dashboard's first load with `n` tasks in the store: a page of the task
/// list and the hourly aggregates its charts draw, as the board reads them.
async fn board_first_load(n: usize) -> Vec<Measure> {
    let c = Coordinator::start(8, "worktrees = false\n");
    agent(&c, "held", json!(["true"])).await;
    let mut left = n;
    let mut i = 0;
    while left > 0 {
        let size = left.min(50_000);
        let tasks: Vec<Value> = (0..size).map(|k| json!({ "name": format!("h{i}-{k}"), "prompt": "held" })).collect();
        let plan =
            json!({ "project": "repo", "defaults": { "agent": "held", "approval": "required" }, "tasks": tasks });
        let _: Value = c.client.post("/api/plans", &plan).await.expect("the plan is accepted");
        left -= size;
        i += 1;
    }
    let mut samples = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let _: Vec<Value> = c.client.get("/api/tasks?limit=500").await.unwrap();
        let _: Vec<Value> = c.client.get("/api/stats/hourly?hours=24").await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (median, p99) = median_p99(samples);
    vec![
        measure(&format!("board's first load with {n} tasks, median"), median, "-", "ms"),
        measure(&format!("board's first load with {n} tasks, p99"), p99, "-", "ms"),
    ]
}

/// Seconds for `n` no-op tasks, created back to back, to all succeed.
async fn throughput(c: &Coordinator, n: usize) -> f64 {
    agent(c, "noop", json!(["true"])).await;
    let t = Instant::now();
    for _ in 0..n {
        create(c, "noop", json!({})).await;
    }
    loop {
        let done: Vec<Task> = c.client.get("/api/tasks?status=succeeded,failed&limit=100000").await.unwrap();
        if done.iter().filter(|t| t.agent == "noop").count() >= n {
            return t.elapsed().as_secs_f64();
        }
        assert!(t.elapsed() < Duration::from_secs(600), "no-op tasks did not finish");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Creating a task's working tree (`baton_git::worktree::prepare`: validation, a
/// repository of its own borrowing the project's objects, the checkout) against
/// plain `git worktree add -b`, on a repository of 20,000 files, alternating the two.
async fn worktree_overhead(quick: bool) -> Vec<Measure> {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("big");
    std::fs::create_dir_all(&repo).unwrap();
    for d in 0..200 {
        let sub = repo.join(format!("dir{d:03}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            std::fs::write(sub.join(format!("file{f:03}.txt")), format!("{d} {f}\n")).unwrap();
        }
    }
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg("git init -q -b main && git add -A && git -c user.email=b@b -c user.name=b commit -qm files")
        .current_dir(&repo)
        .status()
        .unwrap();
    assert!(ok.success());
    let rounds = if quick { 3 } else { 10 };
    let head = std::process::Command::new("git").args(["rev-parse", "main"]).current_dir(&repo).output().unwrap();
    let base = String::from_utf8_lossy(&head.stdout).trim().to_owned();
    let (mut plain, mut baton) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let path = dir.path().join(format!("plain-{i}"));
        let t = Instant::now();
        let status = std::process::Command::new("git")
            .args(["worktree", "add", "--quiet", "-b", &format!("plain-{i}"), path.to_str().unwrap(), "main"])
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(status.success());
        plain.push(t.elapsed().as_secs_f64() * 1000.0);

        let path = dir.path().join(format!("baton-{i}"));
        let branch = format!("baton/{i}-bench");
        let objects = repo.join(".git/objects");
        let plan = baton_git::worktree::Plan {
            path: &path,
            objects: &objects,
            branch: &branch,
            base_commit: &base,
            head: None,
            checkpoint: None,
            prerequisites: &[],
        };
        let t = Instant::now();
        baton_git::worktree::prepare(&plan).await.unwrap();
        baton.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let (plain, _) = median_p99(plain);
    let (baton, _) = median_p99(baton);
    vec![
        measure("git worktree add, 20,000 files, median", plain, "-", "ms"),
        measure("baton worktree, 20,000 files, median", baton, "-", "ms"),
        measure("baton worktree / git worktree add", baton / plain, "< 1.2", "×"),
    ]
}

/// How long the stamp agent takes from being spawned to writing its stamp (its
/// own start-up, which is not Baton's): spawned directly, many times.
async fn agent_start_cost(c: &Coordinator) -> f64 {
    let bench = baton_binary().with_file_name("baton-bench");
    let mut samples = Vec::new();
    for i in 0..100 {
        let id = format!("direct-{i}");
        let t0 = now_ns();
        let status =
            std::process::Command::new(&bench).arg("stamp").arg(&c.stamps).env("BATON_TASK_ID", &id).status().unwrap();
        assert!(status.success());
        let stamped: u128 = std::fs::read_to_string(c.stamps.join(&id)).unwrap().trim().parse().unwrap();
        samples.push(stamped.saturating_sub(t0) as f64 / 1e6);
    }
    median_p99(samples).0
}

async fn wait_done(c: &Coordinator, id: &str) {
    loop {
        let t = c.client.task(id).await.unwrap();
        if t.task.status == TaskStatus::Succeeded || t.task.status == TaskStatus::Failed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}
