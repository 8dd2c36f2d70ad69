//! Baton's coordinator domain: where a task's state changes.
//!
//! Tasks, sessions, runs, plans and orchestrations ([`scheduler`]), the
//! feedback loops and the governor's pools, the merge queue and review
//! ([`review`]), projects and their agents ([`projects`]), prompts, the conflict
//! radar, the lead's status, the context store ([`docs`]), Claude Code hooks, the
//! timers under their lease ([`timers`]) and the outbox that tells the world
//! what happened ([`outbox`]).
//!
//! Every change is a function over one store transaction ([`transact`]) that
//! returns what must happen after the commit as [`Effects`]. What the domain
//! needs from an integration (a forge's merge) goes through a trait the domain
//! owns ([`Forge`]).
//!
//! This crate may depend on `baton-core`, `baton-store`, `baton-git` and
//! `baton-agents`. It may not depend on HTTP (axum, hyper, reqwest, tower), on
//! an integration (`baton-forge`, `baton-webhooks`) or on the server: they
//! depend on it. A test in `baton-cli` checks this from `cargo metadata`.

pub mod chat;
pub mod docs;
pub mod error;
pub mod forge;
pub mod hooks;
pub mod inbox;
mod landing;
pub mod lead;
pub mod leads;
pub mod meaning;
pub mod memory;
pub mod notices;
pub mod outbox;
pub mod projects;
pub mod prompt;
pub mod radar;
pub mod resolve;
pub mod retention;
pub mod review;
pub mod scheduler;
pub mod schedules;
pub mod signature;
pub mod state;
pub mod timers;
pub mod tokens;
pub mod worksets;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use baton_store::{StoreError, StoreTx};

pub use error::Error;
pub use forge::Forge;
pub use scheduler::Effects;
pub use state::{AppState, Config, WebhookSettings};

/// Runs a scheduler operation in one write transaction, then applies its effects.
/// Its error is the domain's [`Error`], or any error the caller's own steps in
/// the transaction return that a store failure converts into.
/// Launchers that may have work are told on every replica (a notice sent with
/// the transaction), and at once on this one.
pub async fn transact<T, E, F>(state: &Arc<AppState>, f: F) -> Result<T, E>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    transact_as(state, false, f).await
}

/// [`transact`] ahead of the store's backlog: a launcher's claim, so that work
/// starts without waiting behind the events and reports of a busy fleet.
pub async fn transact_urgent<T, E, F>(state: &Arc<AppState>, f: F) -> Result<T, E>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    transact_as(state, true, f).await
}

async fn transact_as<T, E, F>(state: &Arc<AppState>, urgent: bool, f: F) -> Result<T, E>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    let job = move |tx: &mut dyn StoreTx| {
        let mut fx = Effects::default();
        let value = f(tx, &mut fx)?;
        if !fx.wake.is_empty() {
            tx.notify(fx.wake.notice())?;
        }
        Ok::<_, E>((value, fx))
    };
    let (value, fx) = if urgent { state.store.write_urgent(job).await? } else { state.store.write(job).await? };
    apply(state, fx);
    Ok(value)
}

fn apply(state: &Arc<AppState>, fx: Effects) {
    for session in &fx.revoked_sessions {
        state.tokens.forget(baton_core::model::TokenKind::Session, session.as_str());
    }
    for token in fx.new_tokens {
        state.tokens.insert(token);
    }
    if fx.events_ingested > 0 {
        state.metrics.events_ingested.fetch_add(fx.events_ingested, Ordering::Relaxed);
    }
    if let Some(at) = fx.wake_at {
        // The fast path; the timers' replica wakes every replica's launchers at
        // that time too (see `leader`), so a backoff survives this replica.
        let state = Arc::clone(state);
        let delay = at.millis_since(baton_core::Timestamp::now()).max(0) as u64;
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
            state.wake_launchers();
        });
    }
    if fx.merges_queued {
        state.merge_work.notify_one();
    }
    if fx.forge {
        state.forge_work.notify_one();
    }
    // The launchers are woken by the notice the job sent (`notices::follow`), on
    // this replica as on the others: waking them here as well counted each run
    // twice as unclaimed, and every queued run then woke every launcher.
}
