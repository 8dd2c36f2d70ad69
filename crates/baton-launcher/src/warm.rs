//! Warm containers (`container_pool`). For `sandbox = "container"`, a launcher
//! keeps containers of an image started and waiting, so a run does not wait
//! for the runtime to make one (about 200 ms with Podman on a quiet host).
//!
//! A warm container belongs to a standby supervisor (`baton supervise --standby
//! --container-warm`, see `supervisor::standby`). It runs the container as its
//! child, as it would a run's, with only its slot directory bound and `sh`
//! waiting on a FIFO there. When a run comes, the supervisor:
//! - binds the run's places into the container's mount namespace, at the same
//!   paths, read-only or writable: a detached copy of each mount, moved in with
//!   the kernel's new mount API (so the launcher must be root);
//! - links the run's spool files (input, output, errors) into the slot;
//! - writes the plan (a shell script that exports the agent's variables, enters
//!   its directory and execs the agent on those files) and opens the FIFO.
//!
//! The agent is then the container's first process, as in a container made for
//! its run: its exit is the container's, a stop is the runtime's `stop`, and the
//! container is removed at the end. A container is never used twice.
//!
//! Each image's pool (per runtime, network and runtime settings) holds the
//! `container_pool` of the last run that used it here, is filled again behind
//! each run, and shrinks when the setting is lowered (from the next run that
//! uses it). A run a warm container cannot take runs in a container made for
//! it, as before; an image whose warm containers cannot start (no `sh`) gets
//! none.

use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::libc;
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::container::Container;
use crate::spool::{Spec, Spool};

/// What a warm container is made for: the runs whose container it can be.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Key {
    /// The runtime's program.
    pub runtime: PathBuf,
    pub image: String,
    /// No network at all (else the host's).
    pub offline: bool,
    /// The runtime process's own environment.
    pub runtime_env: Vec<(String, String)>,
}

impl Key {
    /// The warm containers a run's container can be.
    pub fn of(c: &Container) -> Key {
        Key {
            runtime: c.runtime.clone(),
            image: c.image.clone(),
            offline: c.offline,
            runtime_env: c.runtime_env.clone(),
        }
    }
}

/// A warm container a run was handed: its name and its slot directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub name: String,
    pub dir: PathBuf,
}

/// How long a warm container may take to start.
const START_WITHIN: Duration = Duration::from_secs(60);

/// How long a refill waits: the agent that just took a warm container starts
/// first, without a runtime process beside it competing for the CPU.
const REFILL_AFTER: Duration = Duration::from_millis(150);

/// How often each pool is checked for warm containers that ended.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// Every how many checks the image's name is looked up again.
const IMAGE_EVERY: u64 = 5;

/// What the container runs until its run comes: it says it is up, then reads
/// the plan on its input and runs it (`$0` is the slot). The plan, which holds
/// the agent's variables, comes on a pipe only its supervisor holds: never on
/// disk, never where another container could reach it.
const WAITER: &str = ": > \"$0/ready\" && . /dev/stdin";

/// How long the plan may take to be read.
const SEND_WITHIN: Duration = Duration::from_secs(10);

/// The container's name for a slot directory.
fn name_of(dir: &Path) -> String {
    format!("baton-warm-{}", dir.file_name().map(|n| n.to_string_lossy()).unwrap_or_default())
}

/// Why a warm container could not start.
#[derive(Debug)]
pub struct NotStarted {
    /// Whether the image cannot hold one (it ended before it was up: no `sh`).
    pub image: bool,
    pub why: String,
}

impl NotStarted {
    fn other(why: impl Into<String>) -> Self {
        NotStarted { image: false, why: why.into() }
    }
}

/// A warm container, waiting in its standby supervisor. Dropped without being
/// taken, it is removed.
pub struct Warm {
    /// The runtime's `run` (the supervisor's child).
    child: Child,
    /// Where the plan goes: the container's input.
    input: Option<ChildStdin>,
    /// The container's first process, on the host, and its mount namespace
    /// (held open since the container started, so a pid used again since
    /// cannot stand for it).
    pid: Pid,
    ns: Option<File>,
    /// A pidfd of that process: readable once it has ended.
    alive: Option<OwnedFd>,
    /// The image it runs (its id).
    image: String,
    key: Key,
    slot: Slot,
    /// Taken by a run, or removed.
    done: bool,
}

