//! The forge's worker, on the timers' leader: it opens the pull requests
//! `auto_pr` asks for, pushes each task's new head to its pull request, gives
//! the agent what the forge said while it was busy, and polls open pull
//! requests (each read conditional on its last ETag), merging green ones when
//! the project merges through the forge automatically.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use baton_core::ids::TaskId;
use baton_core::model::{Feedback, MergeState, MergeVia, PrState, Project, PullRequest, ReviewComment, Task};
use baton_core::status::TaskStatus;
use baton_store::{StoreRead, TaskFilter};
use serde_json::Value;

use super::github::{CheckRun, Fresh, GitHub};
use super::{DEFAULT_POLL_S, LOG_TO_AGENT, LOOK, client, open_pr, push, tell};
use baton_domain::review::mark_pr_merged as mark_merged;
use baton_domain::scheduler::{emit_task, loops};
use baton_domain::{AppState, Error, resolve, transact};

/// What the worker remembers between passes (in memory: a restart tries again).
#[derive(Default)]
pub(super) struct Memory {
    /// When each project was last polled.
    polled: HashMap<String, tokio::time::Instant>,
    /// Each project's ETag of its labelled issues.
    pub(super) issue_etags: HashMap<String, String>,
    /// Since when each project's issue comments were looked at (RFC 3339).
    pub(super) comments_since: HashMap<String, String>,
    /// Tasks whose head could not be pushed or proposed, with that head: not
    /// tried again until the head changes.
    stuck: HashMap<TaskId, Option<String>>,
}

/// Runs for as long as the coordinator does; works only while this replica
/// holds the timers' lease.
pub async fn worker(state: Arc<AppState>) {
    let mut memory = Memory::default();
    loop {
        let mut wait = LOOK;
        if state.is_leader() {
            match pass(&state, &mut memory).await {
                Ok(next) => wait = next,
                Err(e) => tracing::warn!(error = %e, "the forge worker's pass failed"),
            }
        }
        tokio::select! {
            _ = state.forge_work.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// One pass over the projects with a forge; how long until the next is due.
async fn pass(state: &Arc<AppState>, memory: &mut Memory) -> Result<Duration, Error> {
    let work = state
        .store
        .read(|r| {
            let mut work = Vec::new();
            for project in r.projects()?.into_iter().filter(|p| p.settings.forge.is_some()) {
                let tasks = followed(r, &project)?;
                work.push((project, tasks));
            }
            Ok::<_, Error>(work)
        })
        .await?;
    let mut next = LOOK;
    for (project, tasks) in work {
        let Ok(github) = client(&project) else { continue };
        let poll_s = project.settings.forge.as_ref().and_then(|f| f.poll_s).unwrap_or(DEFAULT_POLL_S);
        if poll_s > 0 {
            next = next.min(Duration::from_secs(poll_s));
        }
        let due = poll_s > 0
            && memory.polled.get(project.id.as_str()).is_none_or(|at| at.elapsed() >= Duration::from_secs(poll_s));
        if due {
            memory.polled.insert(project.id.to_string(), tokio::time::Instant::now());
        }
        for task in tasks {
            let id = task.id.clone();
            if let Err(e) = follow(state, &github, &project, task, due, memory).await {
                tracing::warn!(task = %id, error = %e, "could not follow the task's pull request");
            }
        }
        // Issues: told of their tasks; without a webhook, looked at for new work.
        if let Err(e) = super::issues::tell(state, &project, &github).await {
            tracing::warn!(project = %project.name, error = %e, "could not tell an issue of its task");
        }
        // A webhook whose secret is set brings issues and comments; else, polls.
        let hooked = project
            .settings
            .forge
            .as_ref()
            .and_then(|f| f.webhook_secret_env.as_deref())
            .is_some_and(|v| std::env::var(v).is_ok_and(|s| !s.is_empty()));
        if due
            && !hooked
            && let Err(e) = super::issues::poll(state, &project, &github, memory).await
        {
            tracing::warn!(project = %project.name, error = %e, "could not look at the project's issues");
        }
    }
    Ok(next)
}

/// The tasks of a project the worker looks after: succeeded ones with an open
/// pull request, or waiting for one (`auto_pr`).
fn followed(r: &dyn StoreRead, project: &Project) -> Result<Vec<Task>, Error> {
    let filter =
        TaskFilter { project: Some(project.id.clone()), statuses: vec![TaskStatus::Succeeded], ..Default::default() };
    Ok(r.tasks(&filter)?
        .into_iter()
        .filter(|t| t.git.merge != MergeState::Merged && t.review_of.is_none())
        .filter(|t| match &t.pr {
            Some(pr) => pr.state == PrState::Open,
            None => project.settings.auto_pr && !t.git.commits.is_empty() && loops::merge_gate(t, false).is_ok(),
        })
        .collect())
}

/// Brings one task's pull request up to date: opened, its new head pushed, what
/// waited for the agent given, and (when `poll`) what the forge says acted on.
async fn follow(
    state: &Arc<AppState>,
    github: &GitHub,
    project: &Project,
    task: Task,
    poll: bool,
    memory: &mut Memory,
) -> Result<(), Error> {
    let head = task.git.head.clone();
    let stuck = memory.stuck.get(&task.id) == Some(&head);
    let Some(pr) = task.pr.clone() else {
        if !stuck && let Err(e) = open_pr(state, task.id.clone()).await {
            tracing::warn!(task = %task.id, error = %e, "auto_pr could not open a pull request; trying again when the branch moves");
            memory.stuck.insert(task.id.clone(), head);
        }
        return Ok(());
    };
    if let (Some(branch), Some(sha)) = (&task.git.branch, &head)
        && pr.pushed.as_ref() != Some(sha)
        && !stuck
    {
        match push(project, branch, sha).await {
            Ok(()) => {
                memory.stuck.remove(&task.id);
                return pushed(state, &task.id, sha.clone()).await;
            }
            Err(e) => {
                memory.stuck.insert(task.id.clone(), head.clone());
                let text =
                    format!("could not push to pull request #{} (tried again when the branch moves): {}", pr.number, e);
                let id = task.id.clone();
                transact(state, move |tx, _| {
                    let task = resolve::task(tx, &id)?;
                    tell(tx, &task, "pr", text, Value::Null)
                })
                .await?;
            }
        }
    }
    if !pr.waiting.is_empty() {
        give(state, task.id.clone(), Vec::new()).await?;
    }
    if poll {
        poll_pr(state, github, project, &task, &pr).await?;
    }
    Ok(())
}

/// Records a push to the task's pull request.
async fn pushed(state: &Arc<AppState>, id: &TaskId, head: String) -> Result<(), Error> {
    let id = id.clone();
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &id)?;
        let Some(pr) = task.pr.as_mut() else { return Ok(()) };
        pr.pushed = Some(head.clone());
        // What was said of an older commit is moot now.
        pr.waiting.retain(|w| w.commit.is_none());
        let text = format!("pushed {} to pull request #{}", &head[..head.len().min(12)], pr.number);
        tell(tx, &task, "pr", text, Value::Null)?;
        emit_task(tx, &task)?;
        Ok(())
    })
    .await
}

