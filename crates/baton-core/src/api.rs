//! The data types of the coordinator's HTTP API, shared by the server and its
//! clients (CLI, launcher, MCP server): requests, responses, the error shape with
//! its stable codes, and the launcher protocol.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::agent::{AgentDef, ExecutorKind};
use crate::event::NewEvent;
use crate::ids::{LauncherId, ProjectId, RunId, TaskId};
use crate::model::{
    CheckResult, Launcher, MergeStrategy, ProgramInfo, Project, ProjectSettings, Run, Session, SpoolOffsets, Task,
    TaskGit, Usage,
};
use crate::status::RunStatus;

/// The stable error codes of the API. Clients match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON (400).
    MalformedJson,
    /// The body is JSON of the wrong shape: a missing field, a wrong type, an unknown field (400).
    InvalidBody,
    /// A value breaks a rule: an unsafe name, an unknown executor, an empty prompt (400).
    InvalidArgument,
    /// Each field is valid but together they break a rule the operation's
    /// document states in words, as a schema cannot: both or neither of two
    /// fields, a field another one rules out (422).
    InvalidCombination,
    /// Text in a language of its own (a project's TOML settings, an agent's
    /// Markdown front matter, a cron expression, an interval, a prompt
    /// template) that does not parse or breaks that language's rules; `details`
    /// say where when it can (422).
    InvalidContent,
    /// An id given as a prefix matches more than one thing (409: a longer prefix
    /// names one).
    AmbiguousId,
    /// `depends_on` would make a cycle (422: each task is valid, the set is not).
    DependencyCycle,
    /// The body is not `application/json` (415).
    UnsupportedMediaType,
    /// No token, or one Baton does not know (401).
    Unauthorized,
    /// The token may not do this (403).
    Forbidden,
    /// The request came from a web page of another origin (403).
    ForbiddenOrigin,
    /// The thing named does not exist (404).
    NotFound,
    /// The method is not allowed on this path (405).
    MethodNotAllowed,
    /// The thing already exists (409).
    AlreadyExists,
    /// The thing is not in a state that allows this (409).
    IllegalTransition,
    /// Merging would conflict with the base branch (409).
    MergeConflict,
    /// The task's reviewer has not approved its work; `force` merges anyway (409).
    ReviewRequired,
    /// The forge refused: branch protection, a pull request not mergeable (409).
    ForgeRefused,
    /// Another conflict with the current state (409).
    Conflict,
    /// The body or an event is larger than allowed (413).
    PayloadTooLarge,
    /// Over a rate limit, such as a trigger's tasks an hour (429); `details`
    /// names the limit.
    RateLimited,
    /// An `Idempotency-Key` already used for another request (422): a key
    /// stands for one request, and its repeats.
    IdempotencyKeyReused,
    /// A launcher speaks an older launcher protocol than the coordinator needs
    /// (426): the message names both; upgrade the launcher.
    UpgradeRequired,
    /// The coordinator cannot do this now (503).
    Unavailable,
    /// The database cannot be reached now; the request changed nothing that was
    /// acknowledged, and may be sent again (503).
    StoreUnavailable,
    /// The disk holding the database is full; nothing was changed, and the request
    /// may be sent again once there is space (507).
    InsufficientStorage,
    /// Something went wrong inside the coordinator; its log has the details (500).
    Internal,
}

