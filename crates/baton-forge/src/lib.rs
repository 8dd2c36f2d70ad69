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

mod follow;
pub mod github;
mod gitlab;
pub mod issues;
mod webhook;
mod worksets;

pub use follow::worker;
pub use webhook::{WebhookError, github_webhook, gitlab_webhook};

use std::sync::Arc;
use std::time::Duration;

use baton_core::ids::TaskId;
use baton_core::model::{MergeStrategy, PrState, Project, PullRequest, Task};
use baton_core::status::TaskStatus;
use baton_store::StoreTx;
use serde_json::Value;

use baton_domain::forge::ForgeFuture;
use baton_domain::scheduler::emit_task;
use baton_domain::{AppState, Error, Forge, resolve, transact};
use github::GitHub;

/// How often the worker looks for pushes and pull requests to open when
/// nothing wakes it.
const LOOK: Duration = Duration::from_secs(15);

/// The default seconds between polls of a project's open pull requests.
const DEFAULT_POLL_S: u64 = 60;

/// How much of a failed job's log goes back to the agent.
const LOG_TO_AGENT: usize = 8000;

/// The forge client of a project, or why there is none.
fn client(project: &Project) -> Result<GitHub, Error> {
    let forge = project.settings.forge.as_ref().ok_or_else(|| {
        Error::conflict(format!(
            "project {} names no forge; add a [forge] section (kind = \"github\", repo = \"owner/name\") to its .baton/config.toml",
            project.name
        ))
    })?;
    GitHub::new(forge)
}

/// Says at start what would stop each project's pull requests: a token or
/// webhook secret variable that is not set. The warnings, for `baton up` to print.
pub fn check_configuration(projects: &[Project]) -> Vec<String> {
    let mut warnings = Vec::new();
    for p in projects {
        let Some(forge) = &p.settings.forge else { continue };
        if let Err(e) = GitHub::new(forge) {
            warnings.push(format!("project {}: {}", p.name, e));
        }
        if let Some(var) = &forge.webhook_secret_env
            && std::env::var(var).map_or(true, |v| v.is_empty())
        {
            warnings.push(format!(
                "project {}: [forge] webhook_secret_env names {var}, which is not set; GitHub's webhooks will be refused (Baton polls instead)",
                p.name
            ));
        }
    }
    warnings
}

/// Pushes `sha` to the task's branch on the project's remote.
async fn push(project: &Project, branch: &str, sha: &str) -> Result<(), Error> {
    let remote = project.settings.forge.as_ref().map_or("origin", |f| f.remote());
    let git = baton_git::Git::new(&project.path);
    let (exists, _) = git.probe(["remote", "get-url", remote]).await.map_err(Error::internal)?;
    if !exists {
        return Err(Error::conflict(format!(
            "the repository {} has no remote named {remote:?} (`git remote add {remote} URL`, or set [forge] remote)",
            project.path
        )));
    }
    let refspec = format!("{sha}:refs/heads/{branch}");
    git.run(["push", "--quiet", remote, &refspec]).await.map_err(|e| match e {
        baton_git::GitError::Failed { stderr, .. } => {
            Error::conflict(format!("could not push {branch} to {remote}: {}", stderr.trim()))
        }
        other => Error::internal(other),
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
    if let Some(issue) = &task.issue {
        body.push_str(&format!("Fixes #{}\n\n", issue.number));
    }
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
pub async fn open_pr(state: &Arc<AppState>, id: TaskId) -> Result<Task, Error> {
    let (task, project) = state
        .store
        .read(move |r| {
            let task = resolve::task(r, &id)?;
            let project = resolve::project(r, &task.project_id)?;
            Ok::<_, Error>((task, project))
        })
        .await?;
    if let Some(workset) = task.workset.clone() {
        return worksets::open(state, task, workset).await;
    }
    let github = client(&project)?;
    baton_domain::projects::require_repository(&project)?;
    if let Some(pr) = task.pr.as_ref().filter(|p| p.state == PrState::Open) {
        return Err(Error::AlreadyExists {
            message: format!("task {} already has pull request #{} ({})", task.id, pr.number, pr.url),
            details: None,
        });
    }
    if task.status != TaskStatus::Succeeded {
        return Err(Error::conflict(format!(
            "task {} is {}; only a succeeded task is proposed as a pull request",
            task.id, task.status
        )));
    }
    let (Some(branch), Some(head)) = (task.git.branch.clone(), task.git.head.clone()) else {
        return Err(Error::conflict(format!("task {} has no commits; there is nothing to propose", task.id)));
    };
    if task.git.commits.is_empty() {
        return Err(Error::conflict(format!("task {} has no commits; there is nothing to propose", task.id)));
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
    transact(state, move |tx, _| {
        let mut task = resolve::task(tx, &tid)?;
        task.pr = Some(pr);
        tell(tx, &task, "pr", text, Value::Null)?;
        emit_task(tx, &task)?;
        Ok(task)
    })
    .await
}

/// The forge as the domain's merge queue calls it (`merge_via = "forge"`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Forges;

impl Forge for Forges {
    fn merge_pull<'a>(
        &'a self,
        project: &'a Project,
        task: &'a Task,
        strategy: MergeStrategy,
    ) -> ForgeFuture<'a, String> {
        Box::pin(merge_pull(project, task, strategy))
    }
}

/// Merges a task's pull request through the forge's API, and answers with the
/// merge commit. A refusal (branch protection, a required check) is reported in
/// the forge's words and changes nothing.
async fn merge_pull(project: &Project, task: &Task, strategy: MergeStrategy) -> Result<String, Error> {
    let github = client(project)?;
    let pr = task.pr.clone().filter(|p| p.state == PrState::Open).ok_or_else(|| {
        Error::conflict(format!(
            "task {} has no open pull request, and its project merges through the forge; `baton pr {}` opens one",
            task.id, task.id
        ))
    })?;
    github.merge_pull(pr.number, strategy, pr.pushed.as_deref()).await
}

/// Records a pull request step on the task's timeline.
fn tell(tx: &mut dyn StoreTx, task: &Task, kind: &str, message: String, detail: Value) -> Result<(), Error> {
    baton_domain::scheduler::loops::record_step(tx, task, kind, message, detail)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

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
