//! The provider-aware governor: concurrency pools, retries on the same agent
//! after rate limiting with a limit that goes down and back up, and runs
//! stopped for looping. Budgets that pause are in `lifecycle.rs`.

use std::time::Duration;

use baton_core::api::{PoolInfo, TaskDetail};
use baton_core::model::RunKind;
use baton_core::status::{RunStatus, TaskStatus};
use baton_testkit::{FakeModel, Script, Step};
use serde_json::{Value, json};

use crate::harness::{Baton, assert_no_processes};
use crate::real_agents::{Cli, dump, finished};

fn with_config(config: &'static str) -> impl FnOnce(&std::path::Path) {
    move |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    }
}

async fn pools(b: &Baton) -> Vec<PoolInfo> {
    b.client.get("/api/pools").await.unwrap()
}

async fn pool(b: &Baton, name: &str) -> PoolInfo {
    pools(b).await.into_iter().find(|p| p.name == name).unwrap_or_else(|| panic!("no pool {name}"))
}

/// The most runs of these tasks that worked at the same time.
fn most_at_once(tasks: &[TaskDetail]) -> usize {
    let spans: Vec<(i64, i64)> = tasks
        .iter()
        .flat_map(|t| &t.runs)
        .filter_map(|r| Some((r.started_at?.as_millis(), r.finished_at?.as_millis())))
        .collect();
    spans.iter().map(|(start, _)| spans.iter().filter(|(s, f)| s <= start && start < f).count()).max().unwrap_or(0)
}

#[tokio::test]
async fn a_pool_of_two_never_runs_more_than_two() {
    let b = Baton::start_in(&["--slots", "8"], with_config("[pools]\nsh = 2\n"));
    b.agent_def(json!({ "name": "slow", "executor": "command", "command": ["sh", "-c", "sleep 0.6"], "pool": "sh" }))
        .await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(b.task(json!({ "prompt": format!("t{i}"), "agent": "slow" })).await);
    }
    // While they run, the pool says so.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let p = loop {
        let p = pool(&b, "sh").await;
        if p.in_use == 2 || std::time::Instant::now() > deadline {
            break p;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    };
    assert_eq!((p.size, p.limit, p.in_use), (Some(2), Some(2), 2), "{p:?}");
    assert!(p.queued >= 3, "{p:?}");
    assert_eq!(p.agents, vec!["slow".to_owned()]);
    let mut done = Vec::new();
    for id in &ids {
        done.push(b.wait_status(id, TaskStatus::Succeeded).await);
    }
    assert_eq!(most_at_once(&done), 2, "a pool of 2 ran more or fewer at once");
    let out = b.cli(&["pools"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("POOL") && text.lines().any(|l| l.starts_with("sh ") && l.contains("slow")), "{text}");
    for default in ["anthropic", "openai", "google"] {
        assert!(text.lines().any(|l| l.starts_with(default)), "{text}");
    }
}

#[tokio::test]
async fn pools_that_do_not_exist_or_have_no_room_are_refused() {
    let b = Baton::start_in(&[], with_config("[pools]\nteam = 3\n"));
    let err = b
        .client
        .post::<Value, _>(
            "/api/agents",
            &json!({ "name": "x", "executor": "command", "command": ["true"], "pool": "nosuch" }),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("names pool \"nosuch\"") && err.contains("[pools]"), "{err}");
    assert!(b.client.get::<Value>("/api/agents/x").await.is_err(), "nothing was stored");
    // A pool a project sizes, or a provider's, may be named.
    for pool in ["team", "openai"] {
        let def = json!({ "name": format!("a-{pool}"), "executor": "command", "command": ["true"], "pool": pool });
        b.agent_def(def).await;
    }
    for (size, why) in [("0", "[pools] big = 0"), ("-2", "[pools] big = -2")] {
        let other = crate::harness::git_repo(&b.dir.path().join(format!("other{size}")));
        std::fs::create_dir_all(other.join(".baton")).unwrap();
        std::fs::write(other.join(".baton/config.toml"), format!("[pools]\nbig = {size}\n")).unwrap();
        let err = b.client.post::<Value, _>("/api/projects", &json!({ "path": other })).await.unwrap_err().to_string();
        assert!(err.contains(why) && err.contains("from 1 to"), "{err}");
    }
    let projects: Vec<Value> = b.client.get("/api/projects").await.unwrap();
    assert_eq!(projects.len(), 1, "no project was added");
}

/// A command agent in the `anthropic` pool that asks the fake model first: a
/// refusal is reported as the provider's 429, as a CLI would.
fn limited_agent(name: &str, fake: &FakeModel) -> Value {
    let port = fake.url.rsplit(':').next().unwrap().to_owned();
    let script = format!(
        r#"exec 3<>/dev/tcp/127.0.0.1/{port}; printf 'GET /_fake/limited HTTP/1.0\r\nHost: fake\r\n\r\n' >&3; status=$(head -1 <&3)
case "$status" in *429*) echo '{{"type":"result","is_error":true,"result":"API Error: 429 rate_limit_error: retry after 1 seconds"}}'; exit 1;; esac
echo "$BATON_TASK_ID" > done.txt; echo '{{"type":"result","result":"done"}}'"#
    );
    json!({ "name": name, "executor": "command", "command": ["bash", "-c", script], "pool": "anthropic" })
}