impl ErrorCode {
    /// The code as sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::InvalidBody => "invalid_body",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::AmbiguousId => "ambiguous_id",
            ErrorCode::DependencyCycle => "dependency_cycle",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::ForbiddenOrigin => "forbidden_origin",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::IllegalTransition => "illegal_transition",
            ErrorCode::MergeConflict => "merge_conflict",
            ErrorCode::ReviewRequired => "review_required",
            ErrorCode::ForgeRefused => "forge_refused",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::InvalidCombination => "invalid_combination",
            ErrorCode::InvalidContent => "invalid_content",
            ErrorCode::UpgradeRequired => "upgrade_required",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::StoreUnavailable => "store_unavailable",
            ErrorCode::InsufficientStorage => "insufficient_storage",
            ErrorCode::Internal => "internal",
        }
    }

    /// The HTTP status that goes with the code.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedJson | ErrorCode::InvalidBody | ErrorCode::InvalidArgument => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden | ErrorCode::ForbiddenOrigin => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::AlreadyExists
            | ErrorCode::IllegalTransition
            | ErrorCode::MergeConflict
            | ErrorCode::ReviewRequired
            | ErrorCode::ForgeRefused
            | ErrorCode::AmbiguousId
            | ErrorCode::Conflict => 409,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::IdempotencyKeyReused
            | ErrorCode::InvalidCombination
            | ErrorCode::InvalidContent
            | ErrorCode::DependencyCycle => 422,
            ErrorCode::UpgradeRequired => 426,
            ErrorCode::RateLimited => 429,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable | ErrorCode::StoreUnavailable => 503,
            ErrorCode::InsufficientStorage => 507,
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error response: `{"error": {"code": ..., "message": ..., "details": ...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// The inside of an error response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorDetail {
    /// Stable code (see [`ErrorCode`]).
    pub code: ErrorCode,
    /// What happened, for people.
    pub message: String,
    /// Machine-readable particulars (the conflicting files, the cycle, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
}

/// `POST /api/projects`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// Path of a git repository with at least one commit.
    #[schemars(regex(pattern = "^/"))]
    pub path: String,
    /// A name (the directory's name by default).
    #[serde(default)]
    #[schemars(regex(pattern = crate::names::SIMPLE_NAME_PATTERN))]
    pub name: Option<String>,
    /// The base branch (the repository's current branch by default).
    #[serde(default)]
    #[schemars(regex(pattern = crate::names::BRANCH_NAME_PATTERN))]
    pub default_branch: Option<String>,
    /// Settings (`.baton/config.toml` of the repository by default), checked as
    /// that file is: a setting that breaks one of its rules (README,
    /// Configuration) is refused with 422 invalid_content naming it.
    #[serde(default)]
    pub settings: Option<ProjectSettings>,
}

/// Whether a task waits for `baton approve` (`"required"`, `"none"`, `true`, `false`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Approval(pub bool);

impl schemars::JsonSchema for Approval {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Approval".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Whether a task waits for `baton approve`.",
            "oneOf": [{"type": "boolean"}, {"type": "string", "enum": ["required", "none", "auto"]}]
        })
    }
}

impl<'de> Deserialize<'de> for Approval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::Bool(b) => Ok(Approval(b)),
            Value::String(s) if s == "required" => Ok(Approval(true)),
            Value::String(s) if s == "none" || s == "auto" => Ok(Approval(false)),
            other => Err(serde::de::Error::custom(format!(
                "approval must be \"required\", \"none\" or a boolean, not {other}"
            ))),
        }
    }
}

/// `POST /api/tasks`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTask {
    /// The project's id or name (for agents, their own project by default).
    #[serde(default)]
    pub project: Option<String>,
    /// What to do.
    #[schemars(regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub prompt: String,
    /// A short title (the prompt's first line by default): 1 to 200 characters,
    /// not blank, no control characters.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::names::LINE_PATTERN))]
    pub title: Option<String>,
    /// The agent to use (by default one matching `tags`, else the project's default).
    #[serde(default)]
    pub agent: Option<String>,
    /// Capabilities wanted, for routing.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Ids (or unique prefixes) of tasks that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Acceptance checks (the project's by default), none of them blank.
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::NOT_BLANK_PATTERN)))]
    pub checks: Option<Vec<String>>,
    /// Seconds each run may take.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_s: Option<u64>,
    /// Seconds a run may go without output before it is stopped as stalled
    /// (default: the agent's; none: never).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stall_s: Option<u64>,
    /// Automatic retries of a failed run.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Spending limit in US dollars.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// Whether the task waits for approval before it starts.
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The branch to work on (default `baton/<short-id>-<slug-of-title>`), a
    /// name `git check-ref-format` takes, not starting with `-`.
    #[serde(default)]
    #[schemars(regex(pattern = crate::names::BRANCH_NAME_PATTERN))]
    pub branch: Option<String>,
    /// For agents starting tasks: resume the calling session with the result.
    #[serde(default)]
    pub callback: bool,
    /// How its agent is isolated (`auto`, `required`, `off`, `container`),
    /// overriding the agent's and the project's setting.
    #[serde(default)]
    pub sandbox: Option<crate::sandbox::SandboxMode>,
    /// Launcher labels a host must have to run it (`gpu`, `region=eu`).
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::LABEL_PATTERN)))]
    pub require: Vec<String>,
    /// How many times its session is resumed to fix failing checks (and
    /// conflicts, and its pull request's failures); default: the agent's, the
    /// project's, else 2; 0 turns the loops off; at most 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::model::MAX_LOOP_ROUNDS))]
    pub fix_attempts: Option<u32>,
    /// `refuse` or `resume` when its merge conflicts (default: the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<crate::model::OnConflict>,
    /// The agent that reviews its work before it succeeds (default: the agent's, the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_by: Option<String>,
    /// The model its agent runs with, overriding the agent's (1 to 200
    /// characters, no control characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::names::LINE_PATTERN))]
    pub model: Option<String>,
    /// The branch it starts from and lands on (default: the project's default
    /// branch); it must exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::BRANCH_NAME_PATTERN))]
    pub base: Option<String>,
    /// Files for its agent, from the context store (push them first); each
    /// reaches the agent beside its worktree, never on its branch, and is named
    /// in its prompt. At most 10 MiB each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<AttachFile>,
    /// How many times requested changes go back to its agent (default 2; at most 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::model::MAX_LOOP_ROUNDS))]
    pub review_rounds: Option<u32>,
    /// A workset (its name): the task changes all its projects together, its
    /// agent working in one directory with a worktree of each, and lands in all
    /// of them or none. Its first project is the task's (`project` must be
    /// that one, or left out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workset: Option<String>,
}

/// A project's configuration file (`GET|PUT /api/projects/{id}/config`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectConfig {
    /// Where it is (answers only; ignored in a request).
    #[serde(default)]
    pub path: String,
    /// Its TOML.
    pub text: String,
}

/// `POST /api/tasks/{id}/review`: a person's review of a task's work.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonReview {
    /// The verdict, if the person gives one; it counts for `review_required`
    /// as a reviewer agent's does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<crate::model::Verdict>,
    /// Comments, each on a file and line of the diff.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub comments: Vec<crate::model::ReviewComment>,
    /// Send the comments to the task's agent as its next turn (queued while it works).
    #[serde(default)]
    pub send: bool,
}

/// `POST /api/tasks/{id}/messages`: a message to the task's agent.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessage {
    /// What to say (not blank).
    #[schemars(length(min = 1), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub text: String,
}

/// `POST /api/tasks/{id}/revert`: one file set back to its base's version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertFile {
    /// The file's path in the repository (relative, without `.` or `..`).
    #[schemars(regex(pattern = crate::names::REPO_PATH_PATTERN))]
    pub file: String,
}

/// `POST /api/attempts`: the same task started several times at once, to
/// compare the attempts and keep the best (`POST /api/tasks/{id}/keep`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAttempts {
    /// The task every attempt does, without `branch` (each has its own; 422
    /// invalid_combination otherwise).
    pub task: CreateTask,
    /// How many copies of it (1 to 10; 2 by default), when `agents` is empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 10))]
    pub count: Option<u32>,
    /// One attempt per agent named (at most 10), instead of `count` copies (both
    /// given: 422 invalid_combination).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 10))]
    pub agents: Vec<String>,
}

/// `POST /api/tasks/{id}/keep`: keep one attempt.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeepAttempt {
    /// Whether to merge it too (default true): a succeeded attempt lands on its
    /// base, through the merge queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merge: Option<bool>,
}

/// What keeping an attempt did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Kept {
    /// The kept task (merged, when it was asked to be).
    pub task: crate::model::Task,
    /// The other attempts, cancelled (their worktrees are removed once they are
    /// at rest; their branches stay).
    pub cancelled: Vec<crate::ids::TaskId>,
}

/// A file to attach to a new task: its name for the agent, and the context
/// store document that holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachFile {
    /// The file's name, as the agent sees it: 1 to 200 characters, no `/`, backslash
    /// or NUL, not starting with `.`.
    #[schemars(regex(pattern = r"^[^./\\\x00][^/\\\x00]{0,199}$"))]
    pub name: String,
    /// The document holding its bytes.
    #[schemars(regex(pattern = crate::names::DOC_NAME_PATTERN), length(min = 1, max = 200))]
    pub doc: String,
}

/// `POST /api/tasks/{id}/resume`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeTask {
    /// The follow-up message for the agent.
    #[schemars(regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub message: String,
    /// A new budget for the task, in US dollars (to continue a task paused for
    /// its budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
}

/// `POST /api/tasks/{id}/stop` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopTask {
    /// Why, for the record.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /api/tasks/{id}` and the rest: a task with its sessions' summary.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskDetail {
    /// The task.
    #[serde(flatten)]
    pub task: Task,
    /// Its sessions, oldest first.
    #[serde(default)]
    pub sessions: Vec<Session>,
    /// The runs of its current session, oldest first.
    #[serde(default)]
    pub runs: Vec<Run>,
    /// Other live tasks of the project that change some of the same files.
    #[serde(default)]
    pub overlaps: Vec<Overlap>,
}

