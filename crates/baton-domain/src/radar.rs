//! The conflict radar: for each live task (not merged, not cancelled), the other
//! live tasks of its project that change some of the same files, so the lead sees
//! a coming conflict before it happens. A task and its own prerequisites (direct
//! or not) are not reported against each other: its branch contains their work.
//! It looks at the project's newest thousand tasks that may be live, however
//! long the project's history.

use std::collections::{BTreeSet, HashMap};

use baton_core::api::{Overlap, RadarEntry};
use baton_core::ids::{ProjectId, TaskId};
use baton_core::model::{MergeState, Task};
use baton_core::status::TaskStatus;
use baton_store::{StoreRead, TaskFilter};

use crate::Error;

fn live(t: &Task) -> bool {
    t.git.merge != MergeState::Merged
        && !t.git.files_changed.is_empty()
        && matches!(
            t.status,
            TaskStatus::Queued
                | TaskStatus::Running
                | TaskStatus::Checking
                | TaskStatus::Reviewing
                | TaskStatus::Succeeded
                | TaskStatus::Failed
        )
}

/// Whether `a` depends on `b`, directly or through other tasks.
fn depends(a: &TaskId, b: &TaskId, deps: &HashMap<&TaskId, &Vec<TaskId>>) -> bool {
    let mut stack = vec![a];
    let mut seen = BTreeSet::new();
    while let Some(t) = stack.pop() {
        for d in deps.get(t).map(|v| v.as_slice()).unwrap_or_default() {
            if d == b {
                return true;
            }
            if seen.insert(d) {
                stack.push(d);
            }
        }
    }
    false
}

fn overlaps_in(task: &Task, tasks: &[Task], deps: &HashMap<&TaskId, &Vec<TaskId>>) -> Vec<Overlap> {
    if !live(task) {
        return Vec::new();
    }
    let mine: BTreeSet<&String> = task.git.files_changed.iter().collect();
    tasks
        .iter()
        .filter(|o| o.id != task.id && live(o))
        .filter(|o| !depends(&task.id, &o.id, deps) && !depends(&o.id, &task.id, deps))
        .filter_map(|o| {
            let files: Vec<String> = o.git.files_changed.iter().filter(|f| mine.contains(f)).cloned().collect();
            (!files.is_empty()).then(|| Overlap { task_id: o.id.clone(), files })
        })
        .collect()
}

/// How many of a project's newest tasks that may be live the radar looks at: a
/// conflict is between work in progress, and history must not slow it.
const WINDOW: u32 = 1_000;

/// The project's newest tasks in a status [`live`] takes, at most [`WINDOW`].
fn project_tasks(r: &dyn StoreRead, project: &ProjectId) -> Result<Vec<Task>, Error> {
    Ok(r.tasks(&TaskFilter {
        project: Some(project.clone()),
        statuses: vec![
            TaskStatus::Queued,
            TaskStatus::Running,
            TaskStatus::Checking,
            TaskStatus::Reviewing,
            TaskStatus::Succeeded,
            TaskStatus::Failed,
        ],
        limit: Some(WINDOW),
        ..Default::default()
    })?)
}

/// The overlaps of one task.
pub fn overlaps(r: &dyn StoreRead, task: &Task) -> Result<Vec<Overlap>, Error> {
    if !live(task) {
        return Ok(Vec::new());
    }
    let tasks = project_tasks(r, &task.project_id)?;
    let deps: HashMap<&TaskId, &Vec<TaskId>> = tasks.iter().map(|t| (&t.id, &t.depends_on)).collect();
    Ok(overlaps_in(task, &tasks, &deps))
}

/// Every live task of a project that overlaps another.
pub fn project_radar(r: &dyn StoreRead, project: &ProjectId) -> Result<Vec<RadarEntry>, Error> {
    let tasks = project_tasks(r, project)?;
    let deps: HashMap<&TaskId, &Vec<TaskId>> = tasks.iter().map(|t| (&t.id, &t.depends_on)).collect();
    Ok(tasks
        .iter()
        .filter_map(|t| {
            let overlaps = overlaps_in(t, &tasks, &deps);
            (!overlaps.is_empty()).then(|| RadarEntry { task_id: t.id.clone(), overlaps })
        })
        .collect())
}
