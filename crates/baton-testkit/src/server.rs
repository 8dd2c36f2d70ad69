//! The HTTP server: routes each API to its module, records every request.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::script::Script;
use crate::{anthropic, gemini, openai};

/// What the handlers share.
pub(crate) struct Shared {
    /// The script.
    pub script: Script,
    /// Every request: `{path, body}`.
    pub requests: Mutex<Vec<Value>>,
    /// For unique ids.
    counter: AtomicU64,
    /// Requests refused for rate limits so far.
    refused: AtomicU64,
}

impl Shared {
    /// Records a request.
    pub fn record(&self, path: &str, body: &Value) {
        if let Ok(mut r) = self.requests.lock() {
            r.push(json!({ "path": path, "body": body }));
        }
    }

    /// A 429 with `Retry-After` while the script's throttle still refuses
    /// (the body in Anthropic's shape, which the other CLIs read as an error too).
    pub fn throttled(&self) -> Option<Response> {
        let t = self.script.throttle.as_ref()?;
        if self.refused.fetch_add(1, Ordering::SeqCst) >= t.requests {
            return None;
        }
        let body = json!({ "type": "error", "error": { "type": "rate_limit_error", "message": "Rate limited by the fake model" } });
        let mut response = json_status(429, body);
        if let Ok(value) = axum::http::HeaderValue::from_str(&t.retry_after_s.to_string()) {
            response.headers_mut().insert("retry-after", value);
        }
        Some(response)
    }

    /// A fresh id with a prefix.
    pub fn id(&self, prefix: &str) -> String {
        format!("{prefix}_fake_{:08}", self.counter.fetch_add(1, Ordering::Relaxed))
    }
}

/// A running fake model server.
pub struct FakeModel {
    /// Its base URL, like `http://127.0.0.1:43123`.
    pub url: String,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeModel {
    /// Starts a server on a free port of 127.0.0.1.
    pub async fn start(script: Script) -> std::io::Result<FakeModel> {
        Self::start_on("127.0.0.1:0".parse().expect("a valid address"), script).await
    }

    /// Starts a server on `addr`.
    pub async fn start_on(addr: SocketAddr, script: Script) -> std::io::Result<FakeModel> {
        let shared = Arc::new(Shared {
            script,
            requests: Mutex::new(Vec::new()),
            counter: AtomicU64::new(1),
            refused: AtomicU64::new(0),
        });
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let app = router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeModel { url, shared, task })
    }

    /// Every request received so far.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(ok).head(ok))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .route("/v1/responses", post(openai::responses))
        .route("/v1beta/models/{*call}", post(gemini::call))
        .route("/_fake/requests", get(requests))
        .route("/_fake/limited", get(limited))
        .fallback(unknown)
        .with_state(shared)
}

async fn ok() -> StatusCode {
    StatusCode::OK
}

/// A request any client can make: refused while the throttle refuses, else 200.
async fn limited(State(shared): State<Arc<Shared>>) -> Response {
    shared.record("/_fake/limited", &Value::Null);
    shared.throttled().unwrap_or_else(|| axum::Json(json!({ "ok": true })).into_response())
}

async fn requests(State(shared): State<Arc<Shared>>) -> axum::Json<Vec<Value>> {
    axum::Json(shared.requests.lock().map(|r| r.clone()).unwrap_or_default())
}

async fn unknown(State(shared): State<Arc<Shared>>, uri: axum::http::Uri) -> Response {
    shared.record(uri.path(), &Value::Null);
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({ "error": { "message": format!("the fake model has no {}", uri.path()) } })),
    )
        .into_response()
}

/// A finished server-sent-events body.
pub(crate) fn sse(body: String) -> Response {
    ([(axum::http::header::CONTENT_TYPE, "text/event-stream"), (axum::http::header::CACHE_CONTROL, "no-cache")], body)
        .into_response()
}

/// A JSON answer with a status.
pub(crate) fn json_status(status: u16, body: Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), axum::Json(body)).into_response()
}

/// Waits for a step's delay.
pub(crate) async fn delay(ms: u64) {
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

/// The text of a request body, parsed (a body that is not JSON is kept as text).
pub(crate) fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}
