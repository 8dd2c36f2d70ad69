//! Several coordinators on one PostgreSQL database, all active: work and word
//! (tokens, login links, merges) cross replicas at once; a replica killed under
//! load loses nothing acknowledged and leaves nothing stuck; the timers move to
//! another replica; PostgreSQL itself restarting is ridden out. These tests make
//! databases of their own on the test server (`BATON_TEST_PG`, which
//! `scripts/test` starts), whichever store the rest of the suite runs on.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::fleet::Host;
use crate::harness::{BATON, Baton};

/// Whether a replica holds the timers' lease now.
async fn runs_timers(b: &Baton) -> bool {
    let health: Value = b.client.get("/healthz").await.unwrap_or_default();
    health["timers"] == true
}

/// Waits until `check` holds, up to `limit`; how long it took.
async fn within(limit: Duration, what: &str, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `command` agent that runs outside any sandbox (so it may write `stamps`).
async fn stamping_agent(b: &Baton, name: &str, stamps: &Path, lines: u32) {
    let script = format!(
        "i=0; while [ $i -lt {lines} ]; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done; echo x >> {}/$BATON_TASK_ID",
        stamps.display()
    );
    b.agent_def(json!({ "name": name, "executor": "command", "command": ["sh", "-c", script], "sandbox": "off" }))
        .await;
}

#[tokio::test]
async fn work_tokens_login_links_and_merges_cross_replicas_at_once() {
    let a = Baton::start_on_postgres(&["--no-launcher"]);
    let b = a.replica(&[]);
    let online = async || {
        let all: Vec<Value> = b.client.get("/api/launchers").await.unwrap_or_default();
        all.iter().any(|l| l["status"] == "online")
    };
    within(Duration::from_secs(20), "b's launcher registers", online).await;
    let mut stream = b.client.stream(None, "").await.unwrap();

    // A task created through A is dispatched at once to the launcher polling B
    // (its poll waits 25 s: only a notice can wake it so soon).
    a.agent("committer", "echo work > work.txt && git add -A && git commit -qm work").await;
    let started = Instant::now();
    let id = a.task(json!({ "prompt": "work", "agent": "committer" })).await;
    let t = a.wait_for(&id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert!(started.elapsed() < Duration::from_secs(5), "dispatched at once: {:?}", started.elapsed());

    // B's live stream carried what was committed through A.
    let mut seen = false;
    while !seen {
        let event = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap().unwrap();
        seen = event.task_id.as_ref().is_some_and(|t| t.as_str() == id);
    }

    // A token revoked through A is refused by B at once.
    let made: Value = a.client.post("/api/tokens", &json!({ "kind": "launcher", "name": "ci" })).await.unwrap();
    let token = made["token"].as_str().unwrap().to_owned();
    let on_b = b.client.with_token(Some(token));
    let _: Value = on_b.get("/api/launchers").await.expect("the new token works on B");
    a.client.delete(&format!("/api/tokens/{}", made["id"].as_str().unwrap())).await.unwrap();
    let refused = async || on_b.get::<Value>("/api/launchers").await.is_err();
    let took = within(Duration::from_secs(2), "the revoked token is refused on B", refused).await;
    assert!(took < Duration::from_millis(500), "refused at once, not after a cache expired: {took:?}");

    // A login link made by A works once, on B.
    let link: Value = a.client.post("/api/login-links", &json!({})).await.unwrap();
    let path = link["url"].as_str().unwrap().split_once("/login").map(|(_, p)| format!("/login{p}")).unwrap();
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let first = http.get(format!("{}{path}", b.url)).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 303, "the link works on the other replica");
    let again = http.get(format!("{}{path}", a.url)).send().await.unwrap();
    assert_eq!(again.status().as_u16(), 401, "and only once, on any replica");

    // A merge asked of B lands (one merge queue, on whichever replica runs it).
    assert_eq!(u8::from(runs_timers(&a).await) + u8::from(runs_timers(&b).await), 1, "one replica runs the timers");
    let merged = b.cli(&["merge", &id]);
    assert!(merged.status.success(), "{}", String::from_utf8_lossy(&merged.stderr));
    assert_eq!(a.sh("git show main:work.txt"), "work");
}

/// Every event of the database, in order.
fn stored_events(b: &Baton) -> Vec<i64> {
    b.database.as_ref().unwrap().integers("SELECT id FROM events ORDER BY id")
}

#[tokio::test]
async fn a_replica_killed_under_load_loses_nothing_and_leaves_nothing_stuck() {
    let timeout = ["--no-launcher", "--launcher-timeout", "15"];
    let mut a = Baton::start_on_postgres(&timeout);
    let b = a.replica(&timeout);
    let stamps = a.dir.path().join("stamps");
    std::fs::create_dir_all(&stamps).unwrap();
    stamping_agent(&a, "worker", &stamps, 30).await;
    // Two launcher hosts that know both replicas, A first.
    let both = format!("{},{}", a.url, b.url);
    let hosts: Vec<Host> = {
        let mut hosts = Vec::new();
        for name in ["h1", "h2"] {
            let token = a.launcher_token(name).await;
            hosts.push(Host::start_with(&a, name, &both, &token, &[]));
        }
        hosts
    };
    for h in &hosts {
        h.launcher(&a).await;
    }
    // A stream client following A.
    let mut follower = a.client.stream(Some(0), "").await.unwrap();
    let mut followed: Vec<i64> = Vec::new();

    let mut tasks = Vec::new();
    for i in 0..16 {
        let via = if i % 2 == 0 { &a } else { &b };
        tasks.push(via.task(json!({ "prompt": format!("task {i}"), "agent": "worker" })).await);
    }
    let running = async || {
        let all: Vec<Value> = b.client.get("/api/tasks?status=running").await.unwrap_or_default();
        all.len() >= 3
    };
    within(Duration::from_secs(30), "tasks running", running).await;
    // Drain what A's stream has delivered so far, then A dies mid-run.
    while let Ok(Ok(Some(e))) = tokio::time::timeout(Duration::from_millis(200), follower.next()).await {
        followed.push(e.id);
    }
    a.kill9();
    for i in 16..24 {
        tasks.push(b.task(json!({ "prompt": format!("task {i}"), "agent": "worker" })).await);
    }
    for id in &tasks {
        let t = b.wait_within(Duration::from_secs(120), id, "the end", |t| t.task.status.is_finished()).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{id}: {:?}", t.task.reason);
        assert_eq!(t.runs.len(), 1, "{id} ran once: its launcher carried on with the other replica");
        let lines: Vec<u32> = b
            .events(id)
            .await
            .iter()
            .filter_map(|e| e.data["line"].as_str()?.strip_prefix("line ")?.parse().ok())
            .collect();
        assert_eq!(lines, (1..=30).collect::<Vec<u32>>(), "{id}: every line once, in order");
        let stamp = std::fs::read_to_string(stamps.join(id)).unwrap_or_default();
        assert_eq!(stamp.lines().count(), 1, "{id}: the agent ran to its end exactly once");
    }
    // Per session, the numbers have no gap and no repeat.
    let db = b.database.as_ref().unwrap();
    let gaps = db.integers(
        "SELECT COUNT(*) FROM (SELECT session_id, COUNT(*) AS n, MAX(seq) AS top, COUNT(DISTINCT seq) AS d
         FROM events WHERE session_id IS NOT NULL GROUP BY session_id) s WHERE n <> top OR d <> n",
    );
    assert_eq!(gaps, [0]);

    // The follower picks up on B where A left it, and has seen every event once, in order.
    let all = stored_events(&b);
    let after = followed.last().copied().unwrap_or(0);
    let mut follower = b.client.stream(Some(after), "").await.unwrap();
    let last = *all.last().unwrap();
    while followed.last().copied().unwrap_or(0) < last {
        let e = tokio::time::timeout(Duration::from_secs(10), follower.next()).await.unwrap().unwrap().unwrap();
        followed.push(e.id);
    }
    let upto: Vec<i64> = all.iter().copied().filter(|id| *id <= last).collect();
    assert_eq!(followed, upto, "one order, without gaps or repeats, across the failover");
    let unique: HashSet<i64> = followed.iter().copied().collect();
    assert_eq!(unique.len(), followed.len());
    drop(hosts);
}

