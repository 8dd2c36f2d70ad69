//! Issues and comments that start work: an issue given the project's trigger
//! label (`baton` by default) becomes a task whose prompt holds the issue and
//! its thread; a comment `@baton <instruction>` on an issue starts a task, and
//! on a task's pull request resumes that task's session. Baton reacts 👀,
//! comments with links to the task and, later, its pull request ("Fixes #N"),
//! and says how it ended.
//!
//! Only people whose `author_association` gives write access (owner, member,
//! collaborator) can start anything; others are logged and ignored. Baton's
//! own comments carry a marker and never start anything. Each issue and
//! comment acts once: its id is kept (the trigger hits' table) in the
//! transaction that makes its task, whether it came by webhook or by a poll.

use std::sync::Arc;

use baton_core::api::CreateTask;
use baton_core::ids::TaskId;
use baton_core::model::{IssueLink, Project, Task};
use baton_core::time::Timestamp;
use baton_core::triggers::TriggerHit;
use baton_domain::tokens::Caller;
use baton_domain::{AppState, Error, transact};
use serde_json::Value;

use super::client;
use super::follow::trusted;
use super::github::GitHub;

/// Marks Baton's own comments (never a trigger).
pub const MARKER: &str = "<!-- baton -->";

/// What a mention of Baton in a comment looks like.
pub const MENTION: &str = "@baton";

fn label(project: &Project) -> String {
    project.settings.forge.as_ref().and_then(|f| f.issue_label.clone()).unwrap_or_else(|| "baton".into())
}

fn repo(project: &Project) -> String {
    project.settings.forge.as_ref().map(|f| f.repository().to_owned()).unwrap_or_default()
}

/// The issue and its thread, as a prompt.
async fn thread(github: &GitHub, issue: &Value) -> String {
    let number = issue["number"].as_u64().unwrap_or_default();
    let mut text = format!(
        "Issue #{number}: {}\n\n{}\n",
        issue["title"].as_str().unwrap_or_default(),
        issue["body"].as_str().unwrap_or_default()
    );
    for c in github.issue_comments(number).await.unwrap_or_default() {
        let body = c["body"].as_str().unwrap_or_default();
        if body.contains(MARKER) {
            continue;
        }
        text.push_str(&format!("\n— {}: {body}\n", c["user"]["login"].as_str().unwrap_or("someone")));
    }
    text
}

/// Makes the task for an issue or a comment, once per `key`; the task, or
/// `None` when that key acted before.
async fn start_once(
    state: &Arc<AppState>,
    project: &Project,
    key: String,
    prompt: String,
    title: String,
    number: u64,
    origin: String,
) -> Result<Option<Task>, Error> {
    let (st, p) = (Arc::clone(state), project.clone());
    transact(state, move |tx, fx| {
        let source = format!("github:{}", repo(&p));
        if tx.trigger_hit(&source, &key)?.is_some() {
            return Ok(None);
        }
        let agent = p.settings.forge.as_ref().and_then(|f| f.issue_agent.clone());
        let req =
            CreateTask { project: Some(p.id.to_string()), prompt, title: Some(title), agent, ..CreateTask::default() };
        let person = Caller::person();
        let mut new = baton_domain::scheduler::new_task(tx, &person, req, &st.config)?;
        new.asked.origin = Some(origin);
        new.asked.issue = Some(IssueLink { number, pr_told: false, end_told: false });
        let task = baton_domain::scheduler::insert_task(tx, fx, new, TaskId::generate())?;
        tx.add_trigger_hit(&TriggerHit {
            trigger: source,
            webhook_id: key,
            task_id: task.id.clone(),
            at: Timestamp::now(),
        })?;
        Ok::<_, Error>(Some(task))
    })
    .await
}

fn task_link(state: &AppState, task: &Task) -> String {
    format!("[{}]({}/#/tasks/{})", task.id, state.config.public_url.trim_end_matches('/'), task.id)
}

/// An issue that has (or was just given) the trigger label.
pub async fn labeled(state: &Arc<AppState>, project: &Project, issue: &Value) -> Result<Value, Error> {
    let number = issue["number"].as_u64().unwrap_or_default();
    let wanted = label(project);
    let has = issue["labels"].as_array().is_some_and(|l| l.iter().any(|x| x["name"].as_str() == Some(wanted.as_str())));
    if !has || issue["pull_request"].is_object() || issue["state"] == "closed" {
        return Ok(serde_json::json!({ "ignored": "not an open issue with the trigger label" }));
    }
    let github = client(project)?;
    let prompt = thread(&github, issue).await;
    let title = issue["title"].as_str().unwrap_or("an issue").to_owned();
    let origin = format!("issue {}#{number}", repo(project));
    let Some(task) = start_once(state, project, format!("issue:{number}"), prompt, title, number, origin).await? else {
        return Ok(serde_json::json!({ "ignored": "this issue started a task already" }));
    };
    let _ = github.eyes(&format!("issues/{number}")).await;
    let body = format!("{MARKER}\nBaton is on it: task {} (agent `{}`).", task_link(state, &task), task.agent);
    github.comment(number, &body).await?;
    Ok(serde_json::json!({ "task": task.id }))
}

