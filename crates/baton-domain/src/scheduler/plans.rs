//! Plans: a DAG of tasks submitted in one call, its tasks naming each other,
//! checked whole (names, agents, dependencies, cycles) before anything is created.

use std::collections::HashMap;

use baton_core::agent::AgentDef;
use baton_core::api::{
    CheckedTask, CreatePlan, PlanCheck, PlanCreated, PlanDefaults, PlanSynthesis, PlanTask, PlannedTask,
};
use baton_core::dag;
use baton_core::ids::{PlanId, TaskId};
use baton_core::model::{Plan, Project, Session};
use baton_core::names::validate_simple_name;
use baton_core::time::Timestamp;
use baton_store::StoreTx;

use super::Effects;
use super::tasks::{
    NewTask, check_delegation, check_fields, insert, insert_known, resolve_agent, resolve_dependencies,
};
use crate::Error;
use crate::resolve;
use crate::state::Config;
use crate::tokens::Caller;

/// The largest plan accepted.
const MAX_PLAN_TASKS: usize = 50_000;

/// Checks a plan and creates its tasks, prerequisites first.
pub fn create_plan(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    req: CreatePlan,
    config: &Config,
) -> Result<PlanCreated, Error> {
    let checked = check_plan(tx, caller, &req, config)?;
    write_plan(tx, fx, &req, checked)
}

/// Checks a plan as [`create_plan`] does and says what it would create;
/// nothing is written.
pub fn check_plan_only(
    tx: &dyn StoreTx,
    caller: &Caller,
    req: &CreatePlan,
    config: &Config,
) -> Result<PlanCheck, Error> {
    let checked = check_plan(tx, caller, req, config)?;
    let mut tasks: Vec<CheckedTask> = checked
        .order
        .iter()
        .map(|&i| {
            let new = &checked.news[i];
            let mut depends_on: Vec<String> = checked.internal[i].iter().map(|&j| req.tasks[j].name.clone()).collect();
            depends_on.extend(new.depends_on.iter().map(ToString::to_string));
            CheckedTask {
                name: req.tasks[i].name.clone(),
                title: new.title.clone(),
                agent: new.agent.name.clone(),
                depends_on,
                approval: new.approval,
            }
        })
        .collect();
    if let (Some(s), Some(agent)) = (&req.synthesis, &checked.synthesis) {
        tasks.push(CheckedTask {
            name: "synthesis".into(),
            title: s.title.clone().unwrap_or_else(|| "Synthesis".into()),
            agent: agent.name.clone(),
            depends_on: req.tasks.iter().map(|t| t.name.clone()).collect(),
            approval: false,
        });
    }
    Ok(PlanCheck { tasks })
}

/// A plan checked whole: every task made and in the order to create them.
struct CheckedPlan {
    /// The project its tasks run in.
    project: Project,
    /// The session that submits it, for a session token.
    parent: Option<Session>,
    /// Each task's prerequisites inside the plan, by index.
    internal: Vec<Vec<usize>>,
    /// Each task, ready to insert (its prerequisites outside the plan resolved).
    news: Vec<NewTask>,
    /// The indexes of the tasks, prerequisites first.
    order: Vec<usize>,
    /// The synthesis task's agent, when the plan has one.
    synthesis: Option<AgentDef>,
}

