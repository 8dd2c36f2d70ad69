//! How the CLI shows things to people: tables, ages, event lines.

use baton_core::event::{Event, EventKind, summarize};
use baton_core::time::Timestamp;
use serde::Serialize;

/// Prints a value as pretty JSON.
pub fn print_json<T: Serialize>(value: &T) {
    match serde_json::to_string_pretty(value) {
        Ok(s) => println!("{s}"),
        Err(e) => eprintln!("error: could not print JSON: {e}"),
    }
}

/// How long ago, compactly: `12s`, `5m`, `3h`, `2d`.
pub fn ago(ts: Timestamp) -> String {
    span(Timestamp::now().millis_since(ts).max(0))
}

/// A span of milliseconds, compactly.
pub fn span(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `HH:MM:SS` (UTC) of a timestamp.
pub fn clock(ts: Timestamp) -> String {
    let s = ts.as_millis().div_euclid(1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)
}

/// A size in bytes, compactly.
pub fn bytes(n: u64) -> String {
    match n {
        0..1024 => format!("{n}B"),
        1024..1_048_576 => format!("{:.0}K", n as f64 / 1024.0),
        1_048_576..1_073_741_824 => format!("{:.0}M", n as f64 / 1_048_576.0),
        _ => format!("{:.1}G", n as f64 / 1_073_741_824.0),
    }
}

/// Cuts text to `max` characters on one line.
pub fn cut(text: &str, max: usize) -> String {
    let line: String = text.chars().map(|c| if c == '\n' || c == '\t' { ' ' } else { c }).collect();
    if line.chars().count() > max {
        let mut s: String = line.chars().take(max.saturating_sub(1)).collect();
        s.push('…');
        s
    } else {
        line
    }
}

/// Prints rows as a table with a header, columns padded to their widest cell.
pub fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let line = |cells: Vec<String>| {
        let last = cells.len().saturating_sub(1);
        let parts: Vec<String> = cells
            .into_iter()
            .enumerate()
            .map(|(i, c)| if i == last { c } else { format!("{c:<w$}", w = widths[i]) })
            .collect();
        println!("{}", parts.join("  ").trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for row in rows {
        line(row.clone());
    }
}

/// Remembers the last status shown per thing, so repeated snapshots print once.
#[derive(Default)]
pub struct EventPrinter {
    last_task_status: Option<String>,
    last_run_status: Option<(String, String)>,
}

impl EventPrinter {
    /// The line to show for an event, if it is worth a line.
    pub fn line(&mut self, e: &Event) -> Option<String> {
        let when = clock(e.ts);
        let text = match e.kind {
            EventKind::Session | EventKind::Project | EventKind::Agent | EventKind::Launcher => {
                return None;
            }
            EventKind::Task => {
                let status = e.data["status"].as_str()?.to_owned();
                if self.last_task_status.as_deref() == Some(status.as_str()) {
                    return None;
                }
                self.last_task_status = Some(status.clone());
                match e.data["reason"].as_str() {
                    Some(reason) => format!("task {status}: {reason}"),
                    None => format!("task {status}"),
                }
            }
            EventKind::Run => {
                let id = e.data["id"].as_str()?.to_owned();
                let status = e.data["status"].as_str()?.to_owned();
                if self.last_run_status.as_ref() == Some(&(id.clone(), status.clone())) {
                    return None;
                }
                self.last_run_status = Some((id.clone(), status.clone()));
                match e.data["error"].as_str() {
                    Some(err) if status != "running" => format!("run {id} {status}: {err}"),
                    _ => format!("run {id} {status}"),
                }
            }
            EventKind::Output => {
                let stream = e.data["stream"].as_str().unwrap_or("stdout");
                let line = e.data["line"].as_str().unwrap_or("");
                if stream == "stderr" { format!("! {line}") } else { format!("| {line}") }
            }
            kind => cut(&summarize(kind, &e.data), 400),
        };
        Some(format!("{when} {text}"))
    }
}
