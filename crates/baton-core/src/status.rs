//! The state machines of tasks, sessions, runs and launchers.
//!
//! Each status is an enum stored by its snake_case name. `transition` is the only
//! way to move from one status to another: it returns [`IllegalTransition`] for a
//! move the machine does not allow, which the API answers with 409, so a state is
//! never silently overwritten.
//!
//! ```text
//! task:    pending ─┬─> queued ──> running ──┬─> checking ─┬─> succeeded
//!                   ├─> awaiting_approval    ├─────────────┼─> failed
//!                   └─> blocked              └─────────────┴─> cancelled
//!          (finished tasks go back to queued on resume or retry; blocked to pending)
//! session: queued ──> running ──┬─> idle      (idle/failed/stopped ─> queued on resume)
//!                               ├─> failed
//!                               └─> stopped
//! run:     queued ──> claimed ──> running ──┬─> succeeded | failed | stopped
//!                                           └─> timed_out | lost
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A move a state machine does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a {entity} cannot go from {from} to {to}")]
pub struct IllegalTransition {
    /// Which machine refused (task, session, run).
    pub entity: &'static str,
    /// The current status.
    pub from: &'static str,
    /// The status that was asked for.
    pub to: &'static str,
}

/// A status name that is not one of the machine's states.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {entity} status {value:?}")]
pub struct UnknownStatus {
    /// Which machine the name was meant for.
    pub entity: &'static str,
    /// What was given.
    pub value: String,
}