/// The conflict radar: another live task changing some of the same files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Overlap {
    /// The other task.
    pub task_id: TaskId,
    /// The files both change.
    pub files: Vec<String>,
}

/// `GET /api/projects/{id}/radar`: every live task that overlaps another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RadarEntry {
    /// The task.
    pub task_id: TaskId,
    /// Whom it overlaps, and where.
    pub overlaps: Vec<Overlap>,
}

/// `POST /api/tasks/{id}/merge` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeTask {
    /// How to merge (the project's strategy by default).
    #[serde(default)]
    pub strategy: Option<MergeStrategy>,
    /// Merge even though the task's reviewer has not approved it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub force: bool,
}

/// `POST /api/tasks/{id}/clean` and `POST /api/clean` (the body is optional).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CleanRequest {
    /// Remove worktrees even with uncommitted changes or unmerged commits.
    #[serde(default)]
    pub force: bool,
}

/// What cleaning a task's worktree did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CleanReport {
    /// The task.
    pub task_id: TaskId,
    /// The worktree.
    pub worktree: Option<String>,
    /// Whether it was removed.
    pub removed: bool,
    /// Why not, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused: Option<String>,
    /// Files with uncommitted changes that removing it would lose.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub uncommitted: Vec<String>,
    /// Commits on its branch that the base does not have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmerged_commits: Vec<String>,
    /// The launcher that has the worktree has not answered yet: it removes the
    /// worktree when it is back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending: bool,
}

/// `GET /api/tasks/{id}/diff`: what the task changed against its base.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diff {
    /// The task (for a workset task, every repository's changes, each file under
    /// its project's name).
    pub task_id: TaskId,
    /// The commit it started from.
    pub base: String,
    /// Its branch.
    pub branch: String,
    /// The files it changes.
    pub files: Vec<String>,
    /// `git diff --stat` style summary.
    pub stat: String,
    /// The patch (committed and, while the worktree exists, uncommitted changes).
    pub patch: String,
    /// New files not yet committed (not in the patch).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untracked: Vec<String>,
}

/// `GET /api/agents` entries: a definition and whether its CLI can run here.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentInfo {
    /// The definition.
    #[serde(flatten)]
    pub def: AgentDef,
    /// Whether some online launcher offers its executor and has its program.
    pub available: bool,
    /// The program it needs (the CLI, or the first word of `command`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// Where online launchers found that program (or not), with its version.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub installs: Vec<ProgramInstall>,
    /// How to install the program, when no online launcher has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub install_hint: Option<String>,
}

/// An agent's program on one launcher.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProgramInstall {
    /// The launcher's name.
    pub launcher: String,
    /// Where the program is; `None` when it is not installed there.
    pub path: Option<String>,
    /// Its version.
    pub version: Option<String>,
}

// ---------------------------------------------------------------------------
// Plans, orchestrations, the lead's status.
// ---------------------------------------------------------------------------

/// `POST /api/plans` (JSON or YAML): a DAG of tasks in one call. Tasks name each
/// other by their names in the plan; the whole plan is checked before anything is
/// created.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePlan {
    /// A name for people.
    #[serde(default)]
    pub name: Option<String>,
    /// The project's id or name.
    #[serde(default)]
    pub project: Option<String>,
    /// Values for every task that does not set its own.
    #[serde(default)]
    pub defaults: PlanDefaults,
    /// The tasks: 1 to 50,000, each named once (two of one name: 422
    /// invalid_combination).
    #[schemars(length(min = 1, max = 50_000))]
    pub tasks: Vec<PlanTask>,
    /// A final task that depends on every other and receives every result.
    #[serde(default)]
    pub synthesis: Option<PlanSynthesis>,
    /// For an agent's session: wake it once, when every task of the plan has
    /// ended, with how each ended (instead of a callback per task).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub callback: bool,
}