/// Checks everything about a plan (names, agents, dependencies, cycles,
/// delegation) and changes nothing.
fn check_plan(tx: &dyn StoreTx, caller: &Caller, req: &CreatePlan, config: &Config) -> Result<CheckedPlan, Error> {
    let parent = match caller.session() {
        Some(id) => Some(resolve::session(tx, &id)?),
        None => None,
    };
    if let Some(parent) = &parent {
        // A session of a lead that was replaced starts nothing (its fence is old).
        crate::leads::acting(tx, &parent.id)?;
    }
    let project = resolve::request_project(tx, req.project.as_deref(), parent.as_ref().map(|s| &s.project_id))?;
    let index = check_names(req)?;
    let mut agents: HashMap<(Option<String>, Vec<String>), AgentDef> = HashMap::new();
    let mut internal: Vec<Vec<usize>> = Vec::with_capacity(req.tasks.len());
    let mut news = Vec::with_capacity(req.tasks.len());
    let from = Context { project: &project, parent: parent.as_ref(), config, defaults: &req.defaults };
    for t in &req.tasks {
        let (inside, outside): (Vec<&String>, Vec<&String>) =
            t.depends_on.iter().partition(|n| index.contains_key(n.as_str()));
        internal.push(inside.iter().map(|n| index[n.as_str()]).collect());
        let outside: Vec<String> = outside.into_iter().cloned().collect();
        let fields = task_fields(&from, t).map_err(|e| in_task(e, &t.name))?;
        let agent = plan_agent(tx, &from, &mut agents, t)?;
        news.push(plan_task(tx, &from, t, fields, agent, &outside).map_err(|e| in_task(e, &t.name))?);
    }
    let order = dag::topological_order(&internal)
        .map_err(|cycle| Error::Cycle { cycle: cycle.iter().map(|&i| req.tasks[i].name.clone()).collect() })?;
    let synthesis = match &req.synthesis {
        Some(s) => Some(check_synthesis(tx, &from, s).map_err(|e| in_task(e, "synthesis"))?),
        None => None,
    };
    Ok(CheckedPlan { project, parent, internal, news, order, synthesis })
}

/// The plan's size, and its task names (each once), by index.
fn check_names(req: &CreatePlan) -> Result<HashMap<&str, usize>, Error> {
    if req.tasks.is_empty() {
        return Err(Error::invalid(if req.synthesis.is_some() {
            "the plan's synthesis would depend on nothing: a plan needs at least one task"
        } else {
            "a plan needs at least one task"
        }));
    }
    if req.tasks.len() > MAX_PLAN_TASKS {
        return Err(Error::too_large(format!("a plan may have at most {MAX_PLAN_TASKS} tasks")));
    }
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, t) in req.tasks.iter().enumerate() {
        validate_simple_name("task name", &t.name)?;
        if index.insert(t.name.as_str(), i).is_some() {
            return Err(Error::combination(format!("two tasks of the plan are named {:?}", t.name)));
        }
    }
    Ok(index)
}

/// What every task of a plan is checked against.
struct Context<'a> {
    /// The plan's project.
    project: &'a Project,
    /// The submitting session, whose delegation rules apply.
    parent: Option<&'a Session>,
    /// The coordinator's settings (the delegation depth).
    config: &'a Config,
    /// The plan's defaults for its tasks.
    defaults: &'a PlanDefaults,
}

/// A plan task's own fields, with the plan's and the project's defaults.
struct Fields {
    /// Its acceptance checks.
    checks: Vec<String>,
    /// Its time limit.
    timeout_s: Option<u64>,
    /// Its budget.
    budget_usd: Option<f64>,
}

/// Checks a plan task's own fields.
fn task_fields(from: &Context<'_>, t: &PlanTask) -> Result<Fields, Error> {
    let d = from.defaults;
    let checks = t.checks.clone().or_else(|| d.checks.clone()).unwrap_or_else(|| from.project.settings.checks.clone());
    let timeout_s = t.timeout_s.or(d.timeout_s);
    let budget_usd = t.budget_usd.or(d.budget_usd);
    check_fields(&t.prompt, t.title.as_deref(), timeout_s, budget_usd, &checks, t.branch.as_deref())?;
    for label in &t.require {
        baton_core::names::validate_label(label)?;
    }
    Ok(Fields { checks, timeout_s, budget_usd })
}

