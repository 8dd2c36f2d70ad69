//! Preflight: which of the agents' programs are installed on this host, and
//! which version, reported to the coordinator so `baton agents` can say.

use std::collections::{BTreeMap, BTreeSet, HashMap};
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
    /// Probes the `wanted` programs that are new or due again. The full map,
    /// when it differs from what the coordinator was last told.
    pub async fn refresh(&mut self, wanted: &BTreeSet<String>) -> Option<BTreeMap<String, ProgramInfo>> {
        let path = std::env::var("PATH").ok();
        let cwd = std::env::current_dir().unwrap_or_else(|_| "/".into());
        for program in wanted {
            let due = self
                .known
                .get(program)
                .is_none_or(|(info, at)| at.elapsed() > if info.path.is_some() { FOUND_TTL } else { MISSING_TTL });
            if due {
                let info = probe(program, path.as_deref(), &cwd).await;
                self.known.insert(program.clone(), (info, Instant::now()));
            }
        }
        let now: BTreeMap<String, ProgramInfo> =
            wanted.iter().filter_map(|p| self.known.get(p).map(|(i, _)| (p.clone(), i.clone()))).collect();
        (self.sent.as_ref() != Some(&now)).then_some(now)
    }

    /// The coordinator has `programs`.
    pub fn sent(&mut self, programs: BTreeMap<String, ProgramInfo>) {
        self.sent = Some(programs);
    }
}

/// Finds a program and asks its version.
async fn probe(program: &str, path: Option<&str>, cwd: &Path) -> ProgramInfo {
    let Some(found) = find_program(program, path, cwd) else { return ProgramInfo::default() };
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
        Ok(Ok(out)) => {
            let text = if out.stdout.is_empty() { out.stderr } else { out.stdout };
            String::from_utf8_lossy(&text).lines().map(str::trim).find(|l| !l.is_empty()).map(|l| {
                let mut l = l.to_owned();
                l.truncate(120);
                l
            })
        }
        _ => None,
    };
    ProgramInfo { path: Some(found.to_string_lossy().into_owned()), version }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn installed_programs_have_a_path_and_version_and_missing_ones_neither() {
        let mut programs = Programs::default();
        let wanted: BTreeSet<String> = ["git".to_owned(), "surely-not-installed-xyz".to_owned()].into();
        let map = programs.refresh(&wanted).await.expect("first report");
        let git = &map["git"];
        assert!(git.path.as_deref().is_some_and(|p| p.ends_with("/git")), "{git:?}");
        assert!(git.version.as_deref().is_some_and(|v| v.starts_with("git version")), "{git:?}");
        assert_eq!(map["surely-not-installed-xyz"], ProgramInfo::default());
        programs.sent(map);
        assert!(programs.refresh(&wanted).await.is_none(), "nothing changed, nothing to send");
    }
}