impl Warm {
    /// Starts a container for `key` with its slot at `dir`, and waits until it
    /// is up.
    pub fn start(key: Key, dir: PathBuf) -> Result<Warm, NotStarted> {
        let fail = |what: &str, e: &dyn std::fmt::Display| NotStarted::other(format!("{what}: {e}"));
        std::fs::create_dir(&dir).map_err(|e| fail("make the slot", &e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| fail("slot", &e))?;
        // Who owns it, beside the slot (which the agent may write).
        let owner = format!("{}\n{}", std::process::id(), key.runtime.display());
        std::fs::write(owner_of(&dir), owner).map_err(|e| fail("slot", &e))?;
        let slot = Slot { name: name_of(&dir), dir };
        let log = File::create(slot.dir.join("container.log")).map_err(|e| fail("slot", &e))?;
        let mut args: Vec<String> = vec!["run".into(), "--rm".into(), "-i".into(), "--name".into(), slot.name.clone()];
        args.push("--pull=never".into());
        if key.runtime.file_name().is_some_and(|n| n == "podman") {
            args.push("--log-driver=passthrough".into());
        }
        let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
        args.extend(["--user".into(), format!("{uid}:{gid}")]);
        args.extend(["--network".into(), if key.offline { "none" } else { "host" }.into()]);
        args.extend(["-v".into(), format!("{0}:{0}", slot.dir.display())]);
        args.extend([key.image.clone(), "sh".into(), "-c".into(), WAITER.into(), slot.dir.display().to_string()]);
        let mut child = Command::new(&key.runtime)
            .args(&args)
            .env_clear()
            .envs(key.runtime_env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(log.try_clone().map_err(|e| fail("slot", &e))?)
            .stderr(log)
            .process_group(0)
            .spawn()
            .map_err(|e| fail(&format!("run {}", key.runtime.display()), &e))?;
        let input = child.stdin.take();
        let mut warm = Warm {
            child,
            input,
            pid: Pid::from_raw(0),
            ns: None,
            alive: None,
            image: String::new(),
            key,
            slot,
            done: false,
        };
        let began = Instant::now();
        while !warm.slot.dir.join("ready").exists() {
            if let Ok(Some(status)) = warm.child.try_wait() {
                let said = read_nofollow(&warm.slot.dir.join("container.log"));
                let why = format!("the container ended ({status}) before it was up: {}", said.trim());
                return Err(NotStarted { image: true, why });
            }
            if began.elapsed() > START_WITHIN {
                return Err(NotStarted::other("the container was not up within a minute"));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let (pid, image) = inspect(&warm.key, &warm.slot.name).map_err(NotStarted::other)?;
        // SAFETY: pidfd_open takes a pid and flags, and returns a new descriptor.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
        if fd < 0 {
            return Err(fail("watch the container", &io::Error::last_os_error()));
        }
        // SAFETY: the descriptor was just returned to this process, and is owned here.
        warm.alive = Some(unsafe { OwnedFd::from_raw_fd(fd as i32) });
        let ns = File::open(format!("/proc/{pid}/ns/mnt")).map_err(|e| fail("the container's namespace", &e))?;
        let ours = std::fs::metadata("/proc/self/ns/mnt").map_err(|e| fail("this namespace", &e))?;
        let theirs = ns.metadata().map_err(|e| fail("the container's namespace", &e))?;
        if std::os::unix::fs::MetadataExt::ino(&ours) == std::os::unix::fs::MetadataExt::ino(&theirs) {
            return Err(NotStarted::other("the container has no mount namespace of its own"));
        }
        (warm.pid, warm.ns, warm.image) = (pid, Some(ns), image);
        Ok(warm)
    }

    /// Hands the container the run in `spool`: binds its places, links its
    /// files, sends its plan. The runtime's process and the agent's (the
    /// container's first); a container that cannot take it is removed.
    pub fn take(mut self, spool: &Spool, spec: &Spec) -> Result<(Pid, Pid), String> {
        self.hand_over(spool, spec)?;
        self.done = true;
        Ok((Pid::from_raw(self.child.id() as i32), self.pid))
    }

    fn hand_over(&mut self, spool: &Spool, spec: &Spec) -> Result<(), String> {
        let c = spec.container.as_ref().ok_or("the run has no container")?;
        let agent = c.agent.as_ref().ok_or("the run's container does not say what it runs")?;
        if c.warm.as_ref() != Some(&self.slot) || Key::of(c) != self.key {
            return Err("the run's container is not this one".into());
        }
        let dir = self.slot.dir.clone();
        let append = |name: &str| OpenOptions::new().create(true).append(true).open(spool.path(name)).map(drop);
        let mut stdio = vec!["stdout", "stderr"];
        if spec.stdin {
            stdio.push("stdin");
        }
        for name in &stdio {
            if *name != "stdin" {
                append(name).map_err(|e| format!("spool {name}: {e}"))?;
            }
            std::fs::hard_link(spool.path(name), dir.join(name)).map_err(|e| format!("link {name}: {e}"))?;
        }
        let mut places: Vec<(&Path, Mount)> = c.hidden.iter().map(|(p, _)| (p.as_path(), Mount::Hide)).collect();
        places.extend(c.readable.iter().map(|p| (p.as_path(), Mount::Read)));
        places.extend(c.writable.iter().map(|p| (p.as_path(), Mount::Write)));
        places.sort_by_key(|(p, m)| (p.components().count(), *m));
        // The slot again, last: it is in the data directory, hidden above.
        places.push((&dir, Mount::Write));
        if self.ended() {
            return Err("the container has ended".into());
        }
        let ns = self.ns.as_ref().ok_or("the container's namespace is not known")?;
        inject(ns, &places)?;
        let input = self.input.take().ok_or("the container's input is gone")?;
        send(input, plan(spec, agent, &c.cwd, &dir).as_bytes())
    }

    /// Removes the container and its slot, and waits for the runtime.
    pub fn discard(mut self) {
        self.remove();
    }

    fn remove(&mut self) {
        self.done = true;
        drop(self.input.take());
        crate::container::remove(&self.key.runtime, &self.slot.name, &self.key.runtime_env);
        let _ = self.child.kill();
        let _ = self.child.wait();
        remove_slot(&self.slot.dir);
    }

    /// Whether the container has ended (it was killed while it waited): its
    /// first process, or the runtime's.
    pub fn ended(&mut self) -> bool {
        let first = self.alive.as_ref().is_some_and(|fd| {
            let mut fds = [nix::poll::PollFd::new(fd.as_fd(), nix::poll::PollFlags::POLLIN)];
            nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO).is_ok_and(|n| n > 0)
        });
        first || matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// The container's name.
    pub fn name(&self) -> &str {
        &self.slot.name
    }

    /// The id of the image it runs.
    pub fn image(&self) -> &str {
        &self.image
    }
}

impl Drop for Warm {
    fn drop(&mut self) {
        if !self.done {
            self.remove();
        }
    }
}

/// A file's text, not through a symbolic link (the slot is the container's to write).
fn read_nofollow(path: &Path) -> String {
    use std::io::Read;
    let mut text = String::new();
    if let Ok(mut f) = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK).open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// Writes the plan to the container's input and closes it, within [`SEND_WITHIN`].
fn send(input: ChildStdin, bytes: &[u8]) -> Result<(), String> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(&input, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(|e| format!("the container's input: {e}"))?;
    let deadline = Instant::now() + SEND_WITHIN;
    let mut left = bytes;
    while !left.is_empty() {
        match nix::unistd::write(&input, left) {
            Ok(n) => left = &left[n..],
            Err(nix::errno::Errno::EAGAIN) => {
                let wait = deadline.saturating_duration_since(Instant::now());
                if wait.is_zero() {
                    return Err("the container did not read its plan".into());
                }
                let mut fds = [nix::poll::PollFd::new(input.as_fd(), nix::poll::PollFlags::POLLOUT)];
                let ms = u16::try_from(wait.as_millis()).unwrap_or(u16::MAX);
                let _ = nix::poll::poll(&mut fds, nix::poll::PollTimeout::from(ms));
            }
            Err(e) => return Err(format!("send the plan: {e}")),
        }
    }
    Ok(())
}

/// Removes a run's slot once its container is done (the links to its files).
pub fn forget(slot: &Slot) {
    remove_slot(&slot.dir);
}

/// The file beside a slot that says which supervisor owns it and its runtime
/// (outside the slot: the agent writes in the slot).
fn owner_of(dir: &Path) -> PathBuf {
    dir.with_extension("owner")
}

fn remove_slot(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    let _ = std::fs::remove_file(owner_of(dir));
}

/// The host pid of a container's first process, and its image's id.
fn inspect(key: &Key, name: &str) -> Result<(Pid, String), String> {
    let out = Command::new(&key.runtime)
        .args(["inspect", "--format", "{{.State.Pid}} {{.Image}}", name])
        .env_clear()
        .envs(key.runtime_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("inspect the container: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let (pid, image) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
    match pid.parse::<i32>() {
        Ok(pid) if pid > 0 => Ok((Pid::from_raw(pid), image.to_owned())),
        _ => Err(format!("inspect the container: {}", String::from_utf8_lossy(&out.stderr).trim())),
    }
}

/// Single quotes for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// The plan: the agent's variables exported (the last value of each name, as
/// the runtime would pass it), its directory, and the agent exec'd on the
/// linked spool files.
fn plan(spec: &Spec, agent: &crate::container::InContainer, cwd: &Path, dir: &Path) -> String {
    let at = |name: &str| quote(&dir.join(name).to_string_lossy());
    let mut out = String::new();
    for name in &agent.vars {
        let shell_name = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if let Some((_, value)) = spec.env.iter().rev().find(|(k, _)| k == name).filter(|_| shell_name) {
            out.push_str(&format!("export {name}={}\n", quote(value)));
        }
    }
    out.push_str(&format!("cd {} || exit 127\n", quote(&cwd.to_string_lossy())));
    let input = if spec.stdin { at("stdin") } else { "/dev/null".into() };
    out.push_str(&format!("exec {}", quote(&agent.program)));
    for a in &agent.args {
        out.push(' ');
        out.push_str(&quote(a));
    }
    out.push_str(&format!(" <{input} >>{} 2>>{}\n", at("stdout"), at("stderr")));
    out
}

/// The kernel's new mount API, which `nix` does not wrap.
mod sys {
    pub const OPEN_TREE_CLONE: u32 = 1;
    pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 4;
    pub const MOUNT_ATTR_RDONLY: u64 = 1;
    pub const AT_RECURSIVE: u32 = 0x8000;

    /// `struct mount_attr`.
    #[repr(C)]
    pub struct MountAttr {
        pub attr_set: u64,
        pub attr_clr: u64,
        pub propagation: u64,
        pub userns_fd: u64,
    }
}

/// A detached copy of the mount at `path` (and those under it), read-only
/// unless `writable`.
fn detached(path: &Path, writable: bool) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())?;
    let flags = sys::OPEN_TREE_CLONE | sys::AT_RECURSIVE | libc::O_CLOEXEC as u32;
    // SAFETY: open_tree reads a NUL-terminated path and returns a new descriptor.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just returned to this process, and is owned here.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    if !writable {
        let attr = sys::MountAttr { attr_set: sys::MOUNT_ATTR_RDONLY, attr_clr: 0, propagation: 0, userns_fd: 0 };
        let flags = libc::AT_EMPTY_PATH as u32 | sys::AT_RECURSIVE;
        // SAFETY: mount_setattr reads `attr` (of the size given) and an empty path.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd.as_raw_fd(),
                c"".as_ptr(),
                flags,
                &attr as *const sys::MountAttr,
                std::mem::size_of::<sys::MountAttr>(),
            )
        };
        if r < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(fd)
}

/// How a place is made in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mount {
    /// An empty tmpfs over a directory.
    Hide,
    /// The host's directory or file, read-only.
    Read,
    /// The host's directory or file, writable.
    Write,
}

/// Makes `places` (parents first) in the mount namespace `ns`, at the same
/// paths. A process that joins another mount namespace must have one thread:
/// a child of the supervisor (which has one) does it.
fn inject(ns: &File, places: &[(&Path, Mount)]) -> Result<(), String> {
    let mut made = Vec::new();
    for (path, mount) in places {
        let tree = match mount {
            Mount::Hide => None,
            m => Some(
                detached(path, *m == Mount::Write).map_err(|e| format!("copy the mount of {}: {e}", path.display()))?,
            ),
        };
        let target = CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        made.push((tree, target, path.to_path_buf(), *mount == Mount::Hide || path.is_dir()));
    }
    // SAFETY: the supervisor has a single thread; the child only makes system
    // calls and small allocations, then exits without unwinding.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            let code = match enter(ns, &made) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("baton supervise: binding into the warm container: {e}");
                    1
                }
            };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => match nix::sys::wait::waitpid(child, None) {
            Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => Ok(()),
            other => Err(format!("the run's places could not be bound into the container ({other:?})")),
        },
    }
}

