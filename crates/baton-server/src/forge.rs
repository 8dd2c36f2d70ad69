//! Pull requests on the project's forge (GitHub): a task's branch pushed to the
//! project's remote and proposed as a pull request, followed through GitHub's
//! webhook (or polls, with conditional requests), and merged through the API
//! when the project says `merge_via = "forge"`.
//!
//! What the forge says goes back to the task's agent as the next turn of its
//! session (a failed check run with its job's log; a review requesting changes
//! with its comments), bounded by `fix_attempts`; the fix is pushed to the same
//! pull request once it passes the task's own checks. A pull request merged on
//! the forge marks the task merged.
//!
//! The token is read by the coordinator from the variable `token_env` names and
//! never reaches an agent: pushes and API calls happen here, not in worktrees.

pub mod github;

use std::sync::Arc;
use std::time::Duration;

use baton_core::api::ErrorCode;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::TaskId;
use baton_core::model::{MergeState, MergeStrategy, PrState, Project, PullRequest, ReviewComment, Task};
use baton_core::status::TaskStatus;
use baton_store::{StoreRead, StoreTx, TaskFilter};
use serde_json::{Value, json};

use crate::error::AppError;
use crate::resolve;
use crate::scheduler::{emit_task, loops};
use crate::state::AppState;
use github::{Fresh, GitHub};

/// How often the worker looks for pushes and pull requests to open when
/// nothing wakes it.
const LOOK: Duration = Duration::from_secs(15);

/// The default seconds between polls of a project's open pull requests.
const DEFAULT_POLL_S: u64 = 60;

/// How much of a failed job's log goes back to the agent.
const LOG_TO_AGENT: usize = 8000;

/// The forge client of a project, or why there is none.
fn client(project: &Project) -> Result<GitHub, AppError> {
    let forge = project.settings.forge.as_ref().ok_or_else(|| {
        AppError::conflict(format!(
            "project {} names no forge; add a [forge] section (kind = \"github\", repo = \"owner/name\") to its .baton/config.toml",
            project.name
        ))
    })?;
    GitHub::new(forge)
}

/// Says at start what would stop each project's pull requests: a token
/// variable that is not set. The warnings, for `baton up` to print.
pub fn check_configuration(projects: &[Project]) -> Vec<String> {
    let mut warnings = Vec::new();
    for p in projects {
        let Some(forge) = &p.settings.forge else { continue };
        if let Err(e) = GitHub::new(forge) {
            warnings.push(format!("project {}: {}", p.name, e.message));
        }
    }
    warnings
}

/// Pushes `sha` to the task's branch on the project's remote.
async fn push(project: &Project, branch: &str, sha: &str) -> Result<(), AppError> {
    let remote = project.settings.forge.as_ref().map_or("origin", |f| f.remote());
    let git = baton_git::Git::new(&project.path);
    let (exists, _) = git.probe(["remote", "get-url", remote]).await.map_err(AppError::internal)?;
    if !exists {
        return Err(AppError::conflict(format!(
            "the repository {} has no remote named {remote:?} (`git remote add {remote} URL`, or set [forge] remote)",
            project.path
        )));
    }
    let refspec = format!("{sha}:refs/heads/{branch}");
    git.run(["push", "--quiet", remote, &refspec]).await.map_err(|e| match e {
        baton_git::GitError::Failed { stderr, .. } => {
            AppError::conflict(format!("could not push {branch} to {remote}: {}", stderr.trim()))
        }
        other => AppError::internal(other),
    })?;
    Ok(())
}

