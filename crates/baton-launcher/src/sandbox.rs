//! Sandboxes for agents, their setup and checks, and the git commands Baton runs
//! in their repositories: bubblewrap, built once per run as a [`Jail`].
//!
//! Inside, the host is read-only; the agent may write only its working tree, the
//! project's cache, a private `/tmp` and its own HOME. Baton's data directory
//! (database, tokens, spools, other tasks' working trees, the mirrors) is hidden
//! under an empty tmpfs, with the few parts the agent needs bound back read-only
//! (its run's spool, the mirror objects its repository borrows). Well-known
//! places of the launcher user's credentials are hidden too.
//!
//! Mount order matters (bubblewrap applies them in order, and a later mount
//! covers what is below it): `/` read-only, a fresh `/dev` and `/proc`, then a
//! tmpfs `/tmp`, the hidden places and the binds sorted by depth, parents first
//! (so the project's checkout under `/tmp` is bound back before Baton's data
//! directory inside it is hidden, and the worktree inside that bound back after);
//! at one path, a bind wins over hiding.
//!
//! The agent runs in a new session, PID and IPC namespace, with no capabilities
//! and `no_new_privs`. bubblewrap's own process would die of the interrupt that
//! asks an agent to stop, and take the agent with it; so the agent's process
//! group is the one bubblewrap starts inside (`--new-session`), which the
//! supervisor learns from `--info-fd` and signals instead.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::sandbox::{NetworkPolicy, SandboxKind, SandboxReport};

use crate::container::Container;

/// Places under the launcher user's HOME that hold credentials, hidden from agents.
const HIDDEN_IN_HOME: &[&str] = &[
    ".ssh",
    ".gnupg",
    ".aws",
    ".azure",
    ".kube",
    ".docker",
    ".config/gh",
    ".config/gcloud",
    ".config/hub",
    ".netrc",
    ".git-credentials",
    ".npmrc",
    ".pypirc",
    ".cargo/credentials",
    ".cargo/credentials.toml",
    ".claude",
    ".claude.json",
    ".codex",
    ".gemini",
    ".bash_history",
    ".zsh_history",
    ".python_history",
];

/// What isolation this host can give, found once at start.
#[derive(Debug, Clone)]
pub struct SandboxSupport {
    /// The bubblewrap program, when it works here.
    pub bwrap: Option<PathBuf>,
    /// Why it does not, and the fix.
    pub reason: Option<String>,
}

impl SandboxSupport {
    /// Looks for bubblewrap and tries it once.
    pub async fn detect() -> Self {
        let path = std::env::var("PATH").ok();
        let Some(bwrap) = baton_agents::executor::find_program("bwrap", path.as_deref(), Path::new("/")) else {
            return Self::none(
                "bubblewrap is not installed; install it (apt-get install bubblewrap, dnf install bubblewrap)",
            );
        };
        let mut probe = tokio::process::Command::new(&bwrap);
        probe.args(["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid", "--new-session"]);
        probe.args(["--die-with-parent", "--cap-drop", "ALL", "true"]).kill_on_drop(true);
        match tokio::time::timeout(std::time::Duration::from_secs(10), probe.output()).await {
            Ok(Ok(out)) if out.status.success() => Self { bwrap: Some(bwrap), reason: None },
            Ok(Ok(out)) => {
                let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
                Self::none(&format!(
                    "bubblewrap cannot make a sandbox here ({stderr}); allow user namespaces (sysctl kernel.unprivileged_userns_clone=1, or an AppArmor profile for bwrap) or run the launcher as root"
                ))
            }
            Ok(Err(e)) => Self::none(&format!("bubblewrap could not start ({e})")),
            Err(_) => Self::none("bubblewrap did not answer within 10 s"),
        }
    }

    /// No sandbox, for `reason`.
    pub fn none(reason: &str) -> Self {
        Self { bwrap: None, reason: Some(reason.to_owned()) }
    }

    /// What the launcher tells the coordinator it can do.
    pub fn report(&self) -> SandboxReport {
        match &self.bwrap {
            Some(_) => SandboxReport { kind: SandboxKind::Bubblewrap, reason: None, network: NetworkPolicy::Full },
            None => {
                SandboxReport { kind: SandboxKind::None, reason: self.reason.clone(), network: NetworkPolicy::Full }
            }
        }
    }
}

