//! Launchers: registration, heartbeats, and going offline.

use std::collections::HashMap;

use baton_core::agent::ExecutorKind;
use baton_core::api::{Assignment, Heartbeat, OrderDone, RegisterLauncher, StopOrder};
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::{LauncherId, RunId, TaskId};
use baton_core::model::{Launcher, LauncherOrder, OrderKind, Run};
use baton_core::status::LauncherStatus;
use baton_core::time::Timestamp;
use baton_store::StoreTx;
use serde_json::json;

use super::Effects;
use super::emit::{save_launcher, save_task};
use super::runs::{claim_for, lose_runs, redeliver};
use super::tasks::refresh_unavailable;
use crate::tokens::Caller;
use crate::{Config, Error};

/// Registers a launcher, or welcomes back one that restarted with its old id. A
/// launcher token is bound to the first launcher that registers with it.
pub fn register(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    req: RegisterLauncher,
) -> Result<Launcher, Error> {
    if req.slots == 0 || req.slots > 1024 {
        return Err(Error::invalid("`slots` must be between 1 and 1024"));
    }
    if req.name.trim().is_empty() || req.name.len() > 128 {
        return Err(Error::invalid("`name` must be 1 to 128 characters"));
    }
    for label in &req.labels {
        baton_core::names::validate_label(label)?;
    }
    let id = match (&req.id, &caller.subject) {
        (Some(id), Some(subject)) if id.as_str() != subject => {
            return Err(Error::forbidden("this launcher token belongs to another launcher"));
        }
        (Some(id), _) => id.clone(),
        (None, Some(subject)) => LauncherId::parse(subject)?,
        (None, None) => LauncherId::generate(),
    };
    if caller.subject.is_none()
        && let Some(mut token) = tx.token(&caller.token_hash)?
    {
        token.subject = Some(id.to_string());
        tx.put_token(&token)?;
        fx.new_tokens.push(token);
    }
    let now = Timestamp::now();
    let launcher = match tx.launcher(&id)? {
        Some(mut l) => {
            l.name = req.name;
            l.hostname = req.hostname;
            l.version = req.version;
            l.slots = req.slots;
            l.executors = req.executors;
            l.programs.clear();
            l.labels = req.labels;
            l.sandbox = req.sandbox;
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
            labels: req.labels,
            draining: false,
            sandbox: req.sandbox,
        },
    };
    save_launcher(tx, &launcher)?;
    // A launcher that starts again knows no stop order yet: each is sent anew.
    for mut run in tx.active_runs_of_launcher(&launcher.id)? {
        if run.stop_sent_at.take().is_some() {
            tx.put_run(&run)?;
        }
    }
    refresh_unavailable(tx)?;
    Ok(launcher)
}

/// How long before an unanswered stop order is sent again.
const STOP_RESEND_MS: i64 = 15_000;

/// How stale a launcher's `last_seen` may be before a request of it refreshes it
/// (so a busy launcher does not rewrite its row on every request).
const SEEN_REFRESH_MS: i64 = 1_000;

/// Records that a launcher was heard from (liveness lives in the database, so
/// whichever replica runs the timers sees it).
pub fn seen(tx: &mut dyn StoreTx, id: &LauncherId) -> Result<(), Error> {
    if let Some(mut launcher) = tx.launcher(id)? {
        heard(tx, &mut launcher)?;
    }
    Ok(())
}

/// [`seen`], on the record at hand.
fn heard(tx: &mut dyn StoreTx, launcher: &mut Launcher) -> Result<(), Error> {
    let now = Timestamp::now();
    if now.millis_since(launcher.last_seen) >= SEEN_REFRESH_MS {
        launcher.last_seen = now;
        tx.put_launcher(launcher)?;
    }
    Ok(())
}

/// What one claim of a launcher's poll hands it.
pub struct Polled {
    /// Runs to start: handed again (their answer was lost), then newly claimed.
    pub runs: Vec<Assignment>,
    pub stops: Vec<StopOrder>,
    pub orders: Vec<LauncherOrder>,
    /// The executors it runs, and its slots free after this claim.
    pub executors: Vec<ExecutorKind>,
    pub free: u32,
}

/// A launcher's poll, once: it is heard from; runs it was given and never got
/// are handed again (`has` names those it has, when it said); it claims what
/// it may; and it gets its due stops and orders. Its active runs are read
/// once, for all of these (a poll that finds nothing queued is four
/// statements).
pub fn poll(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    id: &LauncherId,
    has: Option<&[RunId]>,
    config: &Config,
    waiting: &HashMap<LauncherId, Option<u32>>,
) -> Result<Polled, Error> {
    let mut launcher = tx.launcher(id)?.ok_or_else(|| Error::not_found("launcher", id))?;
    if launcher.status == LauncherStatus::Offline {
        return Err(Error::conflict(format!("launcher {id} is offline; register again")));
    }
    heard(tx, &mut launcher)?;
    let active = tx.active_runs_of_launcher(id)?;
    let mut runs = match has {
        Some(has) => redeliver(tx, fx, id, &active, has, config)?,
        None => Vec::new(),
    };
    let claimed = claim_for(tx, fx, &launcher, active.len() as u32, config, waiting)?;
    let free = launcher.slots.saturating_sub(active.len() as u32 + claimed.len() as u32);
    runs.extend(claimed);
    let stops = due_stops(tx, active)?;
    let orders = due_orders(tx, id)?;
    Ok(Polled { runs, stops, orders, executors: launcher.executors, free })
}

