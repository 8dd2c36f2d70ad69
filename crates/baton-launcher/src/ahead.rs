//! The sandbox made ahead. A standby supervisor (see `supervisor::standby`)
//! starts bubblewrap before it has a run: the namespaces, a fresh `/dev` and
//! `/proc`, `/` read-only, and inside them `baton sandbox-init` waiting on a
//! pipe. When the run comes, the supervisor writes the run's [`Plan`] to it:
//! `sandbox-init` opens the places the run may use while it still sees them,
//! hides Baton's data directories, the host's `/tmp` and the user's secrets
//! under empty tmpfs, binds the run's places back (read-only or writable, at
//! the same paths, from the descriptors it opened), enters the run's
//! directory, drops every capability, and becomes the agent. A run then pays
//! only for its own mounts, not for bubblewrap's setup.
//!
//! The plan is read from the run's own bubblewrap command line (the one the
//! spec keeps, so a restarted launcher sees the same sandbox); a command line
//! with anything this does not do the same way (a network of its own, an extra
//! capability) is run by bubblewrap as before. So is everything when
//! `sandbox-init` cannot apply the plan: it reports why on a pipe that closes
//! when it becomes the agent, and never runs the agent unsandboxed. A sandbox
//! made ahead ends with its supervisor: its plan pipe closes.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::mount::{MsFlags, mount};
use nix::sys::signal::{self, SigHandler, SigSet, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::spool::{Spec, Spool};

/// A place of the run's sandbox, in the order they are made (parents first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Place {
    /// An empty tmpfs over a directory.
    Hide(PathBuf),
    /// A file hidden behind `/dev/null`.
    HideFile(PathBuf),
    /// The host's directory, read-only.
    Read(PathBuf),
    /// The host's directory, writable.
    Write(PathBuf),
}

/// What `sandbox-init` makes of the sandbox, and the agent it becomes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The places, in order.
    pub places: Vec<Place>,
    /// The agent's directory.
    pub cwd: PathBuf,
    /// The agent's program, arguments and whole environment.
    pub program: String,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Its input (none: `/dev/null`), output and errors.
    pub stdin: Option<PathBuf>,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
}

/// The arguments bubblewrap is started with ahead: everything of
/// `sandbox::Jail::bubblewrap` that does not depend on the run.
const COMMON: [&str; 8] = ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", ""];

/// The plan of a run whose sandbox a made-ahead one can be: none when its
/// command line has anything else (a network of its own, `/etc/hosts`, an
/// extra capability).
pub fn plan_of(spool: &Spool, spec: &Spec) -> Option<Plan> {
    let prefix = spec.sandbox.as_ref().filter(|_| spec.container.is_none())?;
    let rest = prefix.get(1..)?;
    if rest.len() < 7 || rest[..7] != COMMON[..7] {
        return None;
    }
    let (mut places, mut cwd) = (Vec::new(), None);
    let mut args = rest[7..].iter();
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tmpfs" => places.push(Place::Hide(args.next()?.into())),
            "--ro-bind" => {
                let (from, to) = (args.next()?, args.next()?);
                match (from.as_str(), from == to) {
                    ("/dev/null", false) => places.push(Place::HideFile(to.into())),
                    (_, true) => places.push(Place::Read(to.into())),
                    _ => return None,
                }
            }
            "--bind" => {
                let (from, to) = (args.next()?, args.next()?);
                if from != to {
                    return None;
                }
                places.push(Place::Write(to.into()));
            }
            "--unshare-pid" | "--unshare-ipc" | "--new-session" | "--die-with-parent" => {}
            // Every capability goes, whatever the line says (see `become_agent`).
            "--cap-drop" if args.next()? == "ALL" => {}
            "--chdir" => cwd = Some(PathBuf::from(args.next()?)),
            _ => return None,
        }
    }
    Some(Plan {
        places,
        cwd: cwd?,
        program: spec.program.clone(),
        args: spec.args.clone(),
        env: spec.env.clone(),
        stdin: spec.stdin.then(|| spool.path("stdin")),
        stdout: spool.path("stdout"),
        stderr: spool.path("stderr"),
    })
}

/// What `sandbox-init` writes first on its status descriptor: it runs.
const UP: [u8; 1] = *b"+";

