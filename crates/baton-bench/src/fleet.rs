//! `baton-bench --fleet N×M`: N launchers of M slots each, registered through
//! the real protocol (each with a launcher token of its own), whose agents end
//! at once: the coordinator's claim path at fleet scale, alone.
//!
//! Measured: how long 10,000 tasks take to go through; the claim round trip (a
//! poll that does not wait: the launcher had just been given work); how soon a
//! new runnable task is claimed while 10,000 runs of another project are held
//! back by its `parallel_limit`; the coordinator's CPU time per 1,000 runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_client::Client;
use baton_core::agent::ExecutorKind;
use baton_core::api::{PollRequest, RegisterLauncher, RunFinished, RunStarted};
use baton_core::ids::RunId;
use baton_core::status::RunStatus;
use serde_json::{Value, json};

use crate::harness::Coordinator;
use crate::measures::{Measure, measure, median_p99};

/// `N×M` (or `NxM`): launchers and slots each.
pub fn parse_spec(spec: &str) -> Result<(usize, u32), String> {
    let bad = || format!("--fleet {spec:?}: expected LAUNCHERS×SLOTS, e.g. 50x20 (each 1 to 1000)");
    let (n, m) = spec.split_once(['x', '×', 'X']).ok_or_else(bad)?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    let m: u32 = m.trim().parse().map_err(|_| bad())?;
    if !(1..=1000).contains(&n) || !(1..=1000).contains(&m) {
        return Err(bad());
    }
    Ok((n, m))
}

/// What the fake launchers saw.
#[derive(Default)]
struct Seen {
    /// Milliseconds of each poll that did not wait.
    claim_rtt: Vec<f64>,
    /// When each task's run was handed to a launcher, by task id.
    claimed: HashMap<String, Instant>,
    /// Runs ended.
    done: usize,
}

/// The prompt of tasks whose runs a fake launcher keeps running (never ends).
const HOLD: &str = "hold";

