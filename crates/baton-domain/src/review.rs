//! Reviewing and landing work: a task's diff, the merge queue, and cleaning up
//! worktrees without ever destroying work.
//!
//! The merge queue is durable: a request is a row, written in the transaction
//! that asks for it (an auto-merge in the one that ends the task), so it survives
//! a crash. One worker, on the replica holding the timers' lease, lands one merge
//! at a time, so merges never race, across replicas too; a request waits for its
//! own turn and gets its own answer. Merging a task
//! first merges its succeeded, unmerged prerequisites (dependency order). Each
//! merge is checked against the base as it is at that moment and lands with a
//! compare-and-swap of the base ref (see `baton_git::merge`): a conflict names the
//! files and leaves the base untouched.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use baton_core::api::{CleanReport, Diff, ErrorCode};
use baton_core::ids::TaskId;
use baton_core::model::{LauncherOrder, MergeRequest, MergeState, MergeStrategy, MergeVia, OrderKind, Project, Task};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_core::webhook::WebhookEvent;
use baton_git::GitError;
use baton_git::{merge, worktree};
use baton_store::{EventFilter, Notice, StoreRead, StoreTx};
use serde_json::json;

use crate::Error;
use crate::resolve;
use crate::scheduler::{Effects, emit_task};
use crate::state::AppState;

/// How long a caller waits for its merge before it is told to look later.
const MERGE_WAIT: Duration = Duration::from_secs(600);

/// How often a waiting caller or an idle worker looks at the queue anyway (a
/// safety net: notices wake them at once).
const MERGE_POLL: Duration = Duration::from_secs(2);

/// Puts a merge in the queue, inside the caller's transaction: once that
/// commits, the merge happens even if this coordinator dies. Its id.
pub fn queue_merge(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    task: &TaskId,
    strategy: Option<MergeStrategy>,
    awaited: bool,
) -> Result<String, Error> {
    let id = crate::tokens::random_id("mr-");
    tx.put_merge_request(&MergeRequest {
        id: id.clone(),
        task_id: task.clone(),
        strategy,
        created_at: Timestamp::now(),
        awaited,
        outcome: None,
    })?;
    tx.notify(Notice::MergeQueued)?;
    fx.merges_queued = true;
    Ok(id)
}