/// In the child: joins the namespace (whose root becomes its own, so paths
/// resolve inside the container) and makes each place.
fn enter(ns: &File, made: &[(Option<OwnedFd>, CString, PathBuf, bool)]) -> io::Result<()> {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNS)?;
    for (tree, target, path, is_dir) in made {
        if *is_dir {
            std::fs::create_dir_all(path)?;
        } else {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            // Never blocks (a FIFO the image put there) nor follows a link.
            let flags = libc::O_NONBLOCK | libc::O_NOFOLLOW;
            OpenOptions::new().create(true).truncate(false).write(true).custom_flags(flags).open(path)?;
        }
        let Some(fd) = tree else {
            let flags = nix::mount::MsFlags::MS_NOSUID | nix::mount::MsFlags::MS_NODEV;
            nix::mount::mount(Some("tmpfs"), path.as_path(), Some("tmpfs"), flags, Some("mode=0755"))?;
            continue;
        };
        // SAFETY: move_mount reads two NUL-terminated paths.
        let r = unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                fd.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                sys::MOVE_MOUNT_F_EMPTY_PATH,
            )
        };
        if r < 0 {
            return Err(io::Error::other(format!("{}: {}", path.display(), io::Error::last_os_error())));
        }
    }
    Ok(())
}

/// A warm container's standby supervisor, ready (it said `warm`).
pub(crate) struct Ready {
    pub standby: crate::start::Standby,
    pub slot: Slot,
    /// The id of the image it runs.
    image: String,
}

