//! The git layer against real repositories in temporary directories.

use std::path::{Path, PathBuf};
use std::process::Command;

use baton_core::model::MergeStrategy;
use baton_git::worktree::{self, Plan};
use baton_git::{Git, GitError, merge, transport};

fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().unwrap();
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Every test sees a HOME of its own with no git identity, so nothing depends on
/// the machine's configuration (or on another test changing it).
fn isolated_home() {
    static HOME: std::sync::Once = std::sync::Once::new();
    HOME.call_once(|| {
        let home = std::env::temp_dir().join(format!("baton-git-tests-{}", std::process::id()));
        std::fs::create_dir_all(&home).unwrap();
        // SAFETY: done once, before any test of this binary runs git.
        unsafe { std::env::set_var("HOME", &home) };
    });
}

fn repo() -> (tempfile::TempDir, PathBuf) {
    isolated_home();
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    sh(
        &repo,
        "git init -q -b main && git config user.email t@t && git config user.name T && printf 'one\\ntwo\\nthree\\n' > f.txt && git add . && git commit -qm init",
    );
    (dir, repo)
}

fn head(repo: &Path, rev: &str) -> String {
    sh(repo, &format!("git rev-parse {rev}"))
}

fn objects(repo: &Path) -> PathBuf {
    repo.join(".git/objects")
}

fn plan<'a>(
    repo: &'a Path,
    objects: &'a Path,
    path: &'a Path,
    branch: &'a str,
    base: &'a str,
    prerequisites: &'a [(String, String)],
) -> Plan<'a> {
    let _ = repo;
    Plan { path, objects, branch, base_commit: base, head: None, checkpoint: None, prerequisites }
}

/// The task's commits reach the project as a fetch into it (what a push does).
fn land_branch(repo: &Path, wt: &Path, branch: &str) {
    sh(repo, &format!("git fetch -q {} +refs/heads/{branch}:refs/heads/{branch}", wt.display()));
}

#[tokio::test]
async fn a_task_repository_borrows_the_objects_and_leaves_the_project_alone() {
    let (dir, repo) = repo();
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let path = dir.path().join("wt/a");
    let first = worktree::prepare(&plan(&repo, &obj, &path, "baton/a-x", &base, &[])).await.unwrap();
    assert!(first.created);
    assert_eq!(first.head, base);
    assert_eq!(sh(&path, "git branch --show-current"), "baton/a-x");
    assert_eq!(std::fs::read_to_string(path.join("f.txt")).unwrap(), "one\ntwo\nthree\n");
    assert_eq!(sh(&path, "git count-objects"), "0 objects, 0 kilobytes", "nothing is copied");
    let again = worktree::prepare(&plan(&repo, &obj, &path, "baton/a-x", &base, &[])).await.unwrap();
    assert!(!again.created);
    sh(&path, "echo x > x.txt && git add . && git commit -qm x && git update-ref refs/heads/main HEAD");
    assert_eq!(head(&repo, "main"), base, "the agent's refs are its own repository's");
    assert_eq!(sh(&repo, "git branch --list 'baton/*'"), "");
}

#[tokio::test]
async fn a_spare_becomes_the_same_working_tree_that_prepare_makes() {
    let (dir, repo) = repo();
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let spare = dir.path().join("wt/.spares/1");
    worktree::make_spare(&spare, &obj, &base).await.unwrap();
    assert_eq!(sh(&spare, "git status --porcelain"), "");
    let path = dir.path().join("wt/t-1");
    let adopted = worktree::adopt_spare(&spare, &path, "baton/t-1-x", &base).await.unwrap();
    assert_eq!(adopted, worktree::Prepared { created: true, head: base.clone() });
    assert!(!spare.exists());
    let made = dir.path().join("wt/t-2");
    worktree::prepare(&plan(&repo, &obj, &made, "baton/t-2-x", &base, &[])).await.unwrap();
    for wt in [&path, &made] {
        assert_eq!(sh(wt, "git status --porcelain"), "", "{}", wt.display());
        assert_eq!(sh(wt, "git rev-parse HEAD"), base);
        assert_eq!(sh(wt, "git count-objects"), "0 objects, 0 kilobytes", "nothing is copied");
    }
    assert_eq!(sh(&path, "git branch --show-current"), "baton/t-1-x");
    // Found as it was on the next run, like any working tree.
    let again = worktree::prepare(&plan(&repo, &obj, &path, "baton/t-1-x", &base, &[])).await.unwrap();
    assert!(!again.created);
    // A spare is never moved over an existing tree, nor onto a bad branch name.
    let other = dir.path().join("wt/.spares/2");
    worktree::make_spare(&other, &obj, &base).await.unwrap();
    assert!(worktree::adopt_spare(&other, &made, "baton/t-3", &base).await.is_err());
    assert!(worktree::adopt_spare(&other, &dir.path().join("wt/t-4"), "bad..name", &base).await.is_err());
    assert!(other.exists(), "a refused spare stays where it was");
}

