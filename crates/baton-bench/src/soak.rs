//! `baton-bench --soak HOURS`: tasks through one `baton up` for hours, its
//! memory and open files printed every 1,000 tasks, with the growth since the
//! first samples. It stops early (exit 1) if either passes its bound: the first
//! samples' maximum plus a quarter again (at least 24 MiB) of memory, or 32
//! descriptors. The integration test `soak.rs` is the short version.

use std::time::{Duration, Instant};

use baton_core::model::Task;
use serde_json::json;

use crate::harness::Coordinator;
use crate::harness::rss_kib;
use crate::measures::{Measure, agent, create, measure};

/// Open descriptors of a process.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// Waits until no task is under way.
async fn drained(c: &Coordinator) {
    loop {
        let busy = "/api/tasks?status=pending,queued,running,checking&limit=1";
        let tasks: Vec<Task> = c.client.get(busy).await.unwrap_or_default();
        if tasks.is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn soak(hours: f64) -> Vec<Measure> {
    let c = Coordinator::start(8, "worktrees = false\nfix_attempts = 0\n");
    agent(&c, "quick", json!(["true"])).await;
    let until = Instant::now() + Duration::from_secs_f64(hours * 3600.0);
    let (mut done, mut samples) = (0usize, Vec::<(u64, usize)>::new());
    let mut bound: Option<(u64, usize)> = None;
    while Instant::now() < until {
        for _ in 0..1000 {
            create(&c, "quick", json!({})).await;
        }
        drained(&c).await;
        done += 1000;
        let s = (rss_kib(c.pid()), fds(c.pid()));
        samples.push(s);
        if samples.len() == 4 {
            let rss = samples[1..].iter().map(|s| s.0).max().unwrap_or(0);
            let fd = samples[1..].iter().map(|s| s.1).max().unwrap_or(0);
            bound = Some((rss + (rss / 4).max(24 * 1024), fd + 32));
        }
        println!("soak: {done} tasks, RSS {} KiB, {} open files", s.0, s.1);
        if let Some((rss, fd)) = bound
            && (s.0 > rss || s.1 > fd)
        {
            eprintln!("baton-bench: the coordinator grew past its bound ({rss} KiB, {fd} files) after {done} tasks");
            std::process::exit(1);
        }
    }
    let first = samples.first().copied().unwrap_or_default();
    let last = samples.last().copied().unwrap_or_default();
    vec![
        measure("soak tasks", done as f64, "-", "tasks"),
        measure("soak RSS growth", (last.0 as f64 - first.0 as f64) / 1024.0, "bounded", "MiB"),
        measure("soak open files growth", last.1 as f64 - first.1 as f64, "bounded", "files"),
    ]
}
