//! One inotify instance for the whole launcher: each run's spool directory is
//! watched, and a change wakes that run's actor. Nothing polls files on a timer.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::path::Path;
use std::sync::{Arc, Mutex};

use nix::sys::inotify::{AddWatchFlags, InitFlags, Inotify, WatchDescriptor};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::Notify;

/// `Inotify` with `AsRawFd`, for `AsyncFd`.
struct Fd(Inotify);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// Watches spool directories.
#[derive(Clone)]
pub struct Watcher {
    /// The inotify instance.
    fd: Arc<AsyncFd<Fd>>,
    /// Who to wake for each watch.
    targets: Arc<Mutex<HashMap<WatchDescriptor, Arc<Notify>>>>,
}

/// A watch on one directory; removed when dropped.
pub struct Watch {
    /// Woken when something in the directory changes.
    pub changed: Arc<Notify>,
    descriptor: WatchDescriptor,
    watcher: Watcher,
}

impl Drop for Watch {
    fn drop(&mut self) {
        if let Ok(mut t) = self.watcher.targets.lock() {
            t.remove(&self.descriptor);
        }
        let _ = self.watcher.fd.get_ref().0.rm_watch(self.descriptor);
    }
}

impl Watcher {
    /// Starts the watcher (its reading task runs until the runtime ends).
    pub fn start() -> io::Result<Self> {
        let inotify = Inotify::init(InitFlags::IN_NONBLOCK | InitFlags::IN_CLOEXEC)?;
        // SAFETY: `Fd` owns the inotify descriptor for as long as the AsyncFd lives.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(inotify), Interest::READABLE) }
            .map_err(|e| io::Error::other(e.to_string()))?;
        let watcher = Self { fd: Arc::new(fd), targets: Arc::default() };
        let reader = watcher.clone();
        tokio::spawn(async move { reader.read_loop().await });
        Ok(watcher)
    }

    /// Watches `dir` for files being written, created or renamed into it.
    pub fn watch(&self, dir: &Path) -> io::Result<Watch> {
        let flags = AddWatchFlags::IN_MODIFY
            | AddWatchFlags::IN_CLOSE_WRITE
            | AddWatchFlags::IN_MOVED_TO
            | AddWatchFlags::IN_CREATE;
        let descriptor = self.fd.get_ref().0.add_watch(dir, flags)?;
        let changed = Arc::new(Notify::new());
        if let Ok(mut t) = self.targets.lock() {
            t.insert(descriptor, Arc::clone(&changed));
        }
        Ok(Watch { changed, descriptor, watcher: self.clone() })
    }

    async fn read_loop(self) {
        loop {
            let Ok(mut guard) = self.fd.readable().await else {
                return;
            };
            match guard.try_io(|fd| fd.get_ref().0.read_events().map_err(io::Error::from)) {
                Ok(Ok(events)) => {
                    let Ok(targets) = self.targets.lock() else {
                        return;
                    };
                    for event in events {
                        if event.mask.contains(nix::sys::inotify::AddWatchFlags::IN_Q_OVERFLOW) {
                            targets.values().for_each(|n| n.notify_one());
                        } else if let Some(n) = targets.get(&event.wd) {
                            n.notify_one();
                        }
                    }
                }
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "inotify read failed");
                    return;
                }
                Err(_would_block) => {}
            }
        }
    }
}
