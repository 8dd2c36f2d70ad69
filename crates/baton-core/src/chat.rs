//! Chat: Slack and Discord channels that talk to the fleet. A project's
//! `[chat.slack]` and `[chat.discord]` settings; what comes in (events,
//! commands, button presses), queued durably and deduplicated; the threads
//! bound to tasks; and what goes out, through a durable outbox.

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, SessionId, TaskId};
use crate::time::Timestamp;

/// A chat service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatService {
    /// Slack.
    Slack,
    /// Discord.
    Discord,
}

impl ChatService {
    /// Its name in keys and settings.
    pub fn as_str(self) -> &'static str {
        match self {
            ChatService::Slack => "slack",
            ChatService::Discord => "discord",
        }
    }
}

impl std::fmt::Display for ChatService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `[chat]` in a project's config.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChatSettings {
    /// `[chat.slack]`.
    pub slack: Option<SlackSettings>,
    /// `[chat.discord]`.
    pub discord: Option<DiscordSettings>,
}

/// Who may do what, by chat user id. A mention or a command that starts work
/// needs `operators` (or `admins`); reading needs `viewers` (or more).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ChatRoles {
    /// Everything, merges included.
    pub admins: Vec<String>,
    /// Start, stop, approve, retry and talk to agents.
    pub operators: Vec<String>,
    /// Read status.
    pub viewers: Vec<String>,
}

/// What a chat user may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ChatRole {
    /// Nothing: anyone not named.
    None,
    /// Read status.
    Viewer,
    /// Start and steer work.
    Operator,
    /// Everything.
    Admin,
}

impl ChatRoles {
    /// The role of `user`.
    pub fn of(&self, user: &str) -> ChatRole {
        if self.admins.iter().any(|u| u == user) {
            ChatRole::Admin
        } else if self.operators.iter().any(|u| u == user) {
            ChatRole::Operator
        } else if self.viewers.iter().any(|u| u == user) {
            ChatRole::Viewer
        } else {
            ChatRole::None
        }
    }
}

/// `[chat.slack]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct SlackSettings {
    /// The coordinator's variable holding the bot token (`xoxb-…`).
    pub bot_token_env: String,
    /// The coordinator's variable holding the app's signing secret (HTTP events).
    pub signing_secret_env: Option<String>,
    /// The coordinator's variable holding an app-level token (`xapp-…`) for
    /// Socket Mode: no public URL needed.
    pub app_token_env: Option<String>,
    /// The Web API's root (default `https://slack.com/api`).
    pub api_url: Option<String>,
    /// The channel's id (`C…`): events from it act in this project.
    pub channel: String,
    /// Who answers a plain mention (default: the project's default agent).
    pub agent: Option<String>,
    /// Who may do what.
    #[serde(flatten)]
    pub roles: ChatRoles,
}

/// `[chat.discord]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordSettings {
    /// The coordinator's variable holding the bot token.
    pub bot_token_env: String,
    /// The application's public key (hex), which signs its interactions.
    pub public_key: String,
    /// The application's id.
    pub application_id: String,
    /// The REST API's root (default `https://discord.com/api/v10`).
    pub api_url: Option<String>,
    /// The Gateway's URL (default: asked of the API), for messages in threads
    /// and a Baton with no public URL.
    pub gateway_url: Option<String>,
    /// The channel's id: events from it act in this project.
    pub channel: String,
    /// Who answers a plain mention (default: the project's default agent).
    pub agent: Option<String>,
    /// Who may do what.
    #[serde(flatten)]
    pub roles: ChatRoles,
}

impl ChatSettings {
    /// Checks what can be checked without the environment.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(s) = &self.slack {
            if s.bot_token_env.is_empty() || s.channel.is_empty() {
                return Err("[chat.slack] needs bot_token_env and channel".into());
            }
            if s.signing_secret_env.is_none() && s.app_token_env.is_none() {
                return Err("[chat.slack] needs signing_secret_env (HTTP events) or app_token_env (Socket Mode)".into());
            }
            check_url("[chat.slack] api_url", s.api_url.as_deref())?;
        }
        if let Some(d) = &self.discord {
            if d.bot_token_env.is_empty() || d.channel.is_empty() || d.application_id.is_empty() {
                return Err("[chat.discord] needs bot_token_env, application_id and channel".into());
            }
            let hex_ok = d.public_key.len() == 64 && d.public_key.chars().all(|c| c.is_ascii_hexdigit());
            if !hex_ok {
                return Err("[chat.discord] public_key must be the application's 64 hex digits".into());
            }
            check_url("[chat.discord] api_url", d.api_url.as_deref())?;
            check_url("[chat.discord] gateway_url", d.gateway_url.as_deref())?;
        }
        Ok(())
    }
}

fn check_url(what: &str, url: Option<&str>) -> Result<(), String> {
    match url {
        Some(u)
            if !(u.starts_with("https://")
                || u.starts_with("http://")
                || u.starts_with("wss://")
                || u.starts_with("ws://")) =>
        {
            Err(format!("{what} = {u:?} must be an http(s) or ws(s) URL"))
        }
        _ => Ok(()),
    }
}

