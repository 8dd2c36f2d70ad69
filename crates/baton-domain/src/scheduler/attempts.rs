//! Attempts: the same work started several times at once (copies of one task,
//! or one per chosen agent), so a person can compare them and keep the best.
//! Each attempt is an ordinary task on its own branch that knows its siblings;
//! keeping one cancels the others (stopping those still at work), whose
//! branches stay and whose worktrees the server cleans once they are at rest.

use baton_core::api::{CreateAttempts, CreateTask};
use baton_core::ids::TaskId;
use baton_core::model::Task;
use baton_core::status::TaskStatus;
use baton_store::StoreTx;
use serde_json::json;

use super::Effects;
use super::emit::save_task;
use super::settle::settled;
use super::tasks::{insert, new_task, set_status, stop_task};
use crate::Error;
use crate::resolve;
use crate::state::Config;
use crate::tokens::Caller;

/// The most attempts started together.
pub const MAX_ATTEMPTS: u32 = 10;

/// Creates the attempts a request asks for: `count` copies of its task, or one
/// per agent it names. Each knows the others.
pub fn create_attempts(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    req: CreateAttempts,
    config: &Config,
) -> Result<Vec<Task>, Error> {
    let asks = attempts_asked(&req)?;
    let ids: Vec<TaskId> = asks.iter().map(|_| TaskId::generate()).collect();
    let mut news = Vec::with_capacity(asks.len());
    for ask in asks {
        let mut new = new_task(tx, caller, ask, config)?;
        new.asked.attempts = ids.clone();
        news.push(new);
    }
    let mut tasks = Vec::with_capacity(news.len());
    for (new, id) in news.into_iter().zip(&ids) {
        tasks.push(insert(tx, fx, new, id.clone())?);
    }
    Ok(tasks)
}

/// The task of each attempt a request asks for.
fn attempts_asked(req: &CreateAttempts) -> Result<Vec<CreateTask>, Error> {
    if req.task.branch.is_some() {
        return Err(Error::combination("attempts work on branches of their own: leave `branch` out"));
    }
    let asks: Vec<CreateTask> = match (&req.agents[..], req.count) {
        ([], count) => {
            let n = count.unwrap_or(2);
            if !(1..=MAX_ATTEMPTS).contains(&n) {
                return Err(Error::invalid(format!("`count` must be 1 to {MAX_ATTEMPTS}")));
            }
            (0..n).map(|_| req.task.clone()).collect()
        }
        (agents, None) if agents.len() <= MAX_ATTEMPTS as usize => {
            agents.iter().map(|a| CreateTask { agent: Some(a.clone()), ..req.task.clone() }).collect()
        }
        (_, None) => return Err(Error::invalid(format!("at most {MAX_ATTEMPTS} agents"))),
        (_, Some(_)) => return Err(Error::combination("give `count` or `agents`, not both")),
    };
    Ok(asks)
}

/// Keeps one attempt: every other one is cancelled, those at work stopped first.
/// The kept task, and the others as they are now.
pub fn keep_attempt(tx: &mut dyn StoreTx, fx: &mut Effects, id: &TaskId) -> Result<(Task, Vec<Task>), Error> {
    let mut kept = resolve::task(tx, id)?;
    if kept.attempts.len() < 2 {
        return Err(Error::conflict(format!("task {} is not one of several attempts", kept.id)));
    }
    if matches!(kept.status, TaskStatus::Cancelled) {
        return Err(Error::conflict(format!("task {} was cancelled; keep another attempt", kept.id)));
    }
    let reason = format!("attempt {} was kept", kept.id);
    let mut others = Vec::new();
    for sibling in kept.attempts.clone().iter().filter(|s| *s != id) {
        let mut t = resolve::task(tx, sibling)?;
        match t.status {
            TaskStatus::Succeeded => {
                set_status(&mut t, TaskStatus::Cancelled, Some(reason.clone()))?;
                save_task(tx, &t)?;
                settled(tx, fx, &t)?;
            }
            TaskStatus::Failed | TaskStatus::Cancelled => {}
            _ => t = stop_task(tx, fx, &t.id, Some(reason.clone()))?,
        }
        others.push(t);
    }
    let ids: Vec<&TaskId> = others.iter().map(|t| &t.id).collect();
    let text = format!("kept among {} attempts; the others are cancelled", kept.attempts.len());
    super::loops::record_step(tx, &kept, "attempts", text, json!({ "cancelled": ids }))?;
    kept = resolve::task(tx, id)?;
    Ok((kept, others))
}
