//! Codex CLI: `codex exec --json -` (the prompt on stdin), `codex exec resume
//! <thread_id> -` for a follow-up turn.
//!
//! Its stream: `thread.started` (the thread id), `turn.started`, `item.started` /
//! `item.updated` / `item.completed` for agent messages, reasoning, command
//! executions, file changes, MCP tool calls and to-do lists, then
//! `turn.completed` with usage (cumulative for the thread) or `turn.failed`.

use std::collections::HashSet;

use baton_core::agent::Pricing;
use baton_core::event::{EventKind, InitData, NewEvent, ResultData};
use baton_core::model::{RunKind, Usage};
use serde_json::{Map, Value, json};

use crate::executor::{Launch, LaunchError, TurnRequest};
use crate::output::{OutputParser, Stream, Verdict, failure_of_text, json_line, raw_event};

/// The command line for a turn.
pub(crate) fn launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent = turn.agent;
    let (program, mut args) = crate::executor::program(agent, "codex");
    args.extend(["exec", "--json", "--skip-git-repo-check"].map(String::from));
    match agent.permission_mode.as_deref() {
        Some("bypassPermissions") | Some("danger-full-access") => {
            args.push("--dangerously-bypass-approvals-and-sandbox".into());
        }
        Some(mode) => args.extend(["--sandbox".into(), mode.to_owned()]),
        // Inside Baton's sandbox, Codex's own would only nest a weaker one.
        None if turn.sandboxed => args.push("--dangerously-bypass-approvals-and-sandbox".into()),
        None => args.extend(["--sandbox".into(), "workspace-write".into()]),
    }
    if let Some(model) = &agent.model {
        args.extend(["--model".into(), model.clone()]);
    }
    // Baton's MCP server, as `baton mcp` over stdio; Codex hands a stdio server
    // only the environment it is told to, so the session's URL and token are
    // passed by name (never written on the command line).
    if crate::executor::wants_baton_mcp(agent) {
        let key = format!("mcp_servers.{}", crate::executor::BATON_MCP);
        let baton = json!(turn.baton.to_string_lossy());
        let vars = json!(crate::executor::SESSION_VARS);
        for setting in
            [format!("{key}.command={baton}"), format!("{key}.args=[\"mcp\"]"), format!("{key}.env_vars={vars}")]
        {
            args.extend(["-c".into(), setting]);
        }
    }
    args.extend(agent.args.iter().cloned());
    if turn.kind == RunKind::Resume
        && let Some(id) = turn.agent_session_id
    {
        args.extend(["resume".into(), id.to_owned()]);
    }
    args.push("-".into());
    let mut prompt = crate::executor::with_system_prompt(turn);
    // The memory: Codex reads AGENTS.md in its home at every turn.
    let files: Vec<_> = crate::executor::memory_file(turn, ".codex/AGENTS.md").into_iter().collect();
    if files.is_empty() {
        prompt = crate::executor::with_memory(turn, prompt);
    }
    Ok(Launch { program, args, env: Default::default(), stdin: Some(prompt), files })
}

/// The parser of Codex's stream.
#[derive(Debug, Default)]
pub struct CodexParser {
    verdict: Verdict,
    pricing: Option<Pricing>,
    /// The thread's usage already counted (Codex reports it cumulatively).
    counted: Usage,
    thread: Option<String>,
    last_message: Option<String>,
    started: HashSet<String>,
}

impl CodexParser {
    /// A parser; `counted` is the usage the session already recorded.
    pub fn new(counted: Usage, pricing: Option<Pricing>) -> Self {
        Self { counted, pricing, ..Default::default() }
    }

    fn events(&mut self, obj: &Map<String, Value>) -> Option<Vec<NewEvent>> {
        Some(match obj.get("type")?.as_str()? {
            "thread.started" => {
                self.thread = obj.get("thread_id").and_then(Value::as_str).map(str::to_owned);
                vec![NewEvent::init(&InitData { agent_session_id: self.thread.clone(), ..Default::default() })]
            }
            "turn.started" => Vec::new(),
            "item.started" | "item.updated" => self.item(obj.get("item")?, false),
            "item.completed" => self.item(obj.get("item")?, true),
            "turn.completed" => self.completed(obj.get("usage").cloned().unwrap_or_default()),
            "turn.failed" => {
                let message =
                    obj.get("error").and_then(|e| e["message"].as_str()).unwrap_or("the turn failed").to_owned();
                self.fail(&message);
                vec![
                    NewEvent::error(message.clone()),
                    NewEvent::result(&ResultData {
                        text: Some(message),
                        is_error: true,
                        agent_session_id: self.thread.clone(),
                        ..Default::default()
                    }),
                ]
            }
            "error" => {
                let message = obj.get("message").and_then(Value::as_str).unwrap_or("error").to_owned();
                self.fail(&message);
                vec![NewEvent::error(message)]
            }
            _ => return None,
        })
    }

