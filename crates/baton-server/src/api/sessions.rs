//! `/api/sessions`: conversations with agents and their events.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use baton_core::event::Event;
use baton_core::model::{Run, Session};
use serde::{Deserialize, Serialize};

use super::clamp_limit;
use crate::auth::Caller;
use crate::error::AppError;
use crate::resolve;
use crate::state::AppState;

#[derive(Deserialize)]
pub(super) struct ListQuery {
    /// Only this task's sessions.
    task: Option<String>,
    /// At most this many, newest first.
    limit: Option<u32>,
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Query(q): Query<ListQuery>,
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
#[derive(Serialize)]
pub(super) struct SessionDetail {
    #[serde(flatten)]
    session: Session,
    runs: Vec<Run>,
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
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

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    /// Only events after this sequence number.
    after: Option<i64>,
    /// At most this many.
    limit: Option<u32>,
}

pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    _caller: Caller,
    Path(id): Path<String>,
    Query(q): Query<EventsQuery>,
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
