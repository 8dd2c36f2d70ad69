//! The git layer against real repositories in temporary directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_core::model::MergeStrategy;
use baton_git::worktree::{self, Plan};
use baton_git::{GitError, merge};

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    sh(
        &repo,
        "git init -q -b main && git config user.email t@t && git config user.name T && printf 'one\\ntwo\\nthree\\n' > f.txt && git add . && git commit -qm init",
    );
    (dir, repo)
}

fn plan<'a>(repo: &'a Path, path: &'a Path, branch: &'a str, prerequisites: &'a [String]) -> Plan<'a> {
    Plan { repo, path, branch, base: "main", base_commit: None, prerequisites }
}

#[tokio::test]
async fn a_worktree_is_created_on_its_branch_and_found_again() {
    let (dir, repo) = repo();
    let path = dir.path().join("wt/a");
    let first = worktree::prepare(&plan(&repo, &path, "baton/a-x", &[])).await.unwrap();
    assert!(first.created);
    assert_eq!(sh(&path, "git branch --show-current"), "baton/a-x");
    assert_eq!(first.base_commit, sh(&repo, "git rev-parse main"));
    let again = worktree::prepare(&plan(&repo, &path, "baton/a-x", &[])).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.base_commit, first.base_commit);
    assert_eq!(sh(&repo, "git status --porcelain"), "", "the main checkout is untouched");
}

#[tokio::test]
async fn prerequisites_are_merged_in_and_conflicting_ones_are_named() {
    let (dir, repo) = repo();
    sh(&repo, "git checkout -qb p1 && echo a > a.txt && git add . && git commit -qm p1 && git checkout -q main");
    sh(&repo, "git checkout -qb p2 && echo b > b.txt && git add . && git commit -qm p2 && git checkout -q main");
    let path = dir.path().join("wt/c");
    worktree::prepare(&plan(&repo, &path, "baton/c", &["p1".into(), "p2".into()])).await.unwrap();
    assert!(path.join("a.txt").exists() && path.join("b.txt").exists());

    sh(&repo, "git checkout -qb q1 && sed -i s/two/TWO-1/ f.txt && git commit -qam q1 && git checkout -q main");
    sh(&repo, "git checkout -qb q2 && sed -i s/two/TWO-2/ f.txt && git commit -qam q2 && git checkout -q main");
    let path = dir.path().join("wt/d");
    let err = worktree::prepare(&plan(&repo, &path, "baton/d", &["q1".into(), "q2".into()])).await.unwrap_err();
    match err {
        GitError::Conflict { files, .. } => assert_eq!(files, ["f.txt"]),
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "nothing is left behind");
    assert_eq!(sh(&repo, "git branch --list baton/d"), "");
}

#[tokio::test]
async fn unsafe_names_never_reach_git() {
    let (dir, repo) = repo();
    let path = dir.path().join("wt/e");
    for bad in ["-D", "a..b", "x y", "a\u{1}b"] {
        assert!(worktree::prepare(&plan(&repo, &path, bad, &[])).await.is_err(), "{bad:?}");
    }
    let relative = Path::new("relative/path");
    assert!(worktree::prepare(&plan(&repo, relative, "ok", &[])).await.is_err());
}

#[tokio::test]
async fn uncommitted_work_is_saved_as_a_wip_commit() {
    let (dir, repo) = repo();
    let path = dir.path().join("wt/w");
    let p = worktree::prepare(&plan(&repo, &path, "baton/w", &[])).await.unwrap();
    assert!(!worktree::commit_wip(&path, "WIP").await.unwrap(), "nothing to commit");
    std::fs::write(path.join("new.txt"), "new").unwrap();
    std::fs::write(path.join("f.txt"), "changed").unwrap();
    assert_eq!(worktree::uncommitted(&path).await.unwrap(), ["f.txt", "new.txt"]);
    assert!(worktree::commit_wip(&path, "WIP: saved").await.unwrap());
    assert!(worktree::uncommitted(&path).await.unwrap().is_empty());
    let summary = worktree::summarize(&path, &p.base_commit, "HEAD").await.unwrap();
    assert_eq!(summary.commits.len(), 1);
    assert_eq!(summary.files, ["f.txt", "new.txt"]);
    assert!(summary.stat.unwrap().contains("2 files changed"));
    assert_eq!(sh(&repo, "git log -1 --format=%s baton/w"), "WIP: saved");
}

