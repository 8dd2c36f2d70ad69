//! The supervisor: a small process of its own (`baton supervise DIR`) that owns
//! one agent process, so the agent outlives a crash or upgrade of Baton.
//!
//! It starts the agent in its own process group with stdout and stderr appended
//! straight to the spool files (nothing to copy, nothing lost if Baton is down),
//! holds the spool's lock for as long as it lives (how a restarted launcher knows
//! it is there), and becomes a child subreaper so that descendants the agent
//! leaves behind come back to it. It waits on a signalfd and nothing else:
//!
//! - the agent exits: every remaining descendant is killed, `exit.json` written;
//! - SIGTERM/SIGINT/SIGHUP (a stop): SIGINT to the agent's group, SIGTERM after
//!   half the grace period, SIGKILL after all of it; a second stop kills at once;
//! - the timeout passes: the same sequence, recorded as timed out.
//!
//! It prints one line on stdout for the launcher (`started PID` or `failed
//! MESSAGE`) and then detaches its stdout. It has no async runtime and no threads.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::prctl;
use nix::sys::signal::{self, SigHandler, SigSet, Signal, kill, killpg};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpgrp, getpid};

use crate::spool::{ExitRecord, Outcome, Spec, Spool};

/// A supervisor that could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    /// The spool could not be read or written.
    #[error("error using the spool directory")]
    Spool(#[source] io::Error),
    /// Another supervisor holds the spool.
    #[error("another supervisor is already running this run")]
    AlreadySupervised,
    /// A system call failed.
    #[error("system call failed")]
    Sys(#[source] Errno),
}

/// The signals that ask for a stop.
const STOP_SIGNALS: [Signal; 4] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGQUIT];

/// What a standby supervisor made ahead of its run.
pub enum Ahead {
    /// Its sandbox (see [`crate::ahead`]).
    Sandbox(crate::ahead::Premade),
    /// A warm container (see [`crate::warm`]).
    Container(crate::warm::Warm),
}

/// A supervisor started ahead of time (`baton supervise --standby`): it does its
/// start-up work now and waits on stdin for the spool directory of its run, so a
/// new run does not pay for starting a process. It exits quietly if stdin closes
/// first (its launcher went away).
///
/// With `ahead` (bubblewrap, for a root launcher), it also makes its sandbox
/// now (see [`crate::ahead`]), for a run whose sandbox it can be.
pub fn standby(ahead: Option<&Path>) -> i32 {
    let _ = nix::unistd::setsid();
    let exe = std::env::current_exe();
    let premade = match (ahead, &exe) {
        (Some(bwrap), Ok(exe)) => crate::ahead::Premade::start(bwrap, exe).ok().map(Ahead::Sandbox),
        _ => None,
    };
    wait_for_run(premade)
}

/// A standby supervisor with a warm container (`baton supervise --standby
/// --container-warm`): its first line of input is the container's key and
/// slot ([`crate::warm::Order`]). It answers `warm` once the container is up
/// (or `cold WHY`, and ends), then waits for its run; if none comes, it
/// removes the container.
pub fn standby_warm() -> i32 {
    let _ = nix::unistd::setsid();
    let mut line = String::new();
    let order: crate::warm::Order = match io::stdin().read_line(&mut line).map(|_| serde_json::from_str(&line)) {
        Ok(Ok(order)) => order,
        _ => return 2,
    };
    match crate::warm::Warm::start(order.key, order.dir) {
        Ok(warm) => {
            let mut out = io::stdout();
            let _ = writeln!(out, "warm {}", warm.image());
            let _ = out.flush();
            wait_for_run(Some(Ahead::Container(warm)))
        }
        Err(e) => {
            let word = if e.image { "cold-image" } else { "cold" };
            announce(&format!("{word} {}", e.why.replace('\n', " ")));
            1
        }
    }
}