/// Gives the agent what the forge said (and what waited on its pull request).
pub(super) async fn give(state: &Arc<AppState>, id: TaskId, mut items: Vec<Feedback>) -> Result<(), Error> {
    transact(state, move |tx, fx| {
        let mut task = resolve::task(tx, &id)?;
        if task.status == TaskStatus::Succeeded
            && let Some(pr) = task.pr.as_ref()
        {
            let mut all = pr.waiting.clone();
            all.append(&mut items);
            items = all;
        }
        loops::forge_feedback(tx, fx, &mut task, items)
    })
    .await
    .map(|_| ())
}

/// What a failed check run says, for the agent.
pub(super) fn check_feedback(run: &CheckRun, log: &str) -> Feedback {
    let log = baton_core::text::tail(log.trim_end(), LOG_TO_AGENT);
    Feedback {
        key: format!("check:{}", run.id),
        commit: Some(run.head_sha.clone()),
        summary: format!("CI check {} failed on the pull request", run.name),
        message: format!(
            "The CI of your pull request failed: check `{}`. Fix what it reports, commit, and keep your own checks \
             passing; your fix is pushed to the same pull request.\n\nThe end of its log:\n\n```\n{log}\n```",
            run.name
        ),
    }
}

/// What a review requesting changes says, for the agent.
pub(super) fn review_feedback(id: u64, who: &str, body: Option<&str>, comments: &[ReviewComment]) -> Feedback {
    let mut message = format!(
        "{who} reviewed your pull request and requests changes. Address each point, commit, and keep the checks \
         passing; your fix is pushed to the same pull request.\n\n"
    );
    if let Some(body) = body.filter(|b| !b.trim().is_empty()) {
        message.push_str(&format!("{}\n\n", body.trim()));
    }
    message.push_str(&loops::comment_list(comments));
    Feedback {
        key: format!("review:{id}"),
        commit: None,
        summary: format!("{who} requested changes on the pull request ({} comments)", comments.len()),
        message,
    }
}

/// Whether a review's author may send the agent work: the repository's owner,
/// members and collaborators (anyone may review a public repository's PR).
pub(super) fn trusted(association: Option<&str>) -> bool {
    matches!(association, Some("OWNER" | "MEMBER" | "COLLABORATOR"))
}

