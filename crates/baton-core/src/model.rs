//! The things Baton keeps: projects, tasks, sessions, runs and launchers.
//!
//! Each is stored whole (as a document) with a few indexed columns beside it, and
//! sent whole over the API and the live stream, so a client that receives a change
//! has the complete new state and never needs to refetch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::agent::ExecutorKind;
use crate::ids::{LauncherId, OrchestrationId, PlanId, ProjectId, RunId, SessionId, TaskId};
use crate::sandbox::{ContainerRuntime, NetworkPolicy, SandboxMode, SandboxReport};
use crate::status::{LauncherStatus, OrchestrationStatus, RunStatus, SessionStatus, TaskStatus};
use crate::time::Timestamp;

/// A git repository under Baton's care.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Project {
    /// Its id.
    pub id: ProjectId,
    /// A unique, human-friendly name (the directory's name by default).
    pub name: String,
    /// Absolute path of the main checkout.
    pub path: String,
    /// The branch tasks start from and merge into.
    pub default_branch: String,
    /// Limits, setup and merge policy.
    #[serde(default)]
    pub settings: ProjectSettings,
    /// When it was added.
    pub created_at: Timestamp,
}

/// How a project's tasks are run and merged. Read from `.baton/config.toml` in the
/// repository, or set through the API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProjectSettings {
    /// How many of the project's tasks may run at once (none: only launcher slots limit).
    pub parallel_limit: Option<u32>,
    /// The agent used when a task names none.
    pub default_agent: Option<String>,
    /// A shell command run in each new worktree before the agent starts.
    pub setup: Option<String>,
    /// Files copied from the main checkout into each worktree (`.env`, local config).
    pub copy_files: Vec<String>,
    /// Acceptance checks run after every task of the project.
    pub checks: Vec<String>,
    /// How finished tasks are merged into the default branch.
    pub merge_strategy: MergeStrategy,
    /// Merge a task as soon as it succeeds and its checks pass.
    pub auto_merge: bool,
    /// Remove a task's worktree after it is merged.
    pub remove_worktree_after_merge: bool,
    /// Extra environment for every agent of the project.
    pub env: BTreeMap<String, String>,
    /// Run agents in their own worktrees (the default). When false, agents run in
    /// the main checkout: only for read-only work.
    pub worktrees: Option<bool>,
    /// How many ports each task gets in `BATON_PORT`..`BATON_PORT + n`.
    pub ports_per_task: Option<u16>,
    /// Free text about the project (stack, layout) given to workers in their prompt.
    pub context: Option<String>,
    /// Seconds without a lead heartbeat before the lead is `stale` (default 600).
    pub heartbeat_stale_s: Option<u64>,
    /// Seconds without a lead heartbeat before the lead is `stopped` (default 3600).
    pub heartbeat_stopped_s: Option<u64>,
    /// The agent that plans orchestrations (default: `planner` if defined, else the default agent).
    pub planner_agent: Option<String>,
    /// The agent that synthesises orchestrations (default: `synthesizer` if defined, else the default agent).
    pub synthesizer_agent: Option<String>,
    /// The most the project's agents may spend, in US dollars. Running agents are
    /// stopped and no new ones start once it is spent.
    pub budget_usd: Option<f64>,
    /// How its agents are isolated (default `auto`: a sandbox where the host allows one).
    pub sandbox: Option<SandboxMode>,
    /// Where its agents' network traffic may go (default `full`).
    pub network: Option<NetworkPolicy>,
    /// Host variables its agents are given (`NAME` or `PREFIX_*`), shown redacted.
    #[schemars(inner(regex(pattern = crate::names::PASS_ENV_PATTERN)))]
    pub pass_env: Vec<String>,
    /// The container image of agents run with `sandbox = "container"`.
    #[schemars(regex(pattern = crate::names::IMAGE_PATTERN))]
    pub image: Option<String>,
    /// `podman` or `docker` for container sandboxes (default: whichever is installed).
    pub container_runtime: Option<ContainerRuntime>,
    /// How many containers of the agents' image each launcher keeps started and
    /// waiting, so a run takes one instead of waiting for the runtime to make
    /// it (default 0; at most [`MAX_CONTAINER_POOL`]; a root launcher only).
    pub container_pool: Option<u32>,
    /// Seconds between snapshots of a working agent's worktree, pushed to
    /// `refs/baton/checkpoints/<task>` (default 60; 0 turns them off).
    pub checkpoint_s: Option<u64>,
    /// How many spare worktrees each launcher keeps ready at the head of the
    /// default branch, so a new task starts without waiting for a checkout
    /// (default 2; 0 = none; at most [`MAX_WORKTREE_POOL`]).
    pub worktree_pool: Option<u32>,
    /// Concurrency pools by provider or account (`[pools] anthropic = 6`): how
    /// many runs of the agents in each may work at once, across every project
    /// (where two projects name one pool, the smaller size holds). Agents use
    /// their executor's pool (`anthropic`, `openai`, `google`) unless they name one.
    pub pools: BTreeMap<String, i64>,
    /// How many times in a row an agent may make the same failing tool call
    /// before its run is stopped as looping (default 5; 0 = never).
    pub loop_limit: Option<u32>,
    /// How many times a task's session is resumed to fix its failing checks (and,
    /// with `on_conflict = "resume"`, a merge conflict; and its pull request's
    /// failing CI or requested changes). Default 2; 0 turns the loops off.
    pub fix_attempts: Option<u32>,
    /// What a merge refused for a conflict does: `refuse` (the default) or
    /// `resume` the agent to merge the base into its branch and resolve.
    pub on_conflict: Option<OnConflict>,
    /// The agent that reviews each task's work once its checks pass.
    pub review_by: Option<String>,
    /// How many times requested changes go back to the author (default 2).
    pub review_rounds: Option<u32>,
    /// Open a pull request for each task that succeeds (needs `[forge]`).
    pub auto_pr: bool,
    /// How `baton merge` lands a task: `baton` (its own queue, the default) or
    /// `forge` (merging the task's pull request through the forge's API).
    pub merge_via: Option<MergeVia>,
    /// The forge (GitHub) that hosts the repository's pull requests.
    pub forge: Option<ForgeSettings>,
    /// The agent Baton runs as the project's lead and keeps alive (`lead = "AGENT"`):
    /// started when the project is loaded, restarted when it dies.
    pub lead: Option<String>,
    /// Seconds a lead may live before Baton ends it (default 4 hours).
    pub lead_timeout_s: Option<u64>,
    /// The lead's prompt template, relative to the repository (default
    /// `.baton/lead.md` when it exists, else Baton's own, after seed 000's).
    pub lead_template: Option<String>,
    /// The project's technology, as the lead's template says it (`{{TECH_STACK}}`).
    pub tech_stack: Option<String>,
    /// `[chat.slack]` and `[chat.discord]`: the channels that talk to this project.
    pub chat: Option<crate::chat::ChatSettings>,
    /// `[[schedules]]`: tasks started at their times (`cron` or `every`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub schedules: Vec<crate::triggers::CreateSchedule>,
}