/// The merge queue's worker. It works only on the replica that holds the timers'
/// lease, so there is one queue across replicas: merges land one at a time, in
/// the order they were asked for.
pub async fn merge_worker(state: Arc<AppState>) {
    loop {
        if state.is_leader() {
            crate::landing::recover(&state).await;
            match state.store.read(|r| r.pending_merges()).await {
                Ok(pending) => {
                    for request in pending {
                        if !state.is_leader() {
                            break;
                        }
                        merge_one(&state, request).await;
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not read the merge queue"),
            }
        }
        tokio::select! {
            _ = state.merge_work.notified() => {}
            _ = tokio::time::sleep(MERGE_POLL) => {}
        }
    }
}

async fn merge_one(state: &Arc<AppState>, mut request: MergeRequest) {
    let result = merge_task(state, &request.task_id, request.strategy).await;
    if !request.awaited {
        match &result {
            Ok(t) => tracing::info!(task = %t.id, "auto-merged"),
            Err(e) => tracing::warn!(task = %request.task_id, error = %e, "auto-merge failed"),
        }
    }
    let saved = if request.awaited {
        request.outcome = Some(match result {
            Ok(task) => json!({ "task": task }),
            Err(e) => json!({ "error": { "code": e.code(), "message": e.to_string(), "details": e.details() } }),
        });
        state
            .store
            .write(move |tx| {
                tx.put_merge_request(&request)?;
                tx.notify(Notice::MergeDone { id: request.id.clone() })
            })
            .await
    } else {
        state.store.write(move |tx| tx.delete_merge_request(&request.id)).await
    };
    if let Err(e) = saved {
        tracing::error!(error = %e, "could not record a merge's outcome");
    }
}

/// Queues a merge and waits for its answer (from whichever replica merges).
pub async fn request_merge(
    state: &Arc<AppState>,
    task: TaskId,
    strategy: Option<MergeStrategy>,
    force: bool,
) -> Result<Task, Error> {
    let mut notices = state.store.notices();
    let id = crate::transact(state, move |tx, fx| {
        let task = resolve::task(tx, &task)?;
        crate::scheduler::loops::merge_gate(&task, force)?;
        queue_merge(tx, fx, &task.id, strategy, true)
    })
    .await?;
    let deadline = tokio::time::Instant::now() + MERGE_WAIT;
    loop {
        if let Some(outcome) = take_outcome(state, &id).await? {
            return outcome;
        }
        tokio::select! {
            _ = notices.recv() => {}
            _ = tokio::time::sleep(MERGE_POLL) => {}
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::unavailable(
                "the merge is still queued; it lands in its turn (`baton show` tells when)",
            ));
        }
    }
}

/// A merge request's outcome, once done (the request is then removed).
async fn take_outcome(state: &Arc<AppState>, id: &str) -> Result<Option<Result<Task, Error>>, Error> {
    let id = id.to_owned();
    let done = state
        .store
        .write(move |tx| {
            let Some(request) = tx.merge_request(&id)? else {
                return Err(Error::broken(format!("merge request {id} disappeared")));
            };
            if request.outcome.is_some() {
                tx.delete_merge_request(&id)?;
            }
            Ok::<_, Error>(request.outcome)
        })
        .await?;
    Ok(done.map(|outcome| {
        if let Some(task) = outcome.get("task") {
            return serde_json::from_value::<Task>(task.clone()).map_err(Error::internal);
        }
        let error = &outcome["error"];
        let code = serde_json::from_value(error["code"].clone()).unwrap_or(ErrorCode::Internal);
        let message = error["message"].as_str().unwrap_or("the merge failed").to_owned();
        let details = Some(error["details"].clone()).filter(|d| !d.is_null());
        Err(Error::from_record(code, message, details))
    }))
}

/// The task and its unmerged prerequisites, in the order they must land.
fn merge_order(r: &dyn StoreRead, id: &TaskId) -> Result<Vec<Task>, Error> {
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
                return Err(Error::conflict(format!(
                    "prerequisite {} is {}; it must succeed and merge first",
                    dep.id, dep.status
                )));
            }
            stack.push((dep, false));
        }
    }
    Ok(order)
}

async fn merge_task(state: &Arc<AppState>, id: &TaskId, strategy: Option<MergeStrategy>) -> Result<Task, Error> {
    let target = id.clone();
    let (order, project, task) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &target)?;
            if task.status != TaskStatus::Succeeded {
                return Err(Error::conflict(format!(
                    "task {} is {}; only a succeeded task can be merged",
                    task.id, task.status
                )));
            }
            if task.git.merge == MergeState::Merged {
                return Err(Error::conflict(format!("task {} is already merged", task.id)));
            }
            let project = resolve::project(r, &task.project_id)?;
            Ok::<_, Error>((merge_order(r, &task.id)?, project, task))
        })
        .await?;
    crate::projects::require_repository(&project)?;
    let strategy = strategy.unwrap_or(project.settings.merge_strategy);
    if project.settings.merge_via == Some(MergeVia::Forge) && task.workset.is_none() {
        let sha = state.forge.merge_pull(&project, &task, strategy).await?;
        let tid = task.id.clone();
        return crate::transact(state, move |tx, _| {
            let mut task = resolve::task(tx, &tid)?;
            mark_pr_merged(tx, &mut task, Some(sha), "merged through the forge's API")?;
            Ok(task)
        })
        .await;
    }
    let mut last = None;
    for task in order {
        last = Some(land(state, &project, task, strategy).await?);
    }
    last.ok_or_else(|| Error::not_found("task", id))
}