/// Shared defaults of a plan's tasks.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanDefaults {
    /// The agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Capabilities wanted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Acceptance checks, none of them blank.
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::NOT_BLANK_PATTERN)))]
    pub checks: Option<Vec<String>>,
    /// Seconds each run may take.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_s: Option<u64>,
    /// Automatic retries.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Spending limit per task.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// Approval gate.
    #[serde(default)]
    pub approval: Option<Approval>,
}

/// One task of a plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanTask {
    /// Its name in the plan (how other tasks depend on it).
    #[schemars(regex(pattern = crate::names::SIMPLE_NAME_PATTERN))]
    pub name: String,
    /// What to do.
    #[schemars(regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub prompt: String,
    /// A title (the name by default): 1 to 200 characters, not blank, no control characters.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::names::LINE_PATTERN))]
    pub title: Option<String>,
    /// The agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// Capabilities wanted.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Names of plan tasks (or ids of existing tasks) that must succeed first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Acceptance checks, none of them blank.
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::NOT_BLANK_PATTERN)))]
    pub checks: Option<Vec<String>>,
    /// Seconds each run may take.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub timeout_s: Option<u64>,
    /// Automatic retries.
    #[serde(default)]
    pub max_retries: Option<u32>,
    /// Spending limit.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// Approval gate (`required`).
    #[serde(default)]
    pub approval: Option<Approval>,
    /// The branch.
    #[serde(default)]
    #[schemars(regex(pattern = crate::names::BRANCH_NAME_PATTERN))]
    pub branch: Option<String>,
    /// How its agent is isolated.
    #[serde(default)]
    pub sandbox: Option<crate::sandbox::SandboxMode>,
    /// Launcher labels a host must have to run it.
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::LABEL_PATTERN)))]
    pub require: Vec<String>,
    /// A workset whose first project is the plan's: this task changes all its
    /// projects together (the others stay single-project).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workset: Option<String>,
}

/// The synthesis task of a plan.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlanSynthesis {
    /// What to do with the results.
    #[schemars(regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub prompt: String,
    /// The agent.
    #[serde(default)]
    pub agent: Option<String>,
    /// A title: 1 to 200 characters, not blank, no control characters.
    #[serde(default)]
    #[schemars(length(min = 1, max = 200), regex(pattern = crate::names::LINE_PATTERN))]
    pub title: Option<String>,
}

/// What `POST /api/plans` created.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanCreated {
    /// The plan.
    pub plan: crate::model::Plan,
    /// Its tasks, in the order they were listed (the synthesis last); the whole
    /// tasks are at `GET /api/plans/{id}`.
    pub tasks: Vec<PlannedTask>,
}

/// A task a plan created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlannedTask {
    /// Its name in the plan.
    pub name: String,
    /// Its id.
    pub id: TaskId,
    /// Its status right after the plan was submitted.
    pub status: crate::status::TaskStatus,
    /// Why it waits or is blocked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `POST /api/plans/check`: what a plan would create, checked as `POST
/// /api/plans` checks it, with nothing created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PlanCheck {
    /// The plan's tasks, prerequisites first (the synthesis last).
    pub tasks: Vec<CheckedTask>,
}

/// A task of a checked plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CheckedTask {
    /// Its name in the plan (`synthesis` for the synthesis).
    pub name: String,
    /// Its title.
    pub title: String,
    /// The agent that would run it.
    pub agent: String,
    /// The tasks it waits for: names of the plan's tasks, ids of existing ones.
    pub depends_on: Vec<String>,
    /// Whether it waits for approval before it starts.
    pub approval: bool,
}

/// `POST /api/orchestrate/task`: plan, execute and synthesise a description.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Orchestrate {
    /// What to build.
    #[schemars(regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub description: String,
    /// The project's id or name.
    #[serde(default)]
    pub project: Option<String>,
    /// The planning agent.
    #[serde(default)]
    pub planner: Option<String>,
    /// The synthesising agent.
    #[serde(default)]
    pub synthesizer: Option<String>,
    /// Accepted for compatibility with the seed's API; unused.
    #[serde(default)]
    pub master_deployment_id: Option<String>,
}

/// `GET /api/orchestrate/agents` entries: the experts a plan can name.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentTemplate {
    /// What a plan's `agent_type` names it by.
    #[serde(rename = "type")]
    pub kind: String,
    /// Its name.
    pub name: String,
    /// What it is good at.
    pub description: String,
    /// Keywords it is matched by.
    pub tags: Vec<String>,
}

/// `POST /api/projects/{id}/heartbeat`: the lead is alive.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadBeat {
    /// Who beats (the session's agent for a session token).
    #[serde(default)]
    pub source: Option<String>,
    /// The lead's session.
    #[serde(default)]
    pub session_key: Option<String>,
    /// The lead's view of the work.
    #[serde(default)]
    pub state: Option<Value>,
}

