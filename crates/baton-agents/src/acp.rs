//! Agent Client Protocol agents (`gemini --acp`, `claude-agent-acp`, any other),
//! driven with the official `agent-client-protocol` crate.
//!
//! The launcher runs `baton acp-client [options] -- AGENT ARGS...` under the
//! supervisor like any other agent. The bridge ([`run_client`]) starts the agent,
//! initializes it, opens a session in the worktree (or loads the earlier one, for a
//! resume), sends the prompt read from stdin, and prints what happens as Baton's
//! JSON lines (`message`, `tool_call`, `tool_result`, `usage`, `result`, ...), so the
//! spool, the parser and re-attachment work exactly as for any command. It answers
//! the agent's permission requests by the definition's policy and serves its file
//! requests only inside the worktree. A SIGINT or SIGTERM (a stop) becomes
//! `session/cancel`; a second one ends the bridge at once.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex};

use agent_client_protocol::schema::ProtocolVersion;
use agent_client_protocol::v1::ConnectionTo;
use agent_client_protocol::v1::schema::{
    CancelNotification, ClientCapabilities, ContentBlock, EnvVariable, FileSystemCapabilities, HttpHeader,
    Implementation, InitializeRequest, LoadSessionRequest, McpServer, McpServerHttp, McpServerStdio, NewSessionRequest,
    PermissionOptionKind, PromptRequest, ReadTextFileRequest, ReadTextFileResponse, RequestPermissionOutcome,
    RequestPermissionRequest, RequestPermissionResponse, SelectedPermissionOutcome, SessionNotification, SessionUpdate,
    StopReason, TextContent, ToolCallContent, ToolCallStatus, ToolCallUpdate, WriteTextFileRequest,
    WriteTextFileResponse,
};
use agent_client_protocol::{Agent, Error};
use serde_json::{Value, json};

use crate::executor::{Launch, LaunchError, TurnRequest};

/// The command line for a turn: the bridge, then the agent's command.
pub(crate) fn launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent = turn.agent;
    if agent.command.is_empty() {
        return Err(LaunchError::Definition {
            agent: agent.name.clone(),
            why: "the acp executor needs `command`".into(),
        });
    }
    let mut args = vec!["acp-client".to_owned(), "--cwd".to_owned(), turn.cwd.to_string_lossy().into_owned()];
    let policy = match agent.permission_mode.as_deref() {
        Some("reject") | Some("plan") | Some("default") => "reject",
        _ => "allow",
    };
    args.extend(["--permission".to_owned(), policy.to_owned()]);
    let mut files = Vec::new();
    let servers = crate::executor::mcp_servers(turn);
    if !servers.is_empty() {
        let path = turn.dir.join("mcp.json");
        files.push((path.clone(), json!(servers).to_string()));
        args.extend(["--mcp".to_owned(), path.to_string_lossy().into_owned()]);
    }
    if turn.kind == baton_core::model::RunKind::Resume
        && let Some(id) = turn.agent_session_id
    {
        args.extend(["--resume".to_owned(), id.to_owned()]);
    }
    args.push("--".to_owned());
    args.extend(agent.command.iter().chain(&agent.args).cloned());
    Ok(Launch {
        program: turn.baton.to_string_lossy().into_owned(),
        args,
        env: BTreeMap::new(),
        stdin: Some(crate::executor::with_memory(turn, turn.prompt.to_owned())),
        files,
    })
}

/// How the bridge answers permission requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// Allow (once, or always when that is the only way to allow).
    Allow,
    /// Reject.
    Reject,
}

/// What the bridge needs.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// The agent's command and arguments.
    pub command: Vec<String>,
    /// The worktree: the session's directory, and the only place files are served from.
    pub cwd: PathBuf,
    /// The permission policy.
    pub permission: Permission,
    /// The agent's own session id, to load instead of creating a session.
    pub resume: Option<String>,
    /// MCP servers, in Claude Code's `mcpServers` shape.
    pub mcp_servers: BTreeMap<String, Value>,
    /// The prompt.
    pub prompt: String,
}

