//! The real agent CLIs — Claude Code, Codex, Gemini, and Claude Code over the
//! Agent Client Protocol — installed from npm at pinned versions by
//! `scripts/setup-test-deps` (`testkit/agent-clis`), driven by Baton against the
//! repository's fake model server.

use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_core::api::TaskDetail;
use baton_core::event::{Event, EventKind};
use baton_core::model::RunKind;
use baton_core::status::{RunStatus, TaskStatus};
use baton_testkit::{FakeModel, Script, Step};
use serde_json::{Value, json};

use crate::harness::{Baton, assert_no_processes};

/// How long a real CLI may take for a turn on a busy 2-core machine.
pub(crate) const TURN: Duration = Duration::from_secs(120);

/// Where `scripts/setup-test-deps` installed the CLIs.
pub(crate) fn clis() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/agent-clis/node_modules/.bin");
    assert!(
        dir.join("claude").exists(),
        "the agent CLIs are not installed in testkit/agent-clis: run scripts/setup-test-deps"
    );
    dir.canonicalize().unwrap()
}

fn testkit(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit").join(file).canonicalize().unwrap().display().to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cli {
    Claude,
    Codex,
    Gemini,
    /// Claude Code through `claude-agent-acp`.
    ClaudeAcp,
}

impl Cli {
    /// A definition of agent `name` running this CLI against the fake model at
    /// `url`, with a home of its own under `home` (nothing of the user's is read).
    pub(crate) fn def(self, name: &str, url: &str, home: &Path) -> Value {
        std::fs::create_dir_all(home).unwrap();
        let bin = |program: &str| clis().join(program).display().to_string();
        let home_s = home.display().to_string();
        let prices = json!({ "input_per_mtok": 1.25, "output_per_mtok": 10.0 });
        match self {
            Cli::Claude => json!({
                "name": name, "executor": "claude-code", "command": [bin("claude")],
                "env": {
                    "HOME": home_s, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-fake",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
                },
            }),
            Cli::Codex => {
                let config = format!(
                    "model = \"fake-model\"\nmodel_provider = \"fake\"\n\n[model_providers.fake]\nname = \"fake\"\n\
                     base_url = \"{url}/v1\"\nwire_api = \"responses\"\nenv_key = \"FAKE_OPENAI_KEY\"\n\
                     request_max_retries = 0\nstream_max_retries = 0\n\n[analytics]\nenabled = false\n"
                );
                std::fs::write(home.join("config.toml"), config).unwrap();
                json!({
                    // No permission mode: inside Baton's sandbox, Codex's own is off.
                    "name": name, "executor": "codex", "command": [bin("codex")], "pricing": prices,
                    "env": { "HOME": home_s, "CODEX_HOME": home_s, "FAKE_OPENAI_KEY": "sk-fake" },
                })
            }
            Cli::Gemini => {
                std::fs::create_dir_all(home.join(".gemini")).unwrap();
                std::fs::write(
                    home.join(".gemini/settings.json"),
                    r#"{"security":{"auth":{"selectedType":"gemini-api-key"}}}"#,
                )
                .unwrap();
                json!({
                    "name": name, "executor": "gemini", "command": [bin("gemini")], "pricing": prices,
                    "env": { "HOME": home_s, "GOOGLE_GEMINI_BASE_URL": url, "GEMINI_API_KEY": "fake-key" },
                })
            }
            Cli::ClaudeAcp => json!({
                "name": name, "executor": "acp", "command": [bin("claude-agent-acp")],
                "env": {
                    "HOME": home_s, "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": "sk-fake",
                    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CODE_MAX_RETRIES": "0",
                    // claude-agent-acp runs Claude Code without permission prompts,
                    // which Claude Code refuses as root outside a sandbox.
                    "IS_SANDBOX": "1",
                },
            }),
        }
    }
}

/// A coordinator with agent `worker` running `cli` against a fake model that
/// follows `steps`.
async fn setup(cli: Cli, steps: Vec<Step>) -> (Baton, FakeModel) {
    let fake = FakeModel::start(Script::new(steps)).await.unwrap();
    let b = Baton::start();
    b.agent_def(cli.def("worker", &fake.url, &b.dir.path().join("home"))).await;
    (b, fake)
}

