//! Orchestration: DAGs, limits, plans, approvals, the seed 004 flow, callbacks,
//! delegation rules and the lead's status.

use std::time::Duration;

use baton_core::api::TaskDetail;
use baton_core::model::Orchestration;
use baton_core::status::{OrchestrationStatus, TaskStatus};
use serde_json::{Value, json};

use crate::harness::Baton;

async fn settled(b: &Baton, id: &str) -> TaskDetail {
    b.wait_for(id, "settled", |t| t.task.status.is_finished() || t.task.status == TaskStatus::Blocked).await
}

/// Start and end times (ns) per task name, from a log the agents append to.
fn spans(path: &std::path::Path) -> std::collections::HashMap<String, (u128, u128)> {
    let mut out = std::collections::HashMap::new();
    for line in std::fs::read_to_string(path).unwrap_or_default().lines() {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let (name, kind, t) = (parts[0].to_owned(), parts[1], parts[2].parse::<u128>().unwrap());
        let e = out.entry(name).or_insert((0, 0));
        if kind == "start" { e.0 = t } else { e.1 = t }
    }
    out
}

fn timed(log: &std::path::Path, extra: &str) -> String {
    format!(
        r#"name=$(printf '%s' "$BATON_PROMPT" | head -1); echo "$name start $(date +%s%N)" >> {0}; sleep 0.3; {extra} echo "$name end $(date +%s%N)" >> {0}"#,
        log.display()
    )
}

#[tokio::test]
async fn a_diamond_runs_its_middle_in_parallel_and_its_end_last() {
    let b = Baton::start();
    let log = b.shared("spans.log");
    b.agent("step", &timed(&log, "")).await;
    let plan = b.dir.path().join("diamond.yaml");
    std::fs::write(
        &plan,
        "name: diamond\ndefaults: { agent: step }\ntasks:\n  - { name: a, prompt: a }\n  - { name: b, prompt: b, depends_on: [a] }\n  - { name: c, prompt: c, depends_on: [a] }\n  - { name: d, prompt: d, depends_on: [b, c] }\n",
    )
    .unwrap();
    let out = b.cli(&["plan", plan.to_str().unwrap(), "--wait"]);
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let s = spans(&log);
    assert!(s["a"].1 <= s["b"].0 && s["a"].1 <= s["c"].0, "b and c start after a");
    assert!(s["b"].0 < s["c"].1 && s["c"].0 < s["b"].1, "b and c overlap: {s:?}");
    assert!(s["d"].0 >= s["b"].1 && s["d"].0 >= s["c"].1, "d starts after both");
}

#[tokio::test]
async fn a_failure_blocks_its_dependents_not_its_siblings_and_a_retry_unblocks_them() {
    let b = Baton::start();
    let flag = b.shared("fixed");
    b.agent("ok", "true").await;
    b.agent("flaky", &format!("test -f {}", flag.display())).await;
    let (status, plan) = b
        .post(
            "/api/plans",
            json!({ "project": "repo", "tasks": [
                { "name": "a", "prompt": "a", "agent": "ok" },
                { "name": "b", "prompt": "b", "agent": "flaky", "depends_on": ["a"] },
                { "name": "c", "prompt": "c", "agent": "ok", "depends_on": ["a"] },
                { "name": "d", "prompt": "d", "agent": "ok", "depends_on": ["b", "c"] },
            ]}),
        )
        .await;
    assert_eq!(status, 201, "{plan}");
    let id = |n: &str| plan["plan"]["tasks"][n].as_str().unwrap().to_owned();
    assert_eq!(settled(&b, &id("b")).await.task.status, TaskStatus::Failed);
    assert_eq!(settled(&b, &id("c")).await.task.status, TaskStatus::Succeeded, "an independent task goes on");
    let d = settled(&b, &id("d")).await;
    assert_eq!(d.task.status, TaskStatus::Blocked);
    assert!(d.task.reason.as_deref().unwrap().contains(&id("b")), "{:?}", d.task.reason);
    std::fs::write(&flag, "").unwrap();
    assert!(b.cli(&["retry", &id("b")]).status.success());
    let d = b.wait_status(&id("d"), TaskStatus::Succeeded).await;
    assert!(d.task.started_at.is_some());
}

