//! `/api/agents`: agent definitions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::agent::AgentDef;
use baton_core::api::{AgentInfo, ErrorCode};
use baton_core::event::{EventKind, NewEvent};
use baton_core::status::LauncherStatus;

use crate::auth::Caller;
use crate::error::{ApiJson, AppError};
use crate::projects::save_agents;
use crate::state::AppState;

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
) -> Result<Json<Vec<AgentInfo>>, AppError> {
    let (agents, launchers) = state.store.read(|r| Ok::<_, AppError>((r.agents()?, r.launchers()?))).await?;
    let infos = agents
        .into_iter()
        .map(|def| {
            let available =
                launchers.iter().any(|l| l.status == LauncherStatus::Online && l.executors.contains(&def.executor));
            AgentInfo { def, available }
        })
        .collect();
    Ok(Json(infos))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(name): Path<String>,
) -> Result<Json<AgentDef>, AppError> {
    let n = name.clone();
    let agent = state.store.read(move |r| r.agent(&n)).await?;
    agent.map(Json).ok_or_else(|| AppError::not_found("agent", name))
}

fn prepare(mut def: AgentDef) -> Result<AgentDef, AppError> {
    def.source = "api".into();
    def.validate().map_err(|e| AppError::invalid(e.to_string()))?;
    Ok(def)
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(def): ApiJson<AgentDef>,
) -> Result<(StatusCode, Json<AgentDef>), AppError> {
    caller.require_admin()?;
    let def = prepare(def)?;
    let saved = def.clone();
    state
        .store
        .write(move |tx| {
            if tx.agent(&def.name)?.is_some() {
                return Err(AppError::new(ErrorCode::AlreadyExists, format!("agent {} already exists", def.name)));
            }
            save_agents(tx, std::slice::from_ref(&def))
        })
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

pub(super) async fn replace(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
    ApiJson(def): ApiJson<AgentDef>,
) -> Result<Json<AgentDef>, AppError> {
    caller.require_admin()?;
    if def.name != name {
        return Err(AppError::invalid(format!("the body names agent {:?} but the path names {name:?}", def.name)));
    }
    let def = prepare(def)?;
    let saved = def.clone();
    state.store.write(move |tx| save_agents(tx, std::slice::from_ref(&def))).await?;
    Ok(Json(saved))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    let n = name.clone();
    let existed = state
        .store
        .write(move |tx| {
            let existed = tx.delete_agent(&n)?;
            if existed {
                let data = serde_json::json!({ "name": n, "deleted": true });
                tx.append_event(None, None, None, NewEvent::new(EventKind::Agent, data))?;
            }
            Ok::<_, AppError>(existed)
        })
        .await?;
    if existed { Ok(StatusCode::NO_CONTENT) } else { Err(AppError::not_found("agent", name)) }
}
