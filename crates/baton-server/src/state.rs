//! The coordinator's shared state and configuration.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baton_core::ids::LauncherId;
use baton_store::Store;
use tokio::sync::Notify;

use crate::auth::TokenCache;

/// How the coordinator behaves.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The URL agents and launchers use to reach the coordinator (`BATON_URL`).
    pub public_url: String,
    /// Host names (without port) the coordinator answers to; `None` answers any.
    pub allowed_hosts: Option<Vec<String>>,
    /// How often launchers send heartbeats.
    pub heartbeat_interval: Duration,
    /// How long a launcher may be silent before its runs are considered lost.
    pub launcher_timeout: Duration,
    /// Seconds between interrupt and SIGKILL when an agent is stopped.
    pub grace_s: u64,
    /// How deep delegation (an agent starting tasks that start tasks) may go.
    pub max_delegation_depth: u32,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// The largest single event, in bytes of JSON.
    pub max_event_bytes: usize,
    /// Baton's own git hooks (`pre-receive`), run by pushes to `/git/…`.
    pub git_hooks_dir: Option<std::path::PathBuf>,
    /// How long lead heartbeats are kept (each project's newest always is).
    pub heartbeat_retention: Duration,
}

impl ServerConfig {
    /// Defaults for a coordinator reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            allowed_hosts: Some(vec!["127.0.0.1".into(), "localhost".into(), "[::1]".into()]),
            heartbeat_interval: Duration::from_secs(5),
            launcher_timeout: Duration::from_secs(30),
            grace_s: 10,
            max_delegation_depth: 4,
            max_body_bytes: 2 * 1024 * 1024,
            max_event_bytes: 1024 * 1024,
            git_hooks_dir: None,
            heartbeat_retention: Duration::from_secs(86_400),
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

/// How long a dashboard login link works.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Events stored from launchers.
    pub events_ingested: AtomicU64,
    /// Tasks created.
    pub tasks_created: AtomicU64,
    /// Runs handed to launchers.
    pub runs_claimed: AtomicU64,
    /// Live stream clients now.
    pub stream_clients: AtomicU64,
    /// Fetches from `/git` (`git-upload-pack` requests).
    pub git_fetches: AtomicU64,
    /// Pushes to `/git` that ran `receive-pack`.
    pub git_pushes: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

/// Everything request handlers share.
pub struct AppState {
    /// The store.
    pub store: Store,
    /// Configuration.
    pub config: ServerConfig,
    /// This coordinator's name among the replicas sharing the store.
    pub replica: String,
    /// Known tokens.
    pub tokens: TokenCache,
    /// Woken when a merge request may be waiting.
    pub merge_work: Notify,
    /// Whether this replica holds the timers' lease (runs the timers and the
    /// merge queue) now.
    pub leader: AtomicBool,
    /// Launchers whose polls are waiting for work on this replica now, each with
    /// what wakes it.
    pub polling: Mutex<std::collections::HashMap<LauncherId, Waiting>>,
    /// Counters.
    pub metrics: Metrics,
    /// When the coordinator started.
    pub started: Instant,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Store, config: ServerConfig) -> Self {
        Self {
            store,
            config,
            replica: crate::auth::random_id("c-"),
            tokens: TokenCache::default(),
            merge_work: Notify::new(),
            leader: AtomicBool::new(false),
            polling: Mutex::default(),
            metrics: Metrics::default(),
            started: Instant::now(),
        }
    }

    /// A fresh one-time login link for the dashboard, valid for [`LOGIN_CODE_TTL`]
    /// on every replica.
    pub async fn login_link(&self) -> Result<String, crate::error::AppError> {
        let code = crate::auth::new_token(baton_core::model::TokenKind::Admin);
        let code = code.trim_start_matches("bta_").to_owned();
        let hash = crate::auth::hash_token(&code);
        let expires = baton_core::Timestamp::now().plus_millis(LOGIN_CODE_TTL.as_millis() as i64);
        self.store.write(move |tx| tx.put_login_code(&hash, expires)).await?;
        Ok(format!("{}/login?code={code}", self.config.public_url))
    }

    /// Takes a login code: true once, while it is fresh.
    pub async fn redeem_login_code(&self, code: &str) -> Result<bool, crate::error::AppError> {
        let hash = crate::auth::hash_token(code);
        let expires = self.store.write(move |tx| tx.take_login_code(&hash)).await?;
        Ok(expires.is_some_and(|at| at > baton_core::Timestamp::now()))
    }

    /// Wakes every launcher poll waiting on this replica.
    pub fn wake_launchers(&self) {
        self.wake(&crate::scheduler::Wake { all: true, ..Default::default() });
    }

    /// Wakes the launcher polls waiting on this replica that `wake` names.
    pub fn wake(&self, wake: &crate::scheduler::Wake) {
        if let Ok(polling) = self.polling.lock() {
            for (id, waiting) in polling.iter() {
                if wake.wakes(id, &waiting.executors) {
                    waiting.notify.notify_one();
                }
            }
        }
    }

    /// Whether this replica runs the timers now.
    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::Relaxed)
    }
}

/// A launcher's poll waiting for work.
#[derive(Debug, Clone)]
pub struct Waiting {
    /// Woken when it may have work (it keeps a wake that came early).
    pub notify: std::sync::Arc<Notify>,
    /// The executors the launcher runs.
    pub executors: Vec<baton_core::agent::ExecutorKind>,
}
