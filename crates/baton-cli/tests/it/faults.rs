//! Faults of the kind hosts have: an agent that hangs without a word.

use std::time::{Duration, Instant};

use baton_core::status::TaskStatus;
use serde_json::json;

use crate::harness::{Baton, assert_no_processes};

#[tokio::test]
async fn an_agent_silent_past_stall_s_is_stopped_as_stalled_with_its_work_committed() {
    let b = Baton::start();
    b.agent("hangs", "echo starting; echo draft > notes.md; sleep 300").await;
    b.agent("chatty", "for i in 1 2 3 4 5 6; do echo tick $i; sleep 0.5; done").await;
    let started = Instant::now();
    let hung = b.task(json!({ "prompt": "x", "agent": "hangs", "stall_s": 2 })).await;
    let fine = b.task(json!({ "prompt": "x", "agent": "chatty", "stall_s": 2 })).await;
    let t = b.wait_for(&hung, "the stall", |t| t.task.status.is_finished()).await;
    assert!(started.elapsed() < Duration::from_secs(20), "stopped long before its sleep ended");
    assert_eq!(t.task.status, TaskStatus::Failed);
    let reason = t.task.reason.clone().unwrap();
    assert!(reason.starts_with("stalled: no output for 2s"), "{reason}");
    assert!(t.task.git.wip_committed, "its work is committed");
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:notes.md")), "draft");
    assert!(b.sh(&format!("git log -1 --format=%B {branch}")).contains("(stalled)"));
    assert_no_processes(&hung).await;
    let t = b.wait_for(&fine, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "output every 0.5 s for 3 s is not a stall: {:?}", t.task.reason);
    let (status, body) =
        b.post("/api/tasks", json!({ "project": "repo", "prompt": "x", "agent": "chatty", "stall_s": 0 })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")));
}

#[tokio::test]
async fn without_git_on_path_baton_up_says_so_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::harness::git_repo(dir.path());
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink("/bin/sh", bin.join("sh")).unwrap();
    let out = std::process::Command::new(crate::harness::BATON)
        .args(["up", "--listen", "127.0.0.1:0"])
        .current_dir(&repo)
        .env("PATH", &bin)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(10), "{stderr}");
    assert!(stderr.contains("git is not on PATH"), "{stderr}");
    assert!(!repo.join(".baton").exists(), "nothing was created");
}

/// Another process holds the SQLite file locked past the busy timeout (10 s):
/// a write is refused with `503 store_unavailable` saying why, nothing changes,
/// and writes work again once the lock is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_locked_by_another_process_refuses_writes_clearly_then_recovers() {
    let b = Baton::start();
    if b.database.is_some() {
        return; // SQLite's file lock; PostgreSQL has its own tests of an unreachable store.
    }
    let db = b.data.join("baton.db");
    let mut holder = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys,time; c=sqlite3.connect(sys.argv[1], isolation_level=None); c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(13); c.execute('COMMIT')"])
        .arg(&db)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(holder.stdout.take().unwrap()), &mut line).unwrap();
    assert_eq!(line.trim(), "locked");
    let (status, body) =
        b.post("/api/agents", json!({ "name": "during", "executor": "command", "command": ["true"] })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("store_unavailable")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("locked"), "{body}");
    holder.wait().unwrap();
    let (status, _) =
        b.post("/api/agents", json!({ "name": "after", "executor": "command", "command": ["true"] })).await;
    assert_eq!(status, 201, "writes work again");
    let (status, _) =
        b.post("/api/agents", json!({ "name": "during", "executor": "command", "command": ["true"] })).await;
    assert_eq!(status, 201, "the refused write changed nothing");
}

/// Unmounts a tmpfs lazily when dropped (before the test's temporary directory goes).
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// The data directory's disk fills up (a 24 MiB tmpfs, filled by another file):
/// writes are refused with `507 insufficient_storage` saying so, reads still
/// answer, nothing is half-written (SQLite's integrity check), and once the space
/// is back writes work and a task runs to its end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_with_507_and_work_resumes_when_space_returns() {
    if baton_testkit::pg::wanted() {
        return; // The data directory's disk; PostgreSQL's own disk is its server's (disk_full maps to 507 too).
    }
    let mut mount = None;
    let b = Baton::start_custom(&[], &[], &[], |repo| {
        let data = repo.join(".baton");
        std::fs::create_dir_all(&data).unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=24m", "tmpfs"])
            .arg(&data)
            .status()
            .unwrap();
        assert!(ok.success(), "mount a tmpfs (the tests run as root)");
        mount = Some(Tmpfs(data));
    });
    let _unmount = mount.unwrap();
    b.agent("writer", "echo before > note.txt; echo done").await;
    let first = b.task(json!({ "prompt": "before", "agent": "writer" })).await;
    b.wait_status(&first, TaskStatus::Succeeded).await;

    let filler = b.data.join("filler");
    let _ = std::process::Command::new("dd")
        .args(["if=/dev/zero", "bs=64k"])
        .arg(format!("of={}", filler.display()))
        .stderr(std::process::Stdio::null())
        .status();
    // SQLite may still fit a small write in pages it has; a few writes find the end.
    let mut refused = None;
    for i in 0..200 {
        let (status, body) =
            b.post("/api/agents", json!({ "name": format!("full-{i}"), "executor": "command", "command": ["true"], "description": "x".repeat(4096) })).await;
        if status != 201 {
            refused = Some((i, status, body));
            break;
        }
    }
    let (i, status, body) = refused.expect("a full disk refused no write");
    assert_eq!((status, body["error"]["code"].as_str()), (507, Some("insufficient_storage")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("full"), "{body}");
    let agents: serde_json::Value = b.client.get("/api/agents").await.expect("reads still answer");
    assert!(
        !agents.as_array().unwrap().iter().any(|a| a["name"] == format!("full-{i}")),
        "the refused write left nothing"
    );

    std::fs::remove_file(&filler).unwrap();
    let (status, body) =
        b.post("/api/agents", json!({ "name": "after", "executor": "command", "command": ["true"] })).await;
    assert_eq!(status, 201, "writes work once there is space: {body}");
    let second = b.task(json!({ "prompt": "after", "agent": "writer" })).await;
    b.wait_status(&second, TaskStatus::Succeeded).await;
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(b.data.join("baton.db"))
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok");
}
