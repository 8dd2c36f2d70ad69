//! Events: the append-only record of everything that happens.
//!
//! An event has a global position (`id`, the order of the live stream) and, when it
//! belongs to a session, a per-session sequence number (`seq`). Agent output is
//! normalised into a handful of kinds (message, tool call, tool result, output,
//! usage, result) whatever the agent; changes of tasks, sessions and runs are
//! events too, carrying the new state whole, so the stream alone is enough to
//! mirror the coordinator.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::ids::{RunId, SessionId, TaskId};
use crate::model::Usage;
use crate::time::Timestamp;

/// What an event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The agent process started (the agent's session id, model, tools).
    Init,
    /// Text from the assistant, the user or the system.
    Message,
    /// The agent called a tool.
    ToolCall,
    /// A tool's result.
    ToolResult,
    /// A line the agent printed (stdout or stderr).
    Output,
    /// Tokens and money spent (a delta).
    Usage,
    /// The agent's final answer for a turn.
    Result,
    /// A line a structured parser did not understand, kept as it was.
    Raw,
    /// An error the agent or Baton reported.
    Error,
    /// Baton's own note about the session (setup output, WIP commit, checks).
    Log,
    /// A task changed; `data` is the new task.
    Task,
    /// A session changed; `data` is the new session.
    Session,
    /// A run changed; `data` is the new run.
    Run,
    /// A project changed; `data` is the new project.
    Project,
    /// An agent definition changed; `data` is the definition (or `{name, deleted}`).
    Agent,
    /// A launcher changed; `data` is the new launcher.
    Launcher,
    /// An orchestration changed; `data` is the new orchestration.
    Orchestration,
    /// A document of the context store changed; `data` is the document without
    /// its content (or `{name, deleted}`).
    Document,
    /// A Claude Code hook reported (`baton hook`); `data` is the hook's JSON.
    Hook,
    /// The lead Baton runs for a project changed; `data` is its record.
    Lead,
}

impl EventKind {
    /// Every kind.
    pub const ALL: &'static [EventKind] = &[
        EventKind::Init,
        EventKind::Message,
        EventKind::ToolCall,
        EventKind::ToolResult,
        EventKind::Output,
        EventKind::Usage,
        EventKind::Result,
        EventKind::Raw,
        EventKind::Error,
        EventKind::Log,
        EventKind::Task,
        EventKind::Session,
        EventKind::Run,
        EventKind::Project,
        EventKind::Agent,
        EventKind::Launcher,
        EventKind::Orchestration,
        EventKind::Document,
        EventKind::Hook,
        EventKind::Lead,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Init => "init",
            EventKind::Message => "message",
            EventKind::ToolCall => "tool_call",
            EventKind::ToolResult => "tool_result",
            EventKind::Output => "output",
            EventKind::Usage => "usage",
            EventKind::Result => "result",
            EventKind::Raw => "raw",
            EventKind::Error => "error",
            EventKind::Log => "log",
            EventKind::Task => "task",
            EventKind::Session => "session",
            EventKind::Run => "run",
            EventKind::Project => "project",
            EventKind::Agent => "agent",
            EventKind::Launcher => "launcher",
            EventKind::Orchestration => "orchestration",
            EventKind::Document => "document",
            EventKind::Hook => "hook",
            EventKind::Lead => "lead",
        }
    }

    /// Whether agents (and launchers on their behalf) may send this kind; the rest
    /// are written by the coordinator only.
    pub fn is_agent_kind(self) -> bool {
        matches!(
            self,
            EventKind::Init
                | EventKind::Message
                | EventKind::ToolCall
                | EventKind::ToolResult
                | EventKind::Output
                | EventKind::Usage
                | EventKind::Result
                | EventKind::Raw
                | EventKind::Error
                | EventKind::Log
        )
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EventKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        EventKind::ALL.iter().copied().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown event kind {s:?}"))
    }
}

/// A stored event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Event {
    /// Position in the global stream (strictly increasing).
    pub id: i64,
    /// When it happened.
    pub ts: Timestamp,
    /// The session it belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Its number within the session (1, 2, 3, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The run that produced it, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<RunId>,
    /// The task it concerns, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// What it records.
    pub kind: EventKind,
    /// The payload; its shape depends on `kind`.
    pub data: Value,
    /// The line the agent printed, when `data` was parsed from it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
}

/// An event to append (the coordinator assigns `id` and `seq`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewEvent {
    /// What it records.
    pub kind: EventKind,
    /// The payload.
    pub data: Value,
    /// The line it was parsed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// When it happened (defaults to when it is stored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<Timestamp>,
}

impl NewEvent {
    /// An event of `kind` with `data`.
    pub fn new(kind: EventKind, data: Value) -> Self {
        Self { kind, data, raw: None, ts: None }
    }

