//! The seed 004 flow: a planner agent turns a description into a JSON plan of
//! subtasks, each routed to an expert agent; independent subtasks run in parallel
//! and a failed one does not stop the others; when all have settled, a
//! synthesizer agent merges their results (or, if it fails, they are concatenated).
//!
//! ```text
//! pending → planning → executing → synthesizing → completed
//!              └──────────┴─────────────┴──────→ failed
//! ```
//!
//! Every step is a normal task, so it is scheduled, supervised, logged and
//! resumable like any other. The orchestration moves on when one of its tasks
//! settles (see `settle`), in the same transaction: nothing polls.

use baton_core::agent::AgentDef;
use baton_core::api::{AgentTemplate, Orchestrate};
use baton_core::dag;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::{OrchestrationId, TaskId};
use baton_core::model::{Orchestration, OrchestrationRef, OrchestrationRole, Project, RunKind, Subtask, Task};
use baton_core::names::title_from_prompt;
use baton_core::status::{OrchestrationStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_store::StoreTx;
use serde::Deserialize;

use super::Effects;
use super::emit::save_task;
use super::tasks::{NewTask, insert, queue_run};
use crate::Error;
use crate::resolve;
use crate::tokens::Caller;

/// How many times a planner whose answer is not a valid plan is asked again.
const CORRECTIONS: u32 = 1;

/// The most subtasks a plan may have.
const MAX_SUBTASKS: usize = 100;

fn log(o: &mut Orchestration, level: &str, message: impl AsRef<str>) {
    let now = Timestamp::now().to_rfc3339();
    let clock = now.get(11..19).unwrap_or("");
    o.logs.push(format!("[{clock}] [{level}] {}", message.as_ref()));
    o.updated_at = Timestamp::now();
}

fn move_to(o: &mut Orchestration, status: OrchestrationStatus) -> Result<(), Error> {
    o.status = o.status.transition(status)?;
    if matches!(status, OrchestrationStatus::Completed | OrchestrationStatus::Failed) {
        o.completed_at = Some(Timestamp::now());
    }
    Ok(())
}

/// Writes an orchestration and announces it.
pub(crate) fn save(tx: &mut dyn StoreTx, o: &Orchestration) -> Result<(), Error> {
    crate::outbox::orchestration_saved(tx, o)?;
    tx.put_orchestration(o)?;
    tx.append_event(
        None,
        None,
        None,
        NewEvent::new(EventKind::Orchestration, serde_json::to_value(o).unwrap_or_default()),
    )?;
    Ok(())
}

/// The experts a plan can name: every agent, by name, with its tags.
fn agent_templates(tx: &dyn StoreTx) -> Result<Vec<AgentTemplate>, Error> {
    Ok(tx
        .agents()?
        .into_iter()
        .map(|a| AgentTemplate { kind: a.name.clone(), name: a.name, description: a.description, tags: a.tags })
        .collect())
}

/// An agent for a role: the one asked for, else the project's setting, else an
/// agent named after the role, else the project's default agent.
fn role_agent(
    tx: &dyn StoreTx,
    project: &Project,
    asked: Option<&str>,
    configured: Option<&str>,
    role: &str,
) -> Result<AgentDef, Error> {
    if let Some(name) = asked.or(configured) {
        return tx.agent(name)?.ok_or_else(|| Error::not_found("agent", name));
    }
    if let Some(agent) = tx.agent(role)? {
        return Ok(agent);
    }
    let name = project.settings.default_agent.as_deref().unwrap_or("claude");
    tx.agent(name)?.ok_or_else(|| Error::not_found("agent", name))
}

fn planning_prompt(description: &str, experts: &[AgentTemplate]) -> String {
    let mut text = String::from(
        "You are the planner of a team of expert agents. Break the task below into subtasks for the experts.\n\n## Task\n",
    );
    text.push_str(description.trim());
    text.push_str("\n\n## Experts (agent_type: what it does)\n");
    for e in experts {
        let tags = if e.tags.is_empty() { String::new() } else { format!(" [{}]", e.tags.join(", ")) };
        text.push_str(&format!("- {}: {}{tags}\n", e.kind, e.description));
    }
    text.push_str(
        "\n## Answer\nAnswer with only a JSON object, no prose and no code fences, of this shape:\n\
         {\"analysis\": \"your reading of the task\", \"subtasks\": [{\"id\": \"subtask-1\", \"description\": \"what to do\", \
         \"agent_type\": \"one of the experts above\", \"depends_on\": []}]}\n\
         Ids are unique; depends_on lists the ids of subtasks that must finish first; there are no cycles. \
         Subtasks that do not depend on each other run in parallel.",
    );
    text
}

/// Starts an orchestration: its planner task is created at once.
pub fn start(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    req: Orchestrate,
) -> Result<Orchestration, Error> {
    if req.description.trim().is_empty() {
        return Err(Error::invalid("`description` must not be empty"));
    }
    // Its planner picks the subtasks' agents, beyond any session's `delegates_to`:
    // an agent hands out work with tasks or plans instead, which are checked.
    if caller.session().is_some() {
        return Err(Error::forbidden(
            "an agent's session may not start an orchestration (its planner would pick agents the session may not \
             start); submit a plan instead",
        ));
    }
    let project = resolve::request_project(tx, req.project.as_deref(), None)?;
    let s = &project.settings;
    let planner = role_agent(tx, &project, req.planner.as_deref(), s.planner_agent.as_deref(), "planner")?;
    let synthesizer =
        role_agent(tx, &project, req.synthesizer.as_deref(), s.synthesizer_agent.as_deref(), "synthesizer")?;
    let now = Timestamp::now();
    let mut o = Orchestration {
        id: OrchestrationId::generate(),
        project_id: project.id.clone(),
        description: req.description.clone(),
        status: OrchestrationStatus::Pending,
        planner: planner.name.clone(),
        synthesizer: synthesizer.name.clone(),
        planner_task: None,
        corrections: 0,
        plan: None,
        subtasks: Vec::new(),
        synthesizer_task: None,
        final_result: None,
        logs: Vec::new(),
        created_at: now,
        updated_at: now,
        completed_at: None,
    };
    log(&mut o, "INFO", "Task created");
    let prompt = planning_prompt(&o.description, &agent_templates(tx)?);
    let task = insert(
        tx,
        fx,
        role_task(
            &project,
            prompt,
            format!("Plan: {}", title_from_prompt(&o.description)),
            planner,
            &o.id,
            OrchestrationRole::Planner,
            None,
            Vec::new(),
        ),
        TaskId::generate(),
    )?;
    o.planner_task = Some(task.id.clone());
    move_to(&mut o, OrchestrationStatus::Planning)?;
    let message = format!("Planning with agent {} (task {})", o.planner, task.id);
    log(&mut o, "INFO", message);
    save(tx, &o)?;
    Ok(o)
}

#[expect(clippy::too_many_arguments, reason = "each is one field of the task; a struct would only rename them")]
fn role_task(
    project: &Project,
    prompt: String,
    title: String,
    agent: AgentDef,
    id: &OrchestrationId,
    role: OrchestrationRole,
    subtask: Option<String>,
    depends_on: Vec<TaskId>,
) -> NewTask {
    NewTask {
        depends_on,
        orchestration: Some(OrchestrationRef { id: id.clone(), role, subtask }),
        ..NewTask::made(project, agent, prompt, title)
    }
}

/// Moves an orchestration on after one of its tasks settled.
pub(crate) fn advance(tx: &mut dyn StoreTx, fx: &mut Effects, task: &Task) -> Result<(), Error> {
    let Some(link) = &task.orchestration else { return Ok(()) };
    let Some(mut o) = tx.orchestration(&link.id)? else { return Ok(()) };
    if matches!(o.status, OrchestrationStatus::Completed | OrchestrationStatus::Failed) {
        return Ok(());
    }
    match link.role {
        OrchestrationRole::Planner => planned(tx, fx, &mut o, task)?,
        OrchestrationRole::Subtask => subtask_settled(tx, fx, &mut o, task, link.subtask.as_deref())?,
        OrchestrationRole::Synthesizer => synthesized(&mut o, task)?,
    }
    save(tx, &o)
}

/// The plan as the planner must write it.
#[derive(Debug, Deserialize)]
struct PlanAnswer {
    #[serde(default)]
    analysis: String,
    subtasks: Vec<SubtaskAnswer>,
}

#[derive(Debug, Deserialize)]
struct SubtaskAnswer {
    id: String,
    description: String,
    agent_type: String,
    #[serde(default)]
    depends_on: Vec<String>,
}

/// Reads and checks a planner's answer.
fn parse_plan(output: &str) -> Result<(serde_json::Value, PlanAnswer), String> {
    let text = output.trim();
    let (Some(start), Some(end)) = (text.find('{'), text.rfind('}')) else {
        return Err("it contains no JSON object".into());
    };
    if end < start {
        return Err("it contains no JSON object".into());
    }
    let json = &text[start..=end];
    let value: serde_json::Value = serde_json::from_str(json).map_err(|e| format!("it is not valid JSON ({e})"))?;
    let plan: PlanAnswer =
        serde_json::from_value(value.clone()).map_err(|e| format!("it does not have the plan's shape ({e})"))?;
    if plan.subtasks.is_empty() {
        return Err("it has no subtasks".into());
    }
    if plan.subtasks.len() > MAX_SUBTASKS {
        return Err(format!("it has more than {MAX_SUBTASKS} subtasks"));
    }
    let ids: Vec<&str> = plan.subtasks.iter().map(|s| s.id.as_str()).collect();
    for (i, s) in plan.subtasks.iter().enumerate() {
        if s.id.trim().is_empty() || s.description.trim().is_empty() || s.agent_type.trim().is_empty() {
            return Err(format!("subtask {} lacks an id, a description or an agent_type", i + 1));
        }
        if ids[..i].contains(&s.id.as_str()) {
            return Err(format!("two subtasks have the id {:?}", s.id));
        }
        if let Some(d) = s.depends_on.iter().find(|d| !ids.contains(&d.as_str())) {
            return Err(format!("subtask {:?} depends on {d:?}, which is not a subtask", s.id));
        }
    }
    let edges: Vec<Vec<usize>> = plan
        .subtasks
        .iter()
        .map(|s| s.depends_on.iter().filter_map(|d| ids.iter().position(|i| i == d)).collect())
        .collect();
    if let Some(cycle) = dag::find_cycle(&edges) {
        let names: Vec<&str> = cycle.iter().map(|&i| ids[i]).collect();
        return Err(format!("its dependencies form a cycle ({})", names.join(" → ")));
    }
    Ok((value, plan))
}

/// The agent for a subtask: the agent named by its `agent_type`, else one tagged
/// with it, else the one whose tags appear most in its description, else the
/// project's default agent.
fn route(agents: &[AgentDef], default: &AgentDef, agent_type: &str, description: &str) -> AgentDef {
    let kind = agent_type.trim().to_lowercase();
    if let Some(a) = agents.iter().find(|a| a.name.to_lowercase() == kind) {
        return a.clone();
    }
    if let Some(a) = agents.iter().find(|a| a.tags.iter().any(|t| t.to_lowercase() == kind)) {
        return a.clone();
    }
    let words = description.to_lowercase();
    agents
        .iter()
        .map(|a| (a.tags.iter().filter(|t| words.contains(&t.to_lowercase())).count(), a))
        .filter(|(n, _)| *n > 0)
        .max_by_key(|(n, _)| *n)
        .map(|(_, a)| a.clone())
        .unwrap_or_else(|| default.clone())
}

fn fail(o: &mut Orchestration, why: String) -> Result<(), Error> {
    log(o, "ERROR", &why);
    move_to(o, OrchestrationStatus::Failed)
}

fn planned(tx: &mut dyn StoreTx, fx: &mut Effects, o: &mut Orchestration, task: &Task) -> Result<(), Error> {
    if task.status != TaskStatus::Succeeded {
        let why = task.reason.clone().unwrap_or_else(|| task.status.to_string());
        return fail(o, format!("The planner failed: {why}"));
    }
    let output = task.result.clone().unwrap_or_default();
    let (value, plan) = match parse_plan(&output) {
        Ok(p) => p,
        Err(why) => {
            log(o, "WARN", format!("The planner's answer is not a valid plan: {why}"));
            if o.corrections < CORRECTIONS {
                o.corrections += 1;
                let mut planner = task.clone();
                let session = match &planner.session_id {
                    Some(s) => Some(resolve::session(tx, s)?),
                    None => None,
                };
                let message = format!(
                    "Your answer is not a valid plan: {why}. Answer again with only the JSON object described before: no prose, no code fences."
                );
                queue_run(tx, fx, &mut planner, RunKind::Resume, message, session, None)?;
                save_task(tx, &planner)?;
                log(o, "INFO", "Asked the planner to correct its plan");
                return Ok(());
            }
            log(o, "INFO", format!("Planner output: {output}"));
            return fail(o, format!("The planner did not produce a valid plan: {why}"));
        }
    };
    log(o, "INFO", format!("Plan received: {} subtasks. {}", plan.subtasks.len(), plan.analysis.trim()));
    let project = resolve::project(tx, &o.project_id)?;
    let agents = tx.agents()?;
    let default_name = project.settings.default_agent.clone().unwrap_or_else(|| "claude".into());
    let default = tx.agent(&default_name)?.ok_or_else(|| Error::not_found("agent", &default_name))?;
    let ids: Vec<&str> = plan.subtasks.iter().map(|s| s.id.as_str()).collect();
    let edges: Vec<Vec<usize>> = plan
        .subtasks
        .iter()
        .map(|s| s.depends_on.iter().filter_map(|d| ids.iter().position(|i| i == d)).collect())
        .collect();
    let order = dag::topological_order(&edges).map_err(|_| Error::invalid("the plan has a cycle"))?;
    let task_ids: Vec<TaskId> = plan.subtasks.iter().map(|_| TaskId::generate()).collect();
    let mut subtasks: Vec<Option<Subtask>> = plan.subtasks.iter().map(|_| None).collect();
    for i in order {
        let s = &plan.subtasks[i];
        let agent = route(&agents, &default, &s.agent_type, &s.description);
        let prompt = format!(
            "{}\n\n## Context\nThis is one part of a larger task:\n{}",
            s.description.trim(),
            o.description.trim()
        );
        let title = format!("{}: {}", s.id, title_from_prompt(&s.description));
        let deps = edges[i].iter().map(|&j| task_ids[j].clone()).collect();
        let new = role_task(
            &project,
            prompt,
            title,
            agent.clone(),
            &o.id,
            OrchestrationRole::Subtask,
            Some(s.id.clone()),
            deps,
        );
        let created = insert(tx, fx, new, task_ids[i].clone())?;
        log(o, "INFO", format!("Subtask {} → agent {} (task {})", s.id, agent.name, created.id));
        subtasks[i] = Some(Subtask {
            id: s.id.clone(),
            description: s.description.clone(),
            agent_type: s.agent_type.clone(),
            depends_on: s.depends_on.clone(),
            agent: Some(agent.name),
            task_id: Some(created.id),
            status: created.status,
            result: None,
        });
    }
    o.plan = Some(value);
    o.subtasks = subtasks.into_iter().flatten().collect();
    move_to(o, OrchestrationStatus::Executing)
}

fn subtask_settled(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    o: &mut Orchestration,
    task: &Task,
    id: Option<&str>,
) -> Result<(), Error> {
    if let Some(s) = o.subtasks.iter_mut().find(|s| Some(s.id.as_str()) == id) {
        s.status = task.status;
        s.result = match task.status {
            TaskStatus::Succeeded => task.result.clone(),
            _ => task.reason.clone().or_else(|| task.result.clone()),
        };
        let level = if task.status == TaskStatus::Succeeded { "INFO" } else { "WARN" };
        let id = s.id.clone();
        log(o, level, format!("Subtask {id} {}", task.status));
    }
    if o.status != OrchestrationStatus::Executing || !o.subtasks.iter().all(|s| s.status.is_settled()) {
        return Ok(());
    }
    let project = resolve::project(tx, &o.project_id)?;
    let synthesizer = tx.agent(&o.synthesizer)?.ok_or_else(|| Error::not_found("agent", &o.synthesizer))?;
    let mut prompt = String::from(
        "You are the synthesizer. Combine the results of the subtasks below into one integrated answer to the original task.\n\n## Original task\n",
    );
    prompt.push_str(o.description.trim());
    prompt.push_str("\n\n## Results\n");
    for s in &o.subtasks {
        prompt.push_str(&format!(
            "### {} ({}, {})\n{}\n\n",
            s.id,
            s.agent.as_deref().unwrap_or(&s.agent_type),
            s.status,
            s.result.as_deref().unwrap_or("(no result)").trim()
        ));
    }
    let new = role_task(
        &project,
        prompt,
        format!("Synthesis: {}", title_from_prompt(&o.description)),
        synthesizer,
        &o.id,
        OrchestrationRole::Synthesizer,
        None,
        Vec::new(),
    );
    let created = insert(tx, fx, new, TaskId::generate())?;
    o.synthesizer_task = Some(created.id.clone());
    move_to(o, OrchestrationStatus::Synthesizing)?;
    let message = format!("Synthesizing with agent {} (task {})", o.synthesizer, created.id);
    log(o, "INFO", message);
    Ok(())
}

fn synthesized(o: &mut Orchestration, task: &Task) -> Result<(), Error> {
    if task.status == TaskStatus::Succeeded {
        o.final_result = Some(task.result.clone().unwrap_or_default());
        log(o, "INFO", "Synthesis complete");
    } else {
        let why = task.reason.clone().unwrap_or_else(|| task.status.to_string());
        let joined: Vec<String> = o
            .subtasks
            .iter()
            .map(|s| format!("## {} ({})\n{}", s.id, s.status, s.result.as_deref().unwrap_or("(no result)").trim()))
            .collect();
        o.final_result = Some(joined.join("\n\n"));
        log(o, "WARN", format!("The synthesizer failed ({why}); the subtasks' results were concatenated"));
    }
    move_to(o, OrchestrationStatus::Completed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_are_read_from_noisy_answers_and_checked() {
        let ok = "Here it is:\n```json\n{\"analysis\":\"a\",\"subtasks\":[{\"id\":\"s1\",\"description\":\"d\",\"agent_type\":\"x\"},{\"id\":\"s2\",\"description\":\"e\",\"agent_type\":\"y\",\"depends_on\":[\"s1\"]}]}\n```";
        let (_, plan) = parse_plan(ok).unwrap();
        assert_eq!(plan.subtasks.len(), 2);
        for (bad, why) in [
            ("I think we should start with the API.", "no JSON object"),
            ("{\"subtasks\": [", "no JSON object"),
            ("{\"analysis\": 1}", "shape"),
            ("{\"subtasks\": []}", "no subtasks"),
            (
                "{\"subtasks\":[{\"id\":\"a\",\"description\":\"d\",\"agent_type\":\"x\",\"depends_on\":[\"zz\"]}]}",
                "not a subtask",
            ),
            (
                "{\"subtasks\":[{\"id\":\"a\",\"description\":\"d\",\"agent_type\":\"x\",\"depends_on\":[\"a\"]}]}",
                "cycle",
            ),
            (
                "{\"subtasks\":[{\"id\":\"a\",\"description\":\"d\",\"agent_type\":\"x\"},{\"id\":\"a\",\"description\":\"d\",\"agent_type\":\"x\"}]}",
                "two subtasks",
            ),
        ] {
            let err = parse_plan(bad).unwrap_err();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }
}
