//! Gemini CLI: `gemini -o stream-json --yolo` with the prompt on stdin,
//! `--resume <session_id>` for a follow-up turn.
//!
//! Its stream: `init` (the session id), `message` (the user's prompt, then the
//! assistant's answer in delta chunks), `tool_use`, `tool_result`, `error`, and a
//! final `result` with token counts.

use baton_core::agent::Pricing;
use baton_core::event::{InitData, NewEvent, ResultData};
use baton_core::model::{RunKind, Usage};
use serde_json::{Map, Value, json};

use crate::executor::{Launch, LaunchError, TurnRequest};
use crate::output::{OutputParser, Stream, Verdict, failure_of_text, json_line};

/// The command line for a turn.
pub(crate) fn launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent = turn.agent;
    let (program, mut args) = crate::executor::program(agent, "gemini");
    args.extend(["-o".into(), "stream-json".into()]);
    match agent.permission_mode.as_deref() {
        None | Some("yolo") | Some("bypassPermissions") => args.push("--yolo".into()),
        Some(mode) => args.extend(["--approval-mode".into(), mode.to_owned()]),
    }
    if let Some(model) = &agent.model {
        args.extend(["--model".into(), model.clone()]);
    }
    if turn.kind == RunKind::Resume
        && let Some(id) = turn.agent_session_id
    {
        args.extend(["--resume".into(), id.to_owned()]);
    }
    args.extend(agent.args.iter().cloned());
    let mut env = std::collections::BTreeMap::new();
    // The worktree is Baton's own: headless Gemini refuses to run in a folder it
    // has not been told to trust.
    env.insert("GEMINI_CLI_TRUST_WORKSPACE".to_owned(), "true".to_owned());
    let mut prompt = crate::executor::with_system_prompt(turn);
    // MCP servers: Gemini reads them only from settings files, so Baton's go into a
    // file of the run's own, read as the lowest layer of settings ("system
    // defaults"): the user's settings still apply on top.
    let servers = mcp_servers(turn);
    let mut files = Vec::new();
    if !servers.is_empty() {
        let path = turn.dir.join("gemini-settings.json");
        files.push((path.clone(), json!({ "mcpServers": servers }).to_string()));
        env.insert("GEMINI_CLI_SYSTEM_DEFAULTS_PATH".to_owned(), path.to_string_lossy().into_owned());
    }
    // The memory: Gemini reads GEMINI.md in its home's .gemini at every turn.
    match crate::executor::memory_file(turn, ".gemini/GEMINI.md") {
        Some(file) => files.push(file),
        None => prompt = crate::executor::with_memory(turn, prompt),
    }
    Ok(Launch { program, args, env, stdin: Some(prompt), files })
}

/// The agent's MCP servers in Gemini's settings shape, with Baton's own over
/// streamable HTTP (Gemini strips variables that look like secrets from a stdio
/// server's environment) and trusted (its tools need no confirmation; the
/// session's token limits what they may do).
fn mcp_servers(turn: &TurnRequest<'_>) -> Map<String, Value> {
    let mut servers: Map<String, Value> = turn
        .agent
        .mcp_servers
        .iter()
        .map(|(name, def)| {
            let mut def = def.clone();
            if let Some(obj) = def.as_object_mut() {
                match obj.remove("type").as_ref().and_then(Value::as_str) {
                    Some("http") | Some("streamable-http") => {
                        if let Some(url) = obj.remove("url") {
                            obj.insert("httpUrl".into(), url);
                        }
                    }
                    _ => {}
                }
            }
            (name.clone(), def)
        })
        .collect();
    if crate::executor::wants_baton_mcp(turn.agent) {
        servers.insert(
            crate::executor::BATON_MCP.to_owned(),
            json!({
                "httpUrl": "${BATON_URL}/mcp",
                "headers": { "Authorization": "Bearer ${BATON_TOKEN}" },
                "trust": true,
            }),
        );
    }
    servers
}

/// The parser of Gemini's stream.
#[derive(Debug, Default)]
pub struct GeminiParser {
    verdict: Verdict,
    pricing: Option<Pricing>,
    session: Option<String>,
    /// Assistant text being streamed in chunks.
    pending: String,
    /// The lines it came in, kept as the message's raw form.
    pending_raw: Vec<String>,
    last_message: Option<String>,
}

