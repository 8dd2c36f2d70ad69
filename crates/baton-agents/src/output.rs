//! Turning an agent's output lines into events.

use baton_core::event::{EventKind, NewEvent};
use serde_json::{Value, json};

/// Which of the agent's output streams a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// Its name in events.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// How an agent's turn went, in the agent's own words.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The agent reported an error (a `result` with `is_error`).
    pub reported_error: bool,
    /// Its message, if it gave one.
    pub error: Option<String>,
}

/// Parses one agent's output, line by line. A parser may keep state between lines
/// (a stream of partial messages, say), and must never fail: a line it does not
/// understand becomes a `raw` (or `output`) event.
pub trait OutputParser: Send + Sync {
    /// Events for one line (without its newline).
    fn line(&mut self, stream: Stream, line: &str) -> Vec<NewEvent>;

    /// Events still buffered when the output ends.
    fn finish(&mut self) -> Vec<NewEvent> {
        Vec::new()
    }

    /// What the agent said about how its turn went.
    fn verdict(&self) -> Verdict;
}

/// A plain output event.
pub fn output_event(stream: Stream, line: &str) -> NewEvent {
    NewEvent::output(stream.as_str(), line)
}

/// Shrinks an event to at most `max` bytes of JSON: long strings in its data are
/// cut (marked with `…[N bytes cut]`) and a long raw line is cut the same way.
pub fn fit(mut event: NewEvent, max: usize) -> NewEvent {
    let size = |e: &NewEvent| {
        serde_json::to_vec(&e.data).map(|v| v.len()).unwrap_or(0) + e.raw.as_ref().map_or(0, String::len)
    };
    if size(&event) <= max {
        return event;
    }
    if let Some(raw) = &mut event.raw {
        cut(raw, max / 4);
    }
    let mut limit = max / 2;
    while size(&event) > max && limit > 64 {
        cut_strings(&mut event.data, limit);
        limit /= 2;
    }
    if size(&event) > max {
        let kind = event.kind;
        event.data = json!({ "truncated": true, "kind": kind.as_str() });
        event.kind = if kind == EventKind::Output { EventKind::Output } else { EventKind::Raw };
        event.raw = None;
    }
    event
}

fn cut(s: &mut String, max: usize) {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        let removed = s.len() - at;
        s.truncate(at);
        s.push_str(&format!("…[{removed} bytes cut]"));
    }
}

fn cut_strings(v: &mut Value, max: usize) {
    match v {
        Value::String(s) => cut(s, max),
        Value::Array(items) => items.iter_mut().for_each(|i| cut_strings(i, max)),
        Value::Object(map) => map.values_mut().for_each(|i| cut_strings(i, max)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_events_are_cut_to_fit() {
        let e =
            NewEvent::tool_result(Some("1"), Value::String("x".repeat(100_000)), false).with_raw("y".repeat(100_000));
        let fitted = fit(e, 10_000);
        let size = serde_json::to_vec(&fitted.data).unwrap().len() + fitted.raw.as_ref().map_or(0, String::len);
        assert!(size <= 10_000, "{size}");
        assert!(fitted.data["output"].as_str().unwrap().contains("bytes cut]"));
        let small = NewEvent::log("hi");
        assert_eq!(fit(small.clone(), 10_000), small);
    }
}
