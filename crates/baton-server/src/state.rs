//! The coordinator's shared state and configuration.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use baton_core::ids::{LauncherId, RunId};
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
    /// Where binary documents of the context store are kept (`None`: text only).
    pub blobs_dir: Option<std::path::PathBuf>,
    /// Baton's own git hooks (`pre-receive`), run by pushes to `/git/…`.
    pub git_hooks_dir: Option<std::path::PathBuf>,
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
            blobs_dir: None,
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

/// How long a dashboard login link works.
pub const LOGIN_CODE_TTL: Duration = Duration::from_secs(15 * 60);

/// What the coordinator knows of a connected launcher beyond the database.
#[derive(Debug)]
pub struct LauncherLive {
    /// When it was last heard from.
    pub last_seen: Instant,
    /// Stop orders delivered and when, so a poll repeats them only when unanswered.
    pub stops_sent: HashMap<RunId, Instant>,
}

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
    /// Known tokens.
    pub tokens: TokenCache,
    /// Woken whenever launchers may have something to do (runs queued, stops asked).
    pub work: Notify,
    /// Connected launchers.
    pub launchers: Mutex<HashMap<LauncherId, LauncherLive>>,
    /// Launchers whose polls are waiting for work now.
    pub polling: Mutex<std::collections::HashSet<LauncherId>>,
    /// Counters.
    pub metrics: Metrics,
    /// When the coordinator started.
    pub started: Instant,
    /// The merge queue.
    pub merges: tokio::sync::mpsc::UnboundedSender<crate::review::MergeJob>,
    /// One-time dashboard login codes (hashed) and when each expires.
    pub login_codes: Mutex<HashMap<String, Instant>>,
}

impl AppState {
    /// State over a store, and the receiving end of its merge queue (give it to
    /// [`crate::review::spawn_merge_queue`]).
    pub fn new(
        store: Store,
        config: ServerConfig,
    ) -> (Self, tokio::sync::mpsc::UnboundedReceiver<crate::review::MergeJob>) {
        let (merges, jobs) = tokio::sync::mpsc::unbounded_channel();
        let state = Self {
            store,
            config,
            tokens: TokenCache::default(),
            work: Notify::new(),
            launchers: Mutex::new(HashMap::new()),
            polling: Mutex::default(),
            metrics: Metrics::default(),
            started: Instant::now(),
            merges,
            login_codes: Mutex::new(HashMap::new()),
        };
        (state, jobs)
    }

    /// A fresh one-time login link for the dashboard, valid for [`LOGIN_CODE_TTL`].
    pub fn login_link(&self) -> String {
        let code = crate::auth::new_token(baton_core::model::TokenKind::Admin);
        let code = code.trim_start_matches("bta_").to_owned();
        if let Ok(mut codes) = self.login_codes.lock() {
            let now = Instant::now();
            codes.retain(|_, expires| *expires > now);
            codes.insert(crate::auth::hash_token(&code), now + LOGIN_CODE_TTL);
        }
        format!("{}/login?code={code}", self.config.public_url)
    }

    /// Takes a login code: true once, while it is fresh.
    pub fn redeem_login_code(&self, code: &str) -> bool {
        let Ok(mut codes) = self.login_codes.lock() else { return false };
        codes.remove(&crate::auth::hash_token(code)).is_some_and(|expires| expires > Instant::now())
    }

    /// Wakes every waiting launcher poll.
    pub fn wake_launchers(&self) {
        self.work.notify_waiters();
    }

    /// Records that a launcher was heard from.
    pub fn launcher_seen(&self, id: &LauncherId) {
        if let Ok(mut map) = self.launchers.lock() {
            map.entry(id.clone())
                .and_modify(|l| l.last_seen = Instant::now())
                .or_insert_with(|| LauncherLive { last_seen: Instant::now(), stops_sent: HashMap::new() });
        }
    }
}
