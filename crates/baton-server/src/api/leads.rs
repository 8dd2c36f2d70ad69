//! `/api/projects/{id}/lead`: the lead Baton runs for a project and keeps
//! alive; and `/api/agents/status`, the cluster of agents that live.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use baton_core::memory::{AgentStatus, LeadView, StartLead, WakeLead};
use baton_core::model::LeadRecord;
use baton_domain::{AppState, leads, resolve};

use super::http::OptionalJson;
use crate::api::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;

/// The record as people see it.
async fn view(state: &Arc<AppState>, project: baton_core::ids::ProjectId) -> Result<Json<LeadView>, AppError> {
    let view = state
        .store
        .read(move |r| {
            let project = resolve::project(r, &project)?;
            Ok::<_, AppError>(leads::view(r, &project)?)
        })
        .await?;
    view.map(Json).ok_or_else(|| AppError::not_found("lead of project", "it"))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<LeadView>, AppError> {
    let project = state.store.read(move |r| resolve::project_ref(r, &id)).await?;
    let found = view(&state, project.id.clone()).await;
    found.map_err(|_| AppError::not_found("lead of project", project.name))
}

pub(super) async fn start(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<StartLead>,
) -> Result<Json<LeadView>, AppError> {
    caller.require_admin()?;
    let st = Arc::clone(&state);
    let lead: LeadRecord = baton_domain::transact(&state, move |tx, fx| {
        let project = resolve::project_ref(tx, &id)?;
        Ok::<_, AppError>(leads::start(tx, fx, &project, req.agent.as_deref(), &st.config)?)
    })
    .await?;
    view(&state, lead.project_id).await
}

pub(super) async fn stop(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<LeadView>, AppError> {
    caller.require_admin()?;
    let lead: LeadRecord = baton_domain::transact(&state, move |tx, fx| {
        let project = resolve::project_ref(tx, &id)?;
        Ok::<_, AppError>(leads::stop(tx, fx, &project.id, "stopped by request")?)
    })
    .await?;
    view(&state, lead.project_id).await
}

pub(super) async fn done(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<LeadView>, AppError> {
    let session = caller.session().ok_or_else(|| AppError::forbidden("only the project's lead says it is done"))?;
    let lead: LeadRecord = baton_domain::transact(&state, move |tx, fx| {
        let project = resolve::project_ref(tx, &id)?;
        let lead = leads::done(tx, fx, &session)?;
        if lead.project_id != project.id {
            return Err(AppError::forbidden(format!("this session leads another project, not {}", project.name)));
        }
        Ok(lead)
    })
    .await?;
    view(&state, lead.project_id).await
}

pub(super) async fn wake(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<WakeLead>,
) -> Result<Json<LeadView>, AppError> {
    let session = caller.session().ok_or_else(|| AppError::forbidden("only the project's lead sets its timer"))?;
    let lead: LeadRecord = baton_domain::transact(&state, move |tx, _fx| {
        let project = resolve::project_ref(tx, &id)?;
        let lead = leads::wake_me(tx, &session, req.in_s, req.note)?;
        if lead.project_id != project.id {
            return Err(AppError::forbidden(format!("this session leads another project, not {}", project.name)));
        }
        Ok(lead)
    })
    .await?;
    view(&state, lead.project_id).await
}

pub(super) async fn agents_status(
    State(state): State<Arc<AppState>>,
    _: Auth,
) -> Result<Json<Vec<AgentStatus>>, AppError> {
    let status = state.store.read(|r| Ok::<_, AppError>(leads::cluster(r)?)).await?;
    Ok(Json(status))
}
