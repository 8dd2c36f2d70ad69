//! The executors, as one closed enum, and what each needs to start a turn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use baton_core::agent::{AgentDef, ExecutorKind};
use baton_core::model::{RunKind, Usage};

use crate::claude::ClaudeParser;
use crate::codex::CodexParser;
use crate::command::CommandParser;
use crate::gemini::GeminiParser;
use crate::output::OutputParser;

/// What the launcher needs to know to start one turn of an agent.
#[derive(Debug, Clone)]
pub struct TurnRequest<'a> {
    /// The agent's definition.
    pub agent: &'a AgentDef,
    /// The text for this turn (the task's prompt, or a follow-up message).
    pub prompt: &'a str,
    /// Start or resume.
    pub kind: RunKind,
    /// The agent's own session id from an earlier turn, for a resume.
    pub agent_session_id: Option<&'a str>,
    /// The agent's working directory.
    pub cwd: &'a Path,
    /// The run's spool directory, for files the CLI is pointed at (MCP config).
    pub dir: &'a Path,
    /// The `baton` binary (the ACP executor runs `baton acp-client`).
    pub baton: &'a Path,
    /// Whether the agent runs inside Baton's sandbox (a CLI's own sandbox is
    /// then switched off rather than nested).
    pub sandboxed: bool,
    /// The agent's memory, for an agent that keeps one: how it reaches the agent
    /// depends on the CLI (never through the worktree).
    pub memory: Option<&'a str>,
    /// The agent's HOME when it is the task's own (made by the launcher), where a
    /// CLI's global instructions file may be written.
    pub own_home: Option<&'a Path>,
}

/// How to start the agent process for a turn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Environment added for this executor.
    pub env: BTreeMap<String, String>,
    /// What to write to its stdin (then closed); `None` gives it an empty stdin.
    pub stdin: Option<String>,
    /// Files to write before it starts (path, content).
    pub files: Vec<(PathBuf, String)>,
}

/// An executor that cannot run this turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LaunchError {
    /// The definition lacks something the executor needs.
    #[error("agent {agent}: {why}")]
    Definition {
        /// The agent.
        agent: String,
        /// What is missing.
        why: String,
    },
}

/// One adapter per kind of agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Executor {
    /// Claude Code.
    ClaudeCode,
    /// Codex CLI.
    Codex,
    /// Gemini CLI.
    Gemini,
    /// An ACP agent.
    Acp,
    /// Any command.
    Command,
}

impl From<ExecutorKind> for Executor {
    fn from(kind: ExecutorKind) -> Self {
        match kind {
            ExecutorKind::ClaudeCode => Executor::ClaudeCode,
            ExecutorKind::Codex => Executor::Codex,
            ExecutorKind::Gemini => Executor::Gemini,
            ExecutorKind::Acp => Executor::Acp,
            ExecutorKind::Command => Executor::Command,
        }
    }
}

/// The name of the MCP server Baton adds to agents that speak MCP.
pub const BATON_MCP: &str = "baton";

/// The variables that name an agent's session to its coordinator: handed to the
/// MCP servers it starts, and filled in (`${NAME}`) in the files a launch writes.
pub const SESSION_VARS: [&str; 4] = ["BATON_URL", "BATON_TOKEN", "BATON_SESSION_ID", "BATON_TASK_ID"];

/// Whether Baton adds its own MCP server to this agent's: unless the definition
/// says `baton_mcp: false` or names a `baton` server itself.
pub fn wants_baton_mcp(agent: &AgentDef) -> bool {
    agent.baton_mcp.unwrap_or(true) && !agent.mcp_servers.contains_key(BATON_MCP)
}

/// The prompt with the definition's system prompt before it, for CLIs that take
/// no system prompt of their own.
pub(crate) fn with_system_prompt(turn: &TurnRequest<'_>) -> String {
    match turn.agent.system_prompt.trim() {
        "" => turn.prompt.to_owned(),
        system => format!("{system}\n\n{}", turn.prompt),
    }
}

/// The prompt with the agent's memory before it, on a task's first turn: for
/// the CLIs that have no other way to get it.
pub(crate) fn with_memory(turn: &TurnRequest<'_>, prompt: String) -> String {
    match (turn.memory, turn.kind) {
        (Some(memory), RunKind::Start) => format!("{memory}\n---\n\n{prompt}"),
        _ => prompt,
    }
}

/// The agent's memory as a CLI's global instructions file in the task's own
/// HOME (`relative` to it): the file, or, when the HOME is not the task's own,
/// nothing (the memory then goes before the first prompt).
pub(crate) fn memory_file(turn: &TurnRequest<'_>, relative: &str) -> Option<(PathBuf, String)> {
    let memory = turn.memory?;
    let home = turn.own_home?;
    Some((home.join(relative), memory.to_owned()))
}

/// The MCP servers of an agent for a turn: its definition's, plus Baton's own
/// (`baton mcp`, which finds the coordinator and the session's token in the
/// agent's environment) unless the definition names a `baton` server itself or
/// says `baton_mcp: false`. In the definition's servers, `${BATON_URL}`,
/// `${BATON_TOKEN}` and `${BATON_SESSION_ID}` are replaced by the launcher.
pub fn mcp_servers(turn: &TurnRequest<'_>) -> BTreeMap<String, serde_json::Value> {
    let mut servers = turn.agent.mcp_servers.clone();
    if wants_baton_mcp(turn.agent) {
        servers.insert(
            BATON_MCP.to_owned(),
            serde_json::json!({ "command": turn.baton.to_string_lossy(), "args": ["mcp"] }),
        );
    }
    servers
}

/// The program of an agent and its leading arguments: `command` when the
/// definition gives one, else the CLI's usual name.
pub(crate) fn program(agent: &AgentDef, default: &str) -> (String, Vec<String>) {
    match agent.command.split_first() {
        Some((p, rest)) => (p.clone(), rest.to_vec()),
        None => (default.to_owned(), Vec::new()),
    }
}

impl Executor {
    /// The command line for a turn.
    pub fn launch(self, turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
        match self {
            Executor::Command => crate::command::launch(turn),
            Executor::ClaudeCode => crate::claude::launch(turn),
            Executor::Codex => crate::codex::launch(turn),
            Executor::Gemini => crate::gemini::launch(turn),
            Executor::Acp => crate::acp::launch(turn),
        }
    }

    /// A fresh parser for the agent's output. `counted` is the usage its session
    /// already recorded (for CLIs that report usage cumulatively).
    pub fn parser(self, agent: &AgentDef, counted: Usage) -> Box<dyn OutputParser> {
        match self {
            Executor::Command | Executor::Acp => Box::new(CommandParser::default()),
            Executor::ClaudeCode => Box::new(ClaudeParser::new(agent.pricing)),
            Executor::Codex => Box::new(CodexParser::new(counted, agent.pricing)),
            Executor::Gemini => Box::new(GeminiParser::new(agent.pricing)),
        }
    }
}

/// Finds a program the way `execvp` would: a path with a slash as it is, else
/// the first executable of that name on `path` (a `PATH`-style list).
pub fn find_program(program: &str, path: Option<&str>, cwd: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &Path| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false);
    if program.contains('/') {
        let p = cwd.join(program);
        return executable(&p).then_some(p);
    }
    path.unwrap_or("/usr/local/bin:/usr/bin:/bin")
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(program))
        .find(|p| executable(p))
}
