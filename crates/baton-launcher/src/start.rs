//! Starting a run: preparing its environment, worktree, sandbox and spool,
//! starting its supervisor, and handing it to an actor; and picking up a run
//! found on disk after a restart.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baton_agents::executor::{Executor, Launch, SESSION_VARS, TurnRequest, find_program};
use baton_client::ClientError;
use baton_core::api::{Assignment, FailureKind, RunFinished, RunStarted};
use baton_core::event::NewEvent;
use baton_core::model::SpoolOffsets;
use baton_core::sandbox::{NetworkPolicy, SandboxMode};
use baton_core::status::RunStatus;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc};

use crate::commands::{self, Ended, Sink};
use crate::container::Container;
use crate::env::{AgentEnv, Redactor, home_files, seed_home};
use crate::launcher::{Active, Launcher};
use crate::net::{Coordinator, Egress};
use crate::process::{PidFd, kill_orphaned_agent, signal_stop, supervised};
use crate::run::{Exit, Order, Registration, RunActor};
use crate::sandbox::{Jail, NetPlan, Places, program_roots};
use crate::spool::{Spec, Spool};
use crate::workspace::{Member, Workspace, copy_files, workset_dir};

/// How long a supervisor may take to say whether the agent started.
const SUPERVISOR_START: Duration = Duration::from_secs(30);

/// How many supervisors wait, started, for the next runs.
const STANDBY: usize = 2;

/// Seconds between checkpoints of a working agent's worktree, by default.
const DEFAULT_CHECKPOINT_S: u64 = 60;

/// Why a run could not start.
pub(crate) enum StartFailure {
    /// It was stopped during setup.
    Stopped,
    /// The agent's CLI is not installed; the message says how to install it.
    Missing(String),
    /// Something went wrong; the message says what.
    Failed(String),
}

/// A run prepared and started: its supervisor and everything its actor needs.
pub(crate) struct Prepared {
    /// The supervisor.
    child: tokio::process::Child,
    /// The agent's process group.
    pid: i32,
    /// The task's worktree, when it has one.
    workspace: Option<Workspace>,
    /// A workset task's other projects' worktrees.
    members: Vec<Member>,
    /// The agent's sandbox.
    jail: Jail,
    /// Hides the run's secrets.
    redactor: Redactor,
    /// The agent's ways out of its network namespace, when it has one.
    egress: Option<Egress>,
}

/// A started (or re-attached) run, for its actor.
pub(crate) struct Started {
    /// How the actor learns the supervisor is gone.
    exit: Exit,
    /// What the coordinator has acknowledged of the spool.
    offsets: SpoolOffsets,
    /// The task's worktree, when it has one.
    workspace: Option<Workspace>,
    /// A workset task's other projects' worktrees.
    members: Vec<Member>,
    /// The agent's sandbox (for the checks and the git commands in its worktree).
    jail: Jail,
    /// Hides the run's secrets.
    redactor: Redactor,
    /// The environment of git commands in the worktree.
    git_env: Arc<Vec<(String, String)>>,
    /// The agent's ways out of its network namespace, when it has one.
    egress: Option<Egress>,
}

/// Where a run's agent's network traffic may go: its agent's setting, else its
/// project's, else everywhere.
fn network_of(a: &Assignment) -> NetworkPolicy {
    a.agent.network.clone().or_else(|| a.project.settings.network.clone()).unwrap_or_default()
}

/// A supervisor started ahead of time (`baton supervise --standby`), waiting on its
/// stdin for the spool directory of a run.
pub(crate) struct Standby {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: BufReader<tokio::process::ChildStdout>,
}

impl Standby {
    pub(crate) fn of(
        child: tokio::process::Child,
        stdin: tokio::process::ChildStdin,
        stdout: BufReader<tokio::process::ChildStdout>,
    ) -> Standby {
        Standby { child, stdin, stdout }
    }