/// The pull request's description: the result, the checks, the review, the
/// cost, and a link back.
fn pr_body(task: &Task, public_url: &str) -> String {
    let mut body = String::new();
    if let Some(result) = task.result.as_deref().filter(|r| !r.trim().is_empty()) {
        body.push_str(result.trim());
        body.push_str("\n\n");
    }
    body.push_str("---\n\n");
    if !task.check_results.is_empty() {
        body.push_str("**Checks**\n\n");
        for c in &task.check_results {
            let mark = if c.passed { "✅" } else { "❌" };
            body.push_str(&format!("- {mark} `{}` ({:.1} s)\n", c.command, c.duration_ms as f64 / 1000.0));
        }
        body.push('\n');
    }
    if let Some(r) = task.loops.reviews.last()
        && let Some(v) = r.verdict
    {
        let said = match v {
            baton_core::model::Verdict::Approve => "approved",
            baton_core::model::Verdict::ChangesRequested => "still requests changes",
        };
        body.push_str(&format!("**Review**: {} {said}\n\n", r.reviewer));
    }
    let u = &task.usage;
    body.push_str(&format!(
        "**Cost**: ${:.4} ({} tokens in, {} out), agent `{}`\n\n",
        u.cost_usd, u.input_tokens, u.output_tokens, task.agent
    ));
    body.push_str(&format!(
        "**Baton task**: [{}]({}/#/tasks/{})\n",
        task.id,
        public_url.trim_end_matches('/'),
        task.id
    ));
    body
}

/// Pushes a task's branch and opens its pull request (`baton pr`); the task
/// with its pull request recorded.
pub async fn open_pr(state: &Arc<AppState>, id: TaskId) -> Result<Task, AppError> {
    let (task, project) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &id)?;
            let project = resolve::project(r, &task.project_id)?;
            Ok::<_, AppError>((task, project))
        })
        .await?;
    let github = client(&project)?;
    crate::projects::require_repository(&project)?;
    if let Some(pr) = task.pr.as_ref().filter(|p| p.state == PrState::Open) {
        return Err(AppError::new(
            ErrorCode::AlreadyExists,
            format!("task {} already has pull request #{} ({})", task.id, pr.number, pr.url),
        ));
    }
    if task.status != TaskStatus::Succeeded {
        return Err(AppError::conflict(format!(
            "task {} is {}; only a succeeded task is proposed as a pull request",
            task.id, task.status
        )));
    }
    let (Some(branch), Some(head)) = (task.git.branch.clone(), task.git.head.clone()) else {
        return Err(AppError::conflict(format!("task {} has no commits; there is nothing to propose", task.id)));
    };
    if task.git.commits.is_empty() {
        return Err(AppError::conflict(format!("task {} has no commits; there is nothing to propose", task.id)));
    }
    let base = task.git.base_branch.clone().unwrap_or_else(|| project.default_branch.clone());
    push(&project, &branch, &head).await?;
    let pull = github.create_pull(&task.title, &branch, &base, &pr_body(&task, &state.config.public_url)).await?;
    let pr = PullRequest {
        number: pull.number,
        url: pull.html_url.clone(),
        state: PrState::Open,
        base,
        pushed: Some(head),
        ..PullRequest::default()
    };
    let text = format!("opened pull request #{} ({})", pr.number, pr.url);
    let tid = task.id.clone();
    crate::transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &tid)?;
        task.pr = Some(pr);
        tell(tx, &task, "pr", text, Value::Null)?;
        emit_task(tx, &task)?;
        Ok(task)
    })
    .await
}

/// Records a pull request step on the task's timeline.
fn tell(tx: &mut dyn StoreTx, task: &Task, kind: &str, message: String, detail: Value) -> Result<(), AppError> {
    tracing::info!(task = %task.id, "{message}");
    let data = json!({ "message": message, "loop": { "kind": kind, "detail": detail } });
    tx.append_event(task.session_id.as_ref(), None, Some(&task.id), NewEvent::new(EventKind::Log, data))?;
    Ok(())
}

