//! The coordinator's shared state and configuration: the store, the settings
//! the domain reads, the known tokens, the launchers waiting for work and what
//! wakes them, the background workers' signals, and the integrations the domain
//! calls through its own traits.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_core::ids::LauncherId;
use baton_store::Store;
use tokio::sync::Notify;

use crate::Forge;
use crate::tokens::TokenCache;

/// How the coordinator behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// The URL agents and launchers use to reach the coordinator (`BATON_URL`).
    pub public_url: String,
    /// How often launchers send heartbeats.
    pub heartbeat_interval: Duration,
    /// How long a launcher may be silent before its runs are considered lost.
    pub launcher_timeout: Duration,
    /// Seconds between interrupt and SIGKILL when an agent is stopped.
    pub grace_s: u64,
    /// How deep delegation (an agent starting tasks that start tasks) may go.
    pub max_delegation_depth: u32,
    /// The largest single event, in bytes of JSON.
    pub max_event_bytes: usize,
    /// How long lead heartbeats are kept (each project's newest always is).
    pub heartbeat_retention: Duration,
    /// How long a settled task's printed output stays in the events table before
    /// it is archived (see [`crate::retention`]); forever when none.
    pub retain_output: Option<Duration>,
    /// How webhook deliveries are sent and retried, and how long action links work.
    pub webhooks: WebhookSettings,
    /// The data directory of an SQLite store (for `POST /api/backup`); none
    /// on PostgreSQL.
    pub data_dir: Option<std::path::PathBuf>,
    /// Where the context store's embeddings come from; none: search by words only.
    pub embeddings: Option<crate::meaning::EmbeddingsConfig>,
}

/// How webhook deliveries are sent and retried.
#[derive(Debug, Clone)]
pub struct WebhookSettings {
    /// The waits between tries, in order; the last repeats until the window ends.
    pub retries: Vec<Duration>,
    /// How long a delivery is tried for before it is given up on.
    pub window: Duration,
    /// How long one try may take.
    pub timeout: Duration,
    /// How long a one-tap action link works.
    pub link_ttl: Duration,
}

impl Default for WebhookSettings {
    /// About 5 s, 30 s, 2 min, 10 min, 1 h, then hourly, for 24 h in all; 10 s a
    /// try; links for 24 h.
    fn default() -> Self {
        Self {
            retries: [5, 30, 120, 600, 3600].into_iter().map(Duration::from_secs).collect(),
            window: Duration::from_secs(86_400),
            timeout: Duration::from_secs(10),
            link_ttl: Duration::from_secs(86_400),
        }
    }
}

