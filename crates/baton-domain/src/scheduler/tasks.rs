//! Tasks: creation, readiness, promotion and blocking through the DAG, and the
//! user's actions (stop, retry, resume, approve).

use std::collections::HashMap;

use baton_core::agent::AgentDef;
use baton_core::api::CreateTask;
use baton_core::ids::{PlanId, ProjectId, RunId, SessionId, TaskId};
use baton_core::model::{
    Loops, MergeVia, OrchestrationRef, Project, Run, RunKind, Session, SpoolOffsets, Task, TaskGit, Usage,
};
use baton_core::names::{task_branch, title_from_prompt, validate_branch_name};
use baton_core::sandbox::SandboxMode;
use baton_core::status::{IllegalTransition, RunStatus, SessionStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_store::{StoreTx, TaskFilter};

use super::Effects;
use super::emit::{insert_task, save_run, save_session, save_task};
use super::settle::settled;
use crate::Error;
use crate::resolve;
use crate::state::Config;
use crate::tokens::Caller;

/// The longest prompt accepted, in bytes.
pub(crate) const MAX_PROMPT_BYTES: usize = 512 * 1024;

/// Takes what a launcher reports of a task's branch and worktree, keeping what
/// only the coordinator knows (whether and where it was merged).
pub fn update_git(task: &mut Task, reported: TaskGit) {
    let old = std::mem::take(&mut task.git);
    // A report with a head describes the pushed branch (the end of a run): it
    // replaces the description, and the branch now holds what a checkpoint had.
    // A report without one (a start) leaves the description as it was.
    let pushed = reported.head.is_some();
    task.git = TaskGit {
        branch: reported.branch.or(old.branch),
        base_branch: reported.base_branch.or(old.base_branch),
        base_commit: reported.base_commit.or(old.base_commit),
        worktree: reported.worktree.or(old.worktree),
        head: reported.head.or(old.head),
        commits: if pushed { reported.commits } else { old.commits },
        files_changed: if pushed || !reported.files_changed.is_empty() {
            reported.files_changed
        } else {
            old.files_changed
        },
        diff_stat: if pushed { reported.diff_stat } else { old.diff_stat },
        wip_committed: if pushed { reported.wip_committed } else { old.wip_committed },
        merge: old.merge,
        merged_commit: old.merged_commit,
        disk_bytes: reported.disk_bytes.or(old.disk_bytes),
        launcher: reported.launcher.or(old.launcher),
        checkpoint: if pushed { None } else { old.checkpoint },
    };
}

/// Moves a task to `to`, recording why and when.
pub(crate) fn set_status(task: &mut Task, to: TaskStatus, reason: Option<String>) -> Result<(), IllegalTransition> {
    task.status = task.status.transition(to)?;
    task.reason = reason;
    let now = Timestamp::now();
    task.updated_at = now;
    if to == TaskStatus::Running && task.started_at.is_none() {
        task.started_at = Some(now);
    }
    if to.is_finished() {
        task.finished_at = Some(now);
    } else if to.is_active() {
        task.finished_at = None;
    }
    Ok(())
}

/// A task to create, resolved and checked.
pub struct NewTask {
    /// Its project.
    pub project: Project,
    /// What to do.
    pub prompt: String,
    /// Its title.
    pub title: String,
    /// Its agent.
    pub agent: AgentDef,
    /// Capabilities asked for.
    pub tags: Vec<String>,
    /// Prerequisites (existing tasks of the same project).
    pub depends_on: Vec<TaskId>,
    /// Acceptance checks.
    pub checks: Vec<String>,
    /// Seconds per run.
    pub timeout_s: Option<u64>,
    /// Seconds without output before a run is stopped as stalled.
    pub stall_s: Option<u64>,
    /// Automatic retries.
    pub max_retries: u32,
    /// Spending limit.
    pub budget_usd: Option<f64>,
    /// Approval gate.
    pub approval: bool,
    /// Its branch (the default name when `None`).
    pub branch: Option<String>,
    /// The session that started it.
    pub parent: Option<SessionId>,
    /// Whether the parent is told when it ends.
    pub callback: bool,
    /// Its plan and its name there.
    pub plan: Option<(PlanId, String)>,
    /// Its part in an orchestration.
    pub orchestration: Option<OrchestrationRef>,
    /// Its sandbox mode, when it names one.
    pub sandbox: Option<SandboxMode>,
    /// Launcher labels it needs.
    pub require: Vec<String>,
    /// Its feedback loops' settings.
    pub loops: Loops,
    /// For a reviewer's task: the task it reviews.
    pub review_of: Option<TaskId>,
    /// The branch and commit it starts from, when not the project's default
    /// branch's head (a reviewer's copy of the reviewed branch).
    pub base: Option<(String, String)>,
    /// What a person asked of it beyond the agent's defaults.
    pub asked: Asked,
}

/// What a person may ask of one task beyond its agent's and project's defaults.
#[derive(Debug, Clone, Default)]
pub struct Asked {
    /// The model, overriding the agent's.
    pub model: Option<String>,
    /// The branch it starts from and lands on (the project's default branch by default).
    pub base_branch: Option<String>,
    /// Files for its agent.
    pub attachments: Vec<baton_core::model::Attachment>,
    /// The tasks started with it as attempts at the same work.
    pub attempts: Vec<TaskId>,
    /// The inbox message it takes.
    pub message: Option<String>,
    /// The project it leads.
    pub leads: Option<baton_core::ids::ProjectId>,
    /// What started it by itself.
    pub origin: Option<String>,
    /// The forge issue it came from.
    pub issue: Option<baton_core::model::IssueLink>,
    /// The workset it changes, with its own project first.
    pub workset: Option<baton_core::workset::TaskWorkset>,
}

impl NewTask {
    /// A task Baton makes itself (a planner, a synthesis, a reviewer): the
    /// agent's timeout and budget, and nothing else asked of it.
    pub(crate) fn made(project: &Project, agent: AgentDef, prompt: String, title: String) -> NewTask {
        NewTask {
            project: project.clone(),
            prompt,
            title,
            timeout_s: agent.timeout_s,
            stall_s: agent.stall_s,
            budget_usd: agent.budget_usd,
            agent,
            tags: Vec::new(),
            depends_on: Vec::new(),
            checks: Vec::new(),
            max_retries: 0,
            approval: false,
            branch: None,
            parent: None,
            callback: false,
            plan: None,
            orchestration: None,
            sandbox: None,
            require: Vec::new(),
            loops: Loops::default(),
            review_of: None,
            base: None,
            asked: Asked::default(),
        }
    }
}

/// Checks the fields every way of creating a task shares.
pub(crate) fn check_fields(
    prompt: &str,
    title: Option<&str>,
    timeout_s: Option<u64>,
    budget_usd: Option<f64>,
    checks: &[String],
    branch: Option<&str>,
) -> Result<(), Error> {
    if prompt.trim().is_empty() {
        return Err(Error::invalid("`prompt` must not be empty"));
    }
    if prompt.len() > MAX_PROMPT_BYTES {
        return Err(Error::too_large(format!("`prompt` is longer than {MAX_PROMPT_BYTES} bytes")));
    }
    if let Some(title) = title
        && (title.trim().is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control))
    {
        return Err(Error::invalid("`title` must be 1 to 200 characters without control characters"));
    }
    if timeout_s == Some(0) {
        return Err(Error::invalid("`timeout_s` must be at least 1"));
    }
    if budget_usd.is_some_and(|b| !(b.is_finite() && b >= 0.0)) {
        return Err(Error::invalid("`budget_usd` must be a non-negative number"));
    }
    if checks.iter().any(|c| c.trim().is_empty()) {
        return Err(Error::invalid("`checks` must not contain empty commands"));
    }
    if let Some(b) = branch {
        validate_branch_name(b)?;
    }
    Ok(())
}

