//! The Baton coordinator: the HTTP API (REST, live stream, launcher protocol), the
//! scheduler behind it, authentication, and project registration.
//!
//! [`app`] builds the router from an [`AppState`]; `baton up` and the integration
//! tests share it. Handlers are thin: they authenticate, parse, and hand the work
//! to a [`scheduler`] function that runs inside one store transaction; what must
//! happen after the commit (waking launchers, token bookkeeping) comes back as
//! [`scheduler::Effects`] and is applied by [`transact`].

mod api;
pub mod auth;
mod coordinator;
pub mod docs;
pub mod error;
pub mod forge;
pub mod git_http;
pub mod hooks;
pub mod lead;
mod leader;
mod notices;
pub mod projects;
pub mod prompt;
pub mod radar;
pub mod resolve;
pub mod review;
pub mod scheduler;
pub mod signature;
pub mod state;
pub mod tls;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::Ordering;

use baton_store::StoreTx;

pub use api::app;
pub use coordinator::Coordinator;
pub use state::{AppState, ServerConfig, WebhookSettings};

use error::AppError;
use scheduler::Effects;

/// Runs a scheduler operation in one write transaction, then applies its effects.
/// Launchers that may have work are told on every replica (a notice sent with
/// the transaction), and at once on this one.
pub async fn transact<T, F>(state: &Arc<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    transact_as(state, false, f).await
}

/// [`transact`] ahead of the store's backlog: a launcher's claim, so that work
/// starts without waiting behind the events and reports of a busy fleet.
pub async fn transact_urgent<T, F>(state: &Arc<AppState>, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    transact_as(state, true, f).await
}

async fn transact_as<T, F>(state: &Arc<AppState>, urgent: bool, f: F) -> Result<T, AppError>
where
    F: FnOnce(&mut dyn StoreTx, &mut Effects) -> Result<T, AppError> + Send + 'static,
    T: Send + 'static,
{
    let job = move |tx: &mut dyn StoreTx| {
        let mut fx = Effects::default();
        let value = f(tx, &mut fx)?;
        if !fx.wake.is_empty() {
            tx.notify(fx.wake.notice())?;
        }
        Ok::<_, AppError>((value, fx))
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
    if !fx.wake.is_empty() {
        state.wake(&fx.wake);
    }
}
