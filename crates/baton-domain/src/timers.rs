//! The timers, on one replica at a time.
//!
//! Some things happen because time passed, not because a request came: a
//! launcher stops sending heartbeats, a retry's backoff ends, a run outlives its
//! timeout, the scheduler beats as the lead of projects with work to do; and the
//! merge queue must have one worker. These run on the replica that holds the
//! `timers` lease in the store. The holder renews it every [`RENEW`]; the others
//! try to take it every [`TICK`], and can once it has gone [`LEASE_TTL`] (on the
//! database's clock) without renewal, so a dead holder is replaced within
//! `LEASE_TTL + TICK`. A holder that cannot renew steps down before its lease can
//! have passed to another.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use baton_core::Timestamp;
use baton_core::model::LeadHeartbeat;
use baton_core::status::{LauncherStatus, RunStatus, TaskStatus};

use crate::state::AppState;
use crate::{Error, scheduler, transact};

/// The lease's name.
const LEASE: &str = "timers";

/// How long the lease lasts without renewal.
const LEASE_TTL: Duration = Duration::from_secs(6);

/// How often the holder renews it.
const RENEW: Duration = Duration::from_secs(2);

/// How often the timers look (and the others try for the lease).
const TICK: Duration = Duration::from_secs(1);

/// How long the first answer to a request made under an `Idempotency-Key` is kept.
pub const IDEMPOTENCY_KEEP: Duration = Duration::from_secs(24 * 3600);

/// How many ticks between the scheduler's own lead heartbeats.
const SCHEDULER_BEAT_TICKS: u64 = 30;

/// How many ticks between looks for backoffs that ended (the replica that queued
/// a retry wakes launchers at its end itself; this is for when it died).
const BACKOFF_TICKS: u64 = 3;

/// How many ticks between looks for runs past their timeout.
const OVERDUE_TICKS: u64 = 5;

/// How many ticks between samples of the queue's depth for the hourly charts.
const QUEUE_TICKS: u64 = 30;

/// How many ticks between looks at whether a project's lead went silent.
const LEAD_TICKS: u64 = 10;

/// How many ticks between passes of output retention (when it is on).
const RETAIN_TICKS: u64 = 5;

/// What the timers remember between ticks.
struct Timers {
    /// Whether each project's lead was stale at the last look (a lead that turns
    /// stale is told of once; the first look after taking the lease only notes).
    leads: std::collections::HashMap<baton_core::ids::ProjectId, bool>,
    /// When this replica took the lease (launchers silent since before then get
    /// a full timeout from it: their heartbeats may have gone to a replica that
    /// died).
    since: Timestamp,
    /// When the backoffs were last looked at.
    checked: Timestamp,
    /// The last error keeping each project's lead (told once).
    lead_errors: std::collections::HashMap<baton_core::ids::ProjectId, String>,
    /// Where output retention is among the waiting sessions (none while a pass
    /// runs, on a task of its own).
    retention: Option<crate::retention::Cursor>,
    /// A pass of output retention in progress, which gives the cursor back.
    retaining: Option<tokio::task::JoinHandle<crate::retention::Cursor>>,
    ticks: u64,
}

/// The scheduler's own heartbeat, as the lead of every project that has work
/// still to do (seed 000's orchestrator beat while it had work, and exited when
/// it was done).
async fn beat(state: &Arc<AppState>) {
    let retention = state.config.heartbeat_retention.as_millis() as i64;
    let result = state
        .store
        .write(move |tx| {
            let now = baton_core::Timestamp::now();
            tx.prune_heartbeats(now.plus_millis(-retention))?;
            tx.prune_idempotent_answers(now.plus_millis(-(IDEMPOTENCY_KEEP.as_millis() as i64)))?;
            for project in tx.projects()? {
                let filter = baton_store::TaskFilter {
                    project: Some(project.id.clone()),
                    statuses: vec![
                        TaskStatus::Pending,
                        TaskStatus::AwaitingApproval,
                        TaskStatus::Queued,
                        TaskStatus::Running,
                        TaskStatus::Checking,
                        TaskStatus::Reviewing,
                    ],
                    limit: Some(1),
                    ..Default::default()
                };
                if tx.tasks(&filter)?.is_empty() {
                    continue;
                }
                tx.add_heartbeat(&LeadHeartbeat {
                    project_id: project.id,
                    source: "scheduler".into(),
                    session_key: None,
                    state: serde_json::Value::Null,
                    at: now,
                })?;
            }
            Ok::<_, baton_store::StoreError>(())
        })
        .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, "could not record the scheduler's heartbeat");
    }
}