/// The most `fix_attempts` or `review_rounds` anything may ask for.
pub const MAX_LOOP_ROUNDS: u32 = 10;

/// The default `fix_attempts`.
pub const DEFAULT_FIX_ATTEMPTS: u32 = 2;

/// The default `review_rounds`.
pub const DEFAULT_REVIEW_ROUNDS: u32 = 2;

/// What a merge refused for a conflict does.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnConflict {
    /// Nothing more: a person decides.
    #[default]
    Refuse,
    /// The agent is resumed to merge the base into its branch and resolve; the
    /// merge is tried again once its checks pass.
    Resume,
}

/// Where `baton merge` lands a task.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeVia {
    /// Baton's own merge queue, into the project's repository.
    #[default]
    Baton,
    /// The forge's API merges the task's pull request (branch protection and the
    /// forge's merge queue apply).
    Forge,
}

/// Kinds of forge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForgeKind {
    /// GitHub or GitHub Enterprise Server.
    #[default]
    Github,
    /// GitLab (gitlab.com or self-managed): merge requests, pipelines, notes.
    Gitlab,
}

/// `[forge]` in a project's config: where its pull requests live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ForgeSettings {
    /// `github` or `gitlab`.
    pub kind: ForgeKind,
    /// `owner/name` (GitHub), or the project's path (GitLab; also `project`).
    pub repo: String,
    /// GitLab: the project's path (`group/sub/name`) or numeric id.
    pub project: Option<String>,
    /// The API's root (default `https://api.github.com`, or
    /// `https://gitlab.com/api/v4` for GitLab).
    pub api_url: Option<String>,
    /// The coordinator's environment variable holding the API token (default
    /// `GITHUB_TOKEN`). Read by the coordinator only, never given to agents.
    pub token_env: Option<String>,
    /// The coordinator's environment variable holding the secret of the forge's
    /// webhook (`X-Hub-Signature-256`). Without it, Baton polls instead.
    pub webhook_secret_env: Option<String>,
    /// The git remote task branches are pushed to (default `origin`).
    pub remote: Option<String>,
    /// Seconds between polls of open pull requests (default 60; 0 = webhook only).
    pub poll_s: Option<u64>,
    /// The label that makes an issue a task (default `baton`).
    pub issue_label: Option<String>,
    /// The agent that takes issues and `@baton` comments (default: the project's).
    pub issue_agent: Option<String>,
}

impl ForgeSettings {
    /// The API's root, without a trailing slash.
    pub fn api_url(&self) -> String {
        let default = match self.kind {
            ForgeKind::Github => "https://api.github.com",
            ForgeKind::Gitlab => "https://gitlab.com/api/v4",
        };
        self.api_url.as_deref().unwrap_or(default).trim_end_matches('/').to_owned()
    }

    /// The variable holding the token.
    pub fn token_env(&self) -> &str {
        let default = match self.kind {
            ForgeKind::Github => "GITHUB_TOKEN",
            ForgeKind::Gitlab => "GITLAB_TOKEN",
        };
        self.token_env.as_deref().unwrap_or(default)
    }

    /// The repository as the forge names it: GitHub's `owner/name`, GitLab's
    /// project path or id.
    pub fn repository(&self) -> &str {
        match (self.kind, &self.project) {
            (ForgeKind::Gitlab, Some(p)) => p,
            _ => &self.repo,
        }
    }

    /// The remote branches are pushed to.
    pub fn remote(&self) -> &str {
        self.remote.as_deref().unwrap_or("origin")
    }

