//! Agent definitions: reusable descriptions of a worker.
//!
//! The file format is Claude Code's own (`.claude/agents/*.md`): YAML front matter
//! with `name`, `description`, `tools`, `model`, and the system prompt as the body.
//! Baton's keys sit beside them (`executor`, `command`, `tags`, `delegates_to`,
//! `timeout_s`, `budget_usd`, `mcp_servers`, `fallback`, ...), and keys Baton does
//! not know (Claude Code's `color`, say) are kept, not refused, so one file serves
//! both tools.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::names::{NameError, validate_simple_name};
use crate::sandbox::{NetworkPolicy, SandboxMode};

/// How an agent is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ExecutorKind {
    /// Claude Code (`claude -p --output-format stream-json`).
    ClaudeCode,
    /// OpenAI Codex CLI (`codex exec --json`).
    Codex,
    /// Google Gemini CLI (`gemini -p -o stream-json`).
    Gemini,
    /// Any Agent Client Protocol agent over stdio.
    Acp,
    /// Any command: the prompt on stdin, each stdout line an event.
    Command,
}

impl ExecutorKind {
    /// Every executor.
    pub const ALL: &'static [ExecutorKind] = &[
        ExecutorKind::ClaudeCode,
        ExecutorKind::Codex,
        ExecutorKind::Gemini,
        ExecutorKind::Acp,
        ExecutorKind::Command,
    ];

    /// The concurrency pool its agents share unless they name their own: the
    /// provider whose account they use (ACP and command agents have none).
    pub fn default_pool(self) -> Option<&'static str> {
        match self {
            ExecutorKind::ClaudeCode => Some("anthropic"),
            ExecutorKind::Codex => Some("openai"),
            ExecutorKind::Gemini => Some("google"),
            ExecutorKind::Acp | ExecutorKind::Command => None,
        }
    }

    /// The name used in definitions and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::ClaudeCode => "claude-code",
            ExecutorKind::Codex => "codex",
            ExecutorKind::Gemini => "gemini",
            ExecutorKind::Acp => "acp",
            ExecutorKind::Command => "command",
        }
    }

    /// The program the executor runs when a definition names no `command`.
    pub fn default_program(self) -> Option<&'static str> {
        match self {
            ExecutorKind::ClaudeCode => Some("claude"),
            ExecutorKind::Codex => Some("codex"),
            ExecutorKind::Gemini => Some("gemini"),
            ExecutorKind::Acp | ExecutorKind::Command => None,
        }
    }

    /// How to install the executor's CLI, for the message when it is missing.
    pub fn install_hint(self) -> &'static str {
        match self {
            ExecutorKind::ClaudeCode => "install it with `npm install -g @anthropic-ai/claude-code`",
            ExecutorKind::Codex => "install it with `npm install -g @openai/codex`",
            ExecutorKind::Gemini => "install it with `npm install -g @google/gemini-cli`",
            ExecutorKind::Acp => {
                "install the ACP agent named in the definition's `command` (for example `npm install -g @agentclientprotocol/claude-agent-acp`)"
            }
            ExecutorKind::Command => "install it, or fix the definition's `command`",
        }
    }
}

impl fmt::Display for ExecutorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ExecutorKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        ExecutorKind::ALL
            .iter()
            .copied()
            .find(|e| e.as_str() == s)
            .ok_or_else(|| format!("unknown executor {s:?} (expected claude-code, codex, gemini, acp or command)"))
    }
}