/// `GET /api/projects/{id}/orchestrator`: the lead's status, in seed 000's shape.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadStatus {
    /// `running` (recent heartbeat), `stale`, or `stopped`.
    pub status: String,
    /// Whether the status is `running`.
    pub is_running: bool,
    /// Running, and no task is failed or blocked.
    pub is_healthy: bool,
    /// The last heartbeat.
    pub last_poll: Option<crate::time::Timestamp>,
    /// Milliseconds since the last heartbeat.
    pub time_since_last_poll: Option<i64>,
    /// The lead's session, when the last heartbeat came from one.
    pub session_key: Option<String>,
    /// Who gave the last heartbeat.
    pub source: Option<String>,
    /// Agents at work.
    pub active_agents: Vec<ActiveAgent>,
    /// Tasks succeeded.
    pub completed_count: u64,
    /// Counts and the next wave.
    pub state: LeadState,
    /// The lead Baton runs for the project, when one was started: its session,
    /// whether it works or rests, and how it was kept alive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<crate::memory::LeadView>,
}

/// An agent at work, in seed 000's shape.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveAgent {
    /// The agent's name.
    pub agent_id: String,
    /// Its task.
    pub task_id: String,
    /// The task's title.
    pub task_title: String,
    /// When it started.
    pub spawned_at: Option<crate::time::Timestamp>,
    /// Its session.
    pub session_key: Option<String>,
}

/// Task counts, in seed 000's shape.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LeadState {
    /// All tasks.
    pub tasks_total: u64,
    /// Succeeded.
    pub tasks_completed: u64,
    /// Queued, running or checking.
    pub tasks_in_progress: u64,
    /// Pending or waiting for approval.
    pub tasks_todo: u64,
    /// Tasks that start next: queued ones, and pending ones whose prerequisites are
    /// all done or in progress.
    pub next_wave: Vec<String>,
}

// ---------------------------------------------------------------------------
// The launcher protocol.
// ---------------------------------------------------------------------------

/// The launcher protocol this build speaks, sent by a launcher on every request
/// in the [`LAUNCHER_PROTOCOL_HEADER`] header and by the coordinator in
/// [`Registered::protocol`]. Protocol 1 is Baton before the header (a launcher
/// without it speaks 1); 2 adds what assignments carry since (a task's model,
/// base branch, attachments and memory), which a launcher of protocol 1 would
/// silently leave out.
pub const LAUNCHER_PROTOCOL: u32 = 2;

/// The oldest launcher protocol a coordinator of this build works with: an
/// older launcher is refused with 426 upgrade_required, never given an
/// assignment it would misread.
pub const MIN_LAUNCHER_PROTOCOL: u32 = 2;

/// The oldest coordinator protocol a launcher of this build works with.
pub const MIN_COORDINATOR_PROTOCOL: u32 = 2;

/// The header a launcher names its protocol in.
pub const LAUNCHER_PROTOCOL_HEADER: &str = "baton-launcher-protocol";

/// `POST /api/launchers/register`: a launcher introduces itself.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterLauncher {
    /// The id it had before a restart, so its runs are recognised.
    #[serde(default)]
    pub id: Option<LauncherId>,
    /// A name for people.
    pub name: String,
    /// Its host.
    pub hostname: String,
    /// Its Baton version.
    pub version: String,
    /// How many agents it runs at once.
    pub slots: u32,
    /// The executors it can run.
    pub executors: Vec<ExecutorKind>,
    /// Its labels (`gpu`, `region=eu`).
    #[serde(default)]
    #[schemars(inner(regex(pattern = crate::names::LABEL_PATTERN)))]
    pub labels: Vec<String>,
    /// The best isolation it can give agents.
    #[serde(default)]
    pub sandbox: Option<crate::sandbox::SandboxReport>,
}

/// The answer to registration.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Registered {
    /// The launcher as the coordinator records it.
    pub launcher: Launcher,
    /// How often to send heartbeats.
    pub heartbeat_interval_ms: u64,
    /// The launcher protocol the coordinator speaks (0 from a coordinator
    /// older than the field, which speaks 1).
    #[serde(default)]
    pub protocol: u32,
}

/// `POST /api/launchers/{id}/poll`: wait for work or stop orders. The coordinator
/// hands out at most the launcher's free slots (its slots minus its unfinished
/// runs), counted when work arrives, not when the poll began.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PollRequest {
    /// How long to wait for something to arrive, in milliseconds.
    pub wait_ms: u64,
    /// The runs the launcher has: a run claimed for it that is not among them
    /// (the claim's answer was lost) is handed to it again.
    #[serde(default)]
    pub running: Option<Vec<RunId>>,
}

/// What a poll returns: runs to start and runs to stop.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PollResponse {
    /// Newly claimed runs.
    pub runs: Vec<Assignment>,
    /// Runs to stop.
    pub stops: Vec<StopOrder>,
    /// Other orders: checkpoints wanted now, worktrees to remove. Each comes
    /// again (every 15 s) until the launcher says it is done.
    #[serde(default)]
    pub orders: Vec<crate::model::LauncherOrder>,
}

/// `POST /api/launchers/{id}/orders/done`: a launcher did (or could not do) an order.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderDone {
    /// The order's kind.
    pub kind: crate::model::OrderKind,
    /// What it was about.
    pub subject: String,
    /// Whether it was done.
    pub ok: bool,
    /// Why not.
    #[serde(default)]
    pub refused: Option<String>,
    /// Files with uncommitted changes (a removal refused for them).
    #[serde(default)]
    pub uncommitted: Vec<String>,
}

/// `POST /api/tokens`: a new token for a machine.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    /// What it is for: `launcher` (sessions get theirs from Baton; there is one admin token).
    #[schemars(extend("enum" = ["launcher"]))]
    pub kind: crate::model::TokenKind,
    /// A name for people (the host it is for): 1 to 128 characters, no
    /// control characters, not blank.
    #[serde(default)]
    #[schemars(length(min = 1, max = 128), regex(pattern = crate::names::LINE_PATTERN))]
    pub name: Option<String>,
}