    /// Checks what needs no network: the repository's name and the variables' names.
    pub fn validate(&self) -> Result<(), String> {
        if self.kind == ForgeKind::Gitlab {
            let p = self.repository();
            if p.is_empty()
                || p.len() > 255
                || p.starts_with('/')
                || p.ends_with('/')
                || p.chars().any(|c| c.is_whitespace())
            {
                return Err(format!("[forge] project = {p:?} must be the GitLab project's path (group/name) or id"));
            }
            return self.validate_urls();
        }
        let parts: Vec<&str> = self.repo.split('/').collect();
        let part_ok = |p: &str| {
            !p.is_empty() && p.len() <= 100 && p.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if parts.len() != 2 || !parts.iter().all(|p| part_ok(p)) {
            return Err(format!("[forge] repo = {:?} must be \"owner/name\"", self.repo));
        }
        self.validate_urls()
    }

    /// Checks the API's URL, the variables' names and the remote.
    fn validate_urls(&self) -> Result<(), String> {
        if let Some(url) = &self.api_url {
            let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
                .iter()
                .any(|l| url.strip_prefix(l).is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/'])));
            if !(url.starts_with("https://") || local) {
                return Err(format!(
                    "[forge] api_url = {url:?} must be an https URL (plain http only to this host): the token goes there"
                ));
            }
        }
        for name in [self.token_env.as_deref(), self.webhook_secret_env.as_deref()].into_iter().flatten() {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(format!("[forge] {name:?} is not an environment variable's name"));
            }
        }
        if self.remote.as_deref().is_some_and(|r| r.is_empty() || r.starts_with('-') || r.contains(char::is_whitespace))
        {
            return Err("[forge] remote must be a git remote's name".into());
        }
        Ok(())
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The most runs a pool may be sized for.
pub const MAX_POOL_SIZE: i64 = 10_000;

/// The default `loop_limit`.
pub const DEFAULT_LOOP_LIMIT: u32 = 5;

/// The most spare worktrees a project may ask launchers to keep.
pub const MAX_WORKTREE_POOL: u32 = 16;

/// The most `container_pool` may ask for (each is a running container).
pub const MAX_CONTAINER_POOL: u32 = 8;

impl ProjectSettings {
    /// Whether tasks get their own worktree.
    pub fn uses_worktrees(&self) -> bool {
        self.worktrees.unwrap_or(true)
    }

    /// How many failing tool calls in a row stop a run (0: never).
    pub fn loop_limit(&self) -> u32 {
        self.loop_limit.unwrap_or(DEFAULT_LOOP_LIMIT)
    }

    /// Checks the settings that have rules beyond their type.
    pub fn validate(&self) -> Result<(), String> {
        crate::sandbox::validate_pass_env(&self.pass_env)?;
        if let Some(lead) = &self.lead {
            crate::names::validate_simple_name("agent name", lead).map_err(|e| format!("lead: {e}"))?;
        }
        if let Some(chat) = &self.chat {
            chat.validate()?;
        }
        if self.lead_timeout_s == Some(0) {
            return Err("lead_timeout_s must be at least 1".into());
        }
        if let Some(t) = &self.lead_template
            && (t.is_empty() || t.starts_with('/') || t.split('/').any(|p| p == ".."))
        {
            return Err(format!("lead_template = {t:?} must be a path inside the repository"));
        }
        if let Some(n) = self.worktree_pool.filter(|n| *n > MAX_WORKTREE_POOL) {
            return Err(format!(
                "worktree_pool = {n} is more than {MAX_WORKTREE_POOL} (each spare worktree is a checkout on disk)"
            ));
        }
        if let Some(n) = self.container_pool.filter(|n| *n > MAX_CONTAINER_POOL) {
            return Err(format!(
                "container_pool = {n} is more than {MAX_CONTAINER_POOL} (each warm container is a running container)"
            ));
        }
        for (name, size) in &self.pools {
            crate::names::validate_simple_name("pool name", name).map_err(|e| e.to_string())?;
            if !(1..=MAX_POOL_SIZE).contains(size) {
                return Err(format!(
                    "[pools] {name} = {size}: a pool's size is how many runs may work at once, from 1 to {MAX_POOL_SIZE} \
                     (leave it out for no limit)"
                ));
            }
        }
        if let Some(network) = &self.network {
            network.validate()?;
        }
        if self.sandbox == Some(SandboxMode::Container) && self.image.as_deref().is_none_or(|i| i.trim().is_empty()) {
            return Err("sandbox = \"container\" needs an `image`".into());
        }
        if let Some(image) = &self.image {
            crate::names::validate_image(image).map_err(|e| e.to_string())?;
        }
        if let Some(reviewer) = &self.review_by {
            crate::names::validate_simple_name("review_by", reviewer).map_err(|e| e.to_string())?;
        }
        for (name, n) in [("fix_attempts", self.fix_attempts), ("review_rounds", self.review_rounds)] {
            if n.is_some_and(|n| n > MAX_LOOP_ROUNDS) {
                return Err(format!("{name} must be at most {MAX_LOOP_ROUNDS}"));
            }
        }
        if let Some(forge) = &self.forge {
            forge.validate()?;
        }
        if self.forge.is_none() && (self.auto_pr || self.merge_via == Some(MergeVia::Forge)) {
            return Err("auto_pr and merge_via = \"forge\" need a [forge] section".into());
        }
        Ok(())
    }
}

/// How a task's branch lands on the base branch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeStrategy {
    /// A merge commit.
    #[default]
    Merge,
    /// One commit with all the task's changes.
    Squash,
    /// The task's commits replayed on the base.
    Rebase,
}

/// A unit of work in a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Task {
    /// Its id.
    pub id: TaskId,
    /// The project it belongs to.
    pub project_id: ProjectId,
    /// A short title (from the prompt's first line when not given).
    pub title: String,
    /// What the agent is asked to do.
    pub prompt: String,
    /// The agent that works on it.
    pub agent: String,
    /// Capabilities asked for; used to pick an agent when none is named.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Tasks that must succeed before this one starts.
    #[serde(default)]
    pub depends_on: Vec<TaskId>,
    /// Commands that must pass in the worktree after the agent finishes.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Seconds a run may take before it is killed.
    pub timeout_s: Option<u64>,
    /// Seconds a run may go without printing anything before it is stopped as
    /// stalled (its work WIP-committed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_s: Option<u64>,
    /// How many times a failed run is retried automatically.
    #[serde(default)]
    pub max_retries: u32,
    /// How many automatic retries have been used.
    #[serde(default)]
    pub retries: u32,
    /// How many times in a row its provider refused for rate limits and the
    /// governor retried it on the same agent (not counted in `retries`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: u32,
    /// Spending limit in US dollars; the agent is stopped when it is exceeded.
    pub budget_usd: Option<f64>,
    /// Whether `baton approve` must let it start.
    #[serde(default)]
    pub approval: bool,
    /// How its agent is isolated, overriding the agent's and the project's setting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxMode>,
    /// Launcher labels a host must have to run it (`gpu`, `region=eu`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub require: Vec<String>,
    /// How its last run was isolated, as its launcher reported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub isolation: Option<SandboxReport>,
    /// When it was approved.
    pub approved_at: Option<Timestamp>,
    /// Where it is in its life.
    pub status: TaskStatus,
    /// Why it is blocked, failed or cancelled.
    pub reason: Option<String>,
    /// The session currently working on it.
    pub session_id: Option<SessionId>,
    /// The session that started it (an agent delegating work), if any.
    pub parent_session_id: Option<SessionId>,
    /// Whether the parent session is resumed with this task's result when it ends.
    #[serde(default)]
    pub callback: bool,
    /// The plan it was submitted with.
    pub plan_id: Option<PlanId>,
    /// Its name in that plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_name: Option<String>,
    /// The orchestration it belongs to, and its part in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orchestration: Option<OrchestrationRef>,
    /// Git state: branch, worktree, commits (of its own project's repository).
    #[serde(default)]
    pub git: TaskGit,
    /// For a task on a workset: every project it changes, its own first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workset: Option<crate::workset::TaskWorkset>,
    /// How its acceptance checks went, the last time they ran.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub check_results: Vec<CheckResult>,
    /// The last result the agent reported.
    pub result: Option<String>,
    /// A session Baton did not start: an interactive Claude Code that reports
    /// through hooks (`baton hook`). Baton shows it but never runs, stops or
    /// resumes it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// Fallback agents it switched to, in order, and why.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent_switches: Vec<AgentSwitch>,
    /// Its feedback loops: how failing checks, conflicts and reviews are answered,
    /// and what they did so far.
    #[serde(default)]
    pub loops: Loops,
    /// For a reviewer's task: the task whose work it reviews.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_of: Option<TaskId>,
    /// Its pull request on the project's forge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pr: Option<PullRequest>,
    /// The forge issue it came from, and what the issue has been told.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issue: Option<IssueLink>,
    /// Money and tokens spent on it so far.
    #[serde(default)]
    pub usage: Usage,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When its first run started.
    pub started_at: Option<Timestamp>,
    /// When it last finished.
    pub finished_at: Option<Timestamp>,
    /// The model its agent runs with for this task, when it overrides the
    /// agent's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Messages a person sent while its agent worked, delivered when the turn
    /// ends (or withdrawn before), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub follow_ups: Vec<FollowUp>,
    /// The tasks started together with it as attempts at the same work (itself
    /// included), in the order they were made; empty for a task on its own.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attempts: Vec<TaskId>,
    /// Files a person attached to it: they reach its agent beside the worktree,
    /// never on its branch.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    /// The inbox message it takes (an agent's message to this task's agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The project it leads, for a lead's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leads: Option<ProjectId>,
    /// What started it by itself: `schedule sch-…`, `trigger NAME`, `issue
    /// owner/repo#N`, `comment owner/repo#N`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// A message for a task's agent sent while it worked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FollowUp {
    /// Its id (`m-` and 12 hex digits).
    pub id: String,
    /// What it says.
    pub text: String,
    /// Where it is.
    pub state: FollowUpState,
    /// Who sent it (`admin`, or the sending session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// When it was sent.
    pub at: Timestamp,
    /// When it reached the agent, or was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_at: Option<Timestamp>,
}

/// Where a follow-up is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FollowUpState {
    /// Waiting for the agent's turn to end.
    Queued,
    /// Given to the agent as its next turn.
    Delivered,
    /// Taken back before it was delivered.
    Withdrawn,
}

