//! `Idempotency-Key`: a creating or acting `POST` sent again with the same key,
//! by the same caller and with the same request, gets its first answer again
//! (its status included) and changes nothing more. A client that lost an answer
//! (a dropped connection, a 503, a double click) sends the request again safely.
//!
//! The first answer is recorded in the same transaction as the change it
//! answers, so a change that committed always has its answer, on every replica;
//! two requests with one key racing on two replicas make one change, and the
//! loser answers with the winner's answer. The same key with another request is
//! refused with 422 `idempotency_key_reused`. Answers are kept for 24 hours
//! (`baton_domain::timers::IDEMPOTENCY_KEEP`).

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::api::ErrorCode;
use baton_core::model::IdempotentAnswer;
use baton_core::time::Timestamp;
use baton_domain::scheduler::Effects;
use baton_domain::tokens::Caller;
use baton_domain::{AppState, transact};
use baton_store::{StoreError, StoreTx};
use schemars::{JsonSchema, SchemaGenerator};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::openapi::{Draft, Input, Output};
use crate::error::AppError;

/// The request header.
pub(crate) const HEADER: &str = "idempotency-key";

/// The longest key accepted.
const MAX_KEY: usize = 255;

/// The key a request carries, if it carries one.
#[derive(Debug, Clone, Default)]
pub(crate) struct IdempotencyKey(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for IdempotencyKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        let Some(value) = parts.headers.get(HEADER) else { return Ok(IdempotencyKey(None)) };
        let key = value.to_str().ok().map(str::trim).unwrap_or_default();
        if key.is_empty() || key.len() > MAX_KEY || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(AppError::invalid(format!(
                "Idempotency-Key must be 1 to {MAX_KEY} visible ASCII characters (a UUID, say)"
            )));
        }
        Ok(IdempotencyKey(Some(key.to_owned())))
    }
}

impl Input for IdempotencyKey {
    fn describe(draft: &mut Draft, _: &mut SchemaGenerator) {
        draft.header(
            "Idempotency-Key",
            "Makes the request safe to send again: a repeat with the same key and the same request gets the first answer, status included, and changes nothing more (kept 24 hours). The same key with another request is refused with 422 idempotency_key_reused.",
            json!({ "type": "string", "minLength": 1, "maxLength": MAX_KEY, "pattern": "^[!-~]+$" }),
        );
    }
}

/// An answer: the one made now, or the first one again.
pub(crate) enum Reply<T> {
    /// Made by this request.
    Fresh(StatusCode, T),
    /// The first answer to an earlier request with the same key.
    Again(IdempotentAnswer),
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self {
            Reply::Fresh(status, value) => (status, axum::Json(value)).into_response(),
            Reply::Again(answer) => {
                let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
                let mut response = (status, answer.body).into_response();
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, "application/json".parse().expect("a header value"));
                response.headers_mut().insert("idempotent-replayed", "true".parse().expect("a header value"));
                response
            }
        }
    }
}

/// A created thing (201), or the first answer again.
pub(crate) struct Created<T>(pub Reply<T>);

impl<T: Serialize> IntoResponse for Created<T> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<T: JsonSchema> Output for Created<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.respond_with("201", "created", g.subschema_for::<T>().to_value());
    }
}

/// A done action (200), or the first answer again.
pub(crate) struct Done<T>(pub Reply<T>);

impl<T: Serialize> IntoResponse for Done<T> {
    fn into_response(self) -> Response {
        self.0.into_response()
    }
}

impl<T: JsonSchema> Output for Done<T> {
    fn describe(draft: &mut Draft, g: &mut SchemaGenerator) {
        draft.respond_with("200", "ok", g.subschema_for::<T>().to_value());
    }
}

/// What a request is, for telling a repeat from another request under the same
/// key: a digest of its method and path and its body as JSON.
pub(crate) fn fingerprint(what: &str, body: &impl Serialize) -> String {
    let mut h = Sha256::new();
    h.update(what.as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(body).unwrap_or_default());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a keyed transaction did not make its change.
enum Failed {
    /// Another request with the same key committed first.
    Raced,
    /// The change was refused or failed.
    App(AppError),
}

impl From<StoreError> for Failed {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what } if what == "idempotency key" => Failed::Raced,
            e => Failed::App(e.into()),
        }
    }
}

/// Runs `op` in one write transaction and answers with `status` and its value,
/// unless `key` was used by `caller` before: then the first answer to it is
/// the answer (or a refusal, for another request). The answer is recorded in
/// the transaction that makes the change.
pub(crate) async fn once<T, F>(
    state: &Arc<AppState>,
    caller: &Caller,
    key: IdempotencyKey,
    request: String,
    status: StatusCode,
    op: F,
) -> Result<Reply<T>, AppError>
where
    T: Serialize + Send + 'static,
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, AppError> + Send + 'static,
{
    let Some(key) = key.0 else {
        let value = transact(state, op).await?;
        return Ok(Reply::Fresh(status, value));
    };
    let scope = caller.token_hash.clone();
    let (s, k, r) = (scope.clone(), key.clone(), request.clone());
    let result = transact(state, move |tx, fx| {
        if let Some(first) = tx.idempotent_answer(&s, &k)? {
            return Ok(Reply::Again(first));
        }
        let value = op(tx, fx).map_err(Failed::App)?;
        let body = serde_json::to_string(&value).map_err(|e| Failed::App(AppError::internal(e)))?;
        let answer = IdempotentAnswer {
            scope: s,
            key: k,
            request: r,
            status: status.as_u16(),
            body,
            created_at: Timestamp::now(),
        };
        tx.put_idempotent_answer(&answer)?;
        Ok(Reply::Fresh(status, value))
    })
    .await;
    let reply = match result {
        Ok(reply) => reply,
        Err(Failed::App(e)) => return Err(e),
        Err(Failed::Raced) => {
            let first = state.store.write(move |tx| tx.idempotent_answer(&scope, &key)).await?;
            Reply::Again(first.ok_or_else(|| AppError::internal(StoreError::Closed))?)
        }
    };
    match reply {
        Reply::Again(first) if first.request != request => Err(AppError::new(
            ErrorCode::IdempotencyKeyReused,
            format!(
                "Idempotency-Key {:?} was used at {} for another request; a key stands for one request and its repeats",
                first.key, first.created_at
            ),
        )),
        reply => Ok(reply),
    }
}
