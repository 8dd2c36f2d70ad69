//! `/api/runs`: reading runs, and the launcher's reports about them.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use baton_core::api::{BatchAck, Checkpoint, ErrorCode, EventBatch, RunFinished, RunStarted};
use baton_core::ids::LauncherId;
use baton_core::model::Run;

use crate::api::http::ApiJson;
use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::{resolve, scheduler, transact};

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Run>, AppError> {
    let run = state.store.read(move |r| resolve::run(r, &resolve::run_id(r, &id)?)).await?;
    Ok(Json(run))
}

/// The launcher a launcher token speaks for: only a launcher that registered
/// with it reports on runs, and only on its own (checked by the scheduler).
fn launcher_of(caller: &Caller) -> Result<Option<LauncherId>, AppError> {
    caller.require_launcher()?;
    let id = caller.subject.as_deref().and_then(|s| LauncherId::parse(s).ok());
    match id {
        Some(id) => Ok(Some(id)),
        None => Err(AppError::forbidden("this launcher token has not registered a launcher, so it holds no run")),
    }
}

pub(super) async fn started(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
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
    Auth(caller): Auth,
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
    Auth(caller): Auth,
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

/// Refuses a report naming a commit the project's repository does not have: the
/// launcher must push first.
async fn require_commit(state: &Arc<AppState>, run_id: &str, commit: &str) -> Result<(), AppError> {
    baton_git::worktree::check_object_id(commit).map_err(|e| AppError::invalid(e.to_string()))?;
    let id = run_id.to_owned();
    let project = state
        .store
        .read(move |r| {
            let run = resolve::run(r, &resolve::run_id(r, &id)?)?;
            resolve::project(r, &run.project_id)
        })
        .await?;
    let missing = baton_git::transport::missing(std::path::Path::new(&project.path), &[commit])
        .await
        .map_err(AppError::internal)?;
    if !missing.is_empty() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!("project {} has no commit {commit}; push the task's branch before reporting it", project.name),
        ));
    }
    Ok(())
}

pub(super) async fn checkpoint(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<Checkpoint>,
) -> Result<Json<Run>, AppError> {
    let launcher = launcher_of(&caller)?;
    require_commit(&state, &id, &report.commit).await?;
    let run = transact(&state, move |tx, _fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::run_checkpoint(tx, &id, launcher.as_ref(), report.commit)
    })
    .await?;
    Ok(Json(run))
}

pub(super) async fn finished(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(report): ApiJson<RunFinished>,
) -> Result<Json<Run>, AppError> {
    let launcher = launcher_of(&caller)?;
    if let Some(head) = report.git.as_ref().and_then(|g| g.head.as_deref()) {
        require_commit(&state, &id, head).await?;
    }
    let run = transact(&state, move |tx, fx| {
        let id = resolve::run_id(tx, &id)?;
        scheduler::run_finished(tx, fx, &id, launcher.as_ref(), report)
    })
    .await?;
    Ok(Json(run))
}