/// Lands one task's branch on its base (a workset task's on each of its bases,
/// all or none).
async fn land(state: &Arc<AppState>, project: &Project, task: Task, strategy: MergeStrategy) -> Result<Task, Error> {
    if task.workset.is_some() {
        return crate::landing::land(state, task, strategy).await;
    }
    let branch = task.git.branch.clone().ok_or_else(|| Error::conflict(format!("task {} has no branch", task.id)))?;
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
            if remove && let Err(e) = clean_many(state, std::slice::from_ref(&task), false, false).await {
                tracing::warn!(task = %task.id, error = %e, "could not remove the worktree after merging");
            }
            Ok(task)
        }
        Err(GitError::Conflict { files, .. }) => {
            let head = baton_git::Git::new(&project.path).branch_head(&base).await.ok().flatten();
            let (tid, told) = (id.clone(), json!({ "conflict": { "base": base, "files": files } }));
            let (b, f) = (base.clone(), files.clone());
            let resumed = crate::transact(state, move |tx, fx| {
                let mut task = resolve::task(tx, &tid)?;
                task.git.merge = MergeState::Conflict;
                task.updated_at = baton_core::Timestamp::now();
                emit_task(tx, &task)?;
                crate::outbox::tell_task(tx, WebhookEvent::MergeConflict, &task, told)?;
                crate::scheduler::loops::merge_conflicted(tx, fx, &mut task, &b, head.as_deref(), &f)
            })
            .await?;
            let then =
                if resumed { "; its agent was resumed to resolve it, and it merges again when done" } else { "" };
            Err(Error::MergeConflict {
                message: format!(
                    "merging task {id} into {base} conflicts in {}; {base} is unchanged{then}",
                    files.join(", ")
                ),
                details: json!({ "task": id, "base": base, "files": files, "resumed": resumed }),
            })
        }
        Err(GitError::Failed { stderr, .. })
            if stderr.contains("uncommitted changes") || stderr.contains("does not exist") =>
        {
            Err(Error::Conflict { message: stderr, details: None })
        }
        Err(e) => Err(Error::internal(e)),
    }
}

/// Gives launchers their orders (each woken for its own).
async fn put_orders(state: &Arc<AppState>, orders: Vec<LauncherOrder>) -> Result<(), Error> {
    crate::transact(state, move |tx, fx| {
        for o in &orders {
            tx.put_order(o)?;
            fx.wake.launcher(&o.launcher_id);
        }
        Ok::<_, Error>(())
    })
    .await
}

/// Records that the task's pull request merged on its forge (`how`): the task
/// is merged, and its timeline says so.
pub fn mark_pr_merged(tx: &mut dyn StoreTx, task: &mut Task, sha: Option<String>, how: &str) -> Result<(), Error> {
    let Some(pr) = task.pr.as_mut() else { return Ok(()) };
    pr.state = baton_core::model::PrState::Merged;
    let text = format!("pull request #{} {how}", pr.number);
    task.git.merge = MergeState::Merged;
    task.git.merged_commit = sha;
    task.updated_at = baton_core::Timestamp::now();
    crate::scheduler::loops::record_step(tx, task, "pr", text, serde_json::Value::Null)?;
    emit_task(tx, task)?;
    Ok(())
}

/// Changes a task and announces it.
async fn update_task<F>(state: &Arc<AppState>, id: &TaskId, change: F) -> Result<Task, Error>
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
            Ok::<_, Error>(task)
        })
        .await
}

/// How long `diff` waits for a running task's launcher to push a fresh checkpoint.
const CHECKPOINT_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// How long `clean` waits for launchers to remove worktrees.
const CLEAN_WAIT: std::time::Duration = std::time::Duration::from_secs(15);