/// What one key's pool should hold and has.
#[derive(Default)]
struct Pool {
    size: u32,
    ready: Vec<Ready>,
    starting: u32,
}

/// Every image's warm containers on this launcher.
pub(crate) struct Pools {
    pools: Mutex<HashMap<Key, Pool>>,
    /// Keys whose containers could not start (not tried again).
    broken: Mutex<HashSet<Key>>,
    /// Where slots live (`<data>/warm`).
    dir: PathBuf,
    /// Baton's binary.
    exe: PathBuf,
    counter: AtomicU64,
}

impl Pools {
    pub(crate) fn new(data_dir: &Path, exe: &Path) -> Pools {
        Pools {
            pools: Mutex::default(),
            broken: Mutex::default(),
            dir: data_dir.join("warm"),
            exe: exe.to_owned(),
            counter: AtomicU64::new(0),
        }
    }

    /// Sets `key`'s pool to `size`: the warm containers beyond it are dismissed
    /// (their supervisors remove them), and it is filled in the background.
    /// Nothing for a launcher that is not root (it could not bind a run's
    /// places into a container).
    pub(crate) fn keep(self: &Arc<Self>, key: &Key, size: u32) {
        if !nix::unistd::geteuid().is_root() || self.broken.lock().unwrap_or_else(|e| e.into_inner()).contains(key) {
            return;
        }
        let dismissed = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            if size == 0 && !pools.contains_key(key) {
                return;
            }
            if !pools.contains_key(key) {
                let me = Arc::clone(self);
                let key = key.clone();
                tokio::spawn(async move { me.watch(key).await });
            }
            let pool = pools.entry(key.clone()).or_default();
            pool.size = size;
            let extra = pool.ready.len().saturating_sub(size as usize);
            pool.ready.drain(..extra).collect::<Vec<_>>()
        };
        // Closing a standby's input dismisses it.
        drop(dismissed);
        self.fill(key);
    }

    /// Fills `key`'s pool again whenever a warm container of it ends while it
    /// waits (killed, or the runtime gone), and makes it again when its image's
    /// name comes to mean another image (rebuilt, pulled), for as long as the
    /// pool is kept.
    async fn watch(self: Arc<Self>, key: Key) {
        for tick in 1u64.. {
            tokio::time::sleep(WATCH_EVERY).await;
            let images: Vec<String> = match self.pools.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
                Some(pool) => pool.ready.iter().map(|r| r.image.clone()).collect(),
                None => return,
            };
            if tick.is_multiple_of(IMAGE_EVERY) && !images.is_empty() {
                let now = crate::container::image_id(&key.runtime, &key.image, &key.runtime_env).await.ok().flatten();
                let stale: Vec<Ready> = {
                    let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                    let Some(pool) = pools.get_mut(&key) else { return };
                    let (stale, keep) = pool.ready.drain(..).partition(|r| now.as_deref() != Some(r.image.as_str()));
                    pool.ready = keep;
                    stale
                };
                // Closing a standby's input dismisses it.
                drop(stale);
            }
            self.fill(&key);
        }
    }

    /// Whether `key`'s pool has a warm container ready (so its image exists).
    pub(crate) fn has_ready(&self, key: &Key) -> bool {
        self.pools.lock().unwrap_or_else(|e| e.into_inner()).get(key).is_some_and(|p| !p.ready.is_empty())
    }

    /// A ready warm container for `key`, taken out of its pool (which is
    /// filled again behind it).
    pub(crate) fn take(self: &Arc<Self>, key: &Key) -> Option<Ready> {
        let taken = {
            let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
            let ready = &mut pools.get_mut(key)?.ready;
            // One whose supervisor ended (its container died) is passed by.
            std::iter::from_fn(|| ready.pop()).find_map(|mut r| r.standby.waiting().then_some(r))
        };
        if taken.is_some() {
            let me = Arc::clone(self);
            let key = key.clone();
            tokio::spawn(async move {
                tokio::time::sleep(REFILL_AFTER).await;
                me.fill(&key);
            });
        }
        taken
    }

    /// Starts as many warm containers as `key`'s pool lacks.
    fn fill(self: &Arc<Self>, key: &Key) {
        loop {
            {
                let mut pools = self.pools.lock().unwrap_or_else(|e| e.into_inner());
                let Some(pool) = pools.get_mut(key) else { return };
                let (mut ready, mut gone) = (Vec::new(), Vec::new());
                for mut r in pool.ready.drain(..) {
                    if r.standby.waiting() { ready.push(r) } else { gone.push(r) }
                }
                pool.ready = ready;
                // Supervisors that died (killed) leave their container: removed.
                for r in gone {
                    let key = key.clone();
                    tokio::task::spawn_blocking(move || {
                        crate::container::remove(&key.runtime, &r.slot.name, &key.runtime_env);
                        remove_slot(&r.slot.dir);
                    });
                }
                if pool.ready.len() + pool.starting as usize >= pool.size as usize {
                    return;
                }
                pool.starting += 1;
            }
            let me = Arc::clone(self);
            let key = key.clone();
            tokio::spawn(async move {
                let made = me.start_one(&key).await;
                let mut pools = me.pools.lock().unwrap_or_else(|e| e.into_inner());
                let Some(pool) = pools.get_mut(&key) else { return };
                pool.starting = pool.starting.saturating_sub(1);
                match made {
                    Ok(ready) if pool.ready.len() < pool.size as usize => pool.ready.push(ready),
                    // The pool shrank meanwhile: dismissed.
                    Ok(_) => {}
                    Err(e) if e.image => {
                        let why = e.why;
                        tracing::warn!(image = %key.image, %why, "the image cannot hold a warm container; its runs get containers made for them");
                        me.broken.lock().unwrap_or_else(|e| e.into_inner()).insert(key.clone());
                        pools.remove(&key);
                    }
                    // Tried again at the next check.
                    Err(e) => tracing::warn!(image = %key.image, why = %e.why, "a warm container could not start"),
                }
            });
        }
    }

    /// Starts a standby supervisor with a warm container, and waits until it
    /// is up.
    async fn start_one(&self, key: &Key) -> Result<Ready, NotStarted> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        // Unique across launchers that had this pid (in a pid namespace).
        let mut salt = [0u8; 4];
        let _ = getrandom::fill(&mut salt);
        let salt: String = salt.iter().map(|b| format!("{b:02x}")).collect();
        let dir = self.dir.join(format!("{}-{n}-{salt}", std::process::id()));
        let _ = std::fs::create_dir_all(&self.dir);
        let mut child = tokio::process::Command::new(&self.exe)
            .args(["supervise", "--standby", "--container-warm"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| NotStarted::other(format!("start a standby supervisor: {e}")))?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(NotStarted::other("the standby supervisor has no pipes"));
        };
        let order = serde_json::json!({ "key": key, "dir": dir });
        let sent = stdin.write_all(format!("{order}\n").as_bytes()).await;
        sent.map_err(|e| NotStarted::other(format!("the standby supervisor: {e}")))?;
        let mut stdout = BufReader::new(stdout);
        let mut line = String::new();
        // A standby that does not answer is dismissed (its input closed).
        let read = tokio::time::timeout(START_WITHIN + Duration::from_secs(15), stdout.read_line(&mut line)).await;
        let Some(image) = line.trim().strip_prefix("warm ").filter(|_| read.is_ok()).map(str::to_owned) else {
            drop(stdin);
            if read.is_ok() {
                let _ = child.wait().await;
            }
            let line = line.trim();
            return Err(match line.strip_prefix("cold-image ") {
                Some(why) => NotStarted { image: true, why: why.to_owned() },
                None => {
                    NotStarted::other(line.strip_prefix("cold ").unwrap_or("the standby supervisor did not answer"))
                }
            });
        };
        let slot = Slot { name: name_of(&dir), dir };
        Ok(Ready { standby: crate::start::Standby::of(child, stdin, stdout), slot, image })
    }

    /// Removes warm containers and slots left by supervisors that are gone (a
    /// crash); in the background.
    pub(crate) fn clear_leftovers(data_dir: &Path, runtime_env: Vec<(String, String)>) {
        let left = leftovers(&data_dir.join("warm"));
        if left.is_empty() {
            return;
        }
        std::thread::spawn(move || {
            for (slot, runtime) in left {
                if let Some(runtime) = runtime {
                    crate::container::remove(&runtime, &name_of(&slot), &runtime_env);
                }
                remove_slot(&slot);
            }
        });
    }
}

