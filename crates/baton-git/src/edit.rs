//! Changing a branch without a checkout: one path set back to another commit's
//! version, committed on the branch with a compare-and-swap of its ref, through
//! a temporary index (the repository's own index and any worktree are left as
//! they are).

use std::path::Path;

use crate::{Git, GitError};

/// What reverting a path did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reverted {
    /// The branch's head before.
    pub old: String,
    /// The new commit on the branch.
    pub new: String,
}

/// Sets `path` on `branch` back to what it is at `base` (removes it when `base`
/// has no such path) in a new commit with `message`. The branch moves only if it
/// is still where it was read ([`GitError::Failed`] otherwise, and nothing
/// changes). A path that is the same at `base` already is refused.
pub async fn revert_path(
    repo: &Path,
    branch: &str,
    base: &str,
    path: &str,
    message: &str,
) -> Result<Reverted, GitError> {
    let git = Git::new(repo);
    let refname = format!("refs/heads/{branch}");
    let old = git.resolve(&refname).await?.ok_or_else(|| missing(format!("no branch {branch}")))?;
    let index = TempIndex::new();
    let env = [("GIT_INDEX_FILE", index.0.to_string_lossy().into_owned())];
    git.run_with_env(["read-tree", old.as_str()], &env).await?;
    let at_base = git.run(["ls-tree", "-z", "--full-tree", base, "--", path]).await?;
    match at_base.trim_end_matches('\0').split_once('\t') {
        Some((meta, _)) => {
            let mut parts = meta.split(' ');
            let (mode, _kind, sha) = (parts.next().unwrap_or(""), parts.next(), parts.next().unwrap_or(""));
            let info = format!("{mode},{sha},{path}");
            git.run_with_env(["update-index", "--add", "--cacheinfo", info.as_str()], &env).await?;
        }
        None => {
            git.run_with_env(["update-index", "--force-remove", "--", path], &env).await?;
        }
    }
    let tree = git.run_with_env(["write-tree"], &env).await?.trim().to_owned();
    let old_tree = git.run(["rev-parse", &format!("{old}^{{tree}}")]).await?.trim().to_owned();
    if tree == old_tree {
        return Err(missing(format!("{path} on {branch} is already as it is at {base}")));
    }
    let mut identity = git.identity_env().await?;
    identity.extend(env.iter().map(|(k, v)| (*k, v.clone())));
    let new = git.run_with_env(["commit-tree", tree.as_str(), "-p", old.as_str(), "-m", message], &identity).await?;
    let new = new.trim().to_owned();
    git.run(["update-ref", refname.as_str(), new.as_str(), old.as_str()]).await?;
    Ok(Reverted { old, new })
}

/// A temporary index file, removed when dropped.
struct TempIndex(std::path::PathBuf);

impl TempIndex {
    fn new() -> TempIndex {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).expect("the operating system's random source failed");
        let name: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        TempIndex(std::env::temp_dir().join(format!("baton-index-{name}")))
    }
}

impl Drop for TempIndex {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn missing(stderr: String) -> GitError {
    GitError::Failed { args: "revert".into(), stderr, code: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn sh(dir: &Path, script: &str) -> String {
        let out = tokio::process::Command::new("sh").arg("-c").arg(script).current_dir(dir).output().await.unwrap();
        assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[tokio::test]
    async fn a_path_goes_back_to_the_base_on_the_branch_alone() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        sh(d, "git init -q -b main && git config user.email t@t && git config user.name t && echo a > a.txt && echo b > b.txt && git add . && git commit -qm base").await;
        sh(d, "git checkout -qb work && echo A > a.txt && echo new > c.txt && git add . && git commit -qm change && git checkout -q main").await;
        let base = sh(d, "git rev-parse main").await;
        let r = revert_path(d, "work", &base, "a.txt", "revert a.txt").await.unwrap();
        assert_eq!(sh(d, "git show work:a.txt").await, "a", "back to the base's version");
        assert_eq!(sh(d, "git rev-parse work^").await, r.old);
        let r = revert_path(d, "work", &base, "c.txt", "revert c.txt").await.unwrap();
        assert!(sh(d, "git ls-tree --name-only work").await.lines().all(|l| l != "c.txt"), "a new file goes");
        assert_eq!(sh(d, "cat a.txt; git rev-parse --abbrev-ref HEAD").await, "a\nmain", "the checkout is untouched");
        let again = revert_path(d, "work", &base, "a.txt", "revert a.txt").await;
        assert!(again.is_err(), "nothing to revert");
        assert_eq!(sh(d, "git rev-parse work").await, r.new);
    }
}