#[tokio::test]
async fn prerequisites_are_merged_in_and_conflicting_ones_are_named() {
    let (dir, repo) = repo();
    sh(&repo, "git checkout -qb p1 && echo a > a.txt && git add . && git commit -qm p1 && git checkout -q main");
    sh(&repo, "git checkout -qb p2 && echo b > b.txt && git add . && git commit -qm p2 && git checkout -q main");
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let prereqs = [("p1".to_owned(), head(&repo, "p1")), ("p2".to_owned(), head(&repo, "p2"))];
    let path = dir.path().join("wt/c");
    worktree::prepare(&plan(&repo, &obj, &path, "baton/c", &base, &prereqs)).await.unwrap();
    assert!(path.join("a.txt").exists() && path.join("b.txt").exists());

    sh(&repo, "git checkout -qb q1 && sed -i s/two/TWO-1/ f.txt && git commit -qam q1 && git checkout -q main");
    sh(&repo, "git checkout -qb q2 && sed -i s/two/TWO-2/ f.txt && git commit -qam q2 && git checkout -q main");
    let prereqs = [("q1".to_owned(), head(&repo, "q1")), ("q2".to_owned(), head(&repo, "q2"))];
    let path = dir.path().join("wt/d");
    let err = worktree::prepare(&plan(&repo, &obj, &path, "baton/d", &base, &prereqs)).await.unwrap_err();
    match err {
        GitError::Conflict { files, .. } => assert_eq!(files, ["f.txt"]),
        other => panic!("{other:?}"),
    }
    assert!(!path.exists(), "nothing is left behind");
}

#[tokio::test]
async fn unsafe_names_and_ids_never_reach_git() {
    let (dir, repo) = repo();
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let path = dir.path().join("wt/e");
    for bad in ["-D", "a..b", "x y", "a\u{1}b"] {
        assert!(worktree::prepare(&plan(&repo, &obj, &path, bad, &base, &[])).await.is_err(), "{bad:?}");
    }
    for bad in ["main", "--all", "HEAD~1"] {
        assert!(worktree::prepare(&plan(&repo, &obj, &path, "ok", bad, &[])).await.is_err(), "{bad:?}");
    }
    let relative = Path::new("relative/path");
    assert!(worktree::prepare(&plan(&repo, &obj, relative, "ok", &base, &[])).await.is_err());
}

#[tokio::test]
async fn uncommitted_work_is_saved_as_a_wip_commit() {
    let (dir, repo) = repo();
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let path = dir.path().join("wt/w");
    worktree::prepare(&plan(&repo, &obj, &path, "baton/w", &base, &[])).await.unwrap();
    let wt = Git::new(&path);
    assert!(!worktree::commit_wip(&wt, "WIP").await.unwrap(), "nothing to commit");
    std::fs::write(path.join("new.txt"), "new").unwrap();
    std::fs::write(path.join("f.txt"), "changed").unwrap();
    assert_eq!(worktree::uncommitted(&wt).await.unwrap(), ["f.txt", "new.txt"]);
    assert!(worktree::commit_wip(&wt, "WIP: saved").await.unwrap());
    assert!(worktree::uncommitted(&wt).await.unwrap().is_empty());
    land_branch(&repo, &path, "baton/w");
    let summary = worktree::summarize(&repo, &base, "baton/w").await.unwrap();
    assert_eq!(summary.commits.len(), 1);
    assert_eq!(summary.files, ["f.txt", "new.txt"]);
    assert!(summary.stat.unwrap().contains("2 files changed"));
    assert_eq!(sh(&repo, "git log -1 --format=%s baton/w"), "WIP: saved");
}

#[tokio::test]
async fn a_snapshot_touches_nothing_and_restores_on_another_host() {
    let (dir, repo) = repo();
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let path = dir.path().join("wt/s");
    worktree::prepare(&plan(&repo, &obj, &path, "baton/s", &base, &[])).await.unwrap();
    sh(&path, "echo committed > c.txt && git add c.txt && git commit -qm c");
    std::fs::write(path.join("f.txt"), "edited\n").unwrap();
    std::fs::write(path.join("new.txt"), "new\n").unwrap();
    let status = sh(&path, "git status --porcelain");
    let wt = Git::new(&path);
    let (commit, _tree) = worktree::snapshot(&wt).await.unwrap();
    assert_eq!(sh(&path, "git status --porcelain"), status, "the agent's index and files are as they were");
    assert_eq!(head(&path, "HEAD^{commit}"), head(&path, &format!("{commit}^")));
    // Another host: only what was pushed (the snapshot) reaches the project.
    sh(&repo, &format!("git fetch -q {} +refs/baton/checkpoint:refs/baton/checkpoints/t", path.display()));
    let elsewhere = dir.path().join("wt/s2");
    let mut p = plan(&repo, &obj, &elsewhere, "baton/s", &base, &[]);
    p.checkpoint = Some(&commit);
    worktree::prepare(&p).await.unwrap();
    assert_eq!(std::fs::read_to_string(elsewhere.join("f.txt")).unwrap(), "edited\n");
    assert_eq!(std::fs::read_to_string(elsewhere.join("new.txt")).unwrap(), "new\n");
    assert!(elsewhere.join("c.txt").exists(), "the commit made before the snapshot is there");
    assert_eq!(sh(&elsewhere, "git status --porcelain"), status, "the snapshot's changes are uncommitted again");
}