pub(crate) async fn finished(b: &Baton, id: &str, runs: usize) -> TaskDetail {
    b.wait_within(TURN, id, "the turn to end", |t| {
        t.runs.len() == runs && t.runs.iter().all(|r| r.status.is_finished()) && t.task.status.is_finished()
    })
    .await
}

pub(crate) fn find(events: &[Event], kind: EventKind, what: impl Fn(&Event) -> bool) -> Option<&Event> {
    events.iter().find(|e| e.kind == kind && what(e))
}

pub(crate) fn dump(events: &[Event]) -> String {
    events.iter().map(|e| format!("{} {}\n", e.kind, e.data)).collect()
}

/// A task per CLI end to end: a file written through the CLI's own tool lands on
/// the task's branch, the events are normalised (the raw line kept), the cost
/// and the agent's session id are recorded; then a resume continues the same
/// conversation in the same worktree.
async fn end_to_end(cli: Cli) {
    let (b, fake) = setup(
        cli,
        vec![
            Step::write("hello.txt", "hello from the agent\n"),
            Step::text("I wrote hello.txt."),
            Step::bash("cat hello.txt > copy.txt"),
            Step::text("I copied it."),
        ],
    )
    .await;
    let id = b.task(json!({ "prompt": "Write hello.txt", "agent": "worker", "title": "greet" })).await;
    let t = finished(&b, &id, 1).await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}\n{}", t.task.reason, dump(&events));
    let branch = t.task.git.branch.clone().expect("a branch");
    assert_eq!(b.sh(&format!("git show {branch}:hello.txt")), "hello from the agent");
    assert!(!b.repo.join("hello.txt").exists(), "the lead's checkout is untouched");

    let call = find(&events, EventKind::ToolCall, |e| e.data["input"].to_string().contains("hello.txt"))
        .unwrap_or_else(|| panic!("no tool call writing hello.txt:\n{}", dump(&events)));
    assert!(call.data["name"].as_str().is_some_and(|n| !n.is_empty()));
    if cli != Cli::ClaudeAcp {
        assert!(call.raw.as_deref().is_some_and(|r| r.contains("hello.txt")), "the raw line is kept: {call:?}");
    }
    let done = find(&events, EventKind::ToolResult, |e| e.data["id"] == call.data["id"]).expect("its result");
    assert_eq!(done.data["is_error"], false, "{}", dump(&events));
    assert!(find(&events, EventKind::Message, |e| e.data["role"] == "assistant").is_some());
    assert!(find(&events, EventKind::Usage, |_| true).is_some(), "{}", dump(&events));
    assert!(t.task.usage.cost_usd > 0.0, "cost recorded: {:?}", t.task.usage);
    if cli != Cli::ClaudeAcp {
        assert!(t.task.usage.input_tokens > 0 && t.task.usage.output_tokens > 0, "{:?}", t.task.usage);
    }
    assert_eq!(t.task.result.as_deref(), Some("I wrote hello.txt."));
    let agent_session = t.sessions[0].agent_session_id.clone().expect("the agent's session id");
    let first_cost = t.task.usage.cost_usd;

    let out = b.cli(&["resume", &id, "Now copy it to copy.txt"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = finished(&b, &id, 2).await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}\n{}", t.task.reason, dump(&events));
    assert_eq!(t.runs[1].kind, RunKind::Resume);
    assert_eq!(t.sessions.len(), 1, "the same session");
    assert_eq!(t.sessions[0].agent_session_id.as_deref(), Some(agent_session.as_str()), "the same conversation");
    assert_eq!(b.sh(&format!("git show {branch}:copy.txt")), "hello from the agent");
    assert_eq!(t.task.result.as_deref(), Some("I copied it."));
    assert!(t.task.usage.cost_usd > first_cost, "the second turn cost more: {:?}", t.task.usage);
    // The model saw the first turn again: the CLI resumed its own conversation.
    let last = fake.requests().into_iter().rev().find(|r| r["path"] != "/").expect("requests");
    assert!(last["body"].to_string().contains("Write hello.txt"), "the resumed turn lacks the first prompt");

    let costs: Value = b.client.get("/api/costs").await.unwrap();
    assert!(costs["agents"]["worker"]["cost_usd"].as_f64().unwrap() >= t.task.usage.cost_usd - 1e-9, "{costs}");
    assert!(costs["total"]["cost_usd"].as_f64().unwrap() > 0.0, "{costs}");

    // It worked in Baton's sandbox, and its work lands.
    let isolation = t.task.isolation.expect("the run says how it was isolated");
    assert_eq!(isolation.kind, baton_core::sandbox::SandboxKind::Bubblewrap, "{isolation}");
    let out = b.cli(&["merge", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.sh("git show main:copy.txt"), "hello from the agent");
}

#[tokio::test]
async fn claude_code_end_to_end() {
    end_to_end(Cli::Claude).await;
}

#[tokio::test]
async fn codex_end_to_end() {
    end_to_end(Cli::Codex).await;
}

#[tokio::test]
async fn gemini_end_to_end() {
    end_to_end(Cli::Gemini).await;
}

#[tokio::test]
async fn acp_claude_agent_end_to_end() {
    end_to_end(Cli::ClaudeAcp).await;
}

/// A stop while the agent runs a shell command through its tool: the task is
/// cancelled and no process of it is left, the command included.
async fn stop_mid_tool_call(cli: Cli) {
    let (b, _fake) = setup(cli, vec![Step::bash("sleep 300; echo never > late.txt")]).await;
    let id = b.task(json!({ "prompt": "Wait a while", "agent": "worker" })).await;
    let start = std::time::Instant::now();
    loop {
        let events = b.events(&id).await;
        if find(&events, EventKind::ToolCall, |_| true).is_some()
            && crate::harness::processes_of_task(&id)
                .iter()
                .any(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("sleep")))
        {
            break;
        }
        assert!(start.elapsed() < TURN, "the tool call never started:\n{}", dump(&events));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let out = b.cli(&["stop", &id]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = b.wait_within(TURN, &id, "cancelled", |t| t.task.status == TaskStatus::Cancelled).await;
    assert_eq!(t.runs[0].status, RunStatus::Stopped);
    assert_no_processes(&id).await;
}

#[tokio::test]
async fn claude_code_stops_mid_tool_call() {
    stop_mid_tool_call(Cli::Claude).await;
}

#[tokio::test]
async fn codex_stops_mid_tool_call() {
    stop_mid_tool_call(Cli::Codex).await;
}

#[tokio::test]
async fn gemini_stops_mid_tool_call() {
    stop_mid_tool_call(Cli::Gemini).await;
}

#[tokio::test]
async fn acp_stops_mid_tool_call() {
    stop_mid_tool_call(Cli::ClaudeAcp).await;
}

/// The model API refuses a request: the task fails with the provider's message.
async fn api_error(cli: Cli, status: u16) {
    let (b, _fake) = setup(cli, vec![Step::error(status, "scripted refusal")]).await;
    let id = b.task(json!({ "prompt": "Try", "agent": "worker" })).await;
    let t = b
        .wait_within(TURN, &id, "the first run to end", |t| {
            t.runs.first().is_some_and(|r| r.status.is_finished()) && t.task.status != TaskStatus::Running
        })
        .await;
    let events = b.events(&id).await;
    let error = t.runs[0].error.clone().unwrap_or_default();
    assert_eq!(t.runs[0].status, RunStatus::Failed, "{}", dump(&events));
    // A 400 is the request's fault: the provider's words are passed on. A 5xx
    // each CLI words its own way ("high demand", "internal server error"); when
    // its words say the provider is overloaded, the governor tries again later.
    if status == 400 {
        assert_eq!(t.task.status, TaskStatus::Failed, "{}", dump(&events));
        let reason = t.task.reason.clone().unwrap_or_default();
        assert!(reason.contains("scripted refusal"), "the reason names the API error: {reason}\n{}", dump(&events));
    } else if t.task.status == TaskStatus::Queued {
        assert_eq!(t.task.throttled, 1, "{}", dump(&events));
        assert!(t.runs.get(1).is_some_and(|r| r.not_before.is_some()), "{}", dump(&events));
        b.client.post::<Value, _>(&format!("/api/tasks/{id}/stop"), &json!({})).await.unwrap();
        b.wait_status(&id, TaskStatus::Cancelled).await;
    } else {
        assert_eq!(t.task.status, TaskStatus::Failed, "{}", dump(&events));
        assert!(!error.is_empty(), "{}", dump(&events));
    }
    assert_no_processes(&id).await;
}

#[tokio::test]
async fn claude_code_api_errors_fail_the_task() {
    api_error(Cli::Claude, 400).await;
    api_error(Cli::Claude, 500).await;
}

#[tokio::test]
async fn codex_api_errors_fail_the_task() {
    api_error(Cli::Codex, 400).await;
    api_error(Cli::Codex, 500).await;
}

#[tokio::test]
async fn gemini_api_errors_fail_the_task() {
    api_error(Cli::Gemini, 400).await;
}

/// Output no parser understands — garbage, JSON cut off mid-line — is kept as raw
/// events, and an agent that exits before printing anything fails with its code.
#[tokio::test]
async fn garbage_truncated_json_and_silent_exits_are_reported_not_fatal() {
    let b = Baton::start();
    for executor in ["claude-code", "codex", "gemini"] {
        let name = format!("broken-{executor}");
        let script =
            r#"echo 'this is not JSON'; printf '{"type":"assistant","message":{"content":[{"type":"te'; exit 1"#;
        b.agent_def(json!({ "name": name, "executor": executor, "command": ["sh", "-c", script, "sh"] })).await;
        let id = b.task(json!({ "prompt": "x", "agent": name })).await;
        let t = b.wait_within(TURN, &id, "failed", |t| t.task.status == TaskStatus::Failed).await;
        let events = b.events(&id).await;
        let raw =
            |text: &str| find(&events, EventKind::Raw, |e| e.data["line"].as_str().is_some_and(|l| l.contains(text)));
        assert!(raw("this is not JSON").is_some(), "{executor}: garbage kept\n{}", dump(&events));
        assert!(
            raw(r#"{"type":"assistant","message""#).is_some(),
            "{executor}: truncated JSON kept\n{}",
            dump(&events)
        );
        assert!(
            t.task.reason.as_deref().unwrap_or("").contains("exited with code 1"),
            "{executor}: {:?}",
            t.task.reason
        );

        let name = format!("silent-{executor}");
        b.agent_def(json!({ "name": name, "executor": executor, "command": ["sh", "-c", "exit 7", "sh"] })).await;
        let id = b.task(json!({ "prompt": "x", "agent": name })).await;
        let t = b.wait_within(TURN, &id, "failed", |t| t.task.status == TaskStatus::Failed).await;
        assert!(
            t.task.reason.as_deref().unwrap_or("").contains("exited with code 7"),
            "{executor}: {:?}",
            t.task.reason
        );
    }
}

/// A task for an agent whose CLI is not installed fails at once, saying how to
/// install it; with a fallback agent it moves there, and the switch is recorded.
#[tokio::test]
async fn a_missing_cli_fails_at_once_or_falls_back() {
    let b = Baton::start();
    b.agent_def(json!({ "name": "nocodex", "executor": "codex", "command": ["/nonexistent/bin/codex"] })).await;
    let id = b.task(json!({ "prompt": "x", "agent": "nocodex" })).await;
    let t = b.wait_status(&id, TaskStatus::Failed).await;
    let reason = t.task.reason.unwrap();
    assert!(reason.contains("/nonexistent/bin/codex is not installed"), "{reason}");
    assert!(reason.contains("npm install -g @openai/codex"), "{reason}");

    b.agent("backup", "echo rescued > rescued.txt; echo done").await;
    b.agent_def(json!({
        "name": "primary", "executor": "gemini", "command": ["/nonexistent/bin/gemini"], "fallback": ["backup"],
    }))
    .await;
    let id = b.task(json!({ "prompt": "x", "agent": "primary" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.task.agent, "backup");
    assert_eq!(t.task.agent_switches.len(), 1);
    let switch = &t.task.agent_switches[0];
    assert_eq!((switch.from.as_str(), switch.to.as_str()), ("primary", "backup"));
    assert!(switch.reason.contains("CLI could not start"), "{}", switch.reason);
    assert_eq!(t.task.retries, 0, "a switch is not a retry");
    assert_eq!(t.sessions.len(), 2);
    let branch = t.task.git.branch.unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:rescued.txt")), "rescued");
}

/// A provider that rejects the credentials (an expired login) sends the task to
/// the fallback agent, on another provider.
#[tokio::test]
async fn rejected_credentials_switch_to_the_fallback_agent() {
    let broken = FakeModel::start(Script::new(vec![Step::error(401, "invalid x-api-key")])).await.unwrap();
    let working =
        FakeModel::start(Script::new(vec![Step::write("ok.txt", "fine\n"), Step::text("Done.")])).await.unwrap();
    let b = Baton::start();
    let mut primary = Cli::Claude.def("primary", &broken.url, &b.dir.path().join("home-a"));
    primary["fallback"] = json!(["secondary"]);
    b.agent_def(primary).await;
    b.agent_def(Cli::Codex.def("secondary", &working.url, &b.dir.path().join("home-b"))).await;
    let id = b.task(json!({ "prompt": "Write ok.txt", "agent": "primary" })).await;
    let t = b
        .wait_within(TURN, &id, "done", |t| {
            t.task.status.is_finished() && t.runs.iter().all(|r| r.status.is_finished())
        })
        .await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}\n{}", t.task.reason, dump(&events));
    assert_eq!(t.task.agent, "secondary");
    let switch = &t.task.agent_switches[0];
    assert_eq!((switch.from.as_str(), switch.to.as_str()), ("primary", "secondary"));
    assert!(switch.reason.contains("credentials"), "{}", switch.reason);
    assert!(find(&events, EventKind::Log, |e| e.data["agent_switch"].is_object()).is_some(), "the switch is logged");
    assert_eq!(b.sh(&format!("git show {}:ok.txt", t.task.git.branch.unwrap())), "fine");
}

/// An ACP agent that asks for files outside its worktree is refused; inside it,
/// it is served.
#[tokio::test]
async fn an_acp_agent_cannot_reach_outside_its_worktree() {
    let b = Baton::start();
    b.agent_def(json!({ "name": "nosy", "executor": "acp", "command": ["node", testkit("fake-acp-agent.mjs")] })).await;
    let id = b.task(json!({ "prompt": "Look around", "agent": "nosy" })).await;
    let t = b.wait_within(TURN, &id, "done", |t| t.task.status.is_finished()).await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}\n{}", t.task.reason, dump(&events));
    let result = t.task.result.clone().unwrap();
    assert!(result.contains("read /etc/hostname: refused"), "{result}");
    assert!(result.contains("write ../escape.txt: refused"), "{result}");
    assert!(result.contains("write inside.txt: ok"), "{result}");
    let worktree = PathBuf::from(t.task.git.worktree.clone().unwrap());
    assert!(!worktree.parent().unwrap().join("escape.txt").exists(), "nothing was written outside");
    let refusals = events
        .iter()
        .filter(|e| {
            e.kind == EventKind::Error && e.data["message"].as_str().unwrap_or("").contains("outside the worktree")
        })
        .count();
    assert_eq!(refusals, 2, "{}", dump(&events));
    assert_eq!(b.sh(&format!("git show {}:inside.txt", t.task.git.branch.unwrap())), "inside");
}

/// The host dies mid-run (Baton, the supervisor and the agent killed with
/// SIGKILL): after the restart the coordinator resumes the agent's own session,
/// so the conversation goes on where it was instead of starting over.
#[tokio::test]
async fn a_run_lost_with_its_host_is_resumed_through_the_agents_session() {
    let (mut b, fake) = setup(
        Cli::Claude,
        vec![Step::write("hello.txt", "before the crash\n"), Step::bash("sleep 300"), Step::text("Recovered.")],
    )
    .await;
    let id = b.task(json!({ "prompt": "Write hello.txt, then wait", "agent": "worker" })).await;
    let start = std::time::Instant::now();
    while !crate::harness::processes_of_task(&id)
        .iter()
        .any(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("sleep\u{0}300")))
    {
        assert!(start.elapsed() < TURN, "the agent never reached its second tool call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let agent_session = b.get(&id).await.sessions[0].agent_session_id.clone().expect("the agent's session id");
    b.kill9();
    for entry in std::fs::read_dir(b.data.join("runs")).unwrap().flatten() {
        if let Some(pid) =
            std::fs::read_to_string(entry.path().join("supervisor.pid")).ok().and_then(|s| s.trim().parse().ok())
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    for pid in crate::harness::processes_of_task(&id) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    b.restart();
    let t = finished(&b, &id, 2).await;
    let events = b.events(&id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}\n{}", t.task.reason, dump(&events));
    assert_eq!(t.sessions.len(), 1, "the same session, not a new start");
    assert_eq!(t.runs[0].status, RunStatus::Lost);
    assert_eq!(t.runs[1].kind, RunKind::Resume);
    assert_eq!(t.sessions[0].agent_session_id.as_deref(), Some(agent_session.as_str()));
    assert_eq!(t.task.result.as_deref(), Some("Recovered."));
    let last = fake.requests().into_iter().rev().find(|r| r["path"] != "/").unwrap();
    assert!(last["body"].to_string().contains("interrupted"), "the agent is told what happened");
    assert_eq!(b.sh(&format!("git show {}:hello.txt", t.task.git.branch.unwrap())), "before the crash");
}

/// A person's follow-up to a real Claude Code while it works: queued, then, when
/// its turn ends, the next turn of the same conversation — the model sees it.
#[tokio::test]
async fn claude_code_gets_a_follow_up_queued_while_it_worked() {
    let (b, fake) = setup(
        Cli::Claude,
        vec![
            Step::bash("while [ ! -f go ]; do sleep 0.1; done; echo waited"),
            Step::text("First turn done."),
            Step::text("Noted the follow-up."),
        ],
    )
    .await;
    let id = b.task(json!({ "prompt": "Wait for the go file", "agent": "worker" })).await;
    let t = b
        .wait_within(TURN, &id, "the tool call running", |t| {
            t.task.status == TaskStatus::Running && t.task.git.worktree.is_some()
        })
        .await;
    let (status, queued) =
        b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "Also mention the weather" })).await;
    assert_eq!((status, queued["state"].as_str()), (201, Some("queued")), "{queued}");
    std::fs::write(Path::new(&t.task.git.worktree.unwrap()).join("go"), "").unwrap();
    let t = finished(&b, &id, 2).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs[1].kind, RunKind::Resume);
    assert_eq!(t.task.result.as_deref(), Some("Noted the follow-up."));
    let last = fake.requests().into_iter().rev().find(|r| r["path"] != "/").expect("requests");
    let body = last["body"].to_string();
    assert!(body.contains("Also mention the weather") && body.contains("Wait for the go file"), "{body}");
}

/// A real Claude Code with memory: its blocks reach the model through the
/// SessionStart hook at the start, and again, as they are then, after a
/// compaction (`/compact`, a SessionStart with source `compact`).
#[tokio::test]
async fn claude_code_sees_its_memory_at_start_and_after_a_compaction() {
    // Enough of a conversation to compact: tool calls and their results.
    let fake = FakeModel::start(Script::new(vec![
        Step::bash("echo one"),
        Step::bash("echo two"),
        Step::text("First turn done."),
        Step::text("Summary of the conversation so far."),
        Step::text("Third turn done."),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    let mut def = Cli::Claude.def("worker", &fake.url, &b.dir.path().join("home"));
    def["memory"] = json!(true);
    b.agent_def(def).await;
    let put = |text: &str| b.put("/api/agents/worker/memory/notes", json!({ "text": text }));
    assert_eq!(put("The staging database is called kestrel.").await.0, 200);
    let id = b.task(json!({ "prompt": "Say hello", "agent": "worker" })).await;
    let t = finished(&b, &id, 1).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let first = fake.requests().into_iter().rev().find(|r| r["path"] == "/v1/messages").expect("a request");
    assert!(first["body"].to_string().contains("kestrel"), "the block reached the model: {}", first["body"]);
    assert_eq!(put("The staging database moved to osprey.").await.0, 200);
    let before = fake.requests().len();
    b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "/compact" })).await;
    let t = finished(&b, &id, 2).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "Which database?" })).await;
    let t = finished(&b, &id, 3).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let events = b.events(&id).await;
    let given: Vec<String> = events
        .iter()
        .filter_map(|e| e.data["message"].as_str().filter(|m| m.starts_with("memory given")).map(String::from))
        .collect();
    let asked: Vec<String> = fake
        .requests()
        .iter()
        .filter(|r| r["path"] == "/v1/messages")
        .map(|r| {
            let m = &r["body"]["messages"];
            let last = m.as_array().and_then(|a| a.last()).cloned().unwrap_or_default();
            format!(
                "{} messages; last: {}",
                m.as_array().map_or(0, Vec::len),
                &last.to_string().chars().take(400).collect::<String>()
            )
        })
        .collect();
    assert!(
        given.iter().any(|m| m.ends_with("(compact)")),
        "a SessionStart after the compaction: {given:?}\n{asked:#?}\n{}",
        dump(&events)
    );
    let last = fake.requests().into_iter().rev().find(|r| r["path"] == "/v1/messages").unwrap();
    let body = last["body"].to_string();
    assert!(body.contains("osprey"), "the memory as it is now reached the model after the compaction: {body}");
    assert!(fake.requests().len() > before);
}