#[tokio::test]
async fn a_fan_out_against_a_rate_limited_provider_finishes_without_a_human() {
    let fake = FakeModel::start(Script::new(vec![]).throttled(12, 1)).await.unwrap();
    let b = Baton::start_in(&["--slots", "8"], with_config("[pools]\nanthropic = 8\n"));
    b.agent_def(limited_agent("caller", &fake)).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(b.task(json!({ "prompt": format!("part {i}"), "agent": "caller" })).await);
    }
    let mut done = Vec::new();
    for id in &ids {
        let t = b.wait_within(Duration::from_secs(120), id, "the fan-out", |t| t.task.status.is_finished()).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
        assert_eq!(t.task.agent, "caller", "retried on the same agent");
        done.push(t);
    }
    let refused: usize = done.iter().flat_map(|t| &t.runs).filter(|r| r.status == RunStatus::Failed).count();
    let first = dump(&b.events(&ids[0]).await);
    assert_eq!(
        refused,
        12,
        "each refusal was one failed run, tried again; {} requests\n{first}",
        fake.requests().len()
    );
    let p = pool(&b, "anthropic").await;
    assert_eq!(p.throttled_last_hour, 12, "{p:?}");
    assert!(p.last_throttled_at.is_some());
    let mut lowered = false;
    let mut raised = false;
    for id in &ids {
        for e in b.events(id).await {
            let m = e.data["message"].as_str().unwrap_or_default();
            lowered |= m.contains("pool anthropic now runs at most 1 at once");
            raised |= m.contains("pool anthropic succeeded: its limit is raised to");
        }
    }
    assert!(lowered && raised, "the pool's limit went down to 1, then up again");
}

#[tokio::test]
async fn a_real_claude_code_agent_refused_with_429_is_retried_after_retry_after() {
    let fake = FakeModel::start(Script::new(vec![Step::write("hello.txt", "hi\n")]).throttled(1, 2)).await.unwrap();
    let b = Baton::start_in(&[], with_config("[pools]\nanthropic = 4\n"));
    b.agent_def(Cli::Claude.def("worker", &fake.url, &b.dir.path().join("home"))).await;
    let id = b.task(json!({ "prompt": "Write hello.txt", "agent": "worker" })).await;
    let t = finished(&b, &id, 2).await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{}", dump(&events));
    assert_eq!((t.runs[0].status, t.runs[1].status), (RunStatus::Failed, RunStatus::Succeeded));
    assert_eq!(t.runs[1].kind, RunKind::Start);
    assert_eq!(t.task.agent, "worker");
    let waited = t.runs[1].started_at.unwrap().as_millis() - t.runs[0].finished_at.unwrap().as_millis();
    assert!((1_400..10_000).contains(&waited), "tried again after {waited} ms");
    let said = |what: &str| events.iter().any(|e| e.data["message"].as_str().is_some_and(|m| m.contains(what)));
    assert!(said("refused for rate limits") && said("now runs at most 1 at once"), "{}", dump(&events));
    assert!(said("its limit is raised to 2"), "{}", dump(&events));
    let p = pool(&b, "anthropic").await;
    assert_eq!((p.size, p.limit, p.lowered, p.throttled_last_hour), (Some(4), Some(2), true, 1), "{p:?}");
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:hello.txt")), "hi");
}

#[tokio::test]
async fn an_agent_that_repeats_a_failing_tool_call_is_stopped_as_looping() {
    let b = Baton::start_in(&[], with_config("loop_limit = 4\n"));
    // Different failing calls, and a success between the same ones, are no loop.
    let call = |i: u32, cmd: &str, error: bool| {
        format!(
            r#"echo '{{"type":"tool_call","id":"c{i}","name":"Bash","input":{{"command":"{cmd}"}}}}'; echo '{{"type":"tool_result","id":"c{i}","output":"no","is_error":{error}}}'; "#
        )
    };
    let mut fine = String::new();
    for i in 0..6 {
        fine += &call(i, &format!("make {i}"), true);
        fine += &call(100 + i, "make", i % 3 == 2);
    }
    b.agent("varied", &fine).await;
    let ok = b.task(json!({ "prompt": "x", "agent": "varied" })).await;
    b.wait_status(&ok, TaskStatus::Succeeded).await;

    let mut looping = String::new();
    for i in 0..10 {
        looping += &call(i, "cargo test", true);
    }
    looping += "sleep 30";
    b.agent("looper", &looping).await;
    let id = b.task(json!({ "prompt": "x", "agent": "looper" })).await;
    let t = b.wait_status(&id, TaskStatus::Cancelled).await;
    let reason = t.task.reason.unwrap_or_default();
    assert!(reason.starts_with("looping: ") && reason.contains("Bash call 4 times in a row"), "{reason}");
    assert_no_processes(&id).await;
}