#[tokio::test]
async fn the_timers_move_to_another_replica_when_theirs_dies() {
    let args = ["--no-launcher", "--launcher-timeout", "3"];
    let mut a = Baton::start_on_postgres(&args);
    within(Duration::from_secs(10), "a runs the timers", async || runs_timers(&a).await).await;
    let b = a.replica(&args);
    assert!(!runs_timers(&b).await, "one replica at a time");
    let token = a.launcher_token("lone").await;
    let mut host = Host::start_with(&b, "lone", &b.url, &token, &[]);
    let launcher = host.launcher(&b).await;
    b.agent("sleeper", "sleep 60").await;
    let id = b.task(json!({ "prompt": "x", "agent": "sleeper", "timeout_s": 3 })).await;
    b.wait_status(&id, TaskStatus::Running).await;

    a.kill9();
    let died = Instant::now();
    let took = within(Duration::from_secs(12), "b takes the timers over", async || runs_timers(&b).await).await;
    assert!(took < Duration::from_secs(10), "taken over within 10 s: {took:?}");
    // The run's timeout still fires on time.
    let t = b.wait_within(Duration::from_secs(20), &id, "the timeout", |t| t.task.status.is_finished()).await;
    assert_ne!(t.task.status, TaskStatus::Succeeded);
    assert!(died.elapsed() < Duration::from_secs(12), "{:?}", died.elapsed());

    // A launcher that goes silent is taken offline by the timers, now on B.
    host.kill();
    let silent = Instant::now();
    let offline = async || {
        let all: Vec<Value> = b.client.get("/api/launchers").await.unwrap_or_default();
        all.iter().any(|l| l["id"] == launcher.id.as_str() && l["status"] == "offline")
    };
    within(Duration::from_secs(15), "the silent launcher goes offline", offline).await;
    // Its timeout (3 s) runs from when it was last seen, which is at most one
    // heartbeat (1 s) and one refresh of `last_seen` (1 s) before it died.
    assert!(silent.elapsed() >= Duration::from_secs(1), "not before its timeout: {:?}", silent.elapsed());
}

