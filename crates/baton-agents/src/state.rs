//! What each CLI keeps of a conversation on disk, so a session can move to
//! another host: collected from the agent's HOME after each turn, restored into
//! the HOME of the launcher that resumes it.
//!
//! - Claude Code (and Claude Code behind an ACP agent): `~/.claude/projects/<the
//!   working directory with every character but letters and digits as '-'>/*.jsonl`.
//! - Codex: `$CODEX_HOME/sessions/YYYY/MM/DD/rollout-…-<thread>.jsonl` (`~/.codex`
//!   by default), the rollouts whose session started in the working directory.
//! - Gemini CLI: `~/.gemini/tmp/<slug>/` of the working directory (named in
//!   `~/.gemini/projects.json`), whose chats record the SHA-256 of the directory.
//!
//! The working directory differs between hosts: restoring rewrites the old path
//! (and what is derived from it) to the new one, in file names and contents.

use std::path::{Path, PathBuf};

use base64::Engine;
use baton_core::agent::ExecutorKind;
use baton_core::api::{SessionState, StateFile};
use sha2::{Digest, Sha256};

/// The most a session's state may be, in bytes (larger ones are not moved).
pub const MAX_STATE_BYTES: u64 = 64 << 20;

/// Claude Code's directory name for a working directory.
fn claude_dir(cwd: &str) -> String {
    cwd.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).collect()
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Where Codex keeps its state: `CODEX_HOME`, else `~/.codex`.
fn codex_home(home: &Path, env: &[(String, String)]) -> PathBuf {
    env.iter().find(|(k, _)| k == "CODEX_HOME").map_or_else(|| home.join(".codex"), |(_, v)| PathBuf::from(v))
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(t) if t.is_file() => out.push(e.path()),
                _ => {}
            }
        }
    }
    out.sort();
    out
}

/// The files of the conversations an agent of `executor` had in `cwd`, as kept
/// in `home` (`env` is the agent's environment), relative to `home` — or, for
/// Codex, to its `CODEX_HOME` (`root` says which).
fn session_files(executor: ExecutorKind, home: &Path, cwd: &str, env: &[(String, String)]) -> (PathBuf, Vec<PathBuf>) {
    match executor {
        ExecutorKind::ClaudeCode | ExecutorKind::Acp => {
            (home.to_owned(), files_under(&home.join(".claude/projects").join(claude_dir(cwd))))
        }
        ExecutorKind::Codex => {
            let root = codex_home(home, env);
            let needle = format!("\"cwd\":{}", serde_json::to_string(cwd).unwrap_or_default());
            let files = files_under(&root.join("sessions"))
                .into_iter()
                .filter(|f| {
                    std::fs::read_to_string(f)
                        .ok()
                        .and_then(|t| t.lines().next().map(|l| l.replace(": ", ":").contains(&needle)))
                        .unwrap_or(false)
                })
                .collect();
            (root, files)
        }
        ExecutorKind::Gemini => {
            let projects: serde_json::Value = std::fs::read_to_string(home.join(".gemini/projects.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            let files = match projects["projects"][cwd].as_str() {
                Some(slug) => files_under(&home.join(".gemini/tmp").join(slug)),
                None => Vec::new(),
            };
            (home.to_owned(), files)
        }
        ExecutorKind::Command => (home.to_owned(), Vec::new()),
    }
}

/// Collects what the agent's CLI keeps of its conversations in `cwd`; `None`
/// when it keeps nothing there (or too much to move).
pub fn collect(executor: ExecutorKind, home: &Path, cwd: &Path, env: &[(String, String)]) -> Option<SessionState> {
    let cwd_text = cwd.to_string_lossy().into_owned();
    let (root, files) = session_files(executor, home, &cwd_text, env);
    let mut total = 0;
    let mut out = Vec::new();
    for file in files {
        let bytes = std::fs::read(&file).ok()?;
        total += bytes.len() as u64;
        if total > MAX_STATE_BYTES {
            tracing::warn!(cwd = %cwd_text, "the agent's session state is too large to move between hosts");
            return None;
        }
        let path = file.strip_prefix(&root).ok()?.to_string_lossy().into_owned();
        out.push(StateFile { path, content_base64: base64::engine::general_purpose::STANDARD.encode(bytes) });
    }
    (!out.is_empty()).then_some(SessionState { executor, cwd: cwd_text, files: out })
}

/// Writes a session's state into `home` for a working directory `cwd` (which
/// may differ from the one it was collected in); files already there are kept
/// (they are this host's own, and newer). How many files were written.
pub fn restore(state: &SessionState, home: &Path, cwd: &Path, env: &[(String, String)]) -> std::io::Result<usize> {
    let new_cwd = cwd.to_string_lossy().into_owned();
    let root = match state.executor {
        ExecutorKind::Codex => codex_home(home, env),
        _ => home.to_owned(),
    };
    let rename = |text: &str| -> String {
        let mut t = text.replace(&state.cwd, &new_cwd);
        match state.executor {
            ExecutorKind::ClaudeCode | ExecutorKind::Acp => {
                t = t.replace(&claude_dir(&state.cwd), &claude_dir(&new_cwd));
            }
            ExecutorKind::Gemini => t = t.replace(&sha256_hex(&state.cwd), &sha256_hex(&new_cwd)),
            _ => {}
        }
        t
    };
    let mut written = 0;
    for file in &state.files {
        let rel = Path::new(&file.path);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, std::path::Component::Normal(_))) {
            return Err(std::io::Error::other(format!("a session state file outside its home: {}", file.path)));
        }
        let target = root.join(rename(&file.path));
        if target.exists() {
            continue;
        }
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.content_base64)
            .map_err(|e| std::io::Error::other(format!("{}: {e}", file.path)))?;
        let bytes = match String::from_utf8(bytes) {
            Ok(text) => rename(&text).into_bytes(),
            Err(e) => e.into_bytes(),
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, bytes)?;
        written += 1;
    }
    if state.executor == ExecutorKind::Gemini {
        gemini_project(home, state, &new_cwd)?;
    }
    Ok(written)
}

