//! Tasks from creation to their end, through the real launcher and supervisor.

use std::time::Duration;

use baton_core::event::EventKind;
use baton_core::status::{RunStatus, TaskStatus};
use serde_json::{Value, json};

use crate::harness::{Baton, assert_no_processes, processes_of_task};

const STRUCTURED: &str = r#"read p; echo "got: $p"; echo '{"type":"tool_call","name":"Write","input":{"path":"a.txt"}}'; echo '{"type":"tool_result","output":"ok"}'; echo '{"type":"usage","input_tokens":100,"output_tokens":20,"cost_usd":0.25}'; echo oops >&2; echo '{"type":"result","result":"finished: '"$BATON_PROMPT"'","session_id":"agent-sess-1"}'"#;

#[tokio::test]
async fn a_command_agent_runs_end_to_end_through_the_cli() {
    let b = Baton::start();
    b.agent("echo", STRUCTURED).await;
    let out = b.cli(&["run", "--agent", "echo", "--wait", "say hi"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout.trim(), "finished: say hi");
    assert!(stderr.contains("→ Write"), "progress shows the tool call: {stderr}");

    let tasks: Vec<Value> = serde_json::from_slice(&b.cli(&["ps", "--json"]).stdout).unwrap();
    let id = tasks[0]["id"].as_str().unwrap().to_owned();
    let t = b.get(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert_eq!(t.task.usage.cost_usd, 0.25);
    assert_eq!(t.task.usage.input_tokens, 100);
    assert_eq!(t.sessions[0].agent_session_id.as_deref(), Some("agent-sess-1"));
    assert_eq!(t.runs[0].exit_code, Some(0));

    let events = b.events(&id).await;
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    for k in [EventKind::Output, EventKind::ToolCall, EventKind::ToolResult, EventKind::Usage, EventKind::Result] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    let call = events.iter().find(|e| e.kind == EventKind::ToolCall).unwrap();
    assert_eq!(call.data["input"]["path"], "a.txt");
    assert!(call.raw.as_deref().unwrap().contains("tool_call"), "the raw line is kept");
    let stderr_line = events.iter().find(|e| e.kind == EventKind::Output && e.data["stream"] == "stderr").unwrap();
    assert_eq!(stderr_line.data["line"], "oops");
    let seqs: Vec<i64> = events.iter().filter_map(|e| e.seq).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "session events are numbered 1, 2, 3: {seqs:?}");

    let result = b.cli(&["result", &id]);
    assert_eq!(String::from_utf8_lossy(&result.stdout).trim(), "finished: say hi");
    let logs = String::from_utf8_lossy(&b.cli(&["logs", &id]).stdout).into_owned();
    assert!(logs.contains("| got: say hi") && logs.contains("! oops"), "{logs}");
    let show: Value = serde_json::from_slice(&b.cli(&["show", &id, "--json"]).stdout).unwrap();
    assert_eq!(show["status"], "succeeded");
    let short = &id[2..7];
    let by_prefix = b.cli(&["show", short]);
    assert!(String::from_utf8_lossy(&by_prefix.stdout).contains(&id), "ids resolve by prefix");
}

#[tokio::test]
async fn a_failing_agent_fails_its_task_and_the_cli_says_so() {
    let b = Baton::start();
    b.agent("bad", "echo trying; exit 3").await;
    b.agent_def(json!({ "name": "missing", "executor": "command", "command": ["/nonexistent/agent-cli"] })).await;
    let out = b.cli(&["run", "--agent", "bad", "--wait", "x"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("exited with code 3"), "{stderr}");
    let id = b.task(json!({ "prompt": "x", "agent": "missing" })).await;
    let t = b.wait_status(&id, TaskStatus::Failed).await;
    let reason = t.task.reason.unwrap();
    assert!(reason.contains("/nonexistent/agent-cli is not installed"), "{reason}");
    assert!(reason.contains("fix the definition's `command`"), "{reason}");
}

#[tokio::test]
async fn stop_kills_the_whole_process_group_and_every_descendant() {
    let b = Baton::start();
    // Ignores the interrupt and SIGTERM, and leaves a grandchild in a new session.
    b.agent(
        "stubborn",
        r#"trap '' INT TERM; (trap '' INT TERM; setsid sleep 600 &); sleep 600 & while true; do sleep 0.1; done"#,
    )
    .await;
    let id = b.task(json!({ "prompt": "x", "agent": "stubborn" })).await;
    b.wait_status(&id, TaskStatus::Running).await;
    let start = std::time::Instant::now();
    while processes_of_task(&id).len() < 4 {
        assert!(start.elapsed() < Duration::from_secs(10), "agent did not start its children");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = b.cli(&["stop", &id, "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = b.get(&id).await;
    assert_eq!(t.task.status, TaskStatus::Cancelled);
    assert_eq!(t.runs[0].status, RunStatus::Stopped);
    assert_no_processes(&id).await;
}

#[tokio::test]
async fn a_timeout_kills_the_agent_and_fails_the_task() {
    let b = Baton::start();
    b.agent("forever", "sleep 600").await;
    let id = b.task(json!({ "prompt": "x", "agent": "forever", "timeout_s": 1 })).await;
    let t = b.wait_status(&id, TaskStatus::Failed).await;
    assert_eq!(t.runs[0].status, RunStatus::TimedOut);
    assert!(t.task.reason.unwrap().contains("timed out"));
    assert_no_processes(&id).await;
}

#[tokio::test]
async fn slots_cap_how_many_agents_run_at_once() {
    let b = Baton::start_with(&["--slots", "2"]);
    let log = b.shared("spans.log");
    let script =
        format!("echo \"start $(date +%s%N)\" >> {0}; sleep 0.4; echo \"end $(date +%s%N)\" >> {0}", log.display());
    b.agent("napper", &script).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(b.task(json!({ "prompt": format!("nap {i}"), "agent": "napper" })).await);
    }
    for id in &ids {
        b.wait_status(id, TaskStatus::Succeeded).await;
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let mut marks: Vec<(u128, i32)> = text
        .lines()
        .map(|l| {
            let (kind, t) = l.split_once(' ').unwrap();
            (t.parse().unwrap(), if kind == "start" { 1 } else { -1 })
        })
        .collect();
    marks.sort();
    let (mut running, mut most) = (0, 0);
    for (_, d) in marks {
        running += d;
        most = most.max(running);
    }
    assert_eq!(most, 2, "two slots: two at once, never three");
}

#[tokio::test]
async fn a_dependent_task_waits_for_its_prerequisite() {
    let b = Baton::start();
    let marker = b.shared("order.log");
    b.agent("first", &format!("sleep 0.3; echo first >> {}", marker.display())).await;
    b.agent("second", &format!("echo second >> {}", marker.display())).await;
    let a = b.task(json!({ "prompt": "a", "agent": "first" })).await;
    let c = b.task(json!({ "prompt": "c", "agent": "second", "depends_on": [a] })).await;
    assert_eq!(b.get(&c).await.task.status, TaskStatus::Pending);
    b.wait_status(&c, TaskStatus::Succeeded).await;
    assert_eq!(std::fs::read_to_string(&marker).unwrap(), "first\nsecond\n");
}

#[tokio::test]
async fn resume_continues_the_same_session_and_retry_starts_a_new_one() {
    let b = Baton::start();
    b.agent(
        "turns",
        r#"if [ -n "$BATON_RESUME" ]; then echo "{\"type\":\"result\",\"result\":\"resumed $BATON_AGENT_SESSION_ID with $BATON_PROMPT\"}"; else echo '{"type":"result","result":"first","session_id":"conv-7"}'; fi"#,
    )
    .await;
    let id = b.task(json!({ "prompt": "start", "agent": "turns" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let out = b.cli(&["resume", &id, "and now?", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = b.get(&id).await;
    assert_eq!(t.task.result.as_deref(), Some("resumed conv-7 with and now?"));
    assert_eq!(t.sessions.len(), 1, "resume keeps the session");
    assert_eq!(t.runs.len(), 2);

    b.agent("flaky", "exit 1").await;
    let f = b.task(json!({ "prompt": "x", "agent": "flaky" })).await;
    b.wait_status(&f, TaskStatus::Failed).await;
    let out = b.cli(&["retry", &f, "--wait"]);
    assert_eq!(out.status.code(), Some(1), "the retry fails again");
    assert_eq!(b.get(&f).await.sessions.len(), 2, "retry starts a new session");
}

#[tokio::test]
async fn automatic_retries_run_a_failed_task_again() {
    let b = Baton::start();
    let counter = b.shared("count");
    b.agent("second-time-lucky", &format!("echo x >> {0}; [ $(wc -l < {0}) -ge 2 ]", counter.display())).await;
    let id = b.task(json!({ "prompt": "x", "agent": "second-time-lucky", "max_retries": 2 })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.task.retries, 1);
    assert_eq!(t.sessions.len(), 2);
}

#[tokio::test]
async fn agents_get_their_environment_and_a_session_token_limited_to_them() {
    let b = Baton::start();
    let script = r#"echo "task=$BATON_TASK_ID session=$BATON_SESSION_ID port=$BATON_PORT"; code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BATON_TOKEN" "$BATON_URL/api/tasks/$BATON_TASK_ID"); echo "read=$code"; code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' -d '{"prompt":"more"}' "$BATON_URL/api/tasks"); echo "create=$code""#;
    b.agent("curious", script).await;
    let id = b.task(json!({ "prompt": "x", "agent": "curious" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let lines: Vec<String> = b
        .events(&id)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Output)
        .map(|e| e.data["line"].as_str().unwrap().to_owned())
        .collect();
    let t = b.get(&id).await;
    assert!(lines[0].starts_with(&format!("task={id} session={}", t.sessions[0].id)), "{lines:?}");
    assert!(!lines[0].ends_with("port="), "{lines:?}");
    assert_eq!(lines[1], "read=200", "the session token reads");
    assert_eq!(lines[2], "create=403", "an agent without delegates_to may not start tasks");
}

#[tokio::test]
async fn health_metrics_openapi_and_agents() {
    let b = Baton::start();
    let health: Value = reqwest::get(format!("{}/healthz", b.url)).await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "ok");
    let metrics = reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_tasks{status=\"running\"}"), "{metrics}");
    let spec: Value = reqwest::get(format!("{}/api/openapi.json", b.url)).await.unwrap().json().await.unwrap();
    assert!(spec["paths"]["/api/tasks"].is_object());
    // Preflight: the launcher looks for each agent's program and says what it found.
    b.agent_def(json!({ "name": "gitter", "executor": "command", "command": ["git", "status"] })).await;
    // A known CLI is asked its version (here tar standing in for claude).
    b.agent_def(json!({ "name": "versioned", "executor": "claude-code", "command": ["tar"] })).await;
    b.agent_def(json!({ "name": "ghost", "executor": "claude-code", "command": ["/nonexistent/claude"] })).await;
    let start = std::time::Instant::now();
    let agents = loop {
        let agents: Vec<Value> = serde_json::from_slice(&b.cli(&["agents", "--json"]).stdout).unwrap();
        let probed = |name: &str| agents.iter().any(|a| a["name"] == name && a["installs"].is_array());
        if probed("gitter") && probed("ghost") && probed("versioned") {
            break agents;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "no preflight report: {agents:#?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let agent = |name: &str| agents.iter().find(|a| a["name"] == name).unwrap().clone();
    let gitter = agent("gitter");
    assert_eq!(gitter["available"], true);
    assert!(gitter["installs"][0]["path"].as_str().unwrap().ends_with("/git"), "{gitter}");
    assert_eq!(gitter["installs"][0]["version"], Value::Null, "a command agent's program is not run: {gitter}");
    let versioned = agent("versioned");
    assert!(versioned["installs"][0]["version"].as_str().unwrap().contains("tar"), "{versioned}");
    let ghost = agent("ghost");
    assert_eq!(ghost["available"], false);
    assert_eq!(ghost["installs"][0]["path"], Value::Null);
    assert!(ghost["install_hint"].as_str().unwrap().contains("npm install -g @anthropic-ai/claude-code"), "{ghost}");
    let table = String::from_utf8(b.cli(&["agents"]).stdout).unwrap();
    assert!(table.lines().any(|l| l.starts_with("gitter") && l.contains("git installed")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("versioned") && l.contains("tar 1.")), "{table}");
    assert!(table.lines().any(|l| l.starts_with("ghost") && l.contains("claude missing")), "{table}");
    let launchers: Vec<Value> = b.client.get("/api/launchers").await.unwrap();
    assert_eq!(launchers.len(), 1);
    assert_eq!(launchers[0]["status"], "online");
}

#[tokio::test]
async fn a_remote_launcher_takes_work_from_a_coordinator_without_one() {
    let b = Baton::start_with(&["--no-launcher"]);
    b.agent("hello", "echo hello from afar").await;
    let id = b.task(json!({ "prompt": "x", "agent": "hello" })).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(b.get(&id).await.task.status, TaskStatus::Queued, "no launcher, no run");
    let mut host = crate::fleet::Host::start(&b, "remote", &[]).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&host.launcher(&b).await.id));
    host.kill();
}

/// An agent that works, then spends $0.50 a line for ten lines; on a later run
/// in the same worktree (its work is there) it finishes at once.
const PAUSER: &str = r#"if [ -f wip.txt ]; then echo '{"type":"result","result":"finished after the pause"}'; exit 0; fi; echo half-done > wip.txt; for i in 1 2 3 4 5 6 7 8 9 10; do echo '{"type":"usage","input_tokens":100,"output_tokens":10,"cost_usd":0.5}'; sleep 0.2; done"#;

#[tokio::test]
async fn a_task_over_its_budget_pauses_with_its_work_and_a_raised_budget_resumes_its_session() {
    let b = Baton::start();
    b.agent("spender", PAUSER).await;
    let id = b.task(json!({ "prompt": "x", "agent": "spender", "budget_usd": 1.0 })).await;
    let t = b.wait_status(&id, TaskStatus::Paused).await;
    let reason = t.task.reason.clone().unwrap();
    assert!(reason.starts_with("budget: ") && reason.contains("budget of $1.00 is spent"), "{reason}");
    assert!(t.task.usage.cost_usd > 1.0 && t.task.usage.cost_usd < 5.0, "stopped early: {:?}", t.task.usage);
    assert_eq!(t.runs[0].usage, t.task.usage, "the run's usage is the task's");
    assert_eq!(t.sessions[0].usage, t.task.usage, "and the session's");
    assert_no_processes(&id).await;
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:wip.txt")), "half-done", "the work was committed");
    let said = b.events(&id).await.iter().any(|e| e.data["event"] == "budget.exceeded");
    assert!(said, "a budget.exceeded event is recorded");
    // `baton ps` and `show` say so.
    let show = String::from_utf8(b.cli(&["show", &id]).stdout).unwrap();
    assert!(show.contains("paused"), "{show}");

    // With a new budget it goes on in the same session.
    let out = b.cli(&["resume", &id, "--budget", "10", "go on", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.task.budget_usd, Some(10.0));
    assert_eq!(t.sessions.len(), 1, "the same session");
    assert_eq!(t.runs.len(), 2);
    assert_eq!(t.runs[1].kind, baton_core::model::RunKind::Resume);
    assert_eq!(t.task.result.as_deref(), Some("finished after the pause"));
    let bad = b.cli(&["resume", &id, "--budget=-1", "again"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("budget_usd"), "{}", String::from_utf8_lossy(&bad.stderr));
}

#[tokio::test]
async fn a_project_over_its_budget_pauses_its_tasks_until_its_budget_is_raised() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "budget_usd = 1.0\n").unwrap();
    });
    b.agent("spender", PAUSER).await;
    let first = b.task(json!({ "prompt": "x", "agent": "spender" })).await;
    let t = b.wait_status(&first, TaskStatus::Paused).await;
    let reason = t.task.reason.unwrap();
    assert!(reason.contains("project repo's budget of $1.00 is spent"), "{reason}");
    let second = b.task(json!({ "prompt": "y", "agent": "spender" })).await;
    let t = b.wait_status(&second, TaskStatus::Paused).await;
    assert!(t.task.reason.unwrap().contains("project repo's budget"));
    assert!(t.runs[0].started_at.is_none(), "the second agent never started");
    let costs: Value = b.client.get("/api/costs?project=repo").await.unwrap();
    let spent = costs["total"]["cost_usd"].as_f64().unwrap();
    assert!(spent >= 1.0, "{costs}");
    assert_eq!(costs["agents"]["spender"]["cost_usd"].as_f64().unwrap(), spent);
    assert_eq!(costs["total"]["input_tokens"].as_u64().unwrap() % 100, 0, "{costs}");

    // A raised budget, read again: both go on by themselves.
    std::fs::write(b.repo.join(".baton/config.toml"), "budget_usd = 100.0\n").unwrap();
    let out = b.cli(&["project", "reload", "repo"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    for id in [&first, &second] {
        b.wait_status(id, TaskStatus::Succeeded).await;
    }
    // A bad setting read again is refused and changes nothing.
    std::fs::write(b.repo.join(".baton/config.toml"), "budget_usd = 100.0\n[pools]\nanthropic = 0\n").unwrap();
    let out = b.cli(&["project", "reload", "repo"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[pools] anthropic = 0"), "{err}");
    let projects: Value = b.client.get("/api/projects").await.unwrap();
    assert_eq!(projects[0]["settings"]["pools"], json!({}), "{projects}");
}