#[tokio::test]
async fn a_postgresql_restart_is_ridden_out() {
    let cluster = baton_testkit::pg::Cluster::start();
    let db = baton_testkit::pg::TestDatabase::create_on(&cluster.url);
    let b = Baton::start_with(&["--store", &db.url]);
    b.agent("counter", "i=0; while [ $i -lt 100 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.05; done").await;
    let id = b.task(json!({ "prompt": "x", "agent": "counter" })).await;
    b.wait_status(&id, TaskStatus::Running).await;

    cluster.pause();
    let answer = reqwest::Client::new().get(format!("{}/api/tasks", b.url)).bearer_auth(&b.token).send().await.unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "store_unavailable", "{body}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    cluster.resume();

    let t = b.wait_within(Duration::from_secs(60), &id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs.len(), 1, "the agent rode it out");
    let lines: Vec<u32> = b
        .events(&id)
        .await
        .iter()
        .filter_map(|e| e.data["line"].as_str()?.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(lines, (1..=100).collect::<Vec<u32>>(), "every line once, in order");
    let after = b.task(json!({ "prompt": "after", "agent": "counter" })).await;
    b.wait_status(&after, TaskStatus::Succeeded).await;
    drop(db);
}

#[tokio::test]
async fn a_replica_that_cannot_see_the_repository_says_so_and_leaves_its_runs_to_others() {
    let a = Baton::start_on_postgres(&["--no-launcher"]);
    // B runs where the repository is hidden (a tmpfs over it, in a mount
    // namespace of its own), with an embedded launcher.
    let hide = format!("mount -t tmpfs tmpfs {} && exec \"$@\"", a.repo.display());
    let b = a.replica_under(&[], &["unshare", "--mount", "--propagation", "private", "sh", "-c", &hide, "sh"]);
    let token = a.launcher_token("sees").await;
    let host = Host::start_with(&a, "sees", &a.url, &token, &[]);
    let sees = host.launcher(&a).await;
    a.agent("committer", "echo work > work.txt && git add -A && git commit -qm work").await;
    let id = b.task(json!({ "prompt": "work", "agent": "committer" })).await;
    let t = a.wait_for(&id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(
        t.runs[0].launcher_id.as_ref(),
        Some(&sees.id),
        "run by a launcher of a replica that sees the repository"
    );

    let answer = reqwest::Client::new()
        .get(format!("{}/api/tasks/{id}/diff", b.url))
        .bearer_auth(&b.token)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 503);
    let body: Value = answer.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("cannot see the repository") && message.contains(&a.repo.display().to_string()),
        "{message}"
    );
    let diff: Value = a.client.get(&format!("/api/tasks/{id}/diff")).await.expect("A sees it");
    assert!(diff["patch"].as_str().unwrap().contains("work.txt"));
}