/// Creates a task from a request; it starts at once when nothing holds it back.
pub fn create_task(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    req: CreateTask,
    config: &Config,
) -> Result<Task, Error> {
    let new = new_task(tx, caller, req, config)?;
    insert(tx, fx, new, TaskId::generate())
}

/// A task from a request, checked (its agent resolved, its delegation allowed,
/// its prerequisites found), not yet written.
pub fn new_task(tx: &dyn StoreTx, caller: &Caller, req: CreateTask, config: &Config) -> Result<NewTask, Error> {
    let parent = match caller.session() {
        Some(id) => Some(resolve::session(tx, &id)?),
        None => None,
    };
    let (project, workset) = match &req.workset {
        Some(name) => {
            let (project, workset) = crate::worksets::for_task(tx, name, req.project.as_deref())?;
            (project, Some(workset))
        }
        None => (resolve::request_project(tx, req.project.as_deref(), parent.as_ref().map(|s| &s.project_id))?, None),
    };
    // A workset task's own checks are the ones asked for (run across the set);
    // each project's run in that project's directory.
    let checks = match (&req.checks, &workset) {
        (Some(asked), _) => asked.clone(),
        (None, Some(_)) => Vec::new(),
        (None, None) => project.settings.checks.clone(),
    };
    check_fields(&req.prompt, req.title.as_deref(), req.timeout_s, req.budget_usd, &checks, req.branch.as_deref())?;
    if req.stall_s == Some(0) {
        return Err(Error::invalid("`stall_s` must be at least 1"));
    }
    for label in &req.require {
        baton_core::names::validate_label(label)?;
    }
    let agent = resolve_agent(tx, &project, req.agent.as_deref(), &req.tags)?;
    if !agent.projects.is_empty() {
        let names: Vec<&str> = match &workset {
            Some(w) => w.parts.iter().map(|p| p.name.as_str()).collect(),
            None => vec![project.name.as_str()],
        };
        if let Some(outside) = names.iter().find(|n| !agent.projects.iter().any(|p| p == *n)) {
            let what = if workset.is_some() { "a workset task's projects include" } else { "the task is in" };
            return Err(Error::combination(format!(
                "agent {} works only in {}; {what} {outside}",
                agent.name,
                agent.projects.join(", ")
            )));
        }
    }
    if let Some(parent) = &parent {
        // A session of a lead that was replaced starts nothing (its fence is old).
        crate::leads::acting(tx, &parent.id)?;
        check_delegation(tx, parent, &agent, config.max_delegation_depth)?;
    }
    let ask = super::loops::Ask {
        fix_attempts: req.fix_attempts,
        on_conflict: req.on_conflict,
        review_by: req.review_by.clone(),
        review_rounds: req.review_rounds,
    };
    let loops = super::loops::settings(tx, &project, &agent, ask)?;
    let depends_on = resolve_dependencies(tx, &project, &req.depends_on)?;
    let mut asked = asked_of(tx, &req)?;
    asked.workset = workset;
    Ok(NewTask {
        title: req.title.clone().unwrap_or_else(|| title_from_prompt(&req.prompt)),
        prompt: req.prompt,
        timeout_s: req.timeout_s.or(agent.timeout_s),
        stall_s: req.stall_s.or(agent.stall_s),
        budget_usd: req.budget_usd.or(agent.budget_usd),
        agent,
        tags: req.tags,
        depends_on,
        checks,
        max_retries: req.max_retries.unwrap_or(0),
        approval: req.approval.is_some_and(|a| a.0),
        branch: req.branch,
        callback: req.callback && parent.is_some(),
        parent: parent.map(|s| s.id),
        plan: None,
        orchestration: None,
        sandbox: req.sandbox,
        require: req.require,
        loops,
        review_of: None,
        base: None,
        asked,
        project,
    })
}

