//! `baton hook`: an interactive Claude Code session, reporting through its hooks,
//! shows up as a session beside the workers.

use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_core::event::EventKind;
use baton_core::status::TaskStatus;
use baton_testkit::{FakeModel, Script, Step};
use serde_json::{Value, json};

use crate::harness::Baton;
use crate::real_agents::{clis, dump, find};

/// Runs `baton hook` in the repository with `input` on stdin; how long it took.
fn hook(b: &Baton, input: &[u8], url: &str) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let out = b.cli_in(&["hook"], input, Some(url));
    (out, start.elapsed())
}

#[tokio::test]
async fn a_real_claude_code_session_shows_up_through_its_hooks() {
    let fake = FakeModel::start(Script::new(vec![
        Step::write("hello.txt", "hi\n"),
        Step::tool("mcp__baton__start_task", json!({ "prompt": "Help out", "agent": "helper", "title": "help" })),
        Step::text("Created hello.txt."),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    b.agent("helper", "echo helped").await;
    let out = b.cli(&["hook", "install"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let settings: Value =
        serde_json::from_str(&std::fs::read_to_string(b.repo.join(".claude/settings.local.json")).unwrap()).unwrap();
    assert!(settings["hooks"]["PreToolUse"][0]["hooks"][0]["command"].as_str().unwrap().ends_with("baton hook"));
    let again = String::from_utf8_lossy(&b.cli(&["hook", "install"]).stdout).into_owned();
    assert!(again.contains("already"), "{again}");

    // The user's own Claude Code, in the repository, not started by Baton.
    let home = b.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // With Baton's MCP server, as `claude mcp add baton -- baton mcp` would add it.
    let mcp = b.dir.path().join("mcp.json");
    let servers = json!({ "mcpServers": { "baton": { "command": crate::harness::BATON, "args": ["mcp"] } } });
    std::fs::write(&mcp, servers.to_string()).unwrap();
    // tokio's, so that the fake model (on this test's runtime) answers while we wait.
    let mut claude = tokio::process::Command::new(clis().join("claude"))
        .args(["-p", "--output-format", "stream-json", "--verbose", "--permission-mode", "acceptEdits"])
        .args(["--allowedTools", "Write,mcp__baton__start_task"])
        .arg("--mcp-config")
        .arg(&mcp)
        .current_dir(&b.repo)
        .env("HOME", &home)
        .env("ANTHROPIC_BASE_URL", &fake.url)
        .env("ANTHROPIC_API_KEY", "sk-fake")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env_remove("BATON_URL")
        .env_remove("BATON_TOKEN")
        .env_remove("BATON_SESSION_ID")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = claude.stdin.take().unwrap();
        stdin.write_all(b"Create hello.txt").await.unwrap();
    }
    let out = tokio::time::timeout(Duration::from_secs(120), claude.wait_with_output()).await.unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let claude_session = stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| v["session_id"].as_str().map(str::to_owned))
        .unwrap();

    let start = Instant::now();
    let task = loop {
        let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
        if let Some(t) = tasks.into_iter().find(|t| t["external"] == true && t["status"] == "succeeded") {
            break t;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no session from the hooks");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let id = task["id"].as_str().unwrap();
    let t = b.get(id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "SessionEnd ends it");
    assert_eq!(t.sessions[0].agent_session_id.as_deref(), Some(claude_session.as_str()));
    assert_eq!(t.task.result.as_deref(), Some("Created hello.txt."));
    let events = b.events(id).await;
    assert!(find(&events, EventKind::Init, |_| true).is_some(), "{}", dump(&events));
    assert!(
        find(&events, EventKind::Message, |e| e.data["role"] == "user" && e.data["text"] == "Create hello.txt")
            .is_some()
    );
    let call = find(&events, EventKind::ToolCall, |e| e.data["name"] == "Write").expect("the tool call");
    assert!(call.raw.as_deref().unwrap().contains("PreToolUse"), "the hook's JSON is kept");
    assert!(find(&events, EventKind::ToolResult, |e| e.data["id"] == call.data["id"]).is_some());
    assert!(find(&events, EventKind::Hook, |e| e.data["hook_event_name"] == "SessionEnd").is_some());
    // The task it started through Baton's MCP server is its child.
    let lead_session = &t.sessions[0].id;
    let children: Vec<Value> = b.client.get(&format!("/api/tasks?parent={lead_session}")).await.unwrap();
    assert_eq!(children.len(), 1, "{children:?}\n{}", dump(&events));
    assert_eq!(children[0]["title"], "help");
    // The lead's status counts hooks as heartbeats.
    let lead: Value = b.client.get("/api/projects/repo/orchestrator").await.unwrap();
    assert_eq!(lead["status"], "running", "{lead}");
    // Baton watches this session; it does not drive it.
    for action in [vec!["stop", id], vec!["resume", id, "more"], vec!["retry", id]] {
        let out = b.cli(&action);
        assert_eq!(out.status.code(), Some(4), "{action:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[tokio::test]
async fn bad_hook_input_and_a_missing_coordinator_never_block_claude_code() {
    let b = Baton::start();
    let good = json!({ "session_id": "s-1", "hook_event_name": "UserPromptSubmit", "prompt": "hi", "cwd": b.repo });
    for input in [&b""[..], b"{\"session_id\": \"abc\", \"hook_eve", b"not json", b"{}", b"[1,2]"] {
        let (out, took) = hook(&b, input, &b.url);
        assert_eq!(out.status.code(), Some(0), "{:?}", String::from_utf8_lossy(input));
        assert!(out.stdout.is_empty(), "nothing on stdout, which Claude Code would read");
        assert!(took < Duration::from_secs(3));
    }
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert!(tasks.is_empty(), "nothing recorded: {tasks:?}");

    // The coordinator is down: give up at once, exit 0.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (out, took) = hook(&b, good.to_string().as_bytes(), &dead);
    assert_eq!(out.status.code(), Some(0));
    assert!(took < Duration::from_secs(3), "{took:?}");

    // And a good one is recorded.
    let (out, _) = hook(&b, good.to_string().as_bytes(), &b.url);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0]["external"], true);
}