/// Waits on stdin for the run's spool directory, and supervises it. A warm
/// container that ends meanwhile ends its standby (its launcher then passes it by).
fn wait_for_run(mut ahead: Option<Ahead>) -> i32 {
    if let Some(Ahead::Container(warm)) = &mut ahead {
        let readable = |ms: u16| {
            let stdin = io::stdin();
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            poll(&mut fds, PollTimeout::from(ms)).is_ok_and(|n| n > 0)
        };
        loop {
            if readable(1000) {
                break;
            }
            if warm.ended() {
                // A run sent meanwhile gets a container made for it; after
                // this, the launcher's writes fail and it starts a supervisor.
                let came = readable(0);
                if !came && let Ok(null) = File::open("/dev/null") {
                    let _ = nix::unistd::dup2_stdin(null.as_fd());
                }
                if let Some(Ahead::Container(warm)) = ahead.take() {
                    warm.discard();
                }
                if !came {
                    return 0;
                }
                break;
            }
        }
    }
    let mut line = String::new();
    match io::stdin().read_line(&mut line) {
        Ok(0) | Err(_) => {
            if let Some(Ahead::Container(warm)) = ahead {
                warm.discard();
            }
            return 0;
        }
        Ok(_) => {}
    }
    let dir = Path::new(line.trim_end());
    if let Ok(null) = File::open("/dev/null") {
        let _ = nix::unistd::dup2_stdin(null.as_fd());
    }
    if let Ok(log) = OpenOptions::new().create(true).append(true).open(dir.join("supervisor.log")) {
        let _ = nix::unistd::dup2_stderr(log.as_fd());
    }
    finish(supervise(&Spool::at(dir), ahead))
}

/// Supervises the run in `dir`; the process exit code.
pub fn main(dir: &Path) -> i32 {
    finish(supervise(&Spool::at(dir), None))
}

/// The exit code of a supervision.
fn finish(done: Result<(), SupervisorError>) -> i32 {
    match done {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("baton supervise: {e}");
            1
        }
    }
}

fn supervise(spool: &Spool, ahead: Option<Ahead>) -> Result<(), SupervisorError> {
    // A session of its own: no controlling terminal, so no terminal signal (a
    // Ctrl-C or hang-up aimed at Baton) reaches the supervisor or its agent.
    let _ = nix::unistd::setsid();
    let spec = spool.read_spec().map_err(SupervisorError::Spool)?;
    let lock_file = File::create(spool.path("lock")).map_err(SupervisorError::Spool)?;
    let _lock =
        Flock::lock(lock_file, FlockArg::LockExclusiveNonblock).map_err(|_| SupervisorError::AlreadySupervised)?;
    std::fs::write(spool.path("supervisor.pid"), getpid().to_string()).map_err(SupervisorError::Spool)?;
    let signals = take_signals()?;
    let started = Instant::now();
    // The container the agent runs in: a warm one, when it took the run.
    let mut container = spec.container.clone();
    let ahead = match ahead {
        Some(Ahead::Sandbox(premade)) => match crate::ahead::plan_of(spool, &spec) {
            Some(plan) => match premade.run(&plan) {
                Ok(started) => Some(started),
                Err(why) => {
                    eprintln!("baton supervise: the sandbox made ahead could not take the run ({why}); starting one");
                    None
                }
            },
            None => None,
        },
        Some(Ahead::Container(warm)) => {
            let name = warm.name().to_owned();
            match warm.take(spool, &spec) {
                Ok(started) => {
                    if let Some(c) = container.as_mut() {
                        c.name = name;
                    }
                    Some(started)
                }
                Err(why) => {
                    eprintln!("baton supervise: the warm container {name} could not take the run ({why}); making one");
                    None
                }
            }
        }
        None => None,
    };
    let spawned = match ahead {
        Some(started) => Some(started),
        None => spawn(spool, &spec)?,
    };
    let Some((child_pid, agent)) = spawned else { return Ok(()) };
    std::fs::write(spool.path("agent.pid"), agent.to_string()).map_err(SupervisorError::Spool)?;
    announce(&format!("started {agent}"));

    let target = Target { group: agent, container: container.as_ref(), grace_s: spec.grace_s.max(1) };
    let limits = Limits {
        deadline: spec.timeout_s.map(|s| started + Duration::from_secs(s)),
        stall: spec.stall_s.map(|s| Stall::new(spool, Duration::from_secs(s.max(1)))),
    };
    let (status, stopped) = wait(&signals, child_pid, &target, limits)?;
    if let Some(c) = target.container {
        crate::container::remove(&c.runtime, &c.name, &c.runtime_env);
        if let Some(slot) = &c.warm {
            crate::warm::forget(slot);
        }
    }
    kill_descendants(agent, child_pid);
    let (exit_code, signal) = match status {
        WaitStatus::Exited(_, code) => (Some(code), None),
        WaitStatus::Signaled(_, sig, _) => (None, Some(sig as i32)),
        _ => (None, None),
    };
    let record = ExitRecord {
        outcome: stopped.unwrap_or(Outcome::Exited),
        exit_code,
        signal,
        error: None,
        duration_ms: started.elapsed().as_millis() as u64,
    };
    spool.write_exit(&record).map_err(SupervisorError::Spool)
}

