//! Placement: which launchers may run a task's agent, and why none can.
//!
//! A run goes only to a launcher that is online and not draining, offers the
//! agent's executor, has every label the task and its agent `require`, has the
//! agent's program (when its preflight looked), and can make a sandbox when the
//! task requires one. Among those, one that still has the task's worktree is
//! preferred, then the one with the most free slots (see `claim_runs`).

use baton_core::agent::AgentDef;
use baton_core::model::{Launcher, Project, Task};
use baton_core::sandbox::{SandboxKind, SandboxMode};
use baton_core::status::LauncherStatus;
use baton_store::StoreRead;

use crate::Error;

/// Why a launcher may not run a task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unfit {
    /// It must not: offline, draining, without the executor or a required label.
    Never(String),
    /// It lacks what the run needs (the agent's program, a sandbox the task
    /// requires): another launcher is better, but when none has it, the run goes
    /// anyway and fails there with the reason (or moves to a fallback agent).
    Lacks(String),
}

impl Unfit {
    fn reason(&self) -> &str {
        match self {
            Unfit::Never(r) | Unfit::Lacks(r) => r,
        }
    }
}

/// Why `launcher` may not run `task` of `project` with `agent` (none: it may).
pub(crate) fn unfit(launcher: &Launcher, task: &Task, agent: &AgentDef, project: &Project) -> Option<Unfit> {
    if launcher.status != LauncherStatus::Online {
        return Some(Unfit::Never(format!("launcher {} is offline", launcher.name)));
    }
    if launcher.draining {
        return Some(Unfit::Never(format!("launcher {} is draining", launcher.name)));
    }
    if !launcher.executors.contains(&agent.executor) {
        return Some(Unfit::Never(format!(
            "launcher {} does not offer the {} executor",
            launcher.name, agent.executor
        )));
    }
    let missing: Vec<&str> =
        required(task, agent).filter(|l| !launcher.labels.contains(l)).map(String::as_str).collect();
    if !missing.is_empty() {
        return Some(Unfit::Never(format!("launcher {} lacks the label {}", launcher.name, missing.join(", "))));
    }
    if let Some(program) = agent.program()
        && launcher.programs.get(&program).is_some_and(|p| p.path.is_none())
    {
        return Some(Unfit::Lacks(format!("launcher {} does not have {program}", launcher.name)));
    }
    let mode = task.sandbox.or(agent.sandbox).or(project.settings.sandbox).unwrap_or_default();
    if mode == SandboxMode::Required && launcher.sandbox.as_ref().is_some_and(|s| s.kind == SandboxKind::None) {
        return Some(Unfit::Lacks(format!("launcher {} cannot make a sandbox", launcher.name)));
    }
    None
}

/// Whether `launcher` may take the run: it fits, or it lacks only what no
/// other online launcher has either (then the run fails there, saying why).
pub(crate) fn may_take(
    launcher: &Launcher,
    others: &[Launcher],
    task: &Task,
    agent: &AgentDef,
    project: &Project,
) -> bool {
    match unfit(launcher, task, agent, project) {
        None => true,
        Some(Unfit::Never(_)) => false,
        Some(Unfit::Lacks(_)) => others.iter().all(|l| l.id == launcher.id || unfit(l, task, agent, project).is_some()),
    }
}

/// The labels a task needs: its own and its agent's.
pub(crate) fn required<'a>(task: &'a Task, agent: &'a AgentDef) -> impl Iterator<Item = &'a String> {
    task.require.iter().chain(agent.require.iter().filter(|l| !task.require.contains(l)))
}

/// Why no launcher can run `task` now, for its `reason` (none: one can, or one
/// that lacks what it needs will take it and say so).
pub(crate) fn unavailable(r: &dyn StoreRead, task: &Task, agent: &AgentDef) -> Result<Option<String>, Error> {
    let Some(project) = r.project(&task.project_id)? else { return Ok(None) };
    let launchers = r.launchers()?;
    let online: Vec<&Launcher> = launchers.iter().filter(|l| l.status == LauncherStatus::Online).collect();
    if online.is_empty() {
        return Ok(Some("waiting: no launcher is online (start `baton up` or `baton launcher`)".into()));
    }
    let mut why = Vec::new();
    for l in &online {
        match unfit(l, task, agent, &project) {
            None | Some(Unfit::Lacks(_)) => return Ok(None),
            Some(u) => why.push(u.reason().to_owned()),
        }
    }
    Ok(Some(format!("waiting: no online launcher can run it ({})", why.join("; "))))
}
