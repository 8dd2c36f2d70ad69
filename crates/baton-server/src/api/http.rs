//! The HTTP face of [`AppError`], and the JSON extractors that produce it.
//!
//! Every failure leaves as `{"error": {"code", "message", "details"}}` with the
//! status of its [`ErrorCode`]. Server errors (5xx) say little to the client; their
//! cause is logged here, once.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use baton_core::api::{ErrorBody, ErrorCode, ErrorDetail};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use crate::error::AppError;

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
