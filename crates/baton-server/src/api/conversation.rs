//! A person working with one task: messages to its agent (queued while it
//! works), a review of its diff, a file set back to its base, and attempts
//! started together of which one is kept.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::api::{CreateAttempts, KeepAttempt, Kept, PersonReview, RevertFile, SendMessage};
use baton_core::model::{FollowUp, Task, TokenKind};
use baton_domain::{AppState, resolve, scheduler};

use super::http::{ApiJson, OptionalJson};
use super::idempotency::{Created, Done, IdempotencyKey, fingerprint, once};
use super::tasks::may_act;
use crate::auth::{Auth, Caller};
use crate::error::AppError;

/// Who the caller is, as a message or review records it.
fn who(caller: &Caller) -> Option<String> {
    match caller.kind {
        TokenKind::Admin => Some("admin".into()),
        _ => caller.subject.clone(),
    }
}

pub(super) async fn send(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<SendMessage>,
) -> Result<Created<FollowUp>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/messages"), &req);
    let (by, from) = (caller.clone(), who(&caller));
    let reply = once(&state, &caller, key, request, StatusCode::CREATED, move |tx, fx| {
        let task = resolve::task_ref(tx, &id)?;
        may_act(&by, &task)?;
        Ok(scheduler::send_follow_up(tx, fx, &task.id, req.text, from)?)
    })
    .await?;
    Ok(Created(reply))
}

pub(super) async fn messages(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<FollowUp>>, AppError> {
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    Ok(Json(task.follow_ups))
}

pub(super) async fn withdraw(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((id, message)): Path<(String, String)>,
) -> Result<Json<FollowUp>, AppError> {
    let withdrawn = baton_domain::transact(&state, move |tx, _fx| {
        let task = resolve::task_ref(tx, &id)?;
        may_act(&caller, &task)?;
        Ok::<_, AppError>(scheduler::withdraw_follow_up(tx, &task.id, &message)?)
    })
    .await?;
    Ok(Json(withdrawn))
}

pub(super) async fn review(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<PersonReview>,
) -> Result<Done<Task>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/review"), &req);
    let (by, from) = (caller.clone(), who(&caller));
    let reply = once(&state, &caller, key, request, StatusCode::OK, move |tx, fx| {
        let task = resolve::task_ref(tx, &id)?;
        may_act(&by, &task)?;
        Ok(baton_domain::review::person_review(tx, fx, &task.id, req, from)?)
    })
    .await?;
    Ok(Done(reply))
}

pub(super) async fn revert(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RevertFile>,
) -> Result<Json<Task>, AppError> {
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    may_act(&caller, &task)?;
    Ok(Json(baton_domain::review::revert_file(&state, &task.id, &req.file).await?))
}

pub(super) async fn attempts(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<CreateAttempts>,
) -> Result<Created<Vec<Task>>, AppError> {
    if caller.kind == TokenKind::Launcher {
        return Err(AppError::forbidden("launcher tokens cannot create tasks"));
    }
    let request = fingerprint("POST /api/attempts", &req);
    let (st, by) = (Arc::clone(&state), caller.clone());
    let reply = once(&state, &caller, key, request, StatusCode::CREATED, move |tx, fx| {
        Ok(scheduler::create_attempts(tx, fx, &by, req, &st.config)?)
    })
    .await?;
    Ok(Created(reply))
}

pub(super) async fn keep(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<KeepAttempt>,
) -> Result<Json<Kept>, AppError> {
    let (kept, others) = baton_domain::transact(&state, move |tx, fx| {
        let task = resolve::task_ref(tx, &id)?;
        may_act(&caller, &task)?;
        Ok::<_, AppError>(scheduler::keep_attempt(tx, fx, &task.id)?)
    })
    .await?;
    let cancelled: Vec<_> = others.iter().map(|t| t.id.clone()).collect();
    tokio::spawn(clean_when_at_rest(Arc::clone(&state), cancelled.clone()));
    let task = match req.merge.unwrap_or(true) {
        true => baton_domain::review::request_merge(&state, kept.id, None, false).await?,
        false => kept,
    };
    Ok(Json(Kept { task, cancelled }))
}

/// How long the attempts not kept have to come to rest before their worktrees
/// are left for `baton clean`.
const AT_REST_WITHIN: Duration = Duration::from_secs(300);

/// Removes the worktrees of the attempts not kept once they are at rest (a
/// stopped agent has its grace period first); their branches stay.
async fn clean_when_at_rest(state: Arc<AppState>, ids: Vec<baton_core::ids::TaskId>) {
    let deadline = tokio::time::Instant::now() + AT_REST_WITHIN;
    let mut left = ids;
    while !left.is_empty() && tokio::time::Instant::now() < deadline {
        let mut waiting = Vec::new();
        for id in left {
            let lookup = id.clone();
            match state.store.read(move |r| r.task(&lookup)).await {
                Ok(Some(t)) if t.status.is_at_rest() => {
                    if let Err(e) = baton_domain::review::clean(&state, &t, true).await {
                        tracing::warn!(task = %t.id, error = %e, "could not remove the worktree of an attempt not kept");
                    }
                }
                Ok(Some(_)) => waiting.push(id),
                _ => {}
            }
        }
        left = waiting;
        if !left.is_empty() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}
