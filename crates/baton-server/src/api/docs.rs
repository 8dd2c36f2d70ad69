//! `/api/docs`: the context store.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::api::{DocDetail, DocEntry, DocIndex, DocSearch, IndexFailure, PushDoc, SearchMode};
use baton_store::DocFilter;
use serde::Deserialize;

use super::clamp_limit;
use crate::api::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::{docs, meaning, resolve};

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListQuery {
    /// Words to search for (ranked by relevance); without it, newest first.
    q: Option<String>,
    /// Comma-separated tags, all required.
    tag: Option<String>,
    /// A project id or name.
    project: Option<String>,
    /// Names starting with this.
    prefix: Option<String>,
    /// At most this many.
    limit: Option<u32>,
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<DocEntry>>, AppError> {
    let query = q.q.as_deref().map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned);
    let tags: Vec<String> =
        q.tag.as_deref().unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    let limit = clamp_limit(q.limit, 50, 1000);
    let hits = state
        .store
        .read(move |r| {
            let project = q.project.as_deref().map(|p| resolve::project_ref(r, p)).transpose()?.map(|p| p.id);
            let filter = DocFilter { query, tags, project, prefix: q.prefix, related_to: None, limit, telling: false };
            Ok::<_, AppError>(r.documents(&filter)?)
        })
        .await?;
    let entries = hits
        .into_iter()
        .map(|h| DocEntry { doc: docs::without_content(h.doc), score: h.score, snippet: h.snippet, matched: None })
        .collect();
    Ok(Json(entries))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct SearchQuery {
    /// What to look for (at most 2,000 characters).
    #[schemars(length(min = 1, max = 2000), regex(pattern = baton_core::names::NOT_BLANK_PATTERN))]
    q: String,
    /// `hybrid` (the default with an embeddings endpoint), `words` (the default
    /// without) or `meaning`.
    mode: Option<SearchMode>,
    /// Comma-separated tags, all required (applied before ranking).
    tag: Option<String>,
    /// A project id or name (applied before ranking).
    project: Option<String>,
    /// Names starting with this (applied before ranking).
    prefix: Option<String>,
    /// At most this many (10 by default).
    limit: Option<u32>,
}

pub(super) async fn search(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<SearchQuery>,
) -> Result<Json<DocSearch>, AppError> {
    let tags: Vec<String> =
        q.tag.as_deref().unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    let limit = clamp_limit(q.limit, 10, 100);
    let project = match q.project {
        Some(p) => Some(state.store.read(move |r| resolve::project_ref(r, &p)).await?.id),
        None => None,
    };
    let filter = DocFilter { query: None, tags, project, prefix: q.prefix, related_to: None, limit, telling: false };
    Ok(Json(meaning::search(&state, meaning::SearchRequest { query: q.q, mode: q.mode, filter }).await?))
}

/// `GET /api/docs/index`.
pub(super) async fn index(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<DocIndex>, AppError> {
    Ok(Json(index_state(&state, None).await?))
}

/// `POST /api/docs/index`: every document queued to be embedded again.
pub(super) async fn reindex(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
) -> Result<Json<DocIndex>, AppError> {
    caller.require_admin()?;
    let queued = state.store.write(|tx| tx.queue_embeddings(true)).await?;
    state.embed_work.notify_one();
    Ok(Json(index_state(&state, Some(queued)).await?))
}

async fn index_state(state: &Arc<AppState>, queued: Option<u64>) -> Result<DocIndex, AppError> {
    let (status, failures) =
        state.store.read(|r| Ok::<_, AppError>((r.embed_status()?, r.embed_failures(100)?))).await?;
    let config = state.config.embeddings.as_ref();
    Ok(DocIndex {
        endpoint: config.map(|c| c.url.clone()),
        model: status.model,
        dims: status.dims,
        pending: status.pending,
        failed: status.failed,
        failures: failures
            .into_iter()
            .map(|j| IndexFailure {
                name: j.name,
                version: j.version,
                attempts: j.attempts,
                error: j.error.unwrap_or_default(),
                failed: j.failed,
            })
            .collect(),
        queued,
    })
}

pub(super) async fn push(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<PushDoc>,
) -> Result<(StatusCode, Json<DocDetail>), AppError> {
    let writer = caller.session();
    if writer.is_none() {
        caller.require_admin()?;
    }
    let bytes = docs::check_push(&req)?;
    let name = req.name.clone();
    let (created, detail) = state
        .store
        .write(move |tx| {
            let (created, _) = docs::push(tx, req, bytes, writer)?;
            Ok::<_, AppError>((created, docs::detail(tx, &name, None)?))
        })
        .await?;
    state.embed_work.notify_one();
    Ok((if created { StatusCode::CREATED } else { StatusCode::OK }, Json(detail)))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ShowQuery {
    /// An earlier version.
    version: Option<u32>,
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ShowQuery>,
) -> Result<Json<DocDetail>, AppError> {
    Ok(Json(state.store.read(move |r| docs::detail(r, &name, q.version)).await?))
}

/// The content itself, with the document's media type.
pub(super) async fn raw(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
    ApiQuery(q): ApiQuery<ShowQuery>,
) -> Result<Response, AppError> {
    let detail = state.store.read(move |r| docs::detail(r, &name, q.version)).await?;
    let bytes = match (&detail.doc.content, &detail.content_base64) {
        (Some(text), _) => text.clone().into_bytes(),
        (None, Some(b64)) => {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.decode(b64).map_err(AppError::internal)?
        }
        (None, None) => Vec::new(),
    };
    Ok(([(header::CONTENT_TYPE, detail.doc.content_type.clone())], Body::from(bytes)).into_response())
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    let session = caller.session();
    if session.is_none() {
        caller.require_admin()?;
    }
    baton_core::names::validate_doc_name(&name).map_err(|e| AppError::invalid(e.to_string()))?;
    state
        .store
        .write(move |tx| {
            if let Some(s) = &session {
                docs::check_rules(tx, s, &name, docs::Change::Write)?;
            }
            docs::delete(tx, &name)
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
