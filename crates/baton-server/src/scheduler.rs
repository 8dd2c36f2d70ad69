//! The scheduler: every change of a task, session or run, as functions over one
//! store transaction.
//!
//! Nothing here waits or polls. Each operation (create a task, a run finished, a
//! launcher polls) reads what it needs, checks the state machines, writes the new
//! state and its change events, and reports in [`Effects`] what must happen after
//! the commit (wake launchers, forget revoked tokens). Consequences follow at once
//! inside the same transaction: a task that succeeds promotes the dependents it
//! was holding back; one that fails blocks them.

pub(crate) mod emit;
mod launchers;
pub mod orchestrations;
mod placement;
mod plans;
mod runs;
mod settle;
mod tasks;

use baton_core::ids::SessionId;
use baton_core::model::TokenRecord;

pub(crate) use emit::save_task as emit_task;
pub use launchers::{
    due_orders, due_stops, expire_silent, heartbeat, mark_offline, order_done, register, seen, set_draining,
};
pub use plans::create_plan;
pub use runs::{
    attach, claim_runs, ingest_events, lose_runs, overdue_runs, redeliver, run_checking, run_checkpoint, run_finished,
    run_started, stop_overdue,
};
pub use tasks::update_git;
pub use tasks::{approve_task, create_task, resume_task, retry_task, stop_task};

/// What an operation asks to be done once its transaction has committed.
#[derive(Debug, Default)]
pub struct Effects {
    /// Runs were queued or stops were asked for: wake launcher polls.
    pub wake_launchers: bool,
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
}