/// A file attached to a task: kept in the context store, written beside the
/// agent's worktree (read-only for it) before its runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attachment {
    /// Its file name.
    pub name: String,
    /// The context store document that holds its bytes.
    pub doc: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A task's feedback loops: its settings (resolved from the task, its agent and
/// its project when it was made) and their counters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Loops {
    /// How many times its session may be resumed to fix failing checks; as many
    /// again for conflicts and for its pull request's failures.
    pub fix_attempts: u32,
    /// What a merge refused for a conflict does.
    pub on_conflict: OnConflict,
    /// The agent reviewing its work, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub review_by: Option<String>,
    /// How many times requested changes go back to its agent.
    pub review_rounds: u32,
    /// Fix attempts used on failing checks.
    pub check_fixes: u32,
    /// Fix attempts used on conflicts.
    pub conflict_fixes: u32,
    /// Fix attempts used on its pull request's failing checks and requested changes.
    pub forge_fixes: u32,
    /// Whether it merges again once its agent's fix of a conflict succeeds.
    pub remerge: bool,
    /// Its reviews, oldest first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Review>,
}

impl Loops {
    /// The last review's verdict, if it gave one.
    pub fn verdict(&self) -> Option<Verdict> {
        self.reviews.last().and_then(|r| r.verdict)
    }

    /// Whether the last review approved `head` itself (work changed after an
    /// approval is reviewed again).
    pub fn approved_at(&self, head: Option<&str>) -> bool {
        self.reviews.last().is_some_and(|r| r.verdict == Some(Verdict::Approve) && r.commit.as_deref() == head)
    }
}

/// One review of a task's work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Review {
    /// The reviewer: its agent, or the person (`person`).
    pub reviewer: String,
    /// The reviewer's task (none for a person's review).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// The commit it reviewed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Its verdict, once given (none: pending, or the review failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<Verdict>,
    /// Its comments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<ReviewComment>,
    /// Why the review failed, with the reviewer's answer kept in `output`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The reviewer's answer when it did not fit the schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    /// Whether the reviewer was already asked once to answer in the schema.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub corrected: bool,
    /// When it was asked for.
    pub at: Timestamp,
}

