//! Output archived: the lines a settled task's agent printed, moved out of the
//! events table into compressed slices (at most [`SLICE_EVENTS`] events each, one
//! session per slice), and read back beside the live events as if they had never
//! left. Both backends store the slices; this is what they share: the format
//! and the merge.

use std::io::{Read, Write};

use baton_core::event::{Event, EventKind};
use baton_core::ids::SessionId;
use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::{EventFilter, StoreError};

/// The kinds of event archived: lines printed. Messages, tool calls, results,
/// usage and Baton's own notes stay in the events table.
pub const ARCHIVED_KINDS: &[EventKind] = &[EventKind::Output, EventKind::Raw];

/// The most events in one slice.
pub const SLICE_EVENTS: u32 = 10_000;

/// A slice of one session's archived events, ready to store.
pub(crate) struct Slice {
    /// Its first and last event's position in the global stream.
    pub(crate) ids: (i64, i64),
    /// Its first and last event's sequence number in the session.
    pub(crate) seqs: (i64, i64),
    /// How many events it holds.
    pub(crate) count: i64,
    /// Their size as JSON lines, before compression.
    pub(crate) bytes: i64,
    /// The events' task (when they name one).
    pub(crate) task: Option<String>,
    /// The events as gzip-compressed JSON lines.
    pub(crate) data: Vec<u8>,
}

/// Where a slice is among the ones a read may need, by the key it reads by.
pub(crate) struct SliceRef {
    /// The slice's row.
    pub(crate) id: i64,
    /// Its first event's key (a position or a sequence number).
    pub(crate) first: i64,
}

/// What a slice's row is found by.
pub(crate) enum Scope<'a> {
    /// A session's, by sequence number.
    SessionSeq(&'a str),
    /// A session's, by position.
    Session(&'a str),
    /// A task's (every session), by position.
    Task(&'a str),
}

impl Scope<'_> {
    /// The query for the slices of this scope holding an event past `$2` (both
    /// backends number parameters `$1`, `$2`), and its `$1`.
    pub(crate) fn refs_sql(&self) -> (&'static str, &str) {
        match self {
            Scope::SessionSeq(s) => (
                "SELECT id, first_seq FROM event_archives WHERE session_id = $1 AND last_seq > $2 ORDER BY first_seq",
                s,
            ),
            Scope::Session(s) => {
                ("SELECT id, first_id FROM event_archives WHERE session_id = $1 AND last_id > $2 ORDER BY first_id", s)
            }
            Scope::Task(t) => {
                ("SELECT id, first_id FROM event_archives WHERE task_id = $1 AND last_id > $2 ORDER BY first_id", t)
            }
        }
    }
}

/// The events read by a scan (`id, ts, session_id, kind`, in order), up to the
/// first from `before` on: the sessions among them that printed, and the
/// position read up to (`after` when none was read).
pub(crate) fn printed<E>(
    rows: impl Iterator<Item = Result<(i64, i64, Option<String>, String), E>>,
    after: i64,
    before: i64,
) -> Result<(Vec<SessionId>, i64), E> {
    let (mut sessions, mut upto) = (std::collections::BTreeSet::new(), after);
    for row in rows {
        let (id, ts, session, kind) = row?;
        if ts >= before {
            break;
        }
        upto = id;
        if ARCHIVED_KINDS.iter().any(|k| k.as_str() == kind)
            && let Some(s) = session.and_then(|s| SessionId::parse(&s).ok())
        {
            sessions.insert(s);
        }
    }
    Ok((sessions.into_iter().collect(), upto))
}

/// Stores a slice (both backends number parameters `$1`…): the session, the
/// task, the first and last position and sequence number, the count, the size
/// and the data.
pub(crate) const INSERT_SLICE: &str = "INSERT INTO event_archives
    (session_id, task_id, first_id, last_id, first_seq, last_seq, count, bytes, data)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)";

/// Marks a session's output as waiting, or no longer (parameter `$1`).
pub(crate) fn waiting_sql(waiting: bool) -> &'static str {
    if waiting {
        "INSERT INTO output_waiting (session_id) VALUES ($1) ON CONFLICT DO NOTHING"
    } else {
        "DELETE FROM output_waiting WHERE session_id = $1"
    }
}

/// What both backends read slices with.
pub(crate) trait Slices {
    /// The slices of a scope holding any event past `after`, by their first key.
    fn slice_refs(&self, scope: &Scope<'_>, after: i64) -> Result<Vec<SliceRef>, StoreError>;
    /// A slice's compressed events.
    fn slice_data(&self, id: i64) -> Result<Vec<u8>, StoreError>;
}

/// Packs a session's events (oldest first, at least one) into a slice.
pub(crate) fn pack(events: &[Event]) -> Result<Slice, StoreError> {
    let io = |e: std::io::Error| StoreError::Database(Box::new(e));
    let (first, last) = match (events.first(), events.last()) {
        (Some(f), Some(l)) => (f, l),
        _ => return Err(StoreError::Database("an empty slice".into())),
    };
    let mut gz = GzEncoder::new(Vec::new(), Compression::default());
    let mut bytes = 0;
    for event in events {
        let mut line = serde_json::to_vec(event).map_err(|source| StoreError::Corrupt { what: "event", source })?;
        line.push(b'\n');
        bytes += line.len() as i64;
        gz.write_all(&line).map_err(io)?;
    }
    Ok(Slice {
        ids: (first.id, last.id),
        seqs: (first.seq.unwrap_or(0), last.seq.unwrap_or(0)),
        count: events.len() as i64,
        bytes,
        task: first.task_id.as_ref().map(|t| t.to_string()),
        data: gz.finish().map_err(io)?,
    })
}

/// A slice's events, in order.
pub(crate) fn unpack(data: &[u8]) -> Result<Vec<Event>, StoreError> {
    let mut text = String::new();
    GzDecoder::new(data).read_to_string(&mut text).map_err(|e| StoreError::Database(Box::new(e)))?;
    text.lines()
        .map(|line| serde_json::from_str(line).map_err(|source| StoreError::Corrupt { what: "archived event", source }))
        .collect()
}

/// Where a read of the global stream finds archived events: a session's or a
/// task's, of kinds that can be archived. The whole stream (live subscribers
/// catching up) reads only live events.
pub(crate) fn scope_of(filter: &EventFilter) -> Option<Scope<'_>> {
    if !may_hold(&filter.kinds) {
        return None;
    }
    match (&filter.session, &filter.task) {
        (Some(s), _) => Some(Scope::Session(s.as_str())),
        (None, Some(t)) => Some(Scope::Task(t.as_str())),
        (None, None) => None,
    }
}