/// A new comment: `@baton <instruction>` from someone with write access.
pub async fn commented(
    state: &Arc<AppState>,
    project: &Project,
    issue: &Value,
    comment: &Value,
) -> Result<Value, Error> {
    let body = comment["body"].as_str().unwrap_or_default();
    let ignored = |why: &str| {
        tracing::info!(project = %project.name, why, "forge comment ignored");
        Ok(serde_json::json!({ "ignored": why }))
    };
    if body.contains(MARKER) || comment["performed_via_github_app"].is_object() {
        return ignored("Baton's own comment");
    }
    let Some(at) = body.to_ascii_lowercase().find(MENTION) else { return ignored("no @baton in it") };
    if !trusted(comment["author_association"].as_str()) {
        return ignored("the commenter has no write access to the repository");
    }
    let instruction = body[at + MENTION.len()..].trim().to_owned();
    let (number, id) = (issue["number"].as_u64().unwrap_or_default(), comment["id"].as_u64().unwrap_or_default());
    let github = client(project)?;
    if issue["pull_request"].is_object() {
        return on_pull(state, project, &github, number, id, &instruction).await;
    }
    let prompt = format!("{}\n\nAsked in a comment: {instruction}", thread(&github, issue).await);
    let origin = format!("comment {}#{number}", repo(project));
    let title = format!("#{number}: {}", baton_core::names::title_from_prompt(&instruction));
    let Some(task) = start_once(state, project, format!("comment:{id}"), prompt, title, number, origin).await? else {
        return ignored("this comment acted already");
    };
    let _ = github.eyes(&format!("issues/comments/{id}")).await;
    github.comment(number, &format!("{MARKER}\nBaton is on it: task {}.", task_link(state, &task))).await?;
    Ok(serde_json::json!({ "task": task.id }))
}

/// `@baton …` on a task's pull request: the next turn of that task's session.
async fn on_pull(
    state: &Arc<AppState>,
    project: &Project,
    github: &GitHub,
    number: u64,
    id: u64,
    text: &str,
) -> Result<Value, Error> {
    let (p, key, text) = (project.clone(), format!("comment:{id}"), text.to_owned());
    let resumed = transact(state, move |tx, fx| {
        let source = format!("github:{}", repo(&p));
        if tx.trigger_hit(&source, &key)?.is_some() {
            return Ok(None);
        }
        let filter = baton_store::TaskFilter { project: Some(p.id.clone()), ..Default::default() };
        let Some(task) = tx.tasks(&filter)?.into_iter().find(|t| t.pr.as_ref().is_some_and(|pr| pr.number == number))
        else {
            return Ok(None);
        };
        baton_domain::scheduler::send_follow_up(
            tx,
            fx,
            &task.id,
            format!("On the pull request: {text}"),
            Some("github".into()),
        )?;
        tx.add_trigger_hit(&TriggerHit {
            trigger: source,
            webhook_id: key,
            task_id: task.id.clone(),
            at: Timestamp::now(),
        })?;
        Ok::<_, Error>(Some(task.id))
    })
    .await?;
    match resumed {
        Some(task) => {
            let _ = github.eyes(&format!("issues/comments/{id}")).await;
            Ok(serde_json::json!({ "resumed": task }))
        }
        None => Ok(serde_json::json!({ "ignored": "no task has this pull request, or the comment acted already" })),
    }
}

/// Tells each issue of the project's tasks what became of it: its pull
/// request once opened, and how it ended.
pub async fn tell(state: &Arc<AppState>, project: &Project, github: &GitHub) -> Result<(), Error> {
    let id = project.id.clone();
    let tasks = state
        .store
        .read(move |r| {
            let filter = baton_store::TaskFilter { project: Some(id), ..Default::default() };
            Ok::<_, Error>(
                r.tasks(&filter)?
                    .into_iter()
                    .filter(|t| t.issue.as_ref().is_some_and(|i| !i.end_told))
                    .collect::<Vec<_>>(),
            )
        })
        .await?;
    for task in tasks {
        let Some(issue) = task.issue.clone() else { continue };
        let mut told = issue.clone();
        if let Some(pr) = task.pr.as_ref().filter(|_| !issue.pr_told) {
            github
                .comment(
                    issue.number,
                    &format!("{MARKER}\nPull request: {} (task {}).", pr.url, task_link(state, &task)),
                )
                .await?;
            told.pr_told = true;
        }
        let merged = task.git.merge == baton_core::model::MergeState::Merged;
        if task.status.is_settled() && task.status != baton_core::status::TaskStatus::Succeeded || merged {
            let how = if merged { "merged".to_owned() } else { task.status.to_string() };
            let why = task.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            github.comment(issue.number, &format!("{MARKER}\nTask {} {how}{why}.", task_link(state, &task))).await?;
            told.end_told = true;
        }
        if told != issue {
            let tid = task.id.clone();
            transact(state, move |tx, _| {
                let mut t = baton_domain::resolve::task(tx, &tid)?;
                t.issue = Some(told);
                baton_domain::scheduler::emit_task(tx, &t)?;
                Ok::<_, Error>(())
            })
            .await?;
        }
    }
    Ok(())
}

/// Without a webhook: looks at the labelled issues and the new comments,
/// conditionally (what did not change costs no rate limit).
pub(crate) async fn poll(
    state: &Arc<AppState>,
    project: &Project,
    github: &GitHub,
    memory: &mut super::follow::Memory,
) -> Result<(), Error> {
    let key = project.id.to_string();
    let etag = memory.issue_etags.get(&key).cloned();
    if let super::github::Fresh::New(issues, tag) = github.labeled(&label(project), etag.as_deref()).await? {
        memory.issue_etags.insert(key.clone(), tag.unwrap_or_default());
        for issue in issues {
            labeled(state, project, &issue).await?;
        }
    }
    let since = memory.comments_since.entry(key.clone()).or_insert_with(|| Timestamp::now().to_rfc3339()).clone();
    if let super::github::Fresh::New(comments, _) = github.comments_since(&since, None).await? {
        for c in comments {
            let number = c["issue_url"].as_str().and_then(|u| u.rsplit('/').next()).and_then(|n| n.parse::<u64>().ok());
            let Some(number) = number else { continue };
            let issue = github.issue(number).await?;
            commented(state, project, &issue, &c).await?;
        }
    }
    Ok(())
}
