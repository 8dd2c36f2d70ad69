//! `baton hook`: Claude Code hooks reported to the coordinator, and `baton hook
//! install` to set them up.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::cli::{HookArgs, HookCommand};
use crate::context;
use crate::error::CliError;

/// The hook events `baton hook install` subscribes to; tool events with a matcher.
const EVENTS: &[(&str, bool)] = &[
    ("SessionStart", false),
    ("UserPromptSubmit", false),
    ("PreToolUse", true),
    ("PostToolUse", true),
    ("Stop", false),
    ("SubagentStop", false),
    ("Notification", false),
    ("SessionEnd", false),
];

/// How long a hook may take before it gives up (Claude Code waits for it).
const PATIENCE: Duration = Duration::from_secs(2);

/// The largest hook JSON read.
const MAX_HOOK_BYTES: u64 = 4 * 1024 * 1024;

pub async fn hook(url: Option<&str>, token: Option<&str>, args: HookArgs) -> Result<u8, CliError> {
    match args.command {
        Some(HookCommand::Install { dir, shared }) => install(dir, shared),
        None => {
            // Whatever happens, Claude Code goes on: a note on stderr, exit 0, and
            // nothing on stdout (which Claude Code would read as the hook's answer).
            if let Err(e) = report(url, token).await {
                eprintln!("baton hook: {e}");
            }
            Ok(0)
        }
    }
}

async fn report(url: Option<&str>, token: Option<&str>) -> Result<(), String> {
    let mut text = String::new();
    std::io::stdin().take(MAX_HOOK_BYTES).read_to_string(&mut text).map_err(|e| format!("cannot read stdin: {e}"))?;
    let hook: Value = serde_json::from_str(&text).map_err(|e| format!("the hook JSON is not valid ({e}); ignored"))?;
    if std::env::var_os("BATON_SESSION_ID").is_some() {
        // A Claude Code that Baton runs reports through its own output.
        return Ok(());
    }
    let client = context::client(url, token).map_err(|e| e.to_string())?;
    match tokio::time::timeout(PATIENCE, client.post::<Value, _>("/api/hooks", &hook)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(crate::error::report(&CliError::from(e))),
        Err(_) => Err(format!("the coordinator did not answer within {} s; hook dropped", PATIENCE.as_secs())),
    }
}

fn install(dir: Option<PathBuf>, shared: bool) -> Result<u8, CliError> {
    let dir = match dir {
        Some(d) => d,
        None => repository_top()?,
    };
    let file = dir.join(".claude").join(if shared { "settings.json" } else { "settings.local.json" });
    let mut settings: Value = match std::fs::read_to_string(&file) {
        Ok(text) if !text.trim().is_empty() => serde_json::from_str(&text).map_err(|e| CliError::BadFile {
            path: file.clone(),
            what: "valid JSON (nothing was changed)",
            source: Some(e.into()),
        })?,
        Ok(_) => json!({}),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => json!({}),
        Err(e) => return Err(CliError::io(format!("cannot read {}", file.display()), e)),
    };
    let exe = std::env::current_exe().map_err(|e| CliError::io("cannot find the baton binary", e))?;
    let command = format!("{} hook", shell_quote(&exe.to_string_lossy()));
    let changed = add_hooks(&mut settings, &command)?;
    if changed {
        std::fs::create_dir_all(file.parent().unwrap_or(&dir))
            .map_err(|e| CliError::io(format!("cannot create {}", dir.join(".claude").display()), e))?;
        let text = serde_json::to_string_pretty(&settings).unwrap_or_default() + "\n";
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, text).map_err(|e| CliError::io(format!("cannot write {}", tmp.display()), e))?;
        std::fs::rename(&tmp, &file).map_err(|e| CliError::io(format!("cannot write {}", file.display()), e))?;
        println!("hooks written to {}", file.display());
    } else {
        println!("hooks already in {}", file.display());
    }
    Ok(0)
}

/// Adds `command` to every event's hooks, replacing an earlier `baton hook`
/// entry; true when something changed.
fn add_hooks(settings: &mut Value, command: &str) -> Result<bool, CliError> {
    let root = settings.as_object_mut().ok_or(CliError::Usage("the settings file is not a JSON object"))?;
    let hooks = root.entry("hooks").or_insert_with(|| json!({}));
    let hooks = hooks.as_object_mut().ok_or(CliError::Usage("`hooks` in the settings is not an object"))?;
    let mut changed = false;
    for (event, tools) in EVENTS {
        let list = hooks.entry(*event).or_insert_with(|| json!([]));
        let list = list.as_array_mut().ok_or(CliError::BadValue {
            flag: "hooks",
            value: (*event).to_owned(),
            problem: "in the settings is not a list",
        })?;
        let ours = |h: &Value| h["command"].as_str().is_some_and(|c| c.ends_with(" hook") && c.contains("baton"));
        let present =
            list.iter().any(|m| m["hooks"].as_array().is_some_and(|hs| hs.iter().any(|h| h["command"] == command)));
        if present {
            continue;
        }
        // An older `baton hook` (another binary path) is replaced, not duplicated.
        for matcher in list.iter_mut() {
            if let Some(hs) = matcher["hooks"].as_array_mut() {
                hs.retain(|h| !ours(h));
            }
        }
        list.retain(|m| m["hooks"].as_array().is_none_or(|hs| !hs.is_empty()));
        let entry = json!({ "type": "command", "command": command, "timeout": 10 });
        list.push(if *tools { json!({ "matcher": "*", "hooks": [entry] }) } else { json!({ "hooks": [entry] }) });
        changed = true;
    }
    Ok(changed)
}

fn shell_quote(s: &str) -> String {
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn repository_top() -> Result<PathBuf, CliError> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .map_err(|e| CliError::io("cannot run git", e))?;
    if !out.status.success() {
        return Err(CliError::Usage("not in a git repository; give --dir"));
    }
    Ok(Path::new(String::from_utf8_lossy(&out.stdout).trim()).to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_is_idempotent_and_keeps_other_hooks() {
        let mut settings = json!({
            "model": "opus",
            "hooks": { "PreToolUse": [{ "matcher": "Bash", "hooks": [{ "type": "command", "command": "./guard.sh" }] }] }
        });
        assert!(add_hooks(&mut settings, "/usr/bin/baton hook").unwrap());
        assert!(!add_hooks(&mut settings, "/usr/bin/baton hook").unwrap(), "second time: nothing to do");
        assert_eq!(settings["model"], "opus");
        let pre = settings["hooks"]["PreToolUse"].as_array().unwrap();
        assert_eq!(pre.len(), 2, "the user's own hook stays: {pre:?}");
        assert_eq!(settings["hooks"]["SessionEnd"][0]["hooks"][0]["command"], "/usr/bin/baton hook");
        // A new binary path replaces the old entry.
        assert!(add_hooks(&mut settings, "/opt/baton hook").unwrap());
        let stop = settings["hooks"]["Stop"].as_array().unwrap();
        assert_eq!(stop.len(), 1);
        assert_eq!(stop[0]["hooks"][0]["command"], "/opt/baton hook");
    }
}
