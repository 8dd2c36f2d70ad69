//! Following a task live until it ends, over the coordinator's event stream.

use std::time::Duration;

use baton_client::{Client, EventStream};
use baton_core::event::EventKind;
use baton_core::model::Task;
use baton_core::status::TaskStatus;

use crate::error::CliError;
use crate::output::EventPrinter;

/// What to show while following.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Nothing.
    Quiet,
    /// A line per event, on stderr.
    Progress,
    /// Each event as a JSON line, on stdout.
    Json,
}

/// Opens the stream of one task's events from `after` (`None`: from now), to be
/// opened before acting on the task so nothing that follows is missed.
pub async fn open(client: &Client, task: &str, after: Option<i64>) -> Result<EventStream, CliError> {
    Ok(client.stream(after, &format!("task={task}")).await?)
}

/// Shows a task's events from `stream` until the task settles; the settled task.
pub async fn follow(client: &Client, task: &str, mut stream: EventStream, show: Show) -> Result<Task, CliError> {
    let mut printer = EventPrinter::default();
    let mut last_id: Option<i64> = None;
    let mut failures = 0u32;
    loop {
        match stream.next().await {
            Ok(Some(event)) => {
                failures = 0;
                last_id = Some(event.id);
                match show {
                    Show::Quiet => {}
                    Show::Progress => {
                        if let Some(line) = printer.line(&event) {
                            eprintln!("{line}");
                        }
                    }
                    Show::Json => println!("{}", serde_json::to_string(&event).unwrap_or_default()),
                }
                if event.kind == EventKind::Task
                    && let Some(status) = event.data["status"].as_str().and_then(|s| s.parse::<TaskStatus>().ok())
                    && status.is_at_rest()
                {
                    return Ok(client.task(task).await?.task);
                }
            }
            Ok(None) | Err(_) => {
                failures += 1;
                if failures > 60 {
                    return Err(CliError::LostCoordinator("following the task"));
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
                if let Ok(detail) = client.task(task).await
                    && detail.task.status.is_at_rest()
                {
                    return Ok(detail.task);
                }
                if let Ok(s) = open(client, task, last_id).await {
                    stream = s;
                }
            }
        }
    }
}

/// The exit code for a settled task: 0 when it succeeded.
pub fn exit_code(task: &Task) -> u8 {
    if task.status == TaskStatus::Succeeded { 0 } else { 1 }
}

/// Tells the user how a followed task ended, on stderr.
pub fn announce(task: &Task) {
    match &task.reason {
        Some(reason) => eprintln!("task {} {}: {reason}", task.id, task.status),
        None => eprintln!("task {} {}", task.id, task.status),
    }
}