impl Config {
    /// Defaults for a coordinator reachable at `public_url`.
    pub fn new(public_url: impl Into<String>) -> Self {
        Self {
            public_url: public_url.into(),
            heartbeat_interval: Duration::from_secs(5),
            launcher_timeout: Duration::from_secs(30),
            grace_s: 10,
            max_delegation_depth: 4,
            max_event_bytes: 1024 * 1024,
            heartbeat_retention: Duration::from_secs(86_400),
            retain_output: None,
            webhooks: WebhookSettings::default(),
            data_dir: None,
            embeddings: None,
        }
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
    /// Launcher polls' claim transactions, and the microseconds they took in
    /// all (waiting for the store's writer included).
    pub claims: AtomicU64,
    pub claim_micros: AtomicU64,
    /// Of which spent running the claim (not waiting for the writer).
    pub claim_work_micros: AtomicU64,
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
    pub config: Config,
    /// This coordinator's name among the replicas sharing the store.
    pub replica: String,
    /// Known tokens.
    pub tokens: TokenCache,
    /// Woken when a merge request may be waiting.
    pub merge_work: Notify,
    /// Wakes the forge's worker: a task of a project with a forge succeeded.
    pub forge_work: Notify,
    /// Woken when a webhook delivery may be due.
    pub delivery_work: Notify,
    /// Woken when a document may wait to be embedded.
    pub embed_work: Notify,
    /// Whether this replica holds the timers' lease (runs the timers and the
    /// merge queue) now.
    pub leader: AtomicBool,
    /// Launchers whose polls are waiting for work on this replica now, each with
    /// what wakes it.
    pub polling: Mutex<std::collections::HashMap<LauncherId, Waiting>>,
    /// Runs queued per executor whose wake went to only some of the waiting
    /// launchers and that no claim here has taken yet: the others are woken a
    /// moment later while this is above zero.
    pub unclaimed: Mutex<std::collections::HashMap<baton_core::agent::ExecutorKind, u32>>,
    /// Launchers woken for queued runs whose claim has not ended yet: the others
    /// are woken only once these have claimed (or after [`SECOND_WAKE_LATEST`]).
    pub claiming: Mutex<std::collections::HashSet<LauncherId>>,
    /// Counters.
    pub metrics: Metrics,
    /// When the coordinator started.
    pub started: Instant,
    /// The projects' forge, for merges through it (`merge_via = "forge"`).
    pub forge: Arc<dyn Forge>,
    /// The embeddings endpoint (with `config.embeddings`).
    pub embedder: Option<Arc<dyn crate::meaning::Embedder>>,
    /// The stored vectors, kept in memory for searches.
    pub vectors: crate::meaning::VectorIndex,
}

impl AppState {
    /// State over a store.
    pub fn new(store: Store, config: Config) -> Self {
        Self {
            store,
            config,
            replica: crate::tokens::random_id("c-"),
            tokens: TokenCache::default(),
            merge_work: Notify::new(),
            forge_work: Notify::new(),
            delivery_work: Notify::new(),
            embed_work: Notify::new(),
            leader: AtomicBool::new(false),
            polling: Mutex::default(),
            unclaimed: Mutex::default(),
            claiming: Mutex::default(),
            metrics: Metrics::default(),
            started: Instant::now(),
            forge: Arc::new(crate::forge::NoForge),
            embedder: None,
            vectors: crate::meaning::VectorIndex::default(),
        }
    }

    /// The same state, embedding documents through `embedder`.
    pub fn with_embedder(mut self, embedder: Arc<dyn crate::meaning::Embedder>) -> Self {
        self.embedder = Some(embedder);
        self
    }

    /// The same state, merging through `forge`.
    pub fn with_forge(mut self, forge: Arc<dyn Forge>) -> Self {
        self.forge = forge;
        self
    }

    /// A fresh one-time login link for the dashboard, valid for [`LOGIN_CODE_TTL`]
    /// on every replica.
    pub async fn login_link(&self) -> Result<String, crate::Error> {
        let code = crate::tokens::new_token(baton_core::model::TokenKind::Admin);
        let code = code.trim_start_matches("bta_").to_owned();
        let hash = crate::tokens::hash_token(&code);
        let expires = baton_core::Timestamp::now().plus_millis(LOGIN_CODE_TTL.as_millis() as i64);
        self.store.write(move |tx| tx.put_login_code(&hash, expires)).await?;
        Ok(format!("{}/login?code={code}", self.config.public_url))
    }

    /// Takes a login code: true once, while it is fresh.
    pub async fn redeem_login_code(&self, code: &str) -> Result<bool, crate::Error> {
        let hash = crate::tokens::hash_token(code);
        let expires = self.store.write(move |tx| tx.take_login_code(&hash)).await?;
        Ok(expires.is_some_and(|at| at > baton_core::Timestamp::now()))
    }

    /// Wakes every launcher poll waiting on this replica.
    pub fn wake_launchers(self: &Arc<Self>) {
        self.wake(&crate::scheduler::Wake { all: true, ..Default::default() });
    }

