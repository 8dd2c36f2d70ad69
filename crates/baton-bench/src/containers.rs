//! Containers (`--containers N`): create → agent spawned for `sandbox =
//! "container"`, N runs with a container made for each and N with warm ones
//! (`container_pool = 2`), one after another.
//!
//! The image is made here (`podman import`) from the host's `sh` and this
//! benchmark's own binary (the stamp agent, at the same path), with their
//! libraries. It needs Podman, and root for the warm pool. A host whose Podman
//! needs settings (this one: runc, and limits it may set) names them in
//! `CONTAINERS_CONF`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::Coordinator;
use crate::measures::{Measure, measure, median_p99, spawn_latencies};

/// An image of `sh` and `baton-bench`, removed on drop.
struct Image {
    tag: String,
}

impl Image {
    fn build() -> Image {
        let root = tempfile::tempdir().unwrap();
        let bench = std::env::current_exe().unwrap();
        let mut files: Vec<(PathBuf, PathBuf)> =
            vec![("/bin/dash".into(), "/bin/sh".into()), (bench.clone(), bench.clone())];
        for bin in [Path::new("/bin/dash"), bench.as_path()] {
            let ldd = Command::new("ldd").arg(bin).output().expect("ldd");
            for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
                files.push((lib.into(), lib.into()));
            }
        }
        for (from, to) in files {
            let to = root.path().join(to.strip_prefix("/").unwrap());
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
        }
        std::fs::create_dir_all(root.path().join("tmp")).unwrap();
        let tag = format!("localhost/baton-bench-{}:latest", std::process::id());
        let status = Command::new("sh")
            .arg("-c")
            .arg(format!("tar -C {} -c . | podman import -q - {tag} >/dev/null", root.path().display()))
            .status()
            .unwrap();
        assert!(status.success(), "podman import (is Podman installed, and CONTAINERS_CONF set where it needs to be?)");
        Image { tag }
    }
}

impl Drop for Image {
    fn drop(&mut self) {
        let _ = Command::new("podman").args(["rmi", "-f", &self.tag]).output();
    }
}

/// How many warm containers the coordinator of `pid` has.
fn warm(pid: u32) -> usize {
    let out = Command::new("podman")
        .args(["ps", "-q", "--filter", &format!("name=baton-warm-{pid}-")])
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

/// Waits until the coordinator of `pid` has `n` warm containers, and a moment
/// more for its launcher to have them ready (it asks the runtime for their
/// first process after they are up).
async fn wait_warm(pid: u32, n: usize) {
    let start = Instant::now();
    while warm(pid) < n && start.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
}

/// The figures of one way of running: create → agent running (median, p99)
/// and the agent's end → the task succeeded.
fn figures(label: &str, target: &str, spawned: Vec<f64>, ended: Vec<f64>) -> Vec<Measure> {
    let (median, p99) = median_p99(spawned);
    let (ended, _) = median_p99(ended);
    vec![
        measure(&format!("{label}: create → agent running, median"), median, target, "ms"),
        measure(&format!("{label}: create → agent running, p99"), p99, "-", "ms"),
        measure(&format!("{label}: agent's end → task succeeded, median"), ended, "-", "ms"),
    ]
}

pub async fn containers(n: usize) -> Vec<Measure> {
    let image = Image::build();
    let config = |pool: u32| {
        format!("worktrees = false\nsandbox = \"container\"\nimage = \"{}\"\ncontainer_pool = {pool}\n", image.tag)
    };
    let cold = Coordinator::start(4, &config(0));
    spawn_latencies(&cold, &cold.stamps, 1).await;
    let (spawned, ended) = spawn_latencies(&cold, &cold.stamps, n).await;
    let mut out = figures("a container made for each run", "-", spawned, ended);
    drop(cold);

    // Warm: each run finds the pool full (runs that last longer than a
    // container's start, as agents' do); then back to back, faster than the
    // pool refills, where a run that finds it empty gets a container made.
    let c = Coordinator::start(4, &config(2));
    spawn_latencies(&c, &c.stamps, 1).await;
    let (mut spawned, mut ended) = (Vec::new(), Vec::new());
    for _ in 0..n {
        wait_warm(c.pid(), 2).await;
        let (s, e) = spawn_latencies(&c, &c.stamps, 1).await;
        spawned.extend(s);
        ended.extend(e);
    }
    out.extend(figures("warm (container_pool = 2)", "< 50", spawned, ended));
    wait_warm(c.pid(), 2).await;
    let (spawned, ended) = spawn_latencies(&c, &c.stamps, n).await;
    out.extend(figures("warm, back to back", "-", spawned, ended));
    out
}
