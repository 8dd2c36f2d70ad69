//! Worktrees and branches: isolation, no lost work, review, ordered merge.

use std::path::Path;
use std::time::Duration;

use baton_core::api::TaskDetail;
use baton_core::model::MergeState;
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Baton, processes_of_task};

const COMMIT: &str = "git add -A && git commit -qm";

async fn done(b: &Baton, id: &str) -> TaskDetail {
    b.wait_for(id, "the end", |t| t.task.status.is_finished()).await
}

fn worktree(t: &TaskDetail) -> &Path {
    Path::new(t.task.git.worktree.as_deref().expect("a worktree"))
}

#[tokio::test]
async fn three_tasks_run_in_parallel_in_their_own_worktrees() {
    let b = Baton::start_with(&["--slots", "3"]);
    b.agent(
        "writer",
        &format!(r#"echo "$BATON_TASK_ID" > out.txt; sleep 0.5; grep -qx "$BATON_TASK_ID" out.txt && {COMMIT} "work of $BATON_TASK_ID""#),
    )
    .await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(b.task(json!({ "prompt": format!("write {i}"), "agent": "writer" })).await);
    }
    let mut paths = Vec::new();
    for id in &ids {
        let t = done(&b, id).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{id}: {:?}", t.task.reason);
        let branch = t.task.git.branch.clone().unwrap();
        assert!(branch.starts_with(&format!("baton/{}-write-", &id[2..])), "{branch}");
        assert_eq!(b.sh(&format!("git show {branch}:out.txt")), *id, "each branch has its own work");
        assert!(worktree(&t).starts_with(b.data.join("worktrees")), "worktrees live under the data directory");
        assert_eq!(t.task.git.commits.len(), 1);
        assert_eq!(t.task.git.files_changed, ["out.txt"]);
        paths.push(worktree(&t).to_owned());
    }
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 3);
    assert_eq!(b.sh("git status --porcelain"), "", "the lead's checkout is untouched");
    assert!(!b.repo.join("out.txt").exists());
    assert_eq!(b.sh("git branch --show-current"), "main");
}

