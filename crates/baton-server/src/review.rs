//! Reviewing and landing work: a task's diff, the merge queue, and cleaning up
//! worktrees without ever destroying work.
//!
//! The merge queue is one task processing one merge at a time, so merges never
//! race; a request waits for its own turn and gets its own answer. Merging a task
//! first merges its succeeded, unmerged prerequisites (dependency order). Each
//! merge is checked against the base as it is at that moment and lands with a
//! compare-and-swap of the base ref (see `baton_git::merge`): a conflict names the
//! files and leaves the base untouched.

use std::path::Path;
use std::sync::Arc;

use baton_core::api::{CleanReport, Diff, ErrorCode};
use baton_core::ids::TaskId;
use baton_core::model::{MergeState, MergeStrategy, Project, Task};
use baton_core::status::TaskStatus;
use baton_git::GitError;
use baton_git::{merge, worktree};
use baton_store::StoreRead;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::error::AppError;
use crate::resolve;
use crate::scheduler::emit_task;
use crate::state::AppState;

/// A request to merge a task.
pub struct MergeJob {
    /// The task.
    pub task: TaskId,
    /// How (the project's strategy when `None`).
    pub strategy: Option<MergeStrategy>,
    /// Where the answer goes (none for auto-merge).
    pub reply: Option<oneshot::Sender<Result<Task, AppError>>>,
}

/// Starts the merge queue's worker.
pub fn spawn_merge_queue(
    state: Arc<AppState>,
    mut jobs: mpsc::UnboundedReceiver<MergeJob>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(job) = jobs.recv().await {
            let result = merge_task(&state, &job.task, job.strategy).await;
            match job.reply {
                Some(reply) => {
                    let _ = reply.send(result);
                }
                None => match result {
                    Ok(t) => tracing::info!(task = %t.id, "auto-merged"),
                    Err(e) => tracing::warn!(task = %job.task, error = %e, "auto-merge failed"),
                },
            }
        }
    })
}

/// Queues a merge and waits for its answer.
pub async fn request_merge(
    state: &Arc<AppState>,
    task: TaskId,
    strategy: Option<MergeStrategy>,
) -> Result<Task, AppError> {
    let (reply, answer) = oneshot::channel();
    state
        .merges
        .send(MergeJob { task, strategy, reply: Some(reply) })
        .map_err(|_| AppError::new(ErrorCode::Unavailable, "the merge queue has stopped"))?;
    answer.await.map_err(|_| AppError::new(ErrorCode::Unavailable, "the merge queue has stopped"))?
}

/// The task and its unmerged prerequisites, in the order they must land.
fn merge_order(r: &dyn StoreRead, id: &TaskId) -> Result<Vec<Task>, AppError> {
    let mut order: Vec<Task> = Vec::new();
    let mut stack = vec![(resolve::task(r, id)?, false)];
    while let Some((task, expanded)) = stack.pop() {
        if order.iter().any(|t| t.id == task.id) {
            continue;
        }
        if expanded {
            order.push(task);
            continue;
        }
        let deps: Vec<Task> = task.depends_on.iter().map(|d| resolve::task(r, d)).collect::<Result<_, _>>()?;
        stack.push((task, true));
        for dep in deps.into_iter().filter(|d| d.git.merge != MergeState::Merged) {
            if dep.status != TaskStatus::Succeeded {
                return Err(AppError::conflict(format!(
                    "prerequisite {} is {}; it must succeed and merge first",
                    dep.id, dep.status
                )));
            }
            stack.push((dep, false));
        }
    }
    Ok(order)
}

async fn merge_task(state: &Arc<AppState>, id: &TaskId, strategy: Option<MergeStrategy>) -> Result<Task, AppError> {
    let target = id.clone();
    let (order, project) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &target)?;
            if task.status != TaskStatus::Succeeded {
                return Err(AppError::conflict(format!(
                    "task {} is {}; only a succeeded task can be merged",
                    task.id, task.status
                )));
            }
            if task.git.merge == MergeState::Merged {
                return Err(AppError::conflict(format!("task {} is already merged", task.id)));
            }
            let project = resolve::project(r, &task.project_id)?;
            Ok::<_, AppError>((merge_order(r, &task.id)?, project))
        })
        .await?;
    let strategy = strategy.unwrap_or(project.settings.merge_strategy);
    let mut last = None;
    for task in order {
        last = Some(land(state, &project, task, strategy).await?);
    }
    last.ok_or_else(|| AppError::not_found("task", id))
}

/// Lands one task's branch on its base.
async fn land(state: &Arc<AppState>, project: &Project, task: Task, strategy: MergeStrategy) -> Result<Task, AppError> {
    let branch =
        task.git.branch.clone().ok_or_else(|| AppError::conflict(format!("task {} has no branch", task.id)))?;
    let base = task.git.base_branch.clone().unwrap_or_else(|| project.default_branch.clone());
    let message = match strategy {
        MergeStrategy::Squash => format!("{} (baton task {})", task.title, task.id),
        _ => format!("Merge task {}: {}", task.id, task.title),
    };
    let result = merge::land(Path::new(&project.path), &base, &branch, strategy, &message).await;
    let id = task.id.clone();
    match result {
        Ok(landed) => {
            let remove = project.settings.remove_worktree_after_merge;
            let task = update_task(state, &id, move |t| {
                t.git.merge = MergeState::Merged;
                t.git.merged_commit = Some(landed.new.clone());
            })
            .await?;
            if remove && let Err(e) = clean(state, &task, false).await {
                tracing::warn!(task = %task.id, error = %e, "could not remove the worktree after merging");
            }
            Ok(task)
        }
        Err(GitError::Conflict { files, .. }) => {
            update_task(state, &id, |t| t.git.merge = MergeState::Conflict).await?;
            Err(AppError::new(
                ErrorCode::MergeConflict,
                format!("merging task {id} into {base} conflicts in {}; {base} is unchanged", files.join(", ")),
            )
            .with_details(json!({ "task": id, "base": base, "files": files })))
        }
        Err(GitError::Failed { stderr, .. })
            if stderr.contains("uncommitted changes") || stderr.contains("does not exist") =>
        {
            Err(AppError::new(ErrorCode::Conflict, stderr))
        }
        Err(e) => Err(AppError::internal(e)),
    }
}