/// The answer to `POST /api/tokens`: the token, shown this once.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NewToken {
    /// Its id (to list and revoke it).
    pub id: String,
    /// The token itself: kept nowhere but here.
    pub token: String,
}

/// `GET /api/tokens` entries: a token without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// What it allows.
    pub kind: crate::model::TokenKind,
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The launcher it is bound to (after that launcher's first registration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launcher: Option<String>,
    /// When it was made.
    pub created_at: crate::time::Timestamp,
}

/// Everything a launcher needs to start (or re-attach to) a run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Assignment {
    /// The run.
    pub run: Run,
    /// Its task.
    pub task: Task,
    /// Its session.
    pub session: Session,
    /// The task's project.
    pub project: Project,
    /// The agent's definition, resolved.
    pub agent: AgentDef,
    /// The text to give the agent for this turn (rendered prompt, or the resume message).
    pub prompt: String,
    /// Environment for the agent process (`BATON_*`, including its session token).
    pub env: BTreeMap<String, String>,
    /// Seconds the run may take.
    pub timeout_s: Option<u64>,
    /// Seconds between the interrupt and SIGKILL when stopping.
    pub grace_s: u64,
    /// The task's prerequisites and their branches, to merge into a new branch.
    #[serde(default)]
    pub prerequisites: Vec<Prerequisite>,
    /// The commit of the base branch a new branch starts from (the base's head
    /// when the run was claimed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_commit: Option<String>,
    /// The base branch's head now, for a run asked to merge it into the task's
    /// branch (a conflict to resolve): the launcher brings it into the worktree's
    /// object store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_head: Option<String>,
    /// The agent's memory as it reaches the agent (its blocks and newest
    /// journal entries), for an agent that keeps one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// For a task on a workset: its other projects, each checked out beside the
    /// task's own in one directory.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub workset: Vec<crate::workset::WorksetCheckout>,
}

/// A prerequisite of the task being started.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Prerequisite {
    /// The prerequisite task.
    pub task_id: TaskId,
    /// Its branch.
    pub branch: Option<String>,
    /// Its branch's commit.
    #[serde(default)]
    pub head: Option<String>,
}

/// An order to stop a run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StopOrder {
    /// The run.
    pub run_id: RunId,
    /// Why.
    pub reason: String,
}

/// `POST /api/launchers/{id}/attach`: a restarted launcher names the runs it still
/// has on disk.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    /// Runs found in its spool directory.
    pub runs: Vec<RunId>,
}

/// What the coordinator knows of each run a launcher re-attaches to.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AttachResponse {
    /// One entry per run asked about.
    pub runs: Vec<Attached>,
}

/// One re-attached run.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attached {
    /// The run.
    pub run_id: RunId,
    /// Its assignment, when the coordinator still expects it to be running; `None`
    /// means the run is unknown or already finished, and the launcher cleans it up.
    pub assignment: Option<Assignment>,
    /// Set when the run should be stopped.
    pub stop: Option<String>,
}

/// `POST /api/runs/{id}/started`: the agent process is alive.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunStarted {
    /// Its process (and process group) id.
    pub pid: i32,
    /// Git state of the task after its worktree was prepared.
    #[serde(default)]
    pub git: Option<TaskGit>,
    /// How the agent is isolated.
    #[serde(default)]
    pub sandbox: Option<crate::sandbox::SandboxReport>,
}

/// `POST /api/runs/{id}/events`: a batch of events parsed from the spool between
/// two offsets. The coordinator stores the events and the new offsets in one
/// transaction, so a batch sent twice is stored once.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventBatch {
    /// Where the batch starts in the spool (must equal what was acknowledged).
    pub from: SpoolOffsets,
    /// Where it ends.
    pub to: SpoolOffsets,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// The files the task's worktree now changes against its base (for the
    /// conflict radar), when the launcher looked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_changed: Option<Vec<String>>,
}

/// The answer to a batch.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct BatchAck {
    /// What is now acknowledged.
    pub offsets: SpoolOffsets,
    /// The session's last sequence number.
    pub last_seq: i64,
    /// Set when the coordinator wants the run stopped (a budget was exceeded).
    #[serde(default)]
    pub stop: Option<String>,
}

/// `PUT /api/sessions/{id}/state`: what an agent's CLI keeps of its conversation
/// (its session files), so another host can resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionState {
    /// The executor whose files these are.
    pub executor: crate::agent::ExecutorKind,
    /// The working directory they were written in.
    pub cwd: String,
    /// The files, relative to the agent's HOME (Codex: its `CODEX_HOME`).
    pub files: Vec<StateFile>,
}

/// One file of a [`SessionState`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateFile {
    /// Its path, relative.
    pub path: String,
    /// Its bytes, base64-encoded.
    pub content_base64: String,
}

/// `POST /api/runs/{id}/checkpoint`: a snapshot of the task's worktree, pushed
/// to `refs/baton/checkpoints/<task>`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Checkpoint {
    /// The snapshot's commit (its parent is the agent's HEAD when it was taken).
    pub commit: String,
}

/// `POST /api/runs/{id}/finished`: the agent process ended.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFinished {
    /// How it ended: succeeded, failed, stopped, timed_out or lost.
    pub status: RunStatus,
    /// Its exit code.
    #[serde(default)]
    pub exit_code: Option<i32>,
    /// The signal that ended it.
    #[serde(default)]
    pub signal: Option<i32>,
    /// What went wrong.
    #[serde(default)]
    pub error: Option<String>,
    /// Git state after the work was committed.
    #[serde(default)]
    pub git: Option<TaskGit>,
    /// The acceptance checks that ran, in order.
    #[serde(default)]
    pub checks: Vec<CheckResult>,
    /// The final answer, when the agent gave none as a `result` event (its last
    /// message, or the end of its output).
    #[serde(default)]
    pub result: Option<String>,
    /// What kind of failure it was, when another agent might not have it.
    #[serde(default)]
    pub failure: Option<FailureKind>,
}