/// Turns the agent's session updates into Baton's JSON lines on stdout.
#[derive(Default)]
struct Emitter {
    /// Assistant text being streamed.
    message: String,
    /// Thought text being streamed.
    thought: String,
    /// The last complete assistant message.
    last_message: Option<String>,
    /// The cost reported so far (cumulative).
    cost: Option<f64>,
    /// True while a loaded session replays its history (not new events).
    replaying: bool,
    /// Tool calls announced but not yet printed: their input often arrives in a
    /// later update, so a call is printed when it starts running or ends.
    pending: BTreeMap<String, Value>,
    /// Tool calls printed.
    started: std::collections::HashSet<String>,
    /// Lines kept instead of printed (tests).
    captured: Option<Vec<Value>>,
}

/// The tool's programmatic name where the agent gives it only in `_meta`
/// (`claude-agent-acp` puts it under `claudeCode.toolName`).
fn meta_tool_name(meta: Option<&agent_client_protocol::v1::schema::Meta>) -> Option<String> {
    let meta = serde_json::to_value(meta?).ok()?;
    meta.as_object()?.values().find_map(|v| v["toolName"].as_str().map(str::to_owned))
}

/// Whether a tool's input is there (agents send `{}` before they know it).
fn given(input: &Option<Value>) -> bool {
    match input {
        None | Some(Value::Null) => false,
        Some(Value::Object(o)) => !o.is_empty(),
        Some(_) => true,
    }
}

fn emit(value: Value) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}");
    let _ = out.flush();
}

impl Emitter {
    fn out(&mut self, line: Value) {
        match &mut self.captured {
            Some(lines) => lines.push(line),
            None => emit(line),
        }
    }

    fn flush(&mut self) {
        if !self.thought.is_empty() {
            let text = std::mem::take(&mut self.thought);
            self.out(json!({ "type": "message", "role": "thinking", "text": text }));
        }
        if !self.message.is_empty() {
            let text = std::mem::take(&mut self.message);
            self.last_message = Some(text.clone());
            self.out(json!({ "type": "message", "role": "assistant", "text": text }));
        }
    }

    /// Prints a tool call once its input is known (or it is running).
    fn start_tool(&mut self, id: &str) {
        if let Some(call) = self.pending.remove(id) {
            self.flush();
            self.started.insert(id.to_owned());
            self.out(call);
        }
    }

    /// A tool call first heard of in an update or a permission request (some
    /// agents send no `tool_call` first) is announced from what the update says.
    fn announce(&mut self, update: &ToolCallUpdate) {
        let id = update.tool_call_id.to_string();
        if self.started.contains(&id) || self.pending.contains_key(&id) {
            return;
        }
        let f = &update.fields;
        let title = f.title.clone().unwrap_or_default();
        let name = f.name.clone().or_else(|| meta_tool_name(update.meta.as_ref())).unwrap_or_else(|| title.clone());
        let kind = f.kind.map(|k| serde_json::to_value(k).unwrap_or(Value::Null));
        self.pending.insert(
            id.clone(),
            json!({
                "type": "tool_call", "id": id, "name": name, "title": title,
                "input": f.raw_input.clone().unwrap_or(Value::Null), "kind": kind,
            }),
        );
    }

    /// Prints the tool calls still waiting (a permission request, or the end).
    fn start_all_tools(&mut self) {
        for (_, call) in std::mem::take(&mut self.pending) {
            self.out(call);
        }
    }