/// The agent of a plan task (resolved once per name and tags). A session that
/// may not start it is refused as itself, not as the task's error.
fn plan_agent(
    tx: &dyn StoreTx,
    from: &Context<'_>,
    agents: &mut HashMap<(Option<String>, Vec<String>), AgentDef>,
    t: &PlanTask,
) -> Result<AgentDef, Error> {
    let agent_name = t.agent.clone().or_else(|| from.defaults.agent.clone());
    let key = (agent_name, task_tags(from, t));
    if let Some(a) = agents.get(&key) {
        return Ok(a.clone());
    }
    let a = resolve_agent(tx, from.project, key.0.as_deref(), &key.1).map_err(|e| in_task(e, &t.name))?;
    if let Some(parent) = from.parent {
        check_delegation(tx, parent, &a, from.config.max_delegation_depth)?;
    }
    agents.insert(key, a.clone());
    Ok(a)
}

/// A plan task's tags, or the plan's.
fn task_tags(from: &Context<'_>, t: &PlanTask) -> Vec<String> {
    if t.tags.is_empty() { from.defaults.tags.clone() } else { t.tags.clone() }
}

/// One task of a plan, made (without its prerequisites inside the plan, which
/// are known only by index until every task has an id).
fn plan_task(
    tx: &dyn StoreTx,
    from: &Context<'_>,
    t: &PlanTask,
    fields: Fields,
    agent: AgentDef,
    outside: &[String],
) -> Result<NewTask, Error> {
    let (d, project) = (from.defaults, from.project);
    let external = resolve_dependencies(tx, project, outside)?;
    let mut asked = super::tasks::Asked::default();
    if let Some(name) = &t.workset {
        let (_, workset) = crate::worksets::for_task(tx, name, Some(project.id.as_str()))?;
        asked.workset = Some(workset);
    }
    let loops = super::loops::settings(tx, project, &agent, super::loops::Ask::default())?;
    Ok(NewTask {
        project: project.clone(),
        prompt: t.prompt.clone(),
        title: t.title.clone().unwrap_or_else(|| t.name.clone()),
        timeout_s: fields.timeout_s.or(agent.timeout_s),
        stall_s: agent.stall_s,
        budget_usd: fields.budget_usd.or(agent.budget_usd),
        tags: task_tags(from, t),
        agent,
        depends_on: external,
        // A workset task's own checks are only those asked for (each project's
        // run in its worktree).
        checks: if asked.workset.is_some() && t.checks.is_none() { Vec::new() } else { fields.checks },
        max_retries: t.max_retries.or(d.max_retries).unwrap_or(0),
        approval: t.approval.or(d.approval).is_some_and(|a| a.0),
        branch: t.branch.clone(),
        parent: from.parent.map(|s| s.id.clone()),
        callback: false,
        plan: None,
        orchestration: None,
        sandbox: t.sandbox,
        require: t.require.clone(),
        loops,
        review_of: None,
        base: None,
        asked,
    })
}

/// The synthesis task's fields and agent.
fn check_synthesis(tx: &dyn StoreTx, from: &Context<'_>, s: &PlanSynthesis) -> Result<AgentDef, Error> {
    check_fields(&s.prompt, s.title.as_deref(), None, None, &[], None)?;
    let agent = resolve_agent(tx, from.project, s.agent.as_deref(), &[])?;
    if let Some(parent) = from.parent {
        check_delegation(tx, parent, &agent, from.config.max_delegation_depth)?;
    }
    Ok(agent)
}