/// Blocks the stop signals and SIGCHLD, so they arrive only on the signalfd it
/// answers with, ignores SIGPIPE, and becomes a child subreaper.
fn take_signals() -> Result<SignalFd, SupervisorError> {
    let mut mask = SigSet::empty();
    for s in STOP_SIGNALS {
        mask.add(s);
    }
    mask.add(Signal::SIGCHLD);
    mask.thread_block().map_err(SupervisorError::Sys)?;
    // SAFETY: setting a signal's disposition to "ignore" has no handler to race with.
    unsafe { signal::signal(Signal::SIGPIPE, SigHandler::SigIgn) }.map_err(SupervisorError::Sys)?;
    let signals =
        SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).map_err(SupervisorError::Sys)?;
    prctl::set_child_subreaper(true).map_err(SupervisorError::Sys)?;
    Ok(signals)
}

/// Starts the agent: its process (the sandbox's, when it has one) and the
/// agent's process group. A program that cannot start is recorded as such in
/// the spool, and answers `None`.
fn spawn(spool: &Spool, spec: &Spec) -> Result<Option<(Pid, Pid)>, SupervisorError> {
    // In a sandbox, bubblewrap tells where the agent's process group is on a pipe.
    // A container's runtime is the process to run; the bubblewrap command line
    // kept beside it is for git in the worktree.
    let sandbox = spec.sandbox.as_ref().filter(|_| spec.container.is_none());
    let info = match sandbox {
        Some(_) => Some(nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(SupervisorError::Sys)?),
        None => None,
    };
    let mut cmd = command(spool, spec, sandbox.map(Vec::as_slice), info.as_ref().map(|(_, w)| w.as_raw_fd()))?;
    let child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            let error = format!("could not start {}: {e}", spec.program);
            let record = ExitRecord {
                outcome: Outcome::SpawnFailed,
                exit_code: None,
                signal: None,
                error: Some(error.clone()),
                duration_ms: 0,
            };
            spool.write_exit(&record).map_err(SupervisorError::Spool)?;
            announce(&format!("failed {error}"));
            return Ok(None);
        }
    };
    let child_pid = Pid::from_raw(child.id() as i32);
    drop(child);
    let agent = match info {
        Some((read, write)) => {
            drop(write);
            sandbox_group(read).unwrap_or(child_pid)
        }
        None => child_pid,
    };
    Ok(Some((child_pid, agent)))
}

/// The agent's command: its program (behind the sandbox's command line, which
/// reports on `info_fd`), arguments, environment and directory, with stdout and
/// stderr appended to the spool, in a process group of its own.
fn command(
    spool: &Spool,
    spec: &Spec,
    sandbox: Option<&[String]>,
    info_fd: Option<std::os::fd::RawFd>,
) -> Result<Command, SupervisorError> {
    let append = |name: &str| OpenOptions::new().create(true).append(true).open(spool.path(name));
    let stdout = append("stdout").map_err(SupervisorError::Spool)?;
    let stderr = append("stderr").map_err(SupervisorError::Spool)?;
    let stdin = if spec.stdin {
        Stdio::from(File::open(spool.path("stdin")).map_err(SupervisorError::Spool)?)
    } else {
        Stdio::null()
    };
    let mut cmd = match (sandbox, info_fd) {
        (Some(prefix), Some(fd)) => {
            let mut cmd = Command::new(&prefix[0]);
            cmd.args(&prefix[1..]).arg("--info-fd").arg(fd.to_string());
            cmd.arg("--").arg(&spec.program);
            cmd
        }
        _ => Command::new(&spec.program),
    };
    cmd.args(&spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&spec.cwd)
        .stdin(stdin)
        .stdout(stdout)
        .stderr(stderr)
        .process_group(0);
    // SAFETY: only async-signal-safe calls (sigprocmask, signal) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            SigSet::empty().thread_set_mask().map_err(io::Error::from)?;
            signal::signal(Signal::SIGPIPE, SigHandler::SigDfl).map_err(io::Error::from)?;
            if let Some(fd) = info_fd {
                // The sandbox's info pipe stays open across exec (fcntl is async-signal-safe).
                nix::fcntl::fcntl(
                    std::os::fd::BorrowedFd::borrow_raw(fd),
                    nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::empty()),
                )
                .map_err(io::Error::from)?;
            }
            Ok(())
        });
    }
    Ok(cmd)
}

