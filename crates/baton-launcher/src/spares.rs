//! Spare task repositories, made ahead of time: each borrows the mirror's
//! objects and has its files checked out at the head of the project's base
//! branch, with no branch yet. A new task whose branch starts from that commit
//! (no prerequisites, no earlier work) takes one with a rename and two small
//! file writes instead of `git init` and a checkout.
//!
//! A project keeps `worktree_pool` of them (default 2; 0 = none) under
//! `<worktrees>/<project>/.spares/`. They are made again when the base branch
//! moves: checked every [`REFRESH`] against the project's checkout (the embedded
//! launcher) or the mirror, and whenever an assignment names a newer base. A
//! spare at another commit is never handed out. They cost the disk of that many
//! checkouts, and nothing else.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_core::ids::ProjectId;
use baton_core::model::Project;
use baton_git::Git;
use baton_git::worktree::{self, Prepared};

/// How often a project's spares are checked against its base branch.
const REFRESH: Duration = Duration::from_secs(2);

/// How long a refill waits: the agent that just took a spare starts first,
/// without `git` processes made beside it competing for the CPU.
const REFILL_AFTER: Duration = Duration::from_millis(150);

/// The default `worktree_pool`.
pub(crate) const DEFAULT_POOL: u32 = 2;

/// A spare: where it is and the commit it has checked out.
#[derive(Debug, Clone)]
struct Spare {
    path: PathBuf,
    commit: String,
}

/// What a project's pool should hold.
#[derive(Debug, Clone)]
struct Want {
    project: Project,
    /// Where the spares live.
    dir: PathBuf,
    /// The objects they borrow (the mirror's).
    objects: PathBuf,
    /// Where the base branch's head is read (the checkout, or the mirror).
    heads: PathBuf,
    size: u32,
    /// The newest base commit an assignment named.
    commit: String,
}

/// Every project's spares on this launcher.
#[derive(Default)]
pub(crate) struct Spares {
    ready: Mutex<HashMap<ProjectId, Vec<Spare>>>,
    wants: Mutex<HashMap<ProjectId, Want>>,
    /// Projects being filled now (one filler each).
    filling: Mutex<HashSet<ProjectId>>,
    /// Projects whose refresh loop runs.
    watched: Mutex<HashSet<ProjectId>>,
    /// A number for each new spare's directory.
    counter: std::sync::atomic::AtomicU64,
}

/// The spares' directory of a project.
fn dir_of(worktrees_dir: &Path, project: &Project) -> PathBuf {
    worktrees_dir.join(&project.name).join(".spares")
}

impl Spares {
    /// Takes a spare at `commit` and makes it the task's working tree at `path`
    /// on `branch`; `None` when there is none at that commit (the slow path
    /// then), or when moving it failed (it is dropped).
    pub(crate) async fn take(&self, project: &ProjectId, commit: &str, path: &Path, branch: &str) -> Option<Prepared> {
        let spare = {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            let list = ready.get_mut(project)?;
            let i = list.iter().position(|s| s.commit == commit)?;
            list.swap_remove(i)
        };
        match worktree::adopt_spare(&spare.path, path, branch, commit).await {
            Ok(prepared) => Some(prepared),
            Err(e) => {
                tracing::warn!(spare = %spare.path.display(), error = %e, "a spare worktree could not be used");
                let _ = std::fs::remove_dir_all(&spare.path);
                None
            }
        }
    }

    /// Keeps the project's pool at its size, at `commit` or newer (in the
    /// background), and watches its base branch from now on.
    pub(crate) fn keep(
        self: &Arc<Self>,
        project: &Project,
        worktrees_dir: &Path,
        objects: PathBuf,
        heads: PathBuf,
        commit: &str,
    ) {
        let size = project.settings.worktree_pool.unwrap_or(DEFAULT_POOL);
        let want = Want {
            project: project.clone(),
            dir: dir_of(worktrees_dir, project),
            objects,
            heads,
            size,
            commit: commit.to_owned(),
        };
        self.wants.lock().unwrap_or_else(|e| e.into_inner()).insert(project.id.clone(), want);
        if size > 0 && self.watched.lock().unwrap_or_else(|e| e.into_inner()).insert(project.id.clone()) {
            let me = Arc::clone(self);
            let id = project.id.clone();
            tokio::spawn(async move { me.watch(id).await });
        }
        self.fill(&project.id);
    }

