//! A task's working tree on this host: a repository of its own that borrows the
//! mirror's objects, prepared for a run, its work saved (a WIP commit) and pushed
//! to the coordinator, snapshots of it taken while the agent works, and the
//! branch described for the coordinator.
//!
//! Git commands that read the task's repository run inside the agent's sandbox
//! (the [`Git`] they are given): its configuration is the agent's to write, and
//! may name commands. Only the mirror, which the agent cannot touch, is read
//! outside it.

use std::path::{Component, Path, PathBuf};

use baton_core::api::Assignment;
use baton_core::ids::TaskId;
use baton_core::model::TaskGit;
use baton_core::names::{slugify, task_branch};
use baton_core::workset::WorksetCheckout;
use baton_git::worktree::{self, Plan};
use baton_git::{Git, transport};

use crate::mirror::{Mirrors, Notes, Wanted};

/// Where a task works, and what its branch started from.
#[derive(Debug, Clone)]
pub(crate) struct Workspace {
    /// The task's project.
    pub project: baton_core::ids::ProjectId,
    /// The working tree (its repository is `.git` inside).
    pub path: PathBuf,
    /// The task's branch.
    pub branch: String,
    /// The branch it merges into.
    pub base_branch: String,
    /// The commit it started from.
    pub base_commit: String,
    /// The branch's head as the coordinator has it (last pushed).
    pub pushed: Option<String>,
}

/// The directory a workset task's agent works in on this host: a worktree of
/// each of its projects side by side, named after them.
pub(crate) fn workset_dir(worktrees_dir: &Path, task: &baton_core::model::Task) -> PathBuf {
    worktrees_dir.join("_worksets").join(format!("{}-{}", task.id.short(), slugify(&task.title)))
}

/// Another project's worktree of a workset task.
#[derive(Debug, Clone)]
pub(crate) struct Member {
    /// Its worktree (in the workset's directory, named after the project).
    pub workspace: Workspace,
    /// The project's name.
    pub name: String,
    /// The project's own checks, run in its worktree.
    pub checks: Vec<String>,
    /// Its last checkpoint (HEAD and tree), so an unchanged one is not pushed again.
    pub last_checkpoint: Option<(String, String)>,
}

/// The assignment as one other project of its workset sees it: that project,
/// its base, and the task's branch there.
fn member_assignment(a: &Assignment, c: &WorksetCheckout) -> Assignment {
    let mut m = a.clone();
    let base_branch = a
        .task
        .workset
        .as_ref()
        .and_then(|w| w.parts.iter().find(|p| p.project_id == c.project.id))
        .map_or_else(|| c.project.default_branch.clone(), |p| p.base_branch.clone());
    m.project = c.project.clone();
    m.task.git = TaskGit {
        branch: a.task.git.branch.clone(),
        base_branch: Some(base_branch),
        base_commit: Some(c.base_commit.clone()),
        head: c.head.clone(),
        ..TaskGit::default()
    };
    m.base_commit = Some(c.base_commit.clone());
    m.base_head = c.base_head.clone();
    m.prerequisites = Vec::new();
    m.workset = Vec::new();
    m
}

/// Where the working tree of an assignment's task goes on this host.
fn path_of(worktrees_dir: &Path, a: &Assignment) -> PathBuf {
    let task = &a.task;
    if task.workset.is_some() {
        return workset_dir(worktrees_dir, task).join(&a.project.name);
    }
    match (&task.git.worktree, &task.git.launcher) {
        (Some(p), Some(l)) if a.run.launcher_id.as_ref() == Some(l) => PathBuf::from(p),
        _ => worktrees_dir.join(&a.project.name).join(format!("{}-{}", task.id.short(), slugify(&task.title))),
    }
}

