//! What an agent may reach: its sandbox mode, its network policy, and the
//! environment it is given.
//!
//! An agent's environment is named, never inherited: a small base set, Baton's
//! session variables, its executor's own credentials and settings
//! ([`executor_env`]), and what its definition or project names (`env` values,
//! `pass_env` patterns). Values taken from the host this way are secrets as far
//! as Baton is concerned: they are shown as `[redacted NAME]` wherever Baton
//! stores or shows what an agent printed.
//!
//! Settings resolve task → agent → project → default, the first one set winning.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::agent::ExecutorKind;

/// How an agent is isolated from the host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxMode {
    /// A sandbox where the host allows one (bubblewrap on Linux), else none, said
    /// out loud (the default).
    #[default]
    Auto,
    /// A sandbox or nothing: a task fails when its host cannot make one.
    Required,
    /// No sandbox: the agent sees what the launcher's user sees.
    Off,
    /// A Podman or Docker container of the agent's `image`.
    Container,
}

impl SandboxMode {
    /// The name used in settings.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxMode::Auto => "auto",
            SandboxMode::Required => "required",
            SandboxMode::Off => "off",
            SandboxMode::Container => "container",
        }
    }
}

impl fmt::Display for SandboxMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SandboxMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        [SandboxMode::Auto, SandboxMode::Required, SandboxMode::Off, SandboxMode::Container]
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("unknown sandbox {s:?} (expected auto, required, off or container)"))
    }
}

/// Where an agent's network traffic may go.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum NetworkPolicy {
    /// Anywhere the host can reach (the default: agents need their model API).
    #[default]
    Full,
    /// Nowhere but Baton's own URL.
    None,
    /// Only these `host:port` endpoints (through Baton's egress proxy), and Baton.
    Allow(Vec<String>),
}

impl NetworkPolicy {
    /// Checks an allowlist: each entry `host:port`, with a host of letters,
    /// digits, `.`, `-` (or `*.` in front, for any subdomain) and a port number.
    pub fn validate(&self) -> Result<(), String> {
        let NetworkPolicy::Allow(entries) = self else { return Ok(()) };
        if entries.is_empty() {
            return Err("an empty network allowlist: use \"none\" to allow nothing".into());
        }
        for entry in entries {
            let Some((host, port)) = entry.rsplit_once(':') else {
                return Err(format!("network entry {entry:?} must be host:port"));
            };
            let bare = host.strip_prefix("*.").unwrap_or(host);
            let host_ok = !bare.is_empty()
                && bare.len() <= 253
                && bare.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
                && !bare.starts_with('-')
                && !bare.starts_with('.');
            if !host_ok {
                return Err(format!("network entry {entry:?} has an invalid host"));
            }
            if port.parse::<u16>().map_or(true, |p| p == 0) {
                return Err(format!("network entry {entry:?} has an invalid port"));
            }
        }
        Ok(())
    }

    /// Whether `host:port` is allowed by an allowlist (always for `Full`).
    pub fn allows(&self, host: &str, port: u16) -> bool {
        match self {
            NetworkPolicy::Full => true,
            NetworkPolicy::None => false,
            NetworkPolicy::Allow(entries) => entries.iter().any(|e| {
                let Some((h, p)) = e.rsplit_once(':') else { return false };
                if p.parse::<u16>().ok() != Some(port) {
                    return false;
                }
                match h.strip_prefix("*.") {
                    Some(suffix) => {
                        host.len() > suffix.len()
                            && host.to_ascii_lowercase().ends_with(&format!(".{}", suffix.to_ascii_lowercase()))
                    }
                    None => h.eq_ignore_ascii_case(host),
                }
            }),
        }
    }
}

impl fmt::Display for NetworkPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetworkPolicy::Full => f.write_str("full"),
            NetworkPolicy::None => f.write_str("none"),
            NetworkPolicy::Allow(list) => f.write_str(&list.join(", ")),
        }
    }
}

impl Serialize for NetworkPolicy {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            NetworkPolicy::Full => s.serialize_str("full"),
            NetworkPolicy::None => s.serialize_str("none"),
            NetworkPolicy::Allow(list) => list.serialize(s),
        }
    }
}

/// An allowlist entry, as [`NetworkPolicy::validate`] takes it: `host:port`, the
/// host of letters, digits, `.` and `-` (`*.` in front for any subdomain), the
/// port 1 to 65535.
const NETWORK_ENTRY_PATTERN: &str = r"^(\*\.)?[A-Za-z0-9][A-Za-z0-9.-]{0,252}:(0*)([1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])$";

impl schemars::JsonSchema for NetworkPolicy {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "NetworkPolicy".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Where an agent's network traffic may go: \"full\", \"none\", or a list of host:port it may reach.",
            "oneOf": [
                {"type": "string", "enum": ["full", "none"]},
                {"type": "array", "minItems": 1, "items": {"type": "string", "pattern": NETWORK_ENTRY_PATTERN}}
            ]
        })
    }
}

impl<'de> Deserialize<'de> for NetworkPolicy {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Word(String),
            List(Vec<String>),
        }
        let policy = match Either::deserialize(d)? {
            Either::Word(w) if w == "full" => NetworkPolicy::Full,
            Either::Word(w) if w == "none" => NetworkPolicy::None,
            Either::Word(w) => {
                return Err(serde::de::Error::custom(format!(
                    "unknown network {w:?} (expected \"full\", \"none\" or a list of host:port)"
                )));
            }
            Either::List(list) => NetworkPolicy::Allow(list),
        };
        policy.validate().map_err(serde::de::Error::custom)?;
        Ok(policy)
    }
}

