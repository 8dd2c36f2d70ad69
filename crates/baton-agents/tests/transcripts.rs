//! The parsers against real output of the agent CLIs (`tests/transcripts/`,
//! captured offline from the pinned versions; see its README).

use std::path::PathBuf;

use baton_agents::executor::Executor;
use baton_agents::output::{OutputParser, Stream, Verdict};
use baton_core::agent::AgentDef;
use baton_core::event::{EventKind, NewEvent};
use baton_core::model::Usage;

fn transcript(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn transcripts(prefix: &str) -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix) && n.ends_with(".jsonl"))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no {prefix}* transcripts");
    names
}

fn parser(executor: Executor) -> Box<dyn OutputParser> {
    let agent = AgentDef::builtins().into_iter().find(|a| Executor::from(a.executor) == executor).unwrap();
    executor.parser(&agent, Usage::default())
}

/// Every line through a fresh parser: the events, and the verdict.
fn parse(executor: Executor, text: &str) -> (Vec<NewEvent>, Verdict) {
    let mut p = parser(executor);
    let mut events = Vec::new();
    for line in text.lines() {
        let got = p.line(Stream::Stdout, line);
        assert!(!got.is_empty() || line.trim().is_empty() || buffers(executor, line), "line dropped: {line}");
        events.extend(got);
    }
    events.extend(p.finish());
    (events, p.verdict())
}

/// Lines a parser may hold back to join with later ones (streamed text).
fn buffers(executor: Executor, line: &str) -> bool {
    executor == Executor::Gemini && line.contains(r#""type":"message""#)
}

fn kinds(events: &[NewEvent]) -> Vec<EventKind> {
    events.iter().map(|e| e.kind).collect()
}

fn of(events: &[NewEvent], kind: EventKind) -> Vec<&NewEvent> {
    events.iter().filter(|e| e.kind == kind).collect()
}

fn one(events: &[NewEvent], kind: EventKind) -> &NewEvent {
    let found = of(events, kind);
    assert_eq!(found.len(), 1, "one {kind} event expected in {:?}", kinds(events));
    found[0]
}

/// The checks every transcript of a CLI passes: nothing dropped, every event from
/// a JSON line keeps that line, and a line cut in half (truncated JSON) or
/// garbage becomes a raw event instead of an error.
fn every_transcript(executor: Executor, prefix: &str) {
    for name in transcripts(prefix) {
        let text = transcript(&name);
        let (events, _) = parse(executor, &text);
        for e in &events {
            let kept = e.raw.is_some() || (e.kind == EventKind::Raw && e.data["line"].is_string());
            assert!(kept, "{name}: {} event without its raw line: {}", e.kind, e.data);
        }
        let mut p = parser(executor);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let half = &line[..line.char_indices().nth(line.chars().count() / 2).map_or(0, |(i, _)| i)];
            let got = p.line(Stream::Stdout, half);
            assert!(got.iter().all(|e| e.kind == EventKind::Raw), "{name}: truncated line gave {:?}", kinds(&got));
            assert_eq!(got.len(), 1, "{name}: truncated line");
        }
        for garbage in
            ["", "not json at all", "{", "[1,2,3]", "{\"type\":42}", "\u{0}\u{1}binary", "{\"type\":\"unheard_of\"}"]
        {
            let got = p.line(Stream::Stdout, garbage);
            assert!(got.iter().all(|e| e.kind == EventKind::Raw), "{name}: {garbage:?} gave {:?}", kinds(&got));
        }
        let stderr = p.line(Stream::Stderr, "warning: something");
        assert_eq!(kinds(&stderr), [EventKind::Output]);
    }
}

#[test]
fn claude_code_transcripts() {
    every_transcript(Executor::ClaudeCode, "claude-");

    let (events, verdict) = parse(Executor::ClaudeCode, &transcript("claude-stream.jsonl"));
    use EventKind::*;
    assert_eq!(kinds(&events), [Init, Message, ToolCall, ToolResult, Message, Usage, Result]);
    let session = one(&events, Init).data["agent_session_id"].as_str().unwrap().to_owned();
    let call = one(&events, ToolCall);
    assert_eq!(call.data["name"], "Write");
    assert_eq!(call.data["input"]["file_path"], "/tmp/demo/scratch/hello.txt");
    let result = one(&events, ToolResult);
    assert_eq!(result.data["id"], call.data["id"]);
    assert_eq!(result.data["is_error"], false);
    let usage = one(&events, Usage);
    assert_eq!((usage.data["input_tokens"].as_u64(), usage.data["output_tokens"].as_u64()), (Some(3490), Some(24)));
    assert!(usage.data["cost_usd"].as_f64().unwrap() > 0.018);
    let end = one(&events, Result);
    assert_eq!(end.data["agent_session_id"], session.as_str());
    assert_eq!(end.data["text"], "Done: I created hello.txt.");
    assert_eq!(verdict, Verdict::default());

    // The resumed turn keeps the session id.
    let (events, _) = parse(Executor::ClaudeCode, &transcript("claude-stream-resume.jsonl"));
    assert_eq!(one(&events, Result).data["agent_session_id"], session.as_str());

    // The model API answered 400: an error the agent reports, not a fallback case.
    let (events, verdict) = parse(Executor::ClaudeCode, &transcript("claude-stream-error.jsonl"));
    assert!(verdict.reported_error);
    assert!(verdict.error.as_deref().unwrap().contains("400"), "{verdict:?}");
    assert_eq!(verdict.failure, None);
    assert_eq!(one(&events, Result).data["is_error"], true);

    // A tool the permission mode refused: a failed tool result.
    let (events, _) = parse(Executor::ClaudeCode, &transcript("claude-stream-denied.jsonl"));
    assert!(of(&events, ToolResult).iter().all(|r| r.data["is_error"] == true));

    // Signalled mid-run: the init and nothing claiming success.
    for name in ["claude-stream-sigINT.jsonl", "claude-stream-sigTERM.jsonl"] {
        let (events, _) = parse(Executor::ClaudeCode, &transcript(name));
        assert_eq!(kinds(&events), [Init], "{name}");
    }
    let (_, verdict) = parse(Executor::ClaudeCode, &transcript("claude-stream-maxturns.jsonl"));
    assert_eq!(verdict.error.as_deref(), Some("error_max_turns"));
    let (events, _) = parse(Executor::ClaudeCode, &transcript("claude-stream-mcp.jsonl"));
    assert!(one(&events, ToolCall).data["name"].as_str().unwrap().starts_with("mcp__"));
}