impl Workspace {
    /// Prepares the working tree of an assignment: found as it was, or created
    /// (from the branch's last pushed commit and checkpoint when it has them, else
    /// from the base with the prerequisites merged in), the commits it needs
    /// fetched into the mirror first. Whether it was created now.
    pub(crate) async fn prepare(
        mirrors: &Mirrors,
        worktrees_dir: &Path,
        a: &Assignment,
    ) -> Result<(Workspace, bool, Notes), String> {
        let task = &a.task;
        let branch = task.git.branch.clone().unwrap_or_else(|| task_branch(&task.id, &task.title));
        let base_branch = task.git.base_branch.clone().unwrap_or_else(|| a.project.default_branch.clone());
        let base_commit =
            task.git.base_commit.clone().or_else(|| a.base_commit.clone()).ok_or_else(|| {
                format!("the coordinator did not say which commit of {base_branch} the task starts from")
            })?;
        let path = path_of(worktrees_dir, a);
        let head = task.git.head.clone().filter(|h| *h != base_commit);
        let checkpoint = task.git.checkpoint.clone();
        let prerequisites: Vec<(String, String)> =
            a.prerequisites.iter().filter_map(|p| Some((p.branch.clone()?, p.head.clone()?))).collect();
        // A new branch from the default branch's head, with nothing to merge in:
        // a spare made ahead of time, moved into place.
        let pooled = a.project.settings.worktree_pool.unwrap_or(crate::spares::DEFAULT_POOL) > 0
            && base_branch == a.project.default_branch;
        let plain = head.is_none() && checkpoint.is_none() && prerequisites.is_empty();
        if pooled
            && plain
            && !path.join(".git").exists()
            && mirrors.looks_whole(&a.project.id)
            && let Some(prepared) = mirrors.spares.take(&a.project.id, &base_commit, &path, &branch).await
        {
            mirrors.keep_spares(&a.project, worktrees_dir, &base_commit);
            let workspace =
                Workspace { project: a.project.id.clone(), path, branch, base_branch, base_commit, pushed: None };
            return Ok((workspace, prepared.created, Vec::new()));
        }
        // A run that must merge the base's new head (a conflict to resolve) needs
        // it in the mirror, whose objects the worktree borrows.
        let base_wanted = a.base_head.clone().unwrap_or_else(|| base_commit.clone());
        let mut wanted = vec![Wanted { refname: format!("refs/heads/{base_branch}"), commit: base_wanted }];
        if !path.join(".git").exists() {
            if let Some(h) = &head {
                wanted.push(Wanted { refname: format!("refs/heads/{branch}"), commit: h.clone() });
            }
            if let Some(c) = &checkpoint {
                wanted.push(Wanted { refname: format!("refs/baton/checkpoints/{}", task.id), commit: c.clone() });
            }
            for p in a.prerequisites.iter().filter(|_| head.is_none()) {
                if let (Some(b), Some(h)) = (&p.branch, &p.head) {
                    wanted.push(Wanted { refname: format!("refs/heads/{b}"), commit: h.clone() });
                }
            }
        }
        let (mirror, notes) = mirrors.ready(&a.project, &wanted).await?;
        let objects = mirror.join("objects");
        let plan = Plan {
            path: &path,
            objects: &objects,
            branch: &branch,
            base_commit: &base_commit,
            head: head.as_deref(),
            checkpoint: checkpoint.as_deref(),
            prerequisites: &prerequisites,
        };
        let prepared = worktree::prepare(&plan).await.map_err(|e| format!("could not prepare the worktree: {e}"))?;
        if pooled {
            mirrors.keep_spares(&a.project, worktrees_dir, &base_commit);
        }
        let workspace =
            Workspace { project: a.project.id.clone(), path, branch, base_branch, base_commit, pushed: head };
        Ok((workspace, prepared.created, notes))
    }

