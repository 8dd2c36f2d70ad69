//! One run's actor: the single owner of a running agent's spool and supervisor.
//!
//! It waits for three things only: the spool changed (inotify), the supervisor
//! exited (its child handle or pidfd), or an order arrived (stop). On each wake it
//! reads the complete new lines from the spool, parses them into events, and sends
//! them with the byte offsets they came from; the coordinator stores events and
//! offsets in one transaction, so nothing is sent twice and nothing is skipped,
//! even across a launcher restart. When the supervisor is gone it sends the last
//! lines, reports how the run ended, and removes the spool.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_agents::output::{OutputParser, Stream, fit};
use baton_client::{Client, ClientError};
use baton_core::api::{Assignment, ErrorCode, EventBatch, RunFinished};
use baton_core::event::{EventKind, NewEvent};
use baton_core::model::SpoolOffsets;
use baton_core::status::RunStatus;
use tokio::sync::{Notify, mpsc};

use crate::commands::{self, Ended, Sink};
use crate::env::Redactor;
use crate::mirror::Mirrors;
use crate::process::{PidFd, kill_orphaned_agent, signal_stop};
use crate::sandbox::Jail;
use crate::spool::{Outcome, Spool};
use crate::watcher::Watch;
use crate::workspace::{Member, Workspace};

/// How many of the last output lines make the fallback result.
const TAIL_LINES: usize = 40;

/// How often, at most, the worktree's changed files are sent while the agent works.
const FILES_EVERY: Duration = Duration::from_secs(2);

/// How many bytes of a stream one read takes.
const CHUNK: usize = 512 * 1024;

/// The most events in one batch.
const MAX_BATCH_EVENTS: usize = 2000;

/// How the actor learns that the supervisor is gone.
pub(crate) enum Exit {
    /// A supervisor this launcher started (waiting also reaps it).
    Child(tokio::process::Child),
    /// A supervisor found again after a restart.
    Pid(PidFd),
    /// No supervisor is running any more.
    Gone,
}

impl Exit {
    async fn wait(&mut self) {
        match self {
            Exit::Child(child) => {
                let _ = child.wait().await;
            }
            Exit::Pid(fd) => fd.exited().await,
            Exit::Gone => {}
        }
    }
}

/// Orders for an actor.
#[derive(Debug)]
pub(crate) enum Order {
    /// Stop the agent.
    Stop(String),
    /// Take a checkpoint now, and report it even if nothing changed.
    Checkpoint,
}

/// What the coordinator said to a batch.
enum Sent {
    /// Stored; these offsets are acknowledged.
    Acked(SpoolOffsets, Option<String>),
    /// The coordinator has other offsets; continue from them.
    Resync(SpoolOffsets),
    /// The coordinator no longer expects this run.
    Unwanted,
}

/// Removes the run from the launcher's table (and frees its ports) when the actor ends.
pub(crate) struct Registration {
    /// Called once, when the actor ends.
    pub on_end: Option<Box<dyn FnOnce() + Send + Sync>>,
}

impl Drop for Registration {
    fn drop(&mut self) {
        if let Some(f) = self.on_end.take() {
            f();
        }
    }
}