#[tokio::test]
async fn a_project_limit_of_one_never_runs_two_at_once() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "parallel_limit = 1\n").unwrap();
    });
    let log = b.shared("spans.log");
    b.agent("one-at-a-time", &timed(&log, "")).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(b.task(json!({ "prompt": format!("t{i}"), "agent": "one-at-a-time" })).await);
    }
    for id in &ids {
        b.wait_status(id, TaskStatus::Succeeded).await;
    }
    let mut s: Vec<(u128, u128)> = spans(&log).into_values().collect();
    s.sort();
    assert_eq!(s.len(), 4);
    assert!(s.windows(2).all(|w| w[0].1 <= w[1].0), "never two at once: {s:?}");
}

#[tokio::test]
async fn an_approval_gate_holds_its_task_until_approved() {
    let b = Baton::start();
    b.agent("ok", "echo approved work").await;
    let id = b.task(json!({ "prompt": "x", "agent": "ok", "approval": "required" })).await;
    assert_eq!(b.get(&id).await.task.status, TaskStatus::AwaitingApproval);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(b.get(&id).await.task.status, TaskStatus::AwaitingApproval, "it does not start by itself");
    let out = b.cli(&["approve", &id]);
    assert!(out.status.success());
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let (status, body) = b.post(&format!("/api/tasks/{id}/approve"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("illegal_transition")));
}

#[tokio::test]
async fn plans_are_checked_whole_before_anything_is_created() {
    let b = Baton::start();
    b.agent("ok", "true").await;
    let before: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    let (status, body) = b
        .post(
            "/api/plans",
            json!({ "project": "repo", "tasks": [
                { "name": "a", "prompt": "a", "agent": "ok", "depends_on": ["c"] },
                { "name": "b", "prompt": "b", "agent": "ok", "depends_on": ["a"] },
                { "name": "c", "prompt": "c", "agent": "ok", "depends_on": ["b"] },
            ]}),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("dependency_cycle")), "{body}");
    assert_eq!(body["error"]["details"]["cycle"].as_array().unwrap().len(), 4);
    let (status, body) = b
        .post(
            "/api/plans",
            json!({ "project": "repo", "tasks": [{ "name": "a", "prompt": "a", "depends_on": ["t-0000000000"] }] }),
        )
        .await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    let (status, body) =
        b.post("/api/plans", json!({ "project": "repo", "tasks": [], "synthesis": { "prompt": "sum up" } })).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("depend on nothing"));
    let (status, body) = b
        .post("/api/plans", json!({ "project": "repo", "tasks": [{ "name": "a", "prompt": "a", "agent": "nobody" }] }))
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = b
        .post(
            "/api/plans",
            json!({ "project": "repo", "tasks": [{ "name": "a", "prompt": "a" }, { "name": "a", "prompt": "b" }] }),
        )
        .await;
    assert_eq!(status, 422, "two tasks of one name: each valid, the plan not");
    let after: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(before, after, "nothing was created");

    let other = b.dir.path().join("other");
    std::fs::create_dir(&other).unwrap();
    crate::harness::sh(
        &other,
        "git init -q -b main && git -c user.email=a@a -c user.name=a commit -q --allow-empty -m x",
    );
    let (status, _) = b.post("/api/projects", json!({ "path": other })).await;
    assert_eq!(status, 201);
    let foreign = b.task(json!({ "project": "other", "prompt": "x", "agent": "ok" })).await;
    let (status, body) = b.post(
        "/api/plans",
        json!({ "project": "repo", "tasks": [{ "name": "a", "prompt": "a", "agent": "ok", "depends_on": [foreign] }] }),
    )
    .await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{body}");
}

