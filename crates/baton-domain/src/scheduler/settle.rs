//! What follows when a task settles — succeeds, fails, is cancelled or blocked:
//! the session that started it hears of it (a callback), and the orchestration it
//! belongs to moves on.

use baton_core::model::{Callback, RunKind, Session, Task};
use baton_core::status::TaskStatus;
use baton_store::{HourDelta, StoreTx};

use super::Effects;
use super::emit::{save_session, save_task};
use super::orchestrations;
use super::tasks::queue_run;
use crate::Error;
use crate::resolve;

/// Runs the consequences of `task` having settled.
pub(crate) fn settled(tx: &mut dyn StoreTx, fx: &mut Effects, task: &Task) -> Result<(), Error> {
    if matches!(task.status, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled) {
        tx.add_hour(&HourDelta {
            hour: this_hour(),
            project: task.project_id.clone(),
            agent: task.agent.clone(),
            finished: Some(task.status),
            cost_usd: 0.0,
        })?;
    }
    if task.status.is_settled() {
        crate::memory::record_outcome(tx, task)?;
        crate::inbox::settle(tx, task)?;
        crate::leads::on_settled(tx, task)?;
    }
    call_back(tx, fx, task)?;
    if task.plan_id.is_some() && task.status.is_settled() {
        super::plans::plan_task_settled(tx, fx, task)?;
    }
    if task.orchestration.is_some() {
        orchestrations::advance(tx, fx, task)?;
    }
    if task.review_of.is_some() {
        super::loops::review_settled(tx, fx, task)?;
    }
    Ok(())
}

/// The start of the hour now, in milliseconds: the key of its aggregates.
pub fn this_hour() -> i64 {
    let now = baton_core::time::Timestamp::now().as_millis();
    now - now.rem_euclid(3_600_000)
}

/// Tells the parent session of a task started with `callback` how it ended: at
/// once if the parent is idle, else when it next becomes idle (aggregated with
/// any other callbacks waiting).
fn call_back(tx: &mut dyn StoreTx, fx: &mut Effects, child: &Task) -> Result<(), Error> {
    if !child.callback {
        return Ok(());
    }
    let Some(parent_id) = &child.parent_session_id else { return Ok(()) };
    // An earlier session of a project's lead: the session that leads now hears it.
    let parent_id = crate::leads::current_session(tx, parent_id)?;
    let Some(mut parent) = tx.session(&parent_id)? else { return Ok(()) };
    let text = match child.status {
        TaskStatus::Succeeded => child.result.clone().unwrap_or_default(),
        _ => child.reason.clone().or_else(|| child.result.clone()).unwrap_or_default(),
    };
    parent.pending_callbacks.push(Callback {
        task_id: child.id.clone(),
        title: child.title.clone(),
        status: child.status,
        text,
    });
    deliver_callbacks(tx, fx, parent)
}

/// Resumes a session with the callbacks waiting for it, when it is idle and its
/// task may continue (it succeeded or failed; a cancelled lead stays cancelled).
/// Otherwise the callbacks wait in the session.
pub(crate) fn deliver_callbacks(tx: &mut dyn StoreTx, fx: &mut Effects, mut session: Session) -> Result<(), Error> {
    if session.pending_callbacks.is_empty() {
        return Ok(());
    }
    let mut task = resolve::task(tx, &session.task_id)?;
    let resumable = session.status.is_idle()
        && matches!(task.status, TaskStatus::Succeeded | TaskStatus::Failed)
        && task.session_id.as_ref() == Some(&session.id);
    if !resumable {
        save_session(tx, &session)?;
        return Ok(());
    }
    let callbacks = std::mem::take(&mut session.pending_callbacks);
    queue_run(tx, fx, &mut task, RunKind::Resume, Callback::message(&callbacks), Some(session), None)?;
    save_task(tx, &task)?;
    Ok(())
}