/// A sandbox made ahead, waiting for its plan.
pub struct Premade {
    /// Bubblewrap (the supervisor's child).
    child: Child,
    /// The sandbox's first process: `sandbox-init`, then the agent.
    group: Pid,
    /// Where the plan goes.
    plan: File,
    /// Where `sandbox-init` says why it failed (closed when it became the agent).
    status: File,
}

impl Premade {
    /// Starts `bwrap` with the common sandbox and `exe sandbox-init` in it.
    pub fn start(bwrap: &Path, exe: &Path) -> std::io::Result<Premade> {
        let cloexec = OFlag::O_CLOEXEC;
        let (plan_r, plan_w) = nix::unistd::pipe2(cloexec)?;
        let (info_r, info_w) = nix::unistd::pipe2(cloexec)?;
        let (status_r, status_w) = nix::unistd::pipe2(cloexec)?;
        let (info_fd, status_fd) = (info_w.as_raw_fd(), status_w.as_raw_fd());
        let mut cmd = Command::new(bwrap);
        cmd.args(&COMMON[..7])
            .args(["--unshare-pid", "--unshare-ipc", "--new-session", "--die-with-parent"])
            .arg("--info-fd")
            .arg(info_fd.to_string())
            .arg("--")
            .arg(exe)
            .args(["sandbox-init", "--status-fd", &status_fd.to_string()])
            .env_clear()
            .stdin(Stdio::from(plan_r))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        // No signal ends it: a bubblewrap killed while it sets up leaves its
        // sandbox's first process waiting for it forever. It ends when its plan
        // pipe closes (the supervisor gone, or done without it): `sandbox-init`
        // reads nothing and exits, and the sandbox with it.
        // SAFETY: only async-signal-safe calls (sigprocmask, signal, fcntl) run
        // between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                SigSet::empty().thread_set_mask().map_err(std::io::Error::from)?;
                signal::signal(Signal::SIGPIPE, SigHandler::SigDfl).map_err(std::io::Error::from)?;
                for fd in [info_fd, status_fd] {
                    let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn()?;
        drop((info_w, status_w));
        let Some(group) = crate::supervisor::sandbox_group(info_r) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(std::io::Error::other("bubblewrap did not start the sandbox"));
        };
        // Until `sandbox-init` runs, bubblewrap is still setting the sandbox up,
        // and its first process waits on it: if bubblewrap died now (its
        // supervisor dismissed at once, and `--die-with-parent`), that process
        // would wait forever. So the standby waits for `sandbox-init`'s first
        // byte, after which bubblewrap's part is done.
        let mut status = File::from(status_r);
        let mut up = [0u8; 1];
        if !matches!(status.read(&mut up), Ok(1)) || up != UP {
            drop(plan_w);
            let _ = child.wait();
            return Err(std::io::Error::other("the sandbox made ahead did not start"));
        }
        Ok(Premade { child, group, plan: File::from(plan_w), status })
    }

    /// Hands the plan over and waits until the sandbox has become the agent:
    /// bubblewrap's pid and the agent's process group; or why it could not
    /// (the sandbox is then gone).
    pub fn run(mut self, plan: &Plan) -> Result<(Pid, Pid), String> {
        let text = serde_json::to_vec(plan).map_err(|e| e.to_string())?;
        let sent = self.plan.write_all(&text);
        drop(self.plan);
        let mut why = String::new();
        let _ = self.status.read_to_string(&mut why);
        if sent.is_ok() && why.is_empty() {
            return Ok((Pid::from_raw(self.child.id() as i32), self.group));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        Err(if why.is_empty() { "the sandbox made ahead went away".into() } else { why })
    }
}

/// `baton sandbox-init --status-fd N`: inside the sandbox made ahead, reads the
/// plan on stdin, makes it, and becomes the agent. Only returns (an exit code)
/// when it could not, after saying why on the status descriptor.
pub fn init(status_fd: RawFd) -> i32 {
    // SAFETY: the descriptor was handed over for this process alone.
    let mut status = unsafe { File::from_raw_fd(status_fd) };
    let _ = fcntl(&status, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC));
    // Running: the sandbox is made (see `Premade::start`).
    let _ = status.write_all(&UP);
    let mut text = String::new();
    if std::io::stdin().read_to_string(&mut text).is_err() || text.is_empty() {
        return 0;
    }
    let why = match serde_json::from_str::<Plan>(&text) {
        Ok(plan) => become_agent(&plan),
        Err(e) => format!("unreadable plan: {e}"),
    };
    let _ = status.write_all(why.as_bytes());
    127
}

