//! A task's worktree and branch: create, save, describe, remove.

use std::path::{Path, PathBuf};

use baton_core::names::validate_branch_name;

use crate::{Git, GitError};

/// Where and how a task's worktree should exist.
#[derive(Debug, Clone)]
pub struct Plan<'a> {
    /// The project's main checkout.
    pub repo: &'a Path,
    /// Where the worktree goes.
    pub path: &'a Path,
    /// The task's branch.
    pub branch: &'a str,
    /// The branch it starts from.
    pub base: &'a str,
    /// The commit it started from, if it started before.
    pub base_commit: Option<&'a str>,
    /// Branches of prerequisites to merge in when the branch is created, in order.
    pub prerequisites: &'a [String],
}

/// A worktree ready for an agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// Whether it was created now (a first run) rather than found.
    pub created: bool,
    /// The commit the branch started from.
    pub base_commit: String,
    /// The branch's commit now.
    pub head: String,
}

fn invalid(what: &str, why: String) -> GitError {
    GitError::Failed { args: what.to_owned(), stderr: why, code: None }
}

/// Makes sure the task's worktree exists on its branch: found as it was, checked
/// out again from the branch, or created from the base with the prerequisites'
/// branches merged in. A conflict between prerequisites removes what was created
/// and reports the files.
pub async fn prepare(plan: &Plan<'_>) -> Result<Prepared, GitError> {
    for name in std::iter::once(plan.branch)
        .chain(std::iter::once(plan.base))
        .chain(plan.prerequisites.iter().map(String::as_str))
    {
        validate_branch_name(name).map_err(|e| invalid("worktree", e.to_string()))?;
    }
    if !plan.path.is_absolute() {
        return Err(invalid("worktree", format!("worktree path {} is not absolute", plan.path.display())));
    }
    let repo = Git::new(plan.repo);
    if plan.path.join(".git").exists() {
        let wt = Git::new(plan.path);
        let current = wt.current_branch().await?;
        if current.as_deref() != Some(plan.branch) {
            return Err(invalid(
                "worktree",
                format!("{} is on {:?}, not on the task's branch {}", plan.path.display(), current, plan.branch),
            ));
        }
        let head = wt.resolve("HEAD").await?.unwrap_or_default();
        let base_commit = match plan.base_commit {
            Some(c) => c.to_owned(),
            None => merge_base(&repo, plan.base, &head).await?,
        };
        return Ok(Prepared { created: false, base_commit, head });
    }
    if let Some(parent) = plan.path.parent() {
        std::fs::create_dir_all(parent).map_err(GitError::Spawn)?;
    }
    let path = plan.path.to_string_lossy().into_owned();
    let wt = Git::new(plan.path);
    // The common case in one git call: a new branch from the base.
    let created = repo.run(["worktree", "add", "--quiet", "-b", plan.branch, path.as_str(), plan.base]).await;
    if let Err(e) = created {
        if !repo.branch_exists(plan.branch).await? {
            if repo.resolve(plan.base).await?.is_none() {
                return Err(invalid("worktree", format!("the base branch {} does not exist", plan.base)));
            }
            return Err(e);
        }
        // The branch exists (its worktree was removed): check it out again.
        repo.run(["worktree", "add", "--quiet", path.as_str(), plan.branch]).await?;
        let head = wt.resolve("HEAD").await?.unwrap_or_default();
        let base_commit = match plan.base_commit {
            Some(c) => c.to_owned(),
            None => merge_base(&repo, plan.base, &head).await?,
        };
        return Ok(Prepared { created: true, base_commit, head });
    }
    let base_commit = wt.resolve("HEAD").await?.unwrap_or_default();
    if plan.prerequisites.is_empty() {
        return Ok(Prepared { created: true, head: base_commit.clone(), base_commit });
    }
    let identity = wt.identity_env().await?;
    for prerequisite in plan.prerequisites {
        let message = format!("Merge prerequisite {prerequisite}");
        let merged = wt
            .run_with_env(
                ["merge", "--no-ff", "--no-edit", "--quiet", "-m", message.as_str(), prerequisite.as_str()],
                &identity,
            )
            .await;
        if let Err(e) = merged {
            let conflicts = wt.run(["diff", "--name-only", "--diff-filter=U"]).await.unwrap_or_default();
            let files: Vec<String> = conflicts.lines().map(str::to_owned).collect();
            let _ = wt.run(["merge", "--abort"]).await;
            let _ = repo.run(["worktree", "remove", "--force", path.as_str()]).await;
            let _ = repo.run(["branch", "-D", plan.branch]).await;
            if files.is_empty() {
                return Err(e);
            }
            return Err(GitError::Conflict { what: format!("prerequisite {prerequisite}"), files });
        }
    }
    let head = wt.resolve("HEAD").await?.unwrap_or_default();
    Ok(Prepared { created: true, base_commit, head })
}

