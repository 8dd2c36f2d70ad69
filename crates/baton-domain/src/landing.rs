//! Landing a workset task: in every repository or in none.
//!
//! 1. **Prepare**: in each repository, the merge commit is made (`merge-tree`,
//!    `commit-tree`) and nothing moves. A conflict anywhere ends it here.
//! 2. **Check**: each project's checks run in a checkout of its prepared
//!    commit, and the task's own checks in a directory holding all of them side
//!    by side (as the agent had them). A failure anywhere ends it here.
//! 3. **Journal**: the moves (each base's old and new commit) are written to the
//!    store before the first base moves.
//! 4. **Swap**: each base moves with a compare-and-swap. If one was moved
//!    meanwhile (another task landed there), the bases already moved go back
//!    the same way, and nothing has landed.
//! 5. **Done**: the journal goes, and the task is merged, in one transaction.
//!
//! A coordinator that dies between 3 and 5 leaves the journal; the next one
//! holding the merge queue finishes it ([`recover`]): bases still at their old
//! commit move to the new one (what was checked), and if one of them cannot
//! (moved since), those that moved go back. A workset is never left half-landed.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_core::model::{CheckResult, MergeState, MergeStrategy, Project, Task};
use baton_core::time::Timestamp;
use baton_core::workset::{Landing, LandingStep, TaskWorkset};
use baton_git::merge::{self, Landed};
use baton_git::{Git, GitError};
use serde_json::json;

use crate::scheduler::emit_task;
use crate::state::AppState;
use crate::{Error, resolve};

/// How long one check of a landing may run.
const CHECK_TIMEOUT: Duration = Duration::from_secs(600);
/// How much of a failing check's output its error keeps, in bytes.
const OUTPUT_TAIL: usize = 2000;

/// One repository of the landing: its project, its base, and what landing there
/// would do (`None`: its base has the work already, or there was none).
struct Part {
    project: Project,
    name: String,
    base: String,
    prepared: Option<Landed>,
}

/// Lands a workset task in all its repositories, or in none.
pub(crate) async fn land(state: &Arc<AppState>, task: Task, strategy: MergeStrategy) -> Result<Task, Error> {
    let workset = task.workset.clone().ok_or_else(|| Error::invalid(format!("task {} has no workset", task.id)))?;
    let branch = task.git.branch.clone().ok_or_else(|| Error::conflict(format!("task {} has no branch", task.id)))?;
    let message = match strategy {
        MergeStrategy::Squash => format!("{} (baton task {})", task.title, task.id),
        _ => format!("Merge task {}: {}", task.id, task.title),
    };
    let mut parts = parts_of(state, &task, &workset).await?;
    for part in &mut parts {
        part.prepared = match prepare(part, &branch, strategy, &message).await {
            Err(Conflicted(files)) => return Err(conflict(state, &task, part, files).await),
            Ok(prepared) => prepared?,
        };
    }
    check(&task, &parts).await?;
    let steps: Vec<LandingStep> = parts
        .iter()
        .filter_map(|p| {
            let l = p.prepared.as_ref()?;
            Some(LandingStep {
                project_id: p.project.id.clone(),
                path: p.project.path.clone(),
                branch: p.base.clone(),
                old: l.old.clone(),
                new: l.new.clone(),
            })
        })
        .collect();
    let landing = Landing { task_id: task.id.clone(), steps, started_at: Timestamp::now() };
    let journal = landing.clone();
    state.store.write(move |tx| tx.put_landing(&journal)).await?;
    pause("prepared").await;
    let mut moved: Vec<&LandingStep> = Vec::new();
    for (i, step) in landing.steps.iter().enumerate() {
        let swapped = merge::swap(Path::new(&step.path), &step.branch, &landed(step), &message).await;
        if !matches!(swapped, Ok(true)) {
            undo(&moved, &message).await;
            let id = task.id.clone();
            state.store.write(move |tx| tx.delete_landing(&id)).await?;
            let name = parts.iter().find(|p| p.project.id == step.project_id).map_or("?", |p| p.name.as_str());
            let why = match swapped {
                Err(e) => e.to_string(),
                _ => {
                    format!("{} of {name} moved after the merge was prepared (another task landed there)", step.branch)
                }
            };
            return Err(Error::Conflict {
                message: format!(
                    "task {} did not land: {why}; nothing landed, and every branch is kept: merge again",
                    task.id
                ),
                details: Some(json!({ "task": task.id, "repository": name })),
            });
        }
        moved.push(step);
        pause(&format!("swapped-{}", i + 1)).await;
    }
    finish(state, landing).await
}