/// How a sandboxed run without the full network reaches Baton (and its
/// allowlist): see [`crate::net`].
#[derive(Debug, Clone)]
pub(crate) struct NetPlan {
    /// The run's spool directory, where the sockets and the hosts file are.
    pub spool_dir: PathBuf,
    /// The coordinator.
    pub coordinator: crate::net::Coordinator,
    /// The `baton` binary, which runs `sandbox-net` inside.
    pub exe: PathBuf,
}

/// Where one run's agent lives, for its sandbox.
#[derive(Debug, Clone, Default)]
pub(crate) struct Places {
    /// The working directory (the task's working tree, or the project's checkout
    /// for a task without one, then read-only).
    pub cwd: PathBuf,
    /// Directories the agent may write: its working tree, the project's cache,
    /// its HOME.
    pub writable: Vec<PathBuf>,
    /// Directories it may read inside hidden ones: its spool, borrowed objects.
    pub readable: Vec<PathBuf>,
    /// Directories hidden under an empty tmpfs: Baton's data directories.
    pub hidden: Vec<PathBuf>,
    /// The launcher user's HOME, whose credentials are hidden.
    pub user_home: Option<PathBuf>,
}

/// What must stay visible, read-only, for `program` to run in the sandbox when
/// it lives where the sandbox hides things (`/tmp`, a hidden directory): its
/// package — the topmost `node_modules` above it, else the prefix of its `bin`
/// directory, else its own directory — found through its symlinks too, and
/// the same for the interpreter its `#!` line names (looked up on `path` for
/// `/usr/bin/env NAME`).
pub(crate) fn program_roots(program: &Path, path: Option<&str>, hidden: &[PathBuf]) -> Vec<PathBuf> {
    let covered = |p: &Path| p.starts_with("/tmp") || hidden.iter().any(|h| p.starts_with(h));
    let mut seen = vec![program.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(program) {
        if let Some(interpreter) = interpreter(&real, path) {
            seen.extend(std::fs::canonicalize(&interpreter).ok());
            seen.push(interpreter);
        }
        seen.push(real);
    }
    let mut roots: Vec<PathBuf> = seen.iter().filter(|p| covered(p)).map(|p| package_root(p)).collect();
    roots.sort();
    roots.dedup();
    roots
}

/// The directory a program's package lives in (never `/tmp` or `/` itself).
fn package_root(program: &Path) -> PathBuf {
    let deep = |p: &Path| p.components().count() > 2;
    if let Some(modules) = program.ancestors().filter(|a| a.file_name().is_some_and(|n| n == "node_modules")).last() {
        return modules.to_path_buf();
    }
    let Some(dir) = program.parent() else { return program.to_path_buf() };
    match dir.parent() {
        Some(prefix) if dir.file_name().is_some_and(|n| n == "bin") && deep(prefix) => prefix.to_path_buf(),
        _ if deep(dir) => dir.to_path_buf(),
        _ => program.to_path_buf(),
    }
}

/// The interpreter a script's `#!` line names, when it has one.
fn interpreter(script: &Path, path: Option<&str>) -> Option<PathBuf> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(script).and_then(|mut f| f.read(&mut head)).ok()?;
    let line = std::str::from_utf8(&head[..n]).ok()?.strip_prefix("#!")?.lines().next()?.to_owned();
    let mut words = line.split_whitespace();
    let first = words.next()?;
    if !first.ends_with("/env") {
        return Some(PathBuf::from(first));
    }
    let name = words.find(|w| !w.starts_with('-'))?;
    baton_agents::executor::find_program(name, path, Path::new("/"))
}

/// One mount of a sandbox, in the order they win at one path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mount {
    /// An empty tmpfs over a directory.
    Hide,
    /// `/dev/null` over a file.
    HideFile,
    /// The host's directory, read-only.
    Read,
    /// The host's directory, writable.
    Write,
}

/// Every mount after `/`, `/dev` and `/proc`, parents first.
fn mounts(places: &Places) -> Vec<(Mount, PathBuf)> {
    let mut all = vec![(Mount::Hide, PathBuf::from("/tmp"))];
    all.extend(places.hidden.iter().filter(|d| d.is_dir()).map(|d| (Mount::Hide, d.clone())));
    if let Some(home) = &places.user_home {
        for name in HIDDEN_IN_HOME {
            let p = home.join(name);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => all.push((Mount::Hide, p)),
                Ok(_) => all.push((Mount::HideFile, p)),
                Err(_) => {}
            }
        }
    }
    all.extend(places.readable.iter().filter(|d| d.exists()).map(|d| (Mount::Read, d.clone())));
    all.extend(places.writable.iter().filter(|d| d.exists()).map(|d| (Mount::Write, d.clone())));
    all.sort_by(|(ma, pa), (mb, pb)| pa.components().count().cmp(&pb.components().count()).then(ma.cmp(mb)));
    all.dedup();
    all
}