async fn merge_base(repo: &Git, a: &str, b: &str) -> Result<String, GitError> {
    Ok(repo.run(["merge-base", a, b]).await?.trim().to_owned())
}

/// Commits everything uncommitted in the worktree (new files included, ignored
/// ones not), without running hooks. Whether there was anything to commit.
pub async fn commit_wip(worktree: &Path, message: &str) -> Result<bool, GitError> {
    let wt = Git::new(worktree);
    if uncommitted(worktree).await?.is_empty() {
        return Ok(false);
    }
    wt.run(["add", "--all"]).await?;
    let (clean, _) = wt.probe(["diff", "--cached", "--quiet"]).await?;
    if clean {
        return Ok(false);
    }
    let identity = wt.identity_env().await?;
    wt.run_with_env(["commit", "--no-verify", "--quiet", "-m", message], &identity).await?;
    Ok(true)
}

/// What a branch changed against the commit it started from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The branch's commit.
    pub head: String,
    /// Its commits since the base, oldest first.
    pub commits: Vec<String>,
    /// The files it changes.
    pub files: Vec<String>,
    /// `git diff --shortstat`.
    pub stat: Option<String>,
}

/// Describes `rev` (a branch, or `HEAD` in a worktree) against `base_commit`, in
/// two git calls.
pub async fn summarize(dir: &Path, base_commit: &str, rev: &str) -> Result<Summary, GitError> {
    let git = Git::new(dir);
    let range = format!("{base_commit}..{rev}");
    let commits: Vec<String> =
        git.run(["rev-list", "--reverse", range.as_str()]).await?.lines().map(str::to_owned).collect();
    let head = commits.last().cloned().unwrap_or_else(|| base_commit.to_owned());
    let numstat = git.run(["diff", "--numstat", "-z", base_commit, head.as_str()]).await?;
    let (files, insertions, deletions) = parse_numstat(&numstat);
    let stat = (!files.is_empty()).then(|| {
        let plural = |n: usize, one: &str, many: &str| if n == 1 { one.to_owned() } else { many.to_owned() };
        let mut s = format!("{} {} changed", files.len(), plural(files.len(), "file", "files"));
        if insertions > 0 {
            s.push_str(&format!(", {insertions} {}(+)", plural(insertions, "insertion", "insertions")));
        }
        if deletions > 0 {
            s.push_str(&format!(", {deletions} {}(-)", plural(deletions, "deletion", "deletions")));
        }
        s
    });
    Ok(Summary { head, commits, files, stat })
}

/// Files, insertions and deletions from `git diff --numstat -z` (renames give
/// their new name; binary files count no lines).
fn parse_numstat(text: &str) -> (Vec<String>, usize, usize) {
    let mut files = Vec::new();
    let (mut ins, mut del) = (0, 0);
    let mut parts = text.split('\0');
    while let Some(entry) = parts.next() {
        let mut fields = entry.splitn(3, '\t');
        let (Some(a), Some(d), Some(path)) = (fields.next(), fields.next(), fields.next()) else { continue };
        ins += a.parse::<usize>().unwrap_or(0);
        del += d.parse::<usize>().unwrap_or(0);
        if path.is_empty() {
            // A rename: the old and the new name follow as their own fields.
            let _old = parts.next();
            if let Some(new) = parts.next() {
                files.push(new.to_owned());
            }
        } else {
            files.push(path.to_owned());
        }
    }
    files.sort();
    (files, ins, del)
}

