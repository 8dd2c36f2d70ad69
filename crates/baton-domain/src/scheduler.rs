//! The scheduler: every change of a task, session or run, as functions over one
//! store transaction.
//!
//! Nothing here waits or polls. Each operation (create a task, a run finished, a
//! launcher polls) reads what it needs, checks the state machines, writes the new
//! state and its change events, and reports in [`Effects`] what must happen after
//! the commit (wake launchers, forget revoked tokens). Consequences follow at once
//! inside the same transaction: a task that succeeds promotes the dependents it
//! was holding back; one that fails blocks them.

pub mod attempts;
pub mod emit;
pub mod follow_ups;
mod governor;
mod launchers;
pub mod loops;
pub mod orchestrations;
mod placement;
mod plans;
mod runs;
mod settle;
pub(crate) mod tasks;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use baton_core::agent::ExecutorKind;
use baton_core::ids::{LauncherId, SessionId};
use baton_core::model::TokenRecord;

pub use attempts::{create_attempts, keep_attempt};
pub use emit::save_task as emit_task;
pub use follow_ups::{send_follow_up, withdraw_follow_up};
pub use governor::{known as pool_known, list as pools};
pub use launchers::{
    Polled, due_orders, expire_silent, heartbeat, mark_offline, order_done, poll, register, seen, set_draining,
};
pub use plans::{check_plan_only, create_plan};
pub use runs::{
    attach, claim_runs, ingest_events, lose_runs, overdue_runs, run_checking, run_checkpoint, run_finished,
    run_started, stop_overdue,
};
pub use settle::this_hour;
pub use tasks::update_git;
pub use tasks::{Asked, NewTask, insert as insert_task, new_task};
pub use tasks::{approve_task, create_task, resume_budget_paused, resume_task, retry_task, stop_task};

/// What an operation asks to be done once its transaction has committed.
#[derive(Debug, Default)]
pub struct Effects {
    /// Launcher polls to wake: runs were queued, slots freed, stops asked for.
    pub wake: Wake,
    /// Tokens that were created (to remember without a database read).
    pub new_tokens: Vec<TokenRecord>,
    /// Sessions whose tokens were revoked.
    pub revoked_sessions: Vec<SessionId>,
    /// Events stored from launchers.
    pub events_ingested: u64,
    /// A run was queued to start later (retry backoff): wake launchers then.
    pub wake_at: Option<baton_core::Timestamp>,
    /// Merge requests were queued (the merge queue's worker may have work).
    pub merges_queued: bool,
    /// A task of a project with a forge succeeded (a pull request to open or push).
    pub forge: bool,
}

/// Which waiting launcher polls to wake. A queued run wakes as many launchers
/// of its executor as runs were queued (those with the most free slots first;
/// the others a moment later if the runs are still unclaimed); a freed slot, a
/// stop or an order wakes only its launcher.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Wake {
    /// Every one (something any launcher may take, e.g. a backoff ended).
    pub all: bool,
    /// Runs queued for each executor: that many of the launchers that run it
    /// (0: a slot freed that one of them may use).
    pub executors: BTreeMap<ExecutorKind, u32>,
    /// These.
    pub launchers: BTreeSet<LauncherId>,
}

impl Wake {
    /// Wake every waiting poll.
    pub fn everyone(&mut self) {
        self.all = true;
    }

    /// A run for `executor` was queued.
    pub fn executor(&mut self, executor: ExecutorKind) {
        *self.executors.entry(executor).or_default() += 1;
    }

    /// A slot under a limit freed: one launcher of `executor` may take a run
    /// that was held back (nothing new was queued).
    pub fn slot_freed(&mut self, executor: ExecutorKind) {
        self.executors.entry(executor).or_default();
    }

    /// Wake one launcher.
    pub fn launcher(&mut self, id: &LauncherId) {
        self.launchers.insert(id.clone());
    }

    /// Whether nothing is to be woken.
    pub fn is_empty(&self) -> bool {
        !self.all && self.executors.is_empty() && self.launchers.is_empty()
    }

    /// The notice that tells the other replicas (`executor:count`).
    pub fn notice(&self) -> baton_store::Notice {
        if self.all {
            return baton_store::Notice::Work { executors: Vec::new(), launchers: Vec::new() };
        }
        baton_store::Notice::Work {
            executors: self.executors.iter().map(|(e, n)| format!("{}:{n}", e.as_str())).collect(),
            launchers: self.launchers.iter().map(|l| l.to_string()).collect(),
        }
    }

    /// The wake a notice asks for.
    pub fn from_notice(executors: Vec<String>, launchers: Vec<String>) -> Self {
        let launchers: BTreeSet<LauncherId> = launchers.iter().filter_map(|l| LauncherId::parse(l).ok()).collect();
        let all = executors.is_empty() && launchers.is_empty();
        let executors = executors
            .iter()
            .filter_map(|e| {
                let (name, n) = e.split_once(':').unwrap_or((e, "1"));
                Some((name.parse().ok()?, n.parse().unwrap_or(0)))
            })
            .collect();
        Wake { all, executors, launchers }
    }
}