/// What a task changed against its base, from the project's repository: the
/// branch as last pushed, or, while the task runs, a checkpoint its launcher
/// pushes on request (uncommitted changes included). Baton never reads a
/// worktree an agent can write.
pub async fn diff(state: &Arc<AppState>, task: Task) -> Result<Diff, Error> {
    let project = {
        let pid = task.project_id.clone();
        state.store.read(move |r| resolve::project(r, &pid)).await?
    };
    crate::projects::require_repository(&project)?;
    let (Some(base), Some(branch)) = (task.git.base_commit.clone(), task.git.branch.clone()) else {
        return Err(Error::conflict(format!("task {} has not started yet; there is nothing to compare", task.id)));
    };
    let task = if task.status.is_active() { fresh_checkpoint(state, task).await? } else { task };
    let rev = match (&task.git.checkpoint, &task.git.head) {
        (Some(c), _) if task.status.is_active() => c.clone(),
        (_, Some(h)) => h.clone(),
        _ => base.clone(),
    };
    let repo = Path::new(&project.path);
    let git_err = |e: GitError| Error::internal(e);
    let Some(workset) = task.workset.clone() else {
        let (patch, stat) = worktree::diff(repo, &base, &rev).await.map_err(git_err)?;
        let files = worktree::summarize(repo, &base, &rev).await.map_err(git_err)?.files;
        return Ok(Diff { task_id: task.id, base, branch, files, stat, patch, untracked: Vec::new() });
    };
    // A workset task: each repository's changes, its paths under its name.
    let mut diff = Diff {
        task_id: task.id.clone(),
        base,
        branch: branch.clone(),
        files: Vec::new(),
        stat: String::new(),
        patch: String::new(),
        untracked: Vec::new(),
    };
    for part in &workset.parts {
        let pid = part.project_id.clone();
        let p = state.store.read(move |r| resolve::project(r, &pid)).await?;
        let git = baton_git::Git::new(&p.path);
        let (from, to) = if p.id == project.id {
            (diff.base.clone(), rev.clone())
        } else {
            let Some(head) = git.branch_head(&branch).await.map_err(git_err)? else { continue };
            let base_head = git.branch_head(&part.base_branch).await.map_err(git_err)?.unwrap_or_else(|| head.clone());
            let from = git.run(["merge-base", base_head.as_str(), head.as_str()]).await.map_err(git_err)?;
            (from.trim().to_owned(), head)
        };
        let (patch, stat) =
            worktree::diff_under(Path::new(&p.path), &from, &to, Some(&part.name)).await.map_err(git_err)?;
        let files = worktree::summarize(Path::new(&p.path), &from, &to).await.map_err(git_err)?.files;
        diff.files.extend(files.into_iter().map(|f| format!("{}/{f}", part.name)));
        if !stat.trim().is_empty() {
            diff.stat.push_str(&format!("{}:\n{stat}", part.name));
        }
        diff.patch.push_str(&patch);
    }
    Ok(diff)
}

/// Asks the launcher running a task for a checkpoint now, and waits (a while)
/// for it; the task as it is then.
async fn fresh_checkpoint(state: &Arc<AppState>, task: Task) -> Result<Task, Error> {
    let id = task.id.clone();
    let run = {
        let session = task.session_id.clone();
        state
            .store
            .read(move |r| {
                let Some(s) = session else { return Ok::<_, Error>(None) };
                Ok(r.runs_of_session(&s)?.into_iter().rev().find(|r| !r.status.is_finished()))
            })
            .await?
    };
    let Some(run) = run.filter(|r| r.status == baton_core::status::RunStatus::Running) else { return Ok(task) };
    let Some(launcher) = run.launcher_id.clone() else { return Ok(task) };
    let order = LauncherOrder {
        launcher_id: launcher,
        kind: OrderKind::Checkpoint,
        subject: run.id.to_string(),
        data: serde_json::Value::Null,
        created_at: baton_core::Timestamp::now(),
        sent_at: None,
    };
    if !order_and_wait(state, vec![order], std::slice::from_ref(&id), CHECKPOINT_WAIT).await? {
        tracing::info!(task = %id, "no fresh checkpoint in time; the diff shows the last one");
    }
    state.store.read(move |r| resolve::task(r, &id)).await
}

