//! Runs: handing them to launchers, following them, and ending them, with what
//! an ending means for the session and the task (success, retry, failure, and
//! the dependents that follow).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use baton_core::agent::AgentDef;
use baton_core::api::{
    Assignment, AttachResponse, Attached, BatchAck, EventBatch, FailureKind, Prerequisite, RunFinished, RunStarted,
};
use baton_core::event::{EventKind, NewEvent, ResultData};
use baton_core::ids::{LauncherId, ProjectId, RunId, TaskId};
use baton_core::model::{AgentSwitch, Launcher, OrderKind, Project, Run, RunKind, Session, Task, TokenKind, Usage};
use baton_core::status::{RunStatus, SessionStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_store::{ActiveOf, QueuedRuns, StoreRead, StoreTx};
use serde_json::json;

use super::emit::{save_run, save_session, save_task};
use super::settle::{deliver_callbacks, settled};
use super::tasks::{block_dependents, fail, queue_run, set_status, succeed, update_git};
use super::{Effects, governor, placement};
use crate::Error;
use crate::resolve;
use crate::state::Config;
use crate::tokens::{new_token, token_record};

/// How many queued runs a claim reads at a time.
const CLAIM_PAGE: u32 = 256;

/// How many pages a claim reads at most (runs that fit no limit are left out of
/// the pages; these are the runs this launcher cannot take: another executor, a
/// label, a backoff).
const CLAIM_PAGES: usize = 8;

/// How many times a session's run may be lost (its launcher died) and be
/// restarted before the task fails.
const MAX_LOST: usize = 3;

/// The message that resumes a session whose process was lost.
const RESUME_AFTER_LOSS: &str =
    "Your previous process was interrupted before it finished. Continue the task from where you left off.";

/// The message that resumes a conversation its provider cut short for rate limits.
const RESUME_AFTER_THROTTLE: &str =
    "Your provider stopped answering for a while (rate limits). Continue the task from where you left off.";

/// Runs that went on past their task's timeout by more than `slack_ms`, with the
/// timeout. Launchers enforce timeouts themselves; this is the coordinator's
/// backstop for one that lost track of a run.
pub fn overdue_runs(r: &dyn StoreRead, now: Timestamp, slack_ms: i64) -> Result<Vec<(RunId, u64)>, Error> {
    let mut out = Vec::new();
    for run in r.runs_in_status(RunStatus::Running, u32::MAX)? {
        let Some(started) = run.started_at.filter(|_| run.stop_reason.is_none()) else { continue };
        let Some(timeout) = r.task(&run.task_id)?.and_then(|t| t.timeout_s) else { continue };
        if now.millis_since(started) > timeout as i64 * 1000 + slack_ms {
            out.push((run.id, timeout));
        }
    }
    Ok(out)
}

/// Asks the launchers of these runs to stop them, for having run out of time.
pub fn stop_overdue(tx: &mut dyn StoreTx, fx: &mut Effects, runs: &[(RunId, u64)]) -> Result<(), Error> {
    for (id, timeout) in runs {
        let Some(mut run) = tx.run(id)? else { continue };
        if run.status == RunStatus::Running && run.stop_reason.is_none() {
            run.stop_reason = Some(format!("timed out after {timeout}s"));
            save_run(tx, &run)?;
            if let Some(l) = &run.launcher_id {
                fx.wake.launcher(l);
            }
        }
    }
    Ok(())
}

/// Hands queued runs to a launcher, oldest first, up to its free slots and within
/// the project and agent limits, and gives each a fresh session token. A run
/// goes only where it fits (see [`super::placement`]); it is left to another
/// launcher that is waiting for work too and is better placed: the one that
/// still has its worktree, else one with more free slots. `waiting` names the
/// launchers whose polls are waiting now.
///
/// The queue is read a page at a time, and a project or agent found at its limit
/// is left out of the pages that follow, so runs held back by a limit never hide
/// the runnable ones queued after them; limits are counted by the store's
/// indexes, never by reading the running runs.
pub fn claim_runs(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    launcher_id: &LauncherId,
    config: &Config,
    waiting: &HashMap<LauncherId, Option<u32>>,
) -> Result<Vec<Assignment>, Error> {
    let launcher = tx.launcher(launcher_id)?.ok_or_else(|| Error::not_found("launcher", launcher_id))?;
    let active = tx.active_run_count(ActiveOf::Launcher(launcher_id))?;
    claim_for(tx, fx, &launcher, active, config, waiting)
}

/// [`claim_runs`] for a launcher read already, with `active` runs: nothing is
/// read past one statement when no run is queued at all.
pub(super) fn claim_for(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    launcher: &Launcher,
    active: u32,
    config: &Config,
    waiting: &HashMap<LauncherId, Option<u32>>,
) -> Result<Vec<Assignment>, Error> {
    let free_slots = launcher.slots.saturating_sub(active);
    if free_slots == 0 || launcher.draining {
        return Ok(Vec::new());
    }
    if tx.queued_runs(&QueuedRuns { limit: 1, ..QueuedRuns::default() })?.is_empty() {
        return Ok(Vec::new());
    }
    let mut claim = Claim::new(tx, launcher, waiting)?;
    // Enough to fill the free slots when most fit; more pages when they do not.
    let size = (free_slots * 4).clamp(16, CLAIM_PAGE);
    let mut page = QueuedRuns {
        limit: size,
        not_projects: claim.full_projects.iter().cloned().collect(),
        not_agents: claim.full_agents.iter().cloned().collect(),
        ..QueuedRuns::default()
    };
    let mut out = Vec::new();
    for _ in 0..CLAIM_PAGES {
        let queued = tx.queued_runs(&page)?;
        let Some(last) = queued.last() else { break };
        page.after = Some(last.id.clone());
        let full_page = queued.len() as u32 == size;
        // The page's tasks in one read, for placement.
        let ids: Vec<TaskId> = queued.iter().filter(|r| claim.may_consider(r)).map(|r| r.task_id.clone()).collect();
        let mut tasks: HashMap<TaskId, Task> = tx.tasks_by_id(&ids)?.into_iter().map(|t| (t.id.clone(), t)).collect();
        for run in queued {
            if out.len() as u32 >= free_slots {
                return Ok(out);
            }
            let task = tasks.remove(&run.task_id);
            if let Some((run, task, agent, project)) =
                claim.consider(tx, fx, run, task, free_slots - out.len() as u32)?
            {
                let token = session_token(tx, fx, &run)?;
                out.push(assignment(tx, run, task, agent, project, Some(token), config)?);
            }
        }
        if !full_page {
            break;
        }
        page.not_projects = claim.full_projects.iter().cloned().collect();
        page.not_agents = claim.full_agents.iter().cloned().collect();
    }
    Ok(out)
}

/// One launcher's claim: what it has read so far, and the limits it found reached.
struct Claim {
    launcher: Launcher,
    launchers: Vec<Launcher>,
    rivals: Rivals,
    now: Timestamp,
    projects: HashMap<ProjectId, (Project, Option<String>)>,
    agents: HashMap<String, Option<AgentDef>>,
    /// Active runs per project and agent, for those with a limit (counted once).
    per_project: HashMap<ProjectId, u32>,
    per_agent: HashMap<String, u32>,
    full_projects: BTreeSet<ProjectId>,
    full_agents: BTreeSet<String>,
    /// The providers' concurrency pools.
    pools: governor::Pools,
}

impl Claim {
    /// A claim for `launcher`, knowing from the start which projects and agents
    /// are at their limits (so the first page already leaves their runs out).
    fn new(tx: &dyn StoreTx, launcher: &Launcher, waiting: &HashMap<LauncherId, Option<u32>>) -> Result<Self, Error> {
        let launchers = tx.launchers()?;
        let mut claim = Claim {
            launcher: launcher.clone(),
            rivals: Rivals::new(tx, launcher, &launchers, waiting)?,
            launchers,
            now: Timestamp::now(),
            projects: HashMap::new(),
            agents: HashMap::new(),
            per_project: HashMap::new(),
            per_agent: HashMap::new(),
            full_projects: BTreeSet::new(),
            full_agents: BTreeSet::new(),
            pools: governor::Pools::default(),
        };
        let projects = tx.projects()?;
        let agents = tx.agents()?;
        claim.pools = governor::Pools::load(tx, &projects, &agents, claim.now)?;
        claim.full_agents.extend(claim.pools.held_agents().cloned());
        for project in projects {
            if let Some(limit) = project.settings.parallel_limit {
                let n = tx.active_run_count(ActiveOf::Project(&project.id))?;
                if n >= limit {
                    claim.full_projects.insert(project.id.clone());
                }
                claim.per_project.insert(project.id, n);
            }
        }
        for agent in agents {
            if let Some(limit) = agent.max_parallel {
                let n = tx.active_run_count(ActiveOf::Agent(&agent.name))?;
                if n >= limit {
                    claim.full_agents.insert(agent.name.clone());
                }
                claim.per_agent.insert(agent.name, n);
            }
        }
        Ok(claim)
    }

    /// Whether a run is not left out at once (its time has come; its project
    /// and agent are not at their limits).
    fn may_consider(&self, run: &Run) -> bool {
        !(run.not_before.is_some_and(|t| t > self.now)
            || self.full_projects.contains(&run.project_id)
            || self.full_agents.contains(&run.agent))
    }

    /// Claims a queued run for the launcher when it may and should take it;
    /// ends it when it cannot run anywhere any more (its agent is gone, its
    /// budget is spent). `task` is the run's task (none: it is gone).
    fn consider(
        &mut self,
        tx: &mut dyn StoreTx,
        fx: &mut Effects,
        mut run: Run,
        task: Option<Task>,
        free: u32,
    ) -> Result<Option<(Run, Task, AgentDef, Project)>, Error> {
        if !self.may_consider(&run) {
            return Ok(None);
        }
        if !self.agents.contains_key(&run.agent) {
            self.agents.insert(run.agent.clone(), tx.agent(&run.agent)?);
        }
        let Some(agent) = self.agents[&run.agent].clone() else {
            let report = failure(format!("agent {} no longer exists", run.agent));
            finish(tx, fx, run, report)?;
            return Ok(None);
        };
        if !self.launcher.executors.contains(&agent.executor) {
            return Ok(None);
        }
        if !self.projects.contains_key(&run.project_id) {
            let project = resolve::project(tx, &run.project_id)?;
            let over = project_over_budget(tx, &project)?;
            self.projects.insert(run.project_id.clone(), (project, over));
        }
        let (project, over) = self.projects[&run.project_id].clone();
        // A replica that cannot see the repository leaves the run to one that can.
        if project.settings.uses_worktrees() && crate::projects::require_repository(&project).is_err() {
            return Ok(None);
        }
        if let Some(reason) = over {
            run.stop_reason = Some(reason.clone());
            finish(tx, fx, run, RunFinished::ended(RunStatus::Stopped, reason))?;
            return Ok(None);
        }
        if let Some(limit) = project.settings.parallel_limit {
            let n = match self.per_project.get(&project.id) {
                Some(n) => *n,
                None => tx.active_run_count(ActiveOf::Project(&project.id))?,
            };
            self.per_project.insert(project.id.clone(), n);
            if n >= limit {
                self.full_projects.insert(project.id.clone());
                return Ok(None);
            }
        }
        if let Some(limit) = agent.max_parallel {
            let n = match self.per_agent.get(&agent.name) {
                Some(n) => *n,
                None => tx.active_run_count(ActiveOf::Agent(&agent.name))?,
            };
            self.per_agent.insert(agent.name.clone(), n);
            if n >= limit {
                self.full_agents.insert(agent.name.clone());
                return Ok(None);
            }
        }
        if !self.pools.has_room_for(&agent.name) {
            self.full_agents.extend(self.pools.mates(&agent.name));
            return Ok(None);
        }
        let Some(task) = task else { return Ok(None) };
        if !placement::may_take(&self.launcher, &self.launchers, &task, &agent, &project) {
            return Ok(None);
        }
        if let Some(rival) = self.rivals.better_placed(&self.launcher.id, &task, &agent, &project, free) {
            // Left to it: it must hear of the run.
            fx.wake.launcher(&rival);
            return Ok(None);
        }
        if let Some(n) = self.per_project.get_mut(&project.id) {
            *n += 1;
        }
        if let Some(n) = self.per_agent.get_mut(&agent.name) {
            *n += 1;
        }
        self.pools.took(&agent.name);
        run.status = run.status.transition(RunStatus::Claimed)?;
        run.launcher_id = Some(self.launcher.id.clone());
        run.claimed_at = Some(self.now);
        save_run(tx, &run)?;
        Ok(Some((run, task, agent, project)))
    }
}

/// A fresh token for a run's session (the earlier one revoked).
fn session_token(tx: &mut dyn StoreTx, fx: &mut Effects, run: &Run) -> Result<String, Error> {
    let token = new_token(TokenKind::Session);
    tx.delete_tokens(TokenKind::Session.as_str(), Some(run.session_id.as_str()))?;
    let record = token_record(&token, TokenKind::Session, Some(run.session_id.to_string()));
    tx.put_token(&record)?;
    fx.revoked_sessions.push(run.session_id.clone());
    fx.new_tokens.push(record);
    Ok(token)
}

/// How long after a claim a launcher that does not name the run in its poll is
/// taken to have missed the answer (the answer may still be on its way).
const REDELIVER_AFTER_MS: i64 = 2_000;

/// Runs claimed by a launcher whose poll answer it never got (its poll names the
/// runs it has, and these are not among them), found among its `active` runs:
/// handed to it again, with a fresh session token.
pub(super) fn redeliver(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    launcher: &LauncherId,
    active: &[Run],
    has: &[RunId],
    config: &Config,
) -> Result<Vec<Assignment>, Error> {
    let now = Timestamp::now();
    let mut out = Vec::new();
    for run in active.iter().cloned() {
        let missed = run.status == RunStatus::Claimed
            && !has.contains(&run.id)
            && run.claimed_at.is_some_and(|at| now.millis_since(at) > REDELIVER_AFTER_MS);
        if !missed {
            continue;
        }
        let Some(agent) = tx.agent(&run.agent)? else { continue };
        let project = resolve::project(tx, &run.project_id)?;
        tracing::info!(run = %run.id, launcher = %launcher, "handing a run to its launcher again: its claim's answer was lost");
        let token = session_token(tx, fx, &run)?;
        let task = resolve::task(tx, &run.task_id)?;
        out.push(assignment(tx, run, task, agent, project, Some(token), config)?);
    }
    Ok(out)
}

/// The other launchers waiting for work, for preferring the best placed.
struct Rivals {
    /// Each with its free slots now.
    waiting: Vec<(Launcher, u32)>,
}

impl Rivals {
    /// The launchers waiting now with the free slots their last claim left
    /// (counted again only when that is not known), from the records at hand.
    fn new(
        tx: &dyn StoreTx,
        me: &Launcher,
        launchers: &[Launcher],
        waiting: &HashMap<LauncherId, Option<u32>>,
    ) -> Result<Self, Error> {
        let others: Vec<(&Launcher, Option<u32>)> = launchers
            .iter()
            .filter(|l| l.id != me.id)
            .filter_map(|l| waiting.get(&l.id).map(|known| (l, *known)))
            .collect();
        // Those whose free slots are not known are counted together.
        let unknown: Vec<LauncherId> = others.iter().filter(|(_, k)| k.is_none()).map(|(l, _)| l.id.clone()).collect();
        let mut counted = if unknown.is_empty() { Vec::new() } else { tx.active_run_counts(&unknown)? }.into_iter();
        let mut out = Vec::new();
        for (l, known) in others {
            let free = match known {
                Some(n) => n.min(l.slots),
                None => l.slots.saturating_sub(counted.next().unwrap_or(0)),
            };
            if free > 0 {
                out.push((l.clone(), free));
            }
        }
        Ok(Self { waiting: out })
    }

    /// A waiting launcher that fits the run and is better placed than one with
    /// `free` slots: it has the task's worktree, or more free slots (then it
    /// takes that slot).
    fn better_placed(
        &mut self,
        me: &LauncherId,
        task: &Task,
        agent: &AgentDef,
        project: &Project,
        free: u32,
    ) -> Option<LauncherId> {
        let fits = |l: &Launcher| placement::unfit(l, task, agent, project).is_none();
        if let Some(home) = task.git.launcher.as_ref().filter(|_| task.git.worktree.is_some()) {
            if home == me {
                return None;
            }
            if self.waiting.iter().any(|(l, _)| &l.id == home && fits(l)) {
                return Some(home.clone());
            }
        }
        let (l, f) = self.waiting.iter_mut().filter(|(l, f)| *f > free && fits(l)).max_by_key(|(_, f)| *f)?;
        *f -= 1;
        Some(l.id.clone())
    }
}

/// Everything a launcher needs for a run. Without `token` (a re-attach), the
/// launcher keeps the token it was first given.
fn assignment(
    tx: &mut dyn StoreTx,
    run: Run,
    task: Task,
    mut agent: AgentDef,
    project: Project,
    token: Option<String>,
    config: &Config,
) -> Result<Assignment, Error> {
    let session = resolve::session(tx, &run.session_id)?;
    if let Some(model) = &task.model {
        agent.model = Some(model.clone());
    }
    let prompt = match run.kind {
        // Messages waiting in the agent's inbox come with its next task (once:
        // a start made again hands it the same ones).
        RunKind::Start => {
            let inbox = crate::inbox::hand_over(tx, &task)?.unwrap_or_default();
            format!("{inbox}{}", crate::prompt::render(tx, &task, &agent, &project)?)
        }
        RunKind::Resume => run.message.clone(),
    };
    let memory = crate::memory::context(tx, &agent)?;
    let mut env = BTreeMap::new();
    env.insert("BATON_URL".to_owned(), config.public_url.clone());
    env.insert("BATON_TASK_ID".to_owned(), task.id.to_string());
    env.insert("BATON_SESSION_ID".to_owned(), session.id.to_string());
    env.insert("BATON_RUN_ID".to_owned(), run.id.to_string());
    env.insert("BATON_PROJECT_ID".to_owned(), project.id.to_string());
    env.insert("BATON_AGENT".to_owned(), agent.name.clone());
    if let Some(token) = token {
        env.insert("BATON_TOKEN".to_owned(), token);
    }
    let mut prerequisites = Vec::with_capacity(task.depends_on.len());
    for dep in &task.depends_on {
        let git = tx.task(dep)?.map(|t| t.git).unwrap_or_default();
        prerequisites.push(Prerequisite { task_id: dep.clone(), branch: git.branch, head: git.head });
    }
    Ok(Assignment {
        prerequisites,
        timeout_s: task.timeout_s,
        grace_s: config.grace_s,
        run,
        task,
        session,
        project,
        agent,
        prompt,
        env,
        base_commit: None,
        base_head: None,
        memory,
        workset: Vec::new(),
    })
}

fn check_launcher(run: &Run, caller: Option<&LauncherId>) -> Result<(), Error> {
    match (caller, &run.launcher_id) {
        (Some(caller), Some(owner)) if caller != owner => {
            Err(Error::forbidden(format!("run {} belongs to launcher {owner}", run.id)))
        }
        _ => Ok(()),
    }
}

/// The launcher started the agent process.
pub fn run_started(
    tx: &mut dyn StoreTx,
    id: &RunId,
    caller: Option<&LauncherId>,
    report: RunStarted,
) -> Result<Run, Error> {
    let mut run = resolve::run(tx, id)?;
    check_launcher(&run, caller)?;
    if run.status == RunStatus::Running {
        return Ok(run);
    }
    let now = Timestamp::now();
    run.status = run.status.transition(RunStatus::Running)?;
    run.pid = Some(report.pid);
    run.started_at = Some(now);
    save_run(tx, &run)?;
    let mut session = resolve::session(tx, &run.session_id)?;
    if session.status == SessionStatus::Queued {
        session.status = session.status.transition(SessionStatus::Running)?;
        session.updated_at = now;
        save_session(tx, &session)?;
    }
    let mut task = resolve::task(tx, &run.task_id)?;
    if task.status == TaskStatus::Queued {
        set_status(&mut task, TaskStatus::Running, None)?;
    }
    if let Some(git) = report.git {
        update_git(&mut task, git);
    }
    if report.sandbox.is_some() {
        task.isolation = report.sandbox;
    }
    save_task(tx, &task)?;
    Ok(run)
}

/// The launcher pushed a snapshot of the run's worktree as its task's checkpoint
/// (the caller checked that the project's repository has the commit).
pub fn run_checkpoint(
    tx: &mut dyn StoreTx,
    id: &RunId,
    caller: Option<&LauncherId>,
    commit: String,
) -> Result<Run, Error> {
    let run = resolve::run(tx, id)?;
    check_launcher(&run, caller)?;
    if let Some(launcher) = &run.launcher_id {
        tx.delete_order(launcher, OrderKind::Checkpoint, run.id.as_str())?;
    }
    if !matches!(run.status, RunStatus::Claimed | RunStatus::Running) {
        return Err(Error::conflict(format!("run {} is {}; it takes no checkpoint", run.id, run.status)));
    }
    let mut task = resolve::task(tx, &run.task_id)?;
    // Saved (and announced) even when unchanged: someone may be waiting for it.
    task.git.checkpoint = Some(commit);
    task.updated_at = Timestamp::now();
    save_task(tx, &task)?;
    Ok(run)
}

/// The agent finished well; the launcher runs the task's acceptance checks.
pub fn run_checking(tx: &mut dyn StoreTx, id: &RunId, caller: Option<&LauncherId>) -> Result<Run, Error> {
    let run = resolve::run(tx, id)?;
    check_launcher(&run, caller)?;
    if run.status != RunStatus::Running {
        return Err(Error::conflict(format!("run {} is {}, not running", run.id, run.status)));
    }
    let mut task = resolve::task(tx, &run.task_id)?;
    if task.status != TaskStatus::Checking {
        set_status(&mut task, TaskStatus::Checking, None)?;
        save_task(tx, &task)?;
    }
    Ok(run)
}

/// Stores a batch of a run's events and the spool offsets it reaches, in one
/// transaction: a batch sent twice is stored once. Usage adds to the run, session
/// and task, and a task over its budget is asked to stop.
pub fn ingest_events(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &RunId,
    caller: Option<&LauncherId>,
    mut batch: EventBatch,
    config: &Config,
) -> Result<BatchAck, Error> {
    let mut run = resolve::run(tx, id)?;
    check_launcher(&run, caller)?;
    if let Some(ack) = check_batch(&run, &batch, config)? {
        return Ok(ack);
    }
    let mut session = resolve::session(tx, &run.session_id)?;
    let mut task = resolve::task(tx, &run.task_id)?;
    let mut tally = Tally::default();
    if let Some(files) = batch.files_changed.take()
        && files != task.git.files_changed
    {
        task.git.files_changed = files;
        tally.task_changed = true;
    }
    let count = batch.events.len() as u64;
    for event in &batch.events {
        take_event(tx, event, &mut run, &mut session, &mut task, &mut tally)?;
    }
    let stored = tx.append_events(&session.id, Some(&run.id), Some(&task.id), batch.events)?;
    let last_seq = stored.last().and_then(|e| e.seq).unwrap_or(0);
    run.offsets = batch.to;
    if tally.session_changed {
        session.updated_at = Timestamp::now();
        save_session(tx, &session)?;
    } else if tally.task_changed {
        tx.put_session(&session)?;
    }
    let over = if tally.spent && run.stop_reason.is_none() { over_budget(tx, &task)? } else { None };
    if let Some(reason) = over.or(tally.looping) {
        run.stop_reason = Some(reason);
        if let Some(l) = &run.launcher_id {
            fx.wake.launcher(l);
        }
        save_run(tx, &run)?;
    } else {
        tx.put_run(&run)?;
    }
    if tally.task_changed {
        task.updated_at = Timestamp::now();
        save_task(tx, &task)?;
    }
    fx.events_ingested += count;
    Ok(BatchAck { offsets: run.offsets, last_seq, stop: run.stop_reason })
}

/// Checks a batch against its run: a run that takes events, offsets that follow
/// on from what is acknowledged, events launchers may send, none too large. A
/// batch already stored is answered with the acknowledgement it had.
fn check_batch(run: &Run, batch: &EventBatch, config: &Config) -> Result<Option<BatchAck>, Error> {
    if !matches!(run.status, RunStatus::Claimed | RunStatus::Running) {
        return Err(Error::conflict(format!("run {} is {}; it takes no more events", run.id, run.status)));
    }
    let acked = run.offsets;
    if batch.from != acked {
        if batch.to.stdout <= acked.stdout && batch.to.stderr <= acked.stderr {
            return Ok(Some(BatchAck { offsets: acked, last_seq: 0, stop: run.stop_reason.clone() }));
        }
        return Err(Error::Conflict {
            message: format!(
                "the batch starts at stdout {} / stderr {} but {} / {} is acknowledged",
                batch.from.stdout, batch.from.stderr, acked.stdout, acked.stderr
            ),
            details: Some(json!({ "offsets": acked })),
        });
    }
    if batch.to.stdout < batch.from.stdout || batch.to.stderr < batch.from.stderr {
        return Err(Error::invalid("a batch cannot end before it starts"));
    }
    for event in &batch.events {
        if !event.kind.is_agent_kind() {
            return Err(Error::invalid(format!("launchers cannot send {} events", event.kind)));
        }
        let size = serde_json::to_vec(&event.data).map(|v| v.len()).unwrap_or(usize::MAX)
            + event.raw.as_ref().map_or(0, String::len);
        if size > config.max_event_bytes {
            return Err(Error::too_large(format!(
                "an event of {size} bytes is larger than the limit of {}",
                config.max_event_bytes
            )));
        }
    }
    Ok(None)
}

/// What a batch's events changed.
#[derive(Debug, Default)]
struct Tally {
    /// The session (its agent's session id).
    session_changed: bool,
    /// The task (usage, result, files).
    task_changed: bool,
    /// Money or tokens were spent.
    spent: bool,
    /// Why the agent is looping, when it is.
    looping: Option<String>,
}

/// Takes one event into the run, session and task it belongs to.
fn take_event(
    tx: &mut dyn StoreTx,
    event: &NewEvent,
    run: &mut Run,
    session: &mut Session,
    task: &mut Task,
    tally: &mut Tally,
) -> Result<(), Error> {
    match event.kind {
        EventKind::ToolCall => {
            let name = event.data["name"].as_str().unwrap_or("?");
            run.repeats.call(event.data["id"].as_str(), name, &event.data["input"]);
        }
        EventKind::ToolResult => {
            let failed = event.data["is_error"].as_bool() == Some(true);
            let n = run.repeats.result(event.data["id"].as_str(), failed);
            if n > 0 && tally.looping.is_none() && run.stop_reason.is_none() {
                let limit = resolve::project(tx, &task.project_id)?.settings.loop_limit();
                if limit > 0 && n >= limit {
                    tally.looping = Some(format!(
                        "looping: the agent made the same failing {} call {n} times in a row (loop_limit = {limit})",
                        run.repeats.failing_tool()
                    ));
                }
            }
        }
        EventKind::Usage => {
            if let Ok(usage) = serde_json::from_value::<Usage>(event.data.clone()) {
                run.usage.add(&usage);
                session.usage.add(&usage);
                task.usage.add(&usage);
                tx.add_spend(&session.project_id, &session.agent, &usage)?;
                if usage.cost_usd != 0.0 {
                    tx.add_project_spend(&task.project_id, usage.cost_usd)?;
                    tx.add_hour(&baton_store::HourDelta {
                        hour: super::settle::this_hour(),
                        project: task.project_id.clone(),
                        agent: task.agent.clone(),
                        finished: None,
                        cost_usd: usage.cost_usd,
                    })?;
                }
                tally.task_changed = true;
                tally.spent = true;
            }
        }
        EventKind::Init => {
            if let Some(agent_session) = event.data.get("agent_session_id").and_then(|v| v.as_str()) {
                session.agent_session_id = Some(agent_session.to_owned());
                tally.session_changed = true;
            }
        }
        EventKind::Result => {
            if let Ok(result) = serde_json::from_value::<ResultData>(event.data.clone()) {
                if let Some(text) = result.text {
                    run.result = Some(text.clone());
                    task.result = Some(text);
                    tally.task_changed = true;
                }
                if let Some(agent_session) = result.agent_session_id {
                    session.agent_session_id = Some(agent_session);
                    tally.session_changed = true;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

fn failure(error: String) -> RunFinished {
    RunFinished::ended(RunStatus::Failed, error)
}

/// The launcher reports that a run's agent process ended.
pub fn run_finished(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &RunId,
    caller: Option<&LauncherId>,
    report: RunFinished,
) -> Result<Run, Error> {
    let run = resolve::run(tx, id)?;
    check_launcher(&run, caller)?;
    if run.status.is_finished() {
        return Ok(run);
    }
    if !report.status.is_finished() {
        return Err(Error::invalid(format!("{} is not a final run status", report.status)));
    }
    finish(tx, fx, run, report)
}

/// Ends a run and follows through: the session, the task (success, retry,
/// failure), its dependents, and the session's token.
fn finish(tx: &mut dyn StoreTx, fx: &mut Effects, mut run: Run, report: RunFinished) -> Result<Run, Error> {
    let now = Timestamp::now();
    let status = report.status;
    run.status = run.status.transition(status)?;
    run.exit_code = report.exit_code;
    run.signal = report.signal;
    run.error = report.error.clone().or_else(|| default_error(&run, status));
    run.finished_at = Some(now);
    save_run(tx, &run)?;

    let mut session = resolve::session(tx, &run.session_id)?;
    session.status = session.status.transition(match status {
        RunStatus::Succeeded => SessionStatus::Idle,
        RunStatus::Stopped => SessionStatus::Stopped,
        _ => SessionStatus::Failed,
    })?;
    session.updated_at = now;
    save_session(tx, &session)?;
    tx.delete_tokens(TokenKind::Session.as_str(), Some(session.id.as_str()))?;
    fx.revoked_sessions.push(session.id.clone());
    let agent = tx.agent(&run.agent)?;
    free_slot(tx, fx, &run, agent.as_ref())?;

    let mut task = resolve::task(tx, &run.task_id)?;
    if run.result.is_none()
        && let Some(result) = report.result
    {
        run.result = Some(result.clone());
        save_run(tx, &run)?;
        task.result = Some(result);
    }
    if let Some(git) = report.git {
        update_git(&mut task, git);
    }
    let checks_failed = status == RunStatus::Failed && report.checks.iter().any(|c| !c.passed);
    if !report.checks.is_empty() {
        task.check_results = report.checks;
    }
    let ended = Ended { run: &run, session, agent: agent.as_ref(), failure: report.failure, checks_failed, now };
    follow_through(tx, fx, &mut task, ended)?;
    // Callbacks that waited for this session to be idle are delivered now.
    if let Some(session) = tx.session(&run.session_id)?
        && !session.pending_callbacks.is_empty()
    {
        deliver_callbacks(tx, fx, session)?;
    }
    Ok(run)
}

/// The run's slot is free again: its launcher may take queued work now, and,
/// when the run counted against a limit of its project or agent, so may others.
fn free_slot(tx: &dyn StoreTx, fx: &mut Effects, run: &Run, agent: Option<&AgentDef>) -> Result<(), Error> {
    let Some(l) = &run.launcher_id else { return Ok(()) };
    fx.wake.launcher(l);
    if let Some(agent) = agent {
        let limited = agent.max_parallel.is_some()
            || tx.project(&run.project_id)?.is_some_and(|p| p.settings.parallel_limit.is_some())
            || governor::limits(tx, agent)?;
        if limited {
            fx.wake.slot_freed(agent.executor);
        }
    }
    Ok(())
}

/// A run that ended, as its task's next step needs it.
struct Ended<'a> {
    /// The run, finished.
    run: &'a Run,
    /// Its session, idle, stopped or failed.
    session: Session,
    /// Its agent's definition, if it still exists.
    agent: Option<&'a AgentDef>,
    /// How it failed, when the launcher could tell.
    failure: Option<FailureKind>,
    /// Whether it failed because its acceptance checks did.
    checks_failed: bool,
    /// When it ended.
    now: Timestamp,
}

/// The task's next step after a run ended: success (or a review), a pause for
/// its budget, a cancellation, or what a failure calls for.
fn follow_through(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task, ended: Ended<'_>) -> Result<(), Error> {
    let run = ended.run;
    // A person's messages that waited for this turn to end are its next turn.
    if matches!(run.status, RunStatus::Succeeded | RunStatus::Failed)
        && super::follow_ups::deliver_follow_ups(tx, fx, task)?
    {
        return Ok(());
    }
    match run.status {
        RunStatus::Succeeded => {
            task.throttled = 0;
            if let Some(agent) = ended.agent
                && let Some((pool, limit)) = governor::succeeded(tx, agent)?
            {
                let limit = limit.map_or("lifted".to_owned(), |l| format!("raised to {l}"));
                let text = format!("a run of pool {pool} succeeded: its limit is {limit}");
                tx.append_event(Some(&run.session_id), Some(&run.id), Some(&task.id), NewEvent::log(text))?;
            }
            if super::loops::review_wanted(task) {
                super::loops::start_review(tx, fx, task)?;
            } else {
                succeed(tx, fx, task, None)?;
            }
        }
        RunStatus::Stopped if run.stop_reason.as_deref().is_some_and(is_budget_reason) => paused(tx, task, run)?,
        RunStatus::Stopped => {
            let reason = run.stop_reason.clone().unwrap_or_else(|| "stopped".into());
            set_status(task, TaskStatus::Cancelled, Some(reason))?;
            save_task(tx, task)?;
            block_dependents(tx, fx, task)?;
            settled(tx, fx, task)?;
        }
        _ => failed(tx, fx, task, ended)?,
    }
    Ok(())
}

/// Paused for its budget, not ended: the work is committed and the session kept.
fn paused(tx: &mut dyn StoreTx, task: &mut Task, run: &Run) -> Result<(), Error> {
    let reason = run.stop_reason.clone().unwrap_or_default();
    set_status(task, TaskStatus::Paused, Some(reason.clone()))?;
    save_task(tx, task)?;
    let data = json!({
        "event": "budget.exceeded",
        "message": format!("task paused: {}", &reason[BUDGET.len()..]),
        "budget_usd": task.budget_usd,
        "spent_usd": task.usage.cost_usd,
    });
    tx.append_event(Some(&run.session_id), Some(&run.id), Some(&task.id), NewEvent::new(EventKind::Log, data.clone()))?;
    let budget = json!({ "budget": data });
    crate::outbox::tell_task(tx, baton_core::webhook::WebhookEvent::BudgetExceeded, task, budget)?;
    Ok(())
}

/// A run that failed or was lost: retried slower when the model was
/// overloaded, fixed when its checks failed, handed to a fallback agent,
/// resumed when its host was lost, retried with backoff, or the task fails.
fn failed(tx: &mut dyn StoreTx, fx: &mut Effects, task: &mut Task, ended: Ended<'_>) -> Result<(), Error> {
    let Ended { run, session, agent, failure, checks_failed, now } = ended;
    let lost = tx.runs_of_session(&session.id)?.iter().filter(|r| r.status == RunStatus::Lost).count();
    let throttled = failure == Some(FailureKind::Overloaded) && task.throttled < governor::THROTTLE_RETRIES;
    if throttled && let Some(agent) = agent {
        retry_throttled(tx, fx, task, run, session, agent, now)?;
    } else if checks_failed && task.loops.fix_attempts > 0 {
        super::loops::checks_failed(tx, fx, task, run, session)?;
    } else if let Some(kind) = failure
        && let Some(next) = fallback_agent(tx, task)?
    {
        switch_agent(tx, fx, task, &session, next, kind, run.error.as_deref())?;
    } else if run.status == RunStatus::Lost && lost <= MAX_LOST {
        if session.agent_session_id.is_some() {
            queue_run(tx, fx, task, RunKind::Resume, RESUME_AFTER_LOSS.into(), Some(session), None)?;
        } else {
            let prompt = task.prompt.clone();
            queue_run(tx, fx, task, RunKind::Start, prompt, None, None)?;
        }
        save_task(tx, task)?;
    } else if task.retries < task.max_retries {
        task.retries += 1;
        let backoff_ms = 1000i64 << (task.retries.min(8) - 1);
        let prompt = task.prompt.clone();
        queue_run(tx, fx, task, RunKind::Start, prompt, None, Some(now.plus_millis(backoff_ms)))?;
        save_task(tx, task)?;
    } else {
        fail(tx, fx, task, run.error.clone())?;
    }
    Ok(())
}

/// How the reason of a stop for a spent budget begins: such a stop pauses the
/// task instead of ending it.
const BUDGET: &str = "budget: ";

/// Whether a stop's (or a paused task's) reason is a spent budget.
pub(crate) fn is_budget_reason(reason: &str) -> bool {
    reason.starts_with(BUDGET)
}

/// Why a task must stop spending: its own budget or its project's is spent.
pub(crate) fn over_budget(tx: &dyn StoreRead, task: &Task) -> Result<Option<String>, Error> {
    if let Some(budget) = task.budget_usd
        && task.usage.cost_usd > budget
    {
        return Ok(Some(format!("{BUDGET}the task's budget of ${budget:.2} is spent (${:.2})", task.usage.cost_usd)));
    }
    let project = resolve::project(tx, &task.project_id)?;
    project_over_budget(tx, &project)
}

/// Why a project's agents must stop: its budget is spent.
fn project_over_budget(tx: &dyn StoreRead, project: &Project) -> Result<Option<String>, Error> {
    let Some(budget) = project.settings.budget_usd else { return Ok(None) };
    let spent = tx.project_spent(&project.id)?;
    Ok((spent >= budget)
        .then(|| format!("{BUDGET}project {}'s budget of ${budget:.2} is spent (${spent:.2})", project.name)))
}

/// The agent's provider refused for rate limits: the governor lowers its pool's
/// limit, and the task is tried again on the same agent after the provider's
/// `Retry-After` or a backoff; a conversation that had begun is resumed.
fn retry_throttled(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    run: &Run,
    session: Session,
    agent: &AgentDef,
    now: Timestamp,
) -> Result<(), Error> {
    task.throttled += 1;
    let t = governor::refused(tx, agent, task.throttled, run.error.as_deref(), now)?;
    let pool = match (&t.pool, t.limit) {
        (Some(pool), Some(limit)) => format!("; pool {pool} now runs at most {limit} at once"),
        _ => String::new(),
    };
    let text = format!(
        "the provider of agent {} refused for rate limits ({}){pool}; trying again on the same agent in {:.1} s (attempt {} of {})",
        agent.name,
        run.error.as_deref().unwrap_or("overloaded"),
        t.wait_ms as f64 / 1000.0,
        task.throttled,
        governor::THROTTLE_RETRIES
    );
    tracing::info!(task = %task.id, agent = %agent.name, wait_ms = t.wait_ms, "rate limited; retrying");
    let data = json!({ "message": text, "throttled": { "pool": t.pool, "limit": t.limit, "wait_ms": t.wait_ms } });
    tx.append_event(Some(&run.session_id), Some(&run.id), Some(&task.id), NewEvent::new(EventKind::Log, data))?;
    let not_before = Some(now.plus_millis(t.wait_ms));
    if run.kind == RunKind::Resume || (session.agent_session_id.is_some() && session.usage.cost_usd > 0.0) {
        let message = if run.kind == RunKind::Resume { run.message.clone() } else { RESUME_AFTER_THROTTLE.to_owned() };
        queue_run(tx, fx, task, RunKind::Resume, message, Some(session), not_before)?;
    } else {
        // Nothing of the conversation to keep: a new one, in the same session, so
        // each try shows as a run of it.
        let prompt = task.prompt.clone();
        queue_run(tx, fx, task, RunKind::Start, prompt, Some(session), not_before)?;
    }
    save_task(tx, task)?;
    Ok(())
}

/// The next fallback agent of a task's agent that the task has not tried yet.
fn fallback_agent(tx: &dyn StoreTx, task: &Task) -> Result<Option<AgentDef>, Error> {
    let Some(agent) = tx.agent(&task.agent)? else { return Ok(None) };
    let tried = |name: &str| name == task.agent || task.agent_switches.iter().any(|s| s.from == name || s.to == name);
    for name in agent.fallback.iter().filter(|n| !tried(n)) {
        if let Some(def) = tx.agent(name)? {
            return Ok(Some(def));
        }
    }
    Ok(None)
}

/// Hands a task to a fallback agent in a new session, recording the switch on
/// the task and in the failed session's events. It does not count as a retry.
fn switch_agent(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &mut Task,
    failed: &Session,
    next: AgentDef,
    kind: FailureKind,
    error: Option<&str>,
) -> Result<(), Error> {
    let why = match kind {
        FailureKind::CliMissing => "its CLI could not start",
        FailureKind::Credentials => "its provider rejected the credentials",
        FailureKind::Overloaded => "its provider is overloaded",
    };
    let reason = match error {
        Some(e) => format!("{why}: {e}"),
        None => why.to_owned(),
    };
    let switch = AgentSwitch { from: task.agent.clone(), to: next.name.clone(), reason, at: Timestamp::now() };
    let text = format!("agent {} failed ({}); switching to fallback agent {}", switch.from, switch.reason, switch.to);
    tx.append_event(
        Some(&failed.id),
        None,
        Some(&task.id),
        NewEvent::new(EventKind::Log, json!({ "message": text, "agent_switch": &switch })),
    )?;
    tracing::info!(task = %task.id, from = %switch.from, to = %switch.to, "switching to a fallback agent");
    task.agent = next.name;
    task.agent_switches.push(switch);
    let prompt = task.prompt.clone();
    queue_run(tx, fx, task, RunKind::Start, prompt, None, None)?;
    save_task(tx, task)?;
    Ok(())
}

fn default_error(run: &Run, status: RunStatus) -> Option<String> {
    match status {
        RunStatus::Succeeded => None,
        RunStatus::Stopped => run.stop_reason.clone(),
        RunStatus::TimedOut => Some("timed out".into()),
        RunStatus::Lost => Some("the launcher running it went away".into()),
        _ => Some(match (run.exit_code, run.signal) {
            (Some(code), _) => format!("the agent exited with code {code}"),
            (None, Some(sig)) => format!("the agent was killed by signal {sig}"),
            _ => "the agent failed".into(),
        }),
    }
}

/// Marks every unfinished run of a launcher lost, except `keep`.
pub fn lose_runs(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    launcher: &LauncherId,
    keep: &[RunId],
    why: &str,
) -> Result<u32, Error> {
    let mut lost = 0;
    for run in tx.active_runs_of_launcher(launcher)? {
        if keep.contains(&run.id) {
            continue;
        }
        let report = RunFinished::ended(RunStatus::Lost, why);
        finish(tx, fx, run, report)?;
        lost += 1;
    }
    Ok(lost)
}

/// A restarted launcher names the runs it still has; the coordinator answers with
/// what it knows of each, and marks lost the runs the launcher no longer has.
pub fn attach(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    launcher: &LauncherId,
    runs: Vec<RunId>,
    config: &Config,
) -> Result<AttachResponse, Error> {
    let mut out = Vec::new();
    for id in &runs {
        let entry = match tx.run(id)? {
            Some(run) if !run.status.is_finished() && run.launcher_id.as_ref() == Some(launcher) => {
                let agent = tx.agent(&run.agent)?.ok_or_else(|| Error::not_found("agent", &run.agent))?;
                let project = resolve::project(tx, &run.project_id)?;
                let task = resolve::task(tx, &run.task_id)?;
                let stop = run.stop_reason.clone();
                Attached {
                    run_id: id.clone(),
                    assignment: Some(assignment(tx, run, task, agent, project, None, config)?),
                    stop,
                }
            }
            _ => Attached {
                run_id: id.clone(),
                assignment: None,
                stop: Some("the coordinator does not expect this run".into()),
            },
        };
        out.push(entry);
    }
    lose_runs(tx, fx, launcher, &runs, "the launcher restarted without it")?;
    Ok(AttachResponse { runs: out })
}
