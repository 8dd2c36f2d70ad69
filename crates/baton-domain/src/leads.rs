//! The lead Baton runs for a project and keeps alive (seed 000's per-project
//! orchestrator, made dependable).
//!
//! A lead is a task of its own (`Task::leads`): one long conversation whose
//! session rests, with no process and no model call, between its wakings — a
//! task it started ending (a callback), a message, a timer it set, a person
//! writing to it. Its liveness is its process's: when its run dies (killed,
//! lost, failed), Baton resumes it in the same session at once; if that resume
//! fails too, a fresh session starts with a handoff (its memory, its journal,
//! the open tasks). It ends at its deadline (4 hours by default) or when it
//! says it is done and every task of the project has settled.
//!
//! One record per project ([`LeadRecord`]) says which task and session lead.
//! Every change of it is a compare-and-set on its fence, so two replicas never
//! start two leads; a request of a session that no longer leads is refused.

use baton_core::agent::AgentDef;
use baton_core::api::CreateTask;
use baton_core::ids::{ProjectId, SessionId, TaskId};
use baton_core::model::{LeadRecord, Project, Task};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_store::{StoreRead, StoreTx, TaskFilter};

use crate::Error;
use crate::scheduler::Effects;
use crate::state::Config;
use crate::tokens::Caller;

/// How long a lead lives by default: seed 000's four hours.
pub const LEAD_TIMEOUT_S: u64 = 4 * 3600;

/// How many restarts within [`RESTART_WINDOW_MS`] before Baton gives up on a
/// lead that keeps dying (and says so).
pub const MAX_RESTARTS: u32 = 5;

/// The window [`MAX_RESTARTS`] counts in.
pub const RESTART_WINDOW_MS: i64 = 10 * 60 * 1000;

/// Baton's own template, after seed 000's `orchestrator-template.md`.
pub const TEMPLATE: &str = include_str!("lead-template.md");

/// What a lead's template may name, as `{{NAME}}`.
pub const PLACEHOLDERS: &[&str] = &[
    "PROJECT_NAME",
    "PROJECT_ID",
    "PROJECT_PATH",
    "DEFAULT_BRANCH",
    "BATON_URL",
    "TECH_STACK",
    "CONTEXT",
    "AGENT_SPECIALIZATIONS",
    "DEPENDENCY_GRAPH",
    "HANDOFF",
];

/// The placeholders of `template` that are not [`PLACEHOLDERS`].
pub fn unknown_placeholders(template: &str) -> Vec<String> {
    let mut unknown = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let name = after[..end].trim();
        if !PLACEHOLDERS.contains(&name) && !unknown.iter().any(|u| u == name) {
            unknown.push(name.to_owned());
        }
        rest = &after[end + 2..];
    }
    unknown
}

/// The project's lead template: its `lead_template`, `.baton/lead.md`, or Baton's own.
pub fn template(project: &Project) -> Result<String, Error> {
    let root = std::path::Path::new(&project.path);
    let (path, required) = match &project.settings.lead_template {
        Some(p) => (root.join(p), true),
        None => (root.join(".baton/lead.md"), false),
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => Ok(TEMPLATE.to_owned()),
        Err(e) => Err(Error::invalid(format!("lead_template: could not read {}: {e}", path.display()))),
    }
}

/// Checks a project's lead settings against the store: its `lead` names an
/// agent that exists, and its template only known placeholders.
pub fn check_settings(r: &dyn StoreRead, project: &Project) -> Result<(), Error> {
    if let Some(agent) = &project.settings.lead
        && r.agent(agent)?.is_none()
    {
        return Err(Error::unknown(format!("lead = {agent:?} names no agent (see `baton agents`)")));
    }
    let unknown = unknown_placeholders(&template(project)?);
    if !unknown.is_empty() {
        return Err(Error::content(
            format!(
                "the lead's template uses unknown placeholders {}; known: {}",
                unknown.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", "),
                PLACEHOLDERS.join(", ")
            ),
            serde_json::json!({ "field": "lead_template", "unknown": unknown }),
        ));
    }
    Ok(())
}