// ---------------------------------------------------------------------------
// The context store.
// ---------------------------------------------------------------------------

/// `POST /api/docs`: create a document, or write a new version of it (the earlier
/// versions are kept). Fields left out of an edit keep their values.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushDoc {
    /// Its name: `/`-separated segments of letters, digits, `.`, `_`, `-`.
    #[schemars(regex(pattern = crate::names::DOC_NAME_PATTERN), length(min = 1, max = 200))]
    pub name: String,
    /// Its text. Give exactly one of `content` and `content_base64` (422
    /// invalid_combination otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Binary content, base64-encoded with padding (stored as a file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::BASE64_PATTERN))]
    pub content_base64: Option<String>,
    /// Its media type (default `text/markdown` for text, `application/octet-stream`
    /// for bytes). Content of a JSON or YAML type (`application/json`,
    /// `+json`, `application/yaml`, ...) must parse as one (422
    /// invalid_combination otherwise), so a raw read always answers what its type says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::MEDIA_TYPE_PATTERN))]
    pub content_type: Option<String>,
    /// Labels (replace the earlier ones when given): at most 64, each 1 to 64
    /// characters with no white space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 64), regex(pattern = crate::names::TAG_PATTERN)))]
    pub tags: Option<Vec<String>>,
    /// Metadata (replaces the earlier one when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Links to other documents (replace the earlier ones when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relations: Option<Vec<crate::doc::Relation>>,
    /// The project it is about (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Add `content` at the end of the current version's text (on a line of its
    /// own) instead of replacing it: what an agent whose document rules let it
    /// only append may do. Needs `content` (422 invalid_combination otherwise).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub append: bool,
}

/// `GET /api/docs/{name}`: a document with its content and its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocDetail {
    /// The document (a binary one's bytes are in `content_base64`).
    #[serde(flatten)]
    pub doc: crate::doc::Document,
    /// A binary document's bytes, base64-encoded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_base64: Option<String>,
    /// Every version, newest first.
    #[serde(default)]
    pub versions: Vec<crate::doc::DocVersion>,
    /// Documents that name this one in their relations.
    #[serde(default)]
    pub referenced_by: Vec<String>,
}

/// `GET /api/docs` entries: a document without its content, and for a search its
/// relevance and the passage that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocEntry {
    /// The document (`content` left out).
    #[serde(flatten)]
    pub doc: crate::doc::Document,
    /// Relevance, higher is better (searches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// The matching passage, matches in `[` `]` (searches only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snippet: Option<String>,
    /// Why it was found: by its words, by its meaning, or both (searches of
    /// `/api/docs/search` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched: Option<MatchedBy>,
}

/// How a search of the context store ranks documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SearchMode {
    /// Words and meaning, ranked together (reciprocal rank fusion); the default
    /// when an embeddings endpoint is configured.
    Hybrid,
    /// The words typed (full-text search); the default without embeddings.
    Words,
    /// Meaning only: the passages whose embeddings are nearest the query's.
    Meaning,
}

impl SearchMode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Words => "words",
            SearchMode::Meaning => "meaning",
        }
    }
}

/// Why a document was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MatchedBy {
    /// Its words (names, tags or content).
    Words,
    /// A passage's meaning, near the query's.
    Meaning,
    /// Both.
    Both,
}

/// `GET /api/docs/search`: the documents found, best first, and how the search
/// went.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocSearch {
    /// The mode searched in (`words` when no embeddings endpoint is configured
    /// and none was asked for).
    pub mode: SearchMode,
    /// The documents found, best first: each with why and which passage.
    pub hits: Vec<DocEntry>,
    /// True when meaning results may be missing: documents still wait to be
    /// embedded, or the endpoint could not embed the query.
    pub partial: bool,
    /// Documents waiting to be embedded.
    pub pending: u64,
    /// What limited the search, in words (`searched words only: no embeddings
    /// endpoint is configured`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// How long its parts took.
    #[serde(default)]
    pub took: SearchTook,
}

/// How long a search's parts took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SearchTook {
    /// Embedding the query at the endpoint (0 for a search by words).
    pub embed_ms: f64,
    /// Ranking (words, meaning, their fusion) and reading the hits.
    pub rank_ms: f64,
}

/// `GET|POST /api/docs/index`: the meaning index's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocIndex {
    /// The embeddings endpoint's base URL (none: search is by words only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The model the stored vectors are of.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// How many dimensions its vectors have.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dims: Option<u32>,
    /// Documents waiting to be embedded.
    pub pending: u64,
    /// Documents that could not be embedded, given up on until a reindex.
    pub failed: u64,
    /// Documents whose last try failed, with why (the failed ones first).
    pub failures: Vec<IndexFailure>,
    /// Documents queued by this request (`POST` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
}

/// A document the endpoint could not embed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IndexFailure {
    /// The document.
    pub name: String,
    /// Its version.
    pub version: u32,
    /// Tries so far.
    pub attempts: u32,
    /// Why the last one failed.
    pub error: String,
    /// Given up on until a reindex (else tried again later).
    pub failed: bool,
}

/// Money and tokens one agent spent in one project (sessions summed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Spend {
    /// The project.
    pub project_id: ProjectId,
    /// The agent definition's name.
    pub agent: String,
    /// What its sessions spent there.
    pub usage: Usage,
}