/// A reusable definition of a worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentDef {
    /// Unique name (`[A-Za-z0-9._-]`, 1 to 64 characters; not `status`).
    #[schemars(regex(pattern = crate::names::AGENT_NAME_PATTERN))]
    pub name: String,
    /// When to use this agent, for leads and routing.
    #[serde(default)]
    pub description: String,
    /// How it is run.
    pub executor: ExecutorKind,
    /// The model to ask for (passed to the CLI as it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// Instructions given to the agent before the task.
    #[serde(default)]
    pub system_prompt: String,
    /// Tools the agent may use (Claude Code's names); empty means the CLI's default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Tools the agent must not use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disallowed_tools: Vec<String>,
    /// The CLI's permission mode (`acceptEdits`, `bypassPermissions`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    /// Capabilities, used to route tasks that name tags instead of an agent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    /// Agents this agent's sessions may start.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = crate::names::AGENT_OR_ALL_PATTERN)))]
    pub delegates_to: Vec<String>,
    /// MCP servers given to the agent (Claude Code's `mcpServers` shape).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub mcp_servers: BTreeMap<String, Value>,
    /// Whether the agent also gets Baton's own MCP server (`baton mcp`: tasks,
    /// plans, documents) when it speaks MCP. Default: yes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baton_mcp: Option<bool>,
    /// For `command`: the program and its arguments. For the others: the program
    /// (and leading arguments) to run instead of the CLI's usual name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(extend("prefixItems" = [{ "type": "string", "minLength": 1 }]))]
    pub command: Vec<String>,
    /// Extra arguments appended to the CLI's command line.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<String>,
    /// Extra environment for the agent process.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("propertyNames" = { "pattern": "^[^=\\x00]+$" }))]
    pub env: BTreeMap<String, String>,
    /// Default timeout of its tasks, in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub timeout_s: Option<u64>,
    /// Default seconds its tasks' runs may go without output before they are
    /// stopped as stalled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub stall_s: Option<u64>,
    /// Default budget of its tasks, in US dollars.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub budget_usd: Option<f64>,
    /// How many of its sessions may run at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub max_parallel: Option<u32>,
    /// The concurrency pool (provider or account) its runs count against;
    /// default: its executor's ([`ExecutorKind::default_pool`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::SIMPLE_NAME_PATTERN))]
    pub pool: Option<String>,
    /// Agents to use instead when this one's CLI cannot start or its provider refuses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = crate::names::SIMPLE_NAME_PATTERN)))]
    pub fallback: Vec<String>,
    /// The template a task's prompt is rendered with (placeholders like `{{task}}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_template: Option<String>,
    /// Prices per million tokens, for CLIs that report tokens but no cost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// How its sessions are isolated (default: the project's, else `auto`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<SandboxMode>,
    /// Where its network traffic may go (default: the project's, else `full`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<NetworkPolicy>,
    /// Host variables it is given (`NAME` or `PREFIX_*`), beyond its executor's
    /// own; shown redacted wherever Baton shows its output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = crate::names::PASS_ENV_PATTERN)))]
    pub pass_env: Vec<String>,
    /// The container image for `sandbox: container`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::IMAGE_PATTERN))]
    pub image: Option<String>,
    /// Launcher labels a host must have to run it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = crate::names::LABEL_PATTERN)))]
    pub require: Vec<String>,
    /// How many times its tasks' sessions are resumed to fix failing checks, a
    /// conflict or a pull request's failures (default: the project's, else 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(max = crate::model::MAX_LOOP_ROUNDS))]
    pub fix_attempts: Option<u32>,
    /// The agent that reviews its tasks' work before they succeed (default: the project's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::SIMPLE_NAME_PATTERN))]
    pub review_by: Option<String>,
    /// Whether it keeps a memory between tasks: labelled blocks, a journal
    /// Baton writes at each task's end, and documents under `agents/NAME/`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub memory: bool,
    /// The projects it works in (names; any, when empty): a task in another, or
    /// a workset task with another among its projects, is refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projects: Vec<String>,
    /// The agents it may send messages to (besides those it may delegate to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(inner(regex(pattern = crate::names::AGENT_OR_ALL_PATTERN)))]
    pub messages_to: Vec<String>,
    /// How deep the tasks it starts may start tasks in turn (fewer than the
    /// coordinator's own limit, when set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_depth: Option<u32>,
    /// How many of the tasks it started may be unfinished at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_fanout: Option<u32>,
    /// Which documents its sessions may write and append to (all, when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docs: Option<DocRules>,
    /// Claude Code: ask people for the permissions it lacks (through Baton's MCP
    /// `permission_prompt`, posted in the task's chat thread as Allow / Deny)
    /// instead of being refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ask_permission: bool,
    /// Seconds to wait for an answer before `permission_policy` decides (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_timeout_s: Option<u64>,
    /// `allow` or `deny` (the default): what an unanswered request gets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["allow", "deny", null]))]
    pub permission_policy: Option<String>,
    /// Front matter keys Baton does not use, kept as they were.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<String, Value>,
    /// Where the definition came from: `builtin`, `api`, or a file path.
    #[serde(default)]
    pub source: String,
}

