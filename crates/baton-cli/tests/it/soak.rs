//! Soak: thousands of tasks through one `baton up`, its memory and open files
//! sampled as they go. Neither may grow beyond a bound set from the first
//! samples, and no supervisor or worktree is left at the end.
//!
//! `SOAK_TASKS=N` scales it (default 2,000); `baton-bench --soak` runs for hours.

use std::time::{Duration, Instant};

use baton_core::model::Task;
use serde_json::json;

use crate::harness::Baton;

/// The coordinator's resident memory (KiB) and open descriptors.
fn sample(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0);
    (rss, fds)
}

/// Processes that belong to any task (agents and supervisors carry its id).
fn task_processes() -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(|s| s.parse::<u32>().is_ok()))
        .filter(|e| {
            std::fs::read(e.path().join("environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv.starts_with(b"BATON_TASK_ID=")))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_tasks_keep_memory_and_descriptors_flat() {
    let total: usize = std::env::var("SOAK_TASKS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let b = Baton::start_in(&["--slots", "8"], |repo| {
        // The coordinator is what is measured: agents run in the checkout, without worktrees.
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "worktrees = false\nfix_attempts = 0\n").unwrap();
    });
    b.agent("quick", "echo done").await;
    let pid = b.pid().unwrap();
    let started = Instant::now();
    let mut samples: Vec<(u64, usize)> = Vec::new();
    let mut made = 0;
    while made < total {
        for _ in 0..100.min(total - made) {
            b.task(json!({ "prompt": "x", "agent": "quick" })).await;
            made += 1;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            // Only the tasks still under way (reading them all would itself be
            // the growing load).
            let busy = "/api/tasks?status=pending,queued,running,checking,failed,cancelled,blocked&limit=1000";
            let tasks: Vec<Task> = b.client.get(busy).await.unwrap();
            if tasks.is_empty() {
                break;
            }
            assert!(tasks.iter().all(|t| !t.status.is_settled()), "a task did not succeed: {:?}", tasks[0]);
            assert!(Instant::now() < deadline, "100 tasks did not settle within 2 minutes");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        samples.push(sample(pid));
    }
    eprintln!("soak: {total} tasks in {:.0} s; (RSS KiB, fds) every 100: {samples:?}", started.elapsed().as_secs_f64());
    // The bound: what the first samples (after the first, a warm-up) reached, plus
    // a quarter again (at least 24 MiB: SQLite's page caches fill as the database
    // grows) of memory, and 16 descriptors. Measured: flat at 58 MiB from 700 to
    // 5,000 tasks.
    let early = &samples[1.min(samples.len() - 1)..4.min(samples.len())];
    let rss0 = early.iter().map(|s| s.0).max().unwrap();
    let fds0 = early.iter().map(|s| s.1).max().unwrap();
    for (i, (rss, fds)) in samples.iter().enumerate() {
        assert!(
            *rss <= rss0 + (rss0 / 4).max(24 * 1024),
            "memory grew to {rss} KiB after {} tasks (bound from {rss0})",
            (i + 1) * 100
        );
        assert!(*fds <= fds0 + 16, "open files grew to {fds} after {} tasks (bound from {fds0})", (i + 1) * 100);
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while task_processes() > 0 {
        assert!(Instant::now() < deadline, "{} processes of tasks are left", task_processes());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let worktrees = b.data.join("worktrees");
    let left: Vec<_> = std::fs::read_dir(&worktrees)
        .into_iter()
        .flatten()
        .flatten()
        .flat_map(|project| std::fs::read_dir(project.path()).into_iter().flatten().flatten())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.') && e.path().join(".git").exists())
        .map(|e| e.path())
        .collect();
    assert!(left.is_empty(), "worktrees left: {left:?}");
}
