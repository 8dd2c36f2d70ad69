//! Output retention (`retain_output_days`): the lines an agent printed, once its
//! task has been settled for longer than that, move out of the events table into
//! compressed slices per session. `baton logs`, the API and the dashboard read
//! them as before; the events table, and the store's file with it, stop growing
//! with history. Messages, tool calls, results and usage stay where they are.
//!
//! The timers' holder does it, in passes: it reads the events in order from
//! where the last pass stopped (up to the cutoff), notes every session that
//! printed as waiting, then archives the waiting sessions whose task is settled
//! and old enough, a slice per transaction. A session whose task is still open
//! (or was reopened) waits for a later pass.

use std::sync::Arc;
use std::time::{Duration, Instant};

use baton_core::Timestamp;
use baton_core::ids::SessionId;
use baton_store::StoreError;
use baton_store::archive::SLICE_EVENTS;

use crate::state::AppState;

/// How many events one transaction reads when looking for sessions that printed.
const SCAN: u32 = 20_000;

/// How long one pass works before it leaves the rest to the next.
const PASS: Duration = Duration::from_millis(500);

/// How many waiting sessions a pass reads at a time.
const WAITING_PAGE: u32 = 100;

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Events read looking for sessions that printed.
    pub scanned: i64,
    /// Events archived.
    pub archived: u64,
    /// Pages given back to the file system.
    pub reclaimed: u64,
}

/// Where the passes are among the waiting sessions (kept between passes, so every
/// waiting session is looked at in turn).
#[derive(Debug, Default)]
pub struct Cursor {
    after: Option<SessionId>,
    /// Whether the last pass ran out of time with work left (the next one
    /// starts at once rather than at its usual interval).
    pub more: bool,
}

/// One pass: archives what has been settled for longer than `keep`.
pub async fn pass(state: &Arc<AppState>, keep: Duration, cursor: &mut Cursor) -> Result<Pass, StoreError> {
    let started = Instant::now();
    let cutoff = Timestamp::now().plus_millis(-(keep.as_millis() as i64));
    let mut done = Pass::default();
    while started.elapsed() < PASS {
        let read = state
            .store
            .write(move |tx| {
                let from = tx.retention_scanned()?;
                let (sessions, upto) = tx.output_sessions(from, cutoff, SCAN)?;
                for s in &sessions {
                    tx.wait_output(s, true)?;
                }
                tx.set_retention_scanned(upto)?;
                Ok::<_, StoreError>(upto - from)
            })
            .await?;
        done.scanned += read;
        if read == 0 {
            break;
        }
    }
    while started.elapsed() < PASS {
        let after = cursor.after.clone();
        let page = state.store.read(move |r| r.output_waiting(after.as_ref(), WAITING_PAGE)).await?;
        let last = page.len() < WAITING_PAGE as usize;
        for session in page {
            cursor.after = Some(session.clone());
            done.archived += archive_session(state, session, cutoff).await?;
            if started.elapsed() >= PASS {
                break;
            }
        }
        if last {
            // Round again from the first next time.
            cursor.after = None;
            break;
        }
    }
    // Work is left when the scan or the waiting sessions were cut short.
    cursor.more = started.elapsed() >= PASS;
    if done.archived > 0 {
        while started.elapsed() < PASS * 2 {
            let pages = state.store.write(|tx| tx.reclaim_space()).await?;
            done.reclaimed += pages;
            if pages == 0 {
                break;
            }
        }
    }
    Ok(done)
}

/// Archives a waiting session's output if its task was settled before `cutoff`
/// (a slice per transaction), and stops its waiting when nothing is left or the
/// session is gone; how many events moved.
async fn archive_session(state: &Arc<AppState>, session: SessionId, cutoff: Timestamp) -> Result<u64, StoreError> {
    let mut moved = 0;
    loop {
        let id = session.clone();
        let (n, more) = state
            .store
            .write(move |tx| {
                let task = match tx.session(&id)? {
                    Some(s) => tx.task(&s.task_id)?,
                    None => None,
                };
                let Some(task) = task else {
                    tx.wait_output(&id, false)?;
                    return Ok::<_, StoreError>((0, false));
                };
                let settled_at = task.finished_at.unwrap_or(task.updated_at);
                if !task.status.is_settled() || settled_at >= cutoff {
                    return Ok((0, false));
                }
                let n = tx.archive_output(&id)?;
                if n < SLICE_EVENTS {
                    tx.wait_output(&id, false)?;
                }
                Ok((n, n == SLICE_EVENTS))
            })
            .await?;
        moved += u64::from(n);
        if !more {
            return Ok(moved);
        }
    }
}