/// What ends a run that has not ended by itself.
struct Limits {
    /// When its time limit passes.
    deadline: Option<Instant>,
    /// Its output's watch, when silence stops it.
    stall: Option<Stall>,
}

/// Waits for the agent to exit, stopping it (interrupt, terminate after half
/// the grace period, kill after all of it) when a stop signal comes, its time
/// runs out or it stalls; a second stop signal kills at once. Its exit status,
/// and why it was stopped if it was.
fn wait(
    signals: &SignalFd,
    child_pid: Pid,
    target: &Target<'_>,
    mut limits: Limits,
) -> Result<(WaitStatus, Option<Outcome>), SupervisorError> {
    let grace = Duration::from_secs(target.grace_s);
    // A container's runtime kills it after the grace period itself; this is the
    // last resort if the runtime does not.
    let kill_after = if target.container.is_some() { grace + Duration::from_secs(5) } else { grace };
    let mut stopping: Option<(Outcome, Instant)> = None;
    let (mut termed, mut killed) = (false, false);
    loop {
        if let Some(status) = reap(child_pid) {
            return Ok((status, stopping.map(|(o, _)| o)));
        }
        let now = Instant::now();
        if stopping.is_none() && limits.deadline.is_some_and(|d| now >= d) {
            stopping = Some((Outcome::TimedOut, now));
            target.interrupt();
        }
        if stopping.is_none() && limits.stall.as_mut().is_some_and(|s| s.stalled(now)) {
            stopping = Some((Outcome::Stalled, now));
            target.interrupt();
        }
        if let Some((_, began)) = stopping {
            if !termed && now >= began + grace / 2 {
                target.terminate();
                termed = true;
            }
            if !killed && now >= began + kill_after {
                target.kill();
                killed = true;
            }
        }
        let next = match stopping {
            Some((_, began)) if !termed => Some(began + grace / 2),
            Some((_, began)) if !killed => Some(began + kill_after),
            Some(_) => None,
            None => [limits.deadline, limits.stall.as_ref().map(|s| s.next_look())].into_iter().flatten().min(),
        };
        let timeout = match next {
            Some(at) => PollTimeout::try_from(at.saturating_duration_since(Instant::now()) + Duration::from_millis(1))
                .unwrap_or(PollTimeout::MAX),
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(signals.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(SupervisorError::Sys(e)),
        }
        while let Ok(Some(info)) = signals.read_signal() {
            let sig = Signal::try_from(info.ssi_signo as i32).ok();
            if sig.is_some_and(|s| STOP_SIGNALS.contains(&s)) {
                if stopping.is_none() {
                    stopping = Some((Outcome::Stopped, Instant::now()));
                    target.interrupt();
                } else {
                    target.kill();
                    killed = true;
                }
            }
        }
    }
}

/// Watches the size of the agent's output files: no growth for `limit` is a
/// stall (an agent hung on a network call, or waiting for input it will never get).
struct Stall {
    files: [std::path::PathBuf; 2],
    size: u64,
    since: Instant,
    limit: Duration,
}

impl Stall {
    /// How often the sizes are looked at.
    const LOOK: Duration = Duration::from_secs(1);

    fn new(spool: &Spool, limit: Duration) -> Stall {
        let files = [spool.path("stdout"), spool.path("stderr")];
        Stall { files, size: 0, since: Instant::now(), limit }
    }

    /// Whether the output has not grown for `limit` (it looks now).
    fn stalled(&mut self, now: Instant) -> bool {
        let size = self.files.iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum();
        if size != self.size {
            self.size = size;
            self.since = now;
        }
        now.duration_since(self.since) >= self.limit
    }

    /// When to look again.
    fn next_look(&self) -> Instant {
        (Instant::now() + Self::LOOK).min(self.since + self.limit)
    }
}

/// What a stop reaches: the agent's process group, or its container (through
/// its runtime, which stops the container with the grace period).
struct Target<'a> {
    /// The agent's process group.
    group: Pid,
    /// Its container, when it runs in one.
    container: Option<&'a crate::container::Container>,
    /// Seconds between the interrupt and the kill.
    grace_s: u64,
}