/// Which documents an agent's sessions may change (seed 003's gatekeeper):
/// name patterns where `*` stands for any characters (`status/*`, `log/*`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DocRules {
    /// Names it may write (create, or replace the content of).
    #[serde(default)]
    #[schemars(inner(length(min = 1, max = 200), regex(pattern = crate::names::DOC_RULE_PATTERN)))]
    pub write: Vec<String>,
    /// Names it may append to (a new version that keeps the old content first).
    #[serde(default)]
    #[schemars(inner(length(min = 1, max = 200), regex(pattern = crate::names::DOC_RULE_PATTERN)))]
    pub append: Vec<String>,
}

impl DocRules {
    /// Whether `name` matches one of `patterns`.
    pub fn matches(patterns: &[String], name: &str) -> bool {
        patterns.iter().any(|p| glob(p, name))
    }

    /// Checks the patterns are usable: non-empty, printable, at most 200 characters.
    pub fn validate(&self) -> Result<(), String> {
        for p in self.write.iter().chain(&self.append) {
            if p.is_empty() || p.chars().count() > 200 || p.chars().any(char::is_control) || p.contains("**") {
                return Err(format!("doc rule {p:?} is not a name pattern (letters, `/`, and `*` for any characters)"));
            }
        }
        Ok(())
    }
}

/// Whether `name` matches `pattern`, `*` standing for any characters.
fn glob(pattern: &str, name: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else { return false };
            if rest.is_empty() {
                return true;
            }
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| glob(rest, &tail[i..]))
        }
    }
}

/// Prices per million tokens, in US dollars.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pricing {
    /// Per million input tokens.
    pub input_per_mtok: f64,
    /// Per million output tokens.
    pub output_per_mtok: f64,
}

impl Pricing {
    /// The cost of some tokens.
    pub fn cost(&self, input: u64, output: u64) -> f64 {
        (input as f64 * self.input_per_mtok + output as f64 * self.output_per_mtok) / 1_000_000.0
    }
}

