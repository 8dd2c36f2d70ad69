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

/// Like [`ApiJson`], but an empty body (no bytes at all) means `T::default()`.
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

/// Every body of the API is a JSON object. serde would also read a struct from an
/// array of its fields in order (`[null, null]`), which no document allows.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, AppError> {
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        return Err(AppError::new(ErrorCode::InvalidBody, "the body must be a JSON object, not an array"));
    }
    let first = serde_json::from_slice(bytes);
    if let Err(e) = &first
        && e.classify() == serde_json::error::Category::Data
        && let Ok(mut value) = serde_json::from_slice::<serde_json::Value>(bytes)
        && integral_floats(&mut value)
        && let Ok(t) = serde_json::from_value(value)
    {
        return Ok(t);
    }
    first.map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => {
                AppError::new(ErrorCode::MalformedJson, format!("the body is not valid JSON: {e}"))
            }
            Category::Data => AppError::new(ErrorCode::InvalidBody, format!("the body has the wrong shape: {e}")),
        }
    })
}

/// JSON has one kind of number: `3.0` is the integer 3 to JSON Schema, and so to
/// the API. Makes each number with no fraction an integer; says whether any was.
/// (serde_json parses floats exactly, `float_roundtrip`: `1976666841428753.0` is
/// that integer, not a neighbour with a fraction.)
fn integral_floats(value: &mut serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::Number(n) if n.is_f64() => {
            let f = n.as_f64().unwrap_or(f64::NAN);
            let whole = f.fract() == 0.0 && f.abs() < 9.0e15;
            if whole {
                *value = Value::from(f as i64);
            }
            whole
        }
        Value::Array(items) => items.iter_mut().fold(false, |any, v| integral_floats(v) | any),
        Value::Object(fields) => fields.values_mut().fold(false, |any, v| integral_floats(v) | any),
        _ => false,
    }
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
        if bytes.is_empty() {
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

/// A query string whose every failure is an [`AppError`] (`invalid_argument`,
/// saying which parameter), where axum's own `Query` answers in plain text.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, AppError> {
        let query = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(query)
            .map(ApiQuery)
            .map_err(|e| AppError::new(ErrorCode::InvalidArgument, format!("bad query string: {e}")))
    }
}

/// Gives a 4xx answer that is not JSON (from a service of its own, such as the MCP
/// endpoint's) the API's error shape, its text kept as the message.
pub(crate) async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !status.is_client_error() || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let code = match status {
        StatusCode::UNAUTHORIZED => ErrorCode::Unauthorized,
        StatusCode::NOT_FOUND => ErrorCode::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
        StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
        _ => ErrorCode::InvalidArgument,
    };
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let mut answer = AppError::new(code, if message.is_empty() { status.to_string() } else { message }).into_response();
    *answer.status_mut() = status;
    if let Some(allow) = allow {
        answer.headers_mut().insert(header::ALLOW, allow);
    }
    answer
}

/// A client of the MCP endpoint that takes anything (`*/*`, or no Accept at
/// all) takes both answers the streamable HTTP transport gives.
pub(crate) async fn mcp_accept(mut request: Request) -> Request {
    let accept = request.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    if accept.split(',').any(|a| a.split(';').next().unwrap_or("").trim() == "*/*") {
        request
            .headers_mut()
            .insert(header::ACCEPT, header::HeaderValue::from_static("application/json, text/event-stream"));
    }
    request
}

/// A 405 from the MCP endpoint names the methods it takes (RFC 9110 asks for `Allow`).
pub(crate) async fn mcp_allow(mut response: Response) -> Response {
    if response.status() == StatusCode::METHOD_NOT_ALLOWED && !response.headers().contains_key(header::ALLOW) {
        response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, POST, DELETE"));
    }
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn integral_floats_are_integers_even_large_ones() {
        let body = br#"{"project": "p", "prompt": "x", "timeout_s": 1976666841428753.0, "max_retries": 3.0}"#;
        let task: baton_core::api::CreateTask = super::decode(body).unwrap();
        assert_eq!((task.timeout_s, task.max_retries), (Some(1_976_666_841_428_753), Some(3)));
        let fraction = br#"{"project": "p", "prompt": "x", "max_retries": 3.5}"#;
        assert!(super::decode::<baton_core::api::CreateTask>(fraction).is_err());
    }
}