/// The stop orders to send a launcher now, from its active runs: for each asked
/// to stop, unless the order went out recently (it is repeated until the run ends).
fn due_stops(tx: &mut dyn StoreTx, active: Vec<Run>) -> Result<Vec<StopOrder>, Error> {
    let now = Timestamp::now();
    let mut stops = Vec::new();
    for mut run in active {
        let Some(reason) = run.stop_reason.clone() else { continue };
        if run.stop_sent_at.is_some_and(|at| now.millis_since(at) < STOP_RESEND_MS) {
            continue;
        }
        run.stop_sent_at = Some(now);
        tx.put_run(&run)?;
        stops.push(StopOrder { run_id: run.id, reason });
    }
    Ok(stops)
}

/// Takes launchers silent since before `cutoff` offline (their runs are lost and
/// restarted by policy); each with how many runs it lost. Checked inside the
/// transaction, so a heartbeat that just arrived through another replica counts.
pub fn expire_silent(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    cutoff: Timestamp,
) -> Result<Vec<(LauncherId, u32)>, Error> {
    let silent: Vec<Launcher> =
        tx.launchers()?.into_iter().filter(|l| l.status == LauncherStatus::Online && l.last_seen < cutoff).collect();
    let mut out = Vec::new();
    for l in silent {
        let why = format!("launcher {} stopped sending heartbeats", l.id);
        let lost = mark_offline(tx, fx, &l.id, &why)?;
        let data = json!({
            "launcher": { "id": l.id, "name": l.name, "host": l.hostname, "last_seen": l.last_seen },
            "reason": why,
            "lost_runs": lost,
            "link": "/#/agents",
        });
        crate::outbox::tell(tx, baton_core::webhook::WebhookEvent::LauncherOffline, None, data, &[])?;
        out.push((l.id, lost));
    }
    Ok(out)
}

/// How long a claimed run may be missing from its launcher's heartbeats before it
/// is considered lost (its poll answer never arrived).
const UNDELIVERED_MS: i64 = 60_000;

/// Records a heartbeat: the launcher is online and supervising `running`. A run
/// the coordinator handed to it long ago that it does not name never reached it
/// (the poll's answer was lost): it is marked lost, which queues it again.
pub fn heartbeat(tx: &mut dyn StoreTx, fx: &mut Effects, id: &LauncherId, hb: Heartbeat) -> Result<Launcher, Error> {
    let mut launcher = tx.launcher(id)?.ok_or_else(|| Error::not_found("launcher", id))?;
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

/// Drains a launcher (no new work; its running agents finish) or undrains it.
/// `id` is its id or its name.
pub fn set_draining(tx: &mut dyn StoreTx, fx: &mut Effects, id: &str, draining: bool) -> Result<Launcher, Error> {
    let mut launcher = match LauncherId::parse(id).ok().and_then(|lid| tx.launcher(&lid).transpose()) {
        Some(l) => l?,
        None => {
            let mut named: Vec<Launcher> = tx.launchers()?.into_iter().filter(|l| l.name == id).collect();
            match named.len() {
                1 => named.remove(0),
                0 => return Err(Error::not_found("launcher", id)),
                _ => return Err(Error::invalid(format!("{} launchers are named {id}; use an id", named.len()))),
            }
        }
    };
    if launcher.draining != draining {
        launcher.draining = draining;
        save_launcher(tx, &launcher)?;
        refresh_unavailable(tx)?;
        fx.wake.launcher(&launcher.id);
    }
    Ok(launcher)
}

/// How long before an order the launcher has not answered is sent again.
const ORDER_RESEND_MS: i64 = 15_000;

/// A launcher's orders to hand out now: those never sent, or sent long enough
/// ago without an answer (each is marked sent).
pub fn due_orders(tx: &mut dyn StoreTx, id: &LauncherId) -> Result<Vec<LauncherOrder>, Error> {
    let now = Timestamp::now();
    let mut due = Vec::new();
    for mut order in tx.orders_of_launcher(id)? {
        if order.sent_at.is_some_and(|at| now.millis_since(at) < ORDER_RESEND_MS) {
            continue;
        }
        order.sent_at = Some(now);
        tx.put_order(&order)?;
        due.push(order);
    }
    Ok(due)
}

/// A launcher answered an order: it is done (or refused), and what it means
/// follows (a removed worktree is forgotten; either way the task's timeline says).
pub fn order_done(tx: &mut dyn StoreTx, id: &LauncherId, done: OrderDone) -> Result<(), Error> {
    if !tx.delete_order(id, done.kind, &done.subject)? {
        return Ok(());
    }
    if done.kind != OrderKind::RemoveWorktree {
        return Ok(());
    }
    let task_id = TaskId::parse(&done.subject)?;
    let Some(mut task) = tx.task(&task_id)? else { return Ok(()) };
    let message = match (&done.refused, done.ok) {
        (_, true) => format!("worktree {} removed", task.git.worktree.as_deref().unwrap_or("")),
        (Some(why), false) => format!("worktree kept: {why}"),
        (None, false) => "worktree kept".to_owned(),
    };
    if done.ok {
        task.git.worktree = None;
        task.git.disk_bytes = None;
        task.git.launcher = None;
        task.updated_at = Timestamp::now();
        save_task(tx, &task)?;
    }
    let clean = json!({ "removed": done.ok, "refused": done.refused, "uncommitted": done.uncommitted });
    tx.append_event(
        None,
        None,
        Some(&task.id),
        NewEvent::new(EventKind::Log, json!({ "message": message, "clean": clean })),
    )?;
    Ok(())
}

/// A launcher stopped answering (or said goodbye): it goes offline and its
/// unfinished runs are lost, which restarts them elsewhere by policy.
pub fn mark_offline(tx: &mut dyn StoreTx, fx: &mut Effects, id: &LauncherId, why: &str) -> Result<u32, Error> {
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