/// Queues orders for launchers and waits until they are all done (their rows
/// gone), or `limit` passes; whether they were. Woken by the tasks' events.
async fn order_and_wait(
    state: &Arc<AppState>,
    orders: Vec<LauncherOrder>,
    tasks: &[TaskId],
    limit: std::time::Duration,
) -> Result<bool, Error> {
    let mut events = state.store.subscribe();
    put_orders(state, orders.clone()).await?;
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let pending = orders.clone();
        let left = state
            .store
            .read(move |r| {
                let mut left = 0;
                for o in &pending {
                    let theirs = r.orders_of_launcher(&o.launcher_id)?;
                    left += theirs.iter().filter(|x| x.kind == o.kind && x.subject == o.subject).count();
                }
                Ok::<_, Error>(left)
            })
            .await?;
        if left == 0 {
            return Ok(true);
        }
        loop {
            match tokio::time::timeout_at(deadline, events.recv()).await {
                Err(_) => return Ok(false),
                Ok(Ok(c)) if c.event.task_id.as_ref().is_some_and(|t| tasks.contains(t)) => break,
                Ok(Ok(_)) => {}
                Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => break,
                Ok(Err(_)) => return Ok(false),
            }
        }
    }
}

/// Removes a task's worktree unless that would lose work (see [`clean_many`]).
pub async fn clean(state: &Arc<AppState>, task: &Task, force: bool) -> Result<CleanReport, Error> {
    let mut reports = clean_many(state, std::slice::from_ref(task), force, true).await?;
    reports.pop().ok_or_else(|| Error::not_found("task", &task.id))
}

/// Removes tasks' worktrees from the hosts of the launchers that have them,
/// unless that would lose work: commits the base does not have (checked here),
/// or uncommitted changes (checked by the launcher). With `force`, removes them
/// anyway (an unmerged branch is kept; a merged one is deleted). With `wait`,
/// waits a while for the launchers' answers; a launcher that does not answer in
/// time removes the worktree when it is back (`pending`).
pub async fn clean_many(
    state: &Arc<AppState>,
    tasks: &[Task],
    force: bool,
    wait: bool,
) -> Result<Vec<CleanReport>, Error> {
    let mut reports = Vec::new();
    let mut orders = Vec::new();
    for task in tasks {
        let (report, order) = clean_check(state, task, force).await?;
        if let Some(o) = order {
            orders.push(o);
        }
        reports.push(report);
    }
    if orders.is_empty() {
        return Ok(reports);
    }
    let ids: Vec<TaskId> = tasks.iter().map(|t| t.id.clone()).collect();
    if !wait {
        put_orders(state, orders).await?;
        return Ok(reports);
    }
    order_and_wait(state, orders.clone(), &ids, CLEAN_WAIT).await?;
    for (report, task) in reports.iter_mut().zip(tasks) {
        if !orders.iter().any(|o| o.subject == task.id.as_str()) {
            continue;
        }
        clean_outcome(state, report, task).await?;
    }
    Ok(reports)
}

/// Whether a task's worktree may go, and the order that removes it.
async fn clean_check(
    state: &Arc<AppState>,
    task: &Task,
    force: bool,
) -> Result<(CleanReport, Option<LauncherOrder>), Error> {
    let mut report = CleanReport {
        task_id: task.id.clone(),
        worktree: task.git.worktree.clone(),
        removed: false,
        refused: None,
        uncommitted: Vec::new(),
        unmerged_commits: Vec::new(),
        pending: false,
    };
    if task.status.is_active() {
        report.refused = Some(format!("task {} is {}; stop it first", task.id, task.status));
        return Ok((report, None));
    }
    let Some(path) = task.git.worktree.clone() else {
        report.refused = Some("the task has no worktree".into());
        return Ok((report, None));
    };
    let Some(launcher) = task.git.launcher.clone() else {
        report.refused = Some(format!("no launcher is known to have the worktree {path}"));
        return Ok((report, None));
    };
    let project = {
        let pid = task.project_id.clone();
        state.store.read(move |r| resolve::project(r, &pid)).await?
    };
    let repo = Path::new(&project.path);
    let branch = task.git.branch.clone().unwrap_or_default();
    let base = task.git.base_branch.clone().unwrap_or_else(|| project.default_branch.clone());
    if !branch.is_empty() && baton_git::Git::new(repo).branch_exists(&branch).await.map_err(Error::internal)? {
        report.unmerged_commits = worktree::unmerged_commits(repo, &base, &branch).await.map_err(Error::internal)?;
    }
    if !force && !report.unmerged_commits.is_empty() {
        report.refused = Some(format!(
            "it would lose {} commit(s) not merged into {base} (use --force to remove it anyway)",
            report.unmerged_commits.len()
        ));
        return Ok((report, None));
    }
    let order = LauncherOrder {
        launcher_id: launcher,
        kind: OrderKind::RemoveWorktree,
        subject: task.id.to_string(),
        data: json!({ "path": path, "force": force, "project": task.project_id }),
        created_at: baton_core::Timestamp::now(),
        sent_at: None,
    };
    Ok((report, Some(order)))
}