/// A run's sandbox: the command line that runs a program inside it.
#[derive(Debug, Clone)]
pub(crate) struct Jail {
    /// `bwrap` and its arguments, without the program (none: no sandbox).
    prefix: Option<Arc<Vec<OsString>>>,
    /// What runs inside before the program (`baton sandbox-net … --`), for a
    /// network of its own.
    inner: Option<Arc<Vec<OsString>>>,
    /// The container the agent and its commands run in (the bubblewrap
    /// sandbox, when there is one, is then only for git in its worktree).
    container: Option<Arc<Container>>,
    /// What the run reports about its isolation.
    pub report: SandboxReport,
}

impl Jail {
    /// No sandbox, for `reason`.
    pub fn none(reason: Option<String>) -> Self {
        Jail {
            prefix: None,
            inner: None,
            container: None,
            report: SandboxReport { kind: SandboxKind::None, reason, network: NetworkPolicy::Full },
        }
    }

    /// A bubblewrap sandbox around `places`; with a network policy other than
    /// `full`, `net` says how it reaches Baton.
    pub fn bubblewrap(bwrap: &Path, places: &Places, network: &NetworkPolicy, net: Option<&NetPlan>) -> Self {
        let mut a: Vec<OsString> = vec![bwrap.into()];
        let mut arg = |parts: &[&dyn AsRef<std::ffi::OsStr>]| a.extend(parts.iter().map(|p| p.as_ref().to_owned()));
        arg(&[&"--ro-bind", &"/", &"/", &"--dev", &"/dev", &"--proc", &"/proc"]);
        for (mount, path) in mounts(places) {
            match mount {
                Mount::Hide => arg(&[&"--tmpfs", &path]),
                Mount::HideFile => arg(&[&"--ro-bind", &"/dev/null", &path]),
                Mount::Read => arg(&[&"--ro-bind", &path, &path]),
                Mount::Write => arg(&[&"--bind", &path, &path]),
            }
        }
        arg(&[&"--unshare-pid", &"--unshare-ipc", &"--new-session", &"--die-with-parent"]);
        if nix::unistd::geteuid().is_root() {
            arg(&[&"--cap-drop", &"ALL"]);
        }
        let mut inner = None;
        if *network != NetworkPolicy::Full {
            arg(&[&"--unshare-net"]);
            if let Some(net) = net {
                let hosts = net.spool_dir.join("hosts");
                if std::fs::write(&hosts, crate::net::hosts_file(&net.coordinator)).is_ok() {
                    arg(&[&"--ro-bind", &hosts, &"/etc/hosts"]);
                }
                if net.coordinator.port < 1024 {
                    arg(&[&"--cap-add", &"CAP_NET_BIND_SERVICE"]);
                }
                let mut helper: Vec<OsString> = vec![net.exe.clone().into(), "sandbox-net".into()];
                let forward = |addr: String, socket: &str| -> [OsString; 2] {
                    ["--forward".into(), format!("{addr}={}", net.spool_dir.join(socket).display()).into()]
                };
                helper.extend(forward(net.coordinator.inside(), crate::net::BATON_SOCKET));
                if matches!(network, NetworkPolicy::Allow(_)) {
                    helper.extend(forward(format!("127.0.0.1:{}", crate::net::PROXY_PORT), crate::net::PROXY_SOCKET));
                }
                helper.push("--".into());
                inner = Some(Arc::new(helper));
            }
        }
        arg(&[&"--chdir", &places.cwd]);
        Jail {
            prefix: Some(Arc::new(a)),
            inner,
            container: None,
            report: SandboxReport { kind: SandboxKind::Bubblewrap, reason: None, network: network.clone() },
        }
    }

    /// The sandbox of a run found on disk, from its spec's command line.
    pub fn from_prefix(prefix: Vec<String>) -> Self {
        Jail {
            prefix: Some(Arc::new(prefix.into_iter().map(OsString::from).collect())),
            inner: None,
            container: None,
            report: SandboxReport { kind: SandboxKind::Bubblewrap, reason: None, network: NetworkPolicy::Full },
        }
    }

