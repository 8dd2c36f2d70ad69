//! The tools' arguments. Every field's doc comment is its description in the
//! tool's input schema, which is what a model reads.

use std::collections::BTreeMap;

use baton_core::doc::Relation;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

/// Whether a tool returns at once or when the task has ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Wait {
    /// Return at once (the task runs on; check it with task_status).
    #[default]
    None,
    /// Return when the task has ended (or needs someone: blocked, awaiting approval).
    UntilDone,
}

/// `start_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartTask {
    /// What the agent should do: the whole task, with enough context to work alone.
    pub prompt: String,
    /// The agent to run (see list_agents); default: the project's default agent.
    pub agent: Option<String>,
    /// A short title (default: from the prompt); it names the task's branch.
    pub title: Option<String>,
    /// The project (id or name); default: the only one, or yours.
    pub project: Option<String>,
    /// Ids of tasks that must succeed first; their branches are merged into this task's worktree.
    pub depends_on: Option<Vec<String>>,
    /// Capabilities to route by when no agent is named.
    pub tags: Option<Vec<String>>,
    /// Acceptance checks: shell commands run in the worktree after the agent; all must pass.
    pub checks: Option<Vec<String>>,
    /// Stop the agent after this many seconds.
    pub timeout_s: Option<u64>,
    /// How many times to run it again if it fails.
    pub max_retries: Option<u32>,
    /// Stop the agent when it has spent this many US dollars.
    pub budget_usd: Option<f64>,
    /// Wait for someone to approve it before it starts.
    pub approval: Option<bool>,
    /// Deliver the task's result to you as a message when it ends (for agents run by Baton).
    pub callback: Option<bool>,
    /// `none` (default): return at once; `until_done`: return when the task has ended.
    pub wait: Option<Wait>,
    /// With wait=until_done, give up waiting after this many seconds (default 3600).
    pub wait_timeout_s: Option<u64>,
}

/// `resume_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeTaskArgs {
    /// The task's id (or a unique prefix of it).
    pub task: String,
    /// The next message for the task's agent.
    pub message: String,
    /// `none` (default): return at once; `until_done`: return when the turn has ended.
    pub wait: Option<Wait>,
    /// With wait=until_done, give up waiting after this many seconds (default 3600).
    pub wait_timeout_s: Option<u64>,
}

/// A task, by id.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TaskRef {
    /// The task's id (or a unique prefix of it).
    pub task: String,
}

/// `list_tasks`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListTasks {
    /// Only this project's tasks (id or name).
    pub project: Option<String>,
    /// Only tasks in these states, comma-separated (pending, queued, running, checking, succeeded, failed, cancelled, blocked, awaiting_approval).
    pub status: Option<String>,
    /// At most this many (default 50, at most 500).
    pub limit: Option<u32>,
    /// Only tasks older than this one: the `next` a full page named, for the
    /// page after it.
    pub before: Option<String>,
}

/// `stop_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StopTaskArgs {
    /// The task's id (or a unique prefix of it).
    pub task: String,
    /// Why, recorded on the task.
    pub reason: Option<String>,
}

/// `merge_task`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeArgs {
    /// The task's id (or a unique prefix of it).
    pub task: String,
    /// `merge`, `squash` or `rebase` (default: the project's).
    pub strategy: Option<String>,
}

/// `submit_plan`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitPlan {
    /// The plan: `{"name", "project", "defaults": {...}, "tasks": [{"name", "prompt", "agent", "depends_on": [names], "approval"}], "synthesis": {...}, "callback": true}` as a JSON object, or the same as YAML text. With `"callback": true` you are woken once, when every task of the plan has ended.
    pub plan: Value,
}

/// `doc_push`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocPushArgs {
    /// The document's name: `/`-separated segments of letters, digits, `.`, `_`, `-` (like `notes/api.md`).
    pub name: String,
    /// Its text (Markdown is usual).
    pub content: String,
    /// Labels to find it by (replace the earlier ones when given).
    pub tags: Option<Vec<String>>,
    /// Free-form metadata (replaces the earlier one when given).
    pub metadata: Option<BTreeMap<String, Value>>,
    /// Links to other documents: `[{"kind": "parent"|"child"|"related"|"predecessor"|"successor", "target": name}]`.
    pub relations: Option<Vec<Relation>>,
    /// The project it is about (id or name).
    pub project: Option<String>,
    /// Add the content at the end of the current version instead of replacing it (for logs).
    pub append: Option<bool>,
}

/// `doc_read`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocReadArgs {
    /// The document's name.
    pub name: String,
    /// An earlier version (default: the current one).
    pub version: Option<u32>,
}

/// `doc_query`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocQueryArgs {
    /// What to look for, in words or by what it means; none: the newest documents.
    pub query: Option<String>,
    /// `hybrid` (words and meaning ranked together; the default when Baton has an embeddings endpoint), `words` or `meaning`.
    pub mode: Option<baton_core::api::SearchMode>,
    /// Only documents with all of these tags.
    pub tags: Option<Vec<String>>,
    /// Only names starting with this.
    pub prefix: Option<String>,
    /// At most this many (default 10).
    pub limit: Option<u32>,
}

/// A document, by name.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocName {
    /// The document's name.
    pub name: String,
}

/// `memory_view`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryViewArgs {
    /// Show every version of this block instead of the whole memory.
    pub label: Option<String>,
}

/// `memory_write`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemoryWriteArgs {
    /// The block's label (`persona`, `notes`, or a new one of letters, digits, `-`, `_`).
    pub label: String,
    /// The text.
    pub text: String,
    /// `replace` (default): the block becomes this text; `append`: the text is added on a line of its own.
    pub mode: Option<baton_core::memory::WriteMode>,
}

/// `memory_search`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MemorySearchArgs {
    /// What to find in your archival memory (documents under `agents/YOUR_NAME/` in the context store), by words or meaning; empty lists the newest.
    pub query: Option<String>,
    /// `hybrid` (the default when Baton has an embeddings endpoint), `words` or `meaning`.
    pub mode: Option<baton_core::api::SearchMode>,
    /// At most this many (default 10).
    pub limit: Option<u32>,
}

/// `journal_append`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalAppendArgs {
    /// What to note (kept in your journal; the newest entries reach you at each task's start).
    pub text: String,
}

/// `send_message`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageArgs {
    /// The agent to send to (one your definition's `messages_to` or `delegates_to` names).
    pub to: String,
    /// What to say.
    pub text: String,
    /// A key of your choosing: sending again with the same key sends nothing more.
    pub key: Option<String>,
}

/// `lead_wake_me`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeadWakeArgs {
    /// In how many seconds to be woken (1 to 604800).
    pub in_s: u64,
    /// What you want to be told then.
    pub note: Option<String>,
}

/// `permission_prompt` (Claude Code's `--permission-prompt-tool`).
#[derive(Debug, Deserialize, JsonSchema)]
pub struct PermissionPromptArgs {
    /// The tool Claude Code wants to use.
    pub tool_name: String,
    /// Its input.
    #[serde(default)]
    pub input: Value,
    /// The tool use's id.
    #[serde(default)]
    pub tool_use_id: Option<String>,
}
