//! Worksets: named groups of projects a task changes together, and what a task
//! on one needs (its projects, checked out side by side, each on the task's
//! branch).

use baton_core::model::Project;
use baton_core::names::validate_simple_name;
use baton_core::time::Timestamp;
use baton_core::workset::{CreateWorkset, TaskWorkset, Workset, WorksetPart, WorksetView};
use baton_store::{StoreRead, StoreTx};

use crate::{Error, resolve};

/// A workset's projects, at most.
pub const MAX_PROJECTS: usize = 16;

/// Makes a workset: two or more projects, each once, whose directory names
/// (their names) do not collide.
pub fn create(tx: &mut dyn StoreTx, req: CreateWorkset) -> Result<WorksetView, Error> {
    validate_simple_name("workset name", &req.name)?;
    if req.projects.len() < 2 || req.projects.len() > MAX_PROJECTS {
        return Err(Error::combination(format!(
            "a workset has 2 to {MAX_PROJECTS} projects; {} given",
            req.projects.len()
        )));
    }
    let mut projects: Vec<Project> = Vec::with_capacity(req.projects.len());
    for named in &req.projects {
        let project = resolve::project_ref(tx, named)?;
        if projects.iter().any(|p| p.id == project.id) {
            return Err(Error::combination(format!("project {} is named twice", project.name)));
        }
        if let Some(other) = projects.iter().find(|p| p.name.eq_ignore_ascii_case(&project.name)) {
            return Err(Error::combination(format!(
                "projects {} and {} would share the directory {:?} in a task's working directory: rename one (`baton project rename`)",
                other.name, project.name, project.name
            )));
        }
        if !project.settings.uses_worktrees() {
            return Err(Error::combination(format!(
                "project {}'s agents work in its checkout itself (`worktrees = false`): a workset needs a worktree of each project",
                project.name
            )));
        }
        projects.push(project);
    }
    let workset = Workset {
        name: req.name,
        projects: projects.iter().map(|p| p.id.clone()).collect(),
        created_at: Timestamp::now(),
    };
    tx.insert_workset(&workset)?;
    Ok(WorksetView { names: projects.into_iter().map(|p| p.name).collect(), workset })
}

/// A workset with its projects' names.
pub fn view(r: &dyn StoreRead, workset: Workset) -> Result<WorksetView, Error> {
    let mut names = Vec::with_capacity(workset.projects.len());
    for id in &workset.projects {
        names.push(resolve::project(r, id)?.name);
    }
    Ok(WorksetView { workset, names })
}

/// Every workset.
pub fn list(r: &dyn StoreRead) -> Result<Vec<WorksetView>, Error> {
    r.worksets()?.into_iter().map(|w| view(r, w)).collect()
}

/// Removes a workset (its tasks keep their projects).
pub fn delete(tx: &mut dyn StoreTx, name: &str) -> Result<(), Error> {
    if !tx.delete_workset(name)? {
        return Err(Error::not_found("workset", name));
    }
    Ok(())
}

/// The project a task on workset `name` belongs to (its first) and its part of
/// the workset; `named` (the request's project), when given, must be the first.
pub fn for_task(r: &dyn StoreRead, name: &str, named: Option<&str>) -> Result<(Project, TaskWorkset), Error> {
    let workset = r.workset(name)?.ok_or_else(|| Error::unknown(format!("no workset {name}")))?;
    let mut projects = Vec::with_capacity(workset.projects.len());
    for id in &workset.projects {
        projects.push(resolve::project(r, id)?);
    }
    let first = projects.first().cloned().ok_or_else(|| Error::invalid(format!("workset {name} has no projects")))?;
    if let Some(named) = named {
        let asked = resolve::project_ref(r, named)?;
        if asked.id != first.id {
            return Err(Error::combination(format!(
                "a task on workset {name} belongs to its first project, {}; `project` names {}",
                first.name, asked.name
            )));
        }
    }
    // Each project is there once: `create` refuses a project named twice.
    let parts = projects
        .into_iter()
        .map(|p| WorksetPart {
            project_id: p.id,
            name: p.name,
            base_branch: p.default_branch,
            merged_commit: None,
            pr: None,
        })
        .collect();
    Ok((first, TaskWorkset { name: name.to_owned(), parts }))
}
