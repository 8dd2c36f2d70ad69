//! Follow-ups: a person's messages to a task's agent. Sent while the agent
//! works, a message waits, shown as queued, until the agent's turn ends; it can
//! be withdrawn until then. When the turn ends (its run succeeded or failed),
//! every queued message goes to the agent together as the next turn of the same
//! session. Sent to a task at rest, it resumes the session at once.

use baton_core::ids::TaskId;
use baton_core::model::{FollowUp, FollowUpState, RunKind, Task};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_store::StoreTx;

use super::Effects;
use super::emit::save_task;
use super::tasks::{MAX_PROMPT_BYTES, queue_run, resume_task};
use crate::Error;
use crate::resolve;

/// How many messages may wait for one task.
const MAX_QUEUED: usize = 50;

/// Sends `text` to the task's agent: queued while it works, delivered at once
/// (the session resumed) when it is at rest. The message as it is now.
pub fn send_follow_up(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &TaskId,
    text: String,
    from: Option<String>,
) -> Result<FollowUp, Error> {
    if text.trim().is_empty() {
        return Err(Error::invalid("`text` must not be empty"));
    }
    if text.len() > MAX_PROMPT_BYTES {
        return Err(Error::too_large(format!("`text` is longer than {MAX_PROMPT_BYTES} bytes")));
    }
    let mut task = resolve::task(tx, id)?;
    let now = Timestamp::now();
    let mut message = FollowUp {
        id: crate::tokens::random_id("m-"),
        text,
        state: FollowUpState::Queued,
        from,
        at: now,
        settled_at: None,
    };
    if works(&task) {
        if task.follow_ups.iter().filter(|m| m.state == FollowUpState::Queued).count() >= MAX_QUEUED {
            return Err(Error::conflict(format!("task {} has {MAX_QUEUED} messages waiting already", task.id)));
        }
        task.follow_ups.push(message.clone());
        task.updated_at = now;
        save_task(tx, &task)?;
        return Ok(message);
    }
    message.state = FollowUpState::Delivered;
    message.settled_at = Some(now);
    let mut task = resume_task(tx, fx, &task.id, message.text.clone(), None)?;
    task.follow_ups.push(message.clone());
    save_task(tx, &task)?;
    Ok(message)
}

/// Takes back a queued message before it is delivered.
pub fn withdraw_follow_up(tx: &mut dyn StoreTx, id: &TaskId, message: &str) -> Result<FollowUp, Error> {
    let mut task = resolve::task(tx, id)?;
    let m = task
        .follow_ups
        .iter_mut()
        .find(|m| m.id == message)
        .ok_or_else(|| Error::not_found("message", format!("{message} of task {id}")))?;
    if m.state != FollowUpState::Queued {
        let state = if m.state == FollowUpState::Delivered { "delivered" } else { "withdrawn" };
        return Err(Error::conflict(format!("message {message} was {state} already")));
    }
    m.state = FollowUpState::Withdrawn;
    m.settled_at = Some(Timestamp::now());
    let m = m.clone();
    task.updated_at = Timestamp::now();
    save_task(tx, &task)?;
    Ok(m)
}

/// Whether the task's agent is at work (a message to it waits).
fn works(task: &Task) -> bool {
    matches!(task.status, TaskStatus::Queued | TaskStatus::Running | TaskStatus::Checking | TaskStatus::Reviewing)
}

/// At the end of a turn: the queued messages, together, as the session's next
/// turn. Whether there were any (the task then goes on instead of settling).
pub(crate) fn deliver_follow_ups(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task) -> Result<bool, Error> {
    if !task.follow_ups.iter().any(|m| m.state == FollowUpState::Queued) {
        return Ok(false);
    }
    let Some(session_id) = task.session_id.clone() else { return Ok(false) };
    let session = resolve::session(tx, &session_id)?;
    let now = Timestamp::now();
    let mut texts = Vec::new();
    for m in task.follow_ups.iter_mut().filter(|m| m.state == FollowUpState::Queued) {
        m.state = FollowUpState::Delivered;
        m.settled_at = Some(now);
        texts.push(m.text.clone());
    }
    queue_run(tx, fx, task, RunKind::Resume, texts.join("\n\n"), Some(session), None)?;
    save_task(tx, task)?;
    Ok(true)
}
