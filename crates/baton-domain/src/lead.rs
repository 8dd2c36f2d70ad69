//! The lead's status per project (seed 000): running, stale or stopped from the
//! age of its last heartbeat — the scheduler's own while the project has work, or
//! a lead agent's — with the agents at work, the counts and the next wave.

use std::collections::HashMap;

use baton_core::api::{ActiveAgent, LeadState, LeadStatus};
use baton_core::ids::{ProjectId, TaskId};
use baton_core::model::{Project, Task};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_store::{StoreRead, TaskFilter};

use crate::Error;

/// Default seconds before a silent lead is stale (seed 000: ten minutes).
pub const STALE_S: u64 = 600;
/// Default seconds before a silent lead is stopped (seed 000: an hour).
pub const STOPPED_S: u64 = 3600;

/// The task of the lead Baton runs for `project`, when `agent` leads it and a
/// lead is wanted.
pub fn acting_task(r: &dyn StoreRead, project: &ProjectId, agent: &str) -> Result<Option<TaskId>, Error> {
    Ok(r.lead(project)?.filter(|l| l.wanted && l.agent == agent).and_then(|l| l.task_id))
}

/// The lead's status of `project` now.
pub fn status(r: &dyn StoreRead, project: &Project) -> Result<LeadStatus, Error> {
    let last = r.heartbeats(&project.id, 1)?.into_iter().next();
    let now = Timestamp::now();
    let age = last.as_ref().map(|h| now.millis_since(h.at).max(0));
    let stale = project.settings.heartbeat_stale_s.unwrap_or(STALE_S) as i64 * 1000;
    let stopped = project.settings.heartbeat_stopped_s.unwrap_or(STOPPED_S) as i64 * 1000;
    let lead = crate::leads::view(r, project)?;
    // A lead Baton runs is alive while its process works or its session rests
    // (no model call is needed to know it), whatever heartbeats say.
    let status = match (lead.as_ref().filter(|l| l.record.wanted).map(|l| l.state.as_str()), age) {
        (Some("working" | "idle"), _) => "running",
        (Some(_), _) => "stale",
        (None, Some(a)) if a < stale => "running",
        (None, Some(a)) if a < stopped => "stale",
        _ => "stopped",
    };
    let tasks = r.tasks(&TaskFilter { project: Some(project.id.clone()), ..Default::default() })?;
    let by_id: HashMap<&TaskId, &Task> = tasks.iter().map(|t| (&t.id, t)).collect();
    let count = |f: &dyn Fn(TaskStatus) -> bool| tasks.iter().filter(|t| f(t.status)).count() as u64;
    let active_agents = tasks
        .iter()
        .filter(|t| matches!(t.status, TaskStatus::Running | TaskStatus::Checking))
        .map(|t| ActiveAgent {
            agent_id: t.agent.clone(),
            task_id: t.id.to_string(),
            task_title: t.title.clone(),
            spawned_at: t.started_at,
            session_key: t.session_id.as_ref().map(ToString::to_string),
        })
        .collect();
    let under_way =
        |id: &TaskId| by_id.get(id).is_some_and(|d| d.status == TaskStatus::Succeeded || d.status.is_active());
    let mut next_wave: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            t.status == TaskStatus::Queued || (t.status == TaskStatus::Pending && t.depends_on.iter().all(under_way))
        })
        .collect();
    next_wave.sort_by_key(|t| t.created_at);
    let troubled = tasks.iter().any(|t| matches!(t.status, TaskStatus::Failed | TaskStatus::Blocked));
    Ok(LeadStatus {
        status: status.to_owned(),
        is_running: status == "running",
        is_healthy: status == "running" && !troubled,
        last_poll: last.as_ref().map(|h| h.at),
        time_since_last_poll: age,
        session_key: lead
            .as_ref()
            .filter(|l| l.record.wanted)
            .and_then(|l| l.record.session_id.as_ref().map(|s| s.to_string()))
            .or_else(|| last.as_ref().and_then(|h| h.session_key.clone())),
        source: last.as_ref().map(|h| h.source.clone()),
        active_agents,
        completed_count: count(&|s| s == TaskStatus::Succeeded),
        state: LeadState {
            tasks_total: tasks.len() as u64,
            tasks_completed: count(&|s| s == TaskStatus::Succeeded),
            tasks_in_progress: count(&|s| s.is_active()),
            tasks_todo: count(&|s| matches!(s, TaskStatus::Pending | TaskStatus::AwaitingApproval)),
            next_wave: next_wave.into_iter().map(|t| t.id.to_string()).collect(),
        },
        lead,
    })
}