/// `GET /api/costs`: what was spent, in all and per project and agent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Costs {
    /// Everything.
    pub total: Usage,
    /// Per project, by project id.
    pub projects: BTreeMap<String, Usage>,
    /// Per agent, by name.
    pub agents: BTreeMap<String, Usage>,
    /// Per project and agent.
    pub rows: Vec<Spend>,
}

impl Costs {
    /// Sums the rows.
    pub fn of(rows: Vec<Spend>) -> Self {
        let mut costs = Costs::default();
        for row in &rows {
            costs.total.add(&row.usage);
            costs.projects.entry(row.project_id.to_string()).or_default().add(&row.usage);
            costs.agents.entry(row.agent.clone()).or_default().add(&row.usage);
        }
        costs.rows = rows;
        costs
    }
}

impl RunFinished {
    /// A run that ended without the agent reporting anything more: lost, stopped
    /// before it started, or failed to launch.
    pub fn ended(status: RunStatus, error: impl Into<String>) -> Self {
        RunFinished {
            status,
            exit_code: None,
            signal: None,
            error: Some(error.into()),
            git: None,
            checks: Vec::new(),
            result: None,
            failure: None,
        }
    }
}

/// A failure another agent might not have: the CLI is missing, or the provider
/// refused the credentials or is overloaded. A task whose agent names `fallback`
/// agents switches to the next one on such a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The agent's CLI is not installed (or cannot start).
    CliMissing,
    /// The provider rejected the credentials (expired login, bad key).
    Credentials,
    /// The provider is overloaded or rate limiting.
    Overloaded,
}

/// `GET /api/pools`: a concurrency pool (a provider or an account) and what
/// the governor knows of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PoolInfo {
    /// Its name (`anthropic`, `openai`, `google`, or one `[pools]` or an agent names).
    pub name: String,
    /// The size `[pools]` gives it (the smallest where several projects do); none: no limit.
    pub size: Option<u32>,
    /// How many of its runs may work at once now: the size, or lower after rate limiting.
    pub limit: Option<u32>,
    /// Whether the limit is lowered now (it grows back as runs succeed).
    pub lowered: bool,
    /// Its runs working now.
    pub in_use: u32,
    /// Its runs waiting for a slot.
    pub queued: u32,
    /// How many times its provider refused for rate limits in the last hour.
    pub throttled_last_hour: u32,
    /// When it last did.
    pub last_throttled_at: Option<crate::time::Timestamp>,
    /// No run of it starts before this (the provider's `Retry-After`).
    pub paused_until: Option<crate::time::Timestamp>,
    /// The agents in it.
    pub agents: Vec<String>,
}

/// `POST /api/launchers/{id}/heartbeat`.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    /// The runs it is supervising.
    pub running: Vec<RunId>,
    /// How many more it can take.
    pub free_slots: u32,
    /// The agents' programs on its host, when that changed since the last heartbeat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub programs: Option<BTreeMap<String, ProgramInfo>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn approval_accepts_words_and_booleans() {
        let t: CreateTask = serde_json::from_str(r#"{"prompt":"x","approval":"required"}"#).unwrap();
        assert_eq!(t.approval, Some(Approval(true)));
        let t: CreateTask = serde_json::from_str(r#"{"prompt":"x","approval":false}"#).unwrap();
        assert_eq!(t.approval, Some(Approval(false)));
        assert!(serde_json::from_str::<CreateTask>(r#"{"prompt":"x","approval":"maybe"}"#).is_err());
    }

    #[test]
    fn unknown_fields_are_refused() {
        assert!(serde_json::from_str::<CreateTask>(r#"{"prompt":"x","dependson":[]}"#).is_err());
    }

    #[test]
    fn codes_serialize_as_their_names() {
        for code in [ErrorCode::MalformedJson, ErrorCode::NotFound, ErrorCode::IllegalTransition] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
    }
}

/// A Claude Code hook's JSON, as `baton hook` sends it to `POST /api/hooks`: the
/// two fields Baton needs, and whatever else the hook carries.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClaudeHook {
    /// Claude Code's session id.
    #[schemars(regex(pattern = "^[A-Za-z0-9_-]{1,128}$"))]
    pub session_id: String,
    /// The hook: `SessionStart`, `UserPromptSubmit`, `PreToolUse`, `PostToolUse`, `Stop`, …
    #[schemars(regex(pattern = "^[A-Za-z0-9]{1,64}$"))]
    pub hook_event_name: String,
    /// The rest of the hook's fields (`cwd`, `prompt`, `tool_name`, …), kept as sent.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// What `POST /api/hooks` answers.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct HookRecorded {
    /// The task that stands for the Claude Code session.
    pub task_id: Option<crate::ids::TaskId>,
    /// Its session.
    pub session_id: Option<crate::ids::SessionId>,
    /// Why nothing was recorded (a session Baton runs itself reports through its output).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ignored: Option<String>,
}

/// One hour of the fleet's work, from the aggregates the coordinator keeps up
/// to date as tasks end and agents spend (`GET /api/stats/hourly`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HourStats {
    /// When the hour began.
    pub start: crate::time::Timestamp,
    /// Tasks that ended in it, by the status they ended in.
    pub finished: BTreeMap<String, u64>,
    /// Tasks waiting to start at its end (its last sample, for the hour under way).
    pub queued: Option<u64>,
    /// What agents spent in it, in US dollars, by project id.
    pub cost_by_project: BTreeMap<String, f64>,
    /// What agents spent in it, in US dollars, by agent.
    pub cost_by_agent: BTreeMap<String, f64>,
}
