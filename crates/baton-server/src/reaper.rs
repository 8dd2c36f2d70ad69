//! Noticing launchers that stopped answering. A launcher that misses its
//! heartbeats for longer than the configured timeout goes offline, and its
//! unfinished runs are lost (and restarted by policy). This is the one timer in
//! the coordinator: silence cannot announce itself.

use std::sync::Arc;
use std::time::Instant;

use baton_core::model::LeadHeartbeat;
use baton_core::status::{LauncherStatus, TaskStatus};

use crate::state::{AppState, LauncherLive};
use crate::{scheduler, transact};

/// How many reaper ticks between the scheduler's own lead heartbeats.
const SCHEDULER_BEAT_TICKS: u64 = 6;

/// The scheduler's own heartbeat, as the lead of every project that has work
/// still to do (seed 000's orchestrator beat while it had work, and exited when
/// it was done).
async fn beat(state: &Arc<AppState>) {
    let result = state
        .store
        .write(|tx| {
            let now = baton_core::Timestamp::now();
            for project in tx.projects()? {
                let filter = baton_store::TaskFilter {
                    project: Some(project.id.clone()),
                    statuses: vec![
                        TaskStatus::Pending,
                        TaskStatus::AwaitingApproval,
                        TaskStatus::Queued,
                        TaskStatus::Running,
                        TaskStatus::Checking,
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

/// Starts the reaper. Launchers the database says are online get a full timeout
/// from now to come back (after a coordinator restart).
pub fn spawn_reaper(state: Arc<AppState>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if let Ok(launchers) = state.store.read(|r| r.launchers()).await
            && let Ok(mut live) = state.launchers.lock()
        {
            for l in launchers.into_iter().filter(|l| l.status == LauncherStatus::Online) {
                live.entry(l.id)
                    .or_insert_with(|| LauncherLive { last_seen: Instant::now(), stops_sent: Default::default() });
            }
        }
        let mut tick = tokio::time::interval(state.config.heartbeat_interval);
        let mut ticks: u64 = 0;
        loop {
            tick.tick().await;
            if ticks.is_multiple_of(SCHEDULER_BEAT_TICKS) {
                beat(&state).await;
            }
            ticks += 1;
            let silent: Vec<_> = match state.launchers.lock() {
                Ok(live) => live
                    .iter()
                    .filter(|(_, l)| l.last_seen.elapsed() > state.config.launcher_timeout)
                    .map(|(id, _)| id.clone())
                    .collect(),
                Err(_) => continue,
            };
            for id in silent {
                if let Ok(mut live) = state.launchers.lock() {
                    live.remove(&id);
                }
                let why = format!("launcher {id} stopped sending heartbeats");
                let id2 = id.clone();
                match transact(&state, move |tx, fx| scheduler::mark_offline(tx, fx, &id2, &why)).await {
                    Ok(lost) => tracing::warn!(launcher = %id, lost, "launcher went offline"),
                    Err(e) => {
                        tracing::error!(launcher = %id, error = %e, "could not mark launcher offline")
                    }
                }
            }
        }
    })
}