/// Names the new working directory in Gemini's `projects.json`, with the slug
/// its files were restored under.
fn gemini_project(home: &Path, state: &SessionState, new_cwd: &str) -> std::io::Result<()> {
    let Some(slug) = state.files.iter().find_map(|f| f.path.strip_prefix(".gemini/tmp/")?.split('/').next()) else {
        return Ok(());
    };
    let path = home.join(".gemini/projects.json");
    let mut projects: serde_json::Value =
        std::fs::read_to_string(&path).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or_default();
    if !projects["projects"].is_object() {
        projects["projects"] = serde_json::json!({});
    }
    projects["projects"][new_cwd] = serde_json::Value::String(slug.to_owned());
    std::fs::write(path, serde_json::to_vec_pretty(&projects).map_err(std::io::Error::other)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claude_conversation_moves_to_another_working_directory() {
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let old = "/data/worktrees/repo/t1-x";
        let dir = a.path().join(".claude/projects").join(claude_dir(old));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("s1.jsonl"), format!("{{\"cwd\":\"{old}\",\"text\":\"turn one\"}}\n")).unwrap();
        let state = collect(ExecutorKind::ClaudeCode, a.path(), Path::new(old), &[]).unwrap();
        assert_eq!(state.files.len(), 1);
        let new = "/other/host/worktrees/repo/t1-x";
        assert_eq!(restore(&state, b.path(), Path::new(new), &[]).unwrap(), 1);
        let moved = b.path().join(".claude/projects").join(claude_dir(new)).join("s1.jsonl");
        let text = std::fs::read_to_string(moved).unwrap();
        assert!(text.contains(new) && text.contains("turn one"), "{text}");
        assert_eq!(restore(&state, b.path(), Path::new(new), &[]).unwrap(), 0, "what is there is kept");
        assert!(collect(ExecutorKind::ClaudeCode, a.path(), Path::new("/elsewhere"), &[]).is_none());
    }

    #[test]
    fn state_files_stay_inside_the_home() {
        let b = tempfile::tempdir().unwrap();
        let state = SessionState {
            executor: ExecutorKind::ClaudeCode,
            cwd: "/x".into(),
            files: vec![StateFile { path: "../../etc/evil".into(), content_base64: String::new() }],
        };
        assert!(restore(&state, b.path(), Path::new("/y"), &[]).is_err());
    }
}