#[tokio::test]
async fn a_synthesis_task_receives_every_result_in_its_prompt() {
    let b = Baton::start();
    b.agent("answer", r#"echo "{\"type\":\"result\",\"result\":\"answer to $BATON_TASK_ID\"}""#).await;
    b.agent(
        "gather",
        r#"printf '%s' "$BATON_PROMPT" > prompt.txt && echo "{\"type\":\"result\",\"result\":\"gathered\"}""#,
    )
    .await;
    let yaml = "tasks:\n  - { name: x, prompt: 'first part', agent: answer }\n  - { name: y, prompt: 'second part', agent: answer }\nsynthesis: { prompt: 'Sum up the parts.', agent: gather }\n";
    let resp = reqwest::Client::new()
        .post(format!("{}/api/plans", b.url))
        .bearer_auth(&b.token)
        .header("content-type", "application/yaml")
        .body(format!("project: repo\n{yaml}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let plan: Value = resp.json().await.unwrap();
    let synthesis = plan["plan"]["synthesis"].as_str().unwrap().to_owned();
    let t = b.wait_status(&synthesis, TaskStatus::Succeeded).await;
    let prompt = b.sh(&format!("git show {}:prompt.txt", t.task.git.branch.unwrap()));
    for name in ["x", "y"] {
        let id = plan["plan"]["tasks"][name].as_str().unwrap();
        assert!(prompt.contains(&format!("answer to {id}")), "{prompt}");
    }
    assert!(prompt.starts_with("Sum up the parts."));
}

fn planner_script(plan: &str) -> String {
    format!(
        r#"cat > /dev/null; printf '%s\n' '{}'"#,
        json!({ "type": "result", "result": plan }).to_string().replace('\'', "'\\''")
    )
}

const PLAN: &str = r#"{"analysis":"api then ui, docs alongside","subtasks":[{"id":"api","description":"Build the REST API","agent_type":"backend"},{"id":"ui","description":"Build the screens","agent_type":"frontend","depends_on":["api"]},{"id":"docs","description":"Write the user guide","agent_type":"writer"}]}"#;

async fn experts(b: &Baton, failing: Option<&str>) {
    for (name, tags) in [
        ("api-expert", vec!["backend", "python"]),
        ("ui-expert", vec!["frontend", "react"]),
        ("scribe", vec!["writer", "docs"]),
    ] {
        let fails = failing == Some(name);
        let script = if fails {
            "echo 'it broke' >&2; exit 2".to_owned()
        } else {
            format!(r#"echo "{{\"type\":\"result\",\"result\":\"{name} did it\"}}""#)
        };
        b.agent_def(json!({ "name": name, "executor": "command", "command": ["sh", "-c", script], "tags": tags, "description": format!("{name} work") })).await;
    }
    b.agent("synth", r#"n=$(printf '%s' "$BATON_PROMPT" | grep -c 'did it'); echo "{\"type\":\"result\",\"result\":\"SYNTHESIS of $n results\"}""#).await;
}

async fn orchestrate(b: &Baton, planner: &str) -> Orchestration {
    let (status, o) = b
        .post(
            "/api/orchestrate/task",
            json!({ "description": "Build a todo app", "project": "repo", "planner": planner, "synthesizer": "synth" }),
        )
        .await;
    assert_eq!(status, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    b.wait_orchestration(&id).await
}

impl Baton {
    /// Waits until an orchestration completes or fails.
    async fn wait_orchestration(&self, id: &str) -> Orchestration {
        let start = std::time::Instant::now();
        loop {
            let o: Orchestration = self.client.get(&format!("/api/orchestrate/task/{id}")).await.unwrap();
            if matches!(o.status, OrchestrationStatus::Completed | OrchestrationStatus::Failed) {
                return o;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "{:?}: {:#?}", o.status, o.logs);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test]
async fn the_seed_004_flow_plans_routes_runs_and_synthesises() {
    let b = Baton::start();
    experts(&b, None).await;
    b.agent("planner", &planner_script(PLAN)).await;
    let o = orchestrate(&b, "planner").await;
    assert_eq!(o.status, OrchestrationStatus::Completed, "{:#?}", o.logs);
    assert_eq!(o.final_result.as_deref(), Some("SYNTHESIS of 3 results"));
    let agents: Vec<(&str, &str)> = o.subtasks.iter().map(|s| (s.id.as_str(), s.agent.as_deref().unwrap())).collect();
    assert_eq!(agents, [("api", "api-expert"), ("ui", "ui-expert"), ("docs", "scribe")]);
    assert!(o.subtasks.iter().all(|s| s.status == TaskStatus::Succeeded));
    let ui = b.get(o.subtasks[1].task_id.as_ref().unwrap().as_str()).await;
    assert_eq!(ui.task.depends_on, [o.subtasks[0].task_id.clone().unwrap()]);
    assert!(o.logs.iter().any(|l| l.contains("Plan received: 3 subtasks")));
    let list: Vec<Value> = b.client.get("/api/orchestrate/tasks").await.unwrap();
    assert_eq!(list.len(), 1);
    let templates: Vec<Value> = b.client.get("/api/orchestrate/agents").await.unwrap();
    assert!(templates.iter().any(|t| t["type"] == "api-expert" && t["tags"] == json!(["backend", "python"])));
}

#[tokio::test]
async fn a_failing_subtask_blocks_its_dependents_only_and_the_synthesis_still_runs() {
    let b = Baton::start();
    experts(&b, Some("api-expert")).await;
    b.agent("planner", &planner_script(PLAN)).await;
    let o = orchestrate(&b, "planner").await;
    assert_eq!(o.status, OrchestrationStatus::Completed, "{:#?}", o.logs);
    let status: Vec<TaskStatus> = o.subtasks.iter().map(|s| s.status).collect();
    assert_eq!(status, [TaskStatus::Failed, TaskStatus::Blocked, TaskStatus::Succeeded]);
    assert_eq!(o.final_result.as_deref(), Some("SYNTHESIS of 1 results"));
}

#[tokio::test]
async fn a_planner_that_answers_prose_is_corrected_once_then_fails_with_its_output_kept() {
    let b = Baton::start();
    experts(&b, None).await;
    let corrected = format!(
        r#"if [ -n "$BATON_RESUME" ]; then {}; else echo '{{"type":"result","result":"Sure! I would start with the API."}}'; fi"#,
        planner_script(PLAN)
    );
    b.agent("learns", &corrected).await;
    let o = orchestrate(&b, "learns").await;
    assert_eq!(o.status, OrchestrationStatus::Completed, "{:#?}", o.logs);
    assert_eq!(o.corrections, 1);

    b.agent("stubborn", r#"echo '{"type":"result","result":"I think we should discuss this first."}'"#).await;
    let o = orchestrate(&b, "stubborn").await;
    assert_eq!(o.status, OrchestrationStatus::Failed);
    assert!(o.logs.iter().any(|l| l.contains("I think we should discuss this first.")), "{:#?}", o.logs);
    assert!(o.logs.last().unwrap().contains("did not produce a valid plan"));
}

#[tokio::test]
async fn a_failing_synthesizer_falls_back_to_concatenation() {
    let b = Baton::start();
    experts(&b, None).await;
    b.agent("planner", &planner_script(PLAN)).await;
    b.agent("broken-synth", "exit 1").await;
    let (status, o) = b.post("/api/orchestrate/task", json!({ "description": "Build a todo app", "project": "repo", "planner": "planner", "synthesizer": "broken-synth" })).await;
    assert_eq!(status, 201, "{o}");
    let id = o["id"].as_str().unwrap().to_owned();
    let o = b.wait_orchestration(&id).await;
    assert_eq!(o.status, OrchestrationStatus::Completed);
    let result = o.final_result.unwrap();
    assert!(result.contains("## api (succeeded)\napi-expert did it") && result.contains("scribe did it"), "{result}");
    assert!(o.logs.iter().any(|l| l.contains("concatenated")));
}

/// A lead agent that starts `child` with a callback through the API, using its own
/// session token; resumed, it records what it was told.
fn lead_script(record: &std::path::Path, children: usize, busy: f32) -> String {
    format!(
        r#"if [ -n "$BATON_RESUME" ]; then printf '%s\n---\n' "$BATON_PROMPT" >> {record}; exit 0; fi
for i in $(seq {children}); do curl -s -o /dev/null -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' -d "{{\"prompt\":\"child $i\",\"agent\":\"child\",\"callback\":true}}" "$BATON_URL/api/tasks"; done
sleep {busy}"#,
        record = record.display()
    )
}

#[tokio::test]
async fn a_callback_resumes_an_idle_parent_at_once() {
    let b = Baton::start();
    let record = b.shared("told.txt");
    b.agent("child", r#"sleep 0.5; echo "{\"type\":\"result\",\"result\":\"child says hi\"}""#).await;
    b.agent_def(json!({ "name": "lead", "executor": "command", "command": ["sh", "-c", lead_script(&record, 1, 0.0)], "delegates_to": ["child"] })).await;
    let lead = b.task(json!({ "prompt": "lead", "agent": "lead" })).await;
    let t = b.wait_for(&lead, "resumed", |t| t.runs.len() == 2 && t.task.status == TaskStatus::Succeeded).await;
    let told = std::fs::read_to_string(&record).unwrap();
    assert!(told.contains("that you started succeeded") && told.contains("child says hi"), "{told}");
    assert_eq!(t.sessions.len(), 1, "the same conversation");
    let children: Vec<Value> = b.client.get(&format!("/api/tasks?parent={}", t.sessions[0].id)).await.unwrap();
    assert_eq!(children.len(), 1);
}

#[tokio::test]
async fn callbacks_for_a_busy_parent_wait_and_arrive_together() {
    let b = Baton::start();
    let record = b.shared("told.txt");
    b.agent("child", r#"echo "{\"type\":\"result\",\"result\":\"done $BATON_PROMPT\"}""#).await;
    b.agent_def(json!({ "name": "lead", "executor": "command", "command": ["sh", "-c", lead_script(&record, 2, 1.5)], "delegates_to": ["child"] })).await;
    let lead = b.task(json!({ "prompt": "lead", "agent": "lead" })).await;
    let t = b.wait_for(&lead, "resumed once", |t| t.runs.len() == 2 && t.task.status == TaskStatus::Succeeded).await;
    let session: Value = b.client.get(&format!("/api/sessions/{}", t.sessions[0].id)).await.unwrap();
    assert!(session["pending_callbacks"].is_null(), "{session}");
    let told = std::fs::read_to_string(&record).unwrap();
    assert_eq!(told.matches("---").count(), 1, "one resume for both: {told}");
    assert!(told.contains("done child 1") && told.contains("done child 2"), "{told}");
}

#[tokio::test]
async fn delegation_follows_the_agents_rules_and_depth_is_bounded() {
    let b = Baton::start();
    let record = b.shared("codes.txt");
    let script = format!(
        r#"code=$(curl -s -o /dev/null -w '%{{http_code}}' -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' -d '{{"prompt":"deeper","agent":"recursive"}}' "$BATON_URL/api/tasks"); echo "$code" >> {}"#,
        record.display()
    );
    b.agent_def(json!({ "name": "recursive", "executor": "command", "command": ["sh", "-c", script], "delegates_to": ["recursive"] })).await;
    // `limited` may start `someone-else` only: not `recursive` as a task, nor as a
    // plan's synthesis, nor anything through an orchestration's planner.
    b.agent("someone-else", "echo fine").await;
    let post = |path: &str, body: &str| {
        format!(
            r#"curl -s -o /dev/null -w '%{{http_code}}\n' -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' -d '{body}' "$BATON_URL{path}" >> {}"#,
            b.shared("limited.txt").display()
        )
    };
    let limited = [
        post("/api/tasks", r#"{"prompt":"x","agent":"recursive"}"#),
        post(
            "/api/plans",
            r#"{"tasks":[{"name":"a","prompt":"x","agent":"someone-else"}],"synthesis":{"prompt":"y","agent":"recursive"}}"#,
        ),
        post("/api/orchestrate/task", r#"{"description":"anything"}"#),
    ]
    .join("; ");
    b.agent_def(json!({ "name": "limited", "executor": "command", "command": ["sh", "-c", limited], "delegates_to": ["someone-else"] })).await;
    b.task(json!({ "prompt": "top", "agent": "recursive" })).await;
    let start = std::time::Instant::now();
    loop {
        let codes = std::fs::read_to_string(&record).unwrap_or_default();
        if codes.lines().any(|l| l == "403") {
            assert_eq!(codes.lines().collect::<Vec<_>>(), ["201", "201", "201", "403"], "four levels, then refused");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{codes}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let id = b.task(json!({ "prompt": "x", "agent": "limited" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(std::fs::read_to_string(b.shared("limited.txt")).unwrap().trim(), "403\n403\n403");
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(tasks.iter().all(|t| t["agent"] != "someone-else"), "a refused plan creates nothing");
}

#[tokio::test]
async fn the_leads_status_moves_from_running_to_stale_to_stopped() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "heartbeat_stale_s = 1\nheartbeat_stopped_s = 2\n").unwrap();
    });
    let status = |b: &Baton| {
        let c = b.client.clone();
        async move { c.get::<Value>("/api/projects/repo/orchestrator").await.unwrap() }
    };
    let s = status(&b).await;
    assert_eq!(s["status"], "stopped", "no heartbeat yet");
    let (code, _) =
        b.post("/api/projects/repo/heartbeat", json!({ "source": "jarvis", "session_key": "lead-1" })).await;
    assert_eq!(code, 200);
    let s = status(&b).await;
    assert_eq!(
        (s["status"].as_str(), s["isRunning"].as_bool(), s["sessionKey"].as_str()),
        (Some("running"), Some(true), Some("lead-1"))
    );
    for key in ["isHealthy", "lastPoll", "timeSinceLastPoll", "activeAgents", "completedCount"] {
        assert!(s.get(key).is_some(), "{key} in {s}");
    }
    for key in ["tasksTotal", "tasksCompleted", "tasksInProgress", "tasksTodo", "nextWave"] {
        assert!(s["state"].get(key).is_some(), "state.{key} in {s}");
    }
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(status(&b).await["status"], "stale");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(status(&b).await["status"], "stopped");
    let history: Vec<Value> = b.client.get("/api/projects/repo/heartbeats").await.unwrap();
    assert_eq!(history[0]["source"], "jarvis");
}

#[tokio::test]
async fn the_lead_status_counts_tasks_and_names_the_next_wave() {
    let b = Baton::start();
    b.agent("slow", "sleep 600").await;
    b.agent("ok", "true").await;
    let running = b.task(json!({ "prompt": "running", "agent": "slow" })).await;
    let next = b.task(json!({ "prompt": "next", "agent": "ok", "depends_on": [running] })).await;
    let later = b.task(json!({ "prompt": "later", "agent": "ok", "depends_on": [next] })).await;
    b.wait_status(&running, TaskStatus::Running).await;
    let s: Value = b.client.get("/api/projects/repo/orchestrator").await.unwrap();
    assert_eq!(s["activeAgents"][0]["taskId"], running);
    assert_eq!(s["state"]["nextWave"], json!([next]));
    assert_eq!(s["state"]["tasksTodo"], 2);
    assert_eq!(s["state"]["tasksInProgress"], 1);
    let _ = later;
    let _ = b.cli(&["stop", &running, "--wait"]);
}

#[tokio::test]
async fn a_task_that_can_run_nowhere_says_so() {
    let b = Baton::start_with(&["--no-launcher"]);
    b.agent("ok", "true").await;
    let id = b.task(json!({ "prompt": "x", "agent": "ok" })).await;
    let t = b.get(&id).await;
    assert_eq!(t.task.status, TaskStatus::Queued);
    assert!(t.task.reason.as_deref().unwrap().contains("no launcher is online"), "{:?}", t.task.reason);
}

#[tokio::test]
async fn workers_get_their_prerequisites_results_checks_and_templates() {
    let b = Baton::start();
    b.agent("answer", r#"echo '{"type":"result","result":"the schema is users(id, name)"}'"#).await;
    b.agent("show", r#"printf '%s' "$BATON_PROMPT" > prompt.txt"#).await;
    b.agent_def(json!({ "name": "templated", "executor": "command", "command": ["sh", "-c", "printf '%s' \"$BATON_PROMPT\" > prompt.txt"], "prompt_template": "Task {{task_id}} in {{project}}: {{task}}\nBranch {{branch}}\nChecks:\n{{checks}}" })).await;
    let schema = b.task(json!({ "prompt": "design the schema", "agent": "answer" })).await;
    let api = b.task(json!({ "prompt": "build the API", "agent": "show", "depends_on": [schema], "checks": ["test -f prompt.txt"] })).await;
    let t = b.wait_status(&api, TaskStatus::Succeeded).await;
    let prompt = b.sh(&format!("git show {}:prompt.txt", t.task.git.branch.unwrap()));
    assert!(prompt.starts_with("build the API"), "{prompt}");
    assert!(prompt.contains("the schema is users(id, name)") && prompt.contains("`test -f prompt.txt`"), "{prompt}");
    let id = b.task(json!({ "prompt": "do it", "agent": "templated", "checks": ["true"] })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    let branch = t.task.git.branch.unwrap();
    let prompt = b.sh(&format!("git show {branch}:prompt.txt"));
    assert_eq!(prompt, format!("Task {id} in repo: do it\nBranch {branch}\nChecks:\n- `true`"));
}

#[tokio::test]
async fn waiting_for_a_task_answers_when_it_settles() {
    let b = Baton::start();
    b.agent("quick", r#"sleep 0.3; echo '{"type":"result","result":"waited for"}'"#).await;
    let id = b.task(json!({ "prompt": "x", "agent": "quick" })).await;
    let t: TaskDetail = b.client.get(&format!("/api/tasks/{id}/wait?timeout_s=20")).await.unwrap();
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert_eq!(t.task.result.as_deref(), Some("waited for"));
}
