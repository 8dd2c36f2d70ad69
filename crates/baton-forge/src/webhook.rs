//! `POST /api/forge/github`: GitHub's webhook. No Baton token: the
//! `X-Hub-Signature-256` of the secret of a project whose `[forge] repo` the
//! payload names authenticates it. Events Baton does not act on are
//! acknowledged, logged and ignored.

use std::sync::Arc;

use baton_core::model::{Project, Task};
use baton_store::TaskFilter;
use serde_json::{Value, json};

use super::client;
use super::follow::{check_feedback, closed, give, merged, review_feedback, trusted};
use super::github::CheckRun;
use baton_domain::signature::{hmac_sha256, same};
use baton_domain::{AppState, Error};

/// Why a delivery of GitHub's webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// GitHub sends form-encoded payloads unless told otherwise.
    #[error("set the GitHub webhook's content type to application/json")]
    FormEncoded,
    /// The body does not parse.
    #[error("the webhook's body is not JSON: {0}")]
    NotJson(serde_json::Error),
    /// No project's secret verifies the signature.
    #[error("the webhook's X-Hub-Signature-256 does not verify")]
    Unverified,
    /// Acting on it failed.
    #[error(transparent)]
    Domain(#[from] Error),
}

impl From<baton_store::StoreError> for WebhookError {
    fn from(e: baton_store::StoreError) -> Self {
        WebhookError::Domain(e.into())
    }
}

/// Acts on one delivery; what was done (or why it was ignored).
pub async fn github_webhook(
    state: &Arc<AppState>,
    event: &str,
    content_type: &str,
    signature: &str,
    body: &[u8],
) -> Result<Value, WebhookError> {
    if content_type.starts_with("application/x-www-form-urlencoded") {
        return Err(WebhookError::FormEncoded);
    }
    let payload: Value = serde_json::from_slice(body).map_err(WebhookError::NotJson)?;
    let repo = payload["repository"]["full_name"].as_str().unwrap_or_default().to_owned();
    let projects = verified(state, &repo, signature, body).await?;
    let ignored = |why: &str| {
        tracing::info!(event, repo, "forge webhook ignored: {why}");
        Ok(json!({ "ignored": why }))
    };
    let number = match event {
        "check_run" => payload["check_run"]["pull_requests"][0]["number"].as_u64(),
        _ => payload["pull_request"]["number"].as_u64(),
    };
    match event {
        "ping" => Ok(json!({ "ok": true })),
        "issues" if matches!(payload["action"].as_str(), Some("labeled" | "opened")) => {
            let Some(project) = projects.first() else { return ignored("no project") };
            Ok(super::issues::labeled(state, project, &payload["issue"]).await?)
        }
        "issue_comment" if payload["action"] == "created" => {
            let Some(project) = projects.first() else { return ignored("no project") };
            Ok(super::issues::commented(state, project, &payload["issue"], &payload["comment"]).await?)
        }
        "pull_request" if payload["action"] == "closed" => {
            let Some((_, task)) = pr_task(state, &projects, number).await? else {
                return ignored("no task has this pull request");
            };
            if payload["pull_request"]["merged"] == true {
                let sha = payload["pull_request"]["merge_commit_sha"].as_str().map(str::to_owned);
                merged(state, task.id, sha).await?;
            } else {
                closed(state, task.id).await?;
            }
            Ok(json!({ "ok": true }))
        }
        "check_run" if payload["action"] == "completed" => {
            let run: CheckRun = serde_json::from_value(payload["check_run"].clone())
                .map_err(|e| Error::invalid(format!("the check_run is not in GitHub's shape: {e}")))?;
            if !run.failed() {
                return ignored("the check run did not fail");
            }
            let Some((project, task)) = pr_task(state, &projects, number).await? else {
                return ignored("no task has this check run's pull request");
            };
            if task.pr.as_ref().and_then(|p| p.pushed.as_deref()) != Some(run.head_sha.as_str()) {
                return ignored("the check run is of a commit the pull request no longer has");
            }
            let log = client(&project)?.check_log(&run).await;
            give(state, task.id, vec![check_feedback(&run, &log)]).await?;
            Ok(json!({ "ok": true }))
        }
        "pull_request_review" if payload["action"] == "submitted" => {
            let review = &payload["review"];
            if review["state"] != "changes_requested" {
                return ignored("the review does not request changes");
            }
            if !trusted(review["author_association"].as_str()) {
                return ignored("the reviewer is not the repository's owner, a member or a collaborator");
            }
            let Some((project, task)) = pr_task(state, &projects, number).await? else {
                return ignored("no task has this pull request");
            };
            let id = review["id"].as_u64().unwrap_or_default();
            let comments = client(&project)?.review_comments(number.unwrap_or_default(), id).await?;
            let who = review["user"]["login"].as_str().unwrap_or("a reviewer");
            give(state, task.id, vec![review_feedback(id, who, review["body"].as_str(), &comments)]).await?;
            Ok(json!({ "ok": true }))
        }
        _ => ignored("not an event Baton acts on"),
    }
}

