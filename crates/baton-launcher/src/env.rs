//! An agent's environment: named, never inherited, and the secrets in it.
//!
//! An agent (with its setup and checks) gets only:
//! - the base set ([`baton_core::sandbox::BASE_ENV`]) from the launcher's environment;
//! - its executor's credentials and settings ([`baton_core::sandbox::executor_env`]);
//! - the host variables its project and definition name in `pass_env`;
//! - the `env` values of its project and definition;
//! - Baton's session variables (`BATON_*`, its own session-scoped token).
//!
//! The values taken from the host (credentials, `pass_env`) and the session's
//! token are secrets: a [`Redactor`] replaces them with `[redacted NAME]` in
//! everything the launcher sends about the run.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

use baton_core::agent::{AgentDef, ExecutorKind};
use baton_core::event::NewEvent;
use baton_core::model::ProjectSettings;
use baton_core::sandbox::{BASE_ENV, env_matches, executor_env};
use serde_json::Value;

/// Secrets shorter than this are not redacted (they would match everywhere).
const MIN_SECRET: usize = 4;

/// The environment of an agent, and which of its values are secrets.
#[derive(Debug, Clone, Default)]
pub(crate) struct AgentEnv {
    /// Every variable the agent gets.
    pub vars: BTreeMap<String, String>,
    /// Variables whose values came from the host (and the session token).
    pub secrets: Vec<String>,
}

impl AgentEnv {
    /// The environment for an agent of `def` in a project with `settings`, from
    /// the launcher's own environment `host` and the session's `baton` variables.
    /// `cache` fills `${BATON_CACHE}` in the project's `env` values.
    pub fn build(
        host: &BTreeMap<String, String>,
        settings: &ProjectSettings,
        def: &AgentDef,
        baton: &BTreeMap<String, String>,
        cache: &str,
    ) -> AgentEnv {
        let mut env = AgentEnv::default();
        fn from_host<'a>(
            host: &'a BTreeMap<String, String>,
            pattern: &'a str,
        ) -> impl Iterator<Item = (&'a String, &'a String)> {
            host.iter().filter(move |(k, _)| env_matches(pattern, k))
        }
        for pattern in BASE_ENV {
            for (k, v) in from_host(host, pattern) {
                env.vars.insert(k.clone(), v.clone());
            }
        }
        let passed = executor_env(def.executor).iter().map(|p| p.to_string()).chain(settings.pass_env.iter().cloned());
        for pattern in passed.chain(def.pass_env.iter().cloned()) {
            for (k, v) in from_host(host, &pattern).filter(|(k, _)| !k.starts_with("BATON_")) {
                env.vars.insert(k.clone(), v.clone());
                env.secrets.push(k.clone());
            }
        }
        env.vars.extend(settings.env.iter().map(|(k, v)| (k.clone(), v.replace("${BATON_CACHE}", cache))));
        env.vars.extend(def.env.clone());
        // A value the definition or project gives is not a host secret, whatever
        // its name.
        env.secrets.retain(|k| !settings.env.contains_key(k) && !def.env.contains_key(k));
        env.vars.extend(baton.clone());
        env.secrets.push("BATON_TOKEN".into());
        env.secrets.sort();
        env.secrets.dedup();
        env
    }

    /// Whether the definition or the project named this variable itself (so the
    /// launcher must not replace it: `HOME`, say).
    pub fn named(settings: &ProjectSettings, def: &AgentDef, key: &str) -> bool {
        settings.env.contains_key(key) || def.env.contains_key(key)
    }

    /// A redactor for this environment's secrets.
    pub fn redactor(&self) -> Redactor {
        Redactor::new(self.secrets.iter().filter_map(|k| self.vars.get(k).map(|v| (k.clone(), v.clone()))))
    }
}

/// Replaces secret values by `[redacted NAME]`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Redactor {
    /// (value, replacement), longest value first; each value also in its
    /// JSON-escaped form when that differs.
    pairs: Vec<(String, String)>,
}

impl Redactor {
    /// A redactor for `(name, value)` pairs.
    pub fn new(secrets: impl IntoIterator<Item = (String, String)>) -> Self {
        let mut pairs = Vec::new();
        for (name, value) in secrets {
            if value.len() < MIN_SECRET {
                continue;
            }
            let replacement = format!("[redacted {name}]");
            let escaped = serde_json::to_string(&value).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if escaped != value {
                pairs.push((escaped.to_owned(), replacement.clone()));
            }
            pairs.push((value, replacement));
        }
        pairs.sort_by_key(|(v, _)| std::cmp::Reverse(v.len()));
        Self { pairs }
    }