/// Creates a checked plan's tasks, prerequisites first, then its synthesis and
/// the plan itself.
fn write_plan(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    req: &CreatePlan,
    checked: CheckedPlan,
) -> Result<PlanCreated, Error> {
    let CheckedPlan { project, parent, internal, news, order, synthesis } = checked;
    // Thousands of tasks at once: written together at the end on PostgreSQL.
    tx.begin_bulk();
    let plan_id = PlanId::generate();
    let ids: Vec<TaskId> = req.tasks.iter().map(|_| TaskId::generate()).collect();
    let mut created = vec![None; req.tasks.len()];
    let mut news: Vec<Option<NewTask>> = news.into_iter().map(Some).collect();
    let mut known: HashMap<TaskId, baton_core::status::TaskStatus> = HashMap::with_capacity(ids.len());
    for i in order {
        let mut new = news[i].take().expect("each task once");
        let mut deps: Vec<TaskId> = internal[i].iter().map(|&j| ids[j].clone()).collect();
        deps.append(&mut new.depends_on);
        new.depends_on = deps;
        new.plan = Some((plan_id.clone(), req.tasks[i].name.clone()));
        let task = insert_known(tx, fx, new, ids[i].clone(), &known)?;
        known.insert(task.id.clone(), task.status);
        created[i] = Some(PlannedTask {
            name: req.tasks[i].name.clone(),
            id: task.id,
            status: task.status,
            reason: task.reason,
        });
    }
    let mut tasks: Vec<PlannedTask> = created.into_iter().map(|t| t.expect("every task created")).collect();
    let synthesis_id = match (&req.synthesis, synthesis) {
        (Some(s), Some(agent)) => {
            let title = s.title.clone().unwrap_or_else(|| "Synthesis".into());
            let new = NewTask {
                depends_on: ids.clone(),
                parent: parent.as_ref().map(|s| s.id.clone()),
                plan: Some((plan_id.clone(), "synthesis".into())),
                ..NewTask::made(&project, agent, s.prompt.clone(), title)
            };
            let task = insert(tx, fx, new, TaskId::generate())?;
            let id = task.id.clone();
            tasks.push(PlannedTask { name: "synthesis".into(), id: task.id, status: task.status, reason: task.reason });
            Some(id)
        }
        _ => None,
    };
    let plan = Plan {
        id: plan_id,
        name: req.name.clone().unwrap_or_else(|| "plan".into()),
        project_id: project.id.clone(),
        tasks: req.tasks.iter().zip(&ids).map(|(t, id)| (t.name.clone(), id.clone())).collect(),
        synthesis: synthesis_id,
        callback_session: parent.filter(|_| req.callback).map(|s| s.id),
        called_back: false,
        created_at: Timestamp::now(),
    };
    tx.put_plan(&plan)?;
    Ok(PlanCreated { plan, tasks })
}

/// The error, saying which task of the plan it is about.
fn in_task(e: Error, name: &str) -> Error {
    Error::InPlan { task: name.to_owned(), source: Box::new(e) }
}

/// A task of a plan settled: when the plan was submitted with `callback` and
/// every one of its tasks has now ended, its session is told once, with how
/// each ended. The plan is written first, so that of two tasks settling at
/// once on two replicas the second sees the first (the row is locked until
/// its transaction ends).
pub(crate) fn plan_task_settled(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &baton_core::model::Task,
) -> Result<(), Error> {
    let Some(id) = &task.plan_id else { return Ok(()) };
    let Some(plan) = tx.plan(id)? else { return Ok(()) };
    if plan.callback_session.is_none() || plan.called_back {
        return Ok(());
    }
    tx.put_plan(&plan)?;
    let Some(mut plan) = tx.plan(id)? else { return Ok(()) };
    let mut ended = Vec::new();
    for (name, tid) in
        plan.tasks.iter().map(|(n, t)| (n.as_str(), t)).chain(plan.synthesis.iter().map(|t| ("synthesis", t)))
    {
        let status = if *tid == task.id { Some(task.status) } else { tx.task(tid)?.map(|t| t.status) };
        match status {
            Some(s) if s.is_settled() => ended.push(format!("- {name} ({tid}): {s}")),
            _ => return Ok(()),
        }
    }
    plan.called_back = true;
    tx.put_plan(&plan)?;
    let session = crate::leads::current_session(tx, plan.callback_session.as_ref().expect("checked above"))?;
    let Some(mut parent) = tx.session(&session)? else { return Ok(()) };
    let all = ended.iter().all(|l| l.ends_with(": succeeded"));
    parent.pending_callbacks.push(baton_core::model::Callback {
        task_id: task.id.clone(),
        title: format!("plan {} ({})", plan.name, plan.id),
        status: if all { baton_core::status::TaskStatus::Succeeded } else { baton_core::status::TaskStatus::Failed },
        text: format!("Every task of plan {} has ended:\n{}", plan.name, ended.join("\n")),
    });
    super::settle::deliver_callbacks(tx, fx, parent)
}
