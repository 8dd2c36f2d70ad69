//! Watching and signalling supervisors from the launcher.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use nix::fcntl::{Flock, FlockArg};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

use crate::spool::Spool;

/// Whether a supervisor holds the spool's lock (is alive).
pub fn supervised(spool: &Spool) -> bool {
    let Ok(file) = File::open(spool.path("lock")) else {
        return false;
    };
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(_unlocked_on_drop) => false,
        Err(_) => true,
    }
}

/// Asks the supervisor to stop its agent (a second call kills it at once).
pub fn signal_stop(spool: &Spool) -> bool {
    match spool.read_pid("supervisor.pid") {
        Some(pid) if supervised(spool) => kill(Pid::from_raw(pid), Signal::SIGTERM).is_ok(),
        _ => false,
    }
}

/// Kills an agent's process group whose supervisor is gone (so nothing is left
/// untracked).
pub fn kill_orphaned_agent(spool: &Spool) {
    if let Some(pid) = spool.read_pid("agent.pid") {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// A process file descriptor: readable once the process has exited. Works for
/// processes that are not this process's children (re-attached supervisors).
pub struct PidFd(AsyncFd<OwnedFdWrapper>);

/// `OwnedFd` with `AsRawFd`, for `AsyncFd`.
pub struct OwnedFdWrapper(OwnedFd);

impl AsRawFd for OwnedFdWrapper {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl PidFd {
    /// Opens a pidfd for `pid`.
    pub fn open(pid: i32) -> io::Result<Self> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { nix::libc::syscall(nix::libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the descriptor was just created and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
        // SAFETY: the wrapper owns the descriptor for as long as the AsyncFd lives.
        let fd = unsafe { AsyncFd::register_with_interest(OwnedFdWrapper(owned), Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        Ok(Self(fd))
    }

    /// Waits for the process to exit.
    pub async fn exited(&self) {
        let _ = self.0.readable().await;
    }
}