    /// Starts filling a project's pool unless it is being filled.
    fn fill(self: &Arc<Self>, project: &ProjectId) {
        if !self.filling.lock().unwrap_or_else(|e| e.into_inner()).insert(project.clone()) {
            return;
        }
        let me = Arc::clone(self);
        let project = project.clone();
        tokio::spawn(async move {
            tokio::time::sleep(REFILL_AFTER).await;
            me.fill_now(&project).await;
            me.filling.lock().unwrap_or_else(|e| e.into_inner()).remove(&project);
        });
    }

    async fn fill_now(&self, project: &ProjectId) {
        let Some(want) = self.wants.lock().unwrap_or_else(|e| e.into_inner()).get(project).cloned() else { return };
        let base = want.project.default_branch.clone();
        // The branch's head now, when it is known here; else the newest base an
        // assignment named.
        let commit = match Git::new(&want.heads).branch_head(&base).await {
            Ok(Some(head)) => head,
            _ => want.commit.clone(),
        };
        let stale: Vec<Spare> = {
            let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
            let list = ready.entry(project.clone()).or_default();
            let (keep, stale): (Vec<Spare>, Vec<Spare>) = list.drain(..).partition(|s| s.commit == commit);
            *list = keep;
            list.truncate(want.size as usize);
            stale
        };
        for s in stale {
            let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&s.path)).await;
        }
        loop {
            let have = self.ready.lock().unwrap_or_else(|e| e.into_inner()).get(project).map_or(0, Vec::len);
            if have >= want.size as usize {
                return;
            }
            let n = self.counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let path = want.dir.join(format!("{}-{n}", std::process::id()));
            if let Err(e) = worktree::make_spare(&path, &want.objects, &commit).await {
                tracing::warn!(project = %want.project.name, error = %e, "could not make a spare worktree");
                return;
            }
            let spare = Spare { path, commit: commit.clone() };
            self.ready.lock().unwrap_or_else(|e| e.into_inner()).entry(project.clone()).or_default().push(spare);
        }
    }

    /// Makes the project's spares again whenever its base branch moves.
    async fn watch(self: Arc<Self>, project: ProjectId) {
        loop {
            tokio::time::sleep(REFRESH).await;
            let Some(want) = self.wants.lock().unwrap_or_else(|e| e.into_inner()).get(&project).cloned() else {
                return;
            };
            let head = Git::new(&want.heads).branch_head(&want.project.default_branch).await.ok().flatten();
            let stale = {
                let ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
                let list = ready.get(&project).map(Vec::as_slice).unwrap_or_default();
                list.len() < want.size as usize || head.as_ref().is_some_and(|h| list.iter().any(|s| s.commit != *h))
            };
            if stale {
                self.fill(&project);
            }
        }
    }

    /// Removes spares left by launcher processes that are gone (named
    /// `<pid>-<n>`; nothing says what they hold); they are made again on demand.
    pub(crate) fn clear_leftovers(worktrees_dir: &Path) {
        for project in std::fs::read_dir(worktrees_dir).into_iter().flatten().flatten() {
            for spare in std::fs::read_dir(project.path().join(".spares")).into_iter().flatten().flatten() {
                let name = spare.file_name().to_string_lossy().into_owned();
                let pid = name.split('-').next().unwrap_or_default();
                if pid.is_empty() || !Path::new("/proc").join(pid).exists() || pid == std::process::id().to_string() {
                    let _ = std::fs::remove_dir_all(spare.path());
                }
            }
        }
    }
}