/// The projects of `repo` whose webhook secret verifies the signature (several
/// projects may share a repository and a secret).
async fn verified(
    state: &Arc<AppState>,
    repo: &str,
    signature: &str,
    body: &[u8],
) -> Result<Vec<Project>, WebhookError> {
    let refused = || WebhookError::Unverified;
    let of_repo: Vec<Project> = state
        .store
        .read(|r| r.projects())
        .await?
        .into_iter()
        .filter(|p| p.settings.forge.as_ref().is_some_and(|f| f.repo.eq_ignore_ascii_case(repo)))
        .collect();
    if of_repo.is_empty() {
        tracing::warn!(repo, "a forge webhook for a repository no project's [forge] names");
        return Err(refused());
    }
    let mut unset = false;
    let mut verified = Vec::new();
    for p in of_repo {
        match secret(&p) {
            None => unset = true,
            Some(secret) if signed(&secret, signature, body) => verified.push(p),
            Some(_) => {}
        }
    }
    if verified.is_empty() {
        match unset {
            true => tracing::warn!(repo, "a forge webhook, but the project's webhook_secret_env is not set"),
            false => tracing::warn!(repo, "a forge webhook whose X-Hub-Signature-256 does not verify"),
        }
        return Err(refused());
    }
    Ok(verified)
}

/// The project's webhook secret, from the variable its config names.
fn secret(project: &Project) -> Option<String> {
    let var = project.settings.forge.as_ref()?.webhook_secret_env.as_deref()?;
    std::env::var(var).ok().filter(|s| !s.is_empty())
}

