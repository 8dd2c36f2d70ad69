//! A month of traffic with and without output retention (`--month TASKS`):
//! thirty simulated days of TASKS settled tasks each (40 printed lines, a
//! message, a note and a result apiece), written straight through the store
//! while the coordinator runs, a day every [`DAY`] of real time. With
//! retention, output is kept [`KEPT_DAYS`] simulated days. The store's size is
//! sampled at each day's end: without retention it grows by a day's events
//! every day; with it, the events table stops growing once the first days
//! are archived, and only the compressed archive grows.

use std::time::{Duration, Instant};

use baton_core::ids::ProjectId;
use baton_core::time::Timestamp;
use baton_store::{Store, StoreError};
use serde_json::Value;

use crate::harness::Coordinator;
use crate::history::{store_bytes, write_task};
use crate::measures::{Measure, measure};

/// A simulated day, in real time.
const DAY: Duration = Duration::from_secs(4);
/// Days output is kept with retention on.
const KEPT_DAYS: u32 = 7;
/// Days simulated.
const DAYS: u32 = 30;

pub async fn month(per_day: usize) -> Vec<Measure> {
    let mut out = Vec::new();
    for retained in [false, true] {
        let days = format!("{}", KEPT_DAYS as f64 * DAY.as_secs_f64() / 86_400.0);
        let extra: Vec<&str> = if retained { vec!["--retain-output-days", &days] } else { Vec::new() };
        let c = Coordinator::start_with(2, "worktrees = false\n", &extra);
        let project: ProjectId =
            c.client.get::<Vec<Value>>("/api/projects").await.unwrap()[0]["id"].as_str().unwrap().parse().unwrap();
        let store = match c.store_place() {
            Ok(path) => baton_store::sqlite::open(&baton_store::sqlite::SqliteOptions::new(path)).unwrap(),
            Err(url) => baton_store::postgres::open(&baton_store::postgres::PgOptions::new(&url)).unwrap(),
        };
        let mut sizes = Vec::new();
        for day in 0..DAYS {
            let began = Instant::now();
            write_day(&store, &project, day as usize * per_day, per_day).await;
            tokio::time::sleep(DAY.saturating_sub(began.elapsed())).await;
            sizes.push(store_bytes(&c) as f64 / 1_048_576.0);
        }
        let archived = c.metric("baton_archived_events").await;
        let label = if retained { format!("retention {KEPT_DAYS} days") } else { "no retention".to_owned() };
        for day in [7, 14, 21, 30] {
            out.push(measure(&format!("month, {label}: store size on day {day}"), sizes[day - 1], "-", "MiB"));
        }
        let last_week = (sizes[29] - sizes[22]) / 7.0;
        out.push(measure(&format!("month, {label}: growth a day over the last week"), last_week, "-", "MiB"));
        out.push(measure(&format!("month, {label}: output events archived"), archived, "-", "events"));
        let stored = c.metric("baton_archive_stored_bytes").await / 1_048_576.0;
        out.push(measure(&format!("month, {label}: the archive, compressed"), stored, "-", "MiB"));
    }
    out
}

/// One day's tasks, settled now, 500 per transaction.
async fn write_day(store: &Store, project: &ProjectId, from: usize, n: usize) {
    for first in (from..from + n).step_by(500) {
        let project = project.clone();
        let last = (first + 500).min(from + n);
        store
            .write(move |tx| {
                let now = Timestamp::now().as_millis();
                for i in first..last {
                    write_task(tx, &project, i, now)?;
                }
                Ok::<_, StoreError>(())
            })
            .await
            .unwrap();
    }
}