    /// Whether it is still there, waiting.
    pub(crate) fn waiting(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

/// The environment of git commands Baton runs in an agent's worktree: enough to
/// find git and the agent's HOME, nothing else.
fn git_env(env: &[(String, String)]) -> Arc<Vec<(String, String)>> {
    Arc::new(env.iter().filter(|(k, _)| matches!(k.as_str(), "PATH" | "HOME" | "TMPDIR")).cloned().collect())
}

/// Removes a worktree made for a start that did not happen (its branch, if any,
/// is on the coordinator).
async fn discard_new(workspace: Option<&(Workspace, bool)>) {
    if let Some((w, true)) = workspace
        && let Err(e) = tokio::fs::remove_dir_all(&w.path).await
    {
        tracing::warn!(worktree = %w.path.display(), error = %e, "could not remove a worktree whose start failed");
    }
}

impl Launcher {
    /// Starts a newly claimed run (already in the launcher's table, with its
    /// orders channel).
    pub(crate) async fn start(self, assignment: Assignment, mut orders_rx: mpsc::UnboundedReceiver<Order>) {
        let run_id = assignment.run.id.clone();
        let spool = Spool::of(&self.config.runs_dir, &run_id);
        let port = self.reserve_ports(None);
        match self.spawn_supervisor(&spool, &assignment, port, &mut orders_rx).await {
            Ok(p) => {
                self.report_started(&assignment, p.pid, &spool, p.workspace.as_ref().map(|w| (w, &p.jail))).await;
                let env = spool.read_spec().map(|s| s.env).unwrap_or_default();
                let started = Started {
                    exit: Exit::Child(p.child),
                    offsets: SpoolOffsets::default(),
                    workspace: p.workspace,
                    members: p.members,
                    jail: p.jail,
                    redactor: p.redactor,
                    git_env: git_env(&env),
                    egress: p.egress,
                };
                self.spawn_actor(spool, assignment, started, port, orders_rx);
            }
            Err(failure) => {
                let (status, error, failure) = match failure {
                    StartFailure::Stopped => (RunStatus::Stopped, None, None),
                    StartFailure::Failed(e) => (RunStatus::Failed, Some(e), None),
                    StartFailure::Missing(e) => (RunStatus::Failed, Some(e), Some(FailureKind::CliMissing)),
                };
                tracing::warn!(run = %run_id, ?status, ?error, "the run did not start");
                let report = RunFinished {
                    status,
                    exit_code: None,
                    signal: None,
                    error,
                    git: None,
                    checks: Vec::new(),
                    result: None,
                    failure,
                };
                if let Err(e) = self.client.run_finished(&run_id, &report).await {
                    tracing::warn!(run = %run_id, error = %e, "could not report the failed start");
                }
                let _ = spool.remove();
                self.forget(&run_id, port);
            }
        }
    }

    /// Follows a run found on disk after a restart, from the offsets the
    /// coordinator acknowledged. Its sandbox and secrets are read back from its spec.
    pub(crate) async fn resume_actor(self, spool: Spool, assignment: Assignment, stop: Option<String>) {
        let run_id = assignment.run.id.clone();
        let (orders, orders_rx) = mpsc::unbounded_channel();
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(run_id.clone(), Active { orders: orders.clone() });
        }
        let exit = if supervised(&spool) {
            match spool.read_pid("supervisor.pid").map(PidFd::open) {
                Some(Ok(fd)) => Exit::Pid(fd),
                _ => Exit::Gone,
            }
        } else {
            if spool.read_exit().is_err() {
                kill_orphaned_agent(&spool);
            }
            Exit::Gone
        };
        let spec = spool.read_spec().ok();
        let git_jail =
            spec.as_ref().and_then(|s| s.sandbox.clone()).map_or_else(|| Jail::none(None), Jail::from_prefix);
        let jail = match spec.as_ref().and_then(|s| s.container.clone()) {
            Some(c) => Jail::in_container(c, git_jail),
            None => git_jail,
        };
        let env = spec.as_ref().map(|s| s.env.clone()).unwrap_or_default();
        let secrets = spec.as_ref().map(|s| s.secrets.clone()).unwrap_or_default();
        let redactor =
            Redactor::new(env.iter().filter(|(k, _)| secrets.contains(k)).map(|(k, v)| (k.clone(), v.clone())));
        // A data directory made from a backup has no mirrors yet: made again
        // here, so the run's work can be sent up as it ends.
        if !self.mirrors.looks_whole(&assignment.project.id)
            && let Err(e) = self.mirrors.ready(&assignment.project, &[]).await
        {
            tracing::warn!(run = %run_id, error = %e, "could not make the project's mirror again");
        }
        let workspace = Workspace::of(&assignment);
        if assignment.run.status == RunStatus::Claimed
            && let Some(pid) = spool.read_pid("agent.pid")
        {
            self.report_started(&assignment, pid, &spool, workspace.as_ref().map(|w| (w, &jail))).await;
        }
        let port = self.reserve_ports(env.iter().find(|(k, _)| k == "BATON_PORT").and_then(|(_, v)| v.parse().ok()));
        let offsets = assignment.run.offsets;
        if let Some(reason) = stop {
            let _ = orders.send(Order::Stop(reason));
        }
        let egress = match spec.as_ref().and_then(|s| s.network.clone()) {
            Some(policy) => self.serve_egress(&spool, &policy).ok(),
            None => None,
        };
        let members = Workspace::members_of(&self.config.worktrees_dir, &assignment);
        let started = Started { exit, offsets, workspace, members, jail, redactor, git_env: git_env(&env), egress };
        self.spawn_actor(spool, assignment, started, port, orders_rx);
    }

    /// Reports that the agent is running, retrying while the coordinator is away.
    async fn report_started(&self, a: &Assignment, pid: i32, spool: &Spool, prepared: Option<(&Workspace, &Jail)>) {
        let report = RunStarted {
            pid,
            git: prepared.map(|(w, _)| w.started(self.launcher_id())),
            sandbox: prepared.map(|(_, j)| j.report.clone()),
        };
        let mut delay = Duration::from_millis(50);
        loop {
            match self.client.run_started(&a.run.id, &report).await {
                Ok(_) => return,
                // A refusal; a 5xx (the coordinator or its database away) is retried.
                Err(ClientError::Api { status: 400..=499, code, message, .. }) => {
                    tracing::warn!(run = %a.run.id, %code, %message, "the coordinator refused the start; stopping the agent");
                    signal_stop(spool);
                    return;
                }
                Err(e) => {
                    tracing::warn!(run = %a.run.id, error = %e, "could not report the start; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// The sandbox a run's agent gets, by its task's, agent's and project's
    /// `sandbox` setting and what this host can do.
    async fn jail(&self, a: &Assignment, places: &Places, spool: &Spool) -> Result<Jail, StartFailure> {
        let mode = a.task.sandbox.or(a.agent.sandbox).or(a.project.settings.sandbox).unwrap_or_default();
        let network = network_of(a);
        let support = &self.config.sandbox;
        let net = a.env.get("BATON_URL").and_then(|u| Coordinator::of(u)).map(|coordinator| NetPlan {
            spool_dir: spool.dir().to_owned(),
            coordinator,
            exe: self.config.exe.clone(),
        });
        match (mode, &support.bwrap) {
            (SandboxMode::Off, _) => Ok(Jail::none(Some("sandbox = \"off\"".into()))),
            (SandboxMode::Container, _) => self.container_jail(a, places, spool, &network).await,
            (_, Some(bwrap)) => Ok(Jail::bubblewrap(bwrap, places, &network, net.as_ref())),
            (SandboxMode::Required, None) => Err(StartFailure::Failed(format!(
                "the task requires a sandbox, and launcher {} cannot make one: {}",
                self.config.name,
                support.reason.as_deref().unwrap_or("no sandbox is available")
            ))),
            (SandboxMode::Auto, None) => Ok(Jail::none(support.reason.clone())),
        }
    }

    /// A warm container for the run's container, when its pool has one: the
    /// spec names it, and its standby supervisor is the run's.
    fn take_warm(&self, spec: &mut crate::spool::Spec) -> Option<Standby> {
        let c = spec.container.as_mut()?;
        let ready = self.warm.take(&crate::warm::Key::of(c))?;
        c.warm = Some(ready.slot);
        Some(ready.standby)
    }

    /// A container of the agent's image for its run, with the same places a
    /// bubblewrap sandbox gives (and that sandbox, when there is one, for git in
    /// its worktree).
    async fn container_jail(
        &self,
        a: &Assignment,
        places: &Places,
        spool: &Spool,
        network: &NetworkPolicy,
    ) -> Result<Jail, StartFailure> {
        let failed = StartFailure::Failed;
        let image = a.agent.image.clone().or_else(|| a.project.settings.image.clone()).ok_or_else(|| {
            failed(
                "sandbox = \"container\" needs an `image` (in the agent's definition or the project's settings)".into(),
            )
        })?;
        if matches!(network, NetworkPolicy::Allow(_)) {
            return Err(failed(
                "a network allowlist needs the bubblewrap sandbox; a container has the full network or none".into(),
            ));
        }
        let runtime_env = crate::container::runtime_env(&self.host_env);
        let path = self.host_env.get("PATH").map(String::as_str);
        let runtime = crate::container::runtime(a.project.settings.container_runtime, path).map_err(failed)?;
        let inside: Vec<&PathBuf> = places.writable.iter().chain(&places.readable).collect();
        let hidden = crate::container::skeletons(spool.dir(), &places.hidden, &inside)
            .map_err(|e| failed(format!("could not prepare the container's mounts: {e}")))?;
        let container = Container {
            runtime,
            name: format!("baton-{}", a.run.id),
            image,
            writable: places.writable.clone(),
            readable: places.readable.clone(),
            hidden,
            cwd: places.cwd.clone(),
            offline: *network != NetworkPolicy::Full,
            runtime_env,
            agent: None,
            warm: None,
        };
        let git = match &self.config.sandbox.bwrap {
            Some(bwrap) => Jail::bubblewrap(bwrap, places, &NetworkPolicy::None, None),
            None => Jail::none(None),
        };
        let key = crate::warm::Key::of(&container);
        // A warm container of the image shows it is there (the check is a
        // runtime process, as long as the rest of the start).
        if !self.warm.has_ready(&key) {
            crate::container::check_image(&container.runtime, &container.image, &container.runtime_env)
                .await
                .map_err(failed)?;
        }
        self.warm.keep(&key, a.project.settings.container_pool.unwrap_or(0));
        Ok(Jail::in_container(container, git))
    }

    /// The network of a sandboxed agent without the full one: the sockets served
    /// (which live as long as the run's actor), and its environment pointed at
    /// them (Baton's URL on loopback, the allowlist's proxy).
    fn egress(&self, jail: &Jail, spool: &Spool, env: &mut AgentEnv) -> std::io::Result<Option<Egress>> {
        let policy = jail.report.network.clone();
        if jail.inner().is_none() || policy == NetworkPolicy::Full {
            return Ok(None);
        }
        if let Some(url) = env.vars.get("BATON_URL").cloned()
            && let Some(c) = Coordinator::of(&url)
        {
            env.vars.insert("BATON_URL".into(), c.url_inside(&url));
            let no_proxy = format!("127.0.0.1,localhost,{}", c.host);
            env.vars.insert("NO_PROXY".into(), no_proxy.clone());
            env.vars.insert("no_proxy".into(), no_proxy);
        }
        if matches!(policy, NetworkPolicy::Allow(_)) {
            let proxy = format!("http://127.0.0.1:{}", crate::net::PROXY_PORT);
            for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
                env.vars.insert(key.into(), proxy.clone());
            }
        }
        self.serve_egress(spool, &policy).map(Some)
    }

    /// The sockets of a run's network (served again for a re-attached run).
    fn serve_egress(&self, spool: &Spool, policy: &NetworkPolicy) -> std::io::Result<Egress> {
        let url = self.client.base();
        let coordinator = Coordinator::of(&url)
            .ok_or_else(|| std::io::Error::other(format!("cannot read the coordinator's URL {url}")))?;
        Egress::serve(spool.dir(), &coordinator, policy)
    }

    /// Before a resumed turn on a host that does not have the conversation (the
    /// session ran elsewhere before), restores what the agent's CLI kept of it,
    /// as the last launcher saved it. A note for the timeline when it did.
    async fn bring_conversation(&self, a: &Assignment, home: &Path, cwd: &Path, env: &AgentEnv) -> Option<String> {
        let executor = a.agent.executor;
        let vars: Vec<(String, String)> = env.vars.clone().into_iter().collect();
        if executor == baton_core::agent::ExecutorKind::Command
            || baton_agents::state::collect(executor, home, cwd, &vars).is_some()
        {
            return None;
        }
        let state = match self.client.session_state(&a.session.id).await {
            Ok(Some(s)) => s,
            Ok(None) => return None,
            Err(e) => return Some(format!("could not fetch the agent's earlier conversation: {e}")),
        };
        match baton_agents::state::restore(&state, home, cwd, &vars) {
            Ok(n) => Some(format!("restored the agent's earlier conversation ({n} file(s)) from the coordinator")),
            Err(e) => Some(format!("could not restore the agent's earlier conversation: {e}")),
        }
    }

    /// The agent's HOME: the one its definition or project names, else a home of
    /// the task's own on this host, seeded with the CLI's login and settings.
    fn home(&self, a: &Assignment, env: &AgentEnv) -> Result<PathBuf, StartFailure> {
        if AgentEnv::named(&a.project.settings, &a.agent, "HOME")
            && let Some(home) = env.vars.get("HOME")
        {
            return Ok(PathBuf::from(home));
        }
        let home = self.config.data_dir.join("homes").join(a.task.id.as_str());
        let user_home = self.host_env.get("HOME").map(PathBuf::from);
        seed_home(&home, user_home.as_deref(), home_files(a.agent.executor))
            .map_err(|e| StartFailure::Failed(format!("could not prepare the agent's home {}: {e}", home.display())))?;
        Ok(home)
    }

    /// Prepares everything a run needs and starts `baton supervise` on it: the
    /// agent's environment (named, never inherited) and HOME, the task's working
    /// tree (copying files into a new one and running the project's setup
    /// command), its sandbox, and the spool. The supervisor moves itself into a
    /// session of its own (so a Ctrl-C aimed at Baton does not reach the agents);
    /// doing that there rather than in a `pre_exec` hook here lets the spawn use
    /// `posix_spawn` instead of forking this multi-threaded process.
    async fn spawn_supervisor(
        &self,
        spool: &Spool,
        a: &Assignment,
        port: u16,
        orders: &mut mpsc::UnboundedReceiver<Order>,
    ) -> Result<Prepared, StartFailure> {
        let began = std::time::Instant::now();
        let mut phases: Vec<(&str, f64)> = Vec::new();
        let mut lap = |name: &'static str| phases.push((name, began.elapsed().as_secs_f64() * 1000.0));
        spool.create().map_err(|e| io_failure("create the run's spool directory", e))?;
        let (mut env, cache, program) = self.agent_env(a, port)?;
        let home = self.home(a, &env)?;
        env.vars.insert("HOME".into(), home.to_string_lossy().into_owned());
        let mut notes: Vec<String> = Vec::new();
        let (workspace, members) = self.worktrees(a, &mut notes).await?;
        lap("workspace");
        let cwd = match (&workspace, &a.task.workset) {
            (Some(_), Some(_)) => workset_dir(&self.config.worktrees_dir, &a.task),
            (Some((w, _)), None) => w.path.clone(),
            (None, _) => PathBuf::from(&a.project.path),
        };
        if a.run.kind == baton_core::model::RunKind::Resume {
            notes.extend(self.bring_conversation(a, &home, &cwd, &env).await);
        }
        let attached = self.attachments(a).await?;
        let mut places = self.places(a, spool, &cwd, vec![cache, home.clone()], workspace.as_ref().map(|(w, _)| w));
        self.workset_places(a, &mut places, &members);
        places.readable.extend(attached.iter().map(|(dir, _)| dir.clone()));
        // The agent's program and Baton's own (hooks, the network forwarder) stay
        // visible wherever they live, `/tmp` included.
        let path_var = env.vars.get("PATH").cloned();
        if let Some(found) = &program {
            places.readable.extend(program_roots(found, path_var.as_deref(), &places.hidden));
        }
        places.readable.extend(program_roots(&self.config.exe, path_var.as_deref(), &places.hidden));
        let prompt = match (&attached, a.run.kind) {
            (Some((_, note)), baton_core::model::RunKind::Start) => format!("{}{note}", a.prompt),
            _ => a.prompt.clone(),
        };
        let (jail, egress) = match self.confine(a, spool, &places, &mut env).await {
            Ok(confined) => confined,
            Err(e) => {
                discard_new(workspace.as_ref()).await;
                return Err(e);
            }
        };
        lap("sandbox");
        env.vars.insert("BATON_WORKTREE".into(), cwd.to_string_lossy().into_owned());
        if let Some((w, _)) = &workspace {
            env.vars.insert("BATON_BRANCH".into(), w.branch.clone());
        }
        let redactor = env.redactor();
        let turn = TurnRequest {
            agent: &a.agent,
            prompt: &prompt,
            kind: a.run.kind,
            agent_session_id: a.session.agent_session_id.as_deref(),
            cwd: &cwd,
            dir: spool.dir(),
            baton: &self.config.exe,
            sandboxed: jail.report.kind != baton_core::sandbox::SandboxKind::None,
            memory: a.memory.as_deref(),
            own_home: (!AgentEnv::named(&a.project.settings, &a.agent, "HOME")).then_some(home.as_path()),
        };
        let launch = Executor::from(a.agent.executor).launch(&turn).map_err(|e| StartFailure::Failed(e.to_string()))?;
        env.vars.extend(launch.env.clone());
        let vars: Vec<(String, String)> = env.vars.clone().into_iter().collect();
        if !notes.is_empty() {
            let mut sink =
                Sink { client: &self.client, run: &a.run.id, offsets: SpoolOffsets::default(), redactor: &redactor };
            sink.send(notes.iter().map(|n| NewEvent::log(n.clone())).collect()).await;
        }
        if let Some((w, true)) = &workspace
            && let Err(e) = self.set_up(a, w, &vars, &jail, &redactor, orders).await
        {
            // A worktree whose setup did not finish is not kept: the next start
            // makes it again and runs the setup (the branch stays).
            discard_new(workspace.as_ref()).await;
            return Err(e);
        }
        lap("setup");
        write_launch_files(spool, &launch, &env)?;
        let mut spec = spec(a, launch, vars, cwd, &jail, &env);
        let warm = self.take_warm(&mut spec);
        spool.write_spec(&spec).map_err(|e| io_failure("write the process spec", e))?;
        lap("spec");
        let started = self.start_supervisor(spool, warm).await;
        lap("started");
        tracing::debug!(run = %a.run.id, ?phases, "the agent's start, ms since the assignment");
        let (child, pid) = started?;
        let members = members.into_iter().map(|(m, _)| m).collect();
        Ok(Prepared { child, pid, workspace: workspace.map(|(w, _)| w), members, jail, redactor, egress })
    }

    /// The agent's environment (named, never inherited) with Baton's own
    /// variables, and the project's cache directory. A missing CLI fails before
    /// anything is prepared for it: the next start (a fallback agent's, say) gets
    /// its worktree new, setup included.
    /// Also the agent's program as found on its PATH, when it names one.
    fn agent_env(&self, a: &Assignment, port: u16) -> Result<(AgentEnv, PathBuf, Option<PathBuf>), StartFailure> {
        let settings = &a.project.settings;
        let cache = self.config.worktrees_dir.join(&a.project.name).join(".cache");
        let _ = std::fs::create_dir_all(&cache);
        let cache_text = cache.to_string_lossy().into_owned();
        let mut baton = a.env.clone();
        baton.insert("BATON_PORT".into(), port.to_string());
        baton.insert("BATON_PORTS".into(), self.config.ports_per_run.to_string());
        baton.insert("BATON_CACHE".into(), cache_text.clone());
        let env = AgentEnv::build(&self.host_env, settings, &a.agent, &baton, &cache_text);
        let found = match a.agent.program() {
            None => None,
            Some(program) => {
                let path = env.vars.get("PATH").map(String::as_str);
                Some(find_program(&program, path, Path::new(&a.project.path)).ok_or_else(|| {
                    StartFailure::Missing(format!(
                        "{program} is not installed on launcher {} (not found on its PATH); {}",
                        self.config.name,
                        a.agent.executor.install_hint()
                    ))
                })?)
            }
        };
        if !settings.uses_worktrees() && !self.mirrors.local() {
            return Err(StartFailure::Failed(format!(
                "project {} runs tasks in its checkout (worktrees = false), which launcher {} does not have",
                a.project.name, self.config.name
            )));
        }
        Ok((env, cache, found))
    }

    /// The files a person attached to the task, written beside its worktree
    /// (once: a resumed run finds them there), and the lines that name them for
    /// its first prompt.
    async fn attachments(&self, a: &Assignment) -> Result<Option<(PathBuf, String)>, StartFailure> {
        if a.task.attachments.is_empty() {
            return Ok(None);
        }
        let dir = self.config.data_dir.join("attachments").join(a.task.id.as_str());
        std::fs::create_dir_all(&dir).map_err(|e| io_failure("create the attachments' directory", e))?;
        let client = self.client.with_token(a.env.get("BATON_TOKEN").cloned());
        let mut note = String::from("\n\nFiles a person attached for you (read-only, outside the repository):\n");
        for file in &a.task.attachments {
            let path = dir.join(&file.name);
            if !path.exists() {
                let fetched = client
                    .doc(&file.doc, None)
                    .await
                    .map_err(|e| StartFailure::Failed(format!("could not fetch the attachment {}: {e}", file.name)))?;
                let bytes = match (fetched.doc.content, fetched.content_base64) {
                    (Some(text), _) => text.into_bytes(),
                    (None, Some(b64)) => {
                        use base64::Engine;
                        base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| {
                            StartFailure::Failed(format!("the attachment {} is not base64: {e}", file.name))
                        })?
                    }
                    (None, None) => Vec::new(),
                };
                std::fs::write(&path, bytes).map_err(|e| io_failure(&format!("write {}", path.display()), e))?;
            }
            note.push_str(&format!("- {} ({} bytes)\n", path.display(), file.size));
        }
        Ok(Some((dir, note)))
    }

    /// The task's worktree (and a workset task's other projects'), prepared;
    /// whether each was made now.
    async fn worktrees(
        &self,
        a: &Assignment,
        notes: &mut Vec<String>,
    ) -> Result<(Option<(Workspace, bool)>, Vec<(Member, bool)>), StartFailure> {
        if !a.project.settings.uses_worktrees() {
            return Ok((None, Vec::new()));
        }
        let (w, created, n) =
            Workspace::prepare(&self.mirrors, &self.config.worktrees_dir, a).await.map_err(StartFailure::Failed)?;
        notes.extend(n);
        let workspace = Some((w, created));
        match Workspace::prepare_members(&self.mirrors, &self.config.worktrees_dir, a).await {
            Ok((members, n)) => {
                notes.extend(n);
                Ok((workspace, members))
            }
            Err(e) => {
                discard_new(workspace.as_ref()).await;
                Err(StartFailure::Failed(e))
            }
        }
    }

    /// A workset task's agent writes its whole directory, and reads each other
    /// project's objects (and, on the coordinator's host, its checkout).
    fn workset_places(&self, a: &Assignment, places: &mut Places, members: &[(Member, bool)]) {
        if a.task.workset.is_none() {
            return;
        }
        for (m, _) in members {
            places.readable.extend(self.mirrors.objects(&m.workspace.project));
        }
        places.writable.push(places.cwd.clone());
        if self.mirrors.local() {
            places.readable.extend(a.workset.iter().map(|c| PathBuf::from(&c.project.path)));
        }
    }

    /// Where the agent may write (its working tree, `writable`), what it may
    /// read beside the system, and what it must not see.
    fn places(
        &self,
        a: &Assignment,
        spool: &Spool,
        cwd: &Path,
        writable: Vec<PathBuf>,
        workspace: Option<&Workspace>,
    ) -> Places {
        let mut places = Places {
            cwd: cwd.to_owned(),
            writable,
            readable: vec![spool.dir().to_owned()],
            hidden: self.config.hidden.clone(),
            user_home: self.host_env.get("HOME").map(PathBuf::from),
        };
        if let Some(w) = workspace {
            places.writable.push(w.path.clone());
            places.readable.extend(self.mirrors.objects(&a.project.id));
        }
        if self.mirrors.local() {
            // The lead's checkout, read-only (where it is hidden, under `/tmp`).
            places.readable.push(PathBuf::from(&a.project.path));
        }
        places
    }

    /// The agent's sandbox and, without the full network, its ways out.
    async fn confine(
        &self,
        a: &Assignment,
        spool: &Spool,
        places: &Places,
        env: &mut AgentEnv,
    ) -> Result<(Jail, Option<Egress>), StartFailure> {
        let jail = self.jail(a, places, spool).await?;
        if jail.report.kind != baton_core::sandbox::SandboxKind::None {
            env.vars.insert("TMPDIR".into(), "/tmp".into());
        }
        let egress = self
            .egress(&jail, spool, env)
            .map_err(|e| StartFailure::Failed(format!("could not set up the agent's network: {e}")))?;
        Ok((jail, egress))
    }

    /// Starts the supervisor on the spool (a standby one when there is one) and
    /// waits for its first line: the agent's process group, or why it could not
    /// start it.
    async fn start_supervisor(
        &self,
        spool: &Spool,
        warm: Option<Standby>,
    ) -> Result<(tokio::process::Child, i32), StartFailure> {
        let took_warm = warm.is_some();
        let (mut child, mut stdout) = self
            .supervisor_for(spool, warm)
            .await
            .map_err(|e| io_failure(&format!("start {}", self.config.exe.display()), e))?;
        let mut line = String::new();
        let read = tokio::time::timeout(SUPERVISOR_START, stdout.read_line(&mut line)).await;
        if read.is_err() {
            let _ = child.start_kill();
        }
        if !took_warm {
            let launcher = self.clone();
            tokio::spawn(async move { launcher.refill_standby() });
        }
        if let Some(pid) = line.trim().strip_prefix("started ").and_then(|p| p.parse::<i32>().ok()) {
            return Ok((child, pid));
        }
        let _ = child.wait().await;
        if let Some(message) = line.trim().strip_prefix("failed ") {
            return Err(StartFailure::Failed(message.to_owned()));
        }
        let log = std::fs::read_to_string(spool.path("supervisor.log")).unwrap_or_default();
        Err(StartFailure::Failed(match read {
            Err(_) => "the supervisor did not report within 30 s".to_owned(),
            Ok(_) => format!("the supervisor did not start the agent: {}", log.trim()),
        }))
    }

    /// Gets a new worktree ready: copies the project's `copy_files` into it and runs
    /// its `setup` command in the sandbox, whose output becomes the run's first events.
    async fn set_up(
        &self,
        a: &Assignment,
        workspace: &Workspace,
        env: &[(String, String)],
        jail: &Jail,
        redactor: &Redactor,
        orders: &mut mpsc::UnboundedReceiver<Order>,
    ) -> Result<(), StartFailure> {
        let settings = &a.project.settings;
        let mut sink = Sink { client: &self.client, run: &a.run.id, offsets: SpoolOffsets::default(), redactor };
        if !settings.copy_files.is_empty() {
            if self.mirrors.local() {
                let copied = copy_files(Path::new(&a.project.path), &workspace.path, &settings.copy_files)
                    .map_err(StartFailure::Failed)?;
                if !copied.is_empty() {
                    sink.send(vec![NewEvent::log(format!("copied {} into the worktree", copied.join(", ")))]).await;
                }
            } else {
                sink.send(vec![NewEvent::log(format!(
                    "copy_files ({}) skipped: launcher {} does not have the project's checkout",
                    settings.copy_files.join(", "),
                    self.config.name
                ))])
                .await;
            }
        }
        let Some(setup) = settings.setup.as_deref().filter(|s| !s.trim().is_empty()) else { return Ok(()) };
        let timeout = Duration::from_secs(a.timeout_s.unwrap_or(3600));
        let (ended, result) =
            commands::run(setup, "setup", &workspace.path, env, jail, timeout, &mut sink, Some(orders)).await;
        match ended {
            Ended::Exited(Some(0)) => Ok(()),
            Ended::Stopped => Err(StartFailure::Stopped),
            Ended::TimedOut => Err(StartFailure::Failed(format!("setup `{setup}` timed out"))),
            Ended::Exited(code) => Err(StartFailure::Failed(format!(
                "setup `{setup}` failed{}: {}",
                code.map(|c| format!(" with exit code {c}")).unwrap_or_default(),
                result.output_tail.lines().last().unwrap_or("")
            ))),
        }
    }

    fn spawn_actor(
        &self,
        spool: Spool,
        assignment: Assignment,
        started: Started,
        port: u16,
        orders: mpsc::UnboundedReceiver<Order>,
    ) {
        let (changed, watch) = match self.watcher.watch(spool.dir()) {
            Ok(w) => (Arc::clone(&w.changed), Some(w)),
            Err(e) => {
                tracing::error!(error = %e, "cannot watch the spool; its events will be sent when the agent ends");
                (Arc::new(Notify::new()), None)
            }
        };
        let launcher = self.clone();
        let run_id = assignment.run.id.clone();
        let registration = Registration { on_end: Some(Box::new(move || launcher.forget(&run_id, port))) };
        let checkpoint_every = match assignment.project.settings.checkpoint_s.unwrap_or(DEFAULT_CHECKPOINT_S) {
            0 => None,
            s => Some(Duration::from_secs(s)),
        };
        let own_home = self.config.data_dir.join("homes").join(assignment.task.id.as_str());
        let actor = RunActor {
            client: self.client.clone(),
            parser: Executor::from(assignment.agent.executor).parser(&assignment.agent, assignment.session.usage),
            assignment,
            spool,
            offsets: started.offsets,
            changed,
            _watch: watch,
            exit: started.exit,
            orders,
            stop_sent: false,
            max_event_bytes: self.config.max_event_bytes,
            workspace: started.workspace,
            members: started.members,
            jail: started.jail,
            redactor: started.redactor,
            git_env: started.git_env,
            mirrors: Arc::clone(&self.mirrors),
            checkpoint_every,
            _egress: started.egress,
            last_checkpoint: None,
            last_commit: None,
            files_checked: None,
            reported_result: false,
            last_message: None,
            tail: Default::default(),
            own_home,
            home_saved: false,
            _registration: registration,
        };
        tokio::spawn(actor.run());
    }

    /// A supervisor for the spool: a standby one when there is one (handed the
    /// spool's directory), else a new one. Standbys are refilled in the background.
    async fn supervisor_for(
        &self,
        spool: &Spool,
        warm: Option<Standby>,
    ) -> std::io::Result<(tokio::process::Child, BufReader<tokio::process::ChildStdout>)> {
        use tokio::io::AsyncWriteExt;
        let standby = warm.or_else(|| self.standby.lock().ok().and_then(|mut s| s.pop()));
        if let Some(mut s) = standby {
            let line = format!("{}\n", spool.dir().display());
            if s.stdin.write_all(line.as_bytes()).await.is_ok() && s.stdin.flush().await.is_ok() {
                drop(s.stdin);
                return Ok((s.child, s.stdout));
            }
            // Not killed: a standby whose input closes ends by itself, and a warm
            // one removes its container first (a kill would leave it running).
            drop(s);
        }
        let log = std::fs::File::create(spool.path("supervisor.log"))?;
        let mut child = tokio::process::Command::new(&self.config.exe)
            .arg("supervise")
            .arg(spool.dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| std::io::Error::other("the supervisor has no stdout"))?;
        Ok((child, BufReader::new(stdout)))
    }

    /// Starts standby supervisors until there are enough.
    pub(crate) fn refill_standby(&self) {
        loop {
            let Ok(have) = self.standby.lock().map(|s| s.len()) else {
                return;
            };
            if have >= STANDBY.min(self.config.slots as usize) {
                return;
            }
            let mut standby = tokio::process::Command::new(&self.config.exe);
            standby.args(["supervise", "--standby"]);
            // Its sandbox made ahead too, where the launcher runs as root (it
            // needs to mount, then drops every capability before the agent).
            if let Some(bwrap) = self.config.sandbox.bwrap.as_ref().filter(|_| nix::unistd::geteuid().is_root()) {
                standby.arg("--sandbox-ahead").arg(bwrap);
            }
            let spawned = standby.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn();
            let mut child = match spawned {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "could not start a standby supervisor");
                    return;
                }
            };
            let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
                return;
            };
            if let Ok(mut s) = self.standby.lock() {
                s.push(Standby { child, stdin, stdout: BufReader::new(stdout) });
            }
        }
    }

    /// Takes a run off the table and frees its ports.
    fn forget(&self, run: &baton_core::ids::RunId, port: u16) {
        if let Ok(mut runs) = self.runs.lock() {
            runs.remove(run);
        }
        if let Ok(mut ports) = self.ports.lock() {
            ports.retain(|p| *p != port);
        }
    }

    /// A block of free ports for a run (`wanted` when re-attaching).
    fn reserve_ports(&self, wanted: Option<u16>) -> u16 {
        let Ok(mut used) = self.ports.lock() else {
            return 0;
        };
        if let Some(p) = wanted {
            used.push(p);
            return p;
        }
        let step = self.config.ports_per_run.max(1);
        let mut base = self.config.port_base;
        while base < u16::MAX - step {
            let free = !used.contains(&base) && std::net::TcpListener::bind(("127.0.0.1", base)).is_ok();
            if free {
                used.push(base);
                return base;
            }
            base += step;
        }
        0
    }
}

/// Writes a file only its owner can read.
fn write_private(path: &std::path::Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())
}