/// Changes a task and announces it.
async fn update_task<F>(state: &Arc<AppState>, id: &TaskId, change: F) -> Result<Task, AppError>
where
    F: FnOnce(&mut Task) + Send + 'static,
{
    let id = id.clone();
    state
        .store
        .write(move |tx| {
            let mut task = resolve::task(tx, &id)?;
            change(&mut task);
            task.updated_at = baton_core::Timestamp::now();
            emit_task(tx, &task)?;
            Ok::<_, AppError>(task)
        })
        .await
}

/// What a task changed against its base: from its worktree while it exists
/// (uncommitted changes included), else from its branch.
pub async fn diff(state: &Arc<AppState>, task: Task) -> Result<Diff, AppError> {
    let project = {
        let pid = task.project_id.clone();
        state.store.read(move |r| resolve::project(r, &pid)).await?
    };
    let (Some(base), Some(branch)) = (task.git.base_commit.clone(), task.git.branch.clone()) else {
        return Err(AppError::conflict(format!("task {} has not started yet; there is nothing to compare", task.id)));
    };
    let git_err = |e: GitError| AppError::internal(e);
    let worktree = task.git.worktree.as_deref().map(Path::new).filter(|p| p.join(".git").exists());
    let (patch, stat, files, untracked) = match worktree {
        Some(dir) => {
            let (patch, stat) = worktree::diff(dir, &base, None).await.map_err(git_err)?;
            let files = worktree::changed_files(dir, &base).await.map_err(git_err)?;
            let untracked = worktree::untracked(dir).await.map_err(git_err)?;
            (patch, stat, files, untracked)
        }
        None => {
            let repo = Path::new(&project.path);
            let (patch, stat) = worktree::diff(repo, &base, Some(&branch)).await.map_err(git_err)?;
            let files = worktree::summarize(repo, &base, &branch).await.map_err(git_err)?.files;
            (patch, stat, files, Vec::new())
        }
    };
    Ok(Diff { task_id: task.id, base, branch, files, stat, patch, untracked })
}

/// Removes a task's worktree unless that would lose work (uncommitted changes, or
/// commits its base does not have); with `force`, removes it anyway (an unmerged
/// branch is kept; a merged one is deleted).
pub async fn clean(state: &Arc<AppState>, task: &Task, force: bool) -> Result<CleanReport, AppError> {
    let mut report = CleanReport {
        task_id: task.id.clone(),
        worktree: task.git.worktree.clone(),
        removed: false,
        refused: None,
        uncommitted: Vec::new(),
        unmerged_commits: Vec::new(),
    };
    if task.status.is_active() {
        report.refused = Some(format!("task {} is {}; stop it first", task.id, task.status));
        return Ok(report);
    }
    let Some(path) = task.git.worktree.clone() else {
        report.refused = Some("the task has no worktree".into());
        return Ok(report);
    };
    let project = {
        let pid = task.project_id.clone();
        state.store.read(move |r| resolve::project(r, &pid)).await?
    };
    let repo = Path::new(&project.path);
    let path = Path::new(&path);
    let branch = task.git.branch.clone().unwrap_or_default();
    let base = task.git.base_branch.clone().unwrap_or_else(|| project.default_branch.clone());
    if path.join(".git").exists() {
        report.uncommitted = worktree::uncommitted(path).await.map_err(AppError::internal)?;
    }
    if !branch.is_empty() && baton_git::Git::new(repo).branch_exists(&branch).await.map_err(AppError::internal)? {
        report.unmerged_commits = worktree::unmerged_commits(repo, &base, &branch).await.map_err(AppError::internal)?;
    }
    if !force && (!report.uncommitted.is_empty() || !report.unmerged_commits.is_empty()) {
        let mut why = Vec::new();
        if !report.uncommitted.is_empty() {
            why.push(format!("uncommitted changes to {}", report.uncommitted.join(", ")));
        }
        if !report.unmerged_commits.is_empty() {
            why.push(format!("{} commit(s) not merged into {base}", report.unmerged_commits.len()));
        }
        report.refused = Some(format!("it would lose {} (use --force to remove it anyway)", why.join(" and ")));
        return Ok(report);
    }
    let branch_arg = (!branch.is_empty()).then_some((branch.as_str(), base.as_str()));
    worktree::remove(repo, path, true, branch_arg).await.map_err(AppError::internal)?;
    update_task(state, &task.id, |t| {
        t.git.worktree = None;
        t.git.disk_bytes = None;
    })
    .await?;
    report.removed = true;
    Ok(report)
}