#[test]
fn codex_transcripts() {
    every_transcript(Executor::Codex, "codex-");
    use EventKind::*;
    let (events, verdict) = parse(Executor::Codex, &transcript("codex-stream.jsonl"));
    let thread = one(&events, Init).data["agent_session_id"].as_str().unwrap().to_owned();
    let call = one(&events, ToolCall);
    assert_eq!(call.data["name"], "shell");
    assert!(call.data["input"]["command"].as_str().unwrap().contains("hello.txt"));
    assert_eq!(one(&events, ToolResult).data["is_error"], false);
    assert_eq!(one(&events, Message).data["text"], "Done: created hello.txt.");
    let usage = one(&events, Usage);
    assert_eq!((usage.data["input_tokens"].as_u64(), usage.data["output_tokens"].as_u64()), (Some(200), Some(20)));
    let end = one(&events, Result);
    assert_eq!(end.data["agent_session_id"], thread.as_str());
    assert_eq!(end.data["text"], "Done: created hello.txt.");
    assert_eq!(verdict, Verdict::default());

    // Codex reports usage for the whole thread: a resumed turn counts only what is new.
    let agent = AgentDef::builtins().into_iter().find(|a| a.name == "codex").unwrap();
    let counted = baton_core::model::Usage { input_tokens: 200, output_tokens: 20, cost_usd: 0.0 };
    let mut p = Executor::Codex.parser(&agent, counted);
    let events: Vec<NewEvent> =
        transcript("codex-stream-resume.jsonl").lines().flat_map(|l| p.line(Stream::Stdout, l)).collect();
    let usage = one(&events, Usage);
    assert_eq!((usage.data["input_tokens"].as_u64(), usage.data["output_tokens"].as_u64()), (Some(200), Some(20)));
    assert_eq!(one(&events, Result).data["agent_session_id"], thread.as_str());

    let (events, verdict) = parse(Executor::Codex, &transcript("codex-stream-error.jsonl"));
    assert!(verdict.reported_error);
    assert!(verdict.error.as_deref().unwrap().contains("scripted bad request"));
    assert_eq!(one(&events, Result).data["is_error"], true);
    let (events, _) = parse(Executor::Codex, &transcript("codex-stream-sigTERM.jsonl"));
    assert!(of(&events, Result).is_empty());
}

#[test]
fn gemini_transcripts() {
    every_transcript(Executor::Gemini, "gemini-stream");
    use EventKind::*;
    let (events, verdict) = parse(Executor::Gemini, &transcript("gemini-stream.jsonl"));
    assert_eq!(kinds(&events), [Init, Message, ToolCall, ToolResult, Message, Usage, Result]);
    let session = one(&events, Init).data["agent_session_id"].as_str().unwrap().to_owned();
    let call = one(&events, ToolCall);
    assert_eq!(call.data["name"], "write_file");
    assert_eq!(call.data["input"]["content"], "hello from fake gemini\n");
    // The streamed chunks make one message, which keeps every chunk's line.
    let reply = of(&events, Message)[1];
    assert_eq!(reply.data["text"], "Done: created hello.txt.");
    assert!(reply.raw.as_deref().unwrap().lines().count() >= 1);
    let end = one(&events, Result);
    assert_eq!(end.data["agent_session_id"], session.as_str());
    assert_eq!(verdict, Verdict::default());

    // Gemini reports tokens but no money: the definition's prices give the cost.
    let mut agent = AgentDef::builtins().into_iter().find(|a| a.name == "gemini").unwrap();
    agent.pricing = Some(baton_core::agent::Pricing { input_per_mtok: 1.25, output_per_mtok: 10.0 });
    let mut p = Executor::Gemini.parser(&agent, baton_core::model::Usage::default());
    let events: Vec<NewEvent> =
        transcript("gemini-stream.jsonl").lines().flat_map(|l| p.line(Stream::Stdout, l)).collect();
    let cost = one(&events, Usage).data["cost_usd"].as_f64().unwrap();
    assert!((cost - (300.0 * 1.25 + 30.0 * 10.0) / 1e6).abs() < 1e-12, "{cost}");
}

#[test]
fn failures_a_fallback_agent_can_avoid_are_recognised() {
    use baton_agents::output::{failure_of_status, failure_of_text};
    use baton_core::api::FailureKind;
    assert_eq!(failure_of_status(401), Some(FailureKind::Credentials));
    assert_eq!(failure_of_status(529), Some(FailureKind::Overloaded));
    assert_eq!(failure_of_status(400), None);
    assert_eq!(failure_of_text("API Error: 401 invalid x-api-key"), Some(FailureKind::Credentials));
    assert_eq!(failure_of_text("Overloaded"), Some(FailureKind::Overloaded));
    assert_eq!(failure_of_text("API Error: 400 scripted bad request"), None);
}