/// The slots in `dir` whose supervisor is gone, each with its runtime (from
/// its owner file; none when it has none).
fn leftovers(dir: &Path) -> Vec<(PathBuf, Option<PathBuf>)> {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter_map(|slot| {
            let owner = std::fs::read_to_string(owner_of(&slot)).unwrap_or_default();
            let (pid, runtime) = owner.split_once('\n').unwrap_or((owner.as_str(), ""));
            let alive = !pid.trim().is_empty() && Path::new("/proc").join(pid.trim()).exists();
            let runtime = Some(PathBuf::from(runtime.trim())).filter(|r| r.is_absolute());
            (!alive).then_some((slot, runtime))
        })
        .collect()
}

/// What a warm standby supervisor is told first: its key and slot.
#[derive(Deserialize)]
pub struct Order {
    pub key: Key,
    pub dir: PathBuf,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_are_the_slots_whose_supervisor_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let slot = |name: &str, owner: Option<String>| {
            std::fs::create_dir(dir.path().join(name)).unwrap();
            if let Some(o) = owner {
                std::fs::write(dir.path().join(format!("{name}.owner")), o).unwrap();
            }
        };
        slot("1-0", Some(format!("{}\n/usr/bin/podman", std::process::id())));
        slot("1-1", Some("999999999\n/usr/bin/podman".into()));
        slot("1-2", None);
        slot("1-3", Some("999999999\nrelative/podman".into()));
        let mut left = leftovers(dir.path());
        left.sort();
        let at = |n: &str| dir.path().join(n);
        assert_eq!(
            left,
            vec![(at("1-1"), Some(PathBuf::from("/usr/bin/podman"))), (at("1-2"), None), (at("1-3"), None)]
        );
        remove_slot(&at("1-1"));
        assert!(!at("1-1").exists() && !at("1-1.owner").exists());
    }

    #[test]
    fn the_plan_quotes_everything_and_execs_the_agent_on_the_slot_files() {
        let spec = Spec {
            program: "/usr/bin/podman".into(),
            args: vec![],
            env: vec![("PATH".into(), "/host".into()), ("PATH".into(), "/agent".into()), ("Q".into(), "it's".into())],
            cwd: "/w".into(),
            stdin: true,
            timeout_s: None,
            grace_s: 5,
            stall_s: None,
            sandbox: None,
            secrets: vec![],
            network: None,
            container: None,
        };
        let agent = crate::container::InContainer {
            program: "sh".into(),
            args: vec!["-c".into(), "echo 'a b'".into()],
            vars: vec!["PATH".into(), "Q".into(), "BAD-NAME".into()],
        };
        let plan = plan(&spec, &agent, Path::new("/work tree"), Path::new("/s"));
        assert_eq!(
            plan,
            "export PATH='/agent'\nexport Q='it'\\''s'\ncd '/work tree' || exit 127\n\
             exec 'sh' '-c' 'echo '\\''a b'\\''' <'/s/stdin' >>'/s/stdout' 2>>'/s/stderr'\n"
        );
        // And sh reads it back as written.
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("set -- {}; printf '%s|' \"$@\"", "'echo '\\''a b'\\'''"))
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "echo 'a b'|");
    }
}
