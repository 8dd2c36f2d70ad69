//! What other replicas (and this one) tell through the store: revoked tokens,
//! work for launchers, merge requests.

use std::sync::Arc;

use baton_store::Notice;
use tokio::sync::broadcast::error::RecvError;

use crate::state::AppState;

/// Follows the store's notices for as long as the store lives.
pub async fn follow(state: Arc<AppState>) {
    let mut notices = state.store.notices();
    loop {
        match notices.recv().await {
            Ok(Notice::TokenRevoked { hash }) => state.tokens.forget_hash(&hash),
            Ok(Notice::TokensRevoked { kind, subject }) => state.tokens.forget_subject(&kind, subject.as_deref()),
            Ok(Notice::Work { executors, launchers }) => {
                state.wake(&crate::scheduler::Wake::from_notice(executors, launchers))
            }
            Ok(Notice::MergeQueued) => state.merge_work.notify_one(),
            Ok(Notice::Deliveries) => state.delivery_work.notify_one(),
            // Its waiter listens for it itself.
            Ok(Notice::MergeDone { .. }) => {}
            Ok(Notice::Resync) | Err(RecvError::Lagged(_)) => {
                // Something may have been missed: nothing cached is trusted.
                state.tokens.clear();
                state.wake_launchers();
                state.merge_work.notify_one();
                state.delivery_work.notify_one();
            }
            Err(RecvError::Closed) => return,
        }
    }
}