/// A reviewer's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The work may land.
    Approve,
    /// The author must change something first.
    ChangesRequested,
}

/// One comment of a review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReviewComment {
    /// The file it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The line it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// What it says (not blank).
    #[schemars(length(min = 1), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub body: String,
}

/// A task's pull request.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PullRequest {
    /// Its number on the forge.
    pub number: u64,
    /// Its page.
    pub url: String,
    /// `open`, `closed` or `merged`.
    pub state: PrState,
    /// The branch it merges into.
    pub base: String,
    /// The commit of the task's branch last pushed to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pushed: Option<String>,
    /// The forge's ETags of what polls read (`pull`, `reviews`, `checks:SHA`),
    /// for conditional requests.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub etags: BTreeMap<String, String>,
    /// Check runs and reviews already acted on (`check:ID`, `review:ID`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub handled: Vec<String>,
    /// What the forge said while the agent was busy, kept until it is idle.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Feedback>,
    /// The last failing CI check or review acted on, for the timeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_feedback: Option<String>,
}

/// Something the forge said of a pull request, for the task's agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Feedback {
    /// `check:ID` or `review:ID`.
    pub key: String,
    /// The commit it is about, when it is about one (a check run): it is dropped
    /// once another commit is pushed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// One line for the timeline.
    pub summary: String,
    /// What the agent is told.
    pub message: String,
}

/// Where a pull request is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrState {
    /// Open for review.
    #[default]
    Open,
    /// Closed without merging.
    Closed,
    /// Merged on the forge.
    Merged,
}

/// The git side of a task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct TaskGit {
    /// The task's branch, `baton/<short-id>-<slug>`.
    pub branch: Option<String>,
    /// The branch it starts from and merges into.
    pub base_branch: Option<String>,
    /// The commit the branch started from.
    pub base_commit: Option<String>,
    /// Where the worktree is (on the launcher's host).
    pub worktree: Option<String>,
    /// The branch's last commit.
    pub head: Option<String>,
    /// Commits on the branch that the base does not have.
    pub commits: Vec<String>,
    /// Files the branch changes against its base.
    pub files_changed: Vec<String>,
    /// `git diff --shortstat` against the base.
    pub diff_stat: Option<String>,
    /// Whether the last run left uncommitted work that Baton committed for it.
    pub wip_committed: bool,
    /// Merge state.
    pub merge: MergeState,
    /// The commit that landed on the base, once merged.
    pub merged_commit: Option<String>,
    /// Disk use of the worktree in bytes, when last measured.
    pub disk_bytes: Option<u64>,
    /// The launcher whose host has the worktree.
    pub launcher: Option<LauncherId>,
    /// The last snapshot of the working tree pushed while the agent worked
    /// (`refs/baton/checkpoints/<task>`): a commit whose parent is the agent's
    /// HEAD then, with its uncommitted changes.
    pub checkpoint: Option<String>,
}

/// A task's part in an orchestration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OrchestrationRef {
    /// The orchestration.
    pub id: OrchestrationId,
    /// What the task does in it.
    pub role: OrchestrationRole,
    /// For a subtask, its id in the planner's plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtask: Option<String>,
}

/// The parts of an orchestration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrchestrationRole {
    /// Turns the description into a plan.
    Planner,
    /// Does one subtask of the plan.
    Subtask,
    /// Merges the subtasks' results into one.
    Synthesizer,
}

/// One acceptance check, run in the task's worktree after its agent finished.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckResult {
    /// The command (run with `sh -c`).
    pub command: String,
    /// Its exit code (none when it was killed or could not start).
    pub exit_code: Option<i32>,
    /// Whether it passed.
    pub passed: bool,
    /// How long it took.
    pub duration_ms: u64,
    /// The end of its output.
    pub output_tail: String,
}

/// Whether and how a task's branch reached its base.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MergeState {
    /// Not asked to merge.
    #[default]
    None,
    /// Waiting in the merge queue.
    Queued,
    /// Landed on the base.
    Merged,
    /// Refused: it conflicts with the base.
    Conflict,
}

/// A task moving to a fallback agent because its agent could not work.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentSwitch {
    /// The agent that failed.
    pub from: String,
    /// The fallback agent that took over.
    pub to: String,
    /// What went wrong with `from`.
    pub reason: String,
    /// When.
    pub at: Timestamp,
}

/// Tokens and money spent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Usage {
    /// Input tokens (including cache reads).
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// Cost in US dollars.
    pub cost_usd: f64,
}

impl Usage {
    /// Adds another amount to this one.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cost_usd += other.cost_usd;
    }
}

/// One conversation with one agent process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Session {
    /// Its id.
    pub id: SessionId,
    /// The task it works on.
    pub task_id: TaskId,
    /// The task's project.
    pub project_id: ProjectId,
    /// The agent definition's name.
    pub agent: String,
    /// How the agent is run.
    pub executor: ExecutorKind,
    /// Where it is.
    pub status: SessionStatus,
    /// The agent's own session id (Claude's `session_id`, Codex's `thread_id`), used
    /// to resume the conversation.
    pub agent_session_id: Option<String>,
    /// The session that started this one's task, if any.
    pub parent_session_id: Option<SessionId>,
    /// Money and tokens spent.
    #[serde(default)]
    pub usage: Usage,
    /// Results of tasks it started with a callback, waiting for it to be idle.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_callbacks: Vec<Callback>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// A child task's ending, to be told to the session that started it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Callback {
    /// The child task.
    pub task_id: TaskId,
    /// Its title.
    pub title: String,
    /// How it ended.
    pub status: TaskStatus,
    /// Its result, or why it failed.
    pub text: String,
}

