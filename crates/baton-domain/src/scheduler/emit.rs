//! Saving a changed thing together with the event that announces it.

use baton_core::event::{EventKind, NewEvent};
use baton_core::model::{Launcher, Run, Session, Task};
use baton_store::{StoreError, StoreTx};

use crate::outbox;

fn snapshot<T: serde::Serialize>(kind: EventKind, value: &T) -> NewEvent {
    NewEvent::new(kind, serde_json::to_value(value).unwrap_or_default())
}

/// Writes a changed task and announces it (to webhooks too, in the same
/// transaction, when the change is one they are told of).
pub fn save_task(tx: &mut dyn StoreTx, task: &Task) -> Result<(), StoreError> {
    let before = if outbox::may_tell(task) { tx.task(&task.id)? } else { None };
    tx.put_task(task)?;
    tx.append_event(None, None, Some(&task.id), snapshot(EventKind::Task, task))?;
    if let Some(before) = before {
        outbox::task_saved(tx, Some(&before), task)?;
    }
    Ok(())
}

/// Writes a new task and announces it.
pub fn insert_task(tx: &mut dyn StoreTx, task: &Task) -> Result<(), StoreError> {
    tx.insert_task(task)?;
    tx.append_event(None, None, Some(&task.id), snapshot(EventKind::Task, task))?;
    if outbox::may_tell(task) {
        outbox::task_saved(tx, None, task)?;
    }
    Ok(())
}

/// Writes a session and announces it in its own timeline.
pub fn save_session(tx: &mut dyn StoreTx, session: &Session) -> Result<(), StoreError> {
    tx.put_session(session)?;
    tx.append_event(Some(&session.id), None, Some(&session.task_id), snapshot(EventKind::Session, session))?;
    Ok(())
}

/// [`save_session`] for a session just made.
pub fn insert_session(tx: &mut dyn StoreTx, session: &Session) -> Result<(), StoreError> {
    tx.insert_session(session)?;
    tx.append_event(Some(&session.id), None, Some(&session.task_id), snapshot(EventKind::Session, session))?;
    Ok(())
}

/// Writes a run and announces it in its session's timeline.
pub fn save_run(tx: &mut dyn StoreTx, run: &Run) -> Result<(), StoreError> {
    tx.put_run(run)?;
    tx.append_event(Some(&run.session_id), Some(&run.id), Some(&run.task_id), snapshot(EventKind::Run, run))?;
    Ok(())
}

/// Writes a launcher and announces it.
pub fn save_launcher(tx: &mut dyn StoreTx, launcher: &Launcher) -> Result<(), StoreError> {
    tx.put_launcher(launcher)?;
    tx.append_event(None, None, None, snapshot(EventKind::Launcher, launcher))?;
    Ok(())
}
