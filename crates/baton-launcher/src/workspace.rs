//! A task's worktree on this host: preparing it for a run, saving what the agent
//! left uncommitted, and describing the branch for the coordinator.

use std::path::{Component, Path, PathBuf};

use baton_core::api::Assignment;
use baton_core::ids::TaskId;
use baton_core::model::TaskGit;
use baton_core::names::{slugify, task_branch};
use baton_git::worktree::{self, Plan};

/// Where a task works, and what its branch started from.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// The project's main checkout.
    pub repo: PathBuf,
    /// The worktree.
    pub path: PathBuf,
    /// The task's branch.
    pub branch: String,
    /// The branch it merges into.
    pub base_branch: String,
    /// The commit it started from.
    pub base_commit: String,
}

impl Workspace {
    /// Prepares the worktree of an assignment: found, checked out again, or created
    /// with the prerequisites' branches merged in. Whether it was created now.
    pub(crate) async fn prepare(worktrees_dir: &Path, a: &Assignment) -> Result<(Workspace, bool), String> {
        let task = &a.task;
        let branch = task.git.branch.clone().unwrap_or_else(|| task_branch(&task.id, &task.title));
        let base_branch = task.git.base_branch.clone().unwrap_or_else(|| a.project.default_branch.clone());
        let path = match &task.git.worktree {
            Some(p) => PathBuf::from(p),
            None => worktrees_dir.join(&a.project.name).join(format!("{}-{}", task.id.short(), slugify(&task.title))),
        };
        let prerequisites: Vec<String> = a.prerequisites.iter().filter_map(|p| p.branch.clone()).collect();
        let repo = PathBuf::from(&a.project.path);
        let plan = Plan {
            repo: &repo,
            path: &path,
            branch: &branch,
            base: &base_branch,
            base_commit: task.git.base_commit.as_deref(),
            prerequisites: &prerequisites,
        };
        let prepared = worktree::prepare(&plan).await.map_err(|e| format!("could not prepare the worktree: {e}"))?;
        Ok((Workspace { repo, path, branch, base_branch, base_commit: prepared.base_commit }, prepared.created))
    }

    /// The workspace an earlier start prepared (for a re-attached run).
    pub(crate) fn of(a: &Assignment) -> Option<Workspace> {
        let git = &a.task.git;
        Some(Workspace {
            repo: PathBuf::from(&a.project.path),
            path: PathBuf::from(git.worktree.as_ref()?),
            branch: git.branch.clone()?,
            base_branch: git.base_branch.clone().unwrap_or_else(|| a.project.default_branch.clone()),
            base_commit: git.base_commit.clone()?,
        })
    }

    /// The git state to report at the start of a run.
    pub(crate) fn started(&self) -> TaskGit {
        TaskGit {
            branch: Some(self.branch.clone()),
            base_branch: Some(self.base_branch.clone()),
            base_commit: Some(self.base_commit.clone()),
            worktree: Some(self.path.to_string_lossy().into_owned()),
            ..TaskGit::default()
        }
    }

    /// Commits what the agent left uncommitted (a WIP commit saying why), then
    /// describes the branch. Nothing here may lose work: failures are logged and
    /// the description is as complete as it can be.
    pub(crate) async fn save(&self, task: &TaskId, why: &str) -> TaskGit {
        let mut git = self.started();
        if !self.path.join(".git").exists() {
            tracing::warn!(task = %task, worktree = %self.path.display(), "the worktree is gone");
            return git;
        }
        let message = format!(
            "WIP: work left uncommitted by baton task {task} ({why})\n\nCommitted by Baton when the agent's process ended, so nothing is lost."
        );
        match worktree::commit_wip(&self.path, &message).await {
            Ok(committed) => git.wip_committed = committed,
            Err(e) => tracing::error!(task = %task, error = %e, "could not commit the agent's uncommitted work"),
        }
        match worktree::summarize(&self.path, &self.base_commit, "HEAD").await {
            Ok(s) => {
                git.head = Some(s.head);
                git.commits = s.commits;
                git.files_changed = s.files;
                git.diff_stat = s.stat;
            }
            Err(e) => tracing::warn!(task = %task, error = %e, "could not describe the branch"),
        }
        let path = self.path.clone();
        git.disk_bytes = tokio::task::spawn_blocking(move || worktree::disk_usage(&path)).await.ok();
        git
    }

    /// Files the worktree changes against its base, committed or not.
    pub(crate) async fn changed_files(&self) -> Option<Vec<String>> {
        worktree::changed_files(&self.path, &self.base_commit).await.ok()
    }
}

/// Copies files (`.env`, local config) from the main checkout into a new
/// worktree. Paths must stay inside the repository; a file that does not exist is
/// skipped.
pub(crate) fn copy_files(repo: &Path, worktree: &Path, files: &[String]) -> Result<Vec<String>, String> {
    let mut copied = Vec::new();
    for file in files {
        let rel = Path::new(file);
        if rel.is_absolute() || rel.components().any(|c| !matches!(c, Component::Normal(_))) {
            return Err(format!("copy_files: {file:?} must be a relative path inside the repository"));
        }
        let from = repo.join(rel);
        if !from.is_file() {
            continue;
        }
        let to = worktree.join(rel);
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("copy_files: {file}: {e}"))?;
        }
        std::fs::copy(&from, &to).map_err(|e| format!("copy_files: {file}: {e}"))?;
        copied.push(file.clone());
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_files_stays_inside_the_repository() {
        let dir = tempfile::tempdir().unwrap();
        let (repo, wt) = (dir.path().join("repo"), dir.path().join("wt"));
        std::fs::create_dir_all(repo.join("conf")).unwrap();
        std::fs::create_dir_all(&wt).unwrap();
        std::fs::write(repo.join(".env"), "KEY=1").unwrap();
        std::fs::write(repo.join("conf/local.toml"), "x").unwrap();
        let copied = copy_files(&repo, &wt, &[".env".into(), "conf/local.toml".into(), "missing".into()]).unwrap();
        assert_eq!(copied, [".env", "conf/local.toml"]);
        assert_eq!(std::fs::read_to_string(wt.join(".env")).unwrap(), "KEY=1");
        for bad in ["../secret", "/etc/passwd", "a/../../b"] {
            assert!(copy_files(&repo, &wt, &[bad.into()]).is_err(), "{bad}");
        }
    }
}