/// A definition that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AgentDefError {
    /// The file does not start with a `---` front matter block.
    #[error("missing YAML front matter (the file must start with a line '---')")]
    NoFrontMatter,
    /// The front matter is not valid YAML of the expected shape.
    #[error("invalid front matter: {0}")]
    Yaml(String),
    /// A name breaks the naming rules.
    #[error(transparent)]
    Name(#[from] NameError),
    /// A field has a value the executor cannot use.
    #[error("invalid agent {name:?}: {why}")]
    Invalid {
        /// The agent's name.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// Fields valid one by one that do not go together (an executor without
    /// the `command` it needs).
    #[error("invalid agent {name:?}: {why}")]
    Combination {
        /// The agent's name.
        name: String,
        /// What is wrong.
        why: String,
    },
}

/// The front matter as written (Claude Code's keys and Baton's).
#[derive(Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(default)]
struct FrontMatter {
    name: Option<String>,
    description: Option<String>,
    executor: Option<ExecutorKind>,
    model: Option<String>,
    #[serde(deserialize_with = "list_or_csv")]
    tools: Vec<String>,
    #[serde(deserialize_with = "list_or_csv", alias = "disallowedTools")]
    disallowed_tools: Vec<String>,
    #[serde(alias = "permissionMode")]
    permission_mode: Option<String>,
    #[serde(deserialize_with = "list_or_csv")]
    tags: Vec<String>,
    #[serde(deserialize_with = "list_or_csv")]
    delegates_to: Vec<String>,
    #[serde(alias = "mcpServers")]
    mcp_servers: BTreeMap<String, Value>,
    #[serde(deserialize_with = "list_or_words")]
    command: Vec<String>,
    #[serde(deserialize_with = "list_or_words")]
    args: Vec<String>,
    env: BTreeMap<String, String>,
    timeout_s: Option<u64>,
    budget_usd: Option<f64>,
    max_parallel: Option<u32>,
    pool: Option<String>,
    #[serde(deserialize_with = "list_or_csv")]
    fallback: Vec<String>,
    prompt_template: Option<String>,
    pricing: Option<Pricing>,
    baton_mcp: Option<bool>,
    sandbox: Option<SandboxMode>,
    network: Option<NetworkPolicy>,
    #[serde(deserialize_with = "list_or_csv")]
    pass_env: Vec<String>,
    image: Option<String>,
    #[serde(deserialize_with = "list_or_csv")]
    require: Vec<String>,
    fix_attempts: Option<u32>,
    review_by: Option<String>,
    stall_s: Option<u64>,
    memory: Option<bool>,
    #[serde(default)]
    projects: Vec<String>,
    #[serde(deserialize_with = "list_or_csv")]
    messages_to: Vec<String>,
    max_depth: Option<u32>,
    max_fanout: Option<u32>,
    docs: Option<DocRules>,
    ask_permission: Option<bool>,
    permission_timeout_s: Option<u64>,
    permission_policy: Option<String>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

/// A list, or a string of comma-separated items (Claude Code writes `tools: Read, Grep`).
fn list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list_or_text(d, |s| s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_owned).collect())
}

/// A list, or a string of white-space-separated words (`command: ./agent.sh --fast`).
fn list_or_words<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    list_or_text(d, |s| s.split_whitespace().map(str::to_owned).collect())
}

/// A list of strings, or one string cut into items by `split`.
fn list_or_text<'de, D: Deserializer<'de>>(d: D, split: fn(&str) -> Vec<String>) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize, schemars::JsonSchema)]
    #[serde(untagged)]
    enum Either {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Either>::deserialize(d)? {
        None => Vec::new(),
        Some(Either::List(v)) => v,
        Some(Either::Text(s)) => split(&s),
    })
}

impl AgentDef {
    /// The program that must be installed to run this agent: the first word of
    /// `command`, else the executor's usual CLI.
    pub fn program(&self) -> Option<String> {
        self.command.first().cloned().or_else(|| self.executor.default_program().map(str::to_owned))
    }

