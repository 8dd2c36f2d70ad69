//! The dispatcher: registration, re-attachment, the poll loop, heartbeats.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use baton_client::{Client, ClientError};
use baton_core::agent::ExecutorKind;
use baton_core::api::{
    AttachRequest, ErrorCode, Heartbeat, MIN_COORDINATOR_PROTOCOL, PollRequest, RegisterLauncher, StopOrder,
};
use baton_core::ids::{LauncherId, RunId};
use baton_core::model::ProgramInfo;
use tokio::sync::{mpsc, watch};

use crate::mirror::Mirrors;
use crate::process::{kill_orphaned_agent, signal_stop, supervised};
use crate::programs::Programs;
use crate::run::Order;
use crate::sandbox::SandboxSupport;
use crate::spool::{self, Spool};
use crate::watcher::Watcher;

/// How a launcher is set up.
#[derive(Debug, Clone)]
pub struct LauncherConfig {
    /// The coordinator's URL; several replicas' URLs separated by commas (calls
    /// go to the next when one cannot be reached).
    pub url: String,
    /// A launcher (or admin) token.
    pub token: String,
    /// Where run spools live.
    pub runs_dir: PathBuf,
    /// Where the launcher keeps its id across restarts.
    pub id_file: PathBuf,
    /// A name for people.
    pub name: String,
    /// How many agents may run at once.
    pub slots: u32,
    /// The `baton` binary, started as `baton supervise DIR` for each agent.
    pub exe: PathBuf,
    /// The largest event sent, in bytes.
    pub max_event_bytes: usize,
    /// How long one poll waits on the coordinator.
    pub poll_wait: Duration,
    /// The first port handed to agents in `BATON_PORT`.
    pub port_base: u16,
    /// How many ports each run gets.
    pub ports_per_run: u16,
    /// Where worktrees are created (per project), when tasks use them.
    pub worktrees_dir: PathBuf,
    /// The launcher's data directory (mirrors, agents' homes): hidden from agents.
    pub data_dir: PathBuf,
    /// More directories hidden from agents (the coordinator's data directory).
    pub hidden: Vec<PathBuf>,
    /// Its labels (`gpu`, `region=eu`).
    pub labels: Vec<String>,
    /// What isolation this host can give agents.
    pub sandbox: SandboxSupport,
    /// Whether projects' checkouts are on this host (the launcher `baton up`
    /// embeds): its mirrors borrow their objects instead of fetching.
    pub local_repos: bool,
    /// A PEM file of CA certificates to trust for the coordinator, for git.
    pub ca_file: Option<PathBuf>,
}

