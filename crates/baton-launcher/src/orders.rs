//! Orders from the coordinator besides runs and stops: a checkpoint wanted now
//! (someone asked for a running task's diff), and a worktree to remove (`baton
//! clean`). Each is answered, so the coordinator can forget it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::api::OrderDone;
use baton_core::ids::{ProjectId, RunId, TaskId};
use baton_core::model::{LauncherOrder, OrderKind};

use crate::launcher::Launcher;
use crate::run::Order;
use crate::sandbox::{Jail, Places};

impl Launcher {
    /// Carries out an order and answers it.
    pub(crate) async fn carry_out(self, order: LauncherOrder) {
        let done = match order.kind {
            OrderKind::Checkpoint => match self.ask_checkpoint(&order.subject) {
                // The actor reports the checkpoint itself, which answers the order.
                true => return,
                false => refused(&order, "the run is not running on this launcher"),
            },
            OrderKind::RemoveWorktree => self.remove_worktree(&order).await,
        };
        let Some(id) = self.launcher_id() else { return };
        if let Err(e) = self.client.order_done(&id, &done).await {
            tracing::warn!(error = %e, kind = order.kind.as_str(), subject = %order.subject, "could not answer an order");
        }
    }

    /// Passes a checkpoint order to the run's actor; whether it has one.
    fn ask_checkpoint(&self, run: &str) -> bool {
        let Ok(run) = RunId::parse(run) else { return false };
        self.runs
            .lock()
            .ok()
            .and_then(|r| r.get(&run).map(|a| a.orders.send(Order::Checkpoint).is_ok()))
            .unwrap_or(false)
    }

    /// Removes a task's worktree and its agent's home, unless it has uncommitted
    /// changes (asked inside a sandbox: the repository is the agent's) and the
    /// order does not force it. Only ever a directory under this launcher's
    /// worktrees.
    async fn remove_worktree(&self, order: &LauncherOrder) -> OrderDone {
        let path = PathBuf::from(order.data.get("path").and_then(|p| p.as_str()).unwrap_or(""));
        let force = order.data.get("force").and_then(|f| f.as_bool()).unwrap_or(false);
        let Ok(task) = TaskId::parse(&order.subject) else { return refused(order, "not a task id") };
        if !inside(&self.config.worktrees_dir, &path) {
            return refused(order, &format!("{} is not a worktree of this launcher", path.display()));
        }
        if !force && path.join(".git").exists() {
            let project = order.data.get("project").and_then(|p| p.as_str()).and_then(|p| ProjectId::parse(p).ok());
            let git = self.inspection_jail(&path, project.as_ref()).git(&path, Arc::new(self.git_env()));
            match baton_git::worktree::uncommitted(&git).await {
                Ok(files) if !files.is_empty() => {
                    return OrderDone {
                        kind: order.kind,
                        subject: order.subject.clone(),
                        ok: false,
                        refused: Some(format!(
                            "it would lose uncommitted changes to {} (use --force to remove it anyway)",
                            files.join(", ")
                        )),
                        uncommitted: files,
                    };
                }
                Ok(_) => {}
                Err(e) => return refused(order, &format!("could not look for uncommitted changes: {e}")),
            }
        }
        if let Err(e) = tokio::fs::remove_dir_all(&path).await
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return refused(order, &format!("could not remove {}: {e}", path.display()));
        }
        let _ = tokio::fs::remove_dir_all(self.config.data_dir.join("homes").join(task.as_str())).await;
        OrderDone { kind: order.kind, subject: order.subject.clone(), ok: true, refused: None, uncommitted: Vec::new() }
    }

    /// A sandbox for reading a worktree Baton does not run an agent in.
    fn inspection_jail(&self, path: &Path, project: Option<&ProjectId>) -> Jail {
        let Some(bwrap) = &self.config.sandbox.bwrap else { return Jail::none(None) };
        let places = Places {
            cwd: path.to_owned(),
            writable: vec![path.to_owned()],
            readable: project.map(|p| self.mirrors.objects(p)).unwrap_or_default(),
            hidden: self.config.hidden.clone(),
            user_home: self.host_env.get("HOME").map(PathBuf::from),
        };
        Jail::bubblewrap(bwrap, &places, &baton_core::sandbox::NetworkPolicy::None, None)
    }

    /// The environment of git commands Baton runs in agents' worktrees.
    pub(crate) fn git_env(&self) -> Vec<(String, String)> {
        self.host_env.iter().filter(|(k, _)| k.as_str() == "PATH").map(|(k, v)| (k.clone(), v.clone())).collect()
    }
}

fn refused(order: &LauncherOrder, why: &str) -> OrderDone {
    OrderDone {
        kind: order.kind,
        subject: order.subject.clone(),
        ok: false,
        refused: Some(why.to_owned()),
        uncommitted: Vec::new(),
    }
}

/// Whether `path` is strictly inside `dir` (no `..`).
fn inside(dir: &Path, path: &Path) -> bool {
    path.is_absolute()
        && path.starts_with(dir)
        && path != dir
        && !path.components().any(|c| matches!(c, std::path::Component::ParentDir))
}