/// The largest file a person may attach to a task.
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;

/// What a request asks beyond the defaults, checked: a model name, a base
/// branch of a valid name, attachments that exist in the context store and are
/// within [`MAX_ATTACHMENT_BYTES`].
pub(crate) fn asked_of(tx: &dyn StoreTx, req: &CreateTask) -> Result<Asked, Error> {
    if let Some(model) = &req.model
        && (model.trim().is_empty() || model.chars().count() > 200 || model.chars().any(char::is_control))
    {
        return Err(Error::invalid("`model` must be 1 to 200 characters without control characters"));
    }
    if let Some(base) = &req.base {
        validate_branch_name(base)?;
    }
    let mut attachments = Vec::with_capacity(req.attachments.len());
    for a in &req.attachments {
        if a.name.is_empty()
            || a.name.chars().count() > 200
            || a.name.contains(['/', '\\', '\0'])
            || a.name.starts_with('.')
        {
            return Err(Error::invalid(format!(
                "attachment name {:?} must be a plain file name (no `/`, not starting with `.`)",
                a.name
            )));
        }
        let doc = tx.document(&a.doc)?.ok_or_else(|| Error::not_found("document", &a.doc))?;
        if doc.size > MAX_ATTACHMENT_BYTES {
            return Err(Error::too_large(format!(
                "attachment {} is {} bytes; the limit is {MAX_ATTACHMENT_BYTES} bytes (10 MiB)",
                a.name, doc.size
            )));
        }
        attachments.push(baton_core::model::Attachment { name: a.name.clone(), doc: a.doc.clone(), size: doc.size });
    }
    Ok(Asked { model: req.model.clone(), base_branch: req.base.clone(), attachments, ..Asked::default() })
}

/// Existing tasks named as prerequisites: they must exist and be of the project.
pub(crate) fn resolve_dependencies(
    tx: &dyn StoreTx,
    project: &Project,
    names: &[String],
) -> Result<Vec<TaskId>, Error> {
    let mut depends_on: Vec<TaskId> = Vec::new();
    for text in names {
        let dep = resolve::task_ref(tx, text)?;
        if dep.project_id != project.id {
            return Err(Error::invalid(format!("`depends_on` names {}, a task of another project", dep.id)));
        }
        if !depends_on.contains(&dep.id) {
            depends_on.push(dep.id);
        }
    }
    Ok(depends_on)
}

