//! Claude Code hooks (`baton hook`): an interactive Claude Code session — a lead
//! the user talks to — reported as a session of its own, beside the workers.
//!
//! The first hook of a Claude Code session creates an *external* task and session
//! for it (Baton shows them but never runs, stops or resumes them); every hook
//! becomes an event of that session, in Baton's normalised kinds where one fits
//! (a prompt is a `message`, a tool use a `tool_call` and `tool_result`), with the
//! hook's JSON kept as the event's raw form. Each hook also counts as a heartbeat
//! of the project's lead.
//!
//! When the session starts tasks through Baton's MCP tools (`start_task`,
//! `submit_plan`), the tool's answer names them: they become children of its
//! session, as they would be of a session Baton runs, so the lead and its
//! workers show up as one tree.

use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::{SessionId, TaskId};
use baton_core::model::{LeadHeartbeat, Project, Session, Task, TaskGit, Usage};
use baton_core::status::{SessionStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_store::StoreTx;
use serde_json::{Value, json};

use baton_core::api::HookRecorded;

use crate::Error;
use crate::resolve;
use crate::scheduler::emit::{insert_task, save_session, save_task};

fn field<'a>(hook: &'a Value, key: &str) -> Option<&'a str> {
    hook.get(key).and_then(Value::as_str)
}

/// Checks a hook's JSON: an object with a usable `session_id` and `hook_event_name`.
pub fn check(hook: &Value) -> Result<(&str, &str), Error> {
    if !hook.is_object() {
        return Err(Error::invalid("a hook report is a JSON object"));
    }
    let session = field(hook, "session_id").ok_or_else(|| Error::invalid("the hook JSON has no session_id"))?;
    if session.is_empty()
        || session.len() > 128
        || !session.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
    {
        return Err(Error::invalid("session_id must be 1 to 128 letters, digits, '-' or '_'"));
    }
    let event = field(hook, "hook_event_name").ok_or_else(|| Error::invalid("the hook JSON has no hook_event_name"))?;
    if event.is_empty() || event.len() > 64 || !event.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid("hook_event_name must be 1 to 64 letters or digits"));
    }
    Ok((session, event))
}

/// The project a hook's `cwd` is in: the one whose path is the longest prefix of
/// it, else the only project.
fn project_of(tx: &dyn StoreTx, cwd: Option<&str>) -> Result<Project, Error> {
    let projects = tx.projects()?;
    let inside = |p: &Project| {
        cwd.is_some_and(|c| c == p.path || c.strip_prefix(&p.path).is_some_and(|rest| rest.starts_with('/')))
    };
    if let Some(p) = projects.iter().filter(|p| inside(p)).max_by_key(|p| p.path.len()) {
        return Ok(p.clone());
    }
    match projects.len() {
        1 => Ok(projects[0].clone()),
        0 => Err(Error::conflict("no project is registered; run `baton up` in a repository first")),
        _ => Err(Error::not_found("project containing", format!("{:?}", cwd.unwrap_or("")))),
    }
}

/// Records one hook.
pub fn record(tx: &mut dyn StoreTx, hook: Value) -> Result<HookRecorded, Error> {
    let (claude_session, event) = check(&hook)?;
    let (claude_session, event) = (claude_session.to_owned(), event.to_owned());
    let now = Timestamp::now();
    let (mut task, mut session) = match tx.session_by_agent_session(&claude_session)? {
        Some(s) => {
            let task = resolve::task(tx, &s.task_id)?;
            if !task.external {
                return Ok(HookRecorded {
                    task_id: Some(task.id),
                    session_id: Some(s.id),
                    ignored: Some("a session Baton runs reports through its own output".into()),
                });
            }
            (task, s)
        }
        None => start(tx, &hook, &claude_session, now)?,
    };

    let raw = hook.to_string();
    for e in events(&hook, &event) {
        tx.append_event(Some(&session.id), None, Some(&task.id), e.with_raw(raw.clone()))?;
    }
    if event == "PostToolUse" {
        adopt_started(tx, &session, &hook, now)?;
    }

    // The session's state follows its hooks (an external session has no runs).
    let (session_status, task_status) = match event.as_str() {
        "SessionEnd" => (SessionStatus::Idle, TaskStatus::Succeeded),
        "Stop" => (SessionStatus::Idle, TaskStatus::Running),
        _ => (SessionStatus::Running, TaskStatus::Running),
    };
    if event == "Stop"
        && let Some(text) = field(&hook, "last_assistant_message")
    {
        task.result = Some(text.to_owned());
    }
    if session.status != session_status {
        session.status = session_status;
        session.updated_at = now;
        save_session(tx, &session)?;
    }
    if task.status != task_status || event == "Stop" {
        task.finished_at = task_status.is_finished().then_some(now);
        task.status = task_status;
        task.updated_at = now;
        save_task(tx, &task)?;
    }
    tx.add_heartbeat(&LeadHeartbeat {
        project_id: task.project_id.clone(),
        source: "claude-code hooks".into(),
        session_key: Some(claude_session),
        state: json!({ "hook": event }),
        at: now,
    })?;
    Ok(HookRecorded { task_id: Some(task.id), session_id: Some(session.id), ignored: None })
}

