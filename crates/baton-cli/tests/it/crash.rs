//! Crash safety: `kill -9` of `baton up` loses nothing it acknowledged, and the
//! agents it was running are re-attached (or, if they died too, handled).

use std::time::Duration;

use baton_core::event::EventKind;
use baton_core::status::{RunStatus, TaskStatus};
use serde_json::json;

use crate::harness::{Baton, assert_no_processes, processes_of_task, wait_lines};

fn ticks(events: &[baton_core::event::Event]) -> Vec<u32> {
    events
        .iter()
        .filter(|e| e.kind == EventKind::Output)
        .filter_map(|e| e.data["line"].as_str()?.strip_prefix("tick ")?.parse().ok())
        .collect()
}

#[tokio::test]
async fn sigkill_of_the_coordinator_loses_nothing_and_the_run_is_reattached_and_stoppable() {
    let mut b = Baton::start();
    b.agent("ticker", "i=0; while true; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done").await;
    let id = b.task(json!({ "prompt": "x", "agent": "ticker" })).await;
    b.wait_for(&id, "ten ticks", |t| t.task.status == TaskStatus::Running).await;
    let start = std::time::Instant::now();
    let before = loop {
        let seen = ticks(&b.events(&id).await);
        if seen.len() >= 10 {
            break seen;
        }
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let agent = b.get(&id).await.runs[0].pid.expect("the run records its agent's pid");
    b.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!processes_of_task(&id).is_empty(), "the agent outlives the coordinator");

    b.restart();
    let t = b.get(&id).await;
    assert_eq!(t.task.status, TaskStatus::Running, "the run is still tracked");
    let after = ticks(&b.events(&id).await);
    assert_eq!(&after[..before.len()], &before[..], "everything acknowledged is still there");

    // The re-attached run keeps streaming from where it was acknowledged.
    let start = std::time::Instant::now();
    loop {
        let seen = ticks(&b.events(&id).await);
        if seen.len() > before.len() + 10 {
            let expected: Vec<u32> = (1..=seen.len() as u32).collect();
            assert_eq!(seen, expected, "no line lost or repeated across the restart");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no new events after re-attaching");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(processes_of_task(&id).contains(&agent), "the same agent process, not a new one");
    assert_eq!(b.get(&id).await.runs.len(), 1, "re-attached, not restarted");

    let out = b.cli(&["stop", &id, "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.get(&id).await.task.status, TaskStatus::Cancelled);
    assert_no_processes(&id).await;
}

#[tokio::test]
async fn a_run_that_finished_while_the_coordinator_was_down_is_reported_after_restart() {
    let mut b = Baton::start();
    b.agent("quick-after-kill", "sleep 0.5; echo done-while-away").await;
    let id = b.task(json!({ "prompt": "x", "agent": "quick-after-kill" })).await;
    b.wait_status(&id, TaskStatus::Running).await;
    b.kill9();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.restart();
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.runs[0].status, RunStatus::Succeeded);
    let lines: Vec<_> = b.events(&id).await.into_iter().filter(|e| e.kind == EventKind::Output).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].data["line"], "done-while-away");
}

#[tokio::test]
async fn a_run_whose_agent_died_with_the_host_is_marked_lost_and_started_again() {
    let mut b = Baton::start();
    let count = b.shared("starts");
    b.agent("phoenix", &format!("echo x >> {}; sleep 600", count.display())).await;
    let id = b.task(json!({ "prompt": "x", "agent": "phoenix" })).await;
    b.wait_status(&id, TaskStatus::Running).await;
    b.kill9();
    // The host "dies": the supervisor goes first, without a word (so it cannot
    // record how the agent ended), then the agent.
    for entry in std::fs::read_dir(b.data.join("runs")).unwrap().flatten() {
        if let Some(pid) =
            std::fs::read_to_string(entry.path().join("supervisor.pid")).ok().and_then(|s| s.trim().parse().ok())
        {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
        }
    }
    for pid in processes_of_task(&id) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    b.restart();
    let t = b
        .wait_for(&id, "a second run", |t| {
            t.sessions.iter().any(|s| s.status == baton_core::status::SessionStatus::Running) && t.sessions.len() == 2
        })
        .await;
    let first_session_runs: Vec<_> = {
        let detail: serde_json::Value = b.client.get(&format!("/api/sessions/{}", t.sessions[0].id)).await.unwrap();
        detail["runs"].as_array().unwrap().iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
    };
    assert!(
        first_session_runs.contains(&"failed".to_owned()) || first_session_runs.contains(&"lost".to_owned()),
        "{first_session_runs:?}"
    );
    assert_eq!(wait_lines(&count, 2).await.lines().count(), 2, "started again");
    let _ = b.cli(&["stop", &id, "--wait"]);
    assert_no_processes(&id).await;
}
