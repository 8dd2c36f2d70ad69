//! What lives between an agent's tasks: its memory (labelled blocks, each with
//! a character limit, every version kept), its journal (what Baton recorded at
//! each task's end, and notes the agent appended), and its inbox (messages
//! sent to it, with their states).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{SessionId, TaskId};
use crate::time::Timestamp;

/// The owner of blocks several agents share.
pub const SHARED: &str = "shared";

/// The blocks every agent with memory has, with their limits in characters.
pub const DEFAULT_BLOCKS: &[(&str, u32, &str)] = &[
    ("persona", 2_000, "Who you are and how you work: kept across tasks."),
    ("notes", 5_000, "What you learned that the next task should know."),
];

/// The largest limit a block may have, in characters.
pub const MAX_BLOCK_LIMIT: u32 = 100_000;

/// One version of a labelled block of an agent's memory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryBlock {
    /// Its owner: the agent's name, or `shared`.
    pub owner: String,
    /// Its label (`persona`, `notes`, …).
    pub label: String,
    /// What it holds.
    pub text: String,
    /// How many characters it may hold; a write past it is refused.
    pub limit: u32,
    /// What it is for, as the agent is told.
    #[serde(default)]
    pub description: String,
    /// Whether the agent may only read it (people still write it).
    #[serde(default)]
    pub read_only: bool,
    /// For a shared block: the agents that see it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<String>,
    /// Its version: 1 for the first, one more for each write.
    pub version: u32,
    /// Who wrote this version (`admin`, an agent's session).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub written_by: Option<String>,
    /// When.
    pub updated_at: Timestamp,
}

impl MemoryBlock {
    /// Its size, in characters.
    pub fn chars(&self) -> u32 {
        self.text.chars().count() as u32
    }
}

/// What kind of journal entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum JournalKind {
    /// Baton's record of a task's end: outcome, diff stat, cost, last message.
    Outcome,
    /// A note the agent (or a person) appended.
    Note,
}

/// An entry of an agent's journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct JournalEntry {
    /// Its place in the journal (assigned by the store; 0 before).
    #[serde(default)]
    pub seq: i64,
    /// The agent.
    pub agent: String,
    /// What kind.
    pub kind: JournalKind,
    /// The task it is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// What it says.
    pub text: String,
    /// Particulars (status, diff stat, cost).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
    /// When.
    pub at: Timestamp,
}

/// Where a message to an agent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageState {
    /// Waiting for the agent.
    Queued,
    /// Given to the agent (a task of its own, taken before its queued tasks).
    Delivered,
    /// The agent's task for it ended.
    Done,
    /// Not taken: the sender may not message the agent, or the agent is gone.
    Refused,
}

/// A message in an agent's inbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentMessage {
    /// Its id (`msg-` and 12 hex digits).
    pub id: String,
    /// The agent it is for.
    pub to: String,
    /// Who sent it: `admin`, or the sending agent's name.
    pub from: String,
    /// The sending session, which hears how it ended (as a callback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_session: Option<SessionId>,
    /// What it says.
    pub text: String,
    /// Where it is.
    pub state: MessageState,
    /// The task that took it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<TaskId>,
    /// Why it was refused, or how its task ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was sent.
    pub created_at: Timestamp,
    /// When it last changed.
    pub updated_at: Timestamp,
}

/// How a write changes a block.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WriteMode {
    /// Its text becomes the text given.
    #[default]
    Replace,
    /// The text given is added at its end, on a line of its own.
    Append,
}

/// A write of a block (`PUT /api/agents/{name}/memory/{label}`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteBlock {
    /// The text.
    pub text: String,
    /// Replace (the default) or append.
    #[serde(default)]
    pub mode: WriteMode,
    /// A new limit, in characters (people only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// Whether the agent may only read it (people only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only: Option<bool>,
    /// What it is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Share it with these agents too (people only; it becomes a shared block).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub share_with: Vec<String>,
}

/// `GET /api/agents/{name}/memory`: an agent's blocks and the newest entries
/// of its journal, with what reaches the agent.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryView {
    /// The agent.
    pub agent: String,
    /// Its blocks now (its own, and the shared ones that name it).
    pub blocks: Vec<MemoryBlock>,
    /// Its journal, newest first (at most 50 entries).
    pub journal: Vec<JournalEntry>,
    /// How many characters of memory reach the agent at the start of a task.
    pub context_chars: u32,
    /// The most that may reach it.
    pub context_budget: u32,
}

/// `POST /api/agents/{name}/memory/{label}/revert`: bring back an earlier version.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertBlock {
    /// The version whose text becomes the newest.
    pub version: u32,
}

/// `POST /api/agents/{name}/journal`: a note in an agent's journal.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalNote {
    /// What to note: 1 to 20,000 characters, not blank.
    #[schemars(length(min = 1, max = 20_000), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub text: String,
}

/// `POST /api/agents/{name}/messages`: a message to an agent's inbox.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendToAgent {
    /// What to say: 1 to 100,000 characters, not blank.
    #[schemars(length(min = 1, max = 100_000), regex(pattern = crate::names::NOT_BLANK_PATTERN))]
    pub text: String,
    /// The project its work belongs to (a sending agent's own by default; needed
    /// from a person when there are several projects).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// `GET /api/agents/{name}/memory/context`: exactly what reaches the agent.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MemoryContext {
    /// The agent.
    pub agent: String,
    /// The text, as the agent gets it (empty for an agent without memory).
    pub text: String,
}

/// `GET /api/me`: who a token speaks for.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Me {
    /// `admin`, `launcher` or `session`.
    pub kind: String,
    /// For a session token: its session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<SessionId>,
    /// For a session token: the session's task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskId>,
    /// For a session token: the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// For a session token: the project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// The lead Baton runs for a project, as people see it (`GET
/// /api/projects/{id}/lead`, and in `/orchestrator`).
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LeadView {
    /// Its record.
    #[serde(flatten)]
    pub record: crate::model::LeadRecord,
    /// The project's name.
    pub project: String,
    /// `working` (its process runs a turn), `idle` (at rest: no process, no
    /// model call), `reviving` (its run died; Baton brings it back), `stopped`
    /// or `done`.
    pub state: String,
    /// Its task's status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_status: Option<crate::status::TaskStatus>,
    /// Its agent process, while it works.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// When its task last changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<Timestamp>,
}

/// `POST /api/projects/{id}/lead/start`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartLead {
    /// The agent that leads (default: the project's `lead` setting).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// `POST /api/projects/{id}/lead/wake`: the lead's timer.
#[derive(Debug, Clone, Default, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WakeLead {
    /// In how many seconds.
    pub in_s: u64,
    /// What to tell it then.
    #[serde(default)]
    pub note: String,
}

/// `GET /api/agents/status`: an agent that lives between tasks (one with
/// memory, or one that leads a project), as the cluster view shows it.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgentStatus {
    /// The agent.
    pub agent: String,
    /// `working` (a task of it runs), `messages queued` (its inbox waits for
    /// it), or `idle`.
    pub state: String,
    /// Its tasks at work now.
    pub working: u32,
    /// Its tasks waiting for a slot.
    pub queued_tasks: u32,
    /// Messages waiting in its inbox.
    pub queued_messages: u32,
    /// Whether it keeps a memory.
    pub memory: bool,
    /// Its blocks' sizes, in characters, summed.
    pub memory_chars: u32,
    /// Their limits, summed.
    pub memory_limit: u32,
    /// The projects it leads (Baton keeps each alive).
    pub leads: Vec<LeadView>,
    /// When it last did something (a task of it changed, or its journal grew).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_activity: Option<Timestamp>,
}
