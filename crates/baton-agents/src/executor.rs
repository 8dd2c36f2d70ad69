//! The executors, as one closed enum, and what each needs to start a turn.

use std::collections::BTreeMap;

use baton_core::agent::{AgentDef, ExecutorKind};
use baton_core::model::RunKind;

use crate::command::CommandParser;
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
    /// This build does not drive this executor yet.
    #[error("the {0} executor is not available in this build of Baton")]
    Unsupported(ExecutorKind),
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

impl Executor {
    /// The command line for a turn.
    pub fn launch(self, turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
        match self {
            Executor::Command => command_launch(turn),
            Executor::ClaudeCode => Err(LaunchError::Unsupported(ExecutorKind::ClaudeCode)),
            Executor::Codex => Err(LaunchError::Unsupported(ExecutorKind::Codex)),
            Executor::Gemini => Err(LaunchError::Unsupported(ExecutorKind::Gemini)),
            Executor::Acp => Err(LaunchError::Unsupported(ExecutorKind::Acp)),
        }
    }

    /// A fresh parser for the agent's output.
    pub fn parser(self) -> Box<dyn OutputParser> {
        match self {
            Executor::Command | Executor::ClaudeCode | Executor::Codex | Executor::Gemini | Executor::Acp => {
                Box::new(CommandParser::default())
            }
        }
    }
}

fn command_launch(turn: &TurnRequest<'_>) -> Result<Launch, LaunchError> {
    let agent = turn.agent;
    let (program, rest) = agent.command.split_first().ok_or_else(|| LaunchError::Definition {
        agent: agent.name.clone(),
        why: "the command executor needs `command`".into(),
    })?;
    let mut env = BTreeMap::new();
    env.insert("BATON_PROMPT".to_owned(), turn.prompt.to_owned());
    if !agent.system_prompt.is_empty() {
        env.insert("BATON_SYSTEM_PROMPT".to_owned(), agent.system_prompt.clone());
    }
    if turn.kind == RunKind::Resume {
        env.insert("BATON_RESUME".to_owned(), "1".to_owned());
        if let Some(id) = turn.agent_session_id {
            env.insert("BATON_AGENT_SESSION_ID".to_owned(), id.to_owned());
        }
    }
    Ok(Launch {
        program: program.clone(),
        args: rest.iter().chain(&agent.args).cloned().collect(),
        env,
        stdin: Some(turn.prompt.to_owned()),
    })
}
