//! Landing a task's branch on the base branch, without switching or dirtying any
//! checkout.
//!
//! The merged tree comes from `git merge-tree --write-tree` (which also names the
//! conflicting files, leaving everything untouched), the commit from
//! `git commit-tree`, and the base ref moves with `git update-ref NEW OLD`, a
//! compare-and-swap that fails if someone else moved it meanwhile (then it starts
//! over against the new base). A checkout that has the base branch checked out —
//! the user's, typically — is brought along with `git read-tree -m -u OLD NEW`,
//! which keeps its uncommitted changes; if they touch the same files, nothing
//! happens and the merge is refused.

use std::path::Path;

use baton_core::model::MergeStrategy;

use crate::worktree::split_z;
use crate::{Git, GitError};

/// How many times landing is retried when the base moves underneath it.
const CAS_ATTEMPTS: usize = 5;

/// What merging would do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// The merged tree.
    pub tree: String,
    /// Files that conflict (empty: the merge is clean).
    pub conflicts: Vec<String>,
}

/// What landing did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landed {
    /// The base before.
    pub old: String,
    /// The base after (equal to `old` when there was nothing to land).
    pub new: String,
}

/// What merging `theirs` into `ours` would do, touching nothing.
pub async fn check(repo: &Path, ours: &str, theirs: &str) -> Result<Check, GitError> {
    let git = Git::new(repo);
    let (code, stdout, stderr) =
        git.output(["merge-tree", "--write-tree", "--name-only", "--no-messages", "-z", ours, theirs]).await?;
    let text = String::from_utf8_lossy(&stdout);
    let mut parts = split_z(&text).into_iter();
    let tree = parts.next().unwrap_or_default();
    match code {
        Some(0) => Ok(Check { tree, conflicts: Vec::new() }),
        Some(1) => {
            let mut conflicts: Vec<String> = parts.collect();
            conflicts.dedup();
            Ok(Check { tree, conflicts })
        }
        _ => Err(GitError::Failed { args: format!("merge-tree {ours} {theirs}"), stderr, code }),
    }
}

/// Lands `branch` on `base` with `strategy`, `message` describing the result.
pub async fn land(
    repo: &Path,
    base: &str,
    branch: &str,
    strategy: MergeStrategy,
    message: &str,
) -> Result<Landed, GitError> {
    for _ in 0..CAS_ATTEMPTS {
        let Some(prepared) = prepare(repo, base, branch, strategy, message).await? else {
            let old = Git::new(repo).resolve(&format!("refs/heads/{base}")).await?.ok_or_else(|| missing(base))?;
            return Ok(Landed { new: old.clone(), old });
        };
        if swap(repo, base, &prepared, message).await? {
            return Ok(prepared);
        }
    }
    Err(GitError::Failed { args: "update-ref".into(), stderr: format!("{base} kept moving; try again"), code: None })
}

/// The commit landing `branch` on `base` would make, made (its objects written)
/// but not landed: `None` when the base has it already. A conflict is
/// [`GitError::Conflict`].
pub async fn prepare(
    repo: &Path,
    base: &str,
    branch: &str,
    strategy: MergeStrategy,
    message: &str,
) -> Result<Option<Landed>, GitError> {
    let git = Git::new(repo);
    let identity = git.identity_env().await?;
    let old = git.resolve(&format!("refs/heads/{base}")).await?.ok_or_else(|| missing(base))?;
    let head = git.resolve(&format!("refs/heads/{branch}")).await?.ok_or_else(|| missing(branch))?;
    if git.probe(["merge-base", "--is-ancestor", head.as_str(), old.as_str()]).await?.0 {
        return Ok(None);
    }
    let result = check(repo, &old, &head).await?;
    let old_tree = git.run(["rev-parse", &format!("{old}^{{tree}}")]).await?.trim().to_owned();
    if result.conflicts.is_empty() && result.tree == old_tree {
        // Already there (an earlier squash or rebase of the same work).
        return Ok(None);
    }
    let new = match strategy {
        MergeStrategy::Merge | MergeStrategy::Squash => {
            if !result.conflicts.is_empty() {
                return Err(GitError::Conflict { what: branch.to_owned(), files: result.conflicts });
            }
            let mut args = vec!["commit-tree", result.tree.as_str(), "-p", old.as_str()];
            if strategy == MergeStrategy::Merge {
                args.extend(["-p", head.as_str()]);
            }
            args.extend(["-m", message]);
            git.run_with_env(args, &identity).await?.trim().to_owned()
        }
        MergeStrategy::Rebase => replay(&git, &old, &head, &identity).await?,
    };
    Ok(Some(Landed { old, new }))
}