macro_rules! state_machine {
    (
        $(#[$doc:meta])*
        $name:ident, $entity:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal => [$($to:ident),*] ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every status of this machine.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stored and displayed name.
            pub fn as_str(self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }

            /// Whether the machine allows moving from `self` to `to`.
            pub fn can_become(self, to: $name) -> bool {
                let allowed: &[$name] = match self { $( $name::$variant => &[$($name::$to),*], )* };
                allowed.contains(&to)
            }

            /// The move from `self` to `to`, or the reason it is not allowed.
            pub fn transition(self, to: $name) -> Result<$name, IllegalTransition> {
                if self.can_become(to) {
                    Ok(to)
                } else {
                    Err(IllegalTransition { entity: $entity, from: self.as_str(), to: to.as_str() })
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, UnknownStatus> {
                match s {
                    $( $text => Ok($name::$variant), )*
                    _ => Err(UnknownStatus { entity: $entity, value: s.to_owned() }),
                }
            }
        }
    };
}

state_machine! {
    /// Where a task is in its life.
    TaskStatus, "task" {
        /// Waiting for its prerequisites to succeed.
        Pending = "pending" => [Queued, AwaitingApproval, Blocked, Cancelled],
        /// Prerequisites done; waiting for `baton approve`.
        AwaitingApproval = "awaiting_approval" => [Queued, Cancelled, Blocked],
        /// A run is queued and waiting for a launcher slot.
        Queued = "queued" => [Running, Failed, Cancelled, Blocked, Queued, Paused],
        /// An agent process is working on it.
        Running = "running" => [Checking, Reviewing, Succeeded, Failed, Cancelled, Queued, Paused],
        /// The agent finished; acceptance checks are running.
        Checking = "checking" => [Reviewing, Succeeded, Failed, Cancelled, Queued],
        /// Its checks passed; a reviewer agent is reading its work.
        Reviewing = "reviewing" => [Succeeded, Queued, Failed, Cancelled],
        /// Done, and its checks passed.
        Succeeded = "succeeded" => [Queued, Cancelled],
        /// The agent or its checks failed and no retry is left.
        Failed = "failed" => [Queued, Pending],
        /// Stopped by a user or by a budget.
        Cancelled = "cancelled" => [Queued, Pending],
        /// Its budget (or its project's) is spent: its work is committed and its
        /// session kept; `baton resume` or a raised budget continues it.
        Paused = "paused" => [Queued, Cancelled],
        /// A prerequisite failed or was cancelled; it will not run until that is retried.
        Blocked = "blocked" => [Pending, Cancelled],
    }
}

impl TaskStatus {
    /// Whether the task is finished (until someone resumes or retries it).
    pub fn is_finished(self) -> bool {
        matches!(self, TaskStatus::Succeeded | TaskStatus::Failed | TaskStatus::Cancelled)
    }

    /// Whether nothing more happens to the task by itself: it is finished, or
    /// blocked by a prerequisite until someone retries that.
    pub fn is_settled(self) -> bool {
        self.is_finished() || self == TaskStatus::Blocked
    }

    /// Whether nothing more happens to the task until someone acts: it is
    /// settled, or paused for its budget.
    pub fn is_at_rest(self) -> bool {
        self.is_settled() || self == TaskStatus::Paused
    }

    /// Whether a synchronous wait on the task answers: it is at rest, or it waits
    /// for an approval (which the waiter may be the one to give).
    pub fn ends_a_wait(self) -> bool {
        self.is_at_rest() || self == TaskStatus::AwaitingApproval
    }

    /// Whether a run of the task is queued or in progress.
    pub fn is_active(self) -> bool {
        matches!(self, TaskStatus::Queued | TaskStatus::Running | TaskStatus::Checking)
    }
}

state_machine! {
    /// Where a session (one conversation with an agent) is.
    SessionStatus, "session" {
        /// Its next run waits for a launcher.
        Queued = "queued" => [Running, Stopped, Failed, Queued],
        /// A run is in progress.
        Running = "running" => [Idle, Failed, Stopped, Queued],
        /// The last run ended well; the conversation can be resumed.
        Idle = "idle" => [Queued],
        /// The last run failed; it can be resumed.
        Failed = "failed" => [Queued],
        /// The last run was stopped; it can be resumed.
        Stopped = "stopped" => [Queued],
    }
}

impl SessionStatus {
    /// Whether no run of the session is queued or running.
    pub fn is_idle(self) -> bool {
        !matches!(self, SessionStatus::Queued | SessionStatus::Running)
    }
}

state_machine! {
    /// Where a run (one turn of a session) is.
    RunStatus, "run" {
        /// Waiting for a launcher to claim it.
        Queued = "queued" => [Claimed, Stopped, Failed],
        /// A launcher took it and is preparing the agent process.
        Claimed = "claimed" => [Running, Failed, Stopped, Lost, Queued],
        /// The agent process is alive.
        Running = "running" => [Succeeded, Failed, Stopped, TimedOut, Lost],
        /// The agent exited and reported success.
        Succeeded = "succeeded" => [],
        /// The agent exited with a failure, or could not start.
        Failed = "failed" => [],
        /// Stopped on request.
        Stopped = "stopped" => [],
        /// Killed because it ran past its timeout.
        TimedOut = "timed_out" => [],
        /// Its launcher went away and the process could not be found again.
        Lost = "lost" => [],
    }
}

impl RunStatus {
    /// Whether the run has ended.
    pub fn is_finished(self) -> bool {
        !matches!(self, RunStatus::Queued | RunStatus::Claimed | RunStatus::Running)
    }
}

state_machine! {
    /// Where an orchestration (planner → experts → synthesizer) is.
    OrchestrationStatus, "orchestration" {
        /// Created; the planner has not started.
        Pending = "pending" => [Planning, Failed],
        /// The planner is working.
        Planning = "planning" => [Executing, Failed],
        /// The subtasks are running.
        Executing = "executing" => [Synthesizing, Failed],
        /// The synthesizer is merging the results.
        Synthesizing = "synthesizing" => [Completed, Failed],
        /// Done, with a final result.
        Completed = "completed" => [],
        /// Planning failed (or everything else did).
        Failed = "failed" => [],
    }
}

state_machine! {
    /// Whether a launcher is reachable.
    LauncherStatus, "launcher" {
        /// Heartbeats arrive.
        Online = "online" => [Offline, Online],
        /// No heartbeat within the allowed interval, or it said goodbye.
        Offline = "offline" => [Online],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in TaskStatus::ALL {
            assert_eq!(s.as_str().parse::<TaskStatus>().unwrap(), *s);
            assert_eq!(serde_json::to_string(s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        for s in RunStatus::ALL {
            assert_eq!(s.as_str().parse::<RunStatus>().unwrap(), *s);
        }
        assert!("runnning".parse::<TaskStatus>().is_err());
    }

    #[test]
    fn illegal_transitions_are_errors() {
        let err = TaskStatus::Succeeded.transition(TaskStatus::Running).unwrap_err();
        assert_eq!(err.to_string(), "a task cannot go from succeeded to running");
        assert!(TaskStatus::Pending.transition(TaskStatus::Queued).is_ok());
        assert!(RunStatus::Succeeded.transition(RunStatus::Running).is_err());
        assert!(RunStatus::Queued.transition(RunStatus::Running).is_err());
    }

    #[test]
    fn finished_runs_are_final() {
        for s in RunStatus::ALL.iter().filter(|s| s.is_finished()) {
            for t in RunStatus::ALL {
                assert!(!s.can_become(*t), "{s} -> {t}");
            }
        }
    }
}
