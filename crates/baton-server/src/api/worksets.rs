//! `/api/worksets`: groups of projects a task changes together.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::workset::{CreateWorkset, WorksetView};
use baton_domain::{AppState, worksets};

use super::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;

pub(super) async fn list(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<Vec<WorksetView>>, AppError> {
    Ok(Json(state.store.read(|r| worksets::list(r)).await?))
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateWorkset>,
) -> Result<(StatusCode, Json<WorksetView>), AppError> {
    caller.require_admin()?;
    let made = state.store.write(move |tx| worksets::create(tx, req)).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
) -> Result<Json<WorksetView>, AppError> {
    let found = state
        .store
        .read(move |r| match r.workset(&name)? {
            Some(w) => worksets::view(r, w),
            None => Err(baton_domain::Error::not_found("workset", name)),
        })
        .await?;
    Ok(Json(found))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    state.store.write(move |tx| worksets::delete(tx, &name)).await?;
    Ok(StatusCode::NO_CONTENT)
}