impl GeminiParser {
    /// A parser; `pricing` gives the cost of the tokens it reports.
    pub fn new(pricing: Option<Pricing>) -> Self {
        Self { pricing, ..Default::default() }
    }

    /// The assistant message streamed so far, as one event.
    fn flush(&mut self) -> Vec<NewEvent> {
        if self.pending.is_empty() {
            return Vec::new();
        }
        let text = std::mem::take(&mut self.pending);
        self.last_message = Some(text.clone());
        vec![NewEvent::message("assistant", text).with_raw(std::mem::take(&mut self.pending_raw).join("\n"))]
    }

    fn events(&mut self, obj: &Map<String, Value>) -> Option<Vec<NewEvent>> {
        let s = |k: &str| obj.get(k).and_then(Value::as_str).map(str::to_owned);
        let kind = s("type")?;
        if kind == "message" && s("role").as_deref() == Some("assistant") {
            self.pending.push_str(&s("content").unwrap_or_default());

            return Some(Vec::new());
        }
        let mut events = self.flush();
        match kind.as_str() {
            "init" => {
                self.session = s("session_id");
                events.push(NewEvent::init(&InitData {
                    agent_session_id: s("session_id"),
                    model: s("model"),
                    ..Default::default()
                }));
            }
            "message" => {
                events.push(NewEvent::message(s("role").as_deref().unwrap_or("user"), s("content").unwrap_or_default()))
            }
            "tool_use" => events.push(NewEvent::tool_call(
                s("tool_id").as_deref(),
                s("tool_name").as_deref().unwrap_or("?"),
                obj.get("parameters").cloned().unwrap_or_default(),
            )),
            "tool_result" => {
                let failed = s("status").as_deref() != Some("success");
                let output = obj.get("output").or_else(|| obj.get("error")).cloned().unwrap_or(Value::Null);
                events.push(NewEvent::tool_result(s("tool_id").as_deref(), output, failed));
            }
            "error" => {
                let message = s("message").unwrap_or_else(|| "error".into());
                events.push(NewEvent::error(message));
            }
            "result" => events.extend(self.result(obj)),
            _ => return None,
        }
        Some(events)
    }

    fn result(&mut self, obj: &Map<String, Value>) -> Vec<NewEvent> {
        let stats = obj.get("stats").cloned().unwrap_or_default();
        let n = |k: &str| stats.get(k).and_then(Value::as_u64).unwrap_or(0);
        let (input, output) = (n("input_tokens"), n("output_tokens"));
        let ok = obj.get("status").and_then(Value::as_str) == Some("success");
        let error = obj.get("error").and_then(|e| e["message"].as_str()).map(str::to_owned);
        if !ok {
            self.verdict.reported_error = true;
            self.verdict.error = error.clone().or_else(|| Some("the turn failed".into()));
            self.verdict.failure = error.as_deref().and_then(failure_of_text);
        }
        vec![
            NewEvent::usage(&Usage {
                input_tokens: input,
                output_tokens: output,
                cost_usd: self.pricing.map_or(0.0, |p| p.cost(input, output)),
            }),
            NewEvent::result(&ResultData {
                text: if ok { self.last_message.clone() } else { error },
                is_error: !ok,
                agent_session_id: self.session.clone(),
                duration_ms: stats.get("duration_ms").and_then(Value::as_u64),
                ..Default::default()
            }),
        ]
    }
}

impl OutputParser for GeminiParser {
    fn line(&mut self, stream: Stream, line: &str) -> Vec<NewEvent> {
        let mut held = false;
        let events = json_line(stream, line, |obj| {
            let events = self.events(obj);
            held = events.as_ref().is_some_and(Vec::is_empty);
            events
        });
        // A chunk of a streamed message: kept for the message's raw form.
        if held {
            self.pending_raw.push(line.to_owned());
        }
        events
    }

    fn finish(&mut self) -> Vec<NewEvent> {
        self.flush()
    }

    fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }
}
