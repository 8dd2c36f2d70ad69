//! The one error type of the HTTP layer and the JSON extractors that produce it.
//!
//! Every failure leaves as `{"error": {"code", "message", "details"}}` with the
//! status of its [`ErrorCode`]. Server errors (5xx) say little to the client; their
//! cause is logged here, once.

use std::error::Error as StdError;

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::api::{ErrorBody, ErrorCode, ErrorDetail};
use baton_core::ids::IdError;
use baton_core::names::NameError;
use baton_core::status::IllegalTransition;
use baton_store::StoreError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// An API error: a stable code, a message for people, optional details, and the
/// underlying cause (logged, never sent).
#[derive(Debug)]
pub struct AppError {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// Machine-readable particulars.
    pub details: Option<Value>,
    /// The cause, for the log.
    source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: None, source: None }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An internal error caused by `source`.
    pub fn internal(source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            details: None,
            source: Some(Box::new(source)),
        }
    }

    /// `kind` `id` does not exist.
    pub fn not_found(kind: &str, id: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("no {kind} {id}"))
            .with_details(serde_json::json!({ "kind": kind, "id": id.to_string() }))
    }

    /// A value that breaks a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// The state does not allow this.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IllegalTransition, message)
    }

    /// The token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            match &self.source {
                Some(source) => {
                    tracing::error!(code = %self.code, error = %source, cause = ?source.source(), "request failed")
                }
                None => {
                    tracing::error!(code = %self.code, message = %self.message, "request failed")
                }
            }
        }
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, details: self.details } };
        (status, axum::Json(body)).into_response()
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what } => Self::new(ErrorCode::AlreadyExists, format!("{what} already exists")),
            StoreError::Closed => Self::new(ErrorCode::Unavailable, "the store is shutting down"),
            StoreError::Unavailable(source) => Self {
                code: ErrorCode::StoreUnavailable,
                message: "the database cannot be reached; try again shortly".into(),
                details: None,
                source: Some(source),
            },
            other => Self::internal(other),
        }
    }
}

impl From<IllegalTransition> for AppError {
    fn from(e: IllegalTransition) -> Self {
        Self::new(ErrorCode::IllegalTransition, e.to_string())
            .with_details(serde_json::json!({ "entity": e.entity, "from": e.from, "to": e.to }))
    }
}

impl From<IdError> for AppError {
    fn from(e: IdError) -> Self {
        Self::new(ErrorCode::InvalidArgument, e.to_string())
    }
}

impl From<NameError> for AppError {
    fn from(e: NameError) -> Self {
        Self::new(ErrorCode::InvalidArgument, e.to_string())
    }
}

/// A JSON body whose every failure is an [`AppError`]: not JSON →
/// `malformed_json`, wrong shape → `invalid_body`, wrong content type →
/// `unsupported_media_type`, too large → `payload_too_large`.
pub struct ApiJson<T>(pub T);

/// Like [`ApiJson`], but an empty body means `T::default()`.
pub struct OptionalJson<T>(pub T);

async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<(bool, Bytes), AppError> {
    let json_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(|v| {
        let mime = v.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    });
    let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::new(ErrorCode::PayloadTooLarge, "the request body is larger than allowed")
        } else {
            AppError::new(ErrorCode::MalformedJson, format!("could not read the request body: {rejection}"))
        }
    })?;
    Ok((json_type.unwrap_or(false), bytes))
}

fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(bytes).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {e}"))
            }
            Category::Data => AppError::new(ErrorCode::InvalidBody, format!("the body has the wrong shape: {e}")),
        }
    })
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let (json_type, bytes) = body_bytes(req, state).await?;
        if !json_type {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        decode(&bytes).map(ApiJson)
    }
}

impl<S: Send + Sync, T: DeserializeOwned + Default> FromRequest<S> for OptionalJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let (json_type, bytes) = body_bytes(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        if !json_type {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "the body must be JSON with Content-Type: application/json",
            ));
        }
        decode(&bytes).map(OptionalJson)
    }
}