/// The actor of one run.
pub(crate) struct RunActor {
    /// The coordinator.
    pub client: Client,
    /// The run as assigned.
    pub assignment: Assignment,
    /// Its spool.
    pub spool: Spool,
    /// What the coordinator has acknowledged.
    pub offsets: SpoolOffsets,
    /// Parses the agent's output.
    pub parser: Box<dyn OutputParser>,
    /// Woken when the spool changes.
    pub changed: Arc<Notify>,
    /// The inotify watch behind `changed` (removed when the actor ends).
    pub _watch: Option<Watch>,
    /// Tells it the supervisor is gone.
    pub exit: Exit,
    /// Orders from the launcher.
    pub orders: mpsc::UnboundedReceiver<Order>,
    /// Whether a stop was already passed to the supervisor.
    pub stop_sent: bool,
    /// The largest event allowed.
    pub max_event_bytes: usize,
    /// The task's worktree, when it has one.
    pub workspace: Option<Workspace>,
    /// A workset task's other projects' worktrees, beside its own.
    pub members: Vec<Member>,
    /// The agent's sandbox: its checks and the git commands in its worktree run there.
    pub jail: Jail,
    /// Hides the run's secrets in everything sent.
    pub redactor: Redactor,
    /// The environment of git commands in the worktree.
    pub git_env: Arc<Vec<(String, String)>>,
    /// The project mirrors, to push the task's work through.
    pub mirrors: Arc<Mirrors>,
    /// How often the worktree is snapshotted while the agent works (none: never).
    pub checkpoint_every: Option<Duration>,
    /// The last checkpoint's HEAD and tree.
    pub last_checkpoint: Option<(String, String)>,
    /// The last checkpoint's commit.
    pub last_commit: Option<String>,
    /// The agent's ways out of its network namespace (served while the actor lives).
    pub _egress: Option<crate::net::Egress>,
    /// When the worktree's changed files were last sent (for the conflict radar).
    pub files_checked: Option<Instant>,
    /// Whether the agent reported a result of its own.
    pub reported_result: bool,
    /// Its last assistant message.
    pub last_message: Option<String>,
    /// Its last lines of output.
    pub tail: std::collections::VecDeque<String>,
    /// The home Baton makes for the task on this host (`homes/<task>` in its
    /// data directory), removed at the run's end when the run used it and what it
    /// holds is saved.
    pub own_home: std::path::PathBuf,
    /// Whether the conversation was saved at the run's end (the home holds
    /// nothing that is not kept elsewhere).
    pub home_saved: bool,
    /// Taken off the launcher's table when the actor ends.
    pub _registration: Registration,
}

impl RunActor {
    /// Follows the run to its end.
    pub(crate) async fn run(mut self) {
        let run_id = self.assignment.run.id.clone();
        let mut exited = false;
        let every = self.checkpoint_every.filter(|_| self.workspace.is_some());
        let mut checkpoints = tokio::time::interval(every.unwrap_or(Duration::from_secs(3600)));
        checkpoints.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        checkpoints.reset();
        loop {
            if !self.drain(false).await {
                self.abandon().await;
                return;
            }
            if exited {
                break;
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = self.exit.wait() => exited = true,
                Some(order) = self.orders.recv() => match order {
                    Order::Stop(reason) => self.stop(reason),
                    Order::Checkpoint => self.checkpoint(true).await,
                },
                _ = checkpoints.tick(), if every.is_some() => self.checkpoint(false).await,
            }
        }
        if !self.drain(true).await {
            self.abandon().await;
            return;
        }
        let tail: Vec<NewEvent> =
            self.parser.finish().into_iter().map(|e| fit(self.redactor.event(e), self.max_event_bytes)).collect();
        if !tail.is_empty() {
            let batch = EventBatch { from: self.offsets, to: self.offsets, events: tail, files_changed: None };
            if matches!(self.send(&batch).await, Sent::Unwanted) {
                self.abandon().await;
                return;
            }
        }
        let report = self.conclude().await;
        if self.home_saved {
            self.remove_own_home();
        }
        let mut delay = Duration::from_millis(100);
        loop {
            match self.client.run_finished(&run_id, &report).await {
                Ok(_) => break,
                // A refusal; a 5xx (the coordinator or its database away) is retried.
                Err(ClientError::Api { status: 400..=499, code, message, .. }) => {
                    tracing::warn!(run = %run_id, %code, %message, "the coordinator refused the run's end report");
                    break;
                }
                Err(e) => {
                    tracing::warn!(run = %run_id, error = %e, "could not report the run's end; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
        if let Err(e) = self.spool.remove() {
            tracing::warn!(run = %run_id, error = %e, "could not remove the spool");
        }
    }

    fn stop(&mut self, reason: String) {
        tracing::info!(run = %self.assignment.run.id, %reason, "stopping");
        if !self.stop_sent {
            self.stop_sent = signal_stop(&self.spool);
        }
    }

    /// The coordinator does not want this run (any more): stop the agent, keep its
    /// work, and clean up without reporting.
    async fn abandon(&mut self) {
        tracing::warn!(run = %self.assignment.run.id, "the coordinator no longer expects this run; stopping it");
        self.stop("the coordinator no longer expects this run".into());
        self.exit.wait().await;
        kill_orphaned_agent(&self.spool);
        if let Some(mut ws) = self.workspace.take() {
            let git = self.worktree_git(&ws);
            ws.save(&git, &self.mirrors, &self.assignment.task.id, "abandoned").await;
        }
        self.save_members("abandoned").await;
        let _ = self.spool.remove();
    }

    /// Saves what the agent's CLI keeps of its conversation with the coordinator,
    /// so a launcher on another host (or this one, once the home is gone) can
    /// resume the session. Whether the home holds nothing unsaved now.
    async fn save_conversation(&self) -> bool {
        let executor = self.assignment.agent.executor;
        if executor == baton_core::agent::ExecutorKind::Command {
            return true;
        }
        let Ok(spec) = self.spool.read_spec() else { return false };
        let Some(home) = spec.env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| std::path::PathBuf::from(v)) else {
            return false;
        };
        let collected =
            tokio::task::spawn_blocking(move || baton_agents::state::collect(executor, &home, &spec.cwd, &spec.env))
                .await;
        let state = match collected {
            Ok(Some(state)) => state,
            Ok(None) => return true,
            Err(_) => return false,
        };
        match self.client.put_session_state(&self.assignment.session.id, &state).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(run = %self.assignment.run.id, error = %e, "could not save the agent's conversation");
                false
            }
        }
    }

    /// Removes the home Baton made for the task on this host, once what it holds
    /// is saved: the next run of the task makes it again (and a resume brings
    /// the conversation back from the coordinator). Done before the run's end is
    /// reported, so no next run of the task can be preparing it meanwhile. A home
    /// the agent's definition or project names is never touched.
    fn remove_own_home(&self) {
        let Ok(spec) = self.spool.read_spec() else { return };
        let home = spec.env.iter().find(|(k, _)| k == "HOME").map(|(_, v)| std::path::PathBuf::from(v));
        if home.as_deref() != Some(self.own_home.as_path()) {
            return;
        }
        if let Err(e) = std::fs::remove_dir_all(&self.own_home)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(run = %self.assignment.run.id, error = %e, "could not remove the task's home");
        }
    }