impl Callback {
    /// The message a parent session is resumed with, for one or more callbacks.
    pub fn message(callbacks: &[Callback]) -> String {
        let mut text = String::new();
        for (i, c) in callbacks.iter().enumerate() {
            if i > 0 {
                text.push_str("\n\n");
            }
            let how = match c.status {
                TaskStatus::Succeeded => "succeeded",
                TaskStatus::Cancelled => "was cancelled",
                TaskStatus::Blocked => "is blocked",
                _ => "failed",
            };
            text.push_str(&format!("Task {} ({}) that you started {how}.", c.task_id, c.title));
            if !c.text.trim().is_empty() {
                text.push_str(&format!("\nResult:\n{}", c.text.trim()));
            }
        }
        text
    }
}

/// A DAG of tasks submitted together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// Its id.
    pub id: PlanId,
    /// A name for people.
    pub name: String,
    /// The project.
    pub project_id: ProjectId,
    /// Its tasks, by their names in the plan.
    pub tasks: BTreeMap<String, TaskId>,
    /// The synthesis task, which receives every result.
    pub synthesis: Option<TaskId>,
    /// The session told once, when every task of the plan has ended (a plan
    /// submitted with `callback` by an agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub callback_session: Option<SessionId>,
    /// Whether that session was told.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub called_back: bool,
    /// When it was submitted.
    pub created_at: Timestamp,
}

/// The planner → experts → synthesizer flow (seed 004).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Orchestration {
    /// Its id.
    pub id: OrchestrationId,
    /// The project.
    pub project_id: ProjectId,
    /// What was asked for.
    pub description: String,
    /// Where it is.
    pub status: OrchestrationStatus,
    /// The agent that plans.
    pub planner: String,
    /// The agent that synthesises.
    pub synthesizer: String,
    /// The planning task.
    pub planner_task: Option<TaskId>,
    /// How many corrective turns the planner was given.
    #[serde(default)]
    pub corrections: u32,
    /// The plan, as the planner answered it.
    pub plan: Option<serde_json::Value>,
    /// The plan's subtasks.
    #[serde(default)]
    pub subtasks: Vec<Subtask>,
    /// The synthesis task.
    pub synthesizer_task: Option<TaskId>,
    /// The integrated result.
    pub final_result: Option<String>,
    /// What happened, line by line, for people.
    #[serde(default)]
    pub logs: Vec<String>,
    /// When it was submitted.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
    /// When it completed or failed.
    pub completed_at: Option<Timestamp>,
}

/// One subtask of an orchestration's plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Subtask {
    /// Its id in the plan.
    pub id: String,
    /// What to do.
    pub description: String,
    /// The kind of expert it needs (an agent name or tag).
    pub agent_type: String,
    /// Subtasks that must finish first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// The agent it was given.
    pub agent: Option<String>,
    /// Its task.
    pub task_id: Option<TaskId>,
    /// Its task's status.
    pub status: TaskStatus,
    /// Its result.
    pub result: Option<String>,
}

/// A lead's heartbeat for a project (the scheduler's own, or a lead agent's).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeadHeartbeat {
    /// The project.
    pub project_id: ProjectId,
    /// Who beat: `scheduler`, or a lead's name.
    pub source: String,
    /// The lead's session, when it is one.
    pub session_key: Option<String>,
    /// The lead's view of the work (free form).
    #[serde(default)]
    pub state: serde_json::Value,
    /// When.
    pub at: Timestamp,
}

/// Why a run was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    /// The first turn of a session.
    Start,
    /// A follow-up turn in the same conversation.
    Resume,
}

/// One turn of a session handed to a launcher.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Run {
    /// Its id.
    pub id: RunId,
    /// Its session.
    pub session_id: SessionId,
    /// Its task.
    pub task_id: TaskId,
    /// Its project.
    pub project_id: ProjectId,
    /// The agent definition's name.
    pub agent: String,
    /// Start or resume.
    pub kind: RunKind,
    /// Where it is.
    pub status: RunStatus,
    /// The message of this turn (the task's prompt for a start).
    pub message: String,
    /// The launcher that claimed it.
    pub launcher_id: Option<LauncherId>,
    /// The agent's process id (also its process group id).
    pub pid: Option<i32>,
    /// The agent's exit code.
    pub exit_code: Option<i32>,
    /// The signal that ended the agent, if one did.
    pub signal: Option<i32>,
    /// What went wrong, when it did not succeed.
    pub error: Option<String>,
    /// The result text the agent reported.
    pub result: Option<String>,
    /// How far the coordinator has acknowledged the run's output spool.
    #[serde(default)]
    pub offsets: SpoolOffsets,
    /// Whether a stop was asked for, and why.
    pub stop_reason: Option<String>,
    /// When the stop order was last handed to the launcher (it is repeated
    /// while the run goes on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_sent_at: Option<Timestamp>,
    /// The agent's failing tool calls in a row, for `loop_limit`.
    #[serde(default, skip_serializing_if = "Repeats::is_empty")]
    pub repeats: Repeats,
    /// Money and tokens spent in this turn.
    #[serde(default)]
    pub usage: Usage,
    /// Not to be claimed before this time (retry backoff).
    #[serde(default)]
    pub not_before: Option<Timestamp>,
    /// When it was created.
    pub created_at: Timestamp,
    /// When a launcher claimed it.
    pub claimed_at: Option<Timestamp>,
    /// When the agent process started.
    pub started_at: Option<Timestamp>,
    /// When it ended.
    pub finished_at: Option<Timestamp>,
}

/// Byte offsets into a run's spooled stdout and stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct SpoolOffsets {
    /// Bytes of stdout acknowledged.
    pub stdout: u64,
    /// Bytes of stderr acknowledged.
    pub stderr: u64,
}