#[test]
fn bad_stores_are_refused_at_start_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let up = |store: &str| {
        let out = std::process::Command::new(BATON)
            .args(["up", "--listen", "127.0.0.1:0", "--no-launcher", "--store", store, "--data-dir"])
            .arg(dir.path().join("data"))
            .current_dir(dir.path())
            .env("BATON_LOG", "error")
            .output()
            .unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = up("mysql://root@db/baton");
    assert_eq!(code, Some(7), "refused as invalid: {err}");
    assert!(err.contains("postgres://USER:PASSWORD@HOST:PORT/DB"), "{err}");
    let (code, err) = up("postgres://u:hunter2@127.0.0.1:notaport/db");
    assert_ne!(code, Some(0));
    assert!(err.contains("cannot be read") && !err.contains("hunter2"), "{err}");

    let db = baton_testkit::pg::TestDatabase::create();
    let (user_host, _) = db.url.split_once('@').map(|(u, h)| (u.rsplit_once(':').unwrap().0, h)).unwrap();
    let wrong = format!("{user_host}:not-the-password@{}", db.url.split_once('@').unwrap().1);
    let (code, err) = up(&wrong);
    assert_ne!(code, Some(0));
    assert!(err.contains("password authentication failed"), "{err}");

    // A schema newer than this binary, past a breaking migration (a downgrade).
    drop(Baton::start_with(&["--no-launcher", "--store", &db.url]));
    let (version, floor) = schema_of(&db);
    db.execute("UPDATE schema_version SET version = version + 1, floor = version + 1");
    let (code, err) = up(&db.url);
    assert_ne!(code, Some(0));
    assert!(err.contains("newer than this Baton knows"), "{err}");
    db.execute(&format!("UPDATE schema_version SET version = {version}, floor = {floor}"));
    // A live replica of a Baton older than rolling upgrades, under a breaking
    // migration this one would run.
    db.execute(
        "INSERT INTO replicas (id, host, baton, schema_version, started_at, seen_at)
         VALUES ('c-old', 'old-host', '0.0.1', 0, 0, (extract(epoch from clock_timestamp()) * 1000)::BIGINT)",
    );
    let out = std::process::Command::new(BATON)
        .args(["up", "--listen", "127.0.0.1:0", "--no-launcher", "--store", &db.url, "--data-dir"])
        .arg(dir.path().join("data"))
        .current_dir(dir.path())
        .env("BATON_LOG", "error")
        .env("BATON_TEST_EXTRA_MIGRATIONS", "breaking")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("c-old") && err.contains("cannot stop itself"), "{err}");
    assert_eq!(schema_of(&db), (version, floor), "nothing migrated");
}