/// Whether `signature` (`sha256=HEX`) is the HMAC-SHA256 of `body` with `secret`.
fn signed(secret: &str, signature: &str, body: &[u8]) -> bool {
    let Some(given) = signature.strip_prefix("sha256=").and_then(hex) else { return false };
    let expected = hmac_sha256(secret.as_bytes(), body);
    given.len() == expected.len() && same(&given, &expected)
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The task (and its project) among `projects` whose pull request has `number`.
async fn pr_task(
    state: &Arc<AppState>,
    projects: &[Project],
    number: Option<u64>,
) -> Result<Option<(Project, Task)>, Error> {
    let Some(number) = number else { return Ok(None) };
    let projects = projects.to_vec();
    state
        .store
        .read(move |r| {
            for p in projects {
                let tasks = r.tasks(&TaskFilter { project: Some(p.id.clone()), ..Default::default() })?;
                if let Some(t) = tasks.into_iter().find(|t| t.pr.as_ref().is_some_and(|pr| pr.number == number)) {
                    return Ok::<_, Error>(Some((p, t)));
                }
            }
            Ok(None)
        })
        .await
}

/// `POST /api/forge/gitlab`: GitLab's webhook. No Baton token: the
/// `X-Gitlab-Token` must be the secret in the variable the project's
/// `[forge] webhook_secret_env` names (401 otherwise, and nothing changes).
/// Merge request hooks mark tasks merged or closed; a failed pipeline goes
/// back to the agent with its failed jobs' traces; notes on a task's merge
/// request go back as review feedback (`@baton …` as its next turn); issues
/// with the trigger label and `@baton` notes on issues start tasks.
pub async fn gitlab_webhook(
    state: &Arc<AppState>,
    event: &str,
    token: &str,
    body: &[u8],
) -> Result<Value, WebhookError> {
    let payload: Value = serde_json::from_slice(body).map_err(WebhookError::NotJson)?;
    let path = payload["project"]["path_with_namespace"].as_str().unwrap_or_default().to_owned();
    let id = payload["project"]["id"].as_u64().map(|i| i.to_string()).unwrap_or_default();
    let projects: Vec<Project> = state
        .store
        .read(|r| r.projects())
        .await?
        .into_iter()
        .filter(|p| {
            p.settings.forge.as_ref().is_some_and(|f| {
                f.kind == baton_core::model::ForgeKind::Gitlab && (f.repository() == path || f.repository() == id)
            })
        })
        .filter(|p| secret(p).is_some_and(|s| s.len() == token.len() && same(s.as_bytes(), token.as_bytes())))
        .collect();
    let Some(project) = projects.first().cloned() else {
        tracing::warn!(project = %path, "a GitLab webhook whose X-Gitlab-Token does not match");
        return Err(WebhookError::Unverified);
    };
    let ignored = |why: &str| Ok(json!({ "ignored": why }));
    let attrs = &payload["object_attributes"];
    match event {
        "Merge Request Hook" => {
            let Some((_, task)) = pr_task(state, &projects, attrs["iid"].as_u64()).await? else {
                return ignored("no task has this merge request");
            };
            match (attrs["action"].as_str(), attrs["state"].as_str()) {
                (Some("merge"), _) | (_, Some("merged")) => {
                    merged(state, task.id, attrs["merge_commit_sha"].as_str().map(str::to_owned)).await?
                }
                (Some("close"), _) => closed(state, task.id).await?,
                _ => return ignored("not a merge or a close"),
            }
            Ok(json!({ "ok": true }))
        }
        "Pipeline Hook" if attrs["status"] == "failed" => {
            let sha = attrs["sha"].as_str().unwrap_or_default().to_owned();
            let number = payload["merge_request"]["iid"].as_u64();
            let task = match pr_task(state, &projects, number).await? {
                Some((_, t)) => Some(t),
                None => pushed_task(state, &project, &sha).await?,
            };
            let Some(task) = task else { return ignored("no task pushed this commit") };
            let github = client(&project)?;
            let mut feedback = Vec::new();
            for b in payload["builds"].as_array().into_iter().flatten().filter(|b| b["status"] == "failed") {
                let run = super::gitlab::job(b, &sha);
                let log = github.check_log(&run).await;
                feedback.push(check_feedback(&run, &log));
            }
            if feedback.is_empty() {
                return ignored("no failed job");
            }
            give(state, task.id, feedback).await?;
            Ok(json!({ "ok": true }))
        }
        "Note Hook" => gitlab_note(state, &project, &projects, &payload).await,
        "Issue Hook" => {
            let mut issue = attrs.clone();
            issue["labels"] = payload["labels"].clone();
            Ok(super::issues::labeled(state, &project, &super::gitlab::issue(&issue)).await?)
        }
        _ => ignored("not an event Baton acts on"),
    }
}

/// A note: on a task's merge request, review feedback (or, with `@baton`, the
/// task's next turn); on an issue, `@baton` starts a task. From someone who
/// may push only.
async fn gitlab_note(
    state: &Arc<AppState>,
    project: &Project,
    projects: &[Project],
    payload: &Value,
) -> Result<Value, WebhookError> {
    let attrs = &payload["object_attributes"];
    let body = attrs["note"].as_str().unwrap_or_default();
    if body.contains(super::issues::MARKER) || attrs["system"] == true {
        return Ok(json!({ "ignored": "Baton's own note" }));
    }
    let github = client(project)?;
    let author = payload["user"]["id"].as_u64().unwrap_or_default();
    let member = super::gitlab::may_push(&github, author).await;
    let who = payload["user"]["username"].as_str().unwrap_or("someone").to_owned();
    let note_id = attrs["id"].as_u64().unwrap_or_default();
    match attrs["noteable_type"].as_str() {
        Some("MergeRequest") => {
            if !member {
                return Ok(json!({ "ignored": "the author may not push to the project" }));
            }
            let Some((_, task)) = pr_task(state, projects, payload["merge_request"]["iid"].as_u64()).await? else {
                return Ok(json!({ "ignored": "no task has this merge request" }));
            };
            let comment =
                json!({ "id": note_id, "body": body, "author_association": "MEMBER", "user": { "login": who } });
            if body.to_ascii_lowercase().contains(super::issues::MENTION) {
                let issue = json!({ "number": payload["merge_request"]["iid"], "pull_request": {} });
                return Ok(super::issues::commented(state, project, &issue, &comment).await?);
            }
            give(state, task.id, vec![review_feedback(note_id, &who, Some(body), &[])]).await?;
            Ok(json!({ "ok": true }))
        }
        Some("Issue") => {
            let association = if member { "MEMBER" } else { "NONE" };
            let comment =
                json!({ "id": note_id, "body": body, "author_association": association, "user": { "login": who } });
            let mut issue = payload["issue"].clone();
            issue["labels"] = json!([]);
            Ok(super::issues::commented(state, project, &super::gitlab::issue(&issue), &comment).await?)
        }
        _ => Ok(json!({ "ignored": "a note on something else" })),
    }
}

/// The task whose pull request's pushed head is `sha`.
async fn pushed_task(state: &Arc<AppState>, project: &Project, sha: &str) -> Result<Option<Task>, Error> {
    let (id, sha) = (project.id.clone(), sha.to_owned());
    state
        .store
        .read(move |r| {
            let tasks = r.tasks(&TaskFilter { project: Some(id), ..Default::default() })?;
            Ok(tasks.into_iter().find(|t| t.pr.as_ref().and_then(|p| p.pushed.as_deref()) == Some(sha.as_str())))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_read_strictly() {
        assert_eq!(hex(&"ab".repeat(32)).map(|v| v.len()), Some(32));
        assert!(hex("abc").is_none());
        assert!(hex(&"zz".repeat(32)).is_none());
        assert!(hex(&"é".repeat(32)).is_none());
        // GitHub's documented example.
        let sig = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
        assert!(signed("It's a Secret to Everybody", sig, b"Hello, World!"));
        assert!(!signed("It's a Secret to Everybody", sig, b"Hello, World?"));
        assert!(!signed("another", sig, b"Hello, World!"));
        assert!(!signed("It's a Secret to Everybody", &sig[7..], b"Hello, World!"));
    }
}