/// Stores a new task and, when nothing holds it back, queues its first run.
pub fn insert(tx: &mut dyn StoreTx, fx: &mut Effects, new: NewTask, id: TaskId) -> Result<Task, Error> {
    insert_known(tx, fx, new, id, &HashMap::new())
}

/// Like [`insert`], with the statuses of some prerequisites already known (tasks
/// created earlier in the same plan), so they need not be read back.
pub(crate) fn insert_known(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    new: NewTask,
    id: TaskId,
    known: &HashMap<TaskId, TaskStatus>,
) -> Result<Task, Error> {
    let branch = new.branch.unwrap_or_else(|| task_branch(&id, &new.title));
    let now = Timestamp::now();
    let (plan_id, plan_name) = match new.plan {
        Some((p, n)) => (Some(p), Some(n)),
        None => (None, None),
    };
    let mut task = Task {
        id,
        project_id: new.project.id.clone(),
        title: new.title,
        prompt: new.prompt,
        agent: new.agent.name.clone(),
        tags: new.tags,
        depends_on: new.depends_on,
        checks: new.checks,
        timeout_s: new.timeout_s,
        stall_s: new.stall_s,
        max_retries: new.max_retries,
        retries: 0,
        budget_usd: new.budget_usd,
        approval: new.approval,
        approved_at: None,
        sandbox: new.sandbox,
        require: new.require,
        isolation: None,
        status: TaskStatus::Pending,
        reason: None,
        session_id: None,
        parent_session_id: new.parent,
        callback: new.callback,
        plan_id,
        plan_name,
        orchestration: new.orchestration,
        git: match new.base {
            Some((base_branch, base_commit)) => TaskGit {
                branch: Some(branch),
                base_branch: Some(base_branch),
                base_commit: Some(base_commit),
                ..TaskGit::default()
            },
            None => TaskGit {
                branch: Some(branch),
                base_branch: Some(new.asked.base_branch.clone().unwrap_or_else(|| new.project.default_branch.clone())),
                ..TaskGit::default()
            },
        },
        check_results: Vec::new(),
        throttled: 0,
        agent_switches: Vec::new(),
        loops: new.loops,
        review_of: new.review_of,
        pr: None,
        external: false,
        result: None,
        usage: Usage::default(),
        created_at: now,
        updated_at: now,
        started_at: None,
        finished_at: None,
        model: new.asked.model,
        follow_ups: Vec::new(),
        attempts: new.asked.attempts,
        attachments: new.asked.attachments,
        message: new.asked.message,
        leads: new.asked.leads,
        origin: new.asked.origin,
        issue: new.asked.issue,
        workset: new.asked.workset,
    };
    match readiness_known(tx, &task.depends_on, known)? {
        Readiness::Blocked(reason) => {
            task.status = TaskStatus::Blocked;
            task.reason = Some(reason);
            insert_task(tx, &task)?;
        }
        Readiness::Waiting => insert_task(tx, &task)?,
        Readiness::Ready => {
            insert_task(tx, &task)?;
            become_ready(tx, fx, &mut task)?;
        }
    }
    Ok(task)
}

/// Picks the agent for a task: the one named, else the first whose tags include
/// every tag asked for, else the project's default, else `claude`.
pub(crate) fn resolve_agent(
    tx: &dyn StoreTx,
    project: &Project,
    named: Option<&str>,
    tags: &[String],
) -> Result<AgentDef, Error> {
    if let Some(name) = named {
        return tx.agent(name)?.ok_or_else(|| Error::not_found("agent", name));
    }
    if !tags.is_empty() {
        let wanted: Vec<String> = tags.iter().map(|t| t.to_lowercase()).collect();
        let matching =
            tx.agents()?.into_iter().find(|a| wanted.iter().all(|w| a.tags.iter().any(|t| t.to_lowercase() == *w)));
        return matching.ok_or_else(|| Error::not_found("agent", format!("with tags [{}]", tags.join(", "))));
    }
    let name = project.settings.default_agent.as_deref().unwrap_or("claude");
    tx.agent(name)?.ok_or_else(|| Error::not_found("agent", name))
}