    /// The same event, remembering the line it came from.
    pub fn with_raw(mut self, raw: impl Into<String>) -> Self {
        self.raw = Some(raw.into());
        self
    }

    /// A message from `role` ("assistant", "user", "system").
    pub fn message(role: &str, text: impl Into<String>) -> Self {
        Self::new(EventKind::Message, json!({ "role": role, "text": text.into() }))
    }

    /// A tool call.
    pub fn tool_call(id: Option<&str>, name: &str, input: Value) -> Self {
        Self::new(EventKind::ToolCall, json!({ "id": id, "name": name, "input": input }))
    }

    /// A tool's result.
    pub fn tool_result(id: Option<&str>, output: Value, is_error: bool) -> Self {
        Self::new(EventKind::ToolResult, json!({ "id": id, "output": output, "is_error": is_error }))
    }

    /// A line of output on `stream` ("stdout" or "stderr").
    pub fn output(stream: &str, line: impl Into<String>) -> Self {
        Self::new(EventKind::Output, json!({ "stream": stream, "line": line.into() }))
    }

    /// Tokens and money spent since the last usage event.
    pub fn usage(usage: &Usage) -> Self {
        Self::new(EventKind::Usage, serde_json::to_value(usage).unwrap_or(Value::Null))
    }

    /// Baton's own note.
    pub fn log(message: impl Into<String>) -> Self {
        Self::new(EventKind::Log, json!({ "message": message.into() }))
    }

    /// An error report.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(EventKind::Error, json!({ "message": message.into() }))
    }

    /// A result payload.
    pub fn result(result: &ResultData) -> Self {
        Self::new(EventKind::Result, serde_json::to_value(result).unwrap_or(Value::Null))
    }

    /// An init payload.
    pub fn init(init: &InitData) -> Self {
        Self::new(EventKind::Init, serde_json::to_value(init).unwrap_or(Value::Null))
    }
}

/// The payload of an `init` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct InitData {
    /// The agent's own session id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_session_id: Option<String>,
    /// The model it uses.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Its working directory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cwd: Option<String>,
    /// The tools it has.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
}

/// The payload of a `result` event.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct ResultData {
    /// The final answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Whether the agent reports failure.
    pub is_error: bool,
    /// The agent's own session id, for resume.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_session_id: Option<String>,
    /// The agent's own word for how it ended (`success`, `error_max_turns`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subtype: Option<String>,
    /// How many model turns it took.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u64>,
    /// How long it took, as the agent measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// Text of an event for people, on one line where it fits (used by `baton logs`).
pub fn summarize(kind: EventKind, data: &Value) -> String {
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or("");
    match kind {
        EventKind::Message => format!("{}: {}", s("role"), s("text")),
        EventKind::ToolCall => format!("→ {} {}", s("name"), compact(&data["input"], 200)),
        EventKind::ToolResult => {
            let flag = if data["is_error"].as_bool() == Some(true) { " (error)" } else { "" };
            format!("← result{flag} {}", compact(&data["output"], 200))
        }
        EventKind::Output => s("line").to_owned(),
        EventKind::Usage => format!(
            "usage: {} in, {} out, ${:.4}",
            data["input_tokens"].as_u64().unwrap_or(0),
            data["output_tokens"].as_u64().unwrap_or(0),
            data["cost_usd"].as_f64().unwrap_or(0.0)
        ),
        EventKind::Result => format!("result: {}", s("text")),
        EventKind::Init => format!("started {} {}", s("agent_session_id"), s("model")),
        EventKind::Raw => s("line").to_owned(),
        EventKind::Error => format!("error: {}", s("message")),
        EventKind::Log => format!("baton: {}", s("message")),
        EventKind::Task | EventKind::Session | EventKind::Run | EventKind::Launcher | EventKind::Orchestration => {
            format!("{} {} {}", kind, s("id"), s("status"))
        }
        EventKind::Project | EventKind::Agent | EventKind::Document => format!("{} {}", kind, s("name")),
        EventKind::Hook => format!("hook {}", s("hook_event_name")),
        EventKind::Lead => format!("lead of {} {}", s("project_id"), s("note")),
    }
}

/// A JSON value as text of at most `max` characters.
fn compact(v: &Value, max: usize) -> String {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    };
    let one_line = text.replace('\n', "⏎");
    if one_line.chars().count() > max {
        let cut: String = one_line.chars().take(max).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(k.as_str().parse::<EventKind>().unwrap(), *k);
            assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
        }
    }

    #[test]
    fn summaries_are_one_line() {
        let e = NewEvent::tool_call(Some("1"), "Write", json!({"content": "a\nb"}));
        assert_eq!(summarize(e.kind, &e.data), "→ Write {\"content\":\"a\\nb\"}");
        let e = NewEvent::tool_result(None, json!("x\ny"), true);
        assert_eq!(summarize(e.kind, &e.data), "← result (error) x⏎y");
    }
}