impl Target<'_> {
    /// The first word: SIGINT, or the container's stop.
    fn interrupt(&self) {
        match self.container {
            Some(c) => {
                // Reaped with the rest of the supervisor's children.
                let _ = crate::container::stop(&c.runtime, &c.name, self.grace_s, &c.runtime_env);
            }
            None => {
                let _ = killpg(self.group, Signal::SIGINT);
            }
        }
    }

    /// Halfway through the grace period: SIGTERM (a container's stop does its own).
    fn terminate(&self) {
        if self.container.is_none() {
            let _ = killpg(self.group, Signal::SIGTERM);
        }
    }

    /// The end: SIGKILL, and the container removed.
    fn kill(&self) {
        if let Some(c) = self.container {
            crate::container::remove(&c.runtime, &c.name, &c.runtime_env);
        }
        let _ = killpg(self.group, Signal::SIGKILL);
    }
}

/// Tells the launcher how the start went, then lets go of stdout so the launcher
/// going away cannot hurt the supervisor.
fn announce(line: &str) {
    let mut out = io::stdout();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    if let Ok(null) = File::options().write(true).open("/dev/null") {
        let _ = nix::unistd::dup2_stdout(null.as_fd());
    }
}

/// The host pid of the sandbox's first process, from bubblewrap's `--info-fd`
/// (`{"child-pid": N, ...}`): the leader of the process group the agent runs in.
pub(crate) fn sandbox_group(read: std::os::fd::OwnedFd) -> Option<Pid> {
    use std::io::Read;
    let mut file = File::from(read);
    let (mut text, mut chunk) = (Vec::new(), [0u8; 512]);
    // bubblewrap writes the object at once; reading stops when it is whole.
    let info: serde_json::Value = loop {
        let n = file.read(&mut chunk).ok()?;
        if n == 0 || text.len() > 4096 {
            return None;
        }
        text.extend_from_slice(&chunk[..n]);
        if let Ok(v) = serde_json::from_slice(&text) {
            break v;
        }
    };
    let pid = info.get("child-pid")?.as_i64()?;
    Some(Pid::from_raw(i32::try_from(pid).ok()?))
}

/// Reaps every child that has exited; the agent's status, if it was one of them.
fn reap(agent: Pid) -> Option<WaitStatus> {
    let mut agent_status = None;
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return agent_status,
            Ok(status) => {
                if status.pid() == Some(agent) && matches!(status, WaitStatus::Exited(..) | WaitStatus::Signaled(..)) {
                    agent_status = Some(status);
                }
            }
        }
    }
}

/// Kills everything the agent left behind: its process group (in a sandbox, the
/// sandbox's first process: everything inside goes with it), the process the
/// supervisor started, and every process that was reparented to this supervisor
/// (with its own process group), until nothing is left.
fn kill_descendants(agent: Pid, child: Pid) {
    let me = getpid();
    let own_group = getpgrp();
    for round in 0..200 {
        let group_alive = killpg(agent, Signal::SIGKILL).is_ok() | killpg(child, Signal::SIGKILL).is_ok();
        let orphans = children_of(me);
        for pid in &orphans {
            if let Ok(group) = nix::unistd::getpgid(Some(*pid))
                && group != own_group
            {
                let _ = killpg(group, Signal::SIGKILL);
            }
            let _ = kill(*pid, Signal::SIGKILL);
        }
        reap(child);
        if !group_alive && orphans.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(if round < 10 { 2 } else { 20 }));
    }
}

/// The processes whose parent is `parent` (from /proc).
pub(crate) fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()))
        .filter(|pid| parent_of(*pid) == Some(parent.as_raw()))
        .map(Pid::from_raw)
        .collect()
}

/// The parent of a process, from `/proc/PID/stat`.
pub(crate) fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(1)?.parse().ok()
}
