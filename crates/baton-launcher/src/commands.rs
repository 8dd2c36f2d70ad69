//! Setup commands and acceptance checks: `sh -c COMMAND` in the worktree, inside
//! the agent's sandbox, in a process group of its own, its output sent to the
//! coordinator as `log` events as it comes (secrets redacted), with a timeout,
//! and stoppable (the whole group is killed).

use std::collections::VecDeque;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use baton_client::{Client, ClientError};
use baton_core::api::EventBatch;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::RunId;
use baton_core::model::{CheckResult, SpoolOffsets};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc;

use crate::env::Redactor;
use crate::run::Order;
use crate::sandbox::Jail;

/// How many output lines are sent together.
const LINES_PER_BATCH: usize = 50;

/// How much of the output a check result keeps.
const TAIL_BYTES: usize = 4096;

/// Sends events that do not come from the spool (they carry the acknowledged
/// offsets as both ends of their batch).
pub(crate) struct Sink<'a> {
    /// The coordinator.
    pub client: &'a Client,
    /// The run they belong to.
    pub run: &'a RunId,
    /// The acknowledged spool offsets.
    pub offsets: SpoolOffsets,
    /// Hides the run's secrets in what is sent.
    pub redactor: &'a Redactor,
}

impl Sink<'_> {
    /// Sends events, retrying while the coordinator is away; false when it no
    /// longer wants this run.
    pub(crate) async fn send(&mut self, events: Vec<NewEvent>) -> bool {
        if events.is_empty() {
            return true;
        }
        let events = events.into_iter().map(|e| self.redactor.event(e)).collect();
        let batch = EventBatch { from: self.offsets, to: self.offsets, events, files_changed: None };
        let mut delay = Duration::from_millis(50);
        loop {
            match self.client.run_events(self.run, &batch).await {
                Ok(ack) => {
                    self.offsets = ack.offsets;
                    return true;
                }
                // A refusal; a 5xx (the coordinator or its database away) is retried.
                Err(ClientError::Api { status: 400..=499, code, message, .. }) => {
                    tracing::warn!(run = %self.run, %code, %message, "the coordinator refused setup or check output");
                    return false;
                }
                Err(e) => {
                    tracing::warn!(run = %self.run, error = %e, "could not send setup or check output; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
            }
        }
    }
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ended {
    /// It exited (with its code; none if a signal ended it).
    Exited(Option<i32>),
    /// It ran past its timeout and was killed.
    TimedOut,
    /// A stop order arrived and it was killed.
    Stopped,
}

/// A line of a command's output as an event.
fn line_event(phase: &str, command: &str, stream: &str, line: &str) -> NewEvent {
    NewEvent::new(EventKind::Log, json!({ "message": line, "phase": phase, "command": command, "stream": stream }))
}

/// Runs `command` and reports its output through `sink`; how it ended, with a
/// check result.
#[expect(clippy::too_many_arguments, reason = "each is a separate part of the run the command belongs to")]
pub(crate) async fn run(
    command: &str,
    phase: &str,
    cwd: &Path,
    env: &[(String, String)],
    jail: &Jail,
    timeout: Duration,
    sink: &mut Sink<'_>,
    orders: Option<&mut mpsc::UnboundedReceiver<Order>>,
) -> (Ended, CheckResult) {
    let started = Instant::now();
    let mut result = CheckResult {
        command: command.to_owned(),
        exit_code: None,
        passed: false,
        duration_ms: 0,
        output_tail: String::new(),
    };
    let (mut cmd, container) = jail.command("sh", env);
    let spawned = cmd
        .arg("-c")
        .arg(command)
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            result.output_tail = format!("could not start sh: {e}");
            sink.send(vec![NewEvent::error(format!("{phase} `{command}` could not start: {e}"))]).await;
            return (Ended::Exited(None), result);
        }
    };
    let group = child.id().map(|p| Pid::from_raw(p as i32));
    let (Some(out), Some(err)) = (child.stdout.take(), child.stderr.take()) else {
        return (Ended::Exited(None), result);
    };
    let mut output = Output { phase, command, tail: VecDeque::new(), tail_bytes: 0, pending: Vec::new() };
    let (ended, exited) = follow(&mut child, group, (out, err), timeout, orders, sink, &mut output).await;
    let status = match ended {
        Some(_) => {
            if let Some(g) = group {
                let _ = killpg(g, Signal::SIGKILL);
            }
            let _ = child.wait().await;
            None
        }
        None => match exited {
            Some(status) => status,
            None => child.wait().await.ok(),
        },
    };
    // Whatever the command left running in its group goes too.
    if let Some(g) = group {
        let _ = killpg(g, Signal::SIGKILL);
    }
    jail.remove(container).await;
    let ended = ended.unwrap_or(Ended::Exited(status.and_then(|s| s.code())));
    result.exit_code = status.and_then(|s| s.code());
    result.passed = ended == Ended::Exited(Some(0));
    result.duration_ms = started.elapsed().as_millis() as u64;
    result.output_tail = sink.redactor.string(output.tail.into_iter().collect::<Vec<_>>().join("\n"));
    let mut pending = output.pending;
    pending.push(verdict_event(phase, command, &ended, &result, timeout));
    sink.send(pending).await;
    (ended, result)
}

