//! Claude Code: `claude -p --output-format stream-json --verbose`, the prompt on
//! stdin, `--resume <session_id>` for a follow-up turn.
//!
//! Its stream has one JSON object per line: `system/init` (the session id), one
//! `assistant` line per content block (text, thinking, tool use), `user` lines with
//! tool results, and a final `result` (text, error flag, cost, usage).

use baton_core::agent::{AgentDef, Pricing};
use baton_core::event::{EventKind, InitData, NewEvent, ResultData};
use baton_core::model::{RunKind, Usage};
use serde_json::{Map, Value, json};

use crate::executor::{Launch, LaunchError, TurnRequest};
use crate::output::{OutputParser, Stream, Verdict, content_text, failure_of_status, failure_of_text, json_line};

/// Tools an unattended Claude Code worker may use when its definition names none.
const DEFAULT_TOOLS: &str = "Bash Edit Write Read Glob Grep NotebookEdit WebFetch WebSearch TodoWrite Task";

/// The command line for a turn.
pub(crate) fn launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent: &AgentDef = turn.agent;
    let (program, mut args) = crate::executor::program(agent, "claude");
    args.extend(["-p", "--output-format", "stream-json", "--verbose"].map(String::from));
    if let Some(model) = &agent.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if !agent.system_prompt.trim().is_empty() {
        args.extend(["--append-system-prompt".into(), agent.system_prompt.clone()]);
    }
    args.extend(["--permission-mode".into(), agent.permission_mode.clone().unwrap_or_else(|| "acceptEdits".into())]);
    let mut tools = if agent.tools.is_empty() { DEFAULT_TOOLS.to_owned() } else { agent.tools.join(" ") };
    let servers = crate::executor::mcp_servers(turn);
    if servers.contains_key(crate::executor::BATON_MCP) && !tools.split(' ').any(|t| t == "mcp__baton") {
        tools.push_str(" mcp__baton");
    }
    args.extend(["--allowedTools".into(), tools]);
    if !agent.disallowed_tools.is_empty() {
        args.extend(["--disallowedTools".into(), agent.disallowed_tools.join(" ")]);
    }
    let mut files = Vec::new();
    if !servers.is_empty() {
        let path = turn.dir.join("mcp.json");
        files.push((path.clone(), json!({ "mcpServers": servers }).to_string()));
        args.extend(["--mcp-config".into(), path.to_string_lossy().into_owned()]);
        // The definition's own servers replace the project's `.mcp.json`.
        if !agent.mcp_servers.is_empty() {
            args.push("--strict-mcp-config".into());
        }
    }
    // Permissions it lacks are asked of people through Baton's MCP server.
    if agent.ask_permission && servers.contains_key(crate::executor::BATON_MCP) {
        args.extend(["--permission-prompt-tool".into(), "mcp__baton__permission_prompt".into()]);
    }
    if let Some(memory) = turn.memory {
        // The memory comes through a SessionStart hook, which Claude Code runs at
        // start, on resume and after a compaction: `baton memory-context` asks the
        // coordinator for it as it is then, or gives the run's copy.
        let (copy, settings) = (turn.dir.join("memory.md"), turn.dir.join("claude-settings.json"));
        let command = format!(
            "{} memory-context --fallback {}",
            quote(&turn.baton.to_string_lossy()),
            quote(&copy.to_string_lossy())
        );
        let hooks = json!({ "hooks": { "SessionStart": [{ "hooks": [{ "type": "command", "command": command }] }] } });
        files.push((copy, memory.to_owned()));
        files.push((settings.clone(), hooks.to_string()));
        args.extend(["--settings".into(), settings.to_string_lossy().into_owned()]);
    }
    if turn.kind == RunKind::Resume
        && let Some(id) = turn.agent_session_id
    {
        args.extend(["--resume".into(), id.to_owned()]);
    }
    args.extend(agent.args.iter().cloned());
    Ok(Launch { program, args, env: Default::default(), stdin: Some(turn.prompt.to_owned()), files })
}

/// A word for the shell, in single quotes.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
}

/// The parser of Claude Code's stream.
#[derive(Debug, Default)]
pub struct ClaudeParser {
    verdict: Verdict,
    pricing: Option<Pricing>,
}

impl ClaudeParser {
    /// A parser; `pricing` is used only when the CLI reports no cost.
    pub fn new(pricing: Option<Pricing>) -> Self {
        Self { verdict: Verdict::default(), pricing }
    }