#[tokio::test]
async fn a_wip_commit_works_without_a_configured_identity() {
    let (dir, repo) = repo();
    sh(&repo, "git config --unset user.email && git config --unset user.name");
    let (obj, base) = (objects(&repo), head(&repo, "main"));
    let path = dir.path().join("wt/n");
    worktree::prepare(&plan(&repo, &obj, &path, "baton/n", &base, &[])).await.unwrap();
    std::fs::write(path.join("x"), "x").unwrap();
    assert!(worktree::commit_wip(&Git::new(&path), "WIP").await.unwrap());
    sh(&path, "echo y > y && git add y && git commit -qm 'the agent commits too'");
}

#[tokio::test]
async fn a_mirror_fetches_only_what_it_lacks_and_bridges_rewritten_history() {
    let (dir, repo) = repo();
    let mirror = dir.path().join("mirror.git");
    transport::init_mirror(&mirror).await.unwrap();
    let base = head(&repo, "main");
    assert_eq!(transport::missing(&mirror, &[base.as_str()]).await.unwrap(), std::slice::from_ref(&base));
    let refspecs = ["+refs/heads/main:refs/heads/main".to_owned()];
    transport::fetch_local(&mirror, &repo, &refspecs).await.unwrap();
    assert!(transport::missing(&mirror, &[base.as_str()]).await.unwrap().is_empty());
    // A task's history rewritten after a push: the bridge keeps both and its files.
    let path = dir.path().join("wt/r");
    let obj = mirror.join("objects");
    worktree::prepare(&plan(&repo, &obj, &path, "baton/r", &base, &[])).await.unwrap();
    sh(&path, "echo 1 > a && git add a && git commit -qm one");
    let pushed = head(&path, "HEAD");
    let work = ["+refs/heads/baton/r:refs/baton/work/r".to_owned()];
    transport::fetch_local(&mirror, &path, &work).await.unwrap();
    sh(&path, "echo 2 > a && git commit -qa --amend -m rewritten");
    let new = head(&path, "HEAD");
    transport::fetch_local(&mirror, &path, &work).await.unwrap();
    assert!(!transport::is_ancestor(&mirror, &pushed, &new).await.unwrap());
    let bridge = transport::bridge(&mirror, &pushed, &new, "bridge").await.unwrap();
    assert!(transport::is_ancestor(&mirror, &pushed, &bridge).await.unwrap());
    assert!(transport::is_ancestor(&mirror, &new, &bridge).await.unwrap());
    assert_eq!(head(&mirror, &format!("{bridge}^{{tree}}")), head(&mirror, &format!("{new}^{{tree}}")));
}

async fn branch_with(repo: &Path, dir: &Path, name: &str, script: &str) -> PathBuf {
    let path = dir.join("wt").join(name);
    let (obj, base) = (objects(repo), head(repo, "main"));
    worktree::prepare(&plan(repo, &obj, &path, name, &base, &[])).await.unwrap();
    sh(&path, &format!("{script} && git add -A && git commit -qm {name}"));
    land_branch(repo, &path, name);
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
async fn a_merged_branch_is_deleted_and_an_unmerged_one_kept() {
    let (dir, repo) = repo();
    branch_with(&repo, dir.path(), "t1", "echo x > x.txt").await;
    assert!(!worktree::delete_branch_if_merged(&repo, "t1", "main").await.unwrap());
    assert_eq!(worktree::unmerged_commits(&repo, "main", "t1").await.unwrap().len(), 1);
    merge::land(&repo, "main", "t1", MergeStrategy::Merge, "t1").await.unwrap();
    assert!(worktree::delete_branch_if_merged(&repo, "t1", "main").await.unwrap());
    assert_eq!(sh(&repo, "git branch --list t1"), "");
}

#[tokio::test]
async fn a_branch_head_is_read_from_loose_and_packed_refs() {
    let (_dir, repo) = repo();
    let git = Git::new(&repo);
    let main = head(&repo, "main");
    assert_eq!(git.branch_head("main").await.unwrap().as_deref(), Some(main.as_str()));
    sh(&repo, "git branch other && git pack-refs --all");
    assert!(!repo.join(".git/refs/heads/other").exists(), "packed");
    assert_eq!(git.branch_head("other").await.unwrap().as_deref(), Some(main.as_str()));
    assert_eq!(git.branch_head("missing").await.unwrap(), None);
}