/// Refuses a session starting an agent its rules do not allow, or delegation
/// deeper than allowed.
pub(crate) fn check_delegation(
    tx: &dyn StoreTx,
    parent: &Session,
    target: &AgentDef,
    max_depth: u32,
) -> Result<(), Error> {
    let Some(def) = tx.agent(&parent.agent)? else {
        return Err(Error::forbidden(format!("agent {} is no longer defined", parent.agent)));
    };
    if !def.delegates_to.iter().any(|n| n == &target.name || n == "*") {
        return Err(Error::forbidden(format!(
            "agent {} may not start agent {} (add it to {}'s `delegates_to`)",
            parent.agent, target.name, parent.agent
        )));
    }
    if let Some(fanout) = def.max_fanout {
        let filter = TaskFilter {
            parent_session: Some(parent.id.clone()),
            statuses: TaskStatus::ALL.iter().copied().filter(|s| !s.is_settled()).collect(),
            ..TaskFilter::default()
        };
        if tx.tasks(&filter)?.len() as u32 >= fanout {
            return Err(Error::forbidden(format!(
                "agent {} may have at most {fanout} unfinished tasks of its own at once (its `max_fanout`)",
                parent.agent
            )));
        }
    }
    // Each ancestor's own `max_depth` bounds how far below it the chain goes.
    let (mut depth, mut below) = (2, 1);
    let mut limits = def.max_depth.map(|d| (parent.agent.clone(), d, below)).into_iter().collect::<Vec<_>>();
    let mut ancestor = parent.parent_session_id.clone();
    while let Some(id) = ancestor {
        depth += 1;
        below += 1;
        let session = tx.session(&id)?;
        if let Some(s) = &session
            && let Some(d) = tx.agent(&s.agent)?.and_then(|a| a.max_depth)
        {
            limits.push((s.agent.clone(), d, below));
        }
        ancestor = session.and_then(|s| s.parent_session_id);
    }
    if depth > max_depth {
        return Err(Error::forbidden(format!("delegation may be at most {max_depth} levels deep")));
    }
    if let Some((agent, d, _)) = limits.into_iter().find(|(_, d, below)| below > d) {
        return Err(Error::forbidden(format!(
            "agent {agent}'s work may be delegated at most {d} level(s) below it (its `max_depth`)"
        )));
    }
    Ok(())
}

/// Whether a task's prerequisites let it start.
enum Readiness {
    /// Every prerequisite succeeded.
    Ready,
    /// Some are still pending or running.
    Waiting,
    /// One failed, was cancelled, or is itself blocked.
    Blocked(String),
}

fn readiness(tx: &dyn StoreTx, deps: &[TaskId]) -> Result<Readiness, Error> {
    readiness_known(tx, deps, &HashMap::new())
}

fn readiness_known(tx: &dyn StoreTx, deps: &[TaskId], known: &HashMap<TaskId, TaskStatus>) -> Result<Readiness, Error> {
    let mut waiting = false;
    for id in deps {
        let status = match known.get(id) {
            Some(s) => *s,
            None => resolve::task(tx, id)?.status,
        };
        match status {
            TaskStatus::Succeeded => {}
            TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Blocked => {
                return Ok(Readiness::Blocked(format!("prerequisite {id} is {status}")));
            }
            _ => waiting = true,
        }
    }
    Ok(if waiting { Readiness::Waiting } else { Readiness::Ready })
}

/// A task whose prerequisites are done: it waits for approval, or starts.
fn become_ready(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task) -> Result<(), Error> {
    if task.approval && task.approved_at.is_none() {
        set_status(task, TaskStatus::AwaitingApproval, None)?;
    } else {
        let prompt = task.prompt.clone();
        queue_run(tx, fx, task, RunKind::Start, prompt, None, None)?;
    }
    save_task(tx, task)?;
    Ok(())
}