/// Holds (or waits for) the lease and runs the timers while it is held, for as
/// long as the coordinator runs.
pub async fn run(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut renewed: Option<Instant> = None;
    let mut timers: Option<Timers> = None;
    loop {
        tick.tick().await;
        let due = match (&timers, renewed) {
            (Some(_), Some(at)) => at.elapsed() >= RENEW,
            _ => true,
        };
        if due {
            let (name, holder, ttl) = (LEASE, state.replica.clone(), LEASE_TTL.as_millis() as i64);
            match state.store.write(move |tx| tx.acquire_lease(name, &holder, ttl)).await {
                Ok(Some(_fence)) => {
                    renewed = Some(Instant::now());
                    if timers.is_none() {
                        tracing::info!(replica = %state.replica, "this coordinator runs the timers and the merge queue");
                        let now = Timestamp::now();
                        timers = Some(Timers {
                            leads: Default::default(),
                            since: now,
                            checked: now,
                            lead_errors: Default::default(),
                            retention: Some(Default::default()),
                            retaining: None,
                            ticks: 0,
                        });
                        state.leader.store(true, Ordering::Relaxed);
                        state.merge_work.notify_one();
                    }
                }
                Ok(None) => {
                    if timers.take().is_some() {
                        tracing::warn!("another coordinator took the timers' lease");
                    }
                    state.leader.store(false, Ordering::Relaxed);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not renew the timers' lease");
                    // Step down before the lease can have passed to another.
                    if renewed.is_some_and(|at| at.elapsed() >= LEASE_TTL - RENEW) && timers.take().is_some() {
                        state.leader.store(false, Ordering::Relaxed);
                    }
                }
            }
        }
        if let Some(t) = timers.as_mut() {
            run_timers(&state, t).await;
        }
    }
}

/// Gives the lease up (at a clean stop), so another replica takes it at once.
pub async fn release(state: &Arc<AppState>) {
    if state.leader.swap(false, Ordering::Relaxed) {
        let holder = state.replica.clone();
        let _ = state.store.write(move |tx| tx.release_lease(LEASE, &holder)).await;
    }
}

async fn run_timers(state: &Arc<AppState>, t: &mut Timers) {
    if t.ticks.is_multiple_of(SCHEDULER_BEAT_TICKS) {
        beat(state).await;
    }
    if t.ticks.is_multiple_of(OVERDUE_TICKS) {
        stop_overdue(state).await;
    }
    if t.ticks.is_multiple_of(LEAD_TICKS) {
        watch_leads(state, &mut t.leads).await;
    }
    if t.ticks.is_multiple_of(QUEUE_TICKS) {
        sample_queue(state).await;
    }
    retain_output(state, t).await;
    if t.ticks.is_multiple_of(BACKOFF_TICKS) {
        let now = Timestamp::now();
        wake_after_backoff(state, t.checked, now).await;
        t.checked = now;
    }
    t.ticks += 1;
    expire_silent(state, t.since).await;
    keep_leads(state, &mut t.lead_errors).await;
    fire_schedules(state).await;
}

/// Starts a pass of output retention on a task of its own (its work must not
/// hold the other timers up), unless one still runs.
async fn retain_output(state: &Arc<AppState>, t: &mut Timers) {
    let Some(keep) = state.config.retain_output else { return };
    if let Some(pass) = t.retaining.take_if(|p| p.is_finished()) {
        t.retention = Some(pass.await.unwrap_or_default());
    }
    // Every RETAIN_TICKS, and at once again while a pass left work undone.
    if !t.ticks.is_multiple_of(RETAIN_TICKS) && !t.retention.as_ref().is_some_and(|c| c.more) {
        return;
    }
    let Some(mut cursor) = t.retention.take() else { return };
    let st = Arc::clone(state);
    t.retaining = Some(tokio::spawn(async move {
        match crate::retention::pass(&st, keep, &mut cursor).await {
            Ok(p) if p.archived > 0 => {
                let (archived, scanned, reclaimed_pages) = (p.archived, p.scanned, p.reclaimed);
                tracing::info!(archived, scanned, reclaimed_pages, "archived settled tasks' output");
            }
            Ok(p) if p.scanned > 0 => tracing::debug!(scanned = p.scanned, "looked for settled tasks' output"),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "could not archive settled tasks' output"),
        }
        cursor
    }));
}

/// Fires the schedules that are due, each in a transaction of its own.
async fn fire_schedules(state: &Arc<AppState>) {
    let now = Timestamp::now();
    let Ok(due) = state.store.read(move |r| r.schedules_due(now)).await else { return };
    for s in due.into_iter().filter(|s| !s.paused) {
        let (st, id) = (Arc::clone(state), s.id.clone());
        let fired = transact(state, move |tx, fx| crate::schedules::fire(tx, fx, &id, now, &st.config)).await;
        if let Err(e) = fired {
            tracing::warn!(schedule = %s.id, error = %e, "could not fire a schedule");
        }
    }
}

/// Every project's lead, looked at (each in a transaction of its own): started
/// where the settings want one, revived when its run died, woken when its
/// timer fired, ended at its deadline. An error is logged once per project
/// until it changes.
async fn keep_leads(state: &Arc<AppState>, errors: &mut std::collections::HashMap<baton_core::ids::ProjectId, String>) {
    let cared = state
        .store
        .read(|r| {
            let mut due = Vec::new();
            for p in r.projects()? {
                if crate::leads::needs_care(r, &p)? {
                    due.push(p);
                }
            }
            Ok::<_, crate::Error>(due)
        })
        .await;
    let Ok(projects) = cared else { return };
    for project in projects {
        let (st, id) = (Arc::clone(state), project.id.clone());
        let kept = transact(state, move |tx, fx| crate::leads::reconcile(tx, fx, &id, &st.config)).await;
        match kept {
            Ok(()) => {
                errors.remove(&project.id);
            }
            Err(e) => {
                let text = e.to_string();
                if errors.insert(project.id.clone(), text.clone()).as_ref() != Some(&text) {
                    tracing::warn!(project = %project.name, error = %text, "could not keep the project's lead");
                }
            }
        }
    }
}

