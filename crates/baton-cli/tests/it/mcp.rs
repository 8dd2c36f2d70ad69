//! Baton's MCP server, driven by a real MCP client — Claude Code, against the
//! repository's fake model — over stdio (`baton mcp`, which Baton gives every
//! Claude Code agent) and over streamable HTTP (`/mcp`); and raw JSON-RPC for the
//! bad input.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use baton_core::event::EventKind;
use baton_core::status::TaskStatus;
use baton_testkit::{FakeModel, Script, Step};
use serde_json::{Value, json};

use crate::harness::{BATON, Baton};
use crate::real_agents::{Cli, TURN, dump, find};

/// A lead (Claude Code run by Baton) starts two workers through MCP with
/// callbacks, finishes its turn while they still run, and is resumed with both
/// results. A third start, of an agent its `delegates_to` does not name, is
/// refused as a tool error the lead can read.
#[tokio::test]
async fn a_lead_starts_two_workers_keeps_answering_and_receives_both_results() {
    let fake = FakeModel::start(Script::new(vec![
        Step::tool(
            "mcp__baton__start_task",
            json!({ "prompt": "Report on part A", "agent": "worker-a", "title": "part a", "callback": true }),
        ),
        Step::tool(
            "mcp__baton__start_task",
            json!({ "prompt": "Report on part B", "agent": "worker-b", "title": "part b", "callback": true }),
        ),
        Step::tool("mcp__baton__start_task", json!({ "prompt": "x", "agent": "outsider" })),
        Step::text("Both workers are running; I am free to talk."),
        Step::text("I have the results."),
        Step::text("I have the rest."),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    let gate = b.shared("gate");
    for (name, text) in [("worker-a", "result-from-A"), ("worker-b", "result-from-B")] {
        b.agent(name, &format!("while [ ! -f {} ]; do sleep 0.05; done; echo {text}", gate.display())).await;
    }
    b.agent("outsider", "echo never").await;
    let mut lead = Cli::Claude.def("lead", &fake.url, &b.dir.path().join("home"));
    lead["delegates_to"] = json!(["worker-a", "worker-b"]);
    b.agent_def(lead).await;
    let id = b.task(json!({ "prompt": "Split the work in two", "agent": "lead" })).await;

    // The lead's turn ends while its workers wait at the gate: it kept answering.
    let t = b
        .wait_within(TURN, &id, "the lead's first turn", |t| t.runs.first().is_some_and(|r| r.status.is_finished()))
        .await;
    let events = b.events(&id).await;
    assert_eq!(t.runs[0].status, baton_core::status::RunStatus::Succeeded, "{}", dump(&events));
    assert_eq!(t.runs[0].result.as_deref(), Some("Both workers are running; I am free to talk."));
    let lead_session = t.sessions[0].id.clone();
    let children: Vec<Value> = b.client.get(&format!("/api/tasks?parent={lead_session}")).await.unwrap();
    assert_eq!(children.len(), 2, "two workers started as the lead's children: {children:?}");
    assert!(children.iter().all(|c| c["status"] == "running" || c["status"] == "queued"), "{children:?}");
    let refused = find(&events, EventKind::ToolResult, |e| e.data["is_error"] == true)
        .unwrap_or_else(|| panic!("the outsider start was not refused:\n{}", dump(&events)));
    assert!(refused.data["output"].to_string().contains("forbidden"), "{}", refused.data);

    // The workers finish; their results come back to the lead as messages.
    std::fs::write(&gate, "go").unwrap();
    let t = b
        .wait_within(TURN, &id, "both results delivered", |t| {
            let told: String = t.runs.iter().skip(1).map(|r| r.message.clone()).collect();
            t.runs.iter().all(|r| r.status.is_finished())
                && told.contains("result-from-A")
                && told.contains("result-from-B")
        })
        .await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert_eq!(t.sessions.len(), 1, "the same lead session, resumed");
    assert!(t.runs.iter().skip(1).all(|r| r.kind == baton_core::model::RunKind::Resume));
}

/// Over streamable HTTP (`/mcp` with the session's own token), one worker writes
/// a document; another, over stdio, finds it by a word of it.
#[tokio::test]
async fn documents_pushed_by_one_worker_over_http_are_found_by_another() {
    let fake_a = FakeModel::start(Script::new(vec![
        Step::tool(
            "mcp__batonhttp__doc_push",
            json!({ "name": "findings/cache", "content": "The cache uses LRU eviction.", "tags": ["findings"] }),
        ),
        Step::text("Written."),
    ]))
    .await
    .unwrap();
    let fake_b = FakeModel::start(Script::new(vec![
        Step::tool("mcp__baton__doc_query", json!({ "query": "eviction", "tags": ["findings"] })),
        Step::text("Found it."),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    let mut writer = Cli::Claude.def("writer", &fake_a.url, &b.dir.path().join("home-a"));
    writer["baton_mcp"] = json!(false);
    writer["mcp_servers"] = json!({
        "batonhttp": { "type": "http", "url": "${BATON_URL}/mcp", "headers": { "Authorization": "Bearer ${BATON_TOKEN}" } }
    });
    writer["tools"] = json!(["mcp__batonhttp", "Write"]);
    b.agent_def(writer).await;
    b.agent_def(Cli::Claude.def("reader", &fake_b.url, &b.dir.path().join("home-b"))).await;

    let w = b.task(json!({ "prompt": "Write down what you found", "agent": "writer" })).await;
    let t = b.wait_within(TURN, &w, "the writer", |t| t.task.status.is_finished()).await;
    let events = b.events(&w).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{}", dump(&events));
    let pushed = find(&events, EventKind::ToolResult, |_| true).unwrap();
    assert_eq!(pushed.data["is_error"], false, "{}", dump(&events));
    let doc: Value = b.client.get("/api/docs/findings/cache").await.unwrap();
    assert_eq!(doc["written_by"], json!(t.sessions[0].id), "the HTTP call carried the writer's own token");

    let r = b.task(json!({ "prompt": "What do we know about eviction?", "agent": "reader" })).await;
    let t = b.wait_within(TURN, &r, "the reader", |t| t.task.status.is_finished()).await;
    let events = b.events(&r).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{}", dump(&events));
    let found = find(&events, EventKind::ToolResult, |_| true).unwrap();
    assert!(found.data["output"].to_string().contains("findings/cache"), "{}", dump(&events));
}

/// A worker of `cli` on coordinator `b` calls `tool` (the name its CLI gives
/// Baton's `doc_push`): the document lands, written with the worker's own session
/// token, and the call is in the task's timeline.
async fn a_worker_pushes_a_document_over_mcp(b: Baton, cli: Cli, tool: &str) {
    let name = format!("findings/{tool}");
    let fake = FakeModel::start(Script::new(vec![
        Step::tool(tool, json!({ "name": name, "content": "Found it." })),
        Step::text("Written."),
    ]))
    .await
    .unwrap();
    b.agent_def(cli.def("worker", &fake.url, &b.dir.path().join("home"))).await;
    let id = b.task(json!({ "prompt": "Write down what you found", "agent": "worker" })).await;
    let t = b.wait_within(TURN, &id, "the worker's turn", |t| t.task.status.is_finished()).await;
    let events = b.events(&id).await;
    // What the CLI offered the model, for when the tool is not among them.
    let offered: Vec<Value> = fake.requests().iter().map(|r| r["body"]["tools"].clone()).collect();
    let context =
        || format!("{}\noffered: {}", dump(&events), json!(offered).to_string().chars().take(3000).collect::<String>());
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{}", context());
    let doc: Value = b.client.get(&format!("/api/docs/{name}")).await.unwrap_or_else(|e| panic!("{e}\n{}", context()));
    assert_eq!(doc["written_by"], json!(t.sessions[0].id), "the call carried the worker's own token");
    let call = find(&events, EventKind::ToolCall, |e| e.data.to_string().contains("doc_push"));
    assert!(call.is_some(), "the MCP call is in the timeline: {}", dump(&events));
}

/// Codex gets Baton's MCP server through `-c mcp_servers.baton.*` (`baton mcp`,
/// handed the session's URL and token by name) and offers its tools in the
/// `mcp__baton` namespace.
#[tokio::test]
async fn a_codex_worker_speaks_to_baton_over_mcp() {
    a_worker_pushes_a_document_over_mcp(Baton::start(), Cli::Codex, "mcp__baton__doc_push").await;
}

/// Gemini gets it over HTTP from a settings file of the run's own — which it reads
/// only when no parent directory is writable by others (not under /tmp).
#[tokio::test]
async fn a_gemini_worker_speaks_to_baton_over_mcp() {
    a_worker_pushes_a_document_over_mcp(Baton::start_private(), Cli::Gemini, "mcp_baton_doc_push").await;
}

/// A `baton mcp` process speaking raw JSON-RPC, for the bad input.
pub(crate) struct Stdio_ {
    child: std::process::Child,
    out: BufReader<std::process::ChildStdout>,
    next: u64,
}

impl Stdio_ {
    pub(crate) fn start(b: &Baton, token: &str) -> Self {
        let mut child = Command::new(BATON)
            .arg("mcp")
            .env("BATON_URL", &b.url)
            .env("BATON_TOKEN", token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let mut s = Stdio_ { child, out, next: 1 };
        let init = s.call(
            "initialize",
            json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "0" } }),
        );
        assert_eq!(init["result"]["serverInfo"]["name"], "baton");
        s.send(json!({ "jsonrpc": "2.0", "method": "notifications/initialized" }));
        s
    }

    fn send(&mut self, msg: Value) {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{msg}").unwrap();
        stdin.flush().unwrap();
    }

    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.next;
        self.next += 1;
        self.send(json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params }));
        loop {
            let mut line = String::new();
            assert!(self.out.read_line(&mut line).unwrap() > 0, "baton mcp closed its output");
            let msg: Value = serde_json::from_str(&line).unwrap();
            if msg["id"] == id {
                return msg;
            }
        }
    }

    /// A tool call's result: (is_error, text).
    pub(crate) fn tool(&mut self, name: &str, args: Value) -> (bool, String) {
        let r = self.call("tools/call", json!({ "name": name, "arguments": args }));
        let result = &r["result"];
        assert!(result.is_object(), "a tool answer, not a protocol error: {r}");
        let text = result["content"].as_array().unwrap().iter().filter_map(|c| c["text"].as_str()).collect();
        (result["isError"] == true, text)
    }
}

impl Drop for Stdio_ {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn bad_tool_calls_are_tool_errors_and_the_server_keeps_serving() {
    let b = Baton::start();
    let mut mcp = Stdio_::start(&b, &b.token);
    let tools = mcp.call("tools/list", json!({}));
    let names: Vec<&str> =
        tools["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"start_task") && names.contains(&"doc_query"), "{names:?}");
    let start = tools["result"]["tools"].as_array().unwrap().iter().find(|t| t["name"] == "start_task").unwrap();
    assert!(start["inputSchema"]["properties"]["prompt"]["description"].as_str().unwrap().len() > 10);

    let (err, text) = mcp.tool("start_task", json!({}));
    assert!(err && text.contains("prompt"), "missing argument: {text}");
    let (err, text) = mcp.tool("start_task", json!({ "prompt": 42 }));
    assert!(err && text.contains("invalid type"), "wrong type: {text}");
    let (err, text) = mcp.tool("task_status", json!({ "task": "t-doesnotexist" }));
    assert!(err && text.contains("no task"), "unknown task: {text}");
    let (err, text) = mcp.tool("doc_read", json!({ "name": "../etc/passwd" }));
    assert!(err && text.contains("invalid"), "unsafe name: {text}");
    let (err, text) = mcp.tool("doc_query", json!({ "query": "\"unbalanced AND (" }));
    assert!(!err, "search syntax is taken literally: {text}");
    let (err, text) = mcp.tool("start_task", json!({ "prompt": "x", "agent": "nobody" }));
    assert!(err && text.contains("nobody"), "unknown agent: {text}");
    let (err, text) = mcp.tool("submit_plan", json!({ "plan": "tasks: [ {name: a, prompt: x, depends_on: [a]} ]" }));
    assert!(err, "a cyclic plan is refused: {text}");
    // Still serving after all that.
    let (err, text) = mcp.tool("list_agents", json!({}));
    assert!(!err && text.contains("claude"), "{text}");
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(tasks.is_empty(), "nothing was created: {tasks:?}");
}

/// An agent's session token may start only the agents its `delegates_to` names.
#[tokio::test]
async fn a_session_token_may_not_start_an_agent_it_may_not_delegate_to() {
    let b = Baton::start();
    b.agent("helper", "echo helped").await;
    // The agent itself speaks MCP to `baton mcp` with its own session token.
    let script = r#"printf '%s\n' \
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"0"}}}' \
      '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"start_task","arguments":{"prompt":"x","agent":"helper"}}}' \
      | (cat; sleep 3) | baton mcp | grep '"id":2'"#;
    b.agent_def(json!({
        "name": "loner", "executor": "command",
        "command": ["sh", "-c", script.replace("baton mcp", &format!("{BATON} mcp"))],
    }))
    .await;
    let id = b.task(json!({ "prompt": "x", "agent": "loner" })).await;
    let t = b.wait_within(TURN, &id, "done", |t| t.task.status.is_finished()).await;
    let answer = t.task.result.unwrap_or_default();
    assert!(answer.contains(r#""isError":true"#) && answer.contains("forbidden"), "{answer}");
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(tasks.len(), 1, "no helper task was created");
}

#[tokio::test]
async fn http_mcp_needs_a_token_and_a_local_host() {
    let b = Baton::start();
    let client = reqwest::Client::new();
    let init = json!({ "jsonrpc": "2.0", "id": 1, "method": "initialize", "params": { "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "t", "version": "0" } } });
    let post = |token: Option<&str>, host: Option<&str>| {
        let mut req =
            client.post(format!("{}/mcp", b.url)).header("accept", "application/json, text/event-stream").json(&init);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(h) = host {
            req = req.header("host", h);
        }
        req.send()
    };
    assert_eq!(post(None, None).await.unwrap().status(), 401);
    assert_eq!(post(Some("bta_wrong"), None).await.unwrap().status(), 401);
    assert_eq!(post(Some(&b.token), Some("evil.example")).await.unwrap().status(), 403);
    let ok = post(Some(&b.token), None).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert!(ok.headers().get("mcp-session-id").is_some());
    let body = tokio::time::timeout(Duration::from_secs(10), ok.text()).await.unwrap().unwrap();
    assert!(body.contains("\"serverInfo\""), "{body}");
}