    fn update(&mut self, update: &SessionUpdate) {
        if self.replaying {
            return;
        }
        match update {
            SessionUpdate::AgentMessageChunk(chunk) => {
                if let ContentBlock::Text(t) = &chunk.content {
                    self.message.push_str(&t.text);
                }
            }
            SessionUpdate::AgentThoughtChunk(chunk) => {
                if let ContentBlock::Text(t) = &chunk.content {
                    self.thought.push_str(&t.text);
                }
            }
            SessionUpdate::ToolCall(call) => {
                self.flush();
                let id = call.tool_call_id.to_string();
                let name =
                    call.name.clone().or_else(|| meta_tool_name(call.meta.as_ref())).unwrap_or(call.title.clone());
                self.pending.insert(
                    id.clone(),
                    json!({
                        "type": "tool_call", "id": id, "name": name, "title": call.title,
                        "input": call.raw_input.clone().unwrap_or(Value::Null), "kind": serde_json::to_value(call.kind).unwrap_or(Value::Null),
                    }),
                );
                if call.status != ToolCallStatus::Pending || given(&call.raw_input) {
                    self.start_tool(&id);
                }
            }
            SessionUpdate::ToolCallUpdate(update) => {
                self.announce(update);
                let f = &update.fields;
                let id = update.tool_call_id.to_string();
                if let Some(call) = self.pending.get_mut(&id) {
                    if let Some(input) = f.raw_input.as_ref().filter(|_| given(&f.raw_input)) {
                        call["input"] = input.clone();
                    }
                    if let Some(title) = &f.title {
                        call["title"] = Value::String(title.clone());
                    }
                }
                if given(&f.raw_input) || f.status.is_some_and(|s| s != ToolCallStatus::Pending) {
                    self.start_tool(&id);
                }
                let done = matches!(f.status, Some(ToolCallStatus::Completed) | Some(ToolCallStatus::Failed));
                if done {
                    self.flush();
                    let output = f.raw_output.clone().unwrap_or_else(|| {
                        let texts: Vec<String> = f
                            .content
                            .iter()
                            .flatten()
                            .filter_map(|c| match c {
                                ToolCallContent::Content(c) => match &c.content {
                                    ContentBlock::Text(t) => Some(t.text.clone()),
                                    _ => None,
                                },
                                ToolCallContent::Diff(d) => Some(format!("wrote {}", d.path.display())),
                                _ => None,
                            })
                            .collect();
                        Value::String(texts.join("\n"))
                    });
                    self.out(json!({
                        "type": "tool_result", "id": update.tool_call_id.to_string(), "output": output,
                        "is_error": matches!(f.status, Some(ToolCallStatus::Failed)),
                    }));
                }
            }
            SessionUpdate::Plan(plan) => {
                let items: Vec<String> = plan.entries.iter().map(|e| e.content.clone()).collect();
                self.out(json!({ "type": "log", "message": "plan updated", "items": items }));
            }
            SessionUpdate::UsageUpdate(usage) => {
                if let Some(cost) = &usage.cost {
                    self.cost = Some(cost.amount);
                }
            }
            _ => {}
        }
    }
}

/// A path the agent asked for, if it lies inside `root` (symbolic links followed).
fn confine(root: &Path, asked: &Path, must_exist: bool) -> Result<PathBuf, Error> {
    let refuse = || {
        emit(
            json!({ "type": "error", "message": format!("refused the agent access to {}: outside the worktree", asked.display()) }),
        );
        Error::new(-32602, format!("{} is outside the working directory", asked.display()))
    };
    if !asked.is_absolute() {
        return Err(refuse());
    }
    let mut lexical = PathBuf::new();
    for c in asked.components() {
        match c {
            Component::ParentDir => {
                lexical.pop();
            }
            Component::CurDir => {}
            other => lexical.push(other),
        }
    }
    // A file that exists (a symbolic link, say) is judged by where it leads; a
    // link to nowhere is refused.
    let exists = std::fs::symlink_metadata(&lexical).is_ok();
    if exists && std::fs::canonicalize(&lexical).is_err() {
        return Err(refuse());
    }
    let real = if must_exist || exists {
        std::fs::canonicalize(&lexical).map_err(|e| Error::new(-32002, format!("{}: {e}", asked.display())))?
    } else {
        let parent = lexical.parent().ok_or_else(refuse)?;
        let parent =
            std::fs::canonicalize(parent).map_err(|e| Error::new(-32002, format!("{}: {e}", parent.display())))?;
        parent.join(lexical.file_name().ok_or_else(refuse)?)
    };
    if real.starts_with(root) { Ok(real) } else { Err(refuse()) }
}