/// Queues a run for a task: in `session` (a resume) or in a new session, and
/// moves the task to `queued`. The caller saves the task.
pub(crate) fn queue_run(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    kind: RunKind,
    message: String,
    session: Option<Session>,
    not_before: Option<Timestamp>,
) -> Result<Run, Error> {
    let now = Timestamp::now();
    let agent = tx.agent(&task.agent)?.ok_or_else(|| Error::not_found("agent", &task.agent))?;
    let fresh = session.is_none();
    let session = match session {
        Some(mut s) => {
            s.status = s.status.transition(SessionStatus::Queued)?;
            s.updated_at = now;
            s
        }
        None => Session {
            id: SessionId::generate(),
            task_id: task.id.clone(),
            project_id: task.project_id.clone(),
            agent: agent.name.clone(),
            executor: agent.executor,
            status: SessionStatus::Queued,
            agent_session_id: None,
            parent_session_id: task.parent_session_id.clone(),
            usage: Usage::default(),
            pending_callbacks: Vec::new(),
            created_at: now,
            updated_at: now,
        },
    };
    // A message in the agent's inbox is taken before its queued work: its run
    // goes to the head of the agent's queue (runs are claimed oldest first).
    let queued_at = match (&task.message, kind) {
        (Some(_), RunKind::Start) => {
            tx.oldest_queued_run(&agent.name)?.map_or(now, |head| Timestamp::from_millis(head.as_millis() - 1).min(now))
        }
        _ => now,
    };
    let run = Run {
        id: RunId::generate(),
        session_id: session.id.clone(),
        task_id: task.id.clone(),
        project_id: task.project_id.clone(),
        agent: session.agent.clone(),
        kind,
        status: RunStatus::Queued,
        message,
        launcher_id: None,
        pid: None,
        exit_code: None,
        signal: None,
        error: None,
        result: None,
        offsets: SpoolOffsets::default(),
        stop_reason: None,
        stop_sent_at: None,
        repeats: Default::default(),
        usage: Usage::default(),
        not_before,
        created_at: queued_at,
        claimed_at: None,
        started_at: None,
        finished_at: None,
    };
    task.session_id = Some(session.id.clone());
    set_status(task, TaskStatus::Queued, None)?;
    task.reason = super::placement::unavailable(tx, task, &agent)?;
    if fresh {
        super::emit::insert_session(tx, &session)?;
    } else {
        save_session(tx, &session)?;
    }
    save_run(tx, &run)?;
    match not_before {
        Some(at) => fx.wake_at = Some(fx.wake_at.map_or(at, |w| w.min(at))),
        None => {
            fx.wake.executor(agent.executor);
            // The launcher that has the worktree is the one placement prefers.
            if let Some(home) = task.git.launcher.as_ref().filter(|_| task.git.worktree.is_some()) {
                fx.wake.launcher(home);
            }
        }
    }
    Ok(run)
}

/// A task's work is done (its checks passed, its reviewer approved or ran out of
/// rounds): it succeeds, its dependents may start, and a merge follows when its
/// project merges automatically or its conflict loop waits to merge again.
pub(crate) fn succeed(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    reason: Option<String>,
) -> Result<(), Error> {
    set_status(task, TaskStatus::Succeeded, reason)?;
    let remerge = std::mem::take(&mut task.loops.remerge);
    save_task(tx, task)?;
    // A lead's turn ended: it rests; nothing of it is merged or pushed.
    if task.leads.is_some() {
        return settled(tx, fx, task);
    }
    promote_dependents(tx, fx, &task.id)?;
    let project = tx.project(&task.project_id)?;
    let approved = super::loops::merge_gate(task, false).is_ok();
    // Through the forge, the forge's worker merges once the pull request is green.
    let here = project.as_ref().is_some_and(|p| p.settings.auto_merge && p.settings.merge_via != Some(MergeVia::Forge));
    if remerge || (approved && here) {
        crate::review::queue_merge(tx, fx, &task.id, None, false)?;
    }
    if project.is_some_and(|p| p.settings.forge.is_some()) {
        fx.forge = true;
    }
    settled(tx, fx, task)
}

/// A task fails for good: its dependents are blocked.
pub(crate) fn fail(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    reason: Option<String>,
) -> Result<(), Error> {
    set_status(task, TaskStatus::Failed, reason)?;
    save_task(tx, task)?;
    block_dependents(tx, fx, task)?;
    settled(tx, fx, task)
}

/// Brings the waiting reasons of queued tasks up to date after launchers came or went.
pub(crate) fn refresh_unavailable(tx: &mut dyn StoreTx) -> Result<(), Error> {
    let queued = tx.tasks(&baton_store::TaskFilter { statuses: vec![TaskStatus::Queued], ..Default::default() })?;
    for mut task in queued {
        let Some(agent) = tx.agent(&task.agent)? else { continue };
        let reason = super::placement::unavailable(tx, &task, &agent)?;
        if reason != task.reason {
            task.reason = reason;
            task.updated_at = Timestamp::now();
            save_task(tx, &task)?;
        }
    }
    Ok(())
}

/// After a task succeeded: start the dependents it was the last obstacle for.
pub(crate) fn promote_dependents(tx: &mut dyn StoreTx, fx: &mut Effects, id: &TaskId) -> Result<(), Error> {
    for mut dep in tx.dependents(id)? {
        if dep.status == TaskStatus::Pending && matches!(readiness(tx, &dep.depends_on)?, Readiness::Ready) {
            become_ready(tx, fx, &mut dep)?;
        }
    }
    Ok(())
}

/// After a task failed or was cancelled: block everything that waits on it,
/// transitively, saying why.
pub(crate) fn block_dependents(tx: &mut dyn StoreTx, fx: &mut Effects, root: &Task) -> Result<(), Error> {
    let mut stack = vec![(root.id.clone(), root.status)];
    while let Some((id, status)) = stack.pop() {
        for mut dep in tx.dependents(&id)? {
            if matches!(dep.status, TaskStatus::Pending | TaskStatus::AwaitingApproval) {
                set_status(&mut dep, TaskStatus::Blocked, Some(format!("prerequisite {id} is {status}")))?;
                save_task(tx, &dep)?;
                settled(tx, fx, &dep)?;
                stack.push((dep.id.clone(), dep.status));
            }
        }
    }
    Ok(())
}