/// Records how many tasks wait to start now as this hour's queue depth (the
/// last sample of an hour stays: its depth at its end).
async fn sample_queue(state: &Arc<AppState>) {
    let sampled = state
        .store
        .write(|tx| {
            let queued = tx.count_in_status(TaskStatus::Queued)?;
            tx.set_hourly_queue(scheduler::this_hour(), queued)
        })
        .await;
    if let Err(e) = sampled {
        tracing::warn!(error = %e, "could not sample the queue's depth");
    }
}

/// Launchers silent for longer than the timeout go offline; their runs are lost.
async fn expire_silent(state: &Arc<AppState>, since: Timestamp) {
    let timeout = state.config.launcher_timeout.as_millis() as i64;
    let now = Timestamp::now();
    if now.millis_since(since) <= timeout {
        return;
    }
    let cutoff = now.plus_millis(-timeout);
    // Read first: the write (checked again inside it) only when one is silent.
    let silent = state
        .store
        .read(move |r| {
            let launchers = r.launchers()?;
            Ok::<_, baton_store::StoreError>(
                launchers.iter().any(|l| l.status == LauncherStatus::Online && l.last_seen < cutoff),
            )
        })
        .await;
    if !silent.unwrap_or(false) {
        return;
    }
    match transact(state, move |tx, fx| scheduler::expire_silent(tx, fx, cutoff)).await {
        Ok(expired) => {
            for (launcher, lost) in expired {
                tracing::warn!(%launcher, lost, "launcher went offline");
            }
        }
        Err(e) => tracing::error!(error = %e, "could not look for silent launchers"),
    }
}

/// Wakes launchers on every replica when a retry's backoff ended since `from`.
async fn wake_after_backoff(state: &Arc<AppState>, from: Timestamp, to: Timestamp) {
    let due = state
        .store
        .read(move |r| {
            let queued = r.runs_in_status(RunStatus::Queued, 10_000)?;
            Ok::<_, baton_store::StoreError>(queued.iter().any(|r| r.not_before.is_some_and(|t| t > from && t <= to)))
        })
        .await;
    if due.unwrap_or(false) {
        let _ = transact(state, |_tx, fx| {
            fx.wake.everyone();
            Ok::<_, Error>(())
        })
        .await;
    }
}

/// Asks for runs past their timeout (and the launcher's grace) to be stopped.
async fn stop_overdue(state: &Arc<AppState>) {
    let slack = (state.config.grace_s * 1000) as i64 + state.config.launcher_timeout.as_millis() as i64;
    let overdue = state.store.read(move |r| scheduler::overdue_runs(r, Timestamp::now(), slack)).await;
    match overdue {
        Ok(runs) if !runs.is_empty() => {
            tracing::warn!(runs = runs.len(), "runs went on past their timeout; asking their launchers to stop them");
            if let Err(e) = transact(state, move |tx, fx| scheduler::stop_overdue(tx, fx, &runs)).await {
                tracing::error!(error = %e, "could not stop runs past their timeout");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not look for runs past their timeout"),
    }
}

/// Tells webhooks of each project whose lead (a lead agent, or the scheduler
/// while the project has work) has just turned stale.
async fn watch_leads(state: &Arc<AppState>, leads: &mut std::collections::HashMap<baton_core::ids::ProjectId, bool>) {
    let seen = state
        .store
        .read(|r| {
            let now = Timestamp::now();
            let mut seen = Vec::new();
            for project in r.projects()? {
                let Some(last) = r.heartbeats(&project.id, 1)?.into_iter().next() else { continue };
                let stale_ms = project.settings.heartbeat_stale_s.unwrap_or(crate::lead::STALE_S) as i64 * 1000;
                let silent = now.millis_since(last.at);
                seen.push((project, last, silent, silent >= stale_ms));
            }
            Ok::<_, baton_store::StoreError>(seen)
        })
        .await;
    let Ok(seen) = seen else { return };
    for (project, last, silent, stale) in seen {
        let was = leads.insert(project.id.clone(), stale);
        if !(stale && was == Some(false)) {
            continue;
        }
        let data = serde_json::json!({
            "project": { "id": project.id, "name": project.name },
            "lead": { "source": last.source, "session_key": last.session_key, "last_seen": last.at, "silent_s": silent / 1000 },
            "link": "/#/",
        });
        let event = baton_core::webhook::WebhookEvent::LeadStale;
        let told = transact(state, move |tx, _fx| crate::outbox::tell(tx, event, Some(&project.id), data, &[])).await;
        if let Err(e) = told {
            tracing::warn!(error = %e, "could not tell webhooks of a stale lead");
        }
    }
}
