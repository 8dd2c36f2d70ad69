//! Work that starts by itself: schedules (a cron expression or an interval)
//! and incoming webhooks (a signed POST whose payload fills a template).

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, TaskId};
use crate::time::Timestamp;

/// What a schedule does with firings it missed while Baton was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CatchUp {
    /// Nothing: the next firing is the next due time from now.
    #[default]
    Skip,
    /// One firing for all of them, at once.
    Once,
}

/// A schedule: a task started at each due time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Schedule {
    /// Its id (`sch-…`; a config schedule's is made from its project and name).
    pub id: String,
    /// Its name (unique in its project).
    pub name: String,
    /// The project its tasks run in.
    pub project_id: ProjectId,
    /// A five-field cron expression, in UTC.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Or an interval, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every_ms: Option<u64>,
    /// The agent (default: the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What each task is asked.
    pub prompt: String,
    /// Missed firings.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Whether a firing starts while the previous task is still open.
    #[serde(default)]
    pub overlap: bool,
    /// Whether it is paused.
    #[serde(default)]
    pub paused: bool,
    /// Where it comes from: `api`, or `config` (the project's `[[schedules]]`).
    pub source: String,
    /// When it is next due.
    pub next_at: Timestamp,
    /// When it last fired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_fired_at: Option<Timestamp>,
    /// Its last task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_task: Option<TaskId>,
    /// What happened at the last due time (fired, skipped and why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_note: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// `POST /api/schedules`, and `[[schedules]]` in a project's config.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSchedule {
    /// Its name (default: made from the prompt): 1 to 100 characters, not blank.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 100), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub name: Option<String>,
    /// The project (default: the only one). Not in a config file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// A five-field cron expression, in UTC (`0 3 * * *`, `@daily`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// Or an interval: `30s`, `5m`, `2h`, `1d` (at least one second).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub every: Option<String>,
    /// The agent (default: the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// What each task is asked (not blank).
    #[schemars(length(min = 1), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub prompt: String,
    /// `skip` (default) or `once`.
    #[serde(default)]
    pub catch_up: CatchUp,
    /// Start a firing while the previous task is still open.
    #[serde(default)]
    pub overlap: bool,
}

/// An incoming webhook that starts a task: `POST /api/triggers/{name}`,
/// signed as Standard Webhooks says, its JSON filling the template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Trigger {
    /// Its name (its URL's last segment).
    pub name: String,
    /// The project its tasks run in.
    pub project_id: ProjectId,
    /// The agent.
    pub agent: String,
    /// The prompt, with `{{payload}}`, `{{payload.a.b}}`, `{{webhook_id}}`, `{{trigger}}`.
    pub template: String,
    /// At most this many tasks an hour; more are refused with 429.
    pub per_hour: u32,
    /// The signing secret (`whsec_…`), shown once when made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// `POST /api/triggers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTrigger {
    /// Its name: a simple name (letters, digits, `.`, `_`, `-`).
    #[schemars(regex(pattern = crate::names::SIMPLE_NAME_PATTERN))]
    pub name: String,
    /// The project (default: the only one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The agent.
    pub agent: String,
    /// The prompt template (not blank); placeholders other than the known
    /// ones are refused with 422 invalid_content.
    #[schemars(length(min = 1), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub template: String,
    /// At most this many tasks an hour (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_hour: Option<u32>,
    /// The signing secret (default: a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::SECRET_PATTERN))]
    pub secret: Option<String>,
}

/// A delivery a trigger took (kept for deduplication and its rate limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TriggerHit {
    /// The trigger.
    pub trigger: String,
    /// The delivery's `webhook-id`.
    pub webhook_id: String,
    /// The task it started.
    pub task_id: TaskId,
    /// When.
    pub at: Timestamp,
}
