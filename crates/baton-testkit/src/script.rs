//! Scripts: what the fake model answers, turn by turn.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the fake model does, turn by turn.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// One entry per model turn.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Input tokens reported for each turn.
    #[serde(default = "default_input")]
    pub input_tokens: u64,
    /// Output tokens reported for each turn.
    #[serde(default = "default_output")]
    pub output_tokens: u64,
    /// Rate limiting: the first requests of agent turns (and of
    /// `/_fake/limited`) are refused with 429 and a `Retry-After`.
    #[serde(default)]
    pub throttle: Option<Throttle>,
}

/// How many requests the fake refuses for rate limits, and the `Retry-After` it names.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Throttle {
    /// How many requests are refused, counted across every API.
    pub requests: u64,
    /// The `Retry-After` header, in seconds.
    pub retry_after_s: u64,
}

fn default_input() -> u64 {
    1000
}

fn default_output() -> u64 {
    50
}

/// One model turn.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Text the model says (the turn's whole answer when it calls no tool).
    #[serde(default)]
    pub text: Option<String>,
    /// A file to write, relative to the CLI's working directory, through its own
    /// file tool (or a shell command where it has none).
    #[serde(default)]
    pub write: Option<WriteFile>,
    /// A shell command to run through the CLI's shell tool.
    #[serde(default)]
    pub bash: Option<String>,
    /// Any tool call, by the name the CLI knows it (for example an MCP tool).
    #[serde(default)]
    pub tool: Option<ToolCall>,
    /// Answer with an HTTP error instead.
    #[serde(default)]
    pub error: Option<ApiError>,
    /// Wait this long before answering.
    #[serde(default)]
    pub delay_ms: u64,
}

/// A file to write.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteFile {
    /// Relative to the working directory (or absolute).
    pub path: String,
    /// What to write.
    pub content: String,
}

/// A tool call by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolCall {
    /// The tool's name.
    pub name: String,
    /// Its input.
    #[serde(default)]
    pub input: Value,
}

/// An HTTP error to answer with.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiError {
    /// The HTTP status (400, 401, 429, 500, 529, ...).
    pub status: u16,
    /// The error message.
    pub message: String,
}

impl Step {
    /// A turn that only says `text`.
    pub fn text(text: &str) -> Self {
        Step { text: Some(text.to_owned()), ..Default::default() }
    }

    /// A turn that writes a file.
    pub fn write(path: &str, content: &str) -> Self {
        Step { write: Some(WriteFile { path: path.to_owned(), content: content.to_owned() }), ..Default::default() }
    }

    /// A turn that runs a shell command.
    pub fn bash(command: &str) -> Self {
        Step { bash: Some(command.to_owned()), ..Default::default() }
    }

    /// A turn that calls a tool by name (an MCP tool: `mcp__<server>__<tool>`).
    pub fn tool(name: &str, input: Value) -> Self {
        Step { tool: Some(ToolCall { name: name.to_owned(), input }), ..Default::default() }
    }

    /// A turn that answers with an HTTP error.
    pub fn error(status: u16, message: &str) -> Self {
        Step { error: Some(ApiError { status, message: message.to_owned() }), ..Default::default() }
    }

    /// The same turn, after a delay.
    pub fn after_ms(mut self, ms: u64) -> Self {
        self.delay_ms = ms;
        self
    }
}

impl Script {
    /// A script of these steps.
    pub fn new(steps: Vec<Step>) -> Self {
        Script { steps, input_tokens: default_input(), output_tokens: default_output(), throttle: None }
    }

    /// The same script, refusing its first `requests` requests with 429 and
    /// `Retry-After: retry_after_s`.
    pub fn throttled(mut self, requests: u64, retry_after_s: u64) -> Self {
        self.throttle = Some(Throttle { requests, retry_after_s });
        self
    }

    /// The step for a conversation that already has `turns` model turns.
    pub fn step(&self, turns: usize) -> Step {
        self.steps.get(turns).cloned().unwrap_or_else(|| Step::text("Done."))
    }
}

/// A path made absolute against the CLI's working directory.
pub(crate) fn absolute(cwd: Option<&str>, path: &str) -> String {
    match cwd {
        Some(dir) if !path.starts_with('/') => format!("{}/{}", dir.trim_end_matches('/'), path),
        _ => path.to_owned(),
    }
}

/// A string quoted for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The command that writes a file, for CLIs without a file tool.
pub(crate) fn write_command(w: &WriteFile) -> String {
    format!("printf %s {} > {}", sh_quote(&w.content), sh_quote(&w.path))
}