/// What the launcher answered to a removal, into `report`; a merged branch is
/// deleted once its worktree is gone.
async fn clean_outcome(state: &Arc<AppState>, report: &mut CleanReport, task: &Task) -> Result<(), Error> {
    let id = task.id.clone();
    let (now, answer) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &id)?;
            let filter = EventFilter { task: Some(id.clone()), limit: 10_000, ..Default::default() };
            let answer = r.events(&filter)?.into_iter().rev().find_map(|e| e.data.get("clean").cloned());
            Ok::<_, Error>((task, answer))
        })
        .await?;
    let pending_order = {
        let (launcher, subject) = (task.git.launcher.clone(), task.id.to_string());
        state
            .store
            .read(move |r| {
                let Some(l) = launcher else { return Ok::<_, Error>(false) };
                Ok(r.orders_of_launcher(&l)?
                    .iter()
                    .any(|o| o.kind == OrderKind::RemoveWorktree && o.subject == subject))
            })
            .await?
    };
    if pending_order {
        report.pending = true;
        report.refused = Some(format!(
            "launcher {} has not answered yet; it removes the worktree when it is back",
            task.git.launcher.as_ref().map(|l| l.to_string()).unwrap_or_default()
        ));
        return Ok(());
    }
    if now.git.worktree.is_none() {
        report.removed = true;
        let project = {
            let pid = task.project_id.clone();
            state.store.read(move |r| resolve::project(r, &pid)).await?
        };
        if let Some(branch) = &task.git.branch {
            let base = task.git.base_branch.clone().unwrap_or_else(|| project.default_branch.clone());
            if let Err(e) = worktree::delete_branch_if_merged(Path::new(&project.path), branch, &base).await {
                tracing::warn!(task = %task.id, error = %e, "could not delete the merged branch");
            }
        }
        return Ok(());
    }
    if let Some(answer) = answer {
        report.refused = answer.get("refused").and_then(|v| v.as_str()).map(str::to_owned);
        report.uncommitted =
            answer.get("uncommitted").and_then(|v| serde_json::from_value(v.clone()).ok()).unwrap_or_default();
    }
    Ok(())
}