    fn fail(&mut self, message: &str) {
        self.verdict.reported_error = true;
        self.verdict.error = Some(message.to_owned());
        self.verdict.failure = self.verdict.failure.or_else(|| failure_of_text(message));
    }

    fn item(&mut self, item: &Value, done: bool) -> Vec<NewEvent> {
        let id = item["id"].as_str().unwrap_or("").to_owned();
        let first = self.started.insert(id.clone());
        let call = |name: &str, input: Value| NewEvent::tool_call(Some(&id), name, input);
        match item["type"].as_str().unwrap_or("") {
            "agent_message" if done => {
                let text = item["text"].as_str().unwrap_or("").to_owned();
                self.last_message = Some(text.clone());
                vec![NewEvent::message("assistant", text)]
            }
            "reasoning" if done => vec![NewEvent::message("thinking", item["text"].as_str().unwrap_or(""))],
            "command_execution" => {
                let mut events = Vec::new();
                if first {
                    events.push(call("shell", json!({ "command": item["command"] })));
                }
                if done {
                    let failed = item["exit_code"].as_i64().is_some_and(|c| c != 0) || item["status"] == "failed";
                    events.push(NewEvent::tool_result(Some(&id), item["aggregated_output"].clone(), failed));
                }
                events
            }
            "file_change" => {
                let mut events = Vec::new();
                if first {
                    events.push(call("file_change", json!({ "changes": item["changes"] })));
                }
                if done {
                    events.push(NewEvent::tool_result(Some(&id), item["status"].clone(), item["status"] == "failed"));
                }
                events
            }
            "mcp_tool_call" => {
                let mut events = Vec::new();
                if first {
                    let name = format!(
                        "{}/{}",
                        item["server"].as_str().unwrap_or("mcp"),
                        item["tool"].as_str().unwrap_or("?")
                    );
                    events.push(call(&name, item["arguments"].clone()));
                }
                if done {
                    let failed = item["status"] == "failed" || !item["error"].is_null();
                    let output = if item["result"].is_null() { item["error"].clone() } else { item["result"].clone() };
                    events.push(NewEvent::tool_result(Some(&id), output, failed));
                }
                events
            }
            "todo_list" if done => {
                vec![NewEvent::new(EventKind::Log, json!({ "message": "plan updated", "items": item["items"] }))]
            }
            "error" if done => vec![NewEvent::new(EventKind::Log, json!({ "message": item["message"] }))],
            _ if done => vec![raw_event(&item.to_string())],
            _ => Vec::new(),
        }
    }

    fn completed(&mut self, usage: Value) -> Vec<NewEvent> {
        let n = |k: &str| usage.get(k).and_then(Value::as_u64).unwrap_or(0);
        let total = Usage { input_tokens: n("input_tokens"), output_tokens: n("output_tokens"), cost_usd: 0.0 };
        let input = total.input_tokens.saturating_sub(self.counted.input_tokens);
        let output = total.output_tokens.saturating_sub(self.counted.output_tokens);
        self.counted.input_tokens = total.input_tokens.max(self.counted.input_tokens);
        self.counted.output_tokens = total.output_tokens.max(self.counted.output_tokens);
        let cost = self.pricing.map_or(0.0, |p| p.cost(input, output));
        vec![
            NewEvent::usage(&Usage { input_tokens: input, output_tokens: output, cost_usd: cost }),
            NewEvent::result(&ResultData {
                text: self.last_message.clone(),
                is_error: false,
                agent_session_id: self.thread.clone(),
                ..Default::default()
            }),
        ]
    }
}

impl OutputParser for CodexParser {
    fn line(&mut self, stream: Stream, line: &str) -> Vec<NewEvent> {
        // A line understood but without news (`turn.started`) is kept raw.
        json_line(stream, line, |obj| self.events(obj).filter(|e| !e.is_empty()))
    }

    fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }
}
