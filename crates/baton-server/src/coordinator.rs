//! [`Coordinator`]: the one way to build a running coordinator from a store and
//! its configuration. `baton up` calls it; so could anything that embeds Baton.
//! It wires the domain to its integrations (the forge, webhook deliveries) and
//! starts the background work of each.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::ids::LauncherId;
use baton_core::model::TokenKind;
use baton_store::Store;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use baton_domain::{AppState, Config, notices, projects, review, timers};

use crate::api;
use crate::auth::{new_token, token_record};
use crate::error::AppError;

/// How the coordinator behaves: the domain's settings, and the HTTP server's.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The domain's settings (its public URL, timeouts, limits, webhooks).
    pub coordinator: Config,
    /// Host names (without port) the coordinator answers to; `None` answers any.
    pub allowed_hosts: Option<Vec<String>>,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Baton's own git hooks (`pre-receive`), run by pushes to `/git/…`.
    pub git_hooks_dir: Option<PathBuf>,
}

impl ServerConfig {
    /// Defaults for a coordinator reachable at `public_url`, answering on loopback.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            coordinator: Config::new(public_url),
            allowed_hosts: Some(vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()]),
            max_body_bytes: 2 * 1024 * 1024,
            git_hooks_dir: None,
        }
    }

    /// Whether a `Host` header names this coordinator.
    pub fn host_allowed(&self, host_header: &str) -> bool {
        let Some(allowed) = &self.allowed_hosts else {
            return true;
        };
        let host = match host_header.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host_header,
        };
        allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
    }
}

/// A running coordinator: its shared state, and the work it does in the
/// background (following the store's notices, the timers under their lease, the
/// merge queue's worker). Several may share one store (PostgreSQL), all active.
pub struct Coordinator {
    state: Arc<AppState>,
    http: Arc<ServerConfig>,
    background: Vec<JoinHandle<()>>,
}

impl Coordinator {
    /// Builds a coordinator over `store` and starts its background work.
    pub async fn start(store: Store, config: ServerConfig) -> Result<Self, AppError> {
        let forge = Arc::new(baton_forge::Forges);
        let mut state = AppState::new(store, config.coordinator.clone()).with_forge(forge);
        if let Some(embeddings) = &config.coordinator.embeddings {
            let client = baton_embeddings::Client::new(embeddings.clone())
                .map_err(|e| AppError::new(baton_core::api::ErrorCode::Unavailable, e))?;
            state = state.with_embedder(Arc::new(client));
        }
        let state = Arc::new(state);
        projects::ensure_builtin_agents(&state).await?;
        let background = vec![
            tokio::spawn(notices::follow(Arc::clone(&state))),
            tokio::spawn(timers::run(Arc::clone(&state))),
            tokio::spawn(review::merge_worker(Arc::clone(&state))),
            tokio::spawn(baton_forge::worker(Arc::clone(&state))),
            tokio::spawn(baton_webhooks::worker(Arc::clone(&state))),
            tokio::spawn(baton_chat::worker(Arc::clone(&state))),
            tokio::spawn(baton_chat::connections(Arc::clone(&state))),
            tokio::spawn(baton_embeddings::worker(Arc::clone(&state))),
        ];
        Ok(Self { state, http: Arc::new(config), background })
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The HTTP API, the dashboard, `/git` and `/mcp`.
    pub fn router(&self) -> axum::Router {
        api::app(Arc::clone(&self.state), Arc::clone(&self.http))
    }

    /// Accepts `token` as an admin token (only its hash is kept).
    pub async fn trust_admin_token(&self, token: &str) -> Result<(), AppError> {
        let record = token_record(token, TokenKind::Admin, None);
        self.state.store.write(move |tx| tx.put_token(&record)).await?;
        Ok(())
    }

    /// A fresh token for launcher `id`; its earlier tokens stop working.
    pub async fn launcher_token(&self, id: &LauncherId) -> Result<String, AppError> {
        let token = new_token(TokenKind::Launcher);
        let record = token_record(&token, TokenKind::Launcher, Some(id.to_string()));
        let subject = id.to_string();
        self.state
            .store
            .write(move |tx| {
                tx.delete_tokens(TokenKind::Launcher.as_str(), Some(&subject))?;
                tx.put_token(&record)
            })
            .await?;
        Ok(token)
    }

    /// What in the projects' configuration would stop an integration (a forge
    /// token or webhook secret variable that is not set), for `baton up` to say
    /// at start rather than at the first pull request.
    pub async fn configuration_warnings(&self) -> Vec<String> {
        match self.state.store.read(|r| r.projects()).await {
            Ok(projects) => baton_forge::check_configuration(&projects),
            Err(_) => Vec::new(),
        }
    }

    /// A one-time dashboard login link.
    pub async fn login_link(&self) -> Result<String, AppError> {
        Ok(self.state.login_link().await?)
    }

    /// Moves binary documents that an earlier Baton kept as files (named by
    /// their SHA-256) into the store, and removes the files; how many moved.
    pub async fn import_blobs(&self, dir: &Path) -> Result<usize, AppError> {
        let Ok(entries) = std::fs::read_dir(dir) else { return Ok(0) };
        let mut moved = 0;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.len() != 64 || !name.bytes().all(|b| b.is_ascii_hexdigit()) {
                continue;
            }
            let bytes = std::fs::read(entry.path()).map_err(AppError::internal)?;
            let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
            if sha != name {
                tracing::warn!(file = %entry.path().display(), "a stored document's bytes do not match its name; left as is");
                continue;
            }
            self.state.store.write(move |tx| tx.put_blob(&sha, &bytes)).await?;
            std::fs::remove_file(entry.path()).map_err(AppError::internal)?;
            moved += 1;
        }
        let _ = std::fs::remove_dir(dir);
        Ok(moved)
    }

    /// Stops the background work and gives up the timers' lease, so another
    /// replica takes them over at once.
    pub async fn stop(self) {
        for task in &self.background {
            task.abort();
        }
        timers::release(&self.state).await;
    }
}