fn mcp_servers(servers: &BTreeMap<String, Value>) -> Vec<McpServer> {
    servers
        .iter()
        .filter_map(|(name, s)| {
            let pairs = |v: &Value| -> Vec<(String, String)> {
                v.as_object().map_or_else(Vec::new, |o| {
                    o.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_owned())).collect()
                })
            };
            if let Some(url) = s["url"].as_str() {
                let headers = pairs(&s["headers"]).into_iter().map(|(k, v)| HttpHeader::new(k, v)).collect();
                return Some(McpServer::Http(McpServerHttp::new(name.clone(), url.to_owned()).headers(headers)));
            }
            let command = s["command"].as_str()?;
            let args: Vec<String> = s["args"]
                .as_array()
                .map_or_else(Vec::new, |a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect());
            // The server runs as the agent's child: it gets the session's coordinator
            // and token unless the definition says otherwise.
            let mut env = pairs(&s["env"]);
            for key in crate::executor::SESSION_VARS {
                if let (false, Ok(value)) = (env.iter().any(|(k, _)| k == key), std::env::var(key)) {
                    env.push((key.to_owned(), value));
                }
            }
            let env = env.into_iter().map(|(k, v)| EnvVariable::new(k, v)).collect();
            Some(McpServer::Stdio(McpServerStdio::new(name.clone(), PathBuf::from(command)).args(args).env(env)))
        })
        .collect()
}

/// Runs the bridge; the process exit code.
pub async fn run_client(options: ClientOptions) -> i32 {
    let root = match std::fs::canonicalize(&options.cwd) {
        Ok(r) => r,
        Err(e) => {
            emit(json!({ "type": "error", "message": format!("{}: {e}", options.cwd.display()) }));
            return 1;
        }
    };
    match drive(options, root).await {
        Ok(code) => code,
        Err(e) => {
            let message = format!("the ACP agent failed: {e}");
            emit(json!({ "type": "error", "message": message }));
            emit(json!({ "type": "result", "text": message, "is_error": true }));
            1
        }
    }
}

async fn drive(options: ClientOptions, root: PathBuf) -> Result<i32, Error> {
    use tokio_util::compat::{TokioAsyncReadCompatExt, TokioAsyncWriteCompatExt};
    // Descendants the agent leaves behind become this process's children, so
    // they can be waited for (see the end).
    let _ = nix::sys::prctl::set_child_subreaper(true);
    let (program, args) = options.command.split_first().ok_or_else(|| Error::new(-32602, "no agent command"))?;
    // The agent is started here rather than by the SDK so that, once the turn is
    // over and its stdin closed, it gets time to save its session (the next turn
    // loads it) before anything stronger than end-of-input asks it to go.
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .current_dir(&root)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Error::new(-32603, format!("could not start {program}: {e}")))?;
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err(Error::new(-32603, "the agent's stdio is missing"));
    };
    let agent = agent_client_protocol::ByteStreams::new(stdin.compat_write(), stdout.compat());
    let outcome = converse(options, root, agent).await;
    if tokio::time::timeout(EXIT_GRACE, child.wait()).await.is_err() {
        if let Some(pid) = child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
        }
        if tokio::time::timeout(EXIT_GRACE / 3, child.wait()).await.is_err() {
            let _ = child.kill().await;
        }
    }
    // An agent may leave work to its own children when it exits (claude-agent-acp
    // exits while the Claude Code it started still saves the session): they were
    // reparented to this process, and get the rest of the grace period to end.
    let orphans = tokio::task::spawn_blocking(|| {
        while !matches!(nix::sys::wait::waitpid(None, None), Err(nix::errno::Errno::ECHILD)) {}
    });
    let _ = tokio::time::timeout(EXIT_GRACE, orphans).await;
    outcome
}