/// Files changed in a worktree against `base_commit`, committed or not, new files
/// included (for the conflict radar).
pub async fn changed_files(worktree: &Path, base_commit: &str) -> Result<Vec<String>, GitError> {
    let wt = Git::new(worktree);
    let mut files = split_z(&wt.run(["diff", "--name-only", "-z", base_commit]).await?);
    files.extend(split_z(&wt.run(["ls-files", "--others", "--exclude-standard", "-z"]).await?));
    files.sort();
    files.dedup();
    Ok(files)
}

/// Files with uncommitted changes in a worktree (new files included).
pub async fn uncommitted(worktree: &Path) -> Result<Vec<String>, GitError> {
    let out = Git::new(worktree).run(["status", "--porcelain=v1", "-z", "--untracked-files=all"]).await?;
    let mut files = Vec::new();
    let mut entries = out.split('\0').filter(|e| !e.is_empty());
    while let Some(entry) = entries.next() {
        if entry.len() > 3 {
            files.push(entry[3..].to_owned());
        }
        if entry.starts_with('R') || entry.starts_with('C') {
            entries.next();
        }
    }
    Ok(files)
}

/// Commits on `branch` that `base` does not have.
pub async fn unmerged_commits(repo: &Path, base: &str, branch: &str) -> Result<Vec<String>, GitError> {
    let range = format!("{base}..{branch}");
    let out = Git::new(repo).run(["log", "--format=%h %s", range.as_str()]).await?;
    Ok(out.lines().map(str::to_owned).collect())
}

/// Removes a worktree (`force`: even with uncommitted changes) and, when `branch`
/// is given, deletes the branch if it is fully merged into `base`.
pub async fn remove(repo: &Path, path: &Path, force: bool, branch: Option<(&str, &str)>) -> Result<(), GitError> {
    let git = Git::new(repo);
    let path_text = path.to_string_lossy().into_owned();
    if path.exists() {
        let mut args = vec!["worktree", "remove"];
        if force {
            args.push("--force");
        }
        args.push(path_text.as_str());
        git.run(args).await?;
    } else {
        git.run(["worktree", "prune"]).await?;
    }
    if let Some((branch, base)) = branch
        && git.branch_exists(branch).await?
        && unmerged_commits(repo, base, branch).await?.is_empty()
    {
        git.run(["branch", "-D", branch]).await?;
    }
    Ok(())
}

/// Bytes used by the files under `dir` (symbolic links not followed).
pub fn disk_usage(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack: Vec<PathBuf> = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else { continue };
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                total += meta.len();
            }
        }
    }
    total
}

pub(crate) fn split_z(text: &str) -> Vec<String> {
    text.split('\0').filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// The patch and `--stat` of `dir` against `base`: of the working tree (committed
/// and uncommitted changes) when `rev` is `None`, else of commit `rev`.
pub async fn diff(dir: &Path, base: &str, rev: Option<&str>) -> Result<(String, String), GitError> {
    let git = Git::new(dir);
    let mut args = vec!["diff", "--no-color", "--no-ext-diff", base];
    if let Some(rev) = rev {
        args.push(rev);
    }
    let patch = git.run(args.clone()).await?;
    args.insert(1, "--stat");
    let stat = git.run(args).await?;
    Ok((patch, stat))
}

/// New files in a worktree that git does not track yet (and does not ignore).
pub async fn untracked(worktree: &Path) -> Result<Vec<String>, GitError> {
    Ok(split_z(&Git::new(worktree).run(["ls-files", "--others", "--exclude-standard", "-z"]).await?))
}