/// `launchers` fake launchers of `slots` slots each against one coordinator:
/// `tasks` tasks as fast as they go, then paced, then fairness under a limit.
pub async fn fleet(launchers: usize, slots: u32, tasks: usize) -> Vec<Measure> {
    let c = Coordinator::start_with(1, "worktrees = false\n", &["--no-launcher"]);
    crate::measures::agent(&c, "noop", json!(["true"])).await;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let mut fleet = Vec::new();
    for i in 0..launchers {
        let made: Value =
            c.client.post("/api/tokens", &json!({ "kind": "launcher", "name": format!("fleet-{i}") })).await.unwrap();
        let client = Client::new(&c.url, Some(made["token"].as_str().unwrap().to_owned())).unwrap();
        fleet.push(tokio::spawn(launcher(client, i, slots, Arc::clone(&seen))));
    }
    // Every launcher registered and waiting.
    let start = Instant::now();
    while c.client.get::<Vec<Value>>("/api/launchers").await.unwrap().len() < launchers {
        assert!(start.elapsed() < Duration::from_secs(30), "the fleet did not register");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let big = launchers * slots as usize >= 1000 && tasks >= 10_000;
    let mut out = flat_out(&c, &seen, launchers, slots, tasks, big).await;
    out.extend(paced(&c, &seen, tasks, big).await);
    out.extend(fairness(&c, &seen).await);
    for l in fleet {
        l.abort();
    }
    out
}

/// Throughput: `tasks` tasks, submitted as plans of 1,000, as fast as they go.
async fn flat_out(
    c: &Coordinator,
    seen: &Mutex<Seen>,
    launchers: usize,
    slots: u32,
    tasks: usize,
    big: bool,
) -> Vec<Measure> {
    let mut out = Vec::new();
    let cpu_before = cpu_ms(c.pid());
    let start = Instant::now();
    submit(c, "repo", tasks, "x").await;
    while seen.lock().unwrap().done < tasks {
        assert!(start.elapsed() < Duration::from_secs(600), "the fleet did not finish its tasks");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu = cpu_ms(c.pid()) - cpu_before;
    out.push(measure(
        &format!("fleet {launchers}×{slots}: {tasks} tasks through"),
        secs,
        if big { "< 60" } else { "-" },
        "s",
    ));
    out.push(measure("  coordinator CPU per 1,000 runs", cpu / (tasks as f64 / 1000.0), "-", "ms"));
    let rtt = std::mem::take(&mut seen.lock().unwrap().claim_rtt);
    let (median, p99) = median_p99(rtt);
    out.push(measure("  as fast as it goes: claim round trip, median", median, "-", "ms"));
    out.push(measure("  as fast as it goes: claim round trip, p99", p99, "-", "ms"));
    out
}

/// The same number of tasks at the target's own rate (all of them in 60 s),
/// submitted in plans of 100 at even intervals.
async fn paced(c: &Coordinator, seen: &Mutex<Seen>, tasks: usize, big: bool) -> Vec<Measure> {
    let mut out = Vec::new();
    let paced = Duration::from_secs(60).mul_f64(tasks as f64 / 10_000.0);
    let chunks = tasks.div_ceil(100);
    let start = Instant::now();
    let before = seen.lock().unwrap().done;
    let (claims, claim_secs) = (c.metric("baton_claims_total").await, c.metric("baton_claim_seconds_total").await);
    let work_secs = c.metric("baton_claim_work_seconds_total").await;
    for i in 0..chunks {
        let due = start + paced.mul_f64(i as f64 / chunks as f64);
        tokio::time::sleep_until(due.into()).await;
        submit_plan(c, "repo", (tasks - i * 100).min(100), "x", &format!("paced{i}")).await;
    }
    while seen.lock().unwrap().done < before + tasks {
        assert!(start.elapsed() < paced + Duration::from_secs(600), "the paced tasks did not finish");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let rtt = std::mem::take(&mut seen.lock().unwrap().claim_rtt);
    let (median, p99) = median_p99(rtt);
    let label = format!("  {tasks} tasks paced over {:.0} s: claim round trip", paced.as_secs_f64());
    out.push(measure(&format!("{label}, median"), median, "-", "ms"));
    out.push(measure(&format!("{label}, p99"), p99, if big { "< 20" } else { "-" }, "ms"));
    let n = c.metric("baton_claims_total").await - claims;
    let secs = c.metric("baton_claim_seconds_total").await - claim_secs;
    out.push(measure(
        "    of which the claim transaction (the coordinator's side), mean",
        secs * 1000.0 / n.max(1.0),
        "-",
        "ms",
    ));
    let work = c.metric("baton_claim_work_seconds_total").await - work_secs;
    out.push(measure("    of which the claim's own work, mean", work * 1000.0 / n.max(1.0), "-", "ms"));
    out
}

/// Fairness: 10,000 runs held back by a limit, then new runnable tasks.
async fn fairness(c: &Coordinator, seen: &Mutex<Seen>) -> Vec<Measure> {
    let held = c._dir.path().join("held");
    std::fs::create_dir_all(held.join(".baton")).unwrap();
    std::fs::write(held.join(".baton/config.toml"), "worktrees = false\nparallel_limit = 1\n").unwrap();
    let ok = std::process::Command::new("sh")
        .arg("-c")
        .arg("git init -q -b main && git -c user.email=b@b -c user.name=b commit -q --allow-empty -m init")
        .current_dir(&held)
        .status()
        .unwrap();
    assert!(ok.success());
    let _: Value = c.client.post("/api/projects", &json!({ "path": held, "name": "held" })).await.unwrap();
    submit(c, "held", 10_000, HOLD).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut samples = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let task: Value =
            c.client.post("/api/tasks", &json!({ "project": "repo", "prompt": "x", "agent": "noop" })).await.unwrap();
        let id = task["id"].as_str().unwrap().to_owned();
        let claimed = loop {
            if let Some(at) = seen.lock().unwrap().claimed.get(&id) {
                break *at;
            }
            assert!(t0.elapsed() < Duration::from_secs(10), "a runnable task was never claimed");
            tokio::time::sleep(Duration::from_micros(500)).await;
        };
        samples.push(claimed.duration_since(t0).as_secs_f64() * 1000.0);
    }
    let (median, p99) = median_p99(samples);
    vec![
        measure("  10,000 runs held: new task claimed, median", median, "< 50", "ms"),
        measure("  10,000 runs held: new task claimed, p99", p99, "-", "ms"),
    ]
}

/// Submits `n` tasks of the `noop` agent to a project, as plans of 1,000.
async fn submit(c: &Coordinator, project: &str, n: usize, prompt: &str) {
    for chunk in 0..n.div_ceil(1000) {
        submit_plan(c, project, (n - chunk * 1000).min(1000), prompt, &chunk.to_string()).await;
    }
}

/// Submits one plan of `size` tasks of the `noop` agent.
async fn submit_plan(c: &Coordinator, project: &str, size: usize, prompt: &str, tag: &str) {
    let tasks: Vec<Value> =
        (0..size).map(|i| json!({ "name": format!("t{tag}-{i}"), "prompt": prompt, "agent": "noop" })).collect();
    let _: Value = c.client.post("/api/plans", &json!({ "project": project, "tasks": tasks })).await.unwrap();
}

/// A launcher whose agents end the moment they start (except those told to hold).
async fn launcher(client: Client, i: usize, slots: u32, seen: Arc<Mutex<Seen>>) {
    let registered = client
        .register_launcher(&RegisterLauncher {
            id: None,
            name: format!("fleet-{i}"),
            hostname: format!("host-{i}"),
            version: env!("CARGO_PKG_VERSION").into(),
            slots,
            executors: vec![ExecutorKind::Command],
            labels: Vec::new(),
            sandbox: None,
        })
        .await
        .expect("register");
    let id = registered.launcher.id;
    let held: Arc<Mutex<Vec<RunId>>> = Arc::default();
    let active: Arc<Mutex<Vec<RunId>>> = Arc::default();
    // Polls are the launcher's sign of life here: shorter than its timeout.
    let mut wait_ms = 5_000;
    loop {
        let running: Vec<RunId> = active.lock().unwrap().iter().chain(held.lock().unwrap().iter()).cloned().collect();
        let t = Instant::now();
        let Ok(answer) = client.poll(&id, &PollRequest { wait_ms, running: Some(running) }).await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let now = Instant::now();
        {
            let mut s = seen.lock().unwrap();
            if wait_ms == 0 {
                s.claim_rtt.push(now.duration_since(t).as_secs_f64() * 1000.0);
            }
            for a in &answer.runs {
                s.claimed.insert(a.task.id.to_string(), now);
            }
        }
        wait_ms = if answer.runs.is_empty() { 5_000 } else { 0 };
        for a in answer.runs {
            let (client, seen, held, active) =
                (client.clone(), Arc::clone(&seen), Arc::clone(&held), Arc::clone(&active));
            let hold = a.task.prompt == HOLD;
            active.lock().unwrap().push(a.run.id.clone());
            tokio::spawn(async move {
                let run = a.run.id;
                let started = RunStarted { pid: 1, git: None, sandbox: None };
                let _ = client.run_started(&run, &started).await;
                if hold {
                    held.lock().unwrap().push(run.clone());
                } else {
                    let mut report = RunFinished::ended(RunStatus::Succeeded, "");
                    report.error = None;
                    report.exit_code = Some(0);
                    let _ = client.run_finished(&run, &report).await;
                    seen.lock().unwrap().done += 1;
                }
                active.lock().unwrap().retain(|r| *r != run);
            });
        }
    }
}

/// The CPU time (user and system) a process has used, in milliseconds.
fn cpu_ms(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|(_, s)| s).unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = [11, 12].iter().filter_map(|i| fields.get(*i)?.parse::<f64>().ok()).sum();
    // Clock ticks are 100 a second on Linux.
    ticks * 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fleet_specs_are_launchers_by_slots() {
        assert_eq!(parse_spec("50x20"), Ok((50, 20)));
        assert_eq!(parse_spec("50×20"), Ok((50, 20)));
        for bad in ["", "50", "x20", "50x", "0x20", "50x0", "-1x2", "5000x2", "ax b", "50x20x3"] {
            assert!(parse_spec(bad).is_err(), "{bad}");
        }
    }
}