    /// Reads a Markdown definition. `file_stem` names the agent when the front
    /// matter does not; `default_executor` applies when it names no executor (and
    /// a `command` key implies the command executor).
    pub fn from_markdown(
        text: &str,
        file_stem: &str,
        source: &str,
        default_executor: ExecutorKind,
    ) -> Result<AgentDef, AgentDefError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = text.split_inclusive('\n');
        let first = lines.next().unwrap_or("");
        if first.trim_end() != "---" {
            return Err(AgentDefError::NoFrontMatter);
        }
        let mut yaml = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            if line.trim_end() == "---" {
                closed = true;
                break;
            }
            yaml.push_str(line);
        }
        if !closed {
            return Err(AgentDefError::Yaml("the front matter has no closing '---' line".into()));
        }
        let body: String = lines.collect();
        let fm: FrontMatter = if yaml.trim().is_empty() {
            FrontMatter::default()
        } else {
            serde_norway::from_str(&yaml).map_err(|e| AgentDefError::Yaml(e.to_string()))?
        };
        let executor =
            fm.executor.unwrap_or(if fm.command.is_empty() { default_executor } else { ExecutorKind::Command });
        let def = AgentDef {
            name: fm.name.unwrap_or_else(|| file_stem.to_owned()),
            description: fm.description.unwrap_or_default(),
            executor,
            model: fm.model,
            system_prompt: body.trim().to_owned(),
            tools: fm.tools,
            disallowed_tools: fm.disallowed_tools,
            permission_mode: fm.permission_mode,
            tags: fm.tags,
            delegates_to: fm.delegates_to,
            mcp_servers: fm.mcp_servers,
            command: fm.command,
            args: fm.args,
            env: fm.env,
            timeout_s: fm.timeout_s,
            budget_usd: fm.budget_usd,
            max_parallel: fm.max_parallel,
            pool: fm.pool,
            fallback: fm.fallback,
            prompt_template: fm.prompt_template,
            pricing: fm.pricing,
            baton_mcp: fm.baton_mcp,
            sandbox: fm.sandbox,
            network: fm.network,
            pass_env: fm.pass_env,
            image: fm.image,
            require: fm.require,
            fix_attempts: fm.fix_attempts,
            stall_s: fm.stall_s,
            review_by: fm.review_by,
            memory: fm.memory.unwrap_or(false),
            projects: fm.projects,
            messages_to: fm.messages_to,
            max_depth: fm.max_depth,
            max_fanout: fm.max_fanout,
            docs: fm.docs,
            ask_permission: fm.ask_permission.unwrap_or(false),
            permission_timeout_s: fm.permission_timeout_s,
            permission_policy: fm.permission_policy,
            extra: fm.extra,
            source: source.to_owned(),
        };
        def.validate()?;
        Ok(def)
    }

    /// The definition as Markdown with front matter, the format
    /// [`AgentDef::from_markdown`] reads (fields left at their defaults are left
    /// out; the system prompt is the body).
    pub fn to_markdown(&self) -> String {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if let Some(fields) = value.as_object_mut() {
            fields.remove("system_prompt");
            fields.remove("source");
            fields.retain(|_, v| match v {
                Value::Null => false,
                Value::Array(a) => !a.is_empty(),
                Value::Object(o) => !o.is_empty(),
                Value::String(s) => !s.is_empty(),
                _ => true,
            });
        }
        let yaml = serde_norway::to_string(&value).unwrap_or_default();
        format!("---\n{yaml}---\n{}\n", self.system_prompt)
    }

    /// Checks the definition can be used.
    pub fn validate(&self) -> Result<(), AgentDefError> {
        validate_simple_name("agent name", &self.name)?;
        if self.name == "status" {
            return Err(AgentDefError::Invalid {
                name: self.name.clone(),
                why: "`status` names the cluster view (/api/agents/status), not an agent".into(),
            });
        }
        // `*` in delegates_to or messages_to stands for every agent.
        for other in self.messages_to.iter().chain(&self.delegates_to).filter(|n| *n != "*") {
            validate_simple_name("agent name", other)?;
        }
        if let Some(p) = self.permission_policy.as_deref().filter(|p| !matches!(*p, "allow" | "deny")) {
            return Err(AgentDefError::Invalid {
                name: self.name.clone(),
                why: format!("permission_policy {p:?} must be allow or deny"),
            });
        }
        if let Some(rules) = &self.docs {
            rules.validate().map_err(|why| AgentDefError::Invalid { name: self.name.clone(), why })?;
        }
        for other in &self.fallback {
            validate_simple_name("agent name", other)?;
        }
        let invalid = |why: &str| AgentDefError::Invalid { name: self.name.clone(), why: why.to_owned() };
        let combination = |why: &str| AgentDefError::Combination { name: self.name.clone(), why: why.to_owned() };
        if self.executor == ExecutorKind::Command && self.command.is_empty() {
            return Err(combination("the command executor needs `command` (the program and its arguments)"));
        }
        if self.executor == ExecutorKind::Acp && self.command.is_empty() {
            return Err(combination("the acp executor needs `command` (the ACP agent to start)"));
        }
        if self.command.first().is_some_and(|p| p.is_empty()) {
            return Err(invalid("`command` must not start with an empty program name"));
        }
        if self.timeout_s == Some(0) {
            return Err(invalid("`timeout_s` must be at least 1"));
        }
        if self.stall_s == Some(0) {
            return Err(invalid("`stall_s` must be at least 1"));
        }
        if self.budget_usd.is_some_and(|b| !(b.is_finite() && b >= 0.0)) {
            return Err(invalid("`budget_usd` must be a non-negative number"));
        }
        if self.max_parallel == Some(0) {
            return Err(invalid("`max_parallel` must be at least 1"));
        }
        if let Some(pool) = &self.pool {
            validate_simple_name("pool name", pool)?;
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(invalid("environment variable names must be non-empty, without '=' or NUL"));
            }
        }
        crate::sandbox::validate_pass_env(&self.pass_env).map_err(|e| invalid(&e))?;
        if let Some(network) = &self.network {
            network.validate().map_err(|e| invalid(&e))?;
        }
        if let Some(image) = &self.image {
            crate::names::validate_image(image)?;
        }
        if self.sandbox == Some(SandboxMode::Container) && self.image.is_none() {
            return Err(combination("sandbox: container needs an `image`"));
        }
        for label in &self.require {
            crate::names::validate_label(label)?;
        }
        if let Some(reviewer) = &self.review_by {
            validate_simple_name("agent name", reviewer)?;
        }
        if self.fix_attempts.is_some_and(|n| n > crate::model::MAX_LOOP_ROUNDS) {
            return Err(invalid(&format!("`fix_attempts` must be at most {}", crate::model::MAX_LOOP_ROUNDS)));
        }
        Ok(())
    }

    /// The concurrency pool its runs count against: its own, or its executor's.
    pub fn pool_name(&self) -> Option<&str> {
        self.pool.as_deref().or(self.executor.default_pool())
    }

    /// The agents every Baton has without any file: one per agent CLI.
    pub fn builtins() -> Vec<AgentDef> {
        let base = |name: &str, executor: ExecutorKind, description: &str| AgentDef {
            name: name.to_owned(),
            description: description.to_owned(),
            executor,
            model: None,
            system_prompt: String::new(),
            tools: Vec::new(),
            disallowed_tools: Vec::new(),
            permission_mode: None,
            tags: Vec::new(),
            delegates_to: Vec::new(),
            mcp_servers: BTreeMap::new(),
            command: Vec::new(),
            args: Vec::new(),
            env: BTreeMap::new(),
            timeout_s: None,
            budget_usd: None,
            max_parallel: None,
            pool: None,
            fallback: Vec::new(),
            prompt_template: None,
            pricing: None,
            baton_mcp: None,
            sandbox: None,
            network: None,
            pass_env: Vec::new(),
            image: None,
            require: Vec::new(),
            fix_attempts: None,
            review_by: None,
            stall_s: None,
            memory: false,
            projects: Vec::new(),
            messages_to: Vec::new(),
            max_depth: None,
            max_fanout: None,
            docs: None,
            ask_permission: false,
            permission_timeout_s: None,
            permission_policy: None,
            extra: BTreeMap::new(),
            source: "builtin".to_owned(),
        };
        vec![
            base("claude", ExecutorKind::ClaudeCode, "Claude Code with its default tools"),
            base("codex", ExecutorKind::Codex, "OpenAI Codex CLI"),
            base("gemini", ExecutorKind::Gemini, "Google Gemini CLI"),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claude_code_definitions_unchanged() {
        let text = "---\nname: code-reviewer\ndescription: Reviews code\ntools: Read, Grep, Glob\nmodel: sonnet\ncolor: blue\n---\n\nYou review code.\n";
        let def = AgentDef::from_markdown(text, "x", ".claude/agents/r.md", ExecutorKind::ClaudeCode).unwrap();
        assert_eq!(def.name, "code-reviewer");
        assert_eq!(def.executor, ExecutorKind::ClaudeCode);
        assert_eq!(def.tools, ["Read", "Grep", "Glob"]);
        assert_eq!(def.model.as_deref(), Some("sonnet"));
        assert_eq!(def.system_prompt, "You review code.");
        assert_eq!(def.extra["color"], Value::String("blue".into()));
    }

    #[test]
    fn reads_baton_keys() {
        let text =
            "---\ncommand: [sh, -c, 'echo hi']\ntags: [rust, backend]\ndelegates_to: worker\ntimeout_s: 30\n---\nbody";
        let def = AgentDef::from_markdown(text, "echo", "f.md", ExecutorKind::ClaudeCode).unwrap();
        assert_eq!(def.name, "echo");
        assert_eq!(def.executor, ExecutorKind::Command);
        assert_eq!(def.command, ["sh", "-c", "echo hi"]);
        assert_eq!(def.tags, ["rust", "backend"]);
        assert_eq!(def.delegates_to, ["worker"]);
        assert_eq!(def.timeout_s, Some(30));
    }

    #[test]
    fn refuses_bad_definitions() {
        let no_fm = AgentDef::from_markdown("hello", "x", "f", ExecutorKind::ClaudeCode);
        assert_eq!(no_fm.unwrap_err(), AgentDefError::NoFrontMatter);
        let unclosed = AgentDef::from_markdown("---\nname: x\n", "x", "f", ExecutorKind::ClaudeCode);
        assert!(matches!(unclosed, Err(AgentDefError::Yaml(_))));
        let bad_name = AgentDef::from_markdown("---\nname: ../x\n---\n", "x", "f", ExecutorKind::ClaudeCode);
        assert!(matches!(bad_name, Err(AgentDefError::Name(_))));
        let no_cmd = AgentDef::from_markdown("---\nexecutor: command\n---\n", "x", "f", ExecutorKind::ClaudeCode);
        assert!(matches!(no_cmd, Err(AgentDefError::Combination { .. })));
        let bad_exec = AgentDef::from_markdown("---\nexecutor: cobol\n---\n", "x", "f", ExecutorKind::ClaudeCode);
        assert!(matches!(bad_exec, Err(AgentDefError::Yaml(_))));
    }

    #[test]
    fn json_definitions_refuse_unknown_fields() {
        let r: Result<AgentDef, _> =
            serde_json::from_str(r#"{"name":"a","executor":"command","command":["x"],"bogus":1}"#);
        assert!(r.is_err());
    }

    #[test]
    fn a_definition_reads_back_from_its_markdown() {
        let text = "---\nname: rev\ndescription: Reviews\ncommand: [sh, -c, 'cat']\ntags: [review, rust]\nmodel: m-1\ntimeout_s: 60\nmcp_servers:\n  x: {command: y}\n---\nYou review.\n\nCarefully.\n";
        let def = AgentDef::from_markdown(text, "rev", "api", ExecutorKind::ClaudeCode).unwrap();
        let back = AgentDef::from_markdown(&def.to_markdown(), "other", "api", ExecutorKind::ClaudeCode).unwrap();
        assert_eq!(back, def);
    }

    #[test]
    fn doc_rules_match_names_by_pattern() {
        let rules = DocRules { write: vec!["status/*".into(), "exact".into()], append: vec!["log/*/day".into()] };
        assert!(DocRules::matches(&rules.write, "status/now"));
        assert!(DocRules::matches(&rules.write, "exact"));
        assert!(!DocRules::matches(&rules.write, "exactly"));
        assert!(!DocRules::matches(&rules.write, "log/x"));
        assert!(DocRules::matches(&rules.append, "log/2026/day"));
        assert!(!DocRules::matches(&rules.append, "log/2026/night"));
        assert!(DocRules { write: vec!["a**".into()], append: vec![] }.validate().is_err());
        let text = "---\ncommand: [sh]\nmemory: true\nmessages_to: lead\ndocs: {write: [\"status/*\"], append: [\"log/*\"]}\n---\n";
        let def = AgentDef::from_markdown(text, "w", "f.md", ExecutorKind::Command).unwrap();
        assert!(def.memory);
        assert_eq!(def.messages_to, ["lead"]);
        assert_eq!(def.docs.unwrap().append, ["log/*"]);
    }
}