/// Checks `pass_env` patterns: a variable name, or a prefix ending in `*`
/// (`AWS_*`). A pattern that would pass everything (`*`) is refused, and so is
/// one that would pass Baton's own variables.
pub fn validate_pass_env(patterns: &[String]) -> Result<(), String> {
    for p in patterns {
        let name = p.strip_suffix('*').unwrap_or(p);
        if name.is_empty() {
            return Err(format!(
                "pass_env pattern {p:?} would pass the whole environment of the host; name the variables (or PREFIX_*) the agent needs"
            ));
        }
        if name.contains('*') || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("pass_env pattern {p:?} must be a variable name, or a prefix followed by '*'"));
        }
        if name.starts_with("BATON_") || "BATON_".starts_with(name) {
            return Err(format!("pass_env pattern {p:?} would pass Baton's own variables, which the agent never gets"));
        }
    }
    Ok(())
}

/// Whether `name` matches a `pass_env` pattern (`NAME`, or `PREFIX*`).
pub fn env_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// The variables every agent gets from the launcher's environment (when set).
/// `LC_*` is included too. `HOME` and `TMPDIR` are replaced inside a sandbox.
pub const BASE_ENV: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_*", "TERM", "TZ", "TMPDIR"];

/// An executor's own credentials and settings, taken from the launcher's
/// environment for the agents of that executor (and shown redacted).
pub fn executor_env(executor: ExecutorKind) -> &'static [&'static str] {
    match executor {
        ExecutorKind::ClaudeCode => &["ANTHROPIC_*", "CLAUDE_*"],
        ExecutorKind::Codex => &["OPENAI_*", "CODEX_*"],
        ExecutorKind::Gemini => &["GEMINI_*", "GOOGLE_*"],
        // An ACP agent is any program: its definition names what it needs.
        ExecutorKind::Acp | ExecutorKind::Command => &[],
    }
}

/// How a run was actually isolated, as its launcher reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SandboxReport {
    /// `bubblewrap`, `container` or `none`.
    pub kind: SandboxKind,
    /// Why there is none, and how to get one (for `none`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Where its network traffic may go.
    #[serde(default)]
    pub network: NetworkPolicy,
}

impl fmt::Display for SandboxReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.kind.as_str())?;
        if let Some(reason) = &self.reason {
            write!(f, " ({reason})")?;
        }
        if self.kind != SandboxKind::None {
            write!(f, ", network: {}", self.network)?;
        }
        Ok(())
    }
}

/// The kinds of isolation a launcher can give.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SandboxKind {
    /// A bubblewrap sandbox: the host read-only, the worktree writable.
    Bubblewrap,
    /// A Podman or Docker container.
    Container,
    /// None at all.
    None,
}

impl SandboxKind {
    /// The name shown.
    pub fn as_str(self) -> &'static str {
        match self {
            SandboxKind::Bubblewrap => "bubblewrap",
            SandboxKind::Container => "container",
            SandboxKind::None => "none",
        }
    }
}

/// The container runtimes Baton can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContainerRuntime {
    /// Podman.
    Podman,
    /// Docker.
    Docker,
}

impl ContainerRuntime {
    /// The program.
    pub fn program(self) -> &'static str {
        match self {
            ContainerRuntime::Podman => "podman",
            ContainerRuntime::Docker => "docker",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_policies_read_as_words_or_lists() {
        let full: NetworkPolicy = serde_json::from_str("\"full\"").unwrap();
        assert_eq!(full, NetworkPolicy::Full);
        let none: NetworkPolicy = serde_json::from_str("\"none\"").unwrap();
        assert_eq!(none, NetworkPolicy::None);
        let list: NetworkPolicy = serde_json::from_str(r#"["api.anthropic.com:443","*.example.com:80"]"#).unwrap();
        assert!(list.allows("api.anthropic.com", 443));
        assert!(list.allows("x.example.com", 80));
        assert!(!list.allows("example.com", 80));
        assert!(!list.allows("api.anthropic.com", 80));
        assert!(!list.allows("evil.com", 443));
        for bad in [r#""open""#, r#"["nohost"]"#, r#"["a.com:0"]"#, r#"["-a.com:1"]"#, "[]"] {
            assert!(serde_json::from_str::<NetworkPolicy>(bad).is_err(), "{bad}");
        }
        assert_eq!(serde_json::to_string(&list).unwrap(), r#"["api.anthropic.com:443","*.example.com:80"]"#);
    }

    #[test]
    fn pass_env_refuses_everything_and_batons_own() {
        assert!(validate_pass_env(&["AWS_*".into(), "DATABASE_URL".into()]).is_ok());
        for bad in ["*", "", "A*B", "BATON_TOKEN", "BATON_*", "BAT*", "A-B"] {
            assert!(validate_pass_env(&[bad.into()]).is_err(), "{bad}");
        }
        assert!(env_matches("AWS_*", "AWS_SECRET"));
        assert!(!env_matches("AWS_*", "XAWS_SECRET"));
        assert!(env_matches("DATABASE_URL", "DATABASE_URL"));
        assert!(!env_matches("DATABASE_URL", "DATABASE_URL2"));
    }

    #[test]
    fn sandbox_modes_parse() {
        assert_eq!("required".parse::<SandboxMode>().unwrap(), SandboxMode::Required);
        assert!("maybe".parse::<SandboxMode>().is_err());
        assert!(serde_json::from_str::<SandboxMode>("\"maybe\"").is_err());
    }
}
