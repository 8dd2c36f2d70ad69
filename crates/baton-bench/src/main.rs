//! `baton-bench`: measures a real `baton up` (release build) on this machine.
//!
//! ```text
//! cargo build --release --bin baton --bin baton-bench
//! target/release/baton-bench [--quick] [--fanout] [--baseline bench/baseline.json] [--save FILE]
//! target/release/baton-bench --fleet 50x20 [--tasks 10000]   # the claim path at fleet scale
//! target/release/baton-bench --soak 4   # tasks for 4 hours: the coordinator's memory and files must stay bounded
//! target/release/baton-bench --search 100000   # hybrid search over 100,000 embedded passages
//! target/release/baton-bench --month 1000   # 30 simulated days of 1,000 tasks, with and without output retention
//! target/release/baton-bench --dag 10000   # a plan of 10,000 tasks submitted, five times
//! target/release/baton-bench --worktrees   # create → spawned with worktrees alone: back to back and paced
//! target/release/baton-bench --containers 30   # container runs: made for each, and warm (Podman, root)
//! target/release/baton-bench --history 100000  # the same requests on an empty store and after 100,000 tasks
//! BATON_TEST_PG=postgres://USER:PASSWORD@HOST:PORT/postgres target/release/baton-bench   # on PostgreSQL
//! ```
//!
//! Each figure is a median (and p99) of many runs, printed beside the target from
//! DESIGN.md and, when a baseline file is given, the baseline's figure.
//! `baton-bench stamp DIR` is the agent used to time spawns: it writes the time it
//! started running into `DIR/$BATON_TASK_ID`; `baton-bench emit COUNT RATE` is the
//! agent of the fan-out measure: COUNT lines at RATE a second, each its own time.

mod containers;
mod fanout;
mod fleet;
mod harness;
mod history;
mod measures;
mod month;
mod search;
mod soak;

use std::collections::BTreeMap;
use std::path::PathBuf;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("stamp") {
        harness::stamp(&args[2]);
        return;
    }
    if args.get(1).map(String::as_str) == Some("emit") {
        harness::emit(args[2].parse().expect("count"), args[3].parse().expect("rate"));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map(PathBuf::from);
    // A flag's number, or a clear stop when it is not one.
    let count = |name: &str, what: &str| {
        flag(name).map(|v| {
            v.to_string_lossy().parse::<usize>().unwrap_or_else(|_| {
                eprintln!("baton-bench: {name} takes a number of {what}");
                std::process::exit(2);
            })
        })
    };
    let baseline: BTreeMap<String, f64> = flag("--baseline")
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let results = if let Some(spec) = flag("--fleet") {
        let (launchers, slots) = match fleet::parse_spec(&spec.to_string_lossy()) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("baton-bench: {e}");
                std::process::exit(2);
            }
        };
        let tasks = match flag("--tasks").map(|t| t.to_string_lossy().parse::<usize>()) {
            None => 10_000,
            Some(Ok(n)) if n > 0 => n,
            Some(_) => {
                eprintln!("baton-bench: --tasks takes a positive number");
                std::process::exit(2);
            }
        };
        rt.block_on(fleet::fleet(launchers, slots, tasks))
    } else if let Some(hours) = flag("--soak") {
        let Ok(hours) = hours.to_string_lossy().parse::<f64>() else {
            eprintln!("baton-bench: --soak takes a number of hours (0.1 for six minutes)");
            std::process::exit(2);
        };
        rt.block_on(soak::soak(hours))
    } else if let Some(chunks) = count("--search", "passages (100000)") {
        rt.block_on(search::search(chunks.max(10)))
    } else if let Some(tasks) = count("--history", "tasks (100000)") {
        rt.block_on(history::history(tasks.max(1)))
    } else if let Some(tasks) = count("--month", "tasks a day (1000)") {
        rt.block_on(month::month(tasks.max(1)))
    } else if args.iter().any(|a| a == "--worktrees") {
        rt.block_on(async { measures::worktrees(if quick { 10 } else { 1 }).await.0 })
    } else if let Some(runs) = count("--containers", "runs (30)") {
        rt.block_on(containers::containers(runs.max(1)))
    } else if let Some(tasks) = count("--dag", "tasks (10000)") {
        rt.block_on(measures::dag_alone(tasks.max(1)))
    } else if args.iter().any(|a| a == "--fanout") {
        rt.block_on(async {
            let c = harness::Coordinator::start(8, "worktrees = false\n");
            let clients = std::env::var("BENCH_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(50);
            fanout::fanout(&c, 20_000, if quick { 1 } else { 3 }, clients).await
        })
    } else {
        rt.block_on(measures::all(quick))
    };
    let store = if harness::on_postgres() { "postgres" } else { "sqlite" };
    println!("\nstore: {store}");
    println!("{:<44} {:>10} {:>8} {:>10}  unit", "measure", "value", "target", "baseline");
    for r in &results {
        let base = baseline.get(&r.key).map(|b| format!("{b:.3}")).unwrap_or_else(|| "-".into());
        println!("{:<44} {:>10.3} {:>8} {:>10}  {}", r.key, r.value, r.target, base, r.unit);
    }
    if let Some(path) = flag("--save") {
        let map: BTreeMap<&str, f64> = results.iter().map(|r| (r.key.as_str(), r.value)).collect();
        std::fs::write(&path, serde_json::to_string_pretty(&map).unwrap() + "\n").expect("save results");
        println!("\nsaved to {}", path.display());
    }
}
