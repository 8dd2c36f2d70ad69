//! `baton pr` of a workset task: one pull request per repository the task
//! changed, each linking the others, since they land together.

use std::sync::Arc;

use baton_core::model::{PrState, Project, PullRequest, Task};
use baton_core::status::TaskStatus;
use baton_core::workset::TaskWorkset;
use serde_json::Value;

use baton_domain::scheduler::emit_task;
use baton_domain::{AppState, Error, resolve, transact};

use crate::{client, pr_body, push, tell};

/// One repository's pull request, opened.
struct Opened {
    project: Project,
    name: String,
    number: u64,
    url: String,
    base: String,
    head: String,
}

/// Pushes the task's branch of each repository it changed and opens a pull
/// request there; then each says where the others are.
pub(crate) async fn open(state: &Arc<AppState>, task: Task, workset: TaskWorkset) -> Result<Task, Error> {
    if task.status != TaskStatus::Succeeded {
        return Err(Error::conflict(format!(
            "task {} is {}; only a succeeded task is proposed as pull requests",
            task.id, task.status
        )));
    }
    if task.workset.as_ref().is_some_and(|w| w.parts.iter().any(|p| p.pr.is_some())) {
        return Err(Error::AlreadyExists {
            message: format!("task {} already has its pull requests", task.id),
            details: None,
        });
    }
    let branch = task.git.branch.clone().ok_or_else(|| Error::conflict(format!("task {} has no branch", task.id)))?;
    let ids: Vec<_> = workset.parts.iter().map(|p| p.project_id.clone()).collect();
    let projects =
        state.store.read(move |r| ids.iter().map(|id| resolve::project(r, id)).collect::<Result<Vec<_>, _>>()).await?;
    // Every repository's forge first: nothing is opened when one cannot be.
    let mut changed = Vec::new();
    for (part, project) in workset.parts.iter().zip(projects) {
        let github = client(&project)?;
        baton_domain::projects::require_repository(&project)?;
        let git = baton_git::Git::new(&project.path);
        let Some(head) = git.branch_head(&branch).await.map_err(Error::internal)? else { continue };
        let base_head = git.branch_head(&part.base_branch).await.map_err(Error::internal)?;
        if base_head.is_some_and(|b| b == head) {
            continue;
        }
        changed.push((part.clone(), project, github, head));
    }
    if changed.is_empty() {
        return Err(Error::conflict(format!("task {} changed no repository; there is nothing to propose", task.id)));
    }
    let names: Vec<String> = changed.iter().map(|(p, ..)| format!("`{}`", p.name)).collect();
    let together = format!(
        "\n**Workset** `{}`: this change spans {}, and lands in all of them together (`baton merge {}`).\n",
        workset.name,
        names.join(", "),
        task.id
    );
    let mut opened: Vec<(Opened, crate::github::GitHub)> = Vec::new();
    for (part, project, github, head) in changed {
        push(&project, &branch, &head).await?;
        let body = format!("{}{together}", pr_body(&task, &state.config.public_url));
        let pull = github.create_pull(&task.title, &branch, &part.base_branch, &body).await?;
        let o =
            Opened { project, name: part.name, number: pull.number, url: pull.html_url, base: part.base_branch, head };
        opened.push((o, github));
    }
    for (o, github) in &opened {
        let others: Vec<String> =
            opened.iter().filter(|(x, _)| x.name != o.name).map(|(x, _)| format!("- {}: {}", x.name, x.url)).collect();
        let text = format!("Lands together with:\n\n{}", others.join("\n"));
        if let Err(e) = github.comment(o.number, &text).await {
            tracing::warn!(pull = o.number, error = %e, "could not link a workset's pull requests");
        }
    }
    record(state, &task, opened.into_iter().map(|(o, _)| o).collect()).await
}

/// Records the pull requests: the task's own project's as its `pr`, each on its
/// part of the workset.
async fn record(state: &Arc<AppState>, task: &Task, opened: Vec<Opened>) -> Result<Task, Error> {
    let text = opened.iter().map(|o| format!("{} #{} ({})", o.name, o.number, o.url)).collect::<Vec<_>>().join(", ");
    let text = format!("opened pull requests: {text}");
    let tid = task.id.clone();
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &tid)?;
        let own = task.project_id.clone();
        let first = opened.iter().find(|o| o.project.id == own).or(opened.first());
        if let Some(o) = first {
            task.pr = Some(PullRequest {
                number: o.number,
                url: o.url.clone(),
                state: PrState::Open,
                base: o.base.clone(),
                pushed: Some(o.head.clone()),
                ..PullRequest::default()
            });
        }
        if let Some(ws) = task.workset.as_mut() {
            for part in &mut ws.parts {
                part.pr = opened.iter().find(|o| o.project.id == part.project_id).map(|o| o.url.clone());
            }
        }
        tell(tx, &task, "pr", text, Value::Null)?;
        emit_task(tx, &task)?;
        Ok(task)
    })
    .await
}