/// What a chat user asked for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ChatAsk {
    /// A mention of Baton or of an agent, or a DM: talk to an agent.
    Mention {
        /// What was said (the mention taken out).
        text: String,
    },
    /// A reply in a thread (bound to a task, or not).
    Reply {
        /// What was said.
        text: String,
    },
    /// `/baton …`.
    Command {
        /// Its text after `/baton`.
        text: String,
    },
    /// A button: `approve`, `merge`, `retry`, `stop` on a task.
    Button {
        /// Which.
        action: String,
        /// The task it is on.
        task: String,
    },
}

/// Something that came in from chat, kept until it is acted on (once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatInbound {
    /// Its deduplication key: the service's event id, message id or interaction id.
    pub key: String,
    /// The service.
    pub service: ChatService,
    /// The project whose channel it came from.
    pub project_id: ProjectId,
    /// The user who did it.
    pub user: String,
    /// The channel.
    pub channel: String,
    /// The thread it is in (Slack: the root's `ts`; Discord: the thread's channel id).
    pub thread: Option<String>,
    /// The message itself (Slack `ts`, Discord message id), a new thread's root.
    pub message: Option<String>,
    /// What was asked.
    pub ask: ChatAsk,
    /// Where the answer to a command or button goes (Slack `response_url`;
    /// Discord: the interaction's token).
    pub reply_to: Option<String>,
    /// `pending`, `done` or `failed`.
    pub state: String,
    /// What happened, when it is done or failed.
    pub outcome: Option<String>,
    /// When it came.
    pub received_at: Timestamp,
}

/// A thread bound to a task: replies in it resume that task's session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatThread {
    /// `service:channel:thread`.
    pub key: String,
    /// The service.
    pub service: ChatService,
    /// The project.
    pub project_id: ProjectId,
    /// The channel.
    pub channel: String,
    /// The thread.
    pub thread: String,
    /// The task.
    pub task_id: TaskId,
    /// Its session when bound.
    pub session_id: Option<SessionId>,
    /// The status message, edited as the task goes on.
    pub status_message: Option<String>,
    /// The status it last showed.
    pub shown: Option<String>,
    /// How many of the task's runs have had their answer posted.
    pub answered: u32,
    /// When it was bound.
    pub created_at: Timestamp,
}

impl ChatThread {
    /// The key of a thread.
    pub fn key_of(service: ChatService, channel: &str, thread: &str) -> String {
        format!("{service}:{channel}:{thread}")
    }
}

/// A button on a message Baton posts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatButton {
    /// `approve`, `merge`, `retry`, `stop`, `view`, `allow`, `deny`.
    pub action: String,
    /// What it acts on (a task, or a permission request).
    pub target: String,
    /// Its label.
    pub label: String,
}

/// What a post does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PostKind {
    /// A new message (in `thread` when set).
    New,
    /// An edit of message `message`.
    Edit {
        /// The message.
        message: String,
    },
    /// The answer to a command or a button (Slack `response_url`, Discord the
    /// interaction's original response), `ephemeral` to the user alone.
    Reply {
        /// Where.
        to: String,
        /// Whether only the user sees it.
        ephemeral: bool,
        /// Whether it replaces the message the button was on.
        replace: bool,
    },
}

/// A message Baton sends to chat, through the outbox (in order per channel,
/// paced, retried).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ChatPost {
    /// Its id.
    pub id: String,
    /// The service.
    pub service: ChatService,
    /// The project (its settings say the tokens).
    pub project_id: ProjectId,
    /// The channel.
    pub channel: String,
    /// The thread, when it goes in one.
    pub thread: Option<String>,
    /// New, edit or reply.
    pub post: PostKind,
    /// Posted under this agent's name (and avatar), or Baton's.
    pub as_agent: Option<String>,
    /// The text (cut to the service's limit, with a link to the rest).
    pub text: String,
    /// Buttons under it.
    pub buttons: Vec<ChatButton>,
    /// When sent, bind its thread (or itself, as a new thread's root) to this task.
    pub bind: Option<TaskId>,
    /// When sent, it becomes the status message of the thread bound to this task.
    pub status_of: Option<TaskId>,
    /// `pending`, `sent` or `failed`.
    pub state: String,
    /// Tries so far.
    pub attempts: u32,
    /// When it is tried next.
    pub next_at: Timestamp,
    /// The message it made (Slack `ts`, Discord id).
    pub result: Option<String>,
    /// Why it failed last.
    pub error: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// An agent's request for a permission it lacks (Claude Code's
/// `--permission-prompt-tool`), answered by a person in chat or, after its
/// deadline, by the agent's policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PermissionRequest {
    /// Its id (`perm-…`).
    pub id: String,
    /// The task asking.
    pub task_id: TaskId,
    /// The session asking.
    pub session_id: SessionId,
    /// The agent.
    pub agent: String,
    /// The tool it wants to use.
    pub tool: String,
    /// What it wants to do with it.
    pub input: serde_json::Value,
    /// `pending`, `allowed` or `denied`.
    pub state: String,
    /// Who answered (`slack:U…`, `discord:…`, `admin`), or `policy`.
    pub by: Option<String>,
    /// When it was asked.
    pub created_at: Timestamp,
    /// When the policy answers if nobody has.
    pub deadline: Timestamp,
    /// The policy then: `allow` or `deny`.
    pub policy: String,
}
