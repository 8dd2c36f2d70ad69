//! The `command` executor: any program. The prompt arrives on stdin and in
//! `BATON_PROMPT`; every stdout line is an `output` event, and a line that is a JSON
//! object with a `type` of `message`, `tool_call`, `tool_result`, `usage`,
//! `result`, `init`, `error` or `log` becomes that structured event.
//!
//! A resumed turn runs the command again with `BATON_RESUME=1` and, when an earlier
//! turn reported one, the agent's session id in `BATON_AGENT_SESSION_ID`.

use std::collections::BTreeMap;

use baton_core::event::{EventKind, NewEvent};
use baton_core::model::RunKind;
use serde_json::{Map, Value};

use crate::executor::{Launch, LaunchError, TurnRequest};
use crate::output::{OutputParser, Stream, Verdict, output_event};

/// The command line for a turn: the definition's `command` and `args`.
pub(crate) fn launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent = turn.agent;
    let (program, rest) = agent.command.split_first().ok_or_else(|| LaunchError::Definition {
        agent: agent.name.clone(),
        why: "the command executor needs `command`".into(),
    })?;
    let prompt = crate::executor::with_memory(turn, turn.prompt.to_owned());
    let mut env = BTreeMap::new();
    env.insert("BATON_PROMPT".to_owned(), prompt.clone());
    if !agent.system_prompt.is_empty() {
        env.insert("BATON_SYSTEM_PROMPT".to_owned(), agent.system_prompt.clone());
    }
    if turn.kind == RunKind::Resume {
        env.insert("BATON_RESUME".to_owned(), "1".to_owned());
        if let Some(id) = turn.agent_session_id {
            env.insert("BATON_AGENT_SESSION_ID".to_owned(), id.to_owned());
        }
    }
    Ok(Launch {
        program: program.clone(),
        args: rest.iter().chain(&agent.args).cloned().collect(),
        env,
        stdin: Some(prompt),
        files: Vec::new(),
    })
}

/// The parser of the command executor.
#[derive(Debug, Default)]
pub struct CommandParser {
    /// What the command's `result` line said.
    verdict: Verdict,
}

impl OutputParser for CommandParser {
    fn line(&mut self, stream: Stream, line: &str) -> Vec<NewEvent> {
        if stream == Stream::Stdout
            && let Some(event) = structured(line)
        {
            if event.kind == EventKind::Result && event.data["is_error"].as_bool() == Some(true) {
                self.verdict.reported_error = true;
                self.verdict.error = event.data["text"].as_str().map(str::to_owned);
                self.verdict.failure = self.verdict.error.as_deref().and_then(crate::output::failure_of_text);
            }
            return vec![event];
        }
        vec![output_event(stream, line)]
    }

    fn verdict(&self) -> Verdict {
        self.verdict.clone()
    }
}

/// The structured event a JSON line stands for, if it is one.
fn structured(line: &str) -> Option<NewEvent> {
    let trimmed = line.trim();
    if !trimmed.starts_with('{') {
        return None;
    }
    let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(trimmed) else {
        return None;
    };
    let kind = match obj.get("type").and_then(Value::as_str)? {
        "message" => EventKind::Message,
        "tool_call" => EventKind::ToolCall,
        "tool_result" => EventKind::ToolResult,
        "usage" => EventKind::Usage,
        "result" => EventKind::Result,
        "init" => EventKind::Init,
        "error" => EventKind::Error,
        "log" => EventKind::Log,
        _ => return None,
    };
    obj.remove("type");
    normalise(kind, &mut obj);
    Some(NewEvent::new(kind, Value::Object(obj)).with_raw(line))
}

/// Accepts the obvious synonyms so simple scripts need not know Baton's names.
fn normalise(kind: EventKind, obj: &mut Map<String, Value>) {
    let rename = |obj: &mut Map<String, Value>, from: &str, to: &str| {
        if !obj.contains_key(to)
            && let Some(v) = obj.remove(from)
        {
            obj.insert(to.to_owned(), v);
        }
    };
    match kind {
        EventKind::Message => {
            rename(obj, "content", "text");
            obj.entry("role").or_insert_with(|| Value::String("assistant".into()));
        }
        EventKind::Result => {
            rename(obj, "result", "text");
            rename(obj, "session_id", "agent_session_id");
            obj.entry("is_error").or_insert(Value::Bool(false));
        }
        EventKind::Init => rename(obj, "session_id", "agent_session_id"),
        EventKind::ToolCall => rename(obj, "tool", "name"),
        EventKind::ToolResult => {
            rename(obj, "result", "output");
            obj.entry("is_error").or_insert(Value::Bool(false));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn plain_lines_are_output() {
        let mut p = CommandParser::default();
        let e = p.line(Stream::Stdout, "hello");
        assert_eq!(e, vec![NewEvent::output("stdout", "hello")]);
        let e = p.line(Stream::Stderr, r#"{"type":"message","text":"x"}"#);
        assert_eq!(e[0].kind, EventKind::Output, "stderr is never parsed");
    }

    #[test]
    fn typed_json_lines_become_events() {
        let mut p = CommandParser::default();
        let e = p.line(Stream::Stdout, r#"{"type":"tool_call","name":"Write","input":{"path":"a"}}"#);
        assert_eq!(e[0].kind, EventKind::ToolCall);
        assert_eq!(e[0].data, json!({"name": "Write", "input": {"path": "a"}}));
        assert!(e[0].raw.is_some());
        let e = p.line(Stream::Stdout, r#"{"type":"result","result":"done","session_id":"abc"}"#);
        assert_eq!(e[0].data, json!({"text": "done", "agent_session_id": "abc", "is_error": false}));
        assert!(!p.verdict().reported_error);
        p.line(Stream::Stdout, r#"{"type":"result","text":"bad","is_error":true}"#);
        assert!(p.verdict().reported_error);
    }

    #[test]
    fn other_json_and_garbage_stay_output() {
        let mut p = CommandParser::default();
        for line in [r#"{"type":"weird"}"#, r#"{"no":"type"}"#, "{truncated", "[1,2]", ""] {
            assert_eq!(p.line(Stream::Stdout, line)[0].kind, EventKind::Output, "{line}");
        }
    }
}