/// Makes the plan and execs the agent; why not, when it returns.
fn become_agent(plan: &Plan) -> String {
    let open = |p: &Path, flags: OFlag| {
        nix::fcntl::open(p, flags | OFlag::O_CLOEXEC, nix::sys::stat::Mode::empty())
            .map_err(|e| format!("{}: {e}", p.display()))
    };
    // Everything the run may use, opened while the host's view still shows it.
    let mut sources: Vec<Option<OwnedFd>> = Vec::new();
    for place in &plan.places {
        sources.push(match place {
            Place::Read(p) | Place::Write(p) => match open(p, OFlag::O_PATH) {
                Ok(fd) => Some(fd),
                Err(e) => return e,
            },
            _ => None,
        });
    }
    // The output files are in the run's spool, under the read-only `/`: its
    // directory is made writable for as long as it takes to open them.
    let append = OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_CREAT;
    let spool = plan.stdout.parent().unwrap_or(Path::new("/"));
    let writable = mount(Some(spool), spool, None::<&str>, MsFlags::MS_BIND, None::<&str>).and_then(|()| {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
        mount(None::<&str>, spool, None::<&str>, flags, None::<&str>)
    });
    if let Err(e) = writable {
        return format!("cannot open the run's spool {}: {e}", spool.display());
    }
    let stdio = (|| {
        let stdin = match &plan.stdin {
            Some(p) => open(p, OFlag::O_RDONLY)?,
            None => open(Path::new("/dev/null"), OFlag::O_RDONLY)?,
        };
        Ok::<_, String>([stdin, open(&plan.stdout, append)?, open(&plan.stderr, append)?])
    })();
    let _ = nix::mount::umount2(spool, nix::mount::MntFlags::MNT_DETACH);
    let stdio = match stdio {
        Ok(s) => s,
        Err(e) => return e,
    };
    for (place, source) in plan.places.iter().zip(&sources) {
        if let Err(e) = make(place, source.as_ref()) {
            return e;
        }
    }
    if let Err(e) = std::env::set_current_dir(&plan.cwd) {
        return format!("cannot enter {}: {e}", plan.cwd.display());
    }
    let [stdin, stdout, stderr] = &stdio;
    let dup = nix::unistd::dup2_stdin(stdin)
        .and_then(|()| nix::unistd::dup2_stdout(stdout))
        .and_then(|()| nix::unistd::dup2_stderr(stderr));
    if let Err(e) = dup {
        return format!("cannot set up the agent's input and output: {e}");
    }
    // Always: the sandbox was made with them, the agent never has one.
    if let Err(e) = drop_capabilities() {
        return e;
    }
    if let Err(e) = nix::sys::prctl::set_no_new_privs() {
        return format!("cannot forbid new privileges: {e}");
    }
    let c = |s: &str| CString::new(s).map_err(|_| format!("a NUL byte in {s:?}"));
    let argv: Result<Vec<CString>, String> =
        std::iter::once(plan.program.as_str()).chain(plan.args.iter().map(String::as_str)).map(c).collect();
    let envp: Result<Vec<CString>, String> = plan.env.iter().map(|(k, v)| c(&format!("{k}={v}"))).collect();
    let (argv, envp) = match (argv, envp) {
        (Ok(a), Ok(e)) => (a, e),
        (Err(e), _) | (_, Err(e)) => return e,
    };
    // The program as the sandbox finds it: on the agent's PATH when it is a bare name.
    let path = plan.env.iter().find(|(k, _)| k == "PATH").map(|(_, v)| v.as_str());
    let program = match baton_agents::executor::find_program(&plan.program, path, &plan.cwd) {
        Some(p) => p,
        None => return format!("{} not found inside the sandbox", plan.program),
    };
    let Ok(program) = CString::new(program.as_os_str().as_encoded_bytes()) else {
        return "a NUL byte in the program's path".into();
    };
    let e = nix::unistd::execve(&program, &argv, &envp).err();
    format!("could not start {}: {}", plan.program, e.map(|e| e.to_string()).unwrap_or_default())
}