    /// The sandbox's command line without the program, for the supervisor (which
    /// adds `--info-fd`).
    pub fn prefix(&self) -> Option<Vec<String>> {
        self.prefix.as_ref().map(|p| p.iter().map(|a| a.to_string_lossy().into_owned()).collect())
    }

    /// The command line that runs a program inside (ending with `--`).
    pub fn wrapper(&self) -> Option<Arc<Vec<OsString>>> {
        self.prefix.as_ref().map(|p| {
            let mut w = p.as_ref().clone();
            w.push("--".into());
            Arc::new(w)
        })
    }

    /// A container sandbox; `git` is where git runs in the worktree (a
    /// bubblewrap sandbox, or none).
    pub fn in_container(container: Container, git: Jail) -> Self {
        let network = if container.offline { NetworkPolicy::None } else { NetworkPolicy::Full };
        Jail {
            prefix: git.prefix,
            inner: None,
            container: Some(Arc::new(container)),
            report: SandboxReport { kind: SandboxKind::Container, reason: None, network },
        }
    }

    /// The container the agent runs in, when it runs in one.
    pub fn container(&self) -> Option<&Container> {
        self.container.as_deref()
    }

    /// What runs inside before the program, for a network of its own.
    pub fn inner(&self) -> Option<Vec<String>> {
        self.inner.as_ref().map(|p| p.iter().map(|a| a.to_string_lossy().into_owned()).collect())
    }

    /// A command running `program` inside the sandbox, with exactly `env` (its
    /// arguments follow). In a container, the container's name comes with it,
    /// to remove it when the command is done.
    pub fn command(&self, program: &str, env: &[(String, String)]) -> (tokio::process::Command, Option<String>) {
        if let Some(c) = &self.container {
            let mut suffix = [0u8; 6];
            let _ = getrandom::fill(&mut suffix);
            let name = format!("{}-{}", c.name, suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
            let vars: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
            let mut cmd = tokio::process::Command::new(&c.runtime);
            cmd.args(c.run_args(&name, &vars, program, &[], false));
            cmd.env_clear().envs(c.runtime_env.iter().chain(env.iter()).map(|(k, v)| (k, v)));
            return (cmd, Some(name));
        }
        let mut cmd = match self.wrapper() {
            Some(w) => {
                let mut c = tokio::process::Command::new(&w[0]);
                c.args(&w[1..]).args(self.inner.iter().flat_map(|i| i.iter())).arg(program);
                c
            }
            None => tokio::process::Command::new(program),
        };
        cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        (cmd, None)
    }

    /// Removes a command's container (when it ran in one).
    pub async fn remove(&self, name: Option<String>) {
        if let (Some(c), Some(name)) = (self.container.clone(), name) {
            let _ =
                tokio::task::spawn_blocking(move || crate::container::remove(&c.runtime, &name, &c.runtime_env)).await;
        }
    }

    /// Git in `dir` inside the sandbox (hooks off), with `env`.
    pub fn git(&self, dir: &Path, env: Arc<Vec<(String, String)>>) -> baton_git::Git {
        baton_git::Git::jailed(dir, self.wrapper(), env)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_s_package_is_what_stays_visible() {
        let root = |p: &str| package_root(Path::new(p));
        assert_eq!(
            root("/tmp/x/testkit/agent-clis/node_modules/.bin/claude"),
            Path::new("/tmp/x/testkit/agent-clis/node_modules")
        );
        assert_eq!(root("/tmp/a/node_modules/b/node_modules/c/cli.js"), Path::new("/tmp/a/node_modules"));
        assert_eq!(root("/tmp/venv/bin/tool"), Path::new("/tmp/venv"));
        assert_eq!(root("/tmp/x/target/debug/baton"), Path::new("/tmp/x/target/debug"));
        assert_eq!(root("/tmp/bin/tool"), Path::new("/tmp/bin"), "never /tmp itself");
        assert_eq!(root("/tmp/tool"), Path::new("/tmp/tool"), "the file alone");
    }

    #[test]
    fn only_programs_where_the_sandbox_hides_things_are_bound() {
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        let bin = dir.path().join("pkg/bin");
        std::fs::create_dir_all(&bin).unwrap();
        let script = bin.join("agent");
        std::fs::write(&script, "#!/usr/bin/env sh\necho hi\n").unwrap();
        assert_eq!(program_roots(&script, None, &[]), vec![dir.path().join("pkg")]);
        assert!(program_roots(Path::new("/usr/bin/env"), None, &[]).is_empty(), "visible already");
    }
}