/// A process that supervises agents on one host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Launcher {
    /// Its id (kept across restarts of the same launcher).
    pub id: LauncherId,
    /// A name for people.
    pub name: String,
    /// The host it runs on.
    pub hostname: String,
    /// Its Baton version.
    pub version: String,
    /// How many agents it runs at once at most.
    pub slots: u32,
    /// The executors it offers.
    pub executors: Vec<ExecutorKind>,
    /// Reachable or not.
    pub status: LauncherStatus,
    /// The runs it is working on.
    #[serde(default)]
    pub running: Vec<RunId>,
    /// When it was last heard from.
    pub last_seen: Timestamp,
    /// When it first registered.
    pub registered_at: Timestamp,
    /// The agents' programs as found on its host, by the name agents give them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub programs: BTreeMap<String, ProgramInfo>,
    /// Its labels (`gpu`, `region=eu`), which tasks and agents may `require`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    /// Whether it takes no new work (its running agents finish).
    #[serde(default)]
    pub draining: bool,
    /// The best isolation it can give agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxReport>,
}

/// An agent's program as a launcher found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramInfo {
    /// Where it is; `None` when it is not installed.
    pub path: Option<String>,
    /// The first line of its `--version`.
    pub version: Option<String>,
}

/// What a token lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    /// Everything.
    Admin,
    /// The launcher protocol.
    Launcher,
    /// One agent session: read, report on itself, start tasks its rules allow.
    Session,
}

impl TokenKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Admin => "admin",
            TokenKind::Launcher => "launcher",
            TokenKind::Session => "session",
        }
    }
}

/// A token as stored: only its hash is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenRecord {
    /// SHA-256 of the token, in hex.
    pub hash: String,
    /// What it allows.
    pub kind: TokenKind,
    /// For session tokens the session id, for launcher tokens the launcher id
    /// (bound at the launcher's first registration).
    pub subject: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
    /// Its id, for tokens people make and revoke (`tok-…`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Something a launcher is asked to do besides running agents, kept until it
/// says it is done (so a restart of either side loses none).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LauncherOrder {
    /// The launcher.
    pub launcher_id: LauncherId,
    /// What to do.
    pub kind: OrderKind,
    /// What it is about: a run id (checkpoint) or a task id (worktree removal).
    pub subject: String,
    /// Particulars (`{"force": true}`).
    #[serde(default)]
    pub data: serde_json::Value,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// When it was last handed to the launcher.
    #[serde(default)]
    pub sent_at: Option<Timestamp>,
}

/// A request to land a task on its base, kept until the merge queue's worker
/// (one for every coordinator replica) has done it: an auto-merge survives a crash.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MergeRequest {
    /// Its id (`mr-…`).
    pub id: String,
    /// The task.
    pub task_id: TaskId,
    /// How (the project's strategy when `None`).
    #[serde(default)]
    pub strategy: Option<MergeStrategy>,
    /// When it was asked for.
    pub created_at: Timestamp,
    /// Whether someone waits for the answer (an auto-merge has no one).
    #[serde(default)]
    pub awaited: bool,
    /// The answer, once done: the merged task, or the error.
    #[serde(default)]
    pub outcome: Option<serde_json::Value>,
}

/// The kinds of [`LauncherOrder`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderKind {
    /// Snapshot a run's worktree now and push it as its task's checkpoint.
    Checkpoint,
    /// Remove a task's worktree (and the agent's home) from the launcher's host.
    RemoveWorktree,
}

impl OrderKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderKind::Checkpoint => "checkpoint",
            OrderKind::RemoveWorktree => "remove_worktree",
        }
    }
}

/// What the governor has learned of a concurrency pool from its provider's
/// answers (see `ProjectSettings::pools`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PoolState {
    /// The pool's name.
    pub name: String,
    /// The limit lowered after rate limiting (halved on each 429, one higher
    /// after each run that succeeds); none once it is back at the configured
    /// size, or above what ran when it was lowered.
    pub limit: Option<u32>,
    /// No new run of the pool starts before this (the provider's `Retry-After`).
    pub paused_until: Option<Timestamp>,
    /// When the provider last refused for rate limits, newest last (at most 100,
    /// of the last hour).
    pub throttled_at: Vec<Timestamp>,
}

/// An agent's tool calls waiting for their result, and the same call failing
/// again and again: what stops a run as looping (`loop_limit`). A call is kept
/// as its tool and a hash of its input, so the run's record stays small.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct Repeats {
    /// Calls without a result yet: their id, tool and input's hash.
    pub pending: Vec<(String, String, u64)>,
    /// The last failing call (tool, input's hash) and how many times in a row it failed.
    pub failing: Option<(String, u64, u32)>,
}

impl Repeats {
    /// The most calls kept waiting for a result.
    const PENDING: usize = 32;

    fn is_empty(&self) -> bool {
        self.pending.is_empty() && self.failing.is_none()
    }

    /// A tool call began.
    pub fn call(&mut self, id: Option<&str>, name: &str, input: &serde_json::Value) {
        self.pending.push((id.unwrap_or_default().to_owned(), name.to_owned(), fnv1a(input.to_string().as_bytes())));
        let excess = self.pending.len().saturating_sub(Self::PENDING);
        self.pending.drain(..excess);
    }

    /// A tool call's result came: how many times in a row this same call has
    /// failed (0 when it did not fail).
    pub fn result(&mut self, id: Option<&str>, is_error: bool) -> u32 {
        let id = id.unwrap_or_default();
        let Some(i) = self.pending.iter().rposition(|(p, _, _)| p == id) else { return 0 };
        let (_, tool, hash) = self.pending.remove(i);
        if !is_error {
            self.failing = None;
            return 0;
        }
        let n = match &self.failing {
            Some((t, h, n)) if *t == tool && *h == hash => n + 1,
            _ => 1,
        };
        self.failing = Some((tool, hash, n));
        n
    }

