//! Starting a run: preparing its spool, starting its supervisor, and handing it
//! to an actor; and picking up a run found on disk after a restart.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use baton_agents::executor::{Executor, SESSION_VARS, TurnRequest, find_program};
use baton_client::ClientError;
use baton_core::api::{Assignment, FailureKind, RunFinished, RunStarted};
use baton_core::event::NewEvent;
use baton_core::model::SpoolOffsets;
use baton_core::status::RunStatus;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::{Notify, mpsc};

use crate::commands::{self, Ended, Sink};
use crate::launcher::{Active, Launcher};
use crate::process::{PidFd, kill_orphaned_agent, signal_stop, supervised};
use crate::run::{Exit, Order, Registration, RunActor};
use crate::spool::{Spec, Spool};
use crate::workspace::{Workspace, copy_files};

/// How long a supervisor may take to say whether the agent started.
const SUPERVISOR_START: Duration = Duration::from_secs(30);

/// How many supervisors wait, started, for the next runs.
const STANDBY: usize = 2;

/// Why a run could not start.
pub(crate) enum StartFailure {
    /// It was stopped during setup.
    Stopped,
    /// The agent's CLI is not installed; the message says how to install it.
    Missing(String),
    /// Something went wrong; the message says what.
    Failed(String),
}

/// A started (or re-attached) run, for its actor.
pub(crate) struct Started {
    /// How the actor learns the supervisor is gone.
    exit: Exit,
    /// What the coordinator has acknowledged of the spool.
    offsets: SpoolOffsets,
    /// The task's worktree, when it has one.
    workspace: Option<Workspace>,
}