/// After a failed task is retried or resumed: its blocked dependents wait again,
/// unless another prerequisite still blocks them.
pub(crate) fn unblock_dependents(tx: &mut dyn StoreTx, root: &TaskId) -> Result<(), Error> {
    let mut stack = vec![root.clone()];
    while let Some(id) = stack.pop() {
        for mut dep in tx.dependents(&id)? {
            if dep.status == TaskStatus::Blocked && !matches!(readiness(tx, &dep.depends_on)?, Readiness::Blocked(_)) {
                set_status(&mut dep, TaskStatus::Pending, None)?;
                save_task(tx, &dep)?;
                stack.push(dep.id.clone());
            }
        }
    }
    Ok(())
}

/// Stops a task: a waiting one is cancelled at once; a running one is asked to
/// stop, and is cancelled when its launcher reports the agent gone.
pub fn stop_task(tx: &mut dyn StoreTx, fx: &mut Effects, id: &TaskId, reason: Option<String>) -> Result<Task, Error> {
    let mut task = resolve::task(tx, id)?;
    refuse_external(&task, "stopped")?;
    let reason = reason.filter(|r| !r.trim().is_empty()).unwrap_or_else(|| "stopped by request".into());
    match task.status {
        TaskStatus::Pending | TaskStatus::AwaitingApproval | TaskStatus::Blocked | TaskStatus::Paused => {
            set_status(&mut task, TaskStatus::Cancelled, Some(reason))?;
            save_task(tx, &task)?;
            block_dependents(tx, fx, &task)?;
            settled(tx, fx, &task)?;
        }
        TaskStatus::Queued | TaskStatus::Running | TaskStatus::Checking => {
            let active = match &task.session_id {
                Some(sid) => tx.runs_of_session(sid)?.into_iter().rev().find(|r| !r.status.is_finished()),
                None => None,
            };
            match active {
                Some(mut run) if run.status == RunStatus::Queued => {
                    let now = Timestamp::now();
                    run.status = run.status.transition(RunStatus::Stopped)?;
                    run.stop_reason = Some(reason.clone());
                    run.finished_at = Some(now);
                    save_run(tx, &run)?;
                    let mut session = resolve::session(tx, &run.session_id)?;
                    session.status = session.status.transition(SessionStatus::Stopped)?;
                    session.updated_at = now;
                    save_session(tx, &session)?;
                    set_status(&mut task, TaskStatus::Cancelled, Some(reason))?;
                    save_task(tx, &task)?;
                    block_dependents(tx, fx, &task)?;
                    settled(tx, fx, &task)?;
                }
                Some(mut run) => {
                    if run.stop_reason.is_none() {
                        run.stop_reason = Some(reason);
                        save_run(tx, &run)?;
                    }
                    match &run.launcher_id {
                        Some(id) => fx.wake.launcher(id),
                        None => fx.wake.everyone(),
                    }
                }
                None => {
                    set_status(&mut task, TaskStatus::Cancelled, Some(reason))?;
                    save_task(tx, &task)?;
                    block_dependents(tx, fx, &task)?;
                    settled(tx, fx, &task)?;
                }
            }
        }
        TaskStatus::Reviewing => {
            // Cancelled first, so its reviewer's end finds nothing left to decide.
            set_status(&mut task, TaskStatus::Cancelled, Some(reason.clone()))?;
            save_task(tx, &task)?;
            super::loops::stop_review(tx, fx, &task, &reason)?;
            block_dependents(tx, fx, &task)?;
            settled(tx, fx, &task)?;
        }
        TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled => {
            return Err(Error::conflict(format!("task {} has already ended ({})", task.id, task.status)));
        }
    }
    Ok(task)
}

/// Refuses to act on a session Baton did not start.
fn refuse_external(task: &Task, what: &str) -> Result<(), Error> {
    if task.external {
        return Err(Error::conflict(format!(
            "task {} is an interactive Claude Code session Baton only watches; it cannot be {what} from here",
            task.id
        )));
    }
    Ok(())
}

