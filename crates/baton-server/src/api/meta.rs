//! `/healthz`, `/metrics` and `/api/openapi.json`.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use baton_core::status::{LauncherStatus, RunStatus, TaskStatus};
use serde_json::{Value, json};

use crate::error::AppError;
use baton_domain::AppState;

pub(super) async fn healthz(State(state): State<Arc<AppState>>) -> Json<Value> {
    let stopped = state.store.stopped();
    Json(json!({
        "status": if stopped.is_some() { "stopped" } else { "ok" },
        "stopped": stopped,
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": state.started.elapsed().as_secs(),
        "store": state.store.kind(),
        "replica": state.replica,
        "timers": state.is_leader(),
    }))
}

pub(super) async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], super::openapi::served()).into_response()
}

/// The resident memory of this process, in bytes (Linux).
fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

pub(super) async fn metrics(State(state): State<Arc<AppState>>) -> Result<Response, AppError> {
    let (counts, launchers, running, queued, index, archive) = state
        .store
        .read(|r| {
            Ok::<_, AppError>((
                r.task_counts(None)?,
                r.launchers()?,
                r.runs_in_status(RunStatus::Running, u32::MAX)?.len(),
                r.runs_in_status(RunStatus::Queued, u32::MAX)?.len(),
                r.embed_status()?,
                r.archive_totals()?,
            ))
        })
        .await?;
    let mut out = String::new();
    let _ = writeln!(out, "# HELP baton_tasks Tasks by status.\n# TYPE baton_tasks gauge");
    for status in TaskStatus::ALL {
        let n = counts.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n);
        let _ = writeln!(out, "baton_tasks{{status=\"{status}\"}} {n}");
    }
    let _ = writeln!(out, "# HELP baton_runs Runs queued and running.\n# TYPE baton_runs gauge");
    let _ = writeln!(out, "baton_runs{{status=\"queued\"}} {queued}\nbaton_runs{{status=\"running\"}} {running}");
    // What an autoscaler of launchers follows: work waiting for a slot.
    let _ = writeln!(
        out,
        "# HELP baton_runs_queued Runs waiting for a launcher.\n# TYPE baton_runs_queued gauge\nbaton_runs_queued {queued}"
    );
    let online = launchers.iter().filter(|l| l.status == LauncherStatus::Online).count();
    let slots: u32 = launchers.iter().filter(|l| l.status == LauncherStatus::Online).map(|l| l.slots).sum();
    let _ = writeln!(
        out,
        "# HELP baton_launchers Launchers online.\n# TYPE baton_launchers gauge\nbaton_launchers {online}"
    );
    let _ = writeln!(
        out,
        "# HELP baton_slots Agent slots of online launchers.\n# TYPE baton_slots gauge\nbaton_slots {slots}"
    );
    let m = &state.metrics;
    for (name, help, value) in [
        ("baton_tasks_created_total", "Tasks created.", m.tasks_created.load(Ordering::Relaxed)),
        ("baton_runs_claimed_total", "Runs handed to launchers.", m.runs_claimed.load(Ordering::Relaxed)),
        ("baton_events_ingested_total", "Events received from launchers.", m.events_ingested.load(Ordering::Relaxed)),
        ("baton_git_fetches_total", "Fetches from /git (upload-pack requests).", m.git_fetches.load(Ordering::Relaxed)),
        ("baton_git_pushes_total", "Pushes to /git (receive-pack runs).", m.git_pushes.load(Ordering::Relaxed)),
        ("baton_claims_total", "Claim transactions of launcher polls.", m.claims.load(Ordering::Relaxed)),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    }
    for (name, help, micros) in [
        ("baton_claim_seconds_total", "Time in claim transactions (the store's queue included).", &m.claim_micros),
        (
            "baton_claim_work_seconds_total",
            "Time claim transactions ran (the store's queue not included).",
            &m.claim_work_micros,
        ),
    ] {
        let seconds = micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {seconds}");
    }
    let _ = writeln!(
        out,
        "# HELP baton_embeddings_pending Documents waiting to be embedded.\n# TYPE baton_embeddings_pending gauge\nbaton_embeddings_pending {}\n# HELP baton_embeddings_failed Documents the embeddings endpoint could not embed.\n# TYPE baton_embeddings_failed gauge\nbaton_embeddings_failed {}",
        index.pending, index.failed
    );
    for (name, help, value) in [
        ("baton_archived_events", "Output events archived (see --retain-output-days).", archive.events),
        ("baton_archive_bytes", "The archived output's size as JSON lines.", archive.bytes),
        ("baton_archive_stored_bytes", "The archived output's size compressed, as stored.", archive.stored),
    ] {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    }
    let leader = u8::from(state.is_leader());
    let _ = writeln!(
        out,
        "# HELP baton_timers Whether this replica runs the timers and the merge queue now.\n# TYPE baton_timers gauge\nbaton_timers {leader}"
    );
    let clients = m.stream_clients.load(Ordering::Relaxed);
    let _ = writeln!(
        out,
        "# HELP baton_stream_clients Live stream clients.\n# TYPE baton_stream_clients gauge\nbaton_stream_clients {clients}"
    );
    if let Some(rss) = rss_bytes() {
        let _ = writeln!(
            out,
            "# HELP process_resident_memory_bytes Resident memory.\n# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes {rss}"
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}

/// `POST /api/backup`: an online backup of the SQLite store, as a `.tar.gz`;
/// on PostgreSQL, how to back it up instead.
pub(super) async fn backup(
    State(state): State<Arc<AppState>>,
    crate::auth::Auth(caller): crate::auth::Auth,
) -> Result<Response, AppError> {
    caller.require_admin()?;
    let Some(dir) = state.config.data_dir.clone() else {
        return Err(AppError::new(
            baton_core::api::ErrorCode::Conflict,
            format!(
                "the store is {}: back it up with pg_dump (pg_dump -Fc -d URL -f baton.dump), or continuous archiving for point-in-time recovery; see docs/operations.md",
                state.store.kind()
            ),
        ));
    };
    let out = dir.join(format!(".api-backup-{}.tar.gz", baton_core::ids::TaskId::generate().short()));
    let path = out.clone();
    tokio::task::spawn_blocking(move || baton_store::backup::take(&dir, &path, true))
        .await
        .map_err(AppError::internal)?
        .map_err(|e| AppError::new(baton_core::api::ErrorCode::Internal, e.to_string()))?;
    let bytes = tokio::fs::read(&out).await.map_err(AppError::internal)?;
    let _ = tokio::fs::remove_file(&out).await;
    let name = format!("attachment; filename=\"baton-{}.tar.gz\"", baton_core::time::Timestamp::now().as_millis());
    Ok(([(header::CONTENT_TYPE, "application/gzip".to_owned()), (header::CONTENT_DISPOSITION, name)], bytes)
        .into_response())
}
