//! At fleet scale: the claim path stays fair when many runs are held back.

use std::time::Duration;

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::Baton;

/// 300 runs of project A wait behind its `parallel_limit = 1` (more than a claim
/// reads in one page); a task of project B, queued after all of them, is
/// claimed at once.
#[tokio::test]
async fn runs_held_by_a_limit_do_not_starve_another_project() {
    let b = Baton::start_in(&["--slots", "4"], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "parallel_limit = 1\nworktrees = false\n").unwrap();
    });
    b.agent("sleeper", "sleep 600").await;
    b.agent("quick", "echo done").await;
    let first = b.task(json!({ "prompt": "hold the slot", "agent": "sleeper" })).await;
    b.wait_status(&first, TaskStatus::Running).await;
    let held: Vec<Value> =
        (0..300).map(|i| json!({ "name": format!("h{i}"), "prompt": "held", "agent": "sleeper" })).collect();
    let _: Value = b.client.post("/api/plans", &json!({ "project": "repo", "tasks": held })).await.unwrap();
    let other = crate::harness::git_repo(&b.dir.path().join("other"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": other, "name": "other" })).await.unwrap();
    let id = b.task(json!({ "project": "other", "prompt": "x", "agent": "quick" })).await;
    b.wait_within(Duration::from_secs(5), &id, "the other project's task to run", |t| {
        t.task.status == TaskStatus::Succeeded
    })
    .await;
    let queued: Value = b.client.get("/api/tasks?status=queued&limit=1000").await.unwrap();
    assert_eq!(queued.as_array().map(Vec::len), Some(300), "the held runs are still held");
    let _ = b.cli(&["stop", &first, "--wait"]);
}
