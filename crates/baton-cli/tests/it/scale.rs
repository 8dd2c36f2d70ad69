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

/// The spare worktrees under the embedded launcher's worktrees directory, with
/// the commit each has checked out.
fn spares(b: &Baton) -> Vec<String> {
    let dir = b.repo.join(".baton/worktrees/repo/.spares");
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join(".git/HEAD")).ok())
        .map(|h| h.trim().to_owned())
        .collect();
    out.sort();
    out
}

async fn wait_spares(b: &Baton, commit: &str, n: usize) {
    let start = std::time::Instant::now();
    loop {
        let now = spares(b);
        if now.len() == n && now.iter().all(|c| c == commit) {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(15), "spares {now:?}, wanted {n} at {commit}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Spare worktrees are kept at the head of `main`: made again when it moves, so
/// a task created after the move starts from the new commit; the pool is sized
/// by `worktree_pool`, and a spare taken is a task's own repository as before.
#[tokio::test]
async fn spare_worktrees_follow_main_and_a_task_starts_from_its_new_head() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "worktree_pool = 3\n").unwrap();
        crate::harness::sh(repo, "echo v1 > marker.txt && git add . && git commit -qm v1");
    });
    b.agent("look", "cat marker.txt; git branch --show-current; echo more > work.txt").await;
    let first = b.task(json!({ "prompt": "x", "agent": "look" })).await;
    let t = b.wait_status(&first, TaskStatus::Succeeded).await;
    assert!(t.task.result.as_deref().unwrap_or_default().contains("v1"), "{:?}", t.task.result);
    let main = b.sh("git rev-parse main");
    wait_spares(&b, main.trim(), 3).await;

    b.sh("echo v2 > marker.txt && git commit -qam v2");
    let moved = b.sh("git rev-parse main");
    wait_spares(&b, moved.trim(), 3).await;
    let second = b.task(json!({ "prompt": "x", "agent": "look" })).await;
    let t = b.wait_status(&second, TaskStatus::Succeeded).await;
    let result = t.task.result.clone().unwrap_or_default();
    assert!(result.contains("v2"), "the new task sees main's new commit: {result}");
    assert_eq!(t.task.git.base_commit.as_deref(), Some(moved.trim()));
    let branch = t.task.git.branch.clone().unwrap();
    assert!(result.contains(&branch), "on its own branch {branch}: {result}");
    assert_eq!(t.task.git.commits.len(), 1, "its work was committed (WIP) on its branch");
    // The pool is whole again.
    wait_spares(&b, moved.trim(), 3).await;
}

/// `worktree_pool = 0` keeps no spares; a pool over the limit is refused.
#[tokio::test]
async fn the_pool_can_be_turned_off_and_a_huge_one_is_refused() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "worktree_pool = 0\n").unwrap();
    });
    b.agent("ok", "echo ok").await;
    let id = b.task(json!({ "prompt": "x", "agent": "ok" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(spares(&b), Vec::<String>::new());

    let other = crate::harness::git_repo(&b.dir.path().join("other"));
    std::fs::create_dir_all(other.join(".baton")).unwrap();
    std::fs::write(other.join(".baton/config.toml"), "worktree_pool = 100\n").unwrap();
    let err = b.client.post::<Value, _>("/api/projects", &json!({ "path": other })).await.unwrap_err().to_string();
    assert!(err.contains("worktree_pool = 100 is more than 16"), "{err}");
}