/// A supervisor started ahead of time (`baton supervise --standby`), waiting on its
/// stdin for the spool directory of a run.
pub(crate) struct Standby {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::process::ChildStdout,
}
impl Launcher {
    /// Starts a newly claimed run.
    pub(crate) async fn start(self, assignment: Assignment) {
        let run_id = assignment.run.id.clone();
        let spool = Spool::of(&self.config.runs_dir, &run_id);
        let (orders, mut orders_rx) = mpsc::unbounded_channel();
        if let Ok(mut runs) = self.runs.lock() {
            runs.insert(run_id.clone(), Active { orders });
        }
        let port = self.reserve_ports(None);
        match self.spawn_supervisor(&spool, &assignment, port, &mut orders_rx).await {
            Ok((child, pid, workspace)) => {
                self.report_started(&assignment, pid, &spool, workspace.as_ref()).await;
                let started = Started { exit: Exit::Child(child), offsets: SpoolOffsets::default(), workspace };
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
    /// coordinator acknowledged.
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
        if assignment.run.status == RunStatus::Claimed
            && let Some(pid) = spool.read_pid("agent.pid")
        {
            self.report_started(&assignment, pid, &spool, Workspace::of(&assignment).as_ref()).await;
        }
        let port = self.reserve_ports(
            spool
                .read_spec()
                .ok()
                .and_then(|s| s.env.iter().find(|(k, _)| k == "BATON_PORT").and_then(|(_, v)| v.parse().ok())),
        );
        let offsets = assignment.run.offsets;
        if let Some(reason) = stop {
            let _ = orders.send(Order::Stop(reason));
        }
        let workspace = Workspace::of(&assignment);
        self.spawn_actor(spool, assignment, Started { exit, offsets, workspace }, port, orders_rx);
    }

    /// Reports that the agent is running, retrying while the coordinator is away.
    async fn report_started(&self, a: &Assignment, pid: i32, spool: &Spool, workspace: Option<&Workspace>) {
        let report = RunStarted { pid, git: workspace.map(Workspace::started) };
        let mut delay = Duration::from_millis(50);
        loop {
            match self.client.run_started(&a.run.id, &report).await {
                Ok(_) => return,
                Err(ClientError::Api { code, message, .. }) => {
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

    /// Prepares the task's worktree (and, when it is new, copies files into it
    /// and runs the project's setup command), writes the spool, and starts
    /// `baton supervise` on it. The supervisor moves itself into a session of its
    /// own (so a Ctrl-C aimed at Baton does not reach the agents); doing that there
    /// rather than in a `pre_exec` hook here lets the spawn use `posix_spawn`
    /// instead of forking this multi-threaded process.
    async fn spawn_supervisor(
        &self,
        spool: &Spool,
        a: &Assignment,
        port: u16,
        orders: &mut mpsc::UnboundedReceiver<Order>,
    ) -> Result<(tokio::process::Child, i32, Option<Workspace>), StartFailure> {
        let io = |what: &str, e: std::io::Error| StartFailure::Failed(format!("could not {what}: {e}"));
        spool.create().map_err(|e| io("create the run's spool directory", e))?;
        let settings = &a.project.settings;
        // A missing CLI fails before anything is prepared for it: the next start
        // (a fallback agent's, say) gets its worktree new, setup included. The PATH
        // is the one the agent will have (its layers below, the last one winning).
        let path = (a.env.get("PATH"))
            .or_else(|| a.agent.env.get("PATH"))
            .or_else(|| settings.env.get("PATH"))
            .cloned()
            .or_else(|| std::env::var("PATH").ok());
        if let Some(program) = a.agent.program()
            && find_program(&program, path.as_deref(), Path::new(&a.project.path)).is_none()
        {
            return Err(StartFailure::Missing(format!(
                "{program} is not installed on launcher {} (not found on its PATH); {}",
                self.config.name,
                a.agent.executor.install_hint()
            )));
        }
        let workspace = if settings.uses_worktrees() {
            Some(Workspace::prepare(&self.config.worktrees_dir, a).await.map_err(StartFailure::Failed)?)
        } else {
            None
        };
        let cwd = workspace.as_ref().map_or_else(|| PathBuf::from(&a.project.path), |(w, _)| w.path.clone());
        let executor = Executor::from(a.agent.executor);
        let turn = TurnRequest {
            agent: &a.agent,
            prompt: &a.prompt,
            kind: a.run.kind,
            agent_session_id: a.session.agent_session_id.as_deref(),
            cwd: &cwd,
            dir: spool.dir(),
            baton: &self.config.exe,
        };
        let launch = executor.launch(&turn).map_err(|e| StartFailure::Failed(e.to_string()))?;
        let cache = self.config.worktrees_dir.join(&a.project.name).join(".cache");
        let _ = std::fs::create_dir_all(&cache);
        let cache = cache.to_string_lossy().into_owned();
        // The agent must not inherit the launcher's own BATON_* (an admin token, say).
        let mut env: BTreeMap<String, String> = std::env::vars().filter(|(k, _)| !k.starts_with("BATON_")).collect();
        env.extend(settings.env.iter().map(|(k, v)| (k.clone(), v.replace("${BATON_CACHE}", &cache))));
        env.extend(a.agent.env.clone());
        env.extend(a.env.clone());
        env.extend(launch.env.clone());
        env.insert("BATON_PORT".into(), port.to_string());
        env.insert("BATON_PORTS".into(), self.config.ports_per_run.to_string());
        env.insert("BATON_WORKTREE".into(), cwd.to_string_lossy().into_owned());
        env.insert("BATON_CACHE".into(), cache);
        if let Some((w, _)) = &workspace {
            env.insert("BATON_BRANCH".into(), w.branch.clone());
        }
        let env: Vec<(String, String)> = env.into_iter().collect();
        if let Some((w, true)) = &workspace
            && let Err(e) = self.set_up(a, w, &env, orders).await
        {
            // A worktree whose setup did not finish is not kept: the next start
            // makes it again and runs the setup (the branch stays).
            if let Err(err) = baton_git::worktree::remove(&w.repo, &w.path, true, None).await {
                tracing::warn!(worktree = %w.path.display(), error = %err, "could not remove a worktree whose setup failed");
            }
            return Err(e);
        }
        for (path, content) in &launch.files {
            // Files may name the session's own coordinator URL and token (an MCP
            // server's headers); they are private to the run.
            let mut content = content.clone();
            for key in SESSION_VARS {
                if let Some(value) = env.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
                    content = content.replace(&format!("${{{key}}}"), value);
                }
            }
            write_private(path, &content).map_err(|e| io(&format!("write {}", path.display()), e))?;
        }
        if let Some(input) = &launch.stdin {
            spool.write_private("stdin", input.as_bytes()).map_err(|e| io("write the prompt", e))?;
        }
        let spec = Spec {
            program: launch.program,
            args: launch.args,
            env,
            cwd,
            stdin: launch.stdin.is_some(),
            timeout_s: a.timeout_s,
            grace_s: a.grace_s,
        };
        spool.write_spec(&spec).map_err(|e| io("write the process spec", e))?;
        let (mut child, stdout) =
            self.supervisor_for(spool).await.map_err(|e| io(&format!("start {}", self.config.exe.display()), e))?;
        let mut line = String::new();
        let read = tokio::time::timeout(SUPERVISOR_START, BufReader::new(stdout).read_line(&mut line)).await;
        let launcher = self.clone();
        tokio::spawn(async move { launcher.refill_standby() });
        let workspace = workspace.map(|(w, _)| w);
        if let Some(pid) = line.trim().strip_prefix("started ").and_then(|p| p.parse::<i32>().ok()) {
            return Ok((child, pid, workspace));
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
    /// its `setup` command, whose output becomes the run's first events.
    async fn set_up(
        &self,
        a: &Assignment,
        workspace: &Workspace,
        env: &[(String, String)],
        orders: &mut mpsc::UnboundedReceiver<Order>,
    ) -> Result<(), StartFailure> {
        let settings = &a.project.settings;
        let mut sink = Sink { client: &self.client, run: &a.run.id, offsets: SpoolOffsets::default() };
        if !settings.copy_files.is_empty() {
            let copied =
                copy_files(&workspace.repo, &workspace.path, &settings.copy_files).map_err(StartFailure::Failed)?;
            if !copied.is_empty() {
                sink.send(vec![NewEvent::log(format!("copied {} into the worktree", copied.join(", ")))]).await;
            }
        }
        let Some(setup) = settings.setup.as_deref().filter(|s| !s.trim().is_empty()) else { return Ok(()) };
        let timeout = Duration::from_secs(a.timeout_s.unwrap_or(3600));
        let (ended, result) =
            commands::run(setup, "setup", &workspace.path, env, timeout, &mut sink, Some(orders)).await;
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
            files_checked: None,
            reported_result: false,
            last_message: None,
            tail: Default::default(),
            _registration: registration,
        };
        tokio::spawn(actor.run());
    }

    /// A supervisor for the spool: a standby one when there is one (handed the
    /// spool's directory), else a new one. Standbys are refilled in the background.
    async fn supervisor_for(
        &self,
        spool: &Spool,
    ) -> std::io::Result<(tokio::process::Child, tokio::process::ChildStdout)> {
        use tokio::io::AsyncWriteExt;
        let standby = self.standby.lock().ok().and_then(|mut s| s.pop());
        if let Some(mut s) = standby {
            let line = format!("{}\n", spool.dir().display());
            if s.stdin.write_all(line.as_bytes()).await.is_ok() && s.stdin.flush().await.is_ok() {
                drop(s.stdin);
                return Ok((s.child, s.stdout));
            }
            let _ = s.child.start_kill();
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
        Ok((child, stdout))
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
            let spawned = tokio::process::Command::new(&self.config.exe)
                .args(["supervise", "--standby"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn();
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
                s.push(Standby { child, stdin, stdout });
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
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(path)?;
    file.write_all(content.as_bytes())
}
