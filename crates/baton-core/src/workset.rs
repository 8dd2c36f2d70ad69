//! Worksets: a named group of projects that a task changes together. The task's
//! agent works in one directory holding a worktree of each project side by side
//! (named after the projects), each on the task's branch in its own repository,
//! and the task lands in all of them or in none.

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, TaskId};
use crate::model::Project;
use crate::time::Timestamp;

/// A named group of projects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Workset {
    /// Its name (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// Its projects, in order (the first is where its tasks are listed).
    pub projects: Vec<ProjectId>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// `POST /api/worksets`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkset {
    /// Its name (letters, digits, `-`, `_`, `.`; at most 64 characters).
    #[schemars(length(min = 1, max = 64), regex(pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"))]
    pub name: String,
    /// Its projects (ids or names), two or more, each once.
    #[schemars(length(min = 2, max = 16))]
    pub projects: Vec<String>,
}

/// A workset as listed: with its projects' names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorksetView {
    /// The workset.
    #[serde(flatten)]
    pub workset: Workset,
    /// Its projects' names, in the same order (each the directory its worktree
    /// has in a task's working directory).
    pub names: Vec<String>,
}

/// A task's part of a workset: every project it changes, its own first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskWorkset {
    /// The workset's name.
    pub name: String,
    /// Each project, in order; the first is the task's own.
    pub parts: Vec<WorksetPart>,
}

/// One project of a task's workset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorksetPart {
    /// The project.
    pub project_id: ProjectId,
    /// Its name: the directory of its worktree.
    pub name: String,
    /// The branch the task starts from and lands on there.
    pub base_branch: String,
    /// The commit that landed there, once merged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_commit: Option<String>,
    /// Its pull request's URL, once `baton pr` opened one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<String>,
}

/// What a launcher needs of each other project of a workset task.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorksetCheckout {
    /// The project.
    pub project: Project,
    /// The commit of its base branch a new branch starts from.
    pub base_commit: String,
    /// The task's branch there, when it has one already.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    /// Its base's head now (brought into the mirror, for an agent asked to
    /// merge it: a conflict to resolve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_head: Option<String>,
}

/// A landing across repositories, written before the first base moves: on a
/// restart, a journal still here is finished (or undone), so a workset never
/// stays half-landed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Landing {
    /// The task landing.
    pub task_id: TaskId,
    /// Each repository's move, in order.
    pub steps: Vec<LandingStep>,
    /// When it began.
    pub started_at: Timestamp,
}

/// One repository's base moving from `old` to `new`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LandingStep {
    /// The project.
    pub project_id: ProjectId,
    /// Its repository.
    pub path: String,
    /// The base branch.
    pub branch: String,
    /// Its commit before.
    pub old: String,
    /// Its commit after.
    pub new: String,
}
