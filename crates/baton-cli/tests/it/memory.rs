//! Agents that live between tasks: their memory (blocks with limits, every
//! version kept, a journal Baton writes), their inbox (messages taken before
//! queued work, within the authority table) and the document rules.

use std::time::Duration;

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Baton, processes_of_task, wait_lines};

async fn get(b: &Baton, path: &str) -> Value {
    let (s, v) = b.call(reqwest::Method::GET, path, None).await;
    assert_eq!(s, 200, "GET {path}: {v}");
    v
}

/// A `command` agent running `script`, with more of its definition.
async fn agent_with(b: &Baton, name: &str, script: &str, more: Value) {
    let mut def = json!({ "name": name, "executor": "command", "command": ["sh", "-c", script] });
    for (k, v) in more.as_object().unwrap() {
        def[k] = v.clone();
    }
    b.agent_def(def).await;
}

/// A shell line that calls the coordinator with the session's own token and
/// appends the HTTP status to `file` (in the worktree).
fn curl(method: &str, path: &str, body: &str, file: &str) -> String {
    format!(
        r#"curl -s -o /dev/null -w '%{{http_code}}\n' -X {method} -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' "$BATON_URL{path}" -d '{body}' >> {file}"#
    )
}

fn worktree_file(t: &baton_core::api::TaskDetail, name: &str) -> String {
    let dir = std::path::PathBuf::from(t.task.git.worktree.clone().expect("a worktree"));
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

#[tokio::test]
async fn a_note_an_agent_writes_with_its_token_reaches_its_next_task() {
    let b = Baton::start();
    let remember = curl("PUT", "/api/agents/keeper/memory/notes", r#"{"text":"the build needs make -j1"}"#, "codes");
    let trespass = curl("PUT", "/api/agents/other/memory/notes", r#"{"text":"mine now"}"#, "codes");
    let prompts = b.shared("prompts");
    std::fs::create_dir_all(&prompts).unwrap();
    let script = format!(
        r#"printf '%s' "$BATON_PROMPT" > {}/$BATON_TASK_ID; case "$BATON_PROMPT" in *remember*) {remember}; {trespass};; esac; git add -A; git commit -qm turn"#,
        prompts.display()
    );
    agent_with(&b, "keeper", &script, json!({ "memory": true })).await;
    agent_with(&b, "other", "true", json!({ "memory": true })).await;
    let first = b.task(json!({ "prompt": "remember this", "agent": "keeper" })).await;
    let t1 = b.wait_status(&first, TaskStatus::Succeeded).await;
    assert_eq!(worktree_file(&t1, "codes").lines().collect::<Vec<_>>(), ["200", "403"], "its own memory only");
    let second = b.task(json!({ "prompt": "carry on", "agent": "keeper" })).await;
    let t2 = b.wait_status(&second, TaskStatus::Succeeded).await;
    let prompt = std::fs::read_to_string(prompts.join(&second)).unwrap();
    assert!(prompt.contains("the build needs make -j1"), "the note is in the next prompt: {prompt}");
    assert!(prompt.contains(&format!("Task {first}")), "so is the journal's record of the first task: {prompt}");
    assert!(prompt.contains("notes (24 of 5000 characters)"), "with its size and limit: {prompt}");
    assert!(prompt.ends_with("carry on"), "the task's own prompt last: {prompt}");
    let other = get(&b, "/api/agents/other/memory").await;
    assert!(other["blocks"].as_array().unwrap().iter().all(|b| b["text"] == ""), "{other}");
    // Nothing of it is in the branch.
    let branch = t2.task.git.branch.clone().unwrap();
    assert_eq!(
        b.sh(&format!("git log -p {branch} --format= | grep -c 'make -j1' || true")),
        "0",
        "never in the branch"
    );
    let view = get(&b, "/api/agents/keeper/memory").await;
    let statuses: Vec<&str> =
        view["journal"].as_array().unwrap().iter().filter_map(|e| e["data"]["status"].as_str()).collect();
    assert_eq!(statuses, ["succeeded", "succeeded"], "{view}");
}

#[tokio::test]
async fn a_write_past_a_blocks_limit_is_refused_with_both_sizes_and_revert_brings_back_a_version() {
    let b = Baton::start();
    agent_with(&b, "keeper", "true", json!({ "memory": true })).await;
    let shared = &b;
    let put = |text: String| async move {
        shared.call(reqwest::Method::PUT, "/api/agents/keeper/memory/persona", Some(json!({ "text": text }))).await
    };
    let (s, v1) = put("terse and careful".into()).await;
    assert_eq!((s, v1["version"].as_u64()), (200, Some(1)), "{v1}");
    let (s, v2) = put("chatty".into()).await;
    assert_eq!((s, v2["version"].as_u64()), (200, Some(2)));
    let (s, refused) = put("x".repeat(2001)).await;
    assert_eq!(s, 413, "{refused}");
    assert_eq!(refused["error"]["code"], "payload_too_large");
    assert_eq!(refused["error"]["details"], json!({ "label": "persona", "size": 2001, "current": 6, "limit": 2000 }));
    let (s, refused) = b
        .call(
            reqwest::Method::PUT,
            "/api/agents/keeper/memory/persona",
            Some(json!({ "text": "y".repeat(1995), "mode": "append" })),
        )
        .await;
    assert_eq!(
        (s, refused["error"]["details"]["size"].as_u64()),
        (413, Some(2002)),
        "an append counts the whole: {refused}"
    );
    let versions = get(&b, "/api/agents/keeper/memory/persona").await;
    assert_eq!(versions.as_array().unwrap().len(), 2, "nothing was written: {versions}");
    assert_eq!(versions[0]["text"], "chatty");
    let (s, back) =
        b.call(reqwest::Method::POST, "/api/agents/keeper/memory/persona/revert", Some(json!({ "version": 1 }))).await;
    assert_eq!((s, back["version"].as_u64(), back["text"].as_str()), (200, Some(3), Some("terse and careful")));
    // The CLI says the same.
    let out = b.cli(&["memory", "set", "keeper", "notes", "short"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = b.cli(&["memory", "show", "keeper"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("persona") && text.contains("17/2000") && text.contains("5/5000"), "{text}");
    let out = b.cli(&["memory", "revert", "keeper", "notes", "7"]);
    assert_eq!(out.status.code(), Some(3), "a version that does not exist: {}", String::from_utf8_lossy(&out.stderr));
    // Bad input changes nothing.
    for (path, body, status) in [
        ("/api/agents/keeper/memory/bad%20label", json!({ "text": "x" }), 400),
        ("/api/agents/keeper/memory/context", json!({ "text": "x" }), 405),
        ("/api/agents/keeper/memory/notes", json!({ "text": "x", "limit": 0 }), 400),
        ("/api/agents/keeper/memory/notes", json!({ "text": "x", "limit": 100_001 }), 400),
        ("/api/agents/nobody/memory/notes", json!({ "text": "x" }), 404),
    ] {
        let (s, v) = b.call(reqwest::Method::PUT, path, Some(body)).await;
        assert_eq!(s, status, "{path}: {v}");
    }
    agent_with(&b, "forgetful", "true", json!({})).await;
    let (s, v) = b.call(reqwest::Method::PUT, "/api/agents/forgetful/memory/notes", Some(json!({ "text": "x" }))).await;
    assert_eq!(s, 409, "an agent without memory: {v}");
    let view = get(&b, "/api/agents/keeper/memory").await;
    let notes = view["blocks"].as_array().unwrap().iter().find(|b| b["label"] == "notes").unwrap().clone();
    assert_eq!((notes["text"].as_str(), notes["version"].as_u64()), (Some("short"), Some(1)), "{view}");
}

#[tokio::test]
async fn the_journal_records_a_task_whose_agent_was_killed() {
    let b = Baton::start();
    agent_with(&b, "doomed", "echo working; sleep 600", json!({ "memory": true })).await;
    let id = b.task(json!({ "prompt": "work", "agent": "doomed" })).await;
    b.wait_for(&id, "running", |t| t.task.status == TaskStatus::Running).await;
    let mut killed = false;
    for _ in 0..200 {
        if let Some(pid) = processes_of_task(&id)
            .into_iter()
            .find(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("sleep")))
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(killed, "the agent's process was found");
    let t = b.wait_for(&id, "ended", |t| t.task.status.is_settled()).await;
    let view = get(&b, "/api/agents/doomed/memory").await;
    let entry = view["journal"].as_array().unwrap().iter().find(|e| e["task_id"] == id.as_str()).cloned();
    let entry = entry.unwrap_or_else(|| panic!("an entry for {id}: {view}"));
    assert_eq!(entry["kind"], "outcome");
    assert_eq!(entry["data"]["status"], json!(t.task.status));
    assert!(entry["text"].as_str().unwrap().contains(&id), "{entry}");
}

#[tokio::test]
async fn a_message_is_taken_before_five_queued_tasks_and_one_key_sends_it_once() {
    let b = Baton::start();
    let log = b.shared("order.log");
    let go = b.shared("go");
    let script = format!(
        r#"printf '%s\n' "$(printf '%s' "$BATON_PROMPT" | tr '\n' ' ')" >> {log}; while [ ! -f {go} ]; do sleep 0.05; done"#,
        log = log.display(),
        go = go.display()
    );
    agent_with(&b, "busy", &script, json!({ "max_parallel": 1 })).await;
    let first = b.task(json!({ "prompt": "first", "agent": "busy" })).await;
    b.wait_for(&first, "running", |t| t.task.status == TaskStatus::Running).await;
    wait_lines(&log, 1).await;
    for i in 1..=5 {
        b.task(json!({ "prompt": format!("queued {i}"), "agent": "busy" })).await;
    }
    let send = || async {
        let resp = reqwest::Client::new()
            .post(format!("{}/api/agents/busy/messages", b.url))
            .bearer_auth(&b.token)
            .header("idempotency-key", "msg-key-1")
            .json(&json!({ "text": "urgent: look at the failing build", "project": "repo" }))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let ((s1, m1), (s2, m2)) = (send().await, send().await);
    assert_eq!((s1, s2), (201, 201), "{m1} {m2}");
    assert_eq!(m1, m2, "the same key, the same message");
    assert_eq!(m1["state"], "delivered", "a person wakes the agent: {m1}");
    let inbox = get(&b, "/api/agents/busy/messages").await;
    assert_eq!(inbox.as_array().unwrap().len(), 1, "{inbox}");
    std::fs::write(&go, "").unwrap();
    let text = wait_lines(&log, 7).await;
    let order: Vec<&str> = text.lines().collect();
    assert!(order[0].ends_with("first"), "{order:?}");
    assert!(order[1].contains("look at the failing build"), "the message came next: {order:?}");
    for (i, line) in order[2..].iter().enumerate() {
        assert!(line.ends_with(&format!("queued {}", i + 1)), "then the queue, in order: {order:?}");
    }
    let task = m1["task_id"].as_str().unwrap();
    b.wait_status(task, TaskStatus::Succeeded).await;
    let done = get(&b, "/api/agents/busy/messages").await;
    assert_eq!(done[0]["state"], "done", "{done}");
}

#[tokio::test]
async fn authority_decides_who_may_message_and_who_wakes() {
    let b = Baton::start();
    let body = r#"{"text":"please review the API"}"#;
    let sends = [
        curl("POST", "/api/agents/reviewer/messages", body, "codes"),
        curl("POST", "/api/agents/nobody/messages", body, "codes"),
    ]
    .join("; ");
    agent_with(&b, "stranger", &format!("{sends}; git add -A; git commit -qm x"), json!({})).await;
    agent_with(&b, "peer", &format!("{sends}; git add -A; git commit -qm x"), json!({ "messages_to": ["reviewer"] }))
        .await;
    agent_with(
        &b,
        "boss",
        &format!("[ \"$BATON_RESUME\" = 1 ] && exit 0; {sends}; git add -A; git commit -qm x"),
        json!({ "delegates_to": ["reviewer"] }),
    )
    .await;
    agent_with(&b, "reviewer", r#"printf '%s' "$BATON_PROMPT" > prompt.txt; git add -A; git commit -qm x"#, json!({}))
        .await;
    // Without authority: refused, nothing kept.
    let id = b.task(json!({ "prompt": "go", "agent": "stranger" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(worktree_file(&t, "codes").lines().collect::<Vec<_>>(), ["403", "404"]);
    assert_eq!(get(&b, "/api/agents/reviewer/messages").await, json!([]), "nothing was queued");
    // May message, may not wake: it waits for the reviewer's next task.
    let id = b.task(json!({ "prompt": "go", "agent": "peer" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(worktree_file(&t, "codes").lines().next(), Some("201"));
    let inbox = get(&b, "/api/agents/reviewer/messages").await;
    assert_eq!((inbox[0]["state"].as_str(), inbox[0]["from"].as_str()), (Some("queued"), Some("peer")), "{inbox}");
    let next = b.task(json!({ "prompt": "your own work", "agent": "reviewer" })).await;
    let t = b.wait_status(&next, TaskStatus::Succeeded).await;
    let prompt = worktree_file(&t, "prompt.txt");
    assert!(prompt.contains("From peer") && prompt.contains("please review the API"), "{prompt}");
    assert!(prompt.ends_with("your own work"), "{prompt}");
    let inbox = get(&b, "/api/agents/reviewer/messages").await;
    assert_eq!((inbox[0]["state"].as_str(), inbox[0]["task_id"].as_str()), (Some("done"), Some(next.as_str())));
    // Authority over it: the message wakes the reviewer, and its end comes back to the boss.
    let id = b.task(json!({ "prompt": "go", "agent": "boss" })).await;
    let t = b.wait_for(&id, "its receipt", |t| t.runs.len() == 2 && t.task.status.is_settled()).await;
    let inbox = get(&b, "/api/agents/reviewer/messages").await;
    let woke = inbox.as_array().unwrap().iter().find(|m| m["from"] == "boss").unwrap();
    assert_eq!(woke["state"], "done", "{woke}");
    let task = woke["task_id"].as_str().unwrap();
    assert!(t.runs[1].message.contains(task), "the receipt names the reviewer's task: {}", t.runs[1].message);
}

#[tokio::test]
async fn document_rules_let_a_worker_append_to_logs_only_and_the_lead_write_status() {
    let b = Baton::start();
    let attempts = [
        curl("POST", "/api/docs", r#"{"name":"status/now","content":"all green"}"#, "codes"),
        curl("POST", "/api/docs", r#"{"name":"log/day","content":"did a thing","append":true}"#, "codes"),
        curl("POST", "/api/docs", r#"{"name":"log/day","content":"rewrote history"}"#, "codes"),
        curl("DELETE", "/api/docs/log/day", "{}", "codes"),
    ]
    .join("; ");
    let script = format!("{attempts}; git add -A; git commit -qm x");
    agent_with(&b, "worker", &script, json!({ "docs": { "append": ["log/*"] } })).await;
    agent_with(&b, "manager", &script, json!({ "docs": { "write": ["status/*", "log/*"] } })).await;
    let id = b.task(json!({ "prompt": "go", "agent": "worker" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(worktree_file(&t, "codes").lines().collect::<Vec<_>>(), ["403", "201", "403", "403"]);
    let id = b.task(json!({ "prompt": "go", "agent": "manager" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(worktree_file(&t, "codes").lines().collect::<Vec<_>>(), ["201", "200", "200", "204"]);
    // A rule that is not a pattern is refused, and no agent is made.
    let (s, v) = b
        .post(
            "/api/agents",
            json!({ "name": "bad", "executor": "command", "command": ["true"], "docs": { "write": ["a**"] } }),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let (s, _) = b.call(reqwest::Method::GET, "/api/agents/bad", None).await;
    assert_eq!(s, 404);
}