/// The task and session that stand for a Claude Code session heard of first.
fn start(tx: &mut dyn StoreTx, hook: &Value, claude_session: &str, now: Timestamp) -> Result<(Task, Session), Error> {
    let cwd = field(hook, "cwd");
    let project = project_of(tx, cwd)?;
    let short: String = claude_session.chars().take(8).collect();
    let task = Task {
        id: TaskId::generate(),
        project_id: project.id.clone(),
        title: format!("Claude Code session {short}"),
        prompt: format!(
            "An interactive Claude Code session in {}, reported through hooks.",
            cwd.unwrap_or(&project.path)
        ),
        agent: "claude".into(),
        tags: vec!["lead".into()],
        depends_on: Vec::new(),
        checks: Vec::new(),
        timeout_s: None,
        stall_s: None,
        max_retries: 0,
        retries: 0,
        budget_usd: None,
        approval: false,
        approved_at: None,
        sandbox: None,
        require: Vec::new(),
        isolation: None,
        loops: Default::default(),
        review_of: None,
        pr: None,
        status: TaskStatus::Running,
        reason: None,
        session_id: None,
        parent_session_id: None,
        callback: false,
        plan_id: None,
        plan_name: None,
        orchestration: None,
        git: TaskGit::default(),
        check_results: Vec::new(),
        external: true,
        throttled: 0,
        agent_switches: Vec::new(),
        result: None,
        usage: Usage::default(),
        created_at: now,
        updated_at: now,
        started_at: Some(now),
        finished_at: None,
        model: None,
        follow_ups: Vec::new(),
        attempts: Vec::new(),
        attachments: Vec::new(),
        message: None,
        leads: None,
        origin: None,
        issue: None,
        workset: None,
    };
    let session = Session {
        id: SessionId::generate(),
        task_id: task.id.clone(),
        project_id: project.id,
        agent: "claude".into(),
        executor: baton_core::agent::ExecutorKind::ClaudeCode,
        status: SessionStatus::Running,
        agent_session_id: Some(claude_session.to_owned()),
        parent_session_id: None,
        usage: Usage::default(),
        pending_callbacks: Vec::new(),
        created_at: now,
        updated_at: now,
    };
    let mut task = task;
    task.session_id = Some(session.id.clone());
    insert_task(tx, &task)?;
    save_session(tx, &session)?;
    Ok((task, session))
}

/// Makes the tasks a Baton MCP tool call of this session started (named in the
/// tool's answer) children of the session. Only tasks without a parent, run by
/// Baton, and created since the session began are taken.
fn adopt_started(tx: &mut dyn StoreTx, session: &Session, hook: &Value, now: Timestamp) -> Result<(), Error> {
    let tool = field(hook, "tool_name").unwrap_or("");
    let Some((_server, name)) = tool.strip_prefix("mcp__").and_then(|t| t.rsplit_once("__")) else { return Ok(()) };
    if !matches!(name, "start_task" | "submit_plan") {
        return Ok(());
    }
    for id in started_ids(&hook["tool_response"]) {
        let Some(mut task) = tx.task(&id)? else { continue };
        if task.external || task.parent_session_id.is_some() || task.created_at < session.created_at {
            continue;
        }
        task.parent_session_id = Some(session.id.clone());
        task.updated_at = now;
        save_task(tx, &task)?;
        for mut child in tx.sessions_of_task(&task.id)? {
            if child.parent_session_id.is_none() {
                child.parent_session_id = Some(session.id.clone());
                save_session(tx, &child)?;
            }
        }
    }
    Ok(())
}