/// Whether an archived event matches the rest of a filter (its scope matched).
pub(crate) fn keeps(filter: &EventFilter, e: &Event) -> bool {
    (filter.kinds.is_empty() || filter.kinds.contains(&e.kind))
        && filter.task.as_ref().is_none_or(|t| e.task_id.as_ref() == Some(t))
}

/// Whether a read of these kinds (any, when empty) can find archived events.
pub(crate) fn may_hold(kinds: &[EventKind]) -> bool {
    kinds.is_empty() || kinds.iter().any(|k| ARCHIVED_KINDS.contains(k))
}

/// The first `limit` events past `after` by `key`, of the live ones read (the
/// first `limit` of the store's) and the archived ones of `scope` that `keep`
/// takes. Slices are opened in order of their first key, and only while they
/// can still hold one of the first `limit`.
pub(crate) fn merged(
    store: &dyn Slices,
    live: Vec<Event>,
    scope: Scope<'_>,
    after: i64,
    limit: u32,
    keep: impl Fn(&Event) -> bool,
) -> Result<Vec<Event>, StoreError> {
    let key = |e: &Event| match scope {
        Scope::SessionSeq(_) => e.seq.unwrap_or(0),
        _ => e.id,
    };
    let refs = store.slice_refs(&scope, after)?;
    if refs.is_empty() {
        return Ok(live);
    }
    let limit = limit as usize;
    let mut archived: Vec<Event> = Vec::new();
    for r in refs {
        if archived.len() >= limit {
            archived.sort_by_key(key);
            archived.truncate(limit);
            if archived.last().is_some_and(|e| key(e) < r.first) {
                break;
            }
        }
        let events = unpack(&store.slice_data(r.id)?)?;
        archived.extend(events.into_iter().filter(|e| key(e) > after && keep(e)));
    }
    let mut all = live;
    all.extend(archived);
    all.sort_by_key(key);
    all.truncate(limit);
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::time::Timestamp;

    fn event(id: i64, seq: i64, kind: EventKind) -> Event {
        Event {
            id,
            ts: Timestamp::from_millis(id),
            session_id: Some(SessionId::generate()),
            seq: Some(seq),
            run_id: None,
            task_id: None,
            kind,
            data: serde_json::json!({ "line": format!("line {id}") }),
            raw: Some(format!("raw {id}")),
        }
    }

    struct Two(Vec<Vec<u8>>, Vec<i64>);

    impl Slices for Two {
        fn slice_refs(&self, _: &Scope<'_>, after: i64) -> Result<Vec<SliceRef>, StoreError> {
            Ok(self
                .1
                .iter()
                .enumerate()
                .filter(|(_, f)| **f > after - 10)
                .map(|(i, f)| SliceRef { id: i as i64, first: *f })
                .collect())
        }
        fn slice_data(&self, id: i64) -> Result<Vec<u8>, StoreError> {
            Ok(self.0[id as usize].clone())
        }
    }

    #[test]
    fn a_slice_reads_back_as_it_was_packed() {
        let events: Vec<Event> = (1..=50).map(|i| event(i, i, EventKind::Output)).collect();
        let slice = pack(&events).unwrap();
        assert_eq!((slice.ids, slice.seqs, slice.count), ((1, 50), (1, 50), 50));
        assert!(slice.data.len() < slice.bytes as usize);
        assert_eq!(unpack(&slice.data).unwrap(), events);
    }

    #[test]
    fn merging_takes_the_first_of_live_and_archived_in_order() {
        // Archived: 1..=10 and 21..=30 (outputs); live: 11..=20 (messages) and 31..
        let a = pack(&(1..=10).map(|i| event(i, i, EventKind::Output)).collect::<Vec<_>>()).unwrap();
        let b = pack(&(21..=30).map(|i| event(i, i, EventKind::Output)).collect::<Vec<_>>()).unwrap();
        let store = Two(vec![a.data, b.data], vec![1, 21]);
        let live: Vec<Event> = (11..=20).chain(31..=35).map(|i| event(i, i, EventKind::Message)).collect();
        let got = merged(&store, live.clone(), Scope::Session("s"), 5, 20, |_| true).unwrap();
        assert_eq!(got.iter().map(|e| e.id).collect::<Vec<_>>(), (6..=25).collect::<Vec<_>>());
        let outputs_only = merged(&store, Vec::new(), Scope::Session("s"), 0, 100, |e| e.id % 2 == 0).unwrap();
        assert_eq!(outputs_only.len(), 10);
    }
}
