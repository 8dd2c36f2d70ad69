//! Launchers: registration, heartbeats, and going offline.

use baton_core::api::{Heartbeat, RegisterLauncher};
use baton_core::ids::LauncherId;
use baton_core::model::Launcher;
use baton_core::status::LauncherStatus;
use baton_core::time::Timestamp;
use baton_store::StoreTx;

use super::Effects;
use super::emit::save_launcher;
use super::runs::lose_runs;
use super::tasks::refresh_unavailable;
use crate::auth::Caller;
use crate::error::AppError;

/// Registers a launcher, or welcomes back one that restarted with its old id.
pub fn register(tx: &mut dyn StoreTx, caller: &Caller, req: RegisterLauncher) -> Result<Launcher, AppError> {
    if req.slots == 0 || req.slots > 1024 {
        return Err(AppError::invalid("`slots` must be between 1 and 1024"));
    }
    if req.name.trim().is_empty() || req.name.len() > 128 {
        return Err(AppError::invalid("`name` must be 1 to 128 characters"));
    }
    let id = match (&req.id, &caller.subject) {
        (Some(id), Some(subject)) if id.as_str() != subject => {
            return Err(AppError::forbidden("this launcher token belongs to another launcher"));
        }
        (Some(id), _) => id.clone(),
        (None, Some(subject)) => LauncherId::parse(subject)?,
        (None, None) => LauncherId::generate(),
    };
    let now = Timestamp::now();
    let launcher = match tx.launcher(&id)? {
        Some(mut l) => {
            l.name = req.name;
            l.hostname = req.hostname;
            l.version = req.version;
            l.slots = req.slots;
            l.executors = req.executors;
            l.programs.clear();
            l.status = LauncherStatus::Online;
            l.last_seen = now;
            l
        }
        None => Launcher {
            id,
            name: req.name,
            hostname: req.hostname,
            version: req.version,
            slots: req.slots,
            executors: req.executors,
            status: LauncherStatus::Online,
            running: Vec::new(),
            last_seen: now,
            registered_at: now,
            programs: Default::default(),
        },
    };
    save_launcher(tx, &launcher)?;
    refresh_unavailable(tx)?;
    Ok(launcher)
}

/// How long a claimed run may be missing from its launcher's heartbeats before it
/// is considered lost (its poll answer never arrived).
const UNDELIVERED_MS: i64 = 60_000;

/// Records a heartbeat: the launcher is online and supervising `running`. A run
/// the coordinator handed to it long ago that it does not name never reached it
/// (the poll's answer was lost): it is marked lost, which queues it again.
pub fn heartbeat(tx: &mut dyn StoreTx, fx: &mut Effects, id: &LauncherId, hb: Heartbeat) -> Result<Launcher, AppError> {
    let mut launcher = tx.launcher(id)?.ok_or_else(|| AppError::not_found("launcher", id))?;
    let now = Timestamp::now();
    let (undelivered, keep): (Vec<_>, Vec<_>) = tx.active_runs_of_launcher(id)?.into_iter().partition(|r| {
        !hb.running.contains(&r.id) && r.claimed_at.is_some_and(|at| now.millis_since(at) > UNDELIVERED_MS)
    });
    if !undelivered.is_empty() {
        let keep: Vec<_> = keep.into_iter().map(|r| r.id).collect();
        lose_runs(tx, fx, id, &keep, "the run never reached its launcher")?;
    }
    let was_offline = launcher.status == LauncherStatus::Offline;
    let mut changed = was_offline || launcher.running != hb.running;
    if let Some(programs) = hb.programs {
        changed = true;
        launcher.programs = programs;
    }
    launcher.status = LauncherStatus::Online;
    launcher.running = hb.running;
    launcher.last_seen = Timestamp::now();
    if changed {
        save_launcher(tx, &launcher)?;
    } else {
        tx.put_launcher(&launcher)?;
    }
    Ok(launcher)
}

/// A launcher stopped answering (or said goodbye): it goes offline and its
/// unfinished runs are lost, which restarts them elsewhere by policy.
pub fn mark_offline(tx: &mut dyn StoreTx, fx: &mut Effects, id: &LauncherId, why: &str) -> Result<u32, AppError> {
    let Some(mut launcher) = tx.launcher(id)? else {
        return Ok(0);
    };
    if launcher.status == LauncherStatus::Online {
        launcher.status = LauncherStatus::Offline;
        launcher.running.clear();
        save_launcher(tx, &launcher)?;
    }
    let lost = lose_runs(tx, fx, id, &[], why)?;
    refresh_unavailable(tx)?;
    Ok(lost)
}
