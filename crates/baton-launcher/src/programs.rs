//! Preflight: which of the agents' programs are installed on this host, and
//! which version, reported to the coordinator so `baton agents` can say.
//!
//! Only the known agent CLIs are asked `--version`: any other program (a
//! `command` or ACP agent's) may do something else with that argument, so it is
//! only looked for.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use baton_agents::executor::find_program;
use baton_core::model::ProgramInfo;

/// How long a program found stays known before it is probed again (it may be
/// upgraded).
const FOUND_TTL: Duration = Duration::from_secs(600);

/// How long a missing program stays missing before it is looked for again (it
/// may be installed).
const MISSING_TTL: Duration = Duration::from_secs(20);

/// How long `PROGRAM --version` may take.
const VERSION_TIMEOUT: Duration = Duration::from_secs(15);

/// What was found, and when.
#[derive(Default)]
pub(crate) struct Programs {
    known: HashMap<String, (ProgramInfo, Instant)>,
    /// What the coordinator was last told.
    sent: Option<BTreeMap<String, ProgramInfo>>,
}

impl Programs {
    /// Probes the `wanted` programs (each with whether to ask its version) that
    /// are new or due again. The full map, when it differs from what the
    /// coordinator was last told.
    pub async fn refresh(&mut self, wanted: &BTreeMap<String, bool>) -> Option<BTreeMap<String, ProgramInfo>> {
        let path = std::env::var("PATH").ok();
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        for (program, &ask_version) in wanted {
            let due = self
                .known
                .get(program)
                .is_none_or(|(info, at)| at.elapsed() > if info.path.is_some() { FOUND_TTL } else { MISSING_TTL });
            if due {
                let info = probe(program, ask_version, path.as_deref(), &cwd).await;
                self.known.insert(program.clone(), (info, Instant::now()));
            }
        }
        let now: BTreeMap<String, ProgramInfo> =
            wanted.keys().filter_map(|p| self.known.get(p).map(|(i, _)| (p.clone(), i.clone()))).collect();
        (self.sent.as_ref() != Some(&now)).then_some(now)
    }

    /// The coordinator has `programs`.
    pub fn sent(&mut self, programs: BTreeMap<String, ProgramInfo>) {
        self.sent = Some(programs);
    }
}

/// Finds a program and, when `ask_version`, asks its version (a program that
/// fails at `--version` has none).
async fn probe(program: &str, ask_version: bool, path: Option<&str>, cwd: &Path) -> ProgramInfo {
    let Some(found) = find_program(program, path, cwd) else { return ProgramInfo::default() };
    let path = Some(found.to_string_lossy().into_owned());
    if !ask_version {
        return ProgramInfo { path, version: None };
    }
    let output = tokio::time::timeout(
        VERSION_TIMEOUT,
        tokio::process::Command::new(&found)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await;
    let version = match output {
        Ok(Ok(out)) if out.status.success() => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().map(str::trim).find(|l| !l.is_empty()).map(|l| {
                let mut l = l.to_owned();
                l.truncate(120);
                l
            })
        }
        _ => None,
    };
    ProgramInfo { path, version }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn installed_programs_have_a_path_and_version_and_missing_ones_neither() {
        let mut programs = Programs::default();
        let wanted: BTreeMap<String, bool> =
            [("git".to_owned(), true), ("sh".to_owned(), false), ("surely-not-installed-xyz".to_owned(), true)].into();
        let map = programs.refresh(&wanted).await.expect("first report");
        let git = &map["git"];
        assert!(git.path.as_deref().is_some_and(|p| p.ends_with("/git")), "{git:?}");
        assert!(git.version.as_deref().is_some_and(|v| v.starts_with("git version")), "{git:?}");
        let sh = &map["sh"];
        assert!(sh.path.is_some() && sh.version.is_none(), "a program that is not a known CLI is not run: {sh:?}");
        assert_eq!(map["surely-not-installed-xyz"], ProgramInfo::default());
        programs.sent(map);
        assert!(programs.refresh(&wanted).await.is_none(), "nothing changed, nothing to send");
    }

    #[tokio::test]
    async fn a_program_failing_at_version_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let fails = dir.path().join("fails");
        std::fs::write(&fails, "#!/bin/sh\necho 'unknown option --version' >&2\nexit 2\n").unwrap();
        std::fs::set_permissions(&fails, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let info = probe(fails.to_str().unwrap(), true, None, dir.path()).await;
        assert!(info.path.is_some() && info.version.is_none(), "{info:?}");
    }
}
