//! Plans: a DAG of tasks submitted in one call, its tasks naming each other,
//! checked whole (names, agents, dependencies, cycles) before anything is created.

use std::collections::HashMap;

use baton_core::agent::AgentDef;
use baton_core::api::{CreatePlan, PlanCreated, PlannedTask};
use baton_core::dag;
use baton_core::ids::{PlanId, TaskId};
use baton_core::model::Plan;
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
    let parent = match caller.session() {
        Some(id) => Some(resolve::session(tx, &id)?),
        None => None,
    };
    let project = resolve::request_project(tx, req.project.as_deref(), parent.as_ref().map(|s| &s.project_id))?;
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
            return Err(Error::invalid(format!("two tasks of the plan are named {:?}", t.name)));
        }
    }
    let d = &req.defaults;
    let mut agents: HashMap<(Option<String>, Vec<String>), AgentDef> = HashMap::new();
    let mut internal: Vec<Vec<usize>> = Vec::with_capacity(req.tasks.len());
    let mut news = Vec::with_capacity(req.tasks.len());
    for t in &req.tasks {
        let checks = t.checks.clone().or_else(|| d.checks.clone()).unwrap_or_else(|| project.settings.checks.clone());
        let timeout_s = t.timeout_s.or(d.timeout_s);
        let budget_usd = t.budget_usd.or(d.budget_usd);
        check_fields(&t.prompt, t.title.as_deref(), timeout_s, budget_usd, &checks, t.branch.as_deref())
            .map_err(|e| in_task(e, &t.name))?;
        for label in &t.require {
            baton_core::names::validate_label(label).map_err(|e| in_task(e.into(), &t.name))?;
        }
        let agent_name = t.agent.clone().or_else(|| d.agent.clone());
        let tags = if t.tags.is_empty() { d.tags.clone() } else { t.tags.clone() };
        let key = (agent_name.clone(), tags.clone());
        let agent = match agents.get(&key) {
            Some(a) => a.clone(),
            None => {
                let a = resolve_agent(tx, &project, agent_name.as_deref(), &tags).map_err(|e| in_task(e, &t.name))?;
                if let Some(parent) = &parent {
                    check_delegation(tx, parent, &a, config.max_delegation_depth)?;
                }
                agents.insert(key, a.clone());
                a
            }
        };
        let (inside, outside): (Vec<&String>, Vec<&String>) =
            t.depends_on.iter().partition(|n| index.contains_key(n.as_str()));
        internal.push(inside.iter().map(|n| index[n.as_str()]).collect());
        let outside: Vec<String> = outside.into_iter().cloned().collect();
        let external = resolve_dependencies(tx, &project, &outside).map_err(|e| in_task(e, &t.name))?;
        let loops = super::loops::settings(tx, &project, &agent, super::loops::Ask::default())
            .map_err(|e| in_task(e, &t.name))?;
        news.push(NewTask {
            project: project.clone(),
            prompt: t.prompt.clone(),
            title: t.title.clone().unwrap_or_else(|| t.name.clone()),
            timeout_s: timeout_s.or(agent.timeout_s),
            stall_s: agent.stall_s,
            budget_usd: budget_usd.or(agent.budget_usd),
            agent,
            tags,
            depends_on: external,
            checks,
            max_retries: t.max_retries.or(d.max_retries).unwrap_or(0),
            approval: t.approval.or(d.approval).is_some_and(|a| a.0),
            branch: t.branch.clone(),
            parent: parent.as_ref().map(|s| s.id.clone()),
            callback: false,
            plan: None,
            orchestration: None,
            sandbox: t.sandbox,
            require: t.require.clone(),
            loops,
            review_of: None,
            base: None,
        });
    }
    let order = dag::topological_order(&internal)
        .map_err(|cycle| Error::Cycle { cycle: cycle.iter().map(|&i| req.tasks[i].name.clone()).collect() })?;
    let synthesis = match &req.synthesis {
        Some(s) => {
            check_fields(&s.prompt, s.title.as_deref(), None, None, &[], None).map_err(|e| in_task(e, "synthesis"))?;
            let agent = resolve_agent(tx, &project, s.agent.as_deref(), &[]).map_err(|e| in_task(e, "synthesis"))?;
            if let Some(parent) = &parent {
                check_delegation(tx, parent, &agent, config.max_delegation_depth)
                    .map_err(|e| in_task(e, "synthesis"))?;
            }
            Some((s, agent))
        }
        None => None,
    };

    // Everything is checked: create.
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
    let synthesis_id = match synthesis {
        Some((s, agent)) => {
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
        None => None,
    };
    let plan = Plan {
        id: plan_id,
        name: req.name.clone().unwrap_or_else(|| "plan".into()),
        project_id: project.id.clone(),
        tasks: req.tasks.iter().zip(&ids).map(|(t, id)| (t.name.clone(), id.clone())).collect(),
        synthesis: synthesis_id,
        created_at: Timestamp::now(),
    };
    tx.put_plan(&plan)?;
    Ok(PlanCreated { plan, tasks })
}

/// The error, saying which task of the plan it is about.
fn in_task(e: Error, name: &str) -> Error {
    Error::InPlan { task: name.to_owned(), source: Box::new(e) }
}