/// A start that failed doing `what`.
fn io_failure(what: &str, e: std::io::Error) -> StartFailure {
    StartFailure::Failed(format!("could not {what}: {e}"))
}

/// Writes the files the executor asked for (an MCP configuration, a prompt
/// file), with the session's own URL and token put in, and the prompt for
/// stdin; each private to the run.
fn write_launch_files(spool: &Spool, launch: &Launch, env: &AgentEnv) -> Result<(), StartFailure> {
    for (path, content) in &launch.files {
        let mut content = content.clone();
        // Only configuration (JSON) names the session's variables; text such as
        // an agent's memory is written as it is.
        let config = path.extension().is_some_and(|e| e == "json");
        for key in SESSION_VARS.iter().filter(|_| config) {
            if let Some(value) = env.vars.get(*key) {
                content = content.replace(&format!("${{{key}}}"), value);
            }
        }
        write_private(path, &content).map_err(|e| io_failure(&format!("write {}", path.display()), e))?;
    }
    if let Some(input) = &launch.stdin {
        spool.write_private("stdin", input.as_bytes()).map_err(|e| io_failure("write the prompt", e))?;
    }
    Ok(())
}

/// What the supervisor runs: the agent's program inside its container or
/// behind its sandbox's command line, with its variables, limits and network.
fn spec(
    a: &Assignment,
    launch: Launch,
    mut vars: Vec<(String, String)>,
    cwd: PathBuf,
    jail: &Jail,
    env: &AgentEnv,
) -> Spec {
    let stdin = launch.stdin.is_some();
    let mut container = jail.container().cloned();
    let (program, args) = match (jail.container(), jail.inner()) {
        (Some(c), _) => {
            let names: Vec<String> = vars.iter().map(|(k, _)| k.clone()).collect();
            let args = c.run_args(&c.name, &names, &launch.program, &launch.args, stdin);
            if let Some(c) = container.as_mut() {
                let (program, args) = (launch.program.clone(), launch.args.clone());
                c.agent = Some(crate::container::InContainer { program, args, vars: names });
            }
            // The runtime gets the launcher's container settings and the agent's
            // variables, which it passes on by name.
            vars = c.runtime_env.iter().cloned().chain(vars).collect();
            (c.runtime.display().to_string(), args)
        }
        (None, Some(mut inner)) => {
            let program = inner.remove(0);
            inner.push(launch.program);
            inner.extend(launch.args);
            (program, inner)
        }
        (None, None) => (launch.program, launch.args),
    };
    Spec {
        program,
        args,
        env: vars,
        cwd,
        stdin,
        timeout_s: a.timeout_s,
        grace_s: a.grace_s,
        stall_s: a.task.stall_s,
        sandbox: jail.prefix(),
        secrets: env.secrets.clone(),
        network: (jail.report.network != NetworkPolicy::Full && jail.container().is_none())
            .then(|| jail.report.network.clone()),
        container,
    }
}