/// The database's schema version and floor.
fn schema_of(db: &baton_testkit::pg::TestDatabase) -> (i64, i64) {
    let row = db.integers("SELECT version FROM schema_version UNION ALL SELECT floor FROM schema_version");
    (row[0], row[1])
}

#[tokio::test]
async fn a_rolling_upgrade_keeps_older_replicas_working_and_a_breaking_migration_stops_them_first() {
    let old = Baton::start_on_postgres(&[]);
    let db = old.database.clone().unwrap();
    let (known, floor) = schema_of(&db);
    old.agent("quick", "echo done > done-$BATON_TASK_ID.txt && git add -A && git commit -qm done").await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(old.task(json!({ "prompt": format!("before {i}"), "agent": "quick" })).await);
    }
    // The next version, whose one migration is compatible, migrates under the
    // old replica, which keeps working beside it.
    let next = old.replica_with_env(&[], &[("BATON_TEST_EXTRA_MIGRATIONS", "compatible")]);
    assert_eq!(schema_of(&db), (known + 1, floor), "a compatible migration leaves the floor");
    for (i, b) in [&old, &next, &old, &next].into_iter().enumerate() {
        ids.push(b.task(json!({ "prompt": format!("side by side {i}"), "agent": "quick" })).await);
    }
    for id in &ids {
        let t = next.wait_for(id, "the end", |t| t.task.status.is_finished()).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{id}: {:?}", t.task.reason);
    }
    let health: Value = old.client.get("/healthz").await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");

    // A version with a breaking migration: both older replicas stop taking work,
    // each saying why, before it migrates.
    let started = Instant::now();
    let newest = old.replica_with_env(&[], &[("BATON_TEST_EXTRA_MIGRATIONS", "compatible,breaking")]);
    println!("the breaking migration ran {:?} after its replica started", started.elapsed());
    assert_eq!(schema_of(&db), (known + 2, known + 2));
    for b in [&old, &next] {
        let health: Value = b.client.get("/healthz").await.unwrap();
        assert_eq!(health["status"], "stopped", "{health}");
        assert!(
            health["stopped"]
                .as_str()
                .is_some_and(|r| r.contains(&format!("schema {}", known + 2)) && r.contains("upgrade")),
            "{health}"
        );
        let (s, refused) = b.post("/api/tasks", json!({ "prompt": "refused", "agent": "quick" })).await;
        assert_eq!((s, refused["error"]["code"].as_str()), (503, Some("unavailable")), "{refused}");
        assert!(refused["error"]["message"].as_str().unwrap().contains("stopped taking work"), "{refused}");
    }
    let stopped = db.integers("SELECT count(*) FROM replicas WHERE stopped IS NOT NULL");
    assert_eq!(stopped, [2], "each older replica recorded why it stopped");
    // The newest works on; every task made before is there, and kept.
    let last = newest.task(json!({ "prompt": "after", "agent": "quick" })).await;
    let t = newest.wait_for(&last, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let all: Vec<Value> = newest.client.get("/api/tasks").await.unwrap();
    let known: HashSet<&str> = all.iter().filter_map(|t| t["id"].as_str()).collect();
    assert!(ids.iter().all(|id| known.contains(id.as_str())), "nothing lost");
}

/// How many of the project's lead tasks are at work or waiting to be.
async fn live_leads(b: &Baton) -> usize {
    let tasks: Vec<Value> = b.client.get("/api/tasks?limit=1000").await.unwrap_or_default();
    tasks
        .iter()
        .filter(|t| {
            t["leads"].is_string() && ["queued", "running", "checking"].contains(&t["status"].as_str().unwrap_or(""))
        })
        .count()
}