    /// `text` with every secret replaced.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for (value, replacement) in &self.pairs {
            if out.contains(value.as_str()) {
                out = Cow::Owned(out.replace(value.as_str(), replacement));
            }
        }
        out
    }

    /// The same, for an owned string.
    pub fn string(&self, text: String) -> String {
        match self.text(&text) {
            Cow::Borrowed(_) => text,
            Cow::Owned(s) => s,
        }
    }

    /// Every string inside a JSON value, redacted in place.
    pub fn value(&self, value: &mut Value) {
        if self.pairs.is_empty() {
            return;
        }
        match value {
            Value::String(s) => {
                if let Cow::Owned(r) = self.text(s) {
                    *s = r;
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.value(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.value(v)),
            _ => {}
        }
    }

    /// An event with its data and raw line redacted.
    pub fn event(&self, mut event: NewEvent) -> NewEvent {
        if self.pairs.is_empty() {
            return event;
        }
        self.value(&mut event.data);
        event.raw = event.raw.map(|r| self.string(r));
        event
    }
}

/// Files a fresh per-task HOME gets from the launcher user's own, for an agent
/// of `executor`: the CLI's login and settings, and git's configuration. They
/// are copied, so nothing the agent does reaches the originals.
pub(crate) fn home_files(executor: ExecutorKind) -> &'static [&'static str] {
    match executor {
        ExecutorKind::ClaudeCode | ExecutorKind::Acp => {
            &[".gitconfig", ".claude.json", ".claude/.credentials.json", ".claude/settings.json"]
        }
        ExecutorKind::Codex => &[".gitconfig", ".codex/auth.json", ".codex/config.toml"],
        ExecutorKind::Gemini => {
            &[".gitconfig", ".gemini/settings.json", ".gemini/oauth_creds.json", ".gemini/google_accounts.json"]
        }
        ExecutorKind::Command => &[".gitconfig"],
    }
}

/// Makes `home` (mode 0700) and copies `files` into it from `from` where they
/// exist and are not there yet.
pub(crate) fn seed_home(home: &Path, from: Option<&Path>, files: &[&str]) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(home)?;
    std::fs::set_permissions(home, std::fs::Permissions::from_mode(0o700))?;
    let Some(from) = from else { return Ok(()) };
    for file in files {
        let (src, dst) = (from.join(file), home.join(file));
        if !src.is_file() || dst.exists() {
            continue;
        }
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(&src, &dst)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(executor: ExecutorKind) -> AgentDef {
        let mut d = AgentDef::builtins().remove(0);
        d.executor = executor;
        d
    }

    fn host() -> BTreeMap<String, String> {
        [
            ("PATH", "/usr/bin"),
            ("HOME", "/root"),
            ("LC_ALL", "C.UTF-8"),
            ("GITHUB_TOKEN", "ghp_secretsecret"),
            ("ANTHROPIC_API_KEY", "sk-ant-secret"),
            ("OPENAI_API_KEY", "sk-openai-secret"),
            ("AWS_SECRET", "aws-very-secret"),
            ("BATON_TOKEN", "bta_admin"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    #[test]
    fn the_environment_is_named_not_inherited() {
        let mut settings = ProjectSettings { pass_env: vec!["AWS_*".into()], ..Default::default() };
        settings.env.insert("CACHE".into(), "${BATON_CACHE}/x".into());
        let baton = BTreeMap::from([("BATON_TOKEN".to_owned(), "bts_session".to_owned())]);
        let env = AgentEnv::build(&host(), &settings, &def(ExecutorKind::ClaudeCode), &baton, "/c");
        let keys: Vec<&str> = env.vars.keys().map(String::as_str).collect();
        assert_eq!(keys, ["ANTHROPIC_API_KEY", "AWS_SECRET", "BATON_TOKEN", "CACHE", "HOME", "LC_ALL", "PATH"]);
        assert_eq!(env.vars["BATON_TOKEN"], "bts_session", "never the launcher's own");
        assert_eq!(env.vars["CACHE"], "/c/x");
        assert_eq!(env.secrets, ["ANTHROPIC_API_KEY", "AWS_SECRET", "BATON_TOKEN"]);
        let codex = AgentEnv::build(&host(), &ProjectSettings::default(), &def(ExecutorKind::Codex), &baton, "/c");
        assert!(codex.vars.contains_key("OPENAI_API_KEY") && !codex.vars.contains_key("ANTHROPIC_API_KEY"));
        let command = AgentEnv::build(&host(), &ProjectSettings::default(), &def(ExecutorKind::Command), &baton, "/c");
        assert!(!command.vars.keys().any(|k| k.contains("API_KEY") || k == "GITHUB_TOKEN"));
    }

    #[test]
    fn secrets_are_redacted_in_text_json_and_raw_lines() {
        let r = Redactor::new([("KEY".to_owned(), "s3cr\"et".to_owned()), ("X".to_owned(), "ab".to_owned())]);
        assert_eq!(r.text("the key is s3cr\"et."), "the key is [redacted KEY].");
        assert_eq!(r.text("ab stays: too short"), "ab stays: too short");
        let event = NewEvent::log("printed s3cr\"et");
        let event = NewEvent { raw: Some(r#"{"text":"s3cr\"et"}"#.into()), ..event };
        let event = r.event(event);
        assert_eq!(event.data["message"], "printed [redacted KEY]");
        assert_eq!(event.raw.as_deref(), Some(r#"{"text":"[redacted KEY]"}"#));
    }
}