/// How long the agent has to exit by itself after its stdin closes.
const EXIT_GRACE: std::time::Duration = std::time::Duration::from_secs(15);

async fn converse<T>(options: ClientOptions, root: PathBuf, agent: T) -> Result<i32, Error>
where
    T: agent_client_protocol::ConnectTo<agent_client_protocol::Client> + 'static,
{
    let emitter = Arc::new(Mutex::new(Emitter::default()));
    let (updates, perms, reads, writes) = (Arc::clone(&emitter), Arc::clone(&emitter), root.clone(), root.clone());
    let permission = options.permission;
    agent_client_protocol::Client
        .v1()
        .name("baton")
        .on_receive_notification(
            async move |n: SessionNotification, _cx| {
                if let Ok(mut e) = updates.lock() {
                    e.update(&n.update);
                }
                Ok(())
            },
            agent_client_protocol::on_receive_notification!(),
        )
        .on_receive_request(
            async move |req: RequestPermissionRequest, responder, _cx| {
                responder.respond(RequestPermissionResponse::new(decide(&perms, permission, &req)))
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: ReadTextFileRequest, responder, _cx| match read_file(&reads, &req) {
                Ok(text) => responder.respond(ReadTextFileResponse::new(text)),
                Err(e) => responder.respond_with_error(e),
            },
            agent_client_protocol::on_receive_request!(),
        )
        .on_receive_request(
            async move |req: WriteTextFileRequest, responder, _cx| match write_file(&writes, &req) {
                Ok(()) => responder.respond(WriteTextFileResponse::new()),
                Err(e) => responder.respond_with_error(e),
            },
            agent_client_protocol::on_receive_request!(),
        )
        .connect_with(agent, async move |cx: ConnectionTo<Agent>| turn(cx, options, root, emitter).await)
        .await
}

/// Answers a permission request as the run's policy says, and records it.
fn decide(
    emitter: &Mutex<Emitter>,
    permission: Permission,
    req: &RequestPermissionRequest,
) -> RequestPermissionOutcome {
    if let Ok(mut e) = emitter.lock() {
        e.update(&SessionUpdate::ToolCallUpdate(req.tool_call.clone()));
        e.start_tool(&req.tool_call.tool_call_id.to_string());
    }
    let wanted: &[PermissionOptionKind] = match permission {
        Permission::Allow => &[PermissionOptionKind::AllowOnce, PermissionOptionKind::AllowAlways],
        Permission::Reject => &[PermissionOptionKind::RejectOnce, PermissionOptionKind::RejectAlways],
    };
    let choice = wanted.iter().find_map(|k| req.options.iter().find(|o| o.kind == *k));
    let title = req.tool_call.fields.title.clone().unwrap_or_default();
    let said = if permission == Permission::Allow { "allowed" } else { "rejected" };
    emit(json!({ "type": "log", "message": format!("permission for {title}: {said}") }));
    match choice {
        Some(o) => RequestPermissionOutcome::Selected(SelectedPermissionOutcome::new(o.option_id.clone())),
        None => RequestPermissionOutcome::Cancelled,
    }
}

/// A file the agent reads through the client, inside its directory: the lines
/// asked for.
fn read_file(root: &Path, req: &ReadTextFileRequest) -> Result<String, Error> {
    let path = confine(root, &req.path, true)?;
    let text = std::fs::read_to_string(&path).map_err(|e| Error::new(-32002, format!("{}: {e}", path.display())))?;
    let skip = req.line.map_or(0, |l| l.saturating_sub(1) as usize);
    let lines = text.lines().skip(skip);
    Ok(match req.limit {
        Some(n) => lines.take(n as usize).collect::<Vec<_>>().join("\n"),
        None if skip == 0 => text.clone(),
        None => lines.collect::<Vec<_>>().join("\n"),
    })
}

/// A file the agent writes through the client, inside its directory.
fn write_file(root: &Path, req: &WriteTextFileRequest) -> Result<(), Error> {
    let path = confine(root, &req.path, false)?;
    std::fs::write(&path, &req.content).map_err(|e| Error::new(-32603, format!("{}: {e}", path.display())))
}

/// One turn over an open connection: initialize, a new or loaded session, the
/// prompt (cancelled on the first interrupt, given up on the second), then the
/// usage and result lines. The process's exit code.
async fn turn(
    cx: ConnectionTo<Agent>,
    options: ClientOptions,
    root: PathBuf,
    emitter: Arc<Mutex<Emitter>>,
) -> Result<i32, Error> {
    let capabilities =
        ClientCapabilities::new().fs(FileSystemCapabilities::new().read_text_file(true).write_text_file(true));
    let init = cx
        .send_request(
            InitializeRequest::new(ProtocolVersion::V1)
                .client_capabilities(capabilities)
                .client_info(Implementation::new("baton", env!("CARGO_PKG_VERSION"))),
        )
        .block_task()
        .await?;
    let servers = mcp_servers(&options.mcp_servers);
    let session_id = match &options.resume {
        Some(id) if init.agent_capabilities.load_session => {
            if let Ok(mut e) = emitter.lock() {
                e.replaying = true;
            }
            let id = agent_client_protocol::v1::schema::SessionId::new(id.clone());
            cx.send_request(LoadSessionRequest::new(id.clone(), root.clone()).mcp_servers(servers))
                .block_task()
                .await?;
            if let Ok(mut e) = emitter.lock() {
                e.replaying = false;
            }
            id
        }
        _ => cx.send_request(NewSessionRequest::new(root.clone()).mcp_servers(servers)).block_task().await?.session_id,
    };
    emit(json!({ "type": "init", "session_id": session_id.to_string() }));
    let text = vec![ContentBlock::Text(TextContent::new(options.prompt.clone()))];
    let prompt = cx.send_request(PromptRequest::new(session_id.clone(), text)).block_task();
    let mut prompt = std::pin::pin!(prompt);
    let signal = |kind| tokio::signal::unix::signal(kind).map_err(Error::into_internal_error);
    let mut interrupt = signal(tokio::signal::unix::SignalKind::interrupt())?;
    let mut terminate = signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut cancelled = false;
    let response = loop {
        tokio::select! {
            r = &mut prompt => break r?,
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
        if cancelled {
            return Ok(130);
        }
        cancelled = true;
        cx.send_notification(CancelNotification::new(session_id.clone()))?;
    };
    let Ok(mut e) = emitter.lock() else { return Ok(1) };
    e.start_all_tools();
    e.flush();
    if let Some(cost) = e.cost {
        emit(json!({ "type": "usage", "cost_usd": cost }));
    }
    let refused = matches!(response.stop_reason, StopReason::Refusal);
    emit(json!({
        "type": "result", "text": e.last_message.clone().unwrap_or_default(), "session_id": session_id.to_string(),
        "is_error": refused, "subtype": serde_json::to_value(response.stop_reason).unwrap_or(Value::Null),
    }));
    Ok(if response.stop_reason == StopReason::Cancelled { 130 } else { 0 })
}

/// Replays the `session/update` notifications in `text` (transcript lines
/// `{"dir": "<-", "msg": {...}}`, or bare notifications' params) through the
/// emitter; the lines it would print. For tests and fuzzing.
pub(crate) fn replay_updates(text: &str) -> Vec<Value> {
    let mut e = Emitter { captured: Some(Vec::new()), ..Default::default() };
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
        let params = if v["dir"] == "<-" && v["msg"]["method"] == "session/update" { &v["msg"]["params"] } else { &v };
        if let Ok(n) = serde_json::from_value::<SessionNotification>(params.clone()) {
            e.update(&n.update);
        }
    }
    e.start_all_tools();
    e.flush();
    e.captured.unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the agent's `session/update` notifications of a transcript.
    fn replay(name: &str) -> Vec<Value> {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts").join(name);
        replay_updates(&std::fs::read_to_string(&path).unwrap())
    }

    fn of<'a>(lines: &'a [Value], kind: &str) -> Vec<&'a Value> {
        lines.iter().filter(|l| l["type"] == kind).collect()
    }

    #[test]
    fn claude_agent_acp_updates_become_events() {
        let lines = replay("acp-new.jsonl");
        let calls = of(&lines, "tool_call");
        assert_eq!(calls.len(), 1, "{lines:#?}");
        assert_eq!(calls[0]["name"], "Write");
        assert!(calls[0]["input"]["file_path"].as_str().is_some_and(|p| p.ends_with("hello.txt")), "{lines:#?}");
        let results = of(&lines, "tool_result");
        assert_eq!(results.len(), 1);
        assert_eq!(results[0]["id"], calls[0]["id"]);
        assert_eq!(results[0]["is_error"], false);
        let messages = of(&lines, "message");
        assert!(!messages.is_empty());
        assert!(messages.iter().all(|m| !m["text"].as_str().unwrap().is_empty()));
        // The tool call comes before its result, and nothing is printed twice.
        let at = |l: &Value| lines.iter().position(|x| x == l).unwrap();
        assert!(at(calls[0]) < at(results[0]));
    }

    #[test]
    fn every_acp_transcript_replays() {
        for name in ["acp-new.jsonl", "acp-new-load.jsonl", "acp-new-cancel.jsonl", "acp-zed.jsonl", "gemini-acp.jsonl"]
        {
            let lines = replay(name);
            let calls = of(&lines, "tool_call").len();
            let results = of(&lines, "tool_result").len();
            assert_eq!(calls, results, "{name}: every finished tool call is announced: {lines:#?}");
        }
        // Gemini sends no `tool_call` before the update that completes it.
        let lines = replay("gemini-acp.jsonl");
        assert_eq!(of(&lines, "tool_call")[0]["title"], "Writing to hello.txt");
        assert!(of(&lines, "tool_result")[0]["output"].as_str().unwrap().contains("hello.txt"));
    }

    #[test]
    fn a_loaded_session_does_not_replay_its_history_as_new_events() {
        let mut e = Emitter { captured: Some(Vec::new()), replaying: true, ..Default::default() };
        let n: SessionNotification = serde_json::from_value(json!({
            "sessionId": "s", "update": { "sessionUpdate": "agent_message_chunk", "content": { "type": "text", "text": "old" } }
        }))
        .unwrap();
        e.update(&n.update);
        e.flush();
        assert_eq!(e.captured.unwrap(), Vec::<Value>::new());
    }

    #[test]
    fn files_outside_the_worktree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = std::fs::canonicalize(dir.path()).unwrap().join("wt");
        std::fs::create_dir_all(root.join("src")).unwrap();
        std::fs::write(root.join("src/a.rs"), "x").unwrap();
        std::fs::write(dir.path().join("secret"), "s").unwrap();
        std::os::unix::fs::symlink(dir.path().join("secret"), root.join("link")).unwrap();
        assert_eq!(confine(&root, &root.join("src/a.rs"), true).unwrap(), root.join("src/a.rs"));
        assert_eq!(confine(&root, &root.join("src/new.rs"), false).unwrap(), root.join("src/new.rs"));
        for outside in [
            PathBuf::from("/etc/passwd"),
            root.join("../secret"),
            root.join("src/../../secret"),
            root.join("link"),
            PathBuf::from("relative/path"),
        ] {
            assert!(confine(&root, &outside, true).is_err(), "{} was served", outside.display());
            assert!(confine(&root, &outside, false).is_err(), "{} was writable", outside.display());
        }
    }
}