#[tokio::test]
async fn work_left_uncommitted_becomes_a_wip_commit() {
    let b = Baton::start();
    b.agent(
        "sloppy",
        "echo draft > notes.md && mkdir -p src && echo 'fn main() {}' > src/main.rs && echo changed >> README.md",
    )
    .await;
    let id = b.task(json!({ "prompt": "x", "agent": "sloppy" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert!(t.task.git.wip_committed);
    let branch = t.task.git.branch.clone().unwrap();
    assert!(
        b.sh(&format!("git log -1 --format=%s {branch}"))
            .starts_with(&format!("WIP: work left uncommitted by baton task {id}"))
    );
    assert_eq!(b.sh(&format!("git show {branch}:notes.md")), "draft");
    assert_eq!(t.task.git.files_changed, ["README.md", "notes.md", "src/main.rs"]);
    assert_eq!(b.sh(&format!("git -C {} status --porcelain", worktree(&t).display())), "");
    assert!(t.task.git.disk_bytes.unwrap() > 0);
}

#[tokio::test]
async fn an_agent_killed_mid_write_leaves_its_partial_work_committed() {
    let b = Baton::start();
    b.agent("interrupted", "echo 'first half' > half.txt; echo ready; sleep 600; echo 'second half' >> half.txt").await;
    let id = b.task(json!({ "prompt": "x", "agent": "interrupted" })).await;
    b.wait_for(&id, "the first half", |t| t.task.status == TaskStatus::Running).await;
    let start = std::time::Instant::now();
    while !b.events(&id).await.iter().any(|e| e.data["line"] == "ready") {
        assert!(start.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = b.cli(&["stop", &id, "--wait"]);
    assert!(out.status.success());
    let t = b.get(&id).await;
    assert_eq!(t.task.status, TaskStatus::Cancelled);
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:half.txt")), "first half");
    assert!(b.sh(&format!("git log -1 --format=%s {branch}")).contains("(stopped)"));
    assert!(processes_of_task(&id).is_empty());
}

#[tokio::test]
async fn a_dependent_task_sees_its_prerequisites_work() {
    let b = Baton::start();
    b.agent("make-api", &format!("echo 'pub fn api() {{}}' > api.rs && {COMMIT} api")).await;
    b.agent("make-docs", "echo docs > docs.md").await;
    b.agent("use-both", "test -f api.rs && test -f docs.md && echo 'uses api' > client.rs").await;
    let api = b.task(json!({ "prompt": "api", "agent": "make-api" })).await;
    let docs = b.task(json!({ "prompt": "docs", "agent": "make-docs" })).await;
    let client = b.task(json!({ "prompt": "client", "agent": "use-both", "depends_on": [api, docs] })).await;
    let t = done(&b, &client).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let branch = t.task.git.branch.clone().unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:client.rs")), "uses api");
}

async fn editors(b: &Baton) -> (String, String) {
    b.agent("edit-one", &format!("sed -i 's/hello/hello from one/' README.md && {COMMIT} one")).await;
    b.agent("edit-two", &format!("sed -i 's/hello/hello from two/' README.md && {COMMIT} two")).await;
    let one = b.task(json!({ "prompt": "one", "agent": "edit-one" })).await;
    let two = b.task(json!({ "prompt": "two", "agent": "edit-two" })).await;
    done(b, &one).await;
    done(b, &two).await;
    (one, two)
}

#[tokio::test]
async fn the_radar_warns_and_the_second_of_two_conflicting_merges_is_refused() {
    let b = Baton::start();
    let (one, two) = editors(&b).await;
    let t = b.get(&one).await;
    assert_eq!(t.overlaps.len(), 1, "{:?}", t.overlaps);
    assert_eq!(t.overlaps[0].task_id.as_str(), two);
    assert_eq!(t.overlaps[0].files, ["README.md"]);
    let ps = String::from_utf8_lossy(&b.cli(&["ps"]).stdout).into_owned();
    assert!(ps.contains(&two[2..6]), "ps shows the overlap: {ps}");

    let out = b.cli(&["merge", &one]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.sh("cat README.md"), "hello from one", "the lead's checkout follows main");
    assert_eq!(b.sh("git status --porcelain"), "");
    let main_after_first = b.sh("git rev-parse main");

    let out = b.cli(&["merge", &two]);
    assert_eq!(out.status.code(), Some(4));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("conflict: README.md"), "{stderr}");
    assert_eq!(b.sh("git rev-parse main"), main_after_first, "the base is unchanged");
    assert_eq!(b.get(&two).await.task.git.merge, MergeState::Conflict);
    let (status, body) = b.post(&format!("/api/tasks/{two}/merge"), json!({})).await;
    assert_eq!(status, 409);
    assert_eq!(body["error"]["code"], "merge_conflict");
    assert_eq!(body["error"]["details"]["files"], json!(["README.md"]));
}

#[tokio::test]
async fn merging_follows_dependency_order_and_strategies() {
    let b = Baton::start();
    b.agent("base-work", &format!("echo base > base.txt && {COMMIT} base")).await;
    b.agent("on-top", &format!("echo top > top.txt && {COMMIT} top")).await;
    let first = b.task(json!({ "prompt": "first", "agent": "base-work" })).await;
    let second = b.task(json!({ "prompt": "second", "agent": "on-top", "depends_on": [first] })).await;
    done(&b, &second).await;
    let out = b.cli(&["merge", &second, "--strategy", "squash"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(b.get(&first).await.task.git.merge, MergeState::Merged, "the prerequisite merged first");
    assert_eq!(b.get(&second).await.task.git.merge, MergeState::Merged);
    let log = b.sh("git log --format=%s main");
    assert!(log.starts_with(&format!("second (baton task {second})\nfirst (baton task {first})")), "{log}");
    assert!(b.repo.join("top.txt").exists() && b.repo.join("base.txt").exists());
    let out = b.cli(&["merge", &second]);
    assert_eq!(out.status.code(), Some(4), "already merged");
}

#[tokio::test]
async fn clean_refuses_to_lose_work_and_removes_merged_worktrees() {
    let b = Baton::start();
    b.agent("committer", &format!("echo $BATON_TASK_ID > work.txt && {COMMIT} work")).await;
    let kept = b.task(json!({ "prompt": "kept", "agent": "committer" })).await;
    let merged = b.task(json!({ "prompt": "merged", "agent": "committer" })).await;
    let kept_path = worktree(&done(&b, &kept).await).to_owned();
    let merged_path = worktree(&done(&b, &merged).await).to_owned();

    let out = b.cli(&["clean", &kept]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("unmerged commit") && stdout.contains("work"),
        "the refusal lists what would be lost: {stdout}"
    );
    assert!(kept_path.exists());

    assert!(b.cli(&["merge", &merged]).status.success());
    std::fs::write(merged_path.join("scratch.txt"), "uncommitted").unwrap();
    let out = b.cli(&["clean", &merged]);
    assert_eq!(out.status.code(), Some(4));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(stdout.contains("uncommitted: scratch.txt"), "the launcher refuses to lose it: {stdout}");
    assert!(merged_path.join("scratch.txt").exists());
    std::fs::remove_file(merged_path.join("scratch.txt")).unwrap();
    let out = b.cli(&["clean"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!merged_path.exists(), "a merged task's worktree is removed");
    assert!(kept_path.exists(), "an unmerged succeeded task is not touched by a plain clean");
    assert!(b.get(&merged).await.task.git.worktree.is_none());

    let out = b.cli(&["clean", "--force", &kept]);
    assert!(out.status.success());
    assert!(!kept_path.exists());
    let branch = b.get(&kept).await.task.git.branch.unwrap();
    assert_eq!(
        b.sh(&format!("git branch --list {branch} --format='%(refname:short)'")),
        branch,
        "its unmerged branch is kept"
    );
}

#[tokio::test]
async fn acceptance_checks_decide_success_and_their_output_is_kept() {
    let b = Baton::start();
    b.agent("builder", "echo built > artifact.txt").await;
    let good =
        b.task(json!({ "prompt": "x", "agent": "builder", "checks": ["test -f artifact.txt", "echo checked"] })).await;
    let bad = b.task(json!({ "prompt": "x", "agent": "builder", "checks": ["echo 'expected 3 got 4' >&2; exit 1", "echo never"] })).await;
    let t = done(&b, &good).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    assert_eq!(t.task.check_results.len(), 2);
    assert!(t.task.check_results.iter().all(|c| c.passed));
    let t = done(&b, &bad).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert!(t.task.reason.as_deref().unwrap().contains("failed with exit code 1"), "{:?}", t.task.reason);
    assert_eq!(t.task.check_results.len(), 1, "the first failure ends the checks");
    assert_eq!(t.task.check_results[0].output_tail, "expected 3 got 4");
    let logs = String::from_utf8_lossy(&b.cli(&["logs", &bad]).stdout).into_owned();
    assert!(logs.contains("expected 3 got 4") && logs.contains("failed with exit code 1"), "{logs}");
}

/// A check that starts a server in the background is done when its `sh` is (the
/// server goes with it), not when the timeout kills whatever holds its output.
#[tokio::test]
async fn a_check_that_leaves_a_process_behind_ends_with_its_shell() {
    let b = Baton::start();
    b.agent("builder", "echo built").await;
    let id = b.task(json!({ "prompt": "x", "agent": "builder", "checks": ["sleep 600 & echo started"] })).await;
    let t = b.wait_within(Duration::from_secs(30), &id, "the check to end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert!(t.task.check_results[0].passed);
    assert_eq!(t.task.check_results[0].output_tail, "started");
    assert!(t.task.check_results[0].duration_ms < 10_000, "{}", t.task.check_results[0].duration_ms);
}

#[tokio::test]
async fn new_worktrees_get_copied_files_and_the_setup_command() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::write(repo.join(".env"), "SECRET=1\n").unwrap();
        std::fs::write(repo.join(".gitignore"), ".env\n").unwrap();
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(
            repo.join(".baton/config.toml"),
            "copy_files = [\".env\"]\nsetup = \"echo installing; cp .env setup-saw-env.txt\"\nenv = { TARGET = \"${BATON_CACHE}/target\" }\n",
        )
        .unwrap();
        crate::harness::sh(repo, "git add .gitignore && git commit -qm ignore");
    });
    b.agent(
        "check-setup",
        r#"test -f .env && test -f setup-saw-env.txt && echo "target=$TARGET branch=$BATON_BRANCH""#,
    )
    .await;
    let id = b.task(json!({ "prompt": "x", "agent": "check-setup" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let events = b.events(&id).await;
    assert!(events.iter().any(|e| e.data["phase"] == "setup" && e.data["message"] == "installing"));
    let line =
        events.iter().find_map(|e| e.data["line"].as_str().filter(|l| l.starts_with("target="))).unwrap().to_owned();
    assert!(
        line.contains("/worktrees/repo/.cache/target") && line.contains(&format!("branch=baton/{}", &id[2..])),
        "{line}"
    );
}

#[tokio::test]
async fn a_failing_setup_fails_the_task_with_its_output() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "setup = \"echo 'npm ERR! missing'; exit 7\"\n").unwrap();
    });
    b.agent("never-runs", "touch ran").await;
    let id = b.task(json!({ "prompt": "x", "agent": "never-runs" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    let reason = t.task.reason.unwrap();
    assert!(reason.contains("exit code 7") && reason.contains("npm ERR! missing"), "{reason}");
}

#[tokio::test]
async fn diff_shows_what_a_task_changed() {
    let b = Baton::start();
    b.agent("adder", &format!("echo 'new line' >> README.md && {COMMIT} add && echo pending > later.txt")).await;
    let id = b.task(json!({ "prompt": "x", "agent": "adder" })).await;
    done(&b, &id).await;
    let out = b.cli(&["diff", &id]);
    let patch = String::from_utf8_lossy(&out.stdout);
    assert!(patch.contains("+new line") && patch.contains("+pending"), "{patch}");
    let json: Value = serde_json::from_slice(&b.cli(&["diff", &id, "--json"]).stdout).unwrap();
    assert_eq!(json["files"], json!(["README.md", "later.txt"]));
}

#[tokio::test]
async fn auto_merge_lands_tasks_whose_checks_pass() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "auto_merge = true\nmerge_strategy = \"rebase\"\n").unwrap();
    });
    b.agent("feature", &format!("echo feature > feature.txt && {COMMIT} feature")).await;
    let id = b.task(json!({ "prompt": "x", "agent": "feature", "checks": ["test -f feature.txt"] })).await;
    let t = b.wait_for(&id, "merged", |t| t.task.git.merge == MergeState::Merged).await;
    assert_eq!(b.sh("git rev-parse main"), t.task.git.merged_commit.unwrap());
    assert_eq!(b.sh("git log -1 --format=%s main"), "feature", "rebased, not merged");
}

#[tokio::test]
async fn bad_repositories_branches_and_merges_are_refused() {
    let b = Baton::start();
    let not_repo = b.dir.path().join("plain");
    std::fs::create_dir(&not_repo).unwrap();
    let (status, body) = b.post("/api/projects", json!({ "path": not_repo })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("not_found")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no git repository"), "{body}");
    let out = b.cli(&["project", "add", not_repo.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "not found");
    let empty = b.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    crate::harness::sh(&empty, "git init -q");
    let (status, body) = b.post("/api/projects", json!({ "path": empty })).await;
    assert_eq!(status, 409, "a repository without commits cannot be used yet: {body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("no commits"));
    let (status, _) = b.post("/api/projects", json!({ "path": b.repo.join("subdir-that-does-not-exist") })).await;
    assert_eq!(status, 404);

    for bad in ["a..b", "-x", "has space", "ctl\u{7}", "x~1", "ends/", "a.lock"] {
        let (status, body) = b.post("/api/tasks", json!({ "project": "repo", "prompt": "x", "branch": bad })).await;
        assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{bad:?}: {body}");
    }
    b.agent("slow", "sleep 600").await;
    let unsafe_title =
        b.task(json!({ "prompt": "x", "agent": "slow", "title": "-rf ../../etc; $(whoami) `id`" })).await;
    let t = b.wait_status(&unsafe_title, TaskStatus::Running).await;
    assert_eq!(t.task.git.branch.unwrap(), format!("baton/{}-rf-etc-whoami-id", &unsafe_title[2..]));
    let (status, body) = b.post(&format!("/api/tasks/{unsafe_title}/merge"), json!({})).await;
    assert_eq!((status, body["error"]["code"].as_str()), (409, Some("illegal_transition")), "{body}");
    let (status, body) = b.post(&format!("/api/tasks/{unsafe_title}/clean"), json!({})).await;
    assert_eq!(status, 409, "{body}");
    let _ = b.cli(&["stop", &unsafe_title, "--wait"]);
}
