//! The fake forge's bare repository: reading branches, and merging as GitHub's
//! button does. A bare repository has no work tree, so a merge is plumbing
//! only: `merge-tree --write-tree` makes the merged tree (or finds the
//! conflict), `commit-tree` makes the commit and `update-ref` moves the base
//! branch only if it has not moved meanwhile.

use std::path::Path;
use std::process::{Command, Output};

/// How GitHub is asked to merge a pull request (`merge_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Method {
    /// A merge commit with the base and the head as parents.
    Merge,
    /// One commit with the head's changes, on the base alone.
    Squash,
    /// The head's commits replayed, one by one, on the base.
    Rebase,
}

impl Method {
    /// The method named `name` in a request, if it is one.
    pub(super) fn parse(name: &str) -> Option<Method> {
        match name {
            "merge" => Some(Method::Merge),
            "squash" => Some(Method::Squash),
            "rebase" => Some(Method::Rebase),
            _ => None,
        }
    }
}

/// Why a merge in the bare repository did not happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum MergeError {
    /// The head and the base conflict.
    Conflict,
    /// The base branch moved while merging, or git failed otherwise.
    Failed,
}

/// Who GitHub writes as the committer of the commits its button makes.
const GITHUB: Person<'static> = Person { name: "GitHub", email: "noreply@github.com", date: None };

/// Who the merge and squash commits are written by: the token's user.
const MERGER: Person<'static> = Person { name: "baton", email: "baton@users.noreply.github.example", date: None };

/// An author or committer of a commit.
#[derive(Debug, Clone, Copy)]
struct Person<'a> {
    /// Their name.
    name: &'a str,
    /// Their e-mail address.
    email: &'a str,
    /// When they wrote it (now when `None`).
    date: Option<&'a str>,
}

/// The commit at the tip of branch `name`, if the branch exists.
pub(super) fn branch_sha(bare: &Path, name: &str) -> Option<String> {
    stdout(bare, &["rev-parse", "--verify", "--quiet", &format!("refs/heads/{name}^{{commit}}")])
}

/// The commit `reference` (a branch, a tag or a sha) names, if any.
pub(super) fn resolve(bare: &Path, reference: &str) -> Option<String> {
    stdout(bare, &["rev-parse", "--verify", "--quiet", &format!("{reference}^{{commit}}")])
}

/// Whether `head` has commits that `base` has not.
pub(super) fn has_commits_between(bare: &Path, base: &str, head: &str) -> bool {
    stdout(bare, &["rev-list", "--count", &format!("{base}..{head}")]).is_some_and(|n| n != "0")
}

/// Merges `head_sha` into branch `base` (now at `base_sha`) with `method`,
/// the new commits saying `message`; the new tip of `base`.
pub(super) fn merge(
    bare: &Path,
    base: &str,
    base_sha: &str,
    head_sha: &str,
    method: Method,
    message: &str,
) -> Result<String, MergeError> {
    let tip = match method {
        Method::Merge => {
            let tree = merge_tree(bare, None, base_sha, head_sha)?;
            commit_tree(bare, &tree, &[base_sha, head_sha], message, MERGER)?
        }
        Method::Squash => {
            let tree = merge_tree(bare, None, base_sha, head_sha)?;
            commit_tree(bare, &tree, &[base_sha], message, MERGER)?
        }
        Method::Rebase => replay(bare, base_sha, head_sha)?,
    };
    let moved = run(bare, &["update-ref", &format!("refs/heads/{base}"), &tip, base_sha]);
    if moved.status.success() { Ok(tip) } else { Err(MergeError::Failed) }
}

/// Replays the commits of `head_sha` that `base_sha` lacks onto `base_sha`,
/// keeping their authors and messages; the last one made.
fn replay(bare: &Path, base_sha: &str, head_sha: &str) -> Result<String, MergeError> {
    let range = format!("{base_sha}..{head_sha}");
    let commits =
        stdout(bare, &["rev-list", "--reverse", "--topo-order", "--no-merges", &range]).ok_or(MergeError::Failed)?;
    let mut tip = base_sha.to_owned();
    for commit in commits.lines() {
        let parent = stdout(bare, &["rev-parse", &format!("{commit}^")]).ok_or(MergeError::Failed)?;
        let tree = merge_tree(bare, Some(&parent), &tip, commit)?;
        let about =
            stdout(bare, &["log", "-1", "--format=%an%x00%ae%x00%aI%x00%B", commit]).ok_or(MergeError::Failed)?;
        let mut parts = about.splitn(4, '\0');
        let mut next = || parts.next().unwrap_or_default();
        let author = Person { name: next(), email: next(), date: Some(next()) };
        tip = commit_tree(bare, &tree, &[&tip], next(), author)?;
    }
    Ok(tip)
}

/// The tree of `ours` and `theirs` merged (from `merge_base` when given,
/// else from their own merge base).
fn merge_tree(bare: &Path, merge_base: Option<&str>, ours: &str, theirs: &str) -> Result<String, MergeError> {
    let from = merge_base.map(|b| format!("--merge-base={b}"));
    let mut args = vec!["merge-tree", "--write-tree"];
    args.extend(from.as_deref());
    args.extend([ours, theirs]);
    let out = run(bare, &args);
    match out.status.code() {
        Some(0) => Ok(String::from_utf8_lossy(&out.stdout).lines().next().unwrap_or_default().to_owned()),
        Some(1) => Err(MergeError::Conflict),
        _ => Err(MergeError::Failed),
    }
}

/// A new commit of `tree` on `parents` by `author`, committed by GitHub.
fn commit_tree(
    bare: &Path,
    tree: &str,
    parents: &[&str],
    message: &str,
    author: Person<'_>,
) -> Result<String, MergeError> {
    let mut command = git(bare);
    command.args(["commit-tree", "--no-gpg-sign", tree, "-m", message]);
    for parent in parents {
        command.args(["-p", parent]);
    }
    command.envs([
        ("GIT_AUTHOR_NAME", author.name),
        ("GIT_AUTHOR_EMAIL", author.email),
        ("GIT_COMMITTER_NAME", GITHUB.name),
        ("GIT_COMMITTER_EMAIL", GITHUB.email),
    ]);
    if let Some(date) = author.date {
        command.env("GIT_AUTHOR_DATE", date);
    }
    let out = output(command, bare);
    let sha = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    if out.status.success() && !sha.is_empty() { Ok(sha) } else { Err(MergeError::Failed) }
}

/// git's output, trimmed, when it succeeds.
fn stdout(bare: &Path, args: &[&str]) -> Option<String> {
    let out = run(bare, args);
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Runs git with `args` in `bare`.
fn run(bare: &Path, args: &[&str]) -> Output {
    let mut command = git(bare);
    command.args(args);
    output(command, bare)
}

/// A git command in `bare`.
fn git(bare: &Path) -> Command {
    let mut command = Command::new("git");
    command.arg("-C").arg(bare);
    command
}

/// What `command` printed and how it ended; panics when git cannot be run at all.
fn output(mut command: Command, bare: &Path) -> Output {
    command.output().unwrap_or_else(|e| panic!("run git in {}: {e}", bare.display()))
}