    /// Wakes the launcher polls waiting on this replica that `wake` names. For
    /// runs queued, as many launchers of their executor as there are runs, the
    /// ones with the most free slots first; the rest only if the runs are still
    /// unclaimed after [`SECOND_WAKE`] (one that was woken could not take them).
    pub fn wake(self: &Arc<Self>, wake: &crate::scheduler::Wake) {
        let Ok(polling) = self.polling.lock() else { return };
        let mut woken = std::collections::HashSet::new();
        for (id, waiting) in polling.iter() {
            if wake.all || wake.launchers.contains(id) {
                waiting.notify.notify_one();
                woken.insert(id.clone());
            }
        }
        for (executor, n) in &wake.executors {
            // Not yet known (a poll before its first claim) counts as room.
            let free = |w: &Waiting| w.free.unwrap_or(u32::MAX);
            let mut candidates: Vec<(&LauncherId, &Waiting)> = polling
                .iter()
                .filter(|(id, w)| !woken.contains(*id) && w.executors.contains(executor) && free(w) > 0)
                .collect();
            candidates.sort_by(|a, b| free(b.1).cmp(&free(a.1)).then_with(|| a.0.cmp(b.0)));
            // A freed slot (0 runs queued) wakes one launcher, and no second wake.
            let mut taken = 0u32;
            let mut these = Vec::new();
            for (id, waiting) in &candidates {
                if taken >= (*n).max(1) {
                    break;
                }
                waiting.notify.notify_one();
                woken.insert((*id).clone());
                these.push((*id).clone());
                taken = taken.saturating_add(free(waiting));
            }
            if *n > 0 && candidates.iter().any(|(id, _)| !woken.contains(*id)) {
                if let Ok(mut unclaimed) = self.unclaimed.lock() {
                    *unclaimed.entry(*executor).or_default() += n;
                }
                if let Ok(mut claiming) = self.claiming.lock() {
                    claiming.extend(these.iter().cloned());
                }
                let (me, executor) = (Arc::clone(self), *executor);
                tokio::spawn(async move {
                    // Once the launchers woken have claimed: a claim that waits
                    // for the store must not bring every other launcher's claim
                    // down on it too.
                    let start = std::time::Instant::now();
                    loop {
                        tokio::time::sleep(SECOND_WAKE).await;
                        let busy = me.claiming.lock().map(|c| these.iter().any(|id| c.contains(id))).unwrap_or(false);
                        if !busy || start.elapsed() >= SECOND_WAKE_LATEST {
                            break;
                        }
                    }
                    me.wake_the_rest(executor);
                });
            }
        }
    }

    /// A launcher's claim ended (whatever it took).
    pub fn claim_ended(&self, launcher: &LauncherId) {
        if let Ok(mut claiming) = self.claiming.lock() {
            claiming.remove(launcher);
        }
    }

    /// Runs of `executor` were claimed here.
    pub fn claimed(&self, executor: baton_core::agent::ExecutorKind, n: u32) {
        if let Ok(mut unclaimed) = self.unclaimed.lock()
            && let Some(left) = unclaimed.get_mut(&executor)
        {
            *left = left.saturating_sub(n);
        }
    }

    /// The second wake: every waiting launcher of `executor`, if runs woken for
    /// are still unclaimed.
    fn wake_the_rest(&self, executor: baton_core::agent::ExecutorKind) {
        let left = self.unclaimed.lock().map(|mut u| u.remove(&executor).unwrap_or(0)).unwrap_or(0);
        if left == 0 {
            return;
        }
        if let Ok(polling) = self.polling.lock() {
            for waiting in polling.values().filter(|w| w.executors.contains(&executor)) {
                waiting.notify.notify_one();
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
    /// Its free slots when it last claimed (none before its first claim).
    pub free: Option<u32>,
}

/// How long after a wake that went to some launchers the others are woken, when
/// the runs it was for are still unclaimed and the launchers woken have claimed.
pub const SECOND_WAKE: Duration = Duration::from_millis(25);

/// The others are woken by then, even if a launcher woken has not claimed yet.
pub const SECOND_WAKE_LATEST: Duration = Duration::from_millis(500);
