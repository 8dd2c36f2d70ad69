//! A fake OpenAI-compatible embeddings endpoint (`POST /v1/embeddings`), real
//! HTTP on `127.0.0.1:0`: deterministic vectors in which words that mean the same
//! share a dimension, so a test can find "car service interval" by asking for
//! "vehicle maintenance", which the words alone never match.
//!
//! Each word (stop words left out) is mapped through a small synonym table to a
//! concept, and the concept (with the model's name) hashed to one dimension; a
//! text's vector counts its concepts there. It answers as OpenAI documents:
//! `{"object": "list", "data": [{"object": "embedding", "index", "embedding"}],
//! "model", "usage"}`, takes `input` as a string or a list, and can go down
//! (connections refused), answer errors, answer vectors of another dimension,
//! and require a bearer key.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// Words that mean the same thing, and the concept they share.
const SYNONYMS: &[(&str, &[&str])] = &[
    ("vehicle", &["car", "cars", "automobile", "automobiles", "vehicle", "vehicles", "truck"]),
    ("maintenance", &["service", "servicing", "maintenance", "upkeep", "repair", "repairs"]),
    ("schedule", &["interval", "intervals", "schedule", "cadence", "every"]),
    ("database", &["database", "db", "postgres", "postgresql", "sqlite", "datastore"]),
    ("failure", &["bug", "bugs", "defect", "failure", "crash", "fault", "error"]),
    ("money", &["cost", "costs", "price", "budget", "spend", "money"]),
    ("speed", &["fast", "quick", "latency", "speed", "slow", "performance"]),
];

/// Words that carry no meaning here.
const STOP_WORDS: &[&str] =
    &["the", "a", "an", "of", "s", "and", "or", "to", "is", "in", "for", "on", "at", "by", "with", "it", "its"];

/// The concept a word stands for (itself when the table has none).
fn concept(word: &str) -> &str {
    SYNONYMS.iter().find(|(_, words)| words.contains(&word)).map_or(word, |(c, _)| c)
}

/// FNV-1a, so vectors are the same on every machine and run.
fn hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The fake's vector of `text` under `model`, with `dims` dimensions.
pub fn vector(model: &str, text: &str, dims: usize) -> Vec<f32> {
    let mut v = vec![0f32; dims.max(1)];
    for word in text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase) {
        if STOP_WORDS.contains(&word.as_str()) {
            continue;
        }
        let dim = (hash(&format!("{model}\u{0}{}", concept(&word))) % v.len() as u64) as usize;
        v[dim] += 1.0;
    }
    v
}

#[derive(Debug)]
struct Inner {
    dims: usize,
    key: Option<String>,
    errors: Vec<u16>,
    requests: Vec<Value>,
    delay: Duration,
}

/// A running (or stopped) fake endpoint.
pub struct FakeEmbeddings {
    /// The API's base URL, as `baton up --embeddings` takes it
    /// (`http://127.0.0.1:PORT/v1`).
    pub url: String,
    port: u16,
    inner: Arc<Mutex<Inner>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl FakeEmbeddings {
    /// Starts one answering `dims`-dimensional vectors.
    pub async fn start(dims: usize) -> Self {
        let inner = Inner { dims, key: None, errors: Vec::new(), requests: Vec::new(), delay: Duration::ZERO };
        let mut me = Self { url: String::new(), port: 0, inner: Arc::new(Mutex::new(inner)), server: None };
        me.listen().await;
        me
    }

    async fn listen(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind the fake");
        self.port = listener.local_addr().expect("a local address").port();
        self.url = format!("http://127.0.0.1:{}/v1", self.port);
        let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state(Arc::clone(&self.inner));
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Answers vectors of this many dimensions from now on.
    pub fn set_dims(&self, dims: usize) {
        self.inner.lock().unwrap().dims = dims;
    }

    /// Refuses requests without `Authorization: Bearer KEY`.
    pub fn require_key(&self, key: &str) {
        self.inner.lock().unwrap().key = Some(key.to_owned());
    }

    /// Answers the next requests with these statuses, in order.
    pub fn fail(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().errors.extend(statuses);
    }

    /// Waits this long before each answer.
    pub fn delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Stops listening: connections are refused until [`FakeEmbeddings::start_again`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again, on the same port.
    pub async fn start_again(&mut self) {
        self.stop();
        crate::receiver::port_free(self.port).await;
        self.listen().await;
    }

    /// Every request's body so far.
    pub fn requests(&self) -> Vec<Value> {
        self.inner.lock().unwrap().requests.clone()
    }
}

impl Drop for FakeEmbeddings {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn embeddings(State(inner): State<Arc<Mutex<Inner>>>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    let (dims, key, error, delay) = {
        let mut i = inner.lock().unwrap();
        i.requests.push(body.clone());
        let error = if i.errors.is_empty() { None } else { Some(i.errors.remove(0)) };
        (i.dims, i.key.clone(), error, i.delay)
    };
    tokio::time::sleep(delay).await;
    if let Some(status) = error {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        return (status, Json(json!({ "error": { "message": "scripted failure", "type": "server_error" } })))
            .into_response();
    }
    let given = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("");
    if key.is_some_and(|k| given != format!("Bearer {k}")) {
        let error = json!({ "error": { "message": "Incorrect API key provided", "type": "invalid_request_error", "code": "invalid_api_key" } });
        return (StatusCode::UNAUTHORIZED, Json(error)).into_response();
    }
    let model = body["model"].as_str().unwrap_or("").to_owned();
    let inputs: Vec<String> = match &body["input"] {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().map(|i| i.as_str().unwrap_or("").to_owned()).collect(),
        _ => {
            let error = json!({ "error": { "message": "'input' must be a string or an array of strings", "type": "invalid_request_error" } });
            return (StatusCode::BAD_REQUEST, Json(error)).into_response();
        }
    };
    let tokens: usize = inputs.iter().map(|i| i.split_whitespace().count()).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| json!({ "object": "embedding", "index": i, "embedding": vector(&model, text, dims) }))
        .collect();
    Json(json!({ "object": "list", "data": data, "model": model, "usage": { "prompt_tokens": tokens, "total_tokens": tokens } }))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
        let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
        dot / (norm(a) * norm(b))
    }

    #[test]
    fn synonyms_share_dimensions_and_models_differ() {
        let car = vector("m", "the car's service interval", 64);
        let vehicle = vector("m", "vehicle maintenance", 64);
        let soup = vector("m", "tomato soup recipe", 64);
        assert!(cosine(&car, &vehicle) > 0.7, "{}", cosine(&car, &vehicle));
        assert!(cosine(&soup, &vehicle) < 0.3);
        assert_ne!(vector("m", "vehicle", 64), vector("other", "vehicle", 64));
    }
}