/// The project's open work and what ended lately, as the lead's template shows it.
fn task_graph(r: &dyn StoreRead, project: &Project, lead: Option<&TaskId>) -> Result<String, Error> {
    let tasks = r.tasks(&TaskFilter { project: Some(project.id.clone()), limit: Some(200), ..Default::default() })?;
    let mut lines = Vec::new();
    for t in tasks.iter().filter(|t| Some(&t.id) != lead && t.leads.is_none()) {
        let deps = if t.depends_on.is_empty() {
            String::new()
        } else {
            format!(" after {}", t.depends_on.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "))
        };
        lines.push(format!("- {} [{}] {} ({}){deps}", t.id, t.status, t.title, t.agent));
    }
    Ok(if lines.is_empty() { "No tasks yet.".to_owned() } else { lines.join("\n") })
}

fn specializations(r: &dyn StoreRead, lead: &AgentDef) -> Result<String, Error> {
    let all = lead.delegates_to.iter().any(|d| d == "*");
    let agents: Vec<AgentDef> = r
        .agents()?
        .into_iter()
        .filter(|a| a.name != lead.name && (all || lead.delegates_to.contains(&a.name)))
        .collect();
    if agents.is_empty() {
        return Ok(format!(
            "None: agent {}'s `delegates_to` names no agent, so it cannot start tasks. Add the agents it may lead.",
            lead.name
        ));
    }
    let line = |a: &AgentDef| {
        let tags = if a.tags.is_empty() { String::new() } else { format!(" [{}]", a.tags.join(", ")) };
        let about = if a.description.is_empty() { String::new() } else { format!(": {}", a.description) };
        format!("- **{}** ({}){tags}{about}", a.name, a.executor)
    };
    Ok(agents.iter().map(line).collect::<Vec<_>>().join("\n"))
}

/// The lead's first prompt: the template with the project filled in.
pub fn render(
    r: &dyn StoreRead,
    project: &Project,
    agent: &AgentDef,
    handoff: Option<String>,
    config: &Config,
) -> Result<String, Error> {
    let context = match &project.settings.context {
        Some(c) => format!("## Context\n\n{c}"),
        None => String::new(),
    };
    let values = [
        ("PROJECT_NAME", project.name.clone()),
        ("PROJECT_ID", project.id.to_string()),
        ("PROJECT_PATH", project.path.clone()),
        ("DEFAULT_BRANCH", project.default_branch.clone()),
        ("BATON_URL", config.public_url.clone()),
        ("TECH_STACK", project.settings.tech_stack.clone().unwrap_or_else(|| "see the repository".into())),
        ("CONTEXT", context),
        ("AGENT_SPECIALIZATIONS", specializations(r, agent)?),
        ("DEPENDENCY_GRAPH", task_graph(r, project, None)?),
        ("HANDOFF", handoff.unwrap_or_default()),
    ];
    let mut text = template(project)?;
    for (name, value) in values {
        text = text.replace(&format!("{{{{{name}}}}}"), &value).replace(&format!("{{{{ {name} }}}}"), &value);
    }
    Ok(text)
}

/// What a fresh session of the lead starts from when its old one could not be
/// resumed: why, and its memory and journal.
fn handoff(r: &dyn StoreRead, agent: &AgentDef, why: &str) -> Result<String, Error> {
    let mut text = format!(
        "## Handoff\n\nYou take over from an earlier session of yours that could not be resumed ({why}). \
         The open tasks are listed above; the ones you started before report to you as they end.\n"
    );
    match crate::memory::context(r, agent)? {
        Some(memory) => text.push_str(&format!("\n{memory}")),
        None => {
            let journal = r.journal(&agent.name, 20)?;
            if !journal.is_empty() {
                text.push_str("\nYour journal, newest first:\n");
                for e in journal {
                    text.push_str(&format!("- {} {}\n", e.at, e.text));
                }
            }
        }
    }
    Ok(text)
}

/// Writes the record, if nobody changed it since it was read (`before`).
fn save(tx: &mut dyn StoreTx, mut lead: LeadRecord, before: Option<u64>) -> Result<LeadRecord, Error> {
    lead.fence = before.map_or(1, |f| f + 1);
    if !tx.put_lead(&lead, before)? {
        return Err(Error::conflict(format!(
            "the lead of project {} was changed by another request meanwhile; try again",
            lead.project_id
        )));
    }
    let data = serde_json::to_value(&lead).unwrap_or_default();
    tx.append_event(None, None, None, baton_core::event::NewEvent::new(baton_core::event::EventKind::Lead, data))?;
    Ok(lead)
}

/// A new task (and session) for the lead.
fn lead_task(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    agent: &AgentDef,
    handoff: Option<String>,
    config: &Config,
) -> Result<Task, Error> {
    let req = CreateTask {
        project: Some(project.id.to_string()),
        prompt: render(tx, project, agent, handoff, config)?,
        title: Some(format!("Lead of {}", project.name)),
        agent: Some(agent.name.clone()),
        checks: Some(Vec::new()),
        ..CreateTask::default()
    };
    let person = Caller::person();
    let mut new = crate::scheduler::tasks::new_task(tx, &person, req, config)?;
    new.asked.leads = Some(project.id.clone());
    new.loops.review_by = None;
    new.loops.fix_attempts = 0;
    crate::scheduler::tasks::insert(tx, fx, new, TaskId::generate())
}

/// Starts the project's lead (`agent`, or its `lead` setting). Starting it
/// again while it runs with the same agent changes nothing.
pub fn start(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    agent: Option<&str>,
    config: &Config,
) -> Result<LeadRecord, Error> {
    let name = agent.or(project.settings.lead.as_deref()).ok_or_else(|| {
        Error::conflict(format!(
            "name the lead's agent, or set `lead = \"AGENT\"` in project {}'s settings",
            project.name
        ))
    })?;
    let def = tx.agent(name)?.ok_or_else(|| Error::not_found("agent", name))?;
    let before = tx.lead(&project.id)?;
    let running = match &before {
        Some(l) if l.wanted => active(tx, l)?.is_some(),
        _ => false,
    };
    if let Some(l) = before.as_ref().filter(|_| running) {
        if l.agent == def.name {
            return Ok(l.clone());
        }
        return Err(Error::conflict(format!(
            "project {} is led by agent {} already: stop it first (`baton lead stop`)",
            project.name, l.agent
        )));
    }
    let task = lead_task(tx, fx, project, &def, None, config)?;
    let now = Timestamp::now();
    let timeout = project.settings.lead_timeout_s.unwrap_or(LEAD_TIMEOUT_S);
    let record = LeadRecord {
        project_id: project.id.clone(),
        agent: def.name,
        wanted: true,
        session_id: task.session_id.clone(),
        task_id: Some(task.id),
        fence: 0,
        restarts: 0,
        restarted_at: None,
        reviving: false,
        note: None,
        started_at: now,
        deadline: now.plus_millis(timeout as i64 * 1000),
        done_at: None,
        wake_at: None,
        wake_note: None,
    };
    save(tx, record, before.map(|l| l.fence))
}

/// The lead's task while it is not over (`None` once cancelled or gone).
fn active(r: &dyn StoreRead, lead: &LeadRecord) -> Result<Option<Task>, Error> {
    let Some(id) = &lead.task_id else { return Ok(None) };
    Ok(r.task(id)?.filter(|t| t.status != TaskStatus::Cancelled))
}

/// Stops the project's lead: no longer wanted, its task stopped if it works.
pub fn stop(tx: &mut dyn StoreTx, fx: &mut Effects, project: &ProjectId, why: &str) -> Result<LeadRecord, Error> {
    let lead = tx.lead(project)?.ok_or_else(|| Error::not_found("lead of project", project))?;
    let before = lead.fence;
    let mut lead = lead;
    if let Some(task) = active(tx, &lead)?
        && !task.status.is_finished()
    {
        crate::scheduler::stop_task(tx, fx, &task.id, Some(format!("the lead was stopped: {why}")))?;
    }
    lead.wanted = false;
    lead.wake_at = None;
    lead.note = Some(why.to_owned());
    save(tx, lead, Some(before))
}

/// The record of the lead `session` belongs to, if that session leads now.
/// A session of a lead that was replaced is refused.
pub fn acting(r: &dyn StoreRead, session: &SessionId) -> Result<Option<LeadRecord>, Error> {
    let s = crate::resolve::session(r, session)?;
    let Some(project) = r.task(&s.task_id)?.and_then(|t| t.leads) else { return Ok(None) };
    let lead = r.lead(&project)?;
    match lead {
        Some(l) if l.wanted && l.session_id.as_ref() == Some(session) => Ok(Some(l)),
        other => Err(Error::forbidden(format!(
            "session {session} no longer leads project {project} (the lead's fence is {}): a newer session took over",
            other.map_or(0, |l| l.fence)
        ))),
    }
}

/// The lead says it is done: refused while any other task of the project is
/// still open; then it is stopped.
pub fn done(tx: &mut dyn StoreTx, fx: &mut Effects, session: &SessionId) -> Result<LeadRecord, Error> {
    let lead = acting(tx, session)?.ok_or_else(|| Error::forbidden("only the project's lead says it is done"))?;
    let open = tx.tasks(&TaskFilter {
        project: Some(lead.project_id.clone()),
        statuses: TaskStatus::ALL.iter().copied().filter(|s| !s.is_settled()).collect(),
        ..Default::default()
    })?;
    let open: Vec<_> = open.into_iter().filter(|t| t.leads.is_none()).map(|t| t.id.to_string()).collect();
    if !open.is_empty() {
        return Err(Error::Conflict {
            message: format!("{} task(s) of the project are still open: {}", open.len(), open.join(", ")),
            details: Some(serde_json::json!({ "open": open })),
        });
    }
    let before = lead.fence;
    let mut lead = lead;
    lead.wanted = false;
    lead.done_at = Some(Timestamp::now());
    lead.wake_at = None;
    lead.note = Some("it said it was done: every task of the project had ended".into());
    let _ = fx;
    save(tx, lead, Some(before))
}

/// The lead sets a timer: it is woken in `in_s` seconds with `note`.
pub fn wake_me(tx: &mut dyn StoreTx, session: &SessionId, in_s: u64, note: String) -> Result<LeadRecord, Error> {
    let lead = acting(tx, session)?.ok_or_else(|| Error::forbidden("only the project's lead sets its timer"))?;
    if in_s == 0 || in_s > 7 * 24 * 3600 {
        return Err(Error::invalid("`in_s` must be 1 second to 7 days"));
    }
    let before = lead.fence;
    let mut lead = lead;
    lead.wake_at = Some(Timestamp::now().plus_millis(in_s as i64 * 1000));
    lead.wake_note = Some(note);
    save(tx, lead, Some(before))
}

/// A lead's task settled. A lead cancelled by a person is no longer wanted;
/// the rest (a run that died, a resume that failed) the timers see to within
/// a second ([`reconcile`]), outside the transaction that ended the run.
pub(crate) fn on_settled(tx: &mut dyn StoreTx, task: &Task) -> Result<(), Error> {
    let Some(project) = &task.leads else { return Ok(()) };
    let Some(lead) = tx.lead(project)? else { return Ok(()) };
    if !lead.wanted || lead.task_id.as_ref() != Some(&task.id) || task.status != TaskStatus::Cancelled {
        return Ok(());
    }
    let before = lead.fence;
    let mut lead = lead;
    lead.wanted = false;
    lead.note = Some(format!("its task was cancelled: {}", task.reason.as_deref().unwrap_or("by request")));
    save(tx, lead, Some(before)).map(|_| ())
}

/// Brings back a lead whose task ended badly: resumed in its session first;
/// when that resume ended badly too, a fresh session with a handoff.
fn revive(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    task: &Task,
    mut lead: LeadRecord,
    config: &Config,
) -> Result<(), Error> {
    let why = task.reason.clone().unwrap_or_else(|| format!("its task {}", task.status));
    if lead.reviving {
        return start_fresh(tx, fx, project, lead, &format!("resuming it failed: {why}"), config);
    }
    let before = lead.fence;
    if counted_restart(&mut lead, &why) {
        let message = format!(
            "Baton restarted you in your session after your process ended ({why}). Carry on where you were: \
             check the tasks you started, then end your turn."
        );
        crate::scheduler::resume_task(tx, fx, &task.id, message, None)?;
        lead.note = Some(format!("resumed in its session after its run ended: {why}"));
        lead.reviving = true;
    }
    save(tx, lead, Some(before)).map(|_| ())
}

/// Counts a restart; false (and the lead no longer wanted) past [`MAX_RESTARTS`].
fn counted_restart(lead: &mut LeadRecord, why: &str) -> bool {
    let now = Timestamp::now();
    let recent = lead.restarted_at.is_some_and(|at| now.millis_since(at) < RESTART_WINDOW_MS);
    lead.restarts = if recent { lead.restarts + 1 } else { 1 };
    lead.restarted_at = Some(now);
    if lead.restarts > MAX_RESTARTS {
        lead.wanted = false;
        lead.reviving = false;
        lead.note = Some(format!("gave up after {MAX_RESTARTS} restarts within 10 minutes; last: {why}"));
        return false;
    }
    true
}

/// Where a callback for `parent` goes: to the session that leads now when
/// `parent` is an earlier session of the project's lead.
pub(crate) fn current_session(r: &dyn StoreRead, parent: &SessionId) -> Result<SessionId, Error> {
    let Some(s) = r.session(parent)? else { return Ok(parent.clone()) };
    let Some(project) = r.task(&s.task_id)?.and_then(|t| t.leads) else { return Ok(parent.clone()) };
    Ok(r.lead(&project)?.filter(|l| l.wanted).and_then(|l| l.session_id).unwrap_or_else(|| parent.clone()))
}

/// The timers' look at every lead: configured leads started, leads past their
/// deadline ended, timers fired, and leads whose task is gone started again.
pub fn reconcile(tx: &mut dyn StoreTx, fx: &mut Effects, project: &ProjectId, config: &Config) -> Result<(), Error> {
    let now = Timestamp::now();
    let Some(project) = tx.project(project)? else { return Ok(()) };
    {
        let lead = tx.lead(&project.id)?;
        match lead {
            None if project.settings.lead.is_some() => {
                start(tx, fx, &project, None, config)?;
            }
            Some(l) if l.wanted && now >= l.deadline => {
                let hours = project.settings.lead_timeout_s.unwrap_or(LEAD_TIMEOUT_S) as f64 / 3600.0;
                stop(tx, fx, &project.id, &format!("its time ran out ({hours} h)"))?;
            }
            Some(l) if l.wanted && active(tx, &l)?.is_none() => {
                start_fresh(tx, fx, &project, l, "its task was gone", config)?;
            }
            Some(l) if l.wanted && l.wake_at.is_some_and(|at| at <= now) => {
                let before = l.fence;
                let mut l = l;
                let note = l.wake_note.take().unwrap_or_default();
                l.wake_at = None;
                if let Some(task) = &l.task_id {
                    let text = format!("Your timer fired: {note}");
                    crate::scheduler::send_follow_up(tx, fx, task, text, Some("timer".into()))?;
                }
                save(tx, l, Some(before))?;
            }
            Some(l) if l.wanted => settle_in(tx, fx, &project, l, config)?,
            _ => {}
        }
    }
    Ok(())
}

/// Whether [`reconcile`] has anything to do for `project` (read only, so the
/// timers write only when something changes).
pub fn needs_care(r: &dyn StoreRead, project: &Project) -> Result<bool, Error> {
    let Some(lead) = r.lead(&project.id)? else { return Ok(project.settings.lead.is_some()) };
    if !lead.wanted {
        return Ok(false);
    }
    let now = Timestamp::now();
    if now >= lead.deadline || lead.wake_at.is_some_and(|at| at <= now) {
        return Ok(true);
    }
    Ok(match active(r, &lead)? {
        None => true,
        Some(t) => {
            matches!(t.status, TaskStatus::Failed | TaskStatus::Blocked)
                || (lead.reviving && t.status == TaskStatus::Succeeded)
        }
    })
}

/// A wanted lead's task as it is now: one that ended badly is revived, one
/// whose revival worked is no longer reviving.
fn settle_in(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    lead: LeadRecord,
    config: &Config,
) -> Result<(), Error> {
    let Some(task) = active(tx, &lead)? else { return Ok(()) };
    match task.status {
        TaskStatus::Succeeded if lead.reviving => {
            let before = lead.fence;
            let lead = LeadRecord { reviving: false, ..lead };
            save(tx, lead, Some(before)).map(|_| ())
        }
        TaskStatus::Failed | TaskStatus::Blocked => revive(tx, fx, project, &task, lead, config),
        _ => Ok(()),
    }
}

/// A fresh session for the lead, seeded with a handoff, in a task of its own.
fn start_fresh(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    mut lead: LeadRecord,
    why: &str,
    config: &Config,
) -> Result<(), Error> {
    let before = lead.fence;
    let def = tx.agent(&lead.agent)?.ok_or_else(|| Error::not_found("agent", &lead.agent))?;
    let note = handoff(tx, &def, why)?;
    let fresh = lead_task(tx, fx, project, &def, Some(note), config)?;
    lead.task_id = Some(fresh.id);
    lead.session_id = fresh.session_id;
    lead.reviving = false;
    lead.note = Some(format!("started a fresh session with a handoff: {why}"));
    save(tx, lead, Some(before)).map(|_| ())
}

/// The project's lead as people see it (`None` when none was ever started).
pub fn view(r: &dyn StoreRead, project: &Project) -> Result<Option<baton_core::memory::LeadView>, Error> {
    let Some(record) = r.lead(&project.id)? else { return Ok(None) };
    let task = record.task_id.as_ref().map(|id| r.task(id)).transpose()?.flatten();
    let runs = match &record.session_id {
        Some(s) => r.runs_of_session(s)?,
        None => Vec::new(),
    };
    let pid = runs.iter().rev().find(|run| !run.status.is_finished()).and_then(|run| run.pid);
    let state = match (&task, record.wanted) {
        (_, false) if record.done_at.is_some() => "done",
        (_, false) => "stopped",
        (Some(t), true) if t.status == TaskStatus::Succeeded => "idle",
        (Some(t), true) if !t.status.is_finished() => "working",
        _ => "reviving",
    };
    Ok(Some(baton_core::memory::LeadView {
        project: project.name.clone(),
        state: state.into(),
        task_status: task.as_ref().map(|t| t.status),
        pid,
        last_activity: task.map(|t| t.updated_at),
        record,
    }))
}

/// The agents that live between tasks (those with memory, and those that lead
/// a project): what each is doing, its inbox, its memory against its limits.
pub fn cluster(r: &dyn StoreRead) -> Result<Vec<baton_core::memory::AgentStatus>, Error> {
    use baton_core::memory::{AgentStatus, MessageState};
    let active = r.tasks(&TaskFilter {
        statuses: vec![TaskStatus::Queued, TaskStatus::Running, TaskStatus::Checking, TaskStatus::Reviewing],
        ..Default::default()
    })?;
    let projects = r.projects()?;
    let mut views = Vec::new();
    for p in &projects {
        if let Some(v) = view(r, p)? {
            views.push(v);
        }
    }
    let mut out = Vec::new();
    for def in r.agents()? {
        let leads: Vec<_> = views.iter().filter(|v| v.record.agent == def.name).cloned().collect();
        if !def.memory && leads.is_empty() {
            continue;
        }
        let mine: Vec<&Task> = active.iter().filter(|t| t.agent == def.name).collect();
        let working = mine.iter().filter(|t| t.status != TaskStatus::Queued).count() as u32;
        let queued_tasks = mine.len() as u32 - working;
        let queued_messages = r.messages(&def.name, &[MessageState::Queued], 1000)?.len() as u32;
        let (memory_chars, memory_limit) = match def.memory {
            true => crate::memory::blocks(r, &def.name)?.iter().fold((0, 0), |(c, l), b| (c + b.chars(), l + b.limit)),
            false => (0, 0),
        };
        let journal = r.journal(&def.name, 1)?.into_iter().next().map(|e| e.at);
        let last_activity = mine.iter().map(|t| t.updated_at).chain(journal).max();
        let state = match (working, queued_messages) {
            (w, _) if w > 0 => "working",
            (_, m) if m > 0 => "messages queued",
            _ => "idle",
        };
        out.push(AgentStatus {
            agent: def.name,
            state: state.into(),
            working,
            queued_tasks,
            queued_messages,
            memory: def.memory,
            memory_chars,
            memory_limit,
            leads,
            last_activity,
        });
    }
    Ok(out)
}
