//! `/api/schedules` and `/api/triggers`: work that starts by itself.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use baton_core::api::ErrorCode;
use baton_core::triggers::{CreateSchedule, CreateTrigger, Schedule, Trigger};
use baton_domain::{AppState, schedules};
use serde_json::{Value, json};

use crate::auth::Auth;
use crate::error::AppError;

use super::http::ApiJson;

pub(super) async fn list(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<Vec<Schedule>>, AppError> {
    Ok(Json(state.store.read(|r| schedules::list(r, None)).await?))
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateSchedule>,
) -> Result<(StatusCode, Json<Schedule>), AppError> {
    caller.require_admin()?;
    let made = state.store.write(move |tx| schedules::add(tx, req)).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, AppError> {
    let i = id.clone();
    let s = state.store.read(move |r| r.schedule(&i)).await?;
    s.map(Json).ok_or_else(|| AppError::not_found("schedule", id))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    state.store.write(move |tx| schedules::remove(tx, &id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_paused(
    state: Arc<AppState>,
    caller: crate::auth::Caller,
    id: String,
    paused: bool,
) -> Result<Json<Schedule>, AppError> {
    caller.require_admin()?;
    Ok(Json(state.store.write(move |tx| schedules::set_paused(tx, &id, paused)).await?))
}

pub(super) async fn pause(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, AppError> {
    set_paused(state, caller, id, true).await
}

pub(super) async fn resume(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Schedule>, AppError> {
    set_paused(state, caller, id, false).await
}

pub(super) async fn triggers(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
) -> Result<Json<Vec<Trigger>>, AppError> {
    caller.require_admin()?;
    let all = state.store.read(|r| r.triggers()).await?;
    Ok(Json(all.into_iter().map(|t| Trigger { secret: None, ..t }).collect()))
}

pub(super) async fn add_trigger(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateTrigger>,
) -> Result<(StatusCode, Json<Trigger>), AppError> {
    caller.require_admin()?;
    let made = state.store.write(move |tx| schedules::add_trigger(tx, req)).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

pub(super) async fn delete_trigger(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    let n = name.clone();
    if !state.store.write(move |tx| tx.delete_trigger(&n)).await? {
        return Err(AppError::not_found("trigger", name));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A delivery to a trigger: verified as Standard Webhooks signs (webhook-id,
/// webhook-timestamp within five minutes, webhook-signature), then a task.
pub(super) async fn fire(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (id, ts, sig) = (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
    let n = name.clone();
    let trigger = state.store.read(move |r| r.trigger(&n)).await?;
    // An unknown trigger and a bad signature look the same to the sender.
    let unauthorized = || {
        AppError::new(ErrorCode::Unauthorized, "not a delivery signed with this trigger's secret (Standard Webhooks)")
    };
    let trigger = trigger.ok_or_else(unauthorized)?;
    let secret = trigger
        .secret
        .as_deref()
        .and_then(|s| baton_domain::signature::Secret::parse(s).ok())
        .ok_or_else(unauthorized)?;
    let now = baton_core::time::Timestamp::now().as_millis() / 1000;
    let at: i64 = ts.parse().unwrap_or(0);
    if id.is_empty() || !secret.verify(&id, at, &body, &sig, now) {
        return Err(unauthorized());
    }
    let payload: Value =
        serde_json::from_slice(&body).map_err(|e| AppError::invalid(format!("the payload is not JSON: {e}")))?;
    let st = Arc::clone(&state);
    let (task, fresh) = baton_domain::transact(&state, move |tx, fx| {
        Ok::<_, AppError>(schedules::fire_trigger(tx, fx, &trigger, &id, &payload, &st.config)?)
    })
    .await?;
    let status = if fresh { StatusCode::CREATED } else { StatusCode::OK };
    Ok((status, Json(json!({ "task": task, "trigger": name, "new": fresh }))))
}