/// Merges a task's pull request through the forge's API (`merge_via = "forge"`).
/// A refusal (branch protection, a required check) is reported in the forge's
/// words and changes nothing.
pub async fn merge(
    state: &Arc<AppState>,
    project: &Project,
    task: Task,
    strategy: MergeStrategy,
) -> Result<Task, AppError> {
    let github = client(project)?;
    let pr = task.pr.clone().filter(|p| p.state == PrState::Open).ok_or_else(|| {
        AppError::conflict(format!(
            "task {} has no open pull request, and its project merges through the forge; `baton pr {}` opens one",
            task.id, task.id
        ))
    })?;
    let sha = github.merge_pull(pr.number, strategy, pr.pushed.as_deref()).await?;
    let tid = task.id.clone();
    crate::transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &tid)?;
        mark_merged(tx, &mut task, Some(sha), "merged through the forge's API")?;
        Ok(task)
    })
    .await
}

/// The task merged on the forge: recorded as merged.
fn mark_merged(tx: &mut dyn StoreTx, task: &mut Task, sha: Option<String>, how: &str) -> Result<(), AppError> {
    let Some(pr) = task.pr.as_mut() else { return Ok(()) };
    pr.state = PrState::Merged;
    let text = format!("pull request #{} {how}", pr.number);
    task.git.merge = MergeState::Merged;
    task.git.merged_commit = sha;
    task.updated_at = baton_core::Timestamp::now();
    tell(tx, task, "pr", text, Value::Null)?;
    emit_task(tx, task)?;
    Ok(())
}