/// A person's review of a task's work: their verdict (which counts for
/// `review_required` as a reviewer agent's does) and comments on lines of its
/// diff. With `send`, the comments go to the task's agent, each naming its file
/// and line, as its next turn (queued while it works).
pub fn person_review(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &TaskId,
    review: baton_core::api::PersonReview,
    who: Option<String>,
) -> Result<Task, Error> {
    let mut task = resolve::task(tx, id)?;
    if review.verdict.is_none() && review.comments.is_empty() {
        return Err(Error::combination("a review needs a verdict or at least one comment"));
    }
    if review.comments.iter().any(|c| c.body.trim().is_empty()) {
        return Err(Error::invalid("a review comment must say something"));
    }
    if review.send && review.comments.is_empty() {
        return Err(Error::combination("`send` sends the comments to the agent: write at least one"));
    }
    if task.git.head.is_none() {
        return Err(Error::conflict(format!("task {} has no work to review yet", task.id)));
    }
    task.loops.reviews.push(baton_core::model::Review {
        reviewer: "person".into(),
        task_id: None,
        commit: task.git.head.clone(),
        verdict: review.verdict,
        comments: review.comments.clone(),
        error: None,
        output: None,
        corrected: false,
        at: Timestamp::now(),
    });
    task.updated_at = Timestamp::now();
    let said = match review.verdict {
        Some(baton_core::model::Verdict::Approve) => "approved the work",
        Some(baton_core::model::Verdict::ChangesRequested) => "requested changes",
        None => "commented",
    };
    let by = who.clone().unwrap_or_else(|| "a person".into());
    let text = format!("{by} {said} ({} comment(s))", review.comments.len());
    crate::scheduler::loops::record_step(
        tx,
        &task,
        "review",
        text,
        json!({ "person": by, "verdict": review.verdict }),
    )?;
    emit_task(tx, &task)?;
    if review.send {
        let message = format!(
            "A person reviewed your work{}. Address each comment:\n\n{}",
            if review.verdict == Some(baton_core::model::Verdict::ChangesRequested) {
                " and requests changes"
            } else {
                ""
            },
            crate::scheduler::loops::comment_list(&review.comments)
        );
        crate::scheduler::send_follow_up(tx, fx, id, message, who)?;
        task = resolve::task(tx, id)?;
    }
    Ok(task)
}

/// Sets one file of a task's branch back to its base's version, in a new
/// commit on the branch; the task's worktree on this host (clean, the task at
/// rest) follows. Refused while its agent works, and for a worktree this
/// coordinator cannot see.
pub async fn revert_file(state: &Arc<AppState>, id: &TaskId, path: &str) -> Result<Task, Error> {
    if path.is_empty()
        || path.starts_with('/')
        || path.contains('\0')
        || path.split('/').any(|c| c == ".." || c.is_empty())
    {
        return Err(Error::invalid(format!("{path:?} is not a path inside the repository")));
    }
    let target = id.clone();
    let (task, project) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &target)?;
            let project = resolve::project(r, &task.project_id)?;
            Ok::<_, Error>((task, project))
        })
        .await?;
    if !task.status.is_at_rest() {
        return Err(Error::conflict(format!(
            "task {} is {}; a file is reverted only while it is at rest",
            task.id, task.status
        )));
    }
    crate::projects::require_repository(&project)?;
    let (Some(branch), Some(base)) = (task.git.branch.clone(), task.git.base_commit.clone()) else {
        return Err(Error::conflict(format!("task {} has no branch yet", task.id)));
    };
    let worktree = task.git.worktree.clone().filter(|w| Path::new(w).exists());
    if let Some(w) = &worktree
        && !worktree::uncommitted(&baton_git::Git::new(w)).await.map_err(Error::internal)?.is_empty()
    {
        return Err(Error::conflict(format!("task {}'s worktree has uncommitted changes", task.id)));
    }
    let message = format!("Revert {path} to its base (baton task {})", task.id);
    let done = baton_git::edit::revert_path(Path::new(&project.path), &branch, &base, path, &message).await;
    let reverted = match done {
        Ok(r) => r,
        Err(GitError::Failed { stderr, .. }) => return Err(Error::Conflict { message: stderr, details: None }),
        Err(e) => return Err(Error::internal(e)),
    };
    if let Some(w) = &worktree {
        baton_git::Git::new(w)
            .run(["reset", "--quiet", "--hard", reverted.new.as_str()])
            .await
            .map_err(Error::internal)?;
    }
    let summary = worktree::summarize(Path::new(&project.path), &base, &reverted.new).await.map_err(Error::internal)?;
    update_task(state, id, move |t| {
        t.git.head = Some(summary.head);
        t.git.commits = summary.commits;
        t.git.files_changed = summary.files;
        t.git.diff_stat = summary.stat;
    })
    .await
}