/// Reads a pull request, its head's check runs and its reviews (each only when
/// changed since its ETag), and acts on what is new.
async fn poll_pr(
    state: &Arc<AppState>,
    github: &GitHub,
    project: &Project,
    task: &Task,
    pr: &PullRequest,
) -> Result<(), Error> {
    let etag = |key: &str| pr.etags.get(key).map(String::as_str);
    let mut tags = Vec::new();
    if let Fresh::New(pull, tag) = github.pull(pr.number, etag("pull")).await? {
        if pull.merged {
            return merged(state, task.id.clone(), pull.merge_commit_sha).await;
        }
        if pull.state == "closed" {
            return closed(state, task.id.clone()).await;
        }
        tags.push(("pull".to_owned(), tag));
    }
    let mut items = Vec::new();
    if let Some(sha) = &pr.pushed {
        let key = format!("checks:{sha}");
        if let Fresh::New(runs, tag) = github.check_runs(sha, etag(&key)).await? {
            for run in runs.iter().filter(|r| r.failed()) {
                items.push(check_feedback(run, &github.check_log(run).await));
            }
            if green(&runs) && merges_through_forge(project) && loops::merge_gate(task, false).is_ok() {
                let id = task.id.clone();
                transact(state, move |tx, fx| baton_domain::review::queue_merge(tx, fx, &id, None, false)).await?;
            }
            tags.push((key, tag));
        }
    }
    if let Fresh::New(reviews, tag) = github.reviews(pr.number, etag("reviews")).await? {
        let wanted =
            reviews.iter().filter(|r| r.state == "CHANGES_REQUESTED" && trusted(r.author_association.as_deref()));
        for review in wanted.filter(|r| !pr.handled.contains(&format!("review:{}", r.id))) {
            let comments = github.review_comments(pr.number, review.id).await?;
            let who = review.user.as_ref().map_or("a reviewer", |u| u.login.as_str());
            items.push(review_feedback(review.id, who, review.body.as_deref(), &comments));
        }
        tags.push(("reviews".to_owned(), tag));
    }
    if !items.is_empty() {
        give(state, task.id.clone(), items).await?;
    }
    remember_etags(state, &task.id, tags).await
}

/// Whether every check run finished well (none failed, none still running).
fn green(runs: &[CheckRun]) -> bool {
    runs.iter()
        .all(|r| r.status == "completed" && matches!(r.conclusion.as_deref(), Some("success" | "neutral" | "skipped")))
}

/// Whether the project merges its tasks through the forge as soon as they may.
fn merges_through_forge(project: &Project) -> bool {
    project.settings.auto_merge && project.settings.merge_via == Some(MergeVia::Forge)
}

/// Keeps the ETags of what a poll read, so the next poll asks only for
/// changes (what it said is acted on, or kept on the pull request, by then).
async fn remember_etags(state: &Arc<AppState>, id: &TaskId, tags: Vec<(String, Option<String>)>) -> Result<(), Error> {
    if tags.is_empty() {
        return Ok(());
    }
    let id = id.clone();
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &id)?;
        let Some(pr) = task.pr.as_mut() else { return Ok(()) };
        let before = pr.etags.clone();
        pr.etags.retain(|k, _| !k.starts_with("checks:") || Some(&k[7..]) == pr.pushed.as_deref());
        for (key, tag) in tags {
            match tag {
                Some(tag) => pr.etags.insert(key, tag),
                None => pr.etags.remove(&key),
            };
        }
        if pr.etags != before {
            tx.put_task(&task)?;
        }
        Ok(())
    })
    .await
}

/// The pull request was merged on the forge: the task is merged.
pub(super) async fn merged(state: &Arc<AppState>, id: TaskId, sha: Option<String>) -> Result<(), Error> {
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &id)?;
        if task.git.merge != MergeState::Merged {
            mark_merged(tx, &mut task, sha, "was merged on the forge")?;
        }
        Ok(())
    })
    .await
}

/// The pull request was closed without merging.
pub(super) async fn closed(state: &Arc<AppState>, id: TaskId) -> Result<(), Error> {
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &id)?;
        if let Some(pr) = task.pr.as_mut().filter(|p| p.state == PrState::Open) {
            pr.state = PrState::Closed;
            let text = format!("pull request #{} was closed without merging", pr.number);
            tell(tx, &task, "pr", text, Value::Null)?;
            emit_task(tx, &task)?;
        }
        Ok(())
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_repositorys_people_send_the_agent_work() {
        for who in ["OWNER", "MEMBER", "COLLABORATOR"] {
            assert!(trusted(Some(who)));
        }
        for who in [Some("CONTRIBUTOR"), Some("FIRST_TIME_CONTRIBUTOR"), Some("NONE"), None] {
            assert!(!trusted(who));
        }
    }
}