/// The tasks a `start_task` or `submit_plan` answer names as started: the
/// answer's `id`, or its `tasks[].id`, wherever Claude Code put the tool's text
/// (a string, content blocks, structured content).
fn started_ids(answer: &Value) -> Vec<TaskId> {
    match answer {
        Value::String(text) => serde_json::from_str::<Value>(text).map(|v| started_ids(&v)).unwrap_or_default(),
        Value::Array(items) => items.iter().flat_map(started_ids).collect(),
        Value::Object(o) => match o.get("id").and_then(Value::as_str).and_then(|id| id.parse::<TaskId>().ok()) {
            Some(id) => vec![id],
            None => ["text", "content", "structuredContent", "tasks"]
                .iter()
                .filter_map(|k| o.get(*k))
                .flat_map(started_ids)
                .collect(),
        },
        _ => Vec::new(),
    }
}

/// A hook as Baton's events.
fn events(hook: &Value, event: &str) -> Vec<NewEvent> {
    let s = |k: &str| field(hook, k);
    match event {
        "SessionStart" => vec![NewEvent::new(
            EventKind::Init,
            json!({ "agent_session_id": s("session_id"), "cwd": s("cwd"), "source": s("source"), "model": s("model") }),
        )],
        "UserPromptSubmit" => vec![NewEvent::message("user", s("prompt").unwrap_or(""))],
        "PreToolUse" => {
            vec![NewEvent::tool_call(s("tool_use_id"), s("tool_name").unwrap_or("?"), hook["tool_input"].clone())]
        }
        "PostToolUse" => {
            let response = &hook["tool_response"];
            let failed = response.get("is_error").and_then(Value::as_bool).unwrap_or(false)
                || response.get("success").and_then(Value::as_bool) == Some(false);
            vec![NewEvent::tool_result(s("tool_use_id"), response.clone(), failed)]
        }
        "Stop" | "SubagentStop" => {
            let mut out = Vec::new();
            if let Some(text) = s("last_assistant_message") {
                out.push(NewEvent::message("assistant", text));
            }
            out.push(NewEvent::new(EventKind::Hook, json!({ "hook_event_name": event })));
            out
        }
        _ => vec![NewEvent::new(
            EventKind::Hook,
            json!({ "hook_event_name": event, "reason": s("reason"), "message": s("message") }),
        )],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hooks_are_checked_before_anything_is_written() {
        assert!(check(&json!("x")).is_err());
        assert!(check(&json!({})).is_err());
        assert!(check(&json!({ "session_id": "../x", "hook_event_name": "Stop" })).is_err());
        assert!(check(&json!({ "session_id": "abc", "hook_event_name": "St op" })).is_err());
        assert!(check(&json!({ "session_id": "abc-1", "hook_event_name": "PreToolUse" })).is_ok());
    }

    #[test]
    fn started_tasks_are_found_in_any_shape_of_answer() {
        let task = TaskId::generate();
        let text = json!({ "id": task, "depends_on": [TaskId::generate()] }).to_string();
        for answer in [
            json!(text),
            json!([{ "type": "text", "text": text }]),
            json!({ "content": [{ "type": "text", "text": text }] }),
            json!({ "plan": { "id": "pl-x" }, "tasks": [{ "name": "a", "id": task }] }),
        ] {
            assert_eq!(started_ids(&answer), vec![task.clone()], "{answer}");
        }
        assert!(started_ids(&json!("not json")).is_empty());
        assert!(started_ids(&json!({ "id": "../x" })).is_empty());
    }

    #[test]
    fn tool_hooks_become_tool_events() {
        let pre = json!({ "tool_use_id": "t1", "tool_name": "Write", "tool_input": { "file_path": "a" } });
        let e = &events(&pre, "PreToolUse")[0];
        assert_eq!((e.kind, e.data["name"].as_str()), (EventKind::ToolCall, Some("Write")));
        let post = json!({ "tool_use_id": "t1", "tool_response": { "success": false } });
        let e = &events(&post, "PostToolUse")[0];
        assert_eq!((e.kind, e.data["is_error"].as_bool()), (EventKind::ToolResult, Some(true)));
    }
}