/// Runs a failed or cancelled task again in a new session (on the same branch,
/// so earlier work is kept), and lets its blocked dependents wait for it again.
pub fn retry_task(tx: &mut dyn StoreTx, fx: &mut Effects, id: &TaskId) -> Result<Task, Error> {
    let mut task = resolve::task(tx, id)?;
    refuse_external(&task, "retried")?;
    match task.status {
        TaskStatus::Failed | TaskStatus::Cancelled => {}
        TaskStatus::Blocked => {
            return Err(Error::conflict(format!(
                "task {} is blocked ({}); retry that prerequisite instead",
                task.id,
                task.reason.as_deref().unwrap_or("a prerequisite failed")
            )));
        }
        other => {
            return Err(Error::conflict(format!(
                "task {} is {other}; only failed or cancelled tasks can be retried",
                task.id
            )));
        }
    }
    // A person's retry gives the governor its full count of tries again.
    task.throttled = 0;
    let prompt = task.prompt.clone();
    if readiness(tx, &task.depends_on.clone())?.is_ready() {
        queue_run(tx, fx, &mut task, RunKind::Start, prompt, None, None)?;
    } else {
        set_status(&mut task, TaskStatus::Pending, None)?;
    }
    save_task(tx, &task)?;
    unblock_dependents(tx, &task.id)?;
    Ok(task)
}

impl Readiness {
    fn is_ready(&self) -> bool {
        matches!(self, Readiness::Ready)
    }
}

/// Continues a finished or paused task's conversation with a new message, in
/// the same session and worktree; `budget_usd` gives it a new budget first.
pub fn resume_task(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &TaskId,
    message: String,
    budget_usd: Option<f64>,
) -> Result<Task, Error> {
    if message.trim().is_empty() {
        return Err(Error::invalid("`message` must not be empty"));
    }
    if message.len() > MAX_PROMPT_BYTES {
        return Err(Error::too_large(format!("`message` is longer than {MAX_PROMPT_BYTES} bytes")));
    }
    if budget_usd.is_some_and(|b| !(b.is_finite() && b >= 0.0)) {
        return Err(Error::invalid("`budget_usd` must be a non-negative number"));
    }
    let mut task = resolve::task(tx, id)?;
    refuse_external(&task, "resumed")?;
    if !task.status.is_finished() && task.status != TaskStatus::Paused {
        return Err(Error::conflict(format!(
            "task {} is {}; only a finished or paused task can be resumed (stop it first)",
            task.id, task.status
        )));
    }
    if budget_usd.is_some() {
        task.budget_usd = budget_usd;
    }
    task.throttled = 0;
    let was_failed = task.status != TaskStatus::Succeeded;
    match task.session_id.clone() {
        Some(session_id) => {
            let session = resolve::session(tx, &session_id)?;
            queue_run(tx, fx, &mut task, RunKind::Resume, message, Some(session), None)?;
        }
        // Paused before its agent ever started: it starts now.
        None if task.status == TaskStatus::Paused => {
            let prompt = task.prompt.clone();
            queue_run(tx, fx, &mut task, RunKind::Start, prompt, None, None)?;
        }
        None => return Err(Error::conflict(format!("task {} never started; retry it instead", task.id))),
    }
    save_task(tx, &task)?;
    if was_failed {
        unblock_dependents(tx, &task.id)?;
    }
    Ok(task)
}

/// The message that continues a task paused for its budget once it has more.
pub(crate) const RESUME_AFTER_BUDGET: &str =
    "Your budget was raised after it ran out mid-task. Continue the task from where you left off.";

/// Continues the project's tasks paused for a budget, now that there may be
/// room: those whose own budget and their project's are not spent. How many.
pub fn resume_budget_paused(tx: &mut dyn StoreTx, fx: &mut Effects, project: &ProjectId) -> Result<usize, Error> {
    let filter =
        TaskFilter { project: Some(project.clone()), statuses: vec![TaskStatus::Paused], ..TaskFilter::default() };
    let mut n = 0;
    for task in tx.tasks(&filter)? {
        if !task.reason.as_deref().is_some_and(super::runs::is_budget_reason)
            || super::runs::over_budget(tx, &task)?.is_some()
        {
            continue;
        }
        resume_task(tx, fx, &task.id, RESUME_AFTER_BUDGET.to_owned(), None)?;
        n += 1;
    }
    Ok(n)
}

/// Lets a task that waits for approval start.
pub fn approve_task(tx: &mut dyn StoreTx, fx: &mut Effects, id: &TaskId) -> Result<Task, Error> {
    let mut task = resolve::task(tx, id)?;
    if task.status != TaskStatus::AwaitingApproval {
        return Err(Error::conflict(format!("task {} is not waiting for approval (it is {})", task.id, task.status)));
    }
    task.approved_at = Some(Timestamp::now());
    let prompt = task.prompt.clone();
    queue_run(tx, fx, &mut task, RunKind::Start, prompt, None, None)?;
    save_task(tx, &task)?;
    Ok(task)
}
