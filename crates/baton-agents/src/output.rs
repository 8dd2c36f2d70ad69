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
    /// What kind of failure it was, when it is one a fallback agent can avoid.
    pub failure: Option<baton_core::api::FailureKind>,
}

/// The failure kind an HTTP status from a model provider stands for.
pub fn failure_of_status(status: u64) -> Option<baton_core::api::FailureKind> {
    use baton_core::api::FailureKind;
    match status {
        401 | 403 => Some(FailureKind::Credentials),
        429 | 503 | 529 => Some(FailureKind::Overloaded),
        _ => None,
    }
}

/// The failure kind an error message speaks of, when it names one.
pub fn failure_of_text(text: &str) -> Option<baton_core::api::FailureKind> {
    use baton_core::api::FailureKind;
    let t = text.to_lowercase();
    if [
        "401",
        "403",
        "unauthorized",
        "invalid api key",
        "invalid_api_key",
        "authentication",
        "permission_denied",
        "expired",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        Some(FailureKind::Credentials)
    } else if [
        "429",
        "529",
        "overloaded",
        "rate limit",
        "rate_limit",
        "resource_exhausted",
        "quota",
        "high demand",
        "service unavailable",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        Some(FailureKind::Overloaded)
    } else {
        None
    }
}

/// A JSON line, or `None` when the line is not a JSON object.
pub(crate) fn json_object(line: &str) -> Option<serde_json::Map<String, Value>> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    match serde_json::from_str::<Value>(t) {
        Ok(Value::Object(obj)) => Some(obj),
        _ => None,
    }
}

/// The common shape of a JSON-lines parser's `line`: a stderr line is an output
/// event, a line that is not a JSON object (or that `events` does not know,
/// `None`) is kept raw, and every event keeps the line it came from. `Some` of no
/// events means the line is held back, to be joined with later ones.
pub(crate) fn json_line(
    stream: Stream,
    line: &str,
    events: impl FnOnce(&serde_json::Map<String, Value>) -> Option<Vec<NewEvent>>,
) -> Vec<NewEvent> {
    if stream == Stream::Stderr {
        return vec![output_event(stream, line)];
    }
    let Some(obj) = json_object(line) else {
        return vec![raw_event(line)];
    };
    match events(&obj) {
        Some(events) => events.into_iter().map(|e| if e.raw.is_none() { e.with_raw(line) } else { e }).collect(),
        None => vec![raw_event(line)],
    }
}

/// A line a structured parser does not understand, kept as it was.
pub(crate) fn raw_event(line: &str) -> NewEvent {
    NewEvent::new(EventKind::Raw, json!({ "line": line }))
}

/// The text of a tool result's content: a string, or text blocks joined.
pub(crate) fn content_text(content: &Value) -> Value {
    match content {
        Value::Array(blocks) => {
            let texts: Vec<&str> = blocks.iter().filter_map(|b| b["text"].as_str()).collect();
            if texts.len() == blocks.len() { Value::String(texts.join("\n")) } else { content.clone() }
        }
        other => other.clone(),
    }
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