    /// Git in the task's worktree, inside the agent's sandbox.
    fn worktree_git(&self, ws: &Workspace) -> baton_git::Git {
        self.jail.git(&ws.path, Arc::clone(&self.git_env))
    }

    /// Snapshots the worktree and pushes it as the task's checkpoint (when it
    /// changed), then tells the coordinator (always, when `asked`).
    async fn checkpoint(&mut self, asked: bool) {
        let Some(ws) = self.workspace.clone() else { return };
        let git = self.worktree_git(&ws);
        let task = self.assignment.task.id.clone();
        let previous = self.last_commit.clone();
        let commit = match ws.checkpoint(&git, &self.mirrors, &task, &mut self.last_checkpoint).await {
            Ok(Some(commit)) => Some(commit),
            Ok(None) if asked => previous,
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(run = %self.assignment.run.id, error = %e, "could not take a checkpoint");
                None
            }
        };
        for i in 0..self.members.len() {
            let ws = self.members[i].workspace.clone();
            let git = self.worktree_git(&ws);
            let mut last = self.members[i].last_checkpoint.take();
            if let Err(e) = ws.checkpoint(&git, &self.mirrors, &task, &mut last).await {
                tracing::warn!(run = %self.assignment.run.id, project = %self.members[i].name, error = %e, "could not take a checkpoint");
            }
            self.members[i].last_checkpoint = last;
        }
        let Some(commit) = commit else { return };
        self.last_commit = Some(commit.clone());
        // The conversation so far goes with the work: a host that dies mid-turn
        // loses at most a checkpoint's worth of either.
        self.save_conversation().await;
        if let Err(e) = self.client.run_checkpoint(&self.assignment.run.id, &commit).await {
            tracing::warn!(run = %self.assignment.run.id, error = %e, "could not report a checkpoint");
        }
    }

    /// How the run ended: the agent's outcome, its work saved, and — when it
    /// succeeded — the task's acceptance checks.
    async fn conclude(&mut self) -> RunFinished {
        let mut report = self.report();
        self.home_saved = self.save_conversation().await;
        let why = match report.status {
            RunStatus::Succeeded => "the agent finished",
            RunStatus::Stopped => "stopped",
            RunStatus::TimedOut => "timed out",
            RunStatus::Failed if report.error.as_deref().is_some_and(|e| e.starts_with("stalled")) => "stalled",
            RunStatus::Lost => "its supervisor was lost",
            _ => "the agent failed",
        };
        let Some(mut workspace) = self.workspace.clone() else { return report };
        let git = self.worktree_git(&workspace);
        let (saved, problem) = workspace.save(&git, &self.mirrors, &self.assignment.task.id, why).await;
        report.git = Some(saved);
        self.workspace = Some(workspace.clone());
        let problem = problem.or(self.save_members(why).await);
        if let Some(problem) = problem {
            // Work that did not reach the coordinator fails the run: it must not
            // look landed (it is kept in the worktree).
            report.status = RunStatus::Failed;
            report.error = Some(self.redactor.string(problem));
            return report;
        }
        let checks = self.checks(&workspace);
        if report.status != RunStatus::Succeeded || checks.is_empty() {
            return report;
        }
        if let Err(e) = self.client.run_checking(&self.assignment.run.id).await {
            tracing::warn!(run = %self.assignment.run.id, error = %e, "could not report the checks starting");
        }
        // The checks run with the agent's environment (its PATH above all): without
        // it they would fail for a reason nobody could see.
        let env = match self.spool.read_spec() {
            Ok(spec) => spec.env,
            Err(e) => {
                report.status = RunStatus::Failed;
                report.error = Some(format!("could not read the run's environment for its checks: {e}"));
                return report;
            }
        };
        let timeout = Duration::from_secs(self.assignment.timeout_s.unwrap_or(3600));
        let mut sink = Sink {
            client: &self.client,
            run: &self.assignment.run.id,
            offsets: self.offsets,
            redactor: &self.redactor,
        };
        for (check, dir, whose) in &checks {
            // The sandbox starts a command in the agent's directory: a project's
            // own check goes to its worktree first.
            let command = match whose {
                Some(_) => format!("cd '{}' && {check}", dir.to_string_lossy().replace('\'', "'\\''")),
                None => check.clone(),
            };
            let (ended, mut result) =
                commands::run(&command, "check", dir, &env, &self.jail, timeout, &mut sink, Some(&mut self.orders))
                    .await;
            result.command = match whose {
                Some(name) => format!("{name}: {check}"),
                None => check.clone(),
            };
            report.checks.push(result);
            match ended {
                Ended::Exited(Some(0)) => {}
                Ended::Stopped => {
                    report.status = RunStatus::Stopped;
                    break;
                }
                Ended::TimedOut => {
                    report.status = RunStatus::Failed;
                    report.error = Some(format!("check `{check}` timed out"));
                    break;
                }
                Ended::Exited(code) => {
                    report.status = RunStatus::Failed;
                    report.error = Some(format!(
                        "check `{check}` failed{}",
                        code.map(|c| format!(" with exit code {c}")).unwrap_or_default()
                    ));
                    break;
                }
            }
        }
        self.offsets = sink.offsets;
        report
    }

    /// The checks to run, each with its directory and, in a workset, whose it is:
    /// the task's own (in the workset's directory, or its worktree), then each
    /// project's own in its worktree.
    fn checks(&self, workspace: &Workspace) -> Vec<(String, std::path::PathBuf, Option<String>)> {
        let task = &self.assignment.task;
        let Some(dir) = workspace.path.parent().filter(|_| task.workset.is_some()) else {
            return task.checks.iter().map(|c| (c.clone(), workspace.path.clone(), None)).collect();
        };
        let own = &self.assignment.project;
        let mut checks: Vec<_> = task.checks.iter().map(|c| (c.clone(), dir.to_owned(), None)).collect();
        checks.extend(own.settings.checks.iter().map(|c| (c.clone(), workspace.path.clone(), Some(own.name.clone()))));
        for m in &self.members {
            checks.extend(m.checks.iter().map(|c| (c.clone(), m.workspace.path.clone(), Some(m.name.clone()))));
        }
        checks
    }

    /// Saves and pushes each other project's worktree of a workset task; the
    /// first problem, naming its project.
    async fn save_members(&mut self, why: &str) -> Option<String> {
        let mut first = None;
        for i in 0..self.members.len() {
            let mut ws = self.members[i].workspace.clone();
            let git = self.worktree_git(&ws);
            let (_, problem) = ws.save(&git, &self.mirrors, &self.assignment.task.id, why).await;
            if let Some(p) = problem {
                first.get_or_insert_with(|| format!("{}: {p}", self.members[i].name));
            }
            self.members[i].workspace = ws;
        }
        first
    }

    /// How the run ended, from the supervisor's record and the agent's own words.
    fn report(&self) -> RunFinished {
        let verdict = self.parser.verdict();
        let (status, error, exit_code, signal) = match self.spool.read_exit() {
            Err(_) => {
                // The supervisor vanished without a record (its host went down with
                // it): the agent's fate is unknown, so the run is lost, and the
                // coordinator's policy restarts or resumes it.
                kill_orphaned_agent(&self.spool);
                (
                    RunStatus::Lost,
                    Some("the agent's supervisor ended without recording how the agent ended".to_owned()),
                    None,
                    None,
                )
            }
            Ok(r) => match r.outcome {
                Outcome::SpawnFailed => (RunStatus::Failed, r.error, None, None),
                Outcome::Stopped => (RunStatus::Stopped, None, r.exit_code, r.signal),
                Outcome::Stalled => (
                    RunStatus::Failed,
                    Some(format!(
                        "stalled: no output for {}s (stall_s), so it was stopped",
                        self.assignment.task.stall_s.unwrap_or(0)
                    )),
                    r.exit_code,
                    r.signal,
                ),
                Outcome::TimedOut => (
                    RunStatus::TimedOut,
                    Some(format!("timed out after {}s", self.assignment.timeout_s.unwrap_or(0))),
                    r.exit_code,
                    r.signal,
                ),
                Outcome::Exited if verdict.reported_error => (
                    RunStatus::Failed,
                    Some(verdict.error.unwrap_or_else(|| "the agent reported an error".into())),
                    r.exit_code,
                    r.signal,
                ),
                Outcome::Exited if r.exit_code == Some(0) => (RunStatus::Succeeded, None, r.exit_code, None),
                Outcome::Exited => (RunStatus::Failed, None, r.exit_code, r.signal),
            },
        };
        let failure = if status == RunStatus::Succeeded { None } else { verdict.failure };
        RunFinished {
            status,
            exit_code,
            signal,
            error: error.map(|e| self.redactor.string(e)),
            git: None,
            checks: Vec::new(),
            result: self.fallback_result(),
            failure,
        }
    }

    /// Sends everything new in the spool. False when the coordinator no longer
    /// wants the run.
    async fn drain(&mut self, last: bool) -> bool {
        loop {
            let (events, to) = self.collect(last);
            if events.is_empty() && to == self.offsets {
                return true;
            }
            let files_changed = self.files_due(!events.is_empty()).await;
            let batch = EventBatch { from: self.offsets, to, events, files_changed };
            match self.send(&batch).await {
                Sent::Acked(offsets, stop) => {
                    self.offsets = offsets;
                    if let Some(reason) = stop {
                        self.stop(reason);
                    }
                }
                Sent::Resync(offsets) => self.offsets = offsets,
                Sent::Unwanted => return false,
            }
        }
    }

    /// The worktree's changed files, when the agent has been active and they were
    /// not sent in the last [`FILES_EVERY`].
    async fn files_due(&mut self, active: bool) -> Option<Vec<String>> {
        let ws = self.workspace.as_ref()?;
        if !active || self.files_checked.is_some_and(|at| at.elapsed() < FILES_EVERY) {
            return None;
        }
        self.files_checked = Some(Instant::now());
        ws.changed_files(&self.jail.git(&ws.path, Arc::clone(&self.git_env))).await
    }

    /// Parses the complete lines after the acknowledged offsets (and, when `last`,
    /// a final line without a newline).
    fn collect(&mut self, last: bool) -> (Vec<NewEvent>, SpoolOffsets) {
        let mut events = Vec::new();
        let mut to = self.offsets;
        for stream in [Stream::Stdout, Stream::Stderr] {
            let start = match stream {
                Stream::Stdout => to.stdout,
                Stream::Stderr => to.stderr,
            };
            let bytes = match self.spool.read_from(stream.as_str(), start, CHUNK) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "could not read the spool");
                    Vec::new()
                }
            };
            let mut pos = 0;
            while events.len() < MAX_BATCH_EVENTS {
                let Some(nl) = bytes[pos..].iter().position(|&b| b == b'\n') else {
                    break;
                };
                self.parse(stream, &bytes[pos..pos + nl], &mut events);
                pos += nl + 1;
            }
            let rest = bytes.len() - pos;
            if events.len() < MAX_BATCH_EVENTS
                && rest > 0
                && (pos == 0 && bytes.len() == CHUNK || last && bytes.len() < CHUNK)
            {
                self.parse(stream, &bytes[pos..], &mut events);
                pos = bytes.len();
            }
            match stream {
                Stream::Stdout => to.stdout += pos as u64,
                Stream::Stderr => to.stderr += pos as u64,
            }
        }
        (events, to)
    }

    fn parse(&mut self, stream: Stream, line: &[u8], out: &mut Vec<NewEvent>) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        for event in self.parser.line(stream, &text) {
            let event = self.redactor.event(event);
            self.remember(&event);
            out.push(fit(event, self.max_event_bytes));
        }
    }

    /// Keeps what the final answer falls back to when the agent reports no
    /// result: its last message, or the end of its output.
    fn remember(&mut self, event: &NewEvent) {
        match event.kind {
            EventKind::Result => self.reported_result = true,
            EventKind::Message if event.data["role"] == "assistant" => {
                self.last_message = event.data["text"].as_str().map(str::to_owned);
            }
            EventKind::Output if event.data["stream"] == "stdout" => {
                self.tail.push_back(event.data["line"].as_str().unwrap_or("").to_owned());
                while self.tail.len() > TAIL_LINES {
                    self.tail.pop_front();
                }
            }
            _ => {}
        }
    }

    /// The result to report when the agent reported none.
    fn fallback_result(&self) -> Option<String> {
        if self.reported_result {
            return None;
        }
        self.last_message
            .clone()
            .or_else(|| (!self.tail.is_empty()).then(|| self.tail.iter().cloned().collect::<Vec<_>>().join("\n")))
    }

    async fn send(&self, batch: &EventBatch) -> Sent {
        let run = &self.assignment.run.id;
        let mut delay = Duration::from_millis(50);
        loop {
            match self.client.run_events(run, batch).await {
                Ok(ack) => return Sent::Acked(ack.offsets, ack.stop),
                Err(ClientError::Api { code: ErrorCode::Conflict, details, .. }) => {
                    let offsets =
                        details.and_then(|d| d.get("offsets").cloned()).and_then(|o| serde_json::from_value(o).ok());
                    return match offsets {
                        Some(o) => Sent::Resync(o),
                        None => Sent::Unwanted,
                    };
                }
                Err(ClientError::Api { code: ErrorCode::PayloadTooLarge, message, .. }) => {
                    tracing::error!(run = %run, %message, "a batch was refused as too large; its events are replaced by a note");
                    let note = EventBatch {
                        from: batch.from,
                        to: batch.to,
                        events: vec![NewEvent::error(format!("{} events were too large to store", batch.events.len()))],
                        files_changed: None,
                    };
                    return match self.client.run_events(run, &note).await {
                        Ok(ack) => Sent::Acked(ack.offsets, ack.stop),
                        Err(_) => Sent::Unwanted,
                    };
                }
                // A refusal; a 5xx (the coordinator or its database away) is retried.
                Err(ClientError::Api { status: 400..=499, code, message, .. }) => {
                    tracing::warn!(run = %run, %code, %message, "the coordinator refused a batch");
                    return Sent::Unwanted;
                }
                Err(e) => {
                    tracing::warn!(run = %run, error = %e, "could not send events; retrying (they are safe in the spool)");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}