/// A command's output as it is read: lines to send, and the tail kept for its
/// check result.
struct Output<'a> {
    /// The phase the command belongs to (`setup`, `check`).
    phase: &'a str,
    /// The command.
    command: &'a str,
    /// The last lines, at most [`TAIL_BYTES`] of them.
    tail: VecDeque<String>,
    /// The bytes in `tail`.
    tail_bytes: usize,
    /// Events not sent yet.
    pending: Vec<NewEvent>,
}

impl Output<'_> {
    /// Takes one line; sends the pending events when there are enough.
    async fn line(&mut self, stream: &str, line: String, sink: &mut Sink<'_>) {
        self.pending.push(line_event(self.phase, self.command, stream, &line));
        self.tail_bytes += line.len();
        self.tail.push_back(line);
        while self.tail_bytes > TAIL_BYTES {
            self.tail_bytes -= self.tail.pop_front().map_or(0, |l| l.len());
        }
        if self.pending.len() >= LINES_PER_BATCH {
            sink.send(std::mem::take(&mut self.pending)).await;
        }
    }
}

/// Reads a command's output to the end, or until it times out or is stopped.
/// Why it ended early, if it did, and `sh`'s own exit status if it came.
async fn follow(
    child: &mut tokio::process::Child,
    group: Option<Pid>,
    (out, err): (tokio::process::ChildStdout, tokio::process::ChildStderr),
    timeout: Duration,
    mut orders: Option<&mut mpsc::UnboundedReceiver<Order>>,
    sink: &mut Sink<'_>,
    output: &mut Output<'_>,
) -> (Option<Ended>, Option<Option<std::process::ExitStatus>>) {
    let (mut out, mut err) = (BufReader::new(out).lines(), BufReader::new(err).lines());
    let (mut out_done, mut err_done) = (false, false);
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    // `sh`'s own exit: a command that leaves a process behind (`server &`) is done
    // when `sh` is, not when the last holder of its pipes goes.
    let mut exited: Option<Option<std::process::ExitStatus>> = None;
    while !(out_done && err_done) {
        let (stream, line) = tokio::select! {
            line = out.next_line(), if !out_done => ("stdout", line),
            line = err.next_line(), if !err_done => ("stderr", line),
            status = child.wait(), if exited.is_none() => {
                exited = Some(status.ok());
                // What it left running goes now; its pipes close and the rest of
                // the output is read to the end.
                if let Some(g) = group {
                    let _ = killpg(g, Signal::SIGKILL);
                }
                continue;
            }
            _ = &mut deadline => return (Some(Ended::TimedOut), exited),
            order = next_order(&mut orders) => {
                match order {
                    Some(Order::Stop(_)) => return (Some(Ended::Stopped), exited),
                    // The agent is done; its worktree is pushed when the checks are.
                    Some(Order::Checkpoint) => {}
                    // Nobody can send orders any more: stop listening.
                    None => orders = None,
                }
                continue;
            }
        };
        match line {
            Ok(Some(line)) => output.line(stream, line, sink).await,
            _ if stream == "stdout" => out_done = true,
            _ => err_done = true,
        }
    }
    (None, exited)
}

/// The event that says how a command ended.
fn verdict_event(phase: &str, command: &str, ended: &Ended, result: &CheckResult, timeout: Duration) -> NewEvent {
    let verdict = match ended {
        Ended::Exited(Some(0)) => "passed".to_owned(),
        Ended::Exited(Some(code)) => format!("failed with exit code {code}"),
        Ended::Exited(None) => "was killed by a signal".to_owned(),
        Ended::TimedOut => format!("timed out after {}s", timeout.as_secs()),
        Ended::Stopped => "was stopped".to_owned(),
    };
    NewEvent::new(
        EventKind::Log,
        json!({
            "message": format!("{phase} `{command}` {verdict} ({:.1}s)", result.duration_ms as f64 / 1000.0),
            "phase": phase,
            "command": command,
            "exit_code": result.exit_code,
            "passed": result.passed,
        }),
    )
}

async fn next_order(orders: &mut Option<&mut mpsc::UnboundedReceiver<Order>>) -> Option<Order> {
    match orders {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}