    fn events(&mut self, obj: &Map<String, Value>) -> Option<Vec<NewEvent>> {
        let s = |k: &str| obj.get(k).and_then(Value::as_str);
        Some(match s("type")? {
            "system" if s("subtype") == Some("init") => vec![NewEvent::init(&InitData {
                agent_session_id: s("session_id").map(str::to_owned),
                model: s("model").map(str::to_owned),
                cwd: s("cwd").map(str::to_owned),
                tools: obj
                    .get("tools")
                    .and_then(Value::as_array)
                    .map_or_else(Vec::new, |t| t.iter().filter_map(Value::as_str).map(str::to_owned).collect()),
            })],
            "system" => vec![NewEvent::new(
                EventKind::Log,
                json!({ "message": format!("claude: {}", s("subtype").unwrap_or("system")), "detail": Value::Object(obj.clone()) }),
            )],
            "assistant" => obj.get("message")?.get("content")?.as_array()?.iter().filter_map(assistant_block).collect(),
            "user" => obj.get("message")?.get("content")?.as_array()?.iter().filter_map(user_block).collect(),
            "result" => self.result(obj),
            _ => return None,
        })
    }

    fn result(&mut self, obj: &Map<String, Value>) -> Vec<NewEvent> {
        let is_error = obj.get("is_error").and_then(Value::as_bool).unwrap_or(false);
        let subtype = obj.get("subtype").and_then(Value::as_str).map(str::to_owned);
        let text = obj.get("result").and_then(Value::as_str).map(str::to_owned);
        let failed = is_error || subtype.as_deref().is_some_and(|s| s != "success");
        if failed {
            self.verdict.reported_error = true;
            self.verdict.error = text.clone().or_else(|| subtype.clone());
            self.verdict.failure = obj
                .get("api_error_status")
                .and_then(Value::as_u64)
                .and_then(failure_of_status)
                .or_else(|| text.as_deref().and_then(failure_of_text));
        }
        let u = obj.get("usage").cloned().unwrap_or_default();
        let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
        let input = n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens");
        let output = n("output_tokens");
        let cost = obj
            .get("total_cost_usd")
            .and_then(Value::as_f64)
            .or_else(|| self.pricing.map(|p| p.cost(input, output)))
            .unwrap_or(0.0);
        let mut events = vec![NewEvent::usage(&Usage { input_tokens: input, output_tokens: output, cost_usd: cost })];
        if let Some(denials) = obj.get("permission_denials").and_then(Value::as_array).filter(|d| !d.is_empty()) {
            let tools: Vec<&str> = denials.iter().filter_map(|d| d["tool_name"].as_str()).collect();
            events.push(NewEvent::log(format!("permission denied for {}", tools.join(", "))));
        }
        events.push(NewEvent::result(&ResultData {
            text,
            is_error: failed,
            agent_session_id: obj.get("session_id").and_then(Value::as_str).map(str::to_owned),
            subtype,
            num_turns: obj.get("num_turns").and_then(Value::as_u64),
            duration_ms: obj.get("duration_ms").and_then(Value::as_u64),
        }));
        events
    }
}

fn assistant_block(block: &Value) -> Option<NewEvent> {
    match block["type"].as_str()? {
        "text" => Some(NewEvent::message("assistant", block["text"].as_str().unwrap_or(""))),
        "thinking" => Some(NewEvent::message("thinking", block["thinking"].as_str().unwrap_or(""))),
        "tool_use" | "server_tool_use" => Some(NewEvent::tool_call(
            block["id"].as_str(),
            block["name"].as_str().unwrap_or("?"),
            block["input"].clone(),
        )),
        _ => None,
    }
}

fn user_block(block: &Value) -> Option<NewEvent> {
    match block["type"].as_str()? {
        "tool_result" => Some(NewEvent::tool_result(
            block["tool_use_id"].as_str(),
            content_text(&block["content"]),
            block["is_error"].as_bool().unwrap_or(false),
        )),
        "text" => Some(NewEvent::message("user", block["text"].as_str().unwrap_or(""))),
        _ => None,
    }
}

impl OutputParser for ClaudeParser {
    fn line(&mut self, stream: Stream, line: &str) -> Vec<NewEvent> {
        json_line(stream, line, |obj| self.events(obj).filter(|e| !e.is_empty()))
    }

    fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }
}
