//! `/api/runs`: reading runs, and the launcher's reports about them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use baton_core::api::{BatchAck, EventBatch, RunFinished, RunStarted};
use baton_core::ids::LauncherId;
use baton_core::model::Run;

use crate::auth::Caller;
use crate::error::{ApiJson, AppError};
use crate::state::AppState;
use crate::{resolve, scheduler, transact};

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, AppError> {
    let run = state.store.read(move |r| resolve::run(r, &resolve::run_id(r, &id)?)).await?;
    Ok(Json(run))
}

/// The launcher a launcher token speaks for (none for the admin token).
fn launcher_of(caller: &Caller) -> Result<Option<LauncherId>, AppError> {
    caller.require_launcher()?;
    Ok(caller.subject.as_deref().and_then(|s| LauncherId::parse(s).ok()))
}

pub(super) async fn started(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<RunStarted>,
) -> Result<Json<Run>, AppError> {
    let launcher = launcher_of(&caller)?;
    let run = transact(&state, move |tx, _fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::run_started(tx, &id, launcher.as_ref(), report)
    })
    .await?;
    Ok(Json(run))
}

pub(super) async fn checking(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Run>, AppError> {
    let launcher = launcher_of(&caller)?;
    let run = transact(&state, move |tx, _fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::run_checking(tx, &id, launcher.as_ref())
    })
    .await?;
    Ok(Json(run))
}

pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(batch): ApiJson<EventBatch>,
) -> Result<Json<BatchAck>, AppError> {
    let launcher = launcher_of(&caller)?;
    let st = Arc::clone(&state);
    let ack = transact(&state, move |tx, fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::ingest_events(tx, fx, &id, launcher.as_ref(), batch, &st.config)
    })
    .await?;
    Ok(Json(ack))
}

pub(super) async fn finished(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<RunFinished>,
) -> Result<Json<Run>, AppError> {
    let launcher = launcher_of(&caller)?;
    let run = transact(&state, move |tx, fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::run_finished(tx, fx, &id, launcher.as_ref(), report)
    })
    .await?;
    Ok(Json(run))
}