/// A real Claude Code as a project's lead, idle: no process and not one model
/// call while it waits (20 s here; `BATON_TEST_LEAD_IDLE_S=600` waits the ten
/// minutes the issue names), then a person's message wakes it at once.
#[tokio::test]
async fn an_idle_claude_code_lead_makes_no_model_calls_until_woken() {
    let fake = FakeModel::start(Script::new(vec![
        Step::text("Nothing to hand out yet; resting."),
        Step::text("Woken by a person."),
    ]))
    .await
    .unwrap();
    let b = Baton::start();
    let mut def = Cli::Claude.def("captain", &fake.url, &b.dir.path().join("home"));
    def["memory"] = json!(true);
    def["delegates_to"] = json!(["*"]);
    b.agent_def(def).await;
    let (s, started) = b.post("/api/projects/repo/lead/start", json!({ "agent": "captain" })).await;
    assert_eq!(s, 200, "{started}");
    let task = started["task_id"].as_str().unwrap().to_owned();
    let t = finished(&b, &task, 1).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let calls = || fake.requests().iter().filter(|r| r["path"] == "/v1/messages").count();
    let before = calls();
    assert!(before >= 1);
    let idle: u64 = std::env::var("BATON_TEST_LEAD_IDLE_S").ok().and_then(|s| s.parse().ok()).unwrap_or(20);
    tokio::time::sleep(Duration::from_secs(idle)).await;
    assert_eq!(calls(), before, "no model call in {idle} s of idling");
    assert!(crate::harness::processes_of_task(&task).is_empty(), "no process while it rests");
    let l: Value = b.client.get("/api/projects/repo/lead").await.unwrap();
    assert_eq!((l["state"].as_str(), l["pid"].as_i64()), (Some("idle"), None), "{l}");
    b.post(&format!("/api/tasks/{task}/messages"), json!({ "text": "Anything to do?" })).await;
    let t = finished(&b, &task, 2).await;
    assert_eq!(t.task.result.as_deref(), Some("Woken by a person."));
    assert!(calls() > before);
}