    /// The worktrees of a workset task's other projects, prepared like the
    /// task's own (each from its project's mirror), and whether each was made now.
    pub(crate) async fn prepare_members(
        mirrors: &Mirrors,
        worktrees_dir: &Path,
        a: &Assignment,
    ) -> Result<(Vec<(Member, bool)>, Notes), String> {
        let Some(workset) = &a.task.workset else { return Ok((Vec::new(), Vec::new())) };
        if workset.parts.len() != a.workset.len() + 1 {
            return Err(format!(
                "the coordinator could not prepare every project of workset {} (see its log); the task starts again later",
                workset.name
            ));
        }
        let mut members = Vec::new();
        let mut notes = Vec::new();
        for checkout in &a.workset {
            let m = member_assignment(a, checkout);
            let (workspace, created, n) = Workspace::prepare(mirrors, worktrees_dir, &m).await?;
            notes.extend(n);
            let member = Member {
                workspace,
                name: checkout.project.name.clone(),
                checks: checkout.project.settings.checks.clone(),
                last_checkpoint: None,
            };
            members.push((member, created));
        }
        Ok((members, notes))
    }

    /// The other projects' worktrees an earlier start prepared (a re-attached run).
    pub(crate) fn members_of(worktrees_dir: &Path, a: &Assignment) -> Vec<Member> {
        a.workset
            .iter()
            .map(|checkout| {
                let m = member_assignment(a, checkout);
                let branch = m.task.git.branch.clone().unwrap_or_default();
                Member {
                    workspace: Workspace {
                        project: checkout.project.id.clone(),
                        path: path_of(worktrees_dir, &m),
                        branch,
                        base_branch: m.task.git.base_branch.clone().unwrap_or_default(),
                        base_commit: checkout.base_commit.clone(),
                        pushed: checkout.head.clone(),
                    },
                    name: checkout.project.name.clone(),
                    checks: checkout.project.settings.checks.clone(),
                    last_checkpoint: None,
                }
            })
            .collect()
    }

    /// The workspace an earlier start prepared (for a re-attached run).
    pub(crate) fn of(a: &Assignment) -> Option<Workspace> {
        let git = &a.task.git;
        Some(Workspace {
            project: a.project.id.clone(),
            path: PathBuf::from(git.worktree.as_ref()?),
            branch: git.branch.clone()?,
            base_branch: git.base_branch.clone().unwrap_or_else(|| a.project.default_branch.clone()),
            base_commit: git.base_commit.clone()?,
            pushed: git.head.clone(),
        })
    }

    /// The git state to report at the start of a run.
    pub(crate) fn started(&self, launcher: Option<baton_core::ids::LauncherId>) -> TaskGit {
        TaskGit {
            branch: Some(self.branch.clone()),
            base_branch: Some(self.base_branch.clone()),
            base_commit: Some(self.base_commit.clone()),
            worktree: Some(self.path.to_string_lossy().into_owned()),
            launcher,
            ..TaskGit::default()
        }
    }

    /// Commits what the agent left uncommitted (a WIP commit saying why), pushes
    /// the branch to the coordinator, then describes it. Nothing here may lose
    /// work: a failure leaves the work in the working tree, says so, and the
    /// description is as complete as it can be. `git` is the task's repository
    /// inside the agent's sandbox.
    pub(crate) async fn save(
        &mut self,
        git: &Git,
        mirrors: &Mirrors,
        task: &TaskId,
        why: &str,
    ) -> (TaskGit, Option<String>) {
        let mut report = self.started(None);
        report.worktree = Some(self.path.to_string_lossy().into_owned());
        if !self.path.join(".git").exists() {
            tracing::warn!(task = %task, worktree = %self.path.display(), "the worktree is gone");
            return (report, Some("the task's worktree is gone".into()));
        }
        let message = format!(
            "WIP: work left uncommitted by baton task {task} ({why})\n\nCommitted by Baton when the agent's process ended, so nothing is lost."
        );
        match worktree::commit_wip(git, &message).await {
            Ok(committed) => report.wip_committed = committed,
            Err(e) => tracing::error!(task = %task, error = %e, "could not commit the agent's uncommitted work"),
        }
        let problem = match self.push(git, mirrors, task).await {
            Ok(head) => {
                let mirror = mirrors.path(&self.project);
                match worktree::summarize(&mirror, &self.base_commit, &head).await {
                    Ok(s) => {
                        report.head = Some(s.head);
                        report.commits = s.commits;
                        report.files_changed = s.files;
                        report.diff_stat = s.stat;
                    }
                    Err(e) => tracing::warn!(task = %task, error = %e, "could not describe the branch"),
                }
                None
            }
            Err(e) => {
                tracing::error!(task = %task, error = %e, "could not push the task's branch");
                Some(format!(
                    "the task's branch could not be pushed to the coordinator (its work is kept in {}): {e}",
                    self.path.display()
                ))
            }
        };
        let path = self.path.clone();
        report.disk_bytes = tokio::task::spawn_blocking(move || worktree::disk_usage(&path)).await.ok();
        (report, problem)
    }