#[tokio::test]
async fn a_wip_commit_works_without_a_configured_identity() {
    let (dir, repo) = repo();
    sh(&repo, "git config --unset user.email && git config --unset user.name");
    let path = dir.path().join("wt/n");
    worktree::prepare(&plan(&repo, &path, "baton/n", &[])).await.unwrap();
    std::fs::write(path.join("x"), "x").unwrap();
    let home = dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    // SAFETY: tests in this binary do not read HOME concurrently with this write.
    unsafe { std::env::set_var("HOME", &home) };
    assert!(worktree::commit_wip(&path, "WIP").await.unwrap());
}

async fn branch_with(repo: &Path, dir: &Path, name: &str, script: &str) -> PathBuf {
    let path = dir.join("wt").join(name);
    worktree::prepare(&plan(repo, &path, name, &[])).await.unwrap();
    sh(&path, &format!("{script} && git add -A && git commit -qm {name}"));
    path
}

#[tokio::test]
async fn landing_moves_the_base_and_keeps_the_users_checkout_clean() {
    for strategy in [MergeStrategy::Merge, MergeStrategy::Squash, MergeStrategy::Rebase] {
        let (dir, repo) = repo();
        branch_with(&repo, dir.path(), "t1", "echo one > one.txt").await;
        let old = sh(&repo, "git rev-parse main");
        let landed = merge::land(&repo, "main", "t1", strategy, "Land t1").await.unwrap();
        assert_eq!(landed.old, old);
        assert_eq!(sh(&repo, "git rev-parse main"), landed.new);
        assert_eq!(sh(&repo, "git branch --show-current"), "main", "{strategy:?}: not switched");
        assert_eq!(sh(&repo, "git status --porcelain"), "", "{strategy:?}: not dirtied");
        assert!(repo.join("one.txt").exists(), "{strategy:?}: the checkout follows the base");
        let parents = sh(&repo, "git log -1 --format=%P main").split(' ').count();
        assert_eq!(parents, if strategy == MergeStrategy::Merge { 2 } else { 1 }, "{strategy:?}");
        let again = merge::land(&repo, "main", "t1", strategy, "again").await.unwrap();
        assert_eq!(again.old, again.new, "{strategy:?}: nothing left to land");
    }
}

#[tokio::test]
async fn a_conflicting_merge_names_the_files_and_leaves_the_base_alone() {
    let (dir, repo) = repo();
    branch_with(&repo, dir.path(), "t1", "sed -i s/two/ONE/ f.txt").await;
    branch_with(&repo, dir.path(), "t2", "sed -i s/two/TWO/ f.txt").await;
    merge::land(&repo, "main", "t1", MergeStrategy::Merge, "t1").await.unwrap();
    let before = sh(&repo, "git rev-parse main");
    let check = merge::check(&repo, "main", "t2").await.unwrap();
    assert_eq!(check.conflicts, ["f.txt"]);
    for strategy in [MergeStrategy::Merge, MergeStrategy::Squash, MergeStrategy::Rebase] {
        match merge::land(&repo, "main", "t2", strategy, "t2").await {
            Err(GitError::Conflict { files, .. }) => assert_eq!(files, ["f.txt"], "{strategy:?}"),
            other => panic!("{strategy:?}: {other:?}"),
        }
        assert_eq!(sh(&repo, "git rev-parse main"), before, "{strategy:?}: the base is unchanged");
        assert_eq!(sh(&repo, "git status --porcelain"), "");
    }
}

#[tokio::test]
async fn a_checkout_with_conflicting_local_changes_refuses_the_merge() {
    let (dir, repo) = repo();
    branch_with(&repo, dir.path(), "t1", "sed -i s/two/ONE/ f.txt").await;
    std::fs::write(repo.join("f.txt"), "local edit\n").unwrap();
    let before = sh(&repo, "git rev-parse main");
    let err = merge::land(&repo, "main", "t1", MergeStrategy::Merge, "t1").await.unwrap_err();
    assert!(err.to_string().contains("uncommitted changes"), "{err}");
    assert_eq!(sh(&repo, "git rev-parse main"), before);
    assert_eq!(std::fs::read_to_string(repo.join("f.txt")).unwrap(), "local edit\n", "the user's edit is kept");
}

#[tokio::test]
async fn removing_a_worktree_with_work_needs_force_and_keeps_unmerged_branches() {
    let (dir, repo) = repo();
    let path = branch_with(&repo, dir.path(), "t1", "echo x > x.txt").await;
    std::fs::write(path.join("dirty.txt"), "dirty").unwrap();
    assert!(worktree::remove(&repo, &path, false, Some(("t1", "main"))).await.is_err());
    assert_eq!(worktree::unmerged_commits(&repo, "main", "t1").await.unwrap().len(), 1);
    worktree::remove(&repo, &path, true, Some(("t1", "main"))).await.unwrap();
    assert!(!path.exists());
    assert_eq!(sh(&repo, "git branch --list t1"), "t1", "an unmerged branch is kept");
}