/// Makes one place, from the descriptor opened for it before anything was hidden.
fn make(place: &Place, source: Option<&OwnedFd>) -> Result<(), String> {
    let err = |p: &Path, what: &str, e: nix::Error| format!("cannot {what} {}: {e}", p.display());
    let quiet = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    match (place, source) {
        (Place::Hide(p), _) => {
            std::fs::create_dir_all(p).map_err(|e| format!("cannot make {}: {e}", p.display()))?;
            mount(Some("tmpfs"), p, Some("tmpfs"), quiet, Some("mode=0755")).map_err(|e| err(p, "hide", e))
        }
        (Place::HideFile(p), _) => {
            if !p.exists() {
                File::create(p).map_err(|e| format!("cannot make {}: {e}", p.display()))?;
            }
            mount(Some("/dev/null"), p, None::<&str>, MsFlags::MS_BIND, None::<&str>).map_err(|e| err(p, "hide", e))
        }
        (Place::Read(p) | Place::Write(p), Some(fd)) => {
            if !p.exists() {
                // Where a hiding tmpfs covers it: a mount point of its kind.
                let is_dir =
                    nix::sys::stat::fstat(fd).is_ok_and(|st| st.st_mode & nix::libc::S_IFMT == nix::libc::S_IFDIR);
                let made = if is_dir {
                    std::fs::create_dir_all(p)
                } else {
                    p.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| File::create(p).map(drop))
                };
                made.map_err(|e| format!("cannot make {}: {e}", p.display()))?;
            }
            let from = PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()));
            mount(Some(&from), p, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)
                .map_err(|e| err(p, "bind", e))?;
            let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | quiet;
            if matches!(place, Place::Read(_)) {
                flags |= MsFlags::MS_RDONLY;
            }
            mount(None::<&str>, p, None::<&str>, flags, None::<&str>).map_err(|e| err(p, "remount", e))
        }
        (_, None) => Err("a place without its descriptor".into()),
    }
}

/// Drops every capability: the bounding set (so no program it runs, even as
/// root, gets any back), the ambient set, and its own.
fn drop_capabilities() -> Result<(), String> {
    use nix::libc;
    for cap in 0..64 {
        // SAFETY: prctl with integer arguments; EINVAL past the last capability.
        let r = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) };
        if r != 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINVAL) {
            return Err(format!("cannot drop capability {cap}: {}", std::io::Error::last_os_error()));
        }
    }
    // SAFETY: as above.
    unsafe { libc::prctl(libc::PR_CAP_AMBIENT, libc::PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) };
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header { version: 0x2008_0522, pid: 0 };
    let data =
        [Data { effective: 0, permitted: 0, inheritable: 0 }, Data { effective: 0, permitted: 0, inheritable: 0 }];
    // SAFETY: capset with a version 3 header and its two data words.
    let r = unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) };
    if r != 0 {
        return Err(format!("cannot drop capabilities: {}", std::io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_is_read_from_the_runs_command_line_or_not_at_all() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::at(dir.path());
        let mut spec: Spec = serde_json::from_value(serde_json::json!({
            "program": "sh", "args": ["-c", "true"], "env": [["PATH", "/usr/bin"]], "cwd": "/w", "stdin": true,
            "grace_s": 10,
        }))
        .unwrap();
        let line = |extra: &[&str]| {
            let mut l: Vec<String> =
                ["/usr/bin/bwrap"].iter().chain(COMMON[..7].iter()).map(|s| s.to_string()).collect();
            l.extend(extra.iter().map(|s| s.to_string()));
            l
        };
        spec.sandbox = Some(line(&[
            "--tmpfs",
            "/tmp",
            "--ro-bind",
            "/dev/null",
            "/h/.netrc",
            "--ro-bind",
            "/m",
            "/m",
            "--bind",
            "/w",
            "/w",
            "--unshare-pid",
            "--unshare-ipc",
            "--new-session",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--chdir",
            "/w",
        ]));
        let plan = plan_of(&spool, &spec).expect("a plan");
        assert_eq!(
            plan.places,
            [
                Place::Hide("/tmp".into()),
                Place::HideFile("/h/.netrc".into()),
                Place::Read("/m".into()),
                Place::Write("/w".into())
            ]
        );
        assert!(plan.stdin.is_some() && plan.cwd == Path::new("/w"));
        spec.sandbox = Some(line(&["--unshare-net", "--chdir", "/w"]));
        assert!(plan_of(&spool, &spec).is_none(), "a network of its own is bubblewrap's");
        spec.sandbox = Some(line(&["--ro-bind", "/x/hosts", "/etc/hosts", "--chdir", "/w"]));
        assert!(plan_of(&spool, &spec).is_none());
    }
}