/// The forge's worker, on the timers' leader: pushes fixes to open pull
/// requests, opens those `auto_pr` asks for, and polls open ones.
pub(crate) async fn worker(state: Arc<AppState>) {
    let mut polled: std::collections::HashMap<String, tokio::time::Instant> = Default::default();
    loop {
        let mut wait = LOOK;
        if state.is_leader() {
            match pass(&state, &mut polled).await {
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
async fn pass(
    state: &Arc<AppState>,
    polled: &mut std::collections::HashMap<String, tokio::time::Instant>,
) -> Result<Duration, AppError> {
    let work = state
        .store
        .read(|r| {
            let mut work = Vec::new();
            for project in r.projects()?.into_iter().filter(|p| p.settings.forge.is_some()) {
                let tasks = followed(r, &project)?;
                work.push((project, tasks));
            }
            Ok::<_, AppError>(work)
        })
        .await?;
    let mut next = LOOK;
    for (project, tasks) in work {
        let Ok(github) = client(&project) else { continue };
        let poll_s = project.settings.forge.as_ref().and_then(|f| f.poll_s).unwrap_or(DEFAULT_POLL_S);
        if poll_s > 0 {
            next = next.min(Duration::from_secs(poll_s));
        }
        let due =
            poll_s > 0 && polled.get(project.id.as_str()).is_none_or(|at| at.elapsed() >= Duration::from_secs(poll_s));
        if due {
            polled.insert(project.id.to_string(), tokio::time::Instant::now());
        }
        for task in tasks {
            let id = task.id.clone();
            if let Err(e) = follow(state, &github, &project, task, due).await {
                tracing::warn!(task = %id, error = %e.message, "could not follow the task's pull request");
            }
        }
    }
    Ok(next)
}

/// The tasks of a project the worker looks after: succeeded ones with an open
/// pull request, or waiting for one (`auto_pr`).
fn followed(r: &dyn StoreRead, project: &Project) -> Result<Vec<Task>, AppError> {
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

/// Brings one task's pull request up to date: opened, its new commits pushed,
/// and (when `poll`) what the forge says acted on.
async fn follow(
    state: &Arc<AppState>,
    github: &GitHub,
    project: &Project,
    task: Task,
    poll: bool,
) -> Result<(), AppError> {
    let Some(pr) = task.pr.clone() else {
        open_pr(state, task.id.clone()).await?;
        return Ok(());
    };
    if let (Some(branch), Some(head)) = (&task.git.branch, &task.git.head)
        && pr.pushed.as_ref() != Some(head)
    {
        push(project, branch, head).await?;
        let (tid, head) = (task.id.clone(), head.clone());
        crate::transact(state, move |tx, _| {
            let mut task = resolve::task(tx, &tid)?;
            if let Some(pr) = task.pr.as_mut() {
                pr.pushed = Some(head.clone());
                let text = format!("pushed {} to pull request #{}", &head[..head.len().min(12)], pr.number);
                tell(tx, &task, "pr", text, Value::Null)?;
            }
            emit_task(tx, &task)?;
            Ok(())
        })
        .await?;
        return Ok(());
    }
    if poll {
        poll_pr(state, github, &task, &pr).await?;
    }
    Ok(())
}

/// Reads a pull request, its head's check runs and its reviews (each only when
/// changed), and acts on what is new.
async fn poll_pr(state: &Arc<AppState>, github: &GitHub, task: &Task, pr: &PullRequest) -> Result<(), AppError> {
    let etag = |key: &str| pr.etags.get(key).map(String::as_str);
    let mut tags = Vec::new();
    if let Fresh::New(pull, tag) = github.pull(pr.number, etag("pull")).await? {
        if pull.merged {
            return on_merged(state, task.id.clone(), pull.merge_commit_sha).await;
        }
        if pull.state == "closed" {
            return on_closed(state, task.id.clone()).await;
        }
        tags.push(("pull".to_owned(), tag));
    }
    if let Some(sha) = &pr.pushed {
        let key = format!("checks:{sha}");
        if let Fresh::New(runs, tag) = github.check_runs(sha, etag(&key)).await? {
            for run in runs.iter().filter(|r| r.failed() && !pr.handled.contains(&r.id)) {
                let log = github.check_log(run).await;
                on_failed_check(state, task.id.clone(), run.id, run.name.clone(), log).await?;
            }
            tags.push((key, tag));
        }
    }
    if let Fresh::New(reviews, tag) = github.reviews(pr.number, etag("reviews")).await? {
        for review in reviews.iter().filter(|r| r.state == "CHANGES_REQUESTED" && !pr.handled.contains(&r.id)) {
            let comments = github.review_comments(pr.number, review.id).await?;
            let who = review.user.as_ref().map_or("a reviewer".to_owned(), |u| u.login.clone());
            on_changes_requested(state, task.id.clone(), review.id, who, review.body.clone(), comments).await?;
        }
        tags.push(("reviews".to_owned(), tag));
    }
    remember_etags(state, &task.id, tags).await
}

/// Keeps the ETags of what a poll read, so the next poll asks only for changes.
/// An answer acted on is read again (its ETag is not kept) until the action
/// took (the task was busy, say).
async fn remember_etags(
    state: &Arc<AppState>,
    id: &TaskId,
    tags: Vec<(String, Option<String>)>,
) -> Result<(), AppError> {
    if tags.is_empty() {
        return Ok(());
    }
    let id = id.clone();
    crate::transact(state, move |tx, _| {
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

async fn on_merged(state: &Arc<AppState>, id: TaskId, sha: Option<String>) -> Result<(), AppError> {
    crate::transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &id)?;
        if task.git.merge != MergeState::Merged {
            mark_merged(tx, &mut task, sha, "was merged on the forge")?;
        }
        Ok(())
    })
    .await
}

async fn on_closed(state: &Arc<AppState>, id: TaskId) -> Result<(), AppError> {
    crate::transact(state, move |tx, _| {
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

async fn on_failed_check(
    state: &Arc<AppState>,
    id: TaskId,
    check: u64,
    name: String,
    log: String,
) -> Result<(), AppError> {
    crate::transact(state, move |tx, fx| {
        let mut task = resolve::task(tx, &id)?;
        let log = github::tail(log.trim_end(), LOG_TO_AGENT);
        let message = format!(
            "The CI of your pull request failed: check `{name}`. Fix what it reports, commit, and keep your own \
             checks passing; your fix is pushed to the same pull request.\n\nThe end of its log:\n\n```\n{log}\n```\n"
        );
        let summary = format!("CI check {name} failed on the pull request");
        loops::forge_feedback(tx, fx, &mut task, check, summary, message)
    })
    .await
    .map(|_| ())
}

async fn on_changes_requested(
    state: &Arc<AppState>,
    id: TaskId,
    review: u64,
    who: String,
    body: Option<String>,
    comments: Vec<ReviewComment>,
) -> Result<(), AppError> {
    crate::transact(state, move |tx, fx| {
        let mut task = resolve::task(tx, &id)?;
        let mut message = format!(
            "{who} reviewed your pull request and requests changes. Address each point, commit, and keep the \
             checks passing; your fix is pushed to the same pull request.\n\n"
        );
        if let Some(body) = body.as_deref().filter(|b| !b.trim().is_empty()) {
            message.push_str(&format!("{}\n\n", body.trim()));
        }
        message.push_str(&loops::comment_list(&comments));
        let summary = format!("{who} requested changes on the pull request ({} comments)", comments.len());
        loops::forge_feedback(tx, fx, &mut task, review, summary, message)
    })
    .await
    .map(|_| ())
}

/// `POST /api/forge/github`: a webhook from GitHub, verified with the
/// `X-Hub-Signature-256` of the project whose `[forge] repo` it names. Events
/// Baton does not use are acknowledged and ignored.
pub async fn github_webhook(
    state: &Arc<AppState>,
    event: &str,
    signature: &str,
    body: &[u8],
) -> Result<Value, AppError> {
    let payload: Value = serde_json::from_slice(body)
        .map_err(|e| AppError::new(ErrorCode::MalformedJson, format!("the webhook's body is not JSON: {e}")))?;
    let repo = payload["repository"]["full_name"].as_str().unwrap_or_default().to_owned();
    let projects = state.store.read(|r| r.projects()).await?;
    let project = projects
        .into_iter()
        .filter(|p| p.settings.forge.as_ref().is_some_and(|f| f.repo.eq_ignore_ascii_case(&repo)))
        .find(|p| verifies(p, signature, body))
        .ok_or_else(|| {
            tracing::warn!(repo, event, "a forge webhook whose signature no project's secret verifies");
            AppError::new(ErrorCode::Unauthorized, "the webhook's X-Hub-Signature-256 does not verify")
        })?;
    let ignored = |why: &str| {
        tracing::info!(event, repo, "forge webhook ignored: {why}");
        Ok(json!({ "ignored": why }))
    };
    match event {
        "ping" => Ok(json!({ "ok": true })),
        "pull_request" if payload["action"] == "closed" => {
            let Some(task) = pr_task(state, &project, payload["pull_request"]["number"].as_u64()).await? else {
                return ignored("no task has this pull request");
            };
            if payload["pull_request"]["merged"] == true {
                let sha = payload["pull_request"]["merge_commit_sha"].as_str().map(str::to_owned);
                on_merged(state, task.id, sha).await?;
            } else {
                on_closed(state, task.id).await?;
            }
            Ok(json!({ "ok": true }))
        }
        "check_run" if payload["action"] == "completed" => {
            let run: github::CheckRun = serde_json::from_value(payload["check_run"].clone())
                .map_err(|e| AppError::invalid(format!("the check_run is not in GitHub's shape: {e}")))?;
            if !run.failed() {
                return ignored("the check run did not fail");
            }
            let number = payload["check_run"]["pull_requests"][0]["number"].as_u64();
            let Some(task) = pr_task(state, &project, number).await? else {
                return ignored("no task has this check run's pull request");
            };
            let log = client(&project)?.check_log(&run).await;
            on_failed_check(state, task.id, run.id, run.name, log).await?;
            Ok(json!({ "ok": true }))
        }
        "pull_request_review" if payload["action"] == "submitted" => {
            if payload["review"]["state"] != "changes_requested" {
                return ignored("the review does not request changes");
            }
            let number = payload["pull_request"]["number"].as_u64();
            let Some(task) = pr_task(state, &project, number).await? else {
                return ignored("no task has this pull request");
            };
            let review = payload["review"]["id"].as_u64().unwrap_or_default();
            let comments = client(&project)?.review_comments(number.unwrap_or_default(), review).await?;
            let who = payload["review"]["user"]["login"].as_str().unwrap_or("a reviewer").to_owned();
            let body = payload["review"]["body"].as_str().map(str::to_owned);
            on_changes_requested(state, task.id, review, who, body, comments).await?;
            Ok(json!({ "ok": true }))
        }
        _ => ignored("not an event Baton acts on"),
    }
}

/// Whether a webhook's signature verifies with the project's secret.
fn verifies(project: &Project, signature: &str, body: &[u8]) -> bool {
    let Some(var) = project.settings.forge.as_ref().and_then(|f| f.webhook_secret_env.as_deref()) else {
        return false;
    };
    let Some(secret) = std::env::var(var).ok().filter(|s| !s.is_empty()) else { return false };
    let Some(given) = signature.strip_prefix("sha256=").and_then(hex) else { return false };
    let expected = crate::signature::hmac_sha256(secret.as_bytes(), body);
    crate::signature::same(&given, &expected)
}

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok()).collect()
}

/// The task of a project whose pull request has `number`.
async fn pr_task(state: &Arc<AppState>, project: &Project, number: Option<u64>) -> Result<Option<Task>, AppError> {
    let Some(number) = number else { return Ok(None) };
    let pid = project.id.clone();
    state
        .store
        .read(move |r| {
            let tasks = r.tasks(&TaskFilter { project: Some(pid), ..Default::default() })?;
            Ok::<_, AppError>(tasks.into_iter().find(|t| t.pr.as_ref().is_some_and(|p| p.number == number)))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_variable_that_is_not_set_is_said_at_start() {
        let mut project: Project = serde_json::from_value(json!({
            "id": "p-1a2b3c4d5e", "name": "widgets", "path": "/r", "default_branch": "main",
            "created_at": "2026-12-05T00:00:00Z",
            "settings": { "forge": { "repo": "acme/widgets", "token_env": "BATON_TEST_SURELY_UNSET_TOKEN" } }
        }))
        .unwrap();
        let warnings = check_configuration(std::slice::from_ref(&project));
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].starts_with(
                "project widgets: [forge] token_env names BATON_TEST_SURELY_UNSET_TOKEN, which is not set"
            ),
            "{}",
            warnings[0]
        );
        project.settings.forge = None;
        assert!(check_configuration(&[project]).is_empty());
    }

    #[test]
    fn hex_signatures_are_read_strictly() {
        assert_eq!(hex(&"ab".repeat(32)).map(|v| v.len()), Some(32));
        assert!(hex("abc").is_none());
        assert!(hex(&"zz".repeat(32)).is_none());
        assert!(hex(&"é".repeat(32)).is_none());
    }

    #[test]
    fn a_pull_requests_body_carries_result_checks_cost_and_link() {
        let mut task: Task = serde_json::from_value(json!({
            "id": "t-1a2b3c4d5e", "project_id": "p-1a2b3c4d5e", "title": "t", "prompt": "p", "agent": "claude",
            "status": "succeeded", "created_at": "2026-12-05T00:00:00Z", "updated_at": "2026-12-05T00:00:00Z",
            "result": "Added the flag.", "usage": { "input_tokens": 10, "output_tokens": 5, "cost_usd": 0.25 },
            "check_results": [{ "command": "cargo test", "exit_code": 0, "passed": true, "duration_ms": 1500, "output_tail": "" }]
        }))
        .unwrap();
        task.loops.fix_attempts = 2;
        let body = pr_body(&task, "https://baton.example.com/");
        assert!(body.starts_with("Added the flag.\n\n---"), "{body}");
        assert!(body.contains("- ✅ `cargo test` (1.5 s)"), "{body}");
        assert!(body.contains("**Cost**: $0.2500 (10 tokens in, 5 out), agent `claude`"), "{body}");
        assert!(body.contains("[t-1a2b3c4d5e](https://baton.example.com/#/tasks/t-1a2b3c4d5e)"), "{body}");
    }
}
