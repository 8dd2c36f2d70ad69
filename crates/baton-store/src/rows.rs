//! What both backends do with rows: things are stored as JSON documents beside
//! the few columns queries filter and sort on, and events as columns.

use std::str::FromStr;

use baton_core::event::{Event, EventKind};
use baton_core::ids::{RunId, SessionId, TaskId};
use baton_core::model::TokenKind;
use baton_core::time::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::StoreError;

/// The columns an event is read from, in this order.
pub(crate) const EVENT_COLUMNS: &str = "id, ts, session_id, seq, run_id, task_id, kind, data, raw";

/// Reads a stored JSON document.
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Corrupt { what, source })
}

/// Writes a JSON document to store.
pub(crate) fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|source| StoreError::Corrupt { what, source })
}

/// A token's kind as stored.
pub(crate) fn token_kind(text: &str) -> Option<TokenKind> {
    match text {
        "admin" => Some(TokenKind::Admin),
        "launcher" => Some(TokenKind::Launcher),
        "session" => Some(TokenKind::Session),
        _ => None,
    }
}

/// An events row before its ids are checked.
pub(crate) struct EventRow {
    pub(crate) id: i64,
    pub(crate) ts: i64,
    pub(crate) session_id: Option<String>,
    pub(crate) seq: Option<i64>,
    pub(crate) run_id: Option<String>,
    pub(crate) task_id: Option<String>,
    pub(crate) kind: String,
    pub(crate) data: String,
    pub(crate) raw: Option<String>,
}

impl EventRow {
    /// The event, its ids and kind checked.
    pub(crate) fn into_event(self) -> Result<Event, StoreError> {
        let corrupt =
            |_| StoreError::Corrupt { what: "event", source: serde::de::Error::custom("malformed id or kind") };
        Ok(Event {
            id: self.id,
            ts: Timestamp::from_millis(self.ts),
            session_id: self.session_id.as_deref().map(SessionId::parse).transpose().map_err(corrupt)?,
            seq: self.seq,
            run_id: self.run_id.as_deref().map(RunId::parse).transpose().map_err(corrupt)?,
            task_id: self.task_id.as_deref().map(TaskId::parse).transpose().map_err(corrupt)?,
            kind: EventKind::from_str(&self.kind)
                .map_err(|_| StoreError::Corrupt { what: "event", source: serde::de::Error::custom("unknown kind") })?,
            data: decode("event data", &self.data)?,
            raw: self.raw,
        })
    }
}

/// An hour's counts of tasks ended as stored (succeeded, failed, cancelled) for
/// one that ended in `status`.
pub(crate) fn finished_counts(status: Option<baton_core::status::TaskStatus>) -> [i64; 3] {
    use baton_core::status::TaskStatus;
    match status {
        Some(TaskStatus::Succeeded) => [1, 0, 0],
        Some(TaskStatus::Failed) => [0, 1, 0],
        Some(TaskStatus::Cancelled) => [0, 0, 1],
        _ => [0, 0, 0],
    }
}

/// An hour's row as read back (a project id that does not parse is left out).
pub(crate) fn hour_row(hour: i64, project: &str, agent: String, n: [i64; 3], cost_usd: f64) -> Option<crate::HourRow> {
    use baton_core::status::TaskStatus;
    let finished = [TaskStatus::Succeeded, TaskStatus::Failed, TaskStatus::Cancelled]
        .into_iter()
        .zip(n)
        .filter(|(_, n)| *n > 0)
        .map(|(s, n)| (s, n as u64))
        .collect();
    Some(crate::HourRow { hour, project: project.parse().ok()?, agent, finished, cost_usd })
}

/// A vector as stored: its numbers as little-endian `f32`s.
pub(crate) fn vector_bytes(vector: &[f32]) -> Vec<u8> {
    vector.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// A stored vector (trailing bytes short of a number are ignored).
pub(crate) fn vector_of(bytes: &[u8]) -> Vec<f32> {
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}
