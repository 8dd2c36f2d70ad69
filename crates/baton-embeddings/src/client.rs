//! The HTTP client of an OpenAI-compatible embeddings endpoint.

use std::time::Duration;

use baton_domain::meaning::{EmbedError, EmbedFuture, Embedder, EmbeddingsConfig};
use serde::Deserialize;
use serde_json::json;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a refusal's body is kept in its error.
const ANSWER_MAX: usize = 300;

/// An embeddings endpoint.
pub struct Client {
    http: reqwest::Client,
    config: EmbeddingsConfig,
}

#[derive(Deserialize)]
struct Answer {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    #[serde(default)]
    index: Option<usize>,
    embedding: Vec<f32>,
}

impl Client {
    /// A client of the endpoint `config` names.
    pub fn new(config: EmbeddingsConfig) -> Result<Self, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("Baton/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("no HTTP client could be made: {e}"))?;
        Ok(Self { http, config })
    }

    async fn request(&self, inputs: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        let url = format!("{}/embeddings", self.config.url.trim_end_matches('/'));
        let mut req = self.http.post(&url).json(&json!({ "model": self.config.model, "input": inputs }));
        if let Some(key) = &self.config.key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.map_err(|e| EmbedError::Unavailable(format!("{url}: {e}")))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
            return Err(EmbedError::Unavailable(format!("{url} answered {status}")));
        }
        let body = resp.bytes().await.map_err(|e| EmbedError::Unavailable(format!("{url}: {e}")))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let excerpt: String = text.chars().take(ANSWER_MAX).collect();
            return Err(EmbedError::Refused(format!("{url} answered {status}: {excerpt}")));
        }
        let answer: Answer = serde_json::from_slice(&body)
            .map_err(|e| EmbedError::Refused(format!("{url} answered something that is not embeddings: {e}")))?;
        if answer.data.len() != inputs.len() {
            return Err(EmbedError::Refused(format!(
                "{url} answered {} vectors for {} inputs",
                answer.data.len(),
                inputs.len()
            )));
        }
        let mut items: Vec<(usize, Vec<f32>)> =
            answer.data.into_iter().enumerate().map(|(i, item)| (item.index.unwrap_or(i), item.embedding)).collect();
        items.sort_by_key(|(i, _)| *i);
        Ok(items.into_iter().map(|(_, v)| v).collect())
    }
}

impl Embedder for Client {
    fn embed<'a>(&'a self, inputs: &'a [String]) -> EmbedFuture<'a> {
        Box::pin(self.request(inputs))
    }
}
