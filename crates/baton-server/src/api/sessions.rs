//! `/api/sessions`: conversations with agents and their events.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use baton_core::api::SessionState;
use baton_core::event::Event;
use baton_core::ids::{LauncherId, SessionId};
use baton_core::model::{Run, Session};
use serde::{Deserialize, Serialize};

use super::clamp_limit;
use crate::api::http::ApiJson;
use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::{resolve, transact};

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListQuery {
    /// Only this task's sessions.
    task: Option<String>,
    /// At most this many, newest first.
    limit: Option<u32>,
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Session>>, AppError> {
    let limit = clamp_limit(q.limit, 100, 10_000);
    let sessions = state
        .store
        .read(move |r| match &q.task {
            Some(t) => Ok::<_, AppError>(r.sessions_of_task(&resolve::task_id(r, t)?)?),
            None => Ok(r.sessions(limit)?),
        })
        .await?;
    Ok(Json(sessions))
}

/// A session and its runs.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct SessionDetail {
    #[serde(flatten)]
    session: Session,
    runs: Vec<Run>,
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, AppError> {
    let detail = state
        .store
        .read(move |r| {
            let session = resolve::session(r, &resolve::session_id(r, &id)?)?;
            let runs = r.runs_of_session(&session.id)?;
            Ok::<_, AppError>(SessionDetail { session, runs })
        })
        .await?;
    Ok(Json(detail))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct EventsQuery {
    /// Only events after this sequence number.
    after: Option<i64>,
    /// At most this many.
    limit: Option<u32>,
}

pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<Event>>, AppError> {
    let limit = clamp_limit(q.limit, 1000, 10_000);
    let events = state
        .store
        .read(move |r| {
            let session = resolve::session_id(r, &id)?;
            Ok::<_, AppError>(r.session_events(&session, q.after.unwrap_or(0), limit)?)
        })
        .await?;
    Ok(Json(events))
}

/// The session of a run the calling launcher holds (claimed or running): only
/// such a launcher reads or writes its agent's conversation files.
async fn held_session(state: &Arc<AppState>, caller: &Caller, id: &str) -> Result<SessionId, AppError> {
    caller.require_launcher()?;
    let launcher =
        caller.subject.as_deref().and_then(|s| LauncherId::parse(s).ok()).ok_or_else(|| {
            AppError::forbidden("this launcher token has not registered a launcher, so it holds no run")
        })?;
    let id = id.to_owned();
    state
        .store
        .read(move |r| {
            let session = resolve::session_id(r, &id)?;
            let holds = r.active_runs_of_launcher(&launcher)?.iter().any(|run| run.session_id == session);
            if !holds {
                return Err(AppError::forbidden(format!("launcher {launcher} holds no run of session {session}")));
            }
            Ok(session)
        })
        .await
}

/// `PUT /api/sessions/{id}/state`: the launcher saves what the agent's CLI keeps
/// of the conversation, so another host can resume it.
pub(super) async fn put_state(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<SessionState>,
) -> Result<axum::http::StatusCode, AppError> {
    let session = held_session(&state, &caller, &id).await?;
    if body.files.iter().any(|f| f.path.starts_with('/') || f.path.split('/').any(|c| c == ".." || c.is_empty())) {
        return Err(AppError::invalid("session state files must be relative paths without `..`"));
    }
    transact(&state, move |tx, _fx| tx.put_session_state(&session, &body).map_err(AppError::from)).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// `GET /api/sessions/{id}/state`: what the agent's CLI kept of the conversation.
pub(super) async fn get_state(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<SessionState>, AppError> {
    let session = held_session(&state, &caller, &id).await?;
    let saved = state.store.read(move |r| r.session_state(&session)).await?;
    saved.map(Json).ok_or_else(|| AppError::not_found("session state", id))
}