/// Moves `base` from `prepared.old` to `prepared.new` (a compare-and-swap), and
/// the checkouts that have it checked out along: false, changing nothing, when
/// the base is no longer at `old`. A checkout whose uncommitted changes touch
/// the same files refuses it, before anything moves.
pub async fn swap(repo: &Path, base: &str, prepared: &Landed, message: &str) -> Result<bool, GitError> {
    let git = Git::new(repo);
    let base_ref = format!("refs/heads/{base}");
    let (old, new) = (prepared.old.as_str(), prepared.new.as_str());
    let checkouts = checkouts_of(&git, &base_ref).await?;
    for dir in &checkouts {
        let moved = Git::new(dir).probe(["read-tree", "-n", "-m", "-u", old, new]).await?.0;
        if !moved {
            return Err(GitError::Failed {
                args: "merge".into(),
                stderr: format!(
                    "the checkout at {dir} has uncommitted changes to files this merge changes; commit or stash them first"
                ),
                code: None,
            });
        }
    }
    if !git.probe(["update-ref", "-m", message, base_ref.as_str(), new, old]).await?.0 {
        return Ok(false);
    }
    // The merge has landed: a checkout that cannot follow (a file changed in the
    // moment since the dry run) is reported, not turned into a failed merge.
    for dir in &checkouts {
        if let Err(e) = Git::new(dir).run(["read-tree", "-m", "-u", old, new]).await {
            tracing::warn!(checkout = %dir, error = %e, "the merge landed but this checkout could not follow it");
        }
    }
    Ok(true)
}

fn missing(name: &str) -> GitError {
    GitError::Failed { args: "merge".into(), stderr: format!("branch {name} does not exist"), code: None }
}

/// The worktrees (the main checkout included) that have `branch_ref` checked out.
async fn checkouts_of(git: &Git, branch_ref: &str) -> Result<Vec<String>, GitError> {
    let list = git.run(["worktree", "list", "--porcelain"]).await?;
    Ok(worktrees_on(&list, branch_ref))
}

/// The worktrees of `git worktree list --porcelain` that have `branch_ref`
/// checked out.
pub(crate) fn worktrees_on(list: &str, branch_ref: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut path: Option<&str> = None;
    for line in list.lines() {
        if let Some(p) = line.strip_prefix("worktree ") {
            path = Some(p);
        } else if line.strip_prefix("branch ") == Some(branch_ref)
            && let Some(p) = path
        {
            out.push(p.to_owned());
        }
    }
    out
}

/// Replays the branch's own commits onto `onto` in a temporary worktree; the
/// resulting commit.
async fn replay(git: &Git, onto: &str, head: &str, identity: &[(&str, String)]) -> Result<String, GitError> {
    let merge_base = git.run(["merge-base", onto, head]).await?.trim().to_owned();
    let range = format!("{merge_base}..{head}");
    let commits: Vec<String> =
        git.run(["rev-list", "--reverse", "--no-merges", range.as_str()]).await?.lines().map(str::to_owned).collect();
    let tmp = temporary_worktree_path()?;
    let tmp_path = tmp.to_string_lossy().into_owned();
    git.run(["worktree", "add", "--quiet", "--detach", tmp_path.as_str(), onto]).await?;
    let wt = Git::new(&tmp);
    let mut result = Ok(());
    for commit in &commits {
        if let Err(e) = wt
            .run_with_env(["cherry-pick", "--allow-empty", "--keep-redundant-commits", commit.as_str()], identity)
            .await
        {
            let conflicts = wt.run(["diff", "--name-only", "--diff-filter=U"]).await.unwrap_or_default();
            let _ = wt.run(["cherry-pick", "--abort"]).await;
            let files: Vec<String> = conflicts.lines().map(str::to_owned).collect();
            result = Err(if files.is_empty() { e } else { GitError::Conflict { what: head.to_owned(), files } });
            break;
        }
    }
    let new = wt.resolve("HEAD").await;
    let _ = git.run(["worktree", "remove", "--force", tmp_path.as_str()]).await;
    result?;
    new?.ok_or_else(|| missing("HEAD"))
}

/// A fresh path for a temporary worktree.
fn temporary_worktree_path() -> Result<std::path::PathBuf, GitError> {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).map_err(|e| GitError::Spawn(std::io::Error::other(e.to_string())))?;
    let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(std::env::temp_dir().join(format!("baton-merge-{name}")))
}