/// A launcher that could not run.
#[derive(Debug, thiserror::Error)]
pub enum LauncherError {
    /// The coordinator could not be used.
    #[error("error talking to the coordinator")]
    Client(#[from] ClientError),
    /// The launcher's directories could not be used.
    #[error("error preparing the launcher's directories")]
    Io(#[from] std::io::Error),
    /// The coordinator and this launcher speak launcher protocols that do not
    /// work together; the message says which to upgrade.
    #[error("{message}")]
    Protocol {
        /// Both protocols, and what to do.
        message: String,
    },
}

/// A run this launcher is working on.
pub(crate) struct Active {
    /// Orders for its actor.
    pub orders: mpsc::UnboundedSender<Order>,
}

/// The launcher.
#[derive(Clone)]
pub struct Launcher {
    pub(crate) config: Arc<LauncherConfig>,
    pub(crate) client: Client,
    pub(crate) watcher: Watcher,
    /// Runs in progress, by id.
    pub(crate) runs: Arc<Mutex<HashMap<RunId, Active>>>,
    /// Port blocks in use.
    pub(crate) ports: Arc<Mutex<Vec<u16>>>,
    /// Its id, once registered.
    pub(crate) id: Arc<Mutex<Option<LauncherId>>>,
    /// Supervisors started ahead of time, waiting for a run.
    pub(crate) standby: Arc<Mutex<Vec<crate::start::Standby>>>,
    /// Warm containers, by image (`container_pool`).
    pub(crate) warm: Arc<crate::warm::Pools>,
    /// The projects' mirrors on this host.
    pub(crate) mirrors: Arc<Mirrors>,
    /// The launcher's own environment, from which agents' are named.
    pub(crate) host_env: Arc<BTreeMap<String, String>>,
    /// How often to send heartbeats (the coordinator says, at registration).
    pub(crate) heartbeat_every: Arc<Mutex<Duration>>,
}

impl Launcher {
    /// A launcher for `config` (nothing happens until [`Launcher::run`]).
    pub fn new(config: LauncherConfig) -> Result<Self, LauncherError> {
        private_dir(&config.data_dir)?;
        std::fs::create_dir_all(&config.runs_dir)?;
        crate::spares::Spares::clear_leftovers(&config.worktrees_dir);
        let client = Client::with_ca(&config.url, Some(config.token.clone()), config.ca_file.as_deref())?;
        let mirrors = Mirrors::new(
            config.data_dir.join("git"),
            client.clone(),
            &config.token,
            config.ca_file.clone(),
            config.local_repos,
        );
        // The launcher's own BATON_* (its token) never reaches an agent: agents'
        // environments are named from this, and BATON_* is never named.
        let host_env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| !k.starts_with("BATON_")).collect();
        crate::warm::Pools::clear_leftovers(&config.data_dir, crate::container::runtime_env(&host_env));
        let warm = Arc::new(crate::warm::Pools::new(&config.data_dir, &config.exe));
        Ok(Self {
            config: Arc::new(config),
            client,
            watcher: Watcher::start()?,
            runs: Arc::default(),
            ports: Arc::default(),
            id: Arc::default(),
            standby: Arc::default(),
            warm,
            mirrors: Arc::new(mirrors),
            host_env: Arc::new(host_env),
            heartbeat_every: Arc::new(Mutex::new(Duration::from_secs(5))),
        })
    }

    /// Runs until `shutdown` turns true. Agents keep running under their
    /// supervisors after the launcher stops, and are re-attached at the next start.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) -> Result<(), LauncherError> {
        let id = tokio::select! {
            id = self.register() => id?,
            _ = shutdown.wait_for(|s| *s) => return Ok(()),
        };
        let heartbeat = tokio::spawn(self.clone().heartbeat_loop(id.clone()));
        let preflight = tokio::spawn(self.clone().preflight_loop(id.clone()));
        self.refill_standby();
        let mut backoff = Duration::from_millis(100);
        loop {
            let running: Vec<RunId> = self.runs.lock().map(|r| r.keys().cloned().collect()).unwrap_or_default();
            let request = PollRequest { wait_ms: self.config.poll_wait.as_millis() as u64, running: Some(running) };
            let response = tokio::select! {
                r = self.client.poll(&id, &request) => r,
                _ = shutdown.wait_for(|s| *s) => break,
            };
            match response {
                Ok(work) => {
                    backoff = Duration::from_millis(100);
                    for order in work.stops {
                        self.stop(order);
                    }
                    for order in work.orders {
                        let launcher = self.clone();
                        tokio::spawn(async move { launcher.carry_out(order).await });
                    }
                    for assignment in work.runs {
                        // Taken into the table now, so the next poll names it (and a
                        // run handed out twice is started once).
                        let (orders, orders_rx) = mpsc::unbounded_channel();
                        let fresh = self.runs.lock().is_ok_and(|mut runs| {
                            let fresh = !runs.contains_key(&assignment.run.id);
                            if fresh {
                                runs.insert(assignment.run.id.clone(), Active { orders });
                            }
                            fresh
                        });
                        if fresh {
                            let launcher = self.clone();
                            tokio::spawn(async move { launcher.start(assignment, orders_rx).await });
                        }
                    }
                }
                Err(ClientError::Api { code: ErrorCode::Conflict | ErrorCode::NotFound, message, .. }) => {
                    tracing::warn!(%message, "the coordinator does not know this launcher as online; registering again");
                    if let Err(e) = self.register().await {
                        heartbeat.abort();
                        preflight.abort();
                        return Err(e);
                    }
                }
                Err(ClientError::Api { code: ErrorCode::UpgradeRequired, message, .. }) => {
                    heartbeat.abort();
                    preflight.abort();
                    return Err(LauncherError::Protocol { message });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "poll failed; retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(backoff) => {}
                        _ = shutdown.wait_for(|s| *s) => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
        heartbeat.abort();
        preflight.abort();
        let running = self.runs.lock().map(|r| r.len()).unwrap_or(0);
        if running > 0 {
            tracing::info!(running, "launcher stopping; its agents keep running and will be re-attached");
        }
        Ok(())
    }

    /// Its id, once registered.
    pub(crate) fn launcher_id(&self) -> Option<LauncherId> {
        self.id.lock().ok().and_then(|id| id.clone())
    }

    fn free_slots(&self) -> u32 {
        let busy = self.runs.lock().map(|r| r.len()).unwrap_or(0) as u32;
        self.config.slots.saturating_sub(busy)
    }

    /// Registers (retrying until the coordinator answers) and re-attaches to the
    /// runs left in the spool directory. A coordinator whose launcher protocol
    /// does not work with this launcher's is an error, not retried.
    async fn register(&self) -> Result<LauncherId, LauncherError> {
        let previous =
            std::fs::read_to_string(&self.config.id_file).ok().and_then(|s| LauncherId::parse(s.trim()).ok());
        let request = RegisterLauncher {
            id: previous,
            name: self.config.name.clone(),
            hostname: hostname(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            slots: self.config.slots,
            executors: ExecutorKind::ALL.to_vec(),
            labels: self.config.labels.clone(),
            sandbox: Some(self.config.sandbox.report()),
        };
        let mut delay = Duration::from_millis(100);
        let id = loop {
            match self.client.register_launcher(&request).await {
                Ok(registered) if registered.protocol < MIN_COORDINATOR_PROTOCOL => {
                    let theirs = registered.protocol.max(1);
                    return Err(LauncherError::Protocol {
                        message: format!(
                            "the coordinator speaks launcher protocol {theirs}; this launcher (Baton {}) needs \
                             {MIN_COORDINATOR_PROTOCOL} or later: upgrade the coordinator first",
                            env!("CARGO_PKG_VERSION")
                        ),
                    });
                }
                Err(ClientError::Api { code: ErrorCode::UpgradeRequired, message, .. }) => {
                    return Err(LauncherError::Protocol { message });
                }
                Ok(registered) => {
                    let every = Duration::from_millis(registered.heartbeat_interval_ms.clamp(100, 60_000));
                    if let Ok(mut h) = self.heartbeat_every.lock() {
                        *h = every;
                    }
                    break registered.launcher.id;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "could not register with the coordinator; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        };
        if let Err(e) = std::fs::write(&self.config.id_file, id.as_str()) {
            tracing::warn!(error = %e, "could not save the launcher id");
        }
        if let Ok(mut slot) = self.id.lock() {
            *slot = Some(id.clone());
        }
        self.reattach(&id).await;
        Ok(id)
    }

    /// Tells the coordinator which runs are still on disk, and follows each one it
    /// still expects; the others are stopped and cleaned up.
    async fn reattach(&self, id: &LauncherId) {
        let known: Vec<RunId> = self.runs.lock().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        let on_disk: Vec<RunId> =
            spool::list(&self.config.runs_dir).into_iter().filter(|r| !known.contains(r)).collect();
        let mut all = known.clone();
        all.extend(on_disk.iter().cloned());
        let response = match self.client.attach(id, &AttachRequest { runs: all }).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not re-attach runs");
                return;
            }
        };
        for entry in response.runs {
            if known.contains(&entry.run_id) {
                if let Some(reason) = entry.stop.filter(|_| entry.assignment.is_none()) {
                    self.stop(StopOrder { run_id: entry.run_id, reason });
                }
                continue;
            }
            let spool = Spool::of(&self.config.runs_dir, &entry.run_id);
            match entry.assignment {
                Some(assignment) => {
                    tracing::info!(run = %entry.run_id, "re-attaching to a run left running");
                    let launcher = self.clone();
                    let stop = entry.stop;
                    tokio::spawn(async move { launcher.resume_actor(spool, assignment, stop).await });
                }
                None => {
                    tracing::info!(run = %entry.run_id, "cleaning up a run the coordinator no longer expects");
                    tokio::spawn(async move { discard(spool).await });
                }
            }
        }
    }

    /// Passes a stop order to the run's actor; reports runs it does not have.
    fn stop(&self, order: StopOrder) {
        let sent = self
            .runs
            .lock()
            .ok()
            .and_then(|r| r.get(&order.run_id).map(|a| a.orders.send(Order::Stop(order.reason.clone())).is_ok()))
            .unwrap_or(false);
        if !sent {
            let spool = Spool::of(&self.config.runs_dir, &order.run_id);
            if !signal_stop(&spool) {
                let client = self.client.clone();
                tokio::spawn(async move {
                    let report = baton_core::api::RunFinished::ended(
                        baton_core::status::RunStatus::Stopped,
                        "the run was not running on this launcher",
                    );
                    let _ = client.run_finished(&order.run_id, &report).await;
                });
            }
        }
    }

    fn heartbeat(&self, programs: Option<BTreeMap<String, ProgramInfo>>) -> Heartbeat {
        let running: Vec<RunId> = self.runs.lock().map(|r| r.keys().cloned().collect()).unwrap_or_default();
        Heartbeat { running, free_slots: self.free_slots(), programs }
    }

    async fn heartbeat_loop(self, id: LauncherId) {
        loop {
            let every = self.heartbeat_every.lock().map(|h| *h).unwrap_or(Duration::from_secs(5));
            tokio::time::sleep(every).await;
            match self.client.heartbeat(&id, &self.heartbeat(None)).await {
                // What a liveness probe looks at: the coordinator took a heartbeat.
                Ok(_) => {
                    let _ =
                        std::fs::write(self.config.data_dir.join("alive"), baton_core::Timestamp::now().to_string());
                }
                Err(e) => tracing::debug!(error = %e, "heartbeat failed"),
            }
        }
    }

    /// Looks for the programs of the agents this launcher can run, and tells the
    /// coordinator what it found whenever that changes.
    async fn preflight_loop(self, id: LauncherId) {
        let mut programs = Programs::default();
        let mut tick = tokio::time::interval(Duration::from_secs(3));
        loop {
            tick.tick().await;
            let Ok(agents) = self.client.agents().await else { continue };
            // Only the known CLIs are asked their version (see `programs`).
            let mut wanted: BTreeMap<String, bool> = BTreeMap::new();
            for def in agents.iter().map(|a| &a.def) {
                if let Some(program) = def.program() {
                    *wanted.entry(program).or_default() |= def.executor.default_program().is_some();
                }
            }
            let Some(found) = programs.refresh(&wanted).await else { continue };
            match self.client.heartbeat(&id, &self.heartbeat(Some(found.clone()))).await {
                Ok(_) => programs.sent(found),
                Err(e) => tracing::debug!(error = %e, "could not report the agents' programs"),
            }
        }
    }
}

/// Stops a run nobody expects and removes its spool once its supervisor is gone.
async fn discard(spool: Spool) {
    if supervised(&spool) {
        signal_stop(&spool);
        if let Some(pid) = spool.read_pid("supervisor.pid")
            && let Ok(fd) = crate::process::PidFd::open(pid)
        {
            fd.exited().await;
        }
    } else {
        kill_orphaned_agent(&spool);
    }
    let _ = spool.remove();
}

/// Makes a directory only its owner may enter (a launcher's data: tokens, spools).
fn private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

fn hostname() -> String {
    nix::unistd::gethostname().ok().and_then(|h| h.into_string().ok()).unwrap_or_else(|| "localhost".into())
}