    /// Brings the task's branch into the mirror and pushes it to the coordinator
    /// (a fast-forward of what was pushed before: when the agent rewrote its
    /// history, a bridge commit keeps both). The commit pushed.
    async fn push(&mut self, git: &Git, mirrors: &Mirrors, task: &TaskId) -> Result<String, String> {
        let local = format!("refs/heads/{}", self.branch);
        let work = format!("refs/baton/work/{task}");
        let mut head = mirrors.take(&self.project, &self.path, &local, &work).await.map_err(|e| e.to_string())?;
        let mirror = mirrors.path(&self.project);
        if let Some(old) = self.pushed.clone()
            && old != head
            && !transport::is_ancestor(&mirror, &old, &head).await.map_err(|e| e.to_string())?
        {
            let message = format!(
                "Baton: the agent of task {task} rewrote its branch\n\nThis commit has the branch's new files, and both its earlier and its rewritten history, so the branch only moves forward."
            );
            let bridge = transport::bridge(&mirror, &old, &head, &message).await.map_err(|e| e.to_string())?;
            git.run(["update-ref", local.as_str(), bridge.as_str(), head.as_str()]).await.map_err(|e| e.to_string())?;
            head = bridge;
        }
        if self.pushed.as_deref() != Some(head.as_str()) {
            let refspec = format!("{head}:refs/heads/{}", self.branch);
            mirrors.push(&self.project, &[refspec]).await.map_err(|e| e.to_string())?;
            self.pushed = Some(head.clone());
        }
        Ok(head)
    }

    /// Takes a snapshot of the working tree and pushes it as the task's
    /// checkpoint, unless nothing changed since `last` (HEAD and tree). The new
    /// checkpoint's commit, when one was pushed.
    pub(crate) async fn checkpoint(
        &self,
        git: &Git,
        mirrors: &Mirrors,
        task: &TaskId,
        last: &mut Option<(String, String)>,
    ) -> Result<Option<String>, String> {
        let (commit, tree) = worktree::snapshot(git).await.map_err(|e| e.to_string())?;
        let parent = git.resolve("HEAD").await.map_err(|e| e.to_string())?.unwrap_or_default();
        if last.as_ref().is_some_and(|(p, t)| *p == parent && *t == tree) {
            return Ok(None);
        }
        let into = format!("refs/baton/checkpoints/{task}");
        let taken =
            mirrors.take(&self.project, &self.path, "refs/baton/checkpoint", &into).await.map_err(|e| e.to_string())?;
        if taken != commit {
            return Err("the checkpoint changed while it was taken".into());
        }
        mirrors.push(&self.project, &[format!("+{commit}:{into}")]).await.map_err(|e| e.to_string())?;
        *last = Some((parent, tree));
        Ok(Some(commit))
    }

    /// Files the worktree changes against its base, committed or not.
    pub(crate) async fn changed_files(&self, git: &Git) -> Option<Vec<String>> {
        worktree::changed_files(git, &self.base_commit).await.ok()
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