#[tokio::test]
async fn two_replicas_never_run_two_leads_for_one_project_even_while_one_is_killed() {
    let mut a = Baton::start_on_postgres(&["--no-launcher"]);
    within(Duration::from_secs(10), "a runs the timers", async || runs_timers(&a).await).await;
    let b = a.replica(&[]);
    let hold = b.shared("hold");
    std::fs::write(&hold, "").unwrap();
    let script = format!("while [ -f {} ]; do sleep 0.1; done", hold.display());
    b.agent_def(json!({ "name": "captain", "executor": "command", "command": ["sh", "-c", script], "sandbox": "off" }))
        .await;
    // Started through both replicas at once, many times: one lead.
    let starts = (0..6).map(|i| {
        let c = if i % 2 == 0 { a.client.clone() } else { b.client.clone() };
        async move { c.post::<Value, _>("/api/projects/repo/lead/start", &json!({ "agent": "captain" })).await }
    });
    let answers = futures_util::future::join_all(starts).await;
    let tasks: HashSet<String> = answers
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(|v| v["task_id"].as_str().map(String::from))
        .collect();
    assert_eq!(tasks.len(), 1, "one lead task whoever was asked: {answers:?}");
    let task = tasks.into_iter().next().unwrap();
    b.wait_status(&task, TaskStatus::Running).await;
    // Watch while the replica running the timers dies and the lead's process is killed.
    let watching = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let (flag, url, token) = (watching.clone(), b.url.clone(), b.token.clone());
    let watcher = tokio::spawn(async move {
        let c = baton_client::Client::new(&url, Some(token)).unwrap();
        let mut most = 0;
        while flag.load(std::sync::atomic::Ordering::Relaxed) {
            let tasks: Vec<Value> = c.get("/api/tasks?limit=1000").await.unwrap_or_default();
            let live = tasks
                .iter()
                .filter(|t| {
                    t["leads"].is_string()
                        && ["queued", "running", "checking"].contains(&t["status"].as_str().unwrap_or(""))
                })
                .count();
            most = most.max(live);
            tokio::time::sleep(Duration::from_millis(30)).await;
        }
        most
    });
    a.kill9();
    within(Duration::from_secs(15), "b takes the timers over", async || runs_timers(&b).await).await;
    let pids: Vec<i32> = crate::harness::processes_of_task(&task);
    assert!(!pids.is_empty(), "the lead's process runs");
    for pid in pids {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    within(Duration::from_secs(30), "the lead resumed by b", async || {
        let l: Value = b.client.get("/api/projects/repo/lead").await.unwrap_or_default();
        l["restarts"] == 1 && l["state"] == "working"
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    watching.store(false, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(watcher.await.unwrap(), 1, "never two leads at work at once");
    assert_eq!(live_leads(&b).await, 1);
    let l: Value = b.client.get("/api/projects/repo/lead").await.unwrap();
    assert_eq!(l["task_id"].as_str(), Some(task.as_str()), "the same lead, resumed: {l}");
    std::fs::remove_file(&hold).unwrap();
}

#[tokio::test]
async fn one_idempotency_key_through_two_replicas_makes_one_task() {
    let a = Baton::start_on_postgres(&["--no-launcher"]);
    let b = a.replica(&["--no-launcher"]);
    let req = baton_core::api::CreateTask {
        project: Some("repo".into()),
        prompt: "once".into(),
        approval: Some(baton_core::api::Approval(true)),
        ..Default::default()
    };
    let first: baton_core::model::Task = a.client.post_once("/api/tasks", "key-across", &req).await.unwrap();
    // The same caller (a key belongs to its token) through the other replica.
    let same_caller = b.client.with_token(Some(a.token.clone()));
    let again: baton_core::model::Task = same_caller.post_once("/api/tasks", "key-across", &req).await.unwrap();
    assert_eq!(first.id, again.id, "the second replica answers with the first's task");
    let all: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(all.len(), 1);
}