    /// The tool of the failing call.
    pub fn failing_tool(&self) -> &str {
        self.failing.as_ref().map_or("?", |(tool, _, _)| tool)
    }
}

/// FNV-1a, 64 bits: the same on every host and version, unlike std's hasher
/// (a run's record moves between coordinator replicas).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

#[cfg(test)]
mod repeats_tests {
    use serde_json::json;

    use super::Repeats;

    #[test]
    fn only_the_same_failing_call_in_a_row_counts() {
        let mut r = Repeats::default();
        let input = json!({ "command": "cargo test" });
        for n in 1..=3 {
            r.call(Some(&format!("c{n}")), "Bash", &input);
            assert_eq!(r.result(Some(&format!("c{n}")), true), n);
        }
        // Another input, a success, a result of no known call: each starts over.
        r.call(Some("d"), "Bash", &json!({ "command": "cargo build" }));
        assert_eq!(r.result(Some("d"), true), 1);
        r.call(Some("e"), "Bash", &input);
        assert_eq!(r.result(Some("e"), true), 1);
        r.call(Some("f"), "Bash", &input);
        assert_eq!(r.result(Some("f"), false), 0);
        assert_eq!(r.result(Some("nobody"), true), 0);
        // Calls without ids (a command agent) pair with their result in order.
        for n in 1..=2 {
            r.call(None, "Read", &json!({ "path": "x" }));
            assert_eq!(r.result(None, true), n);
        }
        assert_eq!(r.failing_tool(), "Read");
        // Calls that never get a result are not kept for ever.
        for i in 0..100 {
            r.call(Some(&i.to_string()), "Bash", &input);
        }
        assert_eq!(r.pending.len(), 32);
        let huge = json!({ "text": "é".repeat(5000) });
        r.call(Some("big"), "Write", &huge);
        assert!(serde_json::to_string(&r).unwrap().len() <= 2048, "a call's input is not kept");
    }
}

#[cfg(test)]
mod forge_tests {
    use super::{ForgeSettings, ProjectSettings};

    #[test]
    fn forge_settings_are_checked_before_any_token_leaves() {
        let forge = |repo: &str, api: Option<&str>| ForgeSettings {
            repo: repo.into(),
            api_url: api.map(str::to_owned),
            ..ForgeSettings::default()
        };
        assert!(forge("acme/widgets", None).validate().is_ok());
        assert!(forge("acme/widgets", Some("https://ghe.example.com/api/v3")).validate().is_ok());
        assert!(forge("acme/widgets", Some("http://127.0.0.1:8080")).validate().is_ok());
        for (repo, api) in [
            ("acme", None),
            ("acme/widgets/x", None),
            ("acme/wid gets", None),
            ("acme/widgets", Some("http://ghe.example.com")),
            ("acme/widgets", Some("http://127.0.0.1.evil.com")),
            ("acme/widgets", Some("ftp://x")),
        ] {
            assert!(forge(repo, api).validate().is_err(), "{repo} {api:?}");
        }
        let bad = ProjectSettings { auto_pr: true, ..Default::default() };
        assert!(bad.validate().unwrap_err().contains("[forge]"));
        let many = ProjectSettings { fix_attempts: Some(11), ..Default::default() };
        assert!(many.validate().unwrap_err().contains("fix_attempts must be at most 10"));
    }
}

/// The first answer to a request made under an `Idempotency-Key`: a repeat of
/// the request (the same caller, key and body) gets this answer again, and
/// creates nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotentAnswer {
    /// Whose key it is: the hash of the caller's token.
    pub scope: String,
    /// The key the caller chose.
    pub key: String,
    /// A digest of the request (method, path and body), so the key reused for
    /// another request is told apart.
    pub request: String,
    /// The answer's HTTP status.
    pub status: u16,
    /// The answer's JSON body.
    pub body: String,
    /// When the first request was answered.
    pub created_at: Timestamp,
}

/// A task's forge issue (a labelled issue, or an `@baton` comment on one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IssueLink {
    /// The issue's number.
    pub number: u64,
    /// Whether the issue was told of the task's pull request.
    #[serde(default)]
    pub pr_told: bool,
    /// Whether the issue was told how the task ended.
    #[serde(default)]
    pub end_told: bool,
}

/// The lead Baton runs for a project: which agent, its task, and the fencing
/// number that tells its acting session from an earlier one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeadRecord {
    /// The project.
    pub project_id: ProjectId,
    /// The agent that leads.
    pub agent: String,
    /// Whether a lead is wanted (started, not stopped or done).
    pub wanted: bool,
    /// Its task: a long-lived conversation, at rest between its wakings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// The session that leads now; a request from an earlier one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<SessionId>,
    /// Raised at every change of the record: a writer that read an older one
    /// gives up (so two replicas never start two leads).
    pub fence: u64,
    /// How many times it was started again (resumed or fresh) after it died.
    #[serde(default)]
    pub restarts: u32,
    /// When it was last started again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restarted_at: Option<Timestamp>,
    /// Whether the run now queued resumes it after it died (if that fails, a
    /// fresh session starts with a handoff).
    #[serde(default)]
    pub reviving: bool,
    /// What happened last: why it restarted, started fresh or stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// When it was started.
    pub started_at: Timestamp,
    /// When it ends at the latest (4 hours after it started, by default).
    pub deadline: Timestamp,
    /// When it said it was done (every task of the project settled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<Timestamp>,
    /// A timer it set: when to wake it, and what to tell it then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_at: Option<Timestamp>,
    /// What the timer tells it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wake_note: Option<String>,
}
