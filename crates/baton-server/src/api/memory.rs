//! `/api/agents/{name}/memory`, `/journal` and `/messages`: what an agent
//! keeps between its tasks, and its inbox. A person (the admin token) reaches
//! any agent's; an agent's session token reaches its own agent's memory only.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::memory::{
    AgentMessage, JournalEntry, JournalNote, Me, MemoryBlock, MemoryContext, MemoryView, RevertBlock, SendToAgent,
    WriteBlock,
};
use baton_domain::memory::{self, Writer};
use baton_domain::{AppState, inbox};
use serde::Deserialize;

use super::http::{ApiJson, ApiQuery};
use super::idempotency::{Created, IdempotencyKey, fingerprint, once};
use crate::auth::{Auth, Caller};
use crate::error::AppError;

async fn read<T, F>(state: &Arc<AppState>, caller: Caller, name: String, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&dyn baton_store::StoreRead, &str) -> Result<T, baton_domain::Error> + Send + 'static,
{
    state
        .store
        .read(move |r| {
            memory::writer(r, &caller, &name)?;
            Ok::<_, AppError>(f(r, &name)?)
        })
        .await
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<Json<MemoryView>, AppError> {
    Ok(Json(read(&state, caller, name, |r, name| memory::view(r, name)).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ContextQuery {
    /// The Claude Code SessionStart that asks (`startup`, `resume`, `clear`,
    /// `compact`): recorded on the asking session's timeline.
    source: Option<String>,
}

pub(super) async fn context(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ContextQuery>,
) -> Result<Json<MemoryContext>, AppError> {
    let session = caller.session();
    let text = read(&state, caller, name.clone(), |r, name| {
        let def = memory::agent_with_memory(r, name)?;
        memory::context(r, &def)
    })
    .await?
    .unwrap_or_default();
    if let (Some(session), Some(source)) = (session, q.source) {
        let source: String = source.chars().filter(char::is_ascii_alphanumeric).take(20).collect();
        let note =
            format!("memory given to the agent ({} characters) at SessionStart ({source})", text.chars().count());
        let event = baton_core::event::NewEvent::log(note);
        state
            .store
            .write(move |tx| {
                let task = baton_domain::resolve::session(tx, &session)?.task_id;
                tx.append_event(Some(&session), None, Some(&task), event)?;
                Ok::<_, AppError>(())
            })
            .await?;
    }
    Ok(Json(MemoryContext { agent: name, text }))
}

pub(super) async fn versions(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((name, label)): Path<(String, String)>,
) -> Result<Json<Vec<MemoryBlock>>, AppError> {
    let versions = read(&state, caller, name, move |r, name| {
        let owner = memory::blocks(r, name)?
            .into_iter()
            .find(|b| b.label == label)
            .map(|b| b.owner)
            .ok_or_else(|| baton_domain::Error::not_found("memory block", &label))?;
        Ok(r.memory_versions(&owner, &label)?)
    })
    .await?;
    Ok(Json(versions))
}

/// Runs a write of an agent's memory as its writer (a person, or the agent).
async fn write<T, F>(state: &Arc<AppState>, caller: Caller, name: String, f: F) -> Result<T, AppError>
where
    T: Send + 'static,
    F: FnOnce(&mut dyn baton_store::StoreTx, &str, &Writer) -> Result<T, baton_domain::Error> + Send + 'static,
{
    baton_domain::transact(state, move |tx, _fx| {
        let by = memory::writer(tx, &caller, &name)?;
        Ok::<_, AppError>(f(tx, &name, &by)?)
    })
    .await
}

pub(super) async fn put(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((name, label)): Path<(String, String)>,
    ApiJson(req): ApiJson<WriteBlock>,
) -> Result<Json<MemoryBlock>, AppError> {
    let block = write(&state, caller, name, move |tx, name, by| memory::write_block(tx, name, &label, req, by)).await?;
    Ok(Json(block))
}

pub(super) async fn revert(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path((name, label)): Path<(String, String)>,
    ApiJson(req): ApiJson<RevertBlock>,
) -> Result<Json<MemoryBlock>, AppError> {
    let block =
        write(&state, caller, name, move |tx, name, by| memory::revert_block(tx, name, &label, req.version, by))
            .await?;
    Ok(Json(block))
}

pub(super) async fn note(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<JournalNote>,
) -> Result<(StatusCode, Json<JournalEntry>), AppError> {
    let session = caller.session();
    let entry = write(&state, caller, name, move |tx, name, _| {
        let task = match session {
            Some(id) => Some(baton_domain::resolve::task(tx, &baton_domain::resolve::session(tx, &id)?.task_id)?),
            None => None,
        };
        memory::append_note(tx, name, req.text, task.as_ref())
    })
    .await?;
    Ok((StatusCode::CREATED, Json(entry)))
}

pub(super) async fn send(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<SendToAgent>,
) -> Result<Created<AgentMessage>, AppError> {
    let request = fingerprint(&format!("POST /api/agents/{name}/messages"), &req);
    let (st, by) = (Arc::clone(&state), caller.clone());
    let reply = once(&state, &caller, key, request, StatusCode::CREATED, move |tx, fx| {
        Ok(inbox::send(tx, fx, &by, &name, req, &st.config)?)
    })
    .await?;
    Ok(Created(reply))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct InboxQuery {
    /// At most this many, newest last (200 by default).
    limit: Option<u32>,
}

pub(super) async fn inbox(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Json<Vec<AgentMessage>>, AppError> {
    let messages = state
        .store
        .read(move |r| {
            r.agent(&name)?.ok_or_else(|| AppError::not_found("agent", &name))?;
            Ok::<_, AppError>(r.messages(&name, &[], q.limit.unwrap_or(200).min(1000))?)
        })
        .await?;
    Ok(Json(messages))
}

pub(super) async fn me(State(state): State<Arc<AppState>>, Auth(caller): Auth) -> Result<Json<Me>, AppError> {
    let kind = caller.kind.as_str().to_owned();
    let Some(id) = caller.session() else {
        return Ok(Json(Me { kind, session: None, task: None, agent: None, project: None }));
    };
    let session = state.store.read(move |r| baton_domain::resolve::session(r, &id)).await?;
    Ok(Json(Me {
        kind,
        task: Some(session.task_id),
        agent: Some(session.agent),
        project: Some(session.project_id.to_string()),
        session: Some(session.id),
    }))
}