/// The task's projects, each with the base it lands on.
async fn parts_of(state: &Arc<AppState>, task: &Task, workset: &TaskWorkset) -> Result<Vec<Part>, Error> {
    let (ids, own_base) = (workset.parts.clone(), task.git.base_branch.clone());
    let own = task.project_id.clone();
    let parts = state
        .store
        .read(move |r| {
            ids.into_iter()
                .map(|part| {
                    let project = resolve::project(r, &part.project_id)?;
                    let base = match (&own_base, part.project_id == own) {
                        (Some(b), true) => b.clone(),
                        _ => part.base_branch.clone(),
                    };
                    Ok::<_, Error>(Part { name: part.name, project, base, prepared: None })
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    for p in &parts {
        crate::projects::require_repository(&p.project)?;
    }
    Ok(parts)
}

/// A merge that conflicts in one repository: the files.
struct Conflicted(Vec<String>);

/// The merge commit of one repository, made but not landed.
async fn prepare(
    part: &Part,
    branch: &str,
    strategy: MergeStrategy,
    message: &str,
) -> Result<Result<Option<Landed>, Error>, Conflicted> {
    let repo = Path::new(&part.project.path);
    match Git::new(repo).branch_head(branch).await {
        // The agent changed nothing here (its branch was never pushed).
        Ok(None) => return Ok(Ok(None)),
        Err(e) => return Ok(Err(Error::internal(e))),
        Ok(Some(_)) => {}
    }
    match merge::prepare(repo, &part.base, branch, strategy, message).await {
        Ok(prepared) => Ok(Ok(prepared)),
        Err(GitError::Conflict { files, .. }) => Err(Conflicted(files)),
        Err(e) => Ok(Err(Error::Conflict { message: format!("{}: {e}", part.name), details: None })),
    }
}

/// A conflict in one repository: nothing landed; the task says so and, when
/// its loop allows, its agent is resumed to merge that repository's base.
async fn conflict(state: &Arc<AppState>, task: &Task, part: &Part, files: Vec<String>) -> Error {
    let head = Git::new(&part.project.path).branch_head(&part.base).await.ok().flatten();
    let (tid, name, base) = (task.id.clone(), part.name.clone(), part.base.clone());
    let told = json!({ "conflict": { "repository": name, "base": base, "files": files } });
    let (n, b, f) = (name.clone(), base.clone(), files.clone());
    let resumed = crate::transact(state, move |tx, fx| {
        let mut task = resolve::task(tx, &tid)?;
        task.git.merge = MergeState::Conflict;
        task.updated_at = Timestamp::now();
        emit_task(tx, &task)?;
        crate::outbox::tell_task(tx, baton_core::webhook::WebhookEvent::MergeConflict, &task, told)?;
        crate::scheduler::loops::workset_conflicted(tx, fx, &mut task, &n, &b, head.as_deref(), &f)
    })
    .await;
    let resumed = match resumed {
        Ok(r) => r,
        Err(e) => return e,
    };
    let then = if resumed { "; its agent was resumed to resolve it, and it merges again when done" } else { "" };
    Error::MergeConflict {
        message: format!(
            "merging task {} into {name}'s {base} conflicts in {}; nothing landed in any repository{then}",
            task.id,
            files.join(", ")
        ),
        details: json!({ "task": task.id, "repository": name, "base": base, "files": files, "resumed": resumed }),
    }
}

/// Runs each project's checks on its prepared commit, and the task's own in the
/// directory of them all; the first failure, naming its repository.
async fn check(task: &Task, parts: &[Part]) -> Result<(), Error> {
    let wanted = !task.checks.is_empty() || parts.iter().any(|p| !p.project.settings.checks.is_empty());
    if !wanted {
        return Ok(());
    }
    let dir = tempfile::Builder::new().prefix("baton-landing-").tempdir().map_err(Error::internal)?;
    let mut checkouts: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = async {
        for part in parts {
            let repo = PathBuf::from(&part.project.path);
            let at = match &part.prepared {
                Some(l) => l.new.clone(),
                None => Git::new(&repo).branch_head(&part.base).await.map_err(Error::internal)?.unwrap_or_default(),
            };
            let path = dir.path().join(&part.name);
            let target = path.to_string_lossy().into_owned();
            Git::new(&repo)
                .run(["worktree", "add", "--quiet", "--detach", target.as_str(), at.as_str()])
                .await
                .map_err(Error::internal)?;
            checkouts.push((repo, path.clone()));
            for command in &part.project.settings.checks {
                run_check(command, &path, &part.name).await?;
            }
        }
        for command in &task.checks {
            run_check(command, dir.path(), "the workset").await?;
        }
        Ok(())
    }
    .await;
    for (repo, path) in checkouts {
        let target = path.to_string_lossy().into_owned();
        let _ = Git::new(&repo).run(["worktree", "remove", "--force", target.as_str()]).await;
    }
    result
}

/// One check; an error naming `whose` when it fails.
async fn run_check(command: &str, dir: &Path, whose: &str) -> Result<CheckResult, Error> {
    let started = std::time::Instant::now();
    let run = tokio::process::Command::new("sh")
        .args(["-c", command])
        .current_dir(dir)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(CHECK_TIMEOUT, run).await;
    let (exit_code, text) = match output {
        Ok(Ok(o)) => {
            let mut text = String::from_utf8_lossy(&o.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&o.stderr));
            (o.status.code(), text)
        }
        Ok(Err(e)) => (None, format!("could not run it: {e}")),
        Err(_) => (None, format!("it ran past {} s and was stopped", CHECK_TIMEOUT.as_secs())),
    };
    let tail = baton_core::text::tail(&text, OUTPUT_TAIL).to_owned();
    let result = CheckResult {
        command: command.to_owned(),
        exit_code,
        passed: exit_code == Some(0),
        duration_ms: started.elapsed().as_millis() as u64,
        output_tail: tail,
    };
    if result.passed {
        return Ok(result);
    }
    Err(Error::Conflict {
        message: format!(
            "the check `{command}` of {whose} fails on the merged result (exit {}); nothing landed, and every branch is kept",
            exit_code.map_or_else(|| "none".to_owned(), |c| c.to_string())
        ),
        details: Some(json!({ "repository": whose, "check": result.command, "output_tail": result.output_tail })),
    })
}

fn landed(step: &LandingStep) -> Landed {
    Landed { old: step.old.clone(), new: step.new.clone() }
}

/// Moves bases back, newest first.
async fn undo(moved: &[&LandingStep], message: &str) {
    for step in moved.iter().rev() {
        let back = Landed { old: step.new.clone(), new: step.old.clone() };
        let undone = merge::swap(Path::new(&step.path), &step.branch, &back, &format!("Undo: {message}")).await;
        if !matches!(undone, Ok(true)) {
            tracing::error!(repository = %step.path, base = %step.branch, "could not move a base back after a failed landing");
        }
    }
}

/// The landing is whole: the journal goes and the task is merged, together.
async fn finish(state: &Arc<AppState>, landing: Landing) -> Result<Task, Error> {
    let task = state
        .store
        .write(move |tx| {
            let mut task = resolve::task(tx, &landing.task_id)?;
            let own = task.project_id.clone();
            for step in &landing.steps {
                if step.project_id == own {
                    task.git.merged_commit = Some(step.new.clone());
                }
                if let Some(ws) = task.workset.as_mut()
                    && let Some(part) = ws.parts.iter_mut().find(|p| p.project_id == step.project_id)
                {
                    part.merged_commit = Some(step.new.clone());
                }
            }
            task.git.merge = MergeState::Merged;
            task.updated_at = Timestamp::now();
            tx.delete_landing(&task.id)?;
            emit_task(tx, &task)?;
            Ok::<_, Error>(task)
        })
        .await?;
    Ok(task)
}

/// Finishes (or undoes) the landings a coordinator left when it died.
pub(crate) async fn recover(state: &Arc<AppState>) {
    let landings = match state.store.read(|r| r.landings()).await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "could not read the landing journals");
            return;
        }
    };
    for landing in landings {
        let task = landing.task_id.clone();
        let message = format!("Merge task {task} (finished after a restart)");
        let mut moved: Vec<&LandingStep> = Vec::new();
        let mut whole = true;
        for step in &landing.steps {
            let at = Git::new(&step.path).branch_head(&step.branch).await.ok().flatten();
            let there = at.as_deref() == Some(step.new.as_str())
                || matches!(merge::swap(Path::new(&step.path), &step.branch, &landed(step), &message).await, Ok(true));
            if !there {
                whole = false;
                break;
            }
            moved.push(step);
        }
        if whole {
            tracing::info!(task = %task, "a landing left by a restart was finished");
            if let Err(e) = finish(state, landing.clone()).await {
                tracing::error!(task = %task, error = %e, "could not record a finished landing");
            }
            continue;
        }
        undo(&moved, &message).await;
        tracing::warn!(task = %task, "a landing left by a restart could not finish and was undone");
        let id = task.clone();
        if let Err(e) = state.store.write(move |tx| tx.delete_landing(&id)).await {
            tracing::error!(task = %task, error = %e, "could not remove an undone landing's journal");
        }
    }
}

/// For tests of crashes mid-landing (`BATON_TEST_LANDING_PAUSE=DIR`): at each
/// stage, writes `DIR/STAGE` and waits until `DIR/STAGE.go` exists.
async fn pause(stage: &str) {
    let Some(dir) = std::env::var_os("BATON_TEST_LANDING_PAUSE") else { return };
    let dir = PathBuf::from(dir);
    let _ = std::fs::write(dir.join(stage), b"");
    let go = dir.join(format!("{stage}.go"));
    for _ in 0..1200 {
        if go.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