/// A real Claude Code that lacks a permission asks for it in its Slack thread:
/// Allow → its command runs; Deny → it does not; no answer → its policy
/// (deny) decides. Each answer is on the task's timeline with who gave it.
#[tokio::test]
async fn claude_codes_permission_prompts_are_answered_from_its_slack_thread() {
    use baton_testkit::slack::{self, FakeSlack};
    // Each task is a conversation of its own: the command, then an answer.
    let fake = FakeModel::start(Script::new(vec![Step::bash("touch made.txt"), Step::text("Done.")])).await.unwrap();
    let chat = FakeSlack::start("xoxb-fake").await;
    let config = format!(
        "[chat.slack]\nbot_token_env = \"SLACK_BOT\"\nsigning_secret_env = \"SLACK_SECRET\"\napi_url = \"{}\"\nchannel = \"C1\"\nagent = \"asker\"\noperators = [\"U1\"]\n",
        chat.api_url
    );
    let b = Baton::start_custom(&[], &[("SLACK_BOT", "xoxb-fake"), ("SLACK_SECRET", "sek")], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    });
    let mut def = Cli::Claude.def("asker", &fake.url, &b.dir.path().join("home"));
    def["tools"] = json!(["Read"]);
    def["ask_permission"] = json!(true);
    def["permission_timeout_s"] = json!(8);
    // Not acceptEdits, which lets file commands such as touch through.
    def["permission_mode"] = json!("default");
    b.agent_def(def).await;
    for (n, (answer, file)) in
        [(Some("allow"), "allowed"), (Some("deny"), "denied"), (None, "unanswered")].into_iter().enumerate()
    {
        let ts = format!("1700000{n}00.000100");
        let mention = slack::event(&format!("Ev{n}"), "C1", "U1", &ts, None, &format!("<@UB> make {file}"), true);
        let (s, _) = slack::send(
            &b.url,
            "/api/chat/slack/events",
            "sek",
            "application/json",
            mention.to_string().as_bytes(),
            0,
            None,
        )
        .await;
        assert_eq!(s, 200);
        let start = std::time::Instant::now();
        let prompt = loop {
            let found = chat.posts().into_iter().filter(|p| p.body.to_string().contains("\"allow\"")).nth(n);
            if let Some(p) = found {
                break p;
            }
            if start.elapsed() > Duration::from_secs(15) {
                let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
                let events = b.events(tasks[0]["id"].as_str().unwrap()).await;
                let posts: Vec<String> =
                    chat.posts().iter().map(|p| format!("{} {:?} {}", p.kind, p.thread_ts, p.text)).collect();
                panic!("no permission prompt in the thread: {posts:#?}\n{}", dump(&events));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(prompt.thread_ts.as_deref(), Some(ts.as_str()), "in the task's thread");
        assert!(prompt.text.contains("Bash"), "{}", prompt.text);
        let perm = prompt.body["blocks"][1]["elements"][0]["value"].as_str().unwrap().to_owned();
        if let Some(action) = answer {
            let form =
                slack::click("C1", "U1", &prompt.ts, action, &perm, &chat.response_url(&perm), &format!("t-{perm}"));
            slack::send(
                &b.url,
                "/api/chat/slack/interactions",
                "sek",
                "application/x-www-form-urlencoded",
                form.as_bytes(),
                0,
                None,
            )
            .await;
        }
        let tasks: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
        let id = tasks.iter().find(|t| t["prompt"].as_str().is_some_and(|p| p.contains(file))).unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let t = finished(&b, &id, 1).await;
        let made = Path::new(t.task.git.worktree.as_deref().unwrap()).join("made.txt").exists();
        assert_eq!(made, answer == Some("allow"), "{file}: {:?}", t.task.result);
        let events = b.events(&id).await;
        let said = match answer {
            Some("allow") => "permission for Bash allowed by slack:U1",
            Some(_) => "permission for Bash denied by slack:U1",
            None => "no answer in time: the policy denied",
        };
        assert!(
            find(&events, EventKind::Log, |e| e.data["message"].as_str().is_some_and(|m| m.contains(said))).is_some(),
            "{said}\n{}",
            dump(&events)
        );
    }
}
