//! [`Coordinator`]: the one way to build a running coordinator from a store and
//! its configuration. `baton up` calls it; so could anything that embeds Baton.

use std::path::Path;
use std::sync::Arc;

use baton_core::ids::LauncherId;
use baton_core::model::TokenKind;
use baton_store::Store;
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;

use crate::auth::{new_token, token_record};
use crate::error::AppError;
use crate::state::{AppState, ServerConfig};
use crate::{api, leader, notices, projects, review};

/// A running coordinator: its shared state, and the work it does in the
/// background (following the store's notices, the timers under their lease, the
/// merge queue's worker). Several may share one store (PostgreSQL), all active.
pub struct Coordinator {
    state: Arc<AppState>,
    background: Vec<JoinHandle<()>>,
}

impl Coordinator {
    /// Builds a coordinator over `store` and starts its background work.
    pub async fn start(store: Store, config: ServerConfig) -> Result<Self, AppError> {
        let state = Arc::new(AppState::new(store, config));
        projects::ensure_builtin_agents(&state).await?;
        let background = vec![
            tokio::spawn(notices::follow(Arc::clone(&state))),
            tokio::spawn(leader::run(Arc::clone(&state))),
            tokio::spawn(review::merge_worker(Arc::clone(&state))),
            tokio::spawn(crate::forge::worker(Arc::clone(&state))),
            tokio::spawn(crate::webhooks::deliver::worker(Arc::clone(&state))),
        ];
        Ok(Self { state, background })
    }

    /// The shared state.
    pub fn state(&self) -> &Arc<AppState> {
        &self.state
    }

    /// The HTTP API, the dashboard, `/git` and `/mcp`.
    pub fn router(&self) -> axum::Router {
        api::app(Arc::clone(&self.state))
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

    /// A one-time dashboard login link.
    pub async fn login_link(&self) -> Result<String, AppError> {
        self.state.login_link().await
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
        leader::release(&self.state).await;
    }
}
