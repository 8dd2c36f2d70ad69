//! Chaos, seeded and reproducible: many tasks run while the coordinator, the
//! launcher, supervisors and agents are killed with SIGKILL at random moments,
//! restarted, and the launcher is paused past its heartbeat timeout. At the end
//! every promise is checked: each task ended once, every line of every run is
//! stored once and in order, no process is left, every worktree belongs to a
//! task, and git and the database are intact.
//!
//! `CHAOS_SEED=N` replays a run; `CHAOS_TASKS=N` scales it (default 300).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use baton_core::event::EventKind;
use baton_core::model::Task;
use baton_core::status::TaskStatus;
use serde_json::json;

use crate::harness::{BATON, Baton, processes_of_task};

/// A small, seeded generator (xorshift64*): the same seed, the same chaos.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// `baton launcher` as a process of its own, so it can be killed and paused
/// apart from the coordinator.
struct Launcher {
    child: Option<Child>,
    args: Vec<String>,
}

impl Launcher {
    fn start(b: &Baton, token: &str, data: &Path) -> Launcher {
        std::fs::write(data.with_extension("token"), token).unwrap();
        let args = vec![
            "launcher".into(),
            "--url".into(),
            b.url.clone(),
            "--name".into(),
            "chaos".into(),
            "--slots".into(),
            "8".into(),
            "--token-file".into(),
            data.with_extension("token").display().to_string(),
            "--data-dir".into(),
            data.display().to_string(),
        ];
        let mut l = Launcher { child: None, args };
        l.spawn();
        l
    }

    fn spawn(&mut self) {
        let child = Command::new(BATON)
            .args(&self.args)
            .env("BATON_LOG", "warn")
            .env_remove("BATON_URL")
            .env_remove("BATON_TOKEN")
            .stdin(Stdio::null())
            .spawn()
            .expect("start the launcher");
        self.child = Some(child);
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().map_or(0, |c| c.id() as i32)
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Launcher {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn signal(pid: i32, sig: &str) {
    let _ = Command::new("kill").args([&format!("-{sig}"), &pid.to_string()]).stderr(Stdio::null()).status();
}

/// The script of every agent: `n` numbered lines, `s` seconds apart (from its prompt).
const AGENT: &str = r#"eval "$BATON_PROMPT"; i=1; while [ $i -le $n ]; do echo "line $i"; i=$((i+1)); sleep $s; done"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_loses_nothing_and_leaves_nothing_behind() {
    let seed: u64 = std::env::var("CHAOS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    let count: u64 = std::env::var("CHAOS_TASKS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    eprintln!("chaos: CHAOS_SEED={seed} CHAOS_TASKS={count} (set them to replay this run)");
    let mut rng = Rng(seed);

    let mut b = Baton::start_with(&["--no-launcher", "--launcher-timeout", "3"]);
    let address = b.address();
    let data = b.dir.path().join("launcher-data");
    let token = b.launcher_token("chaos").await;
    let mut launcher = Launcher::start(&b, &token, &data);
    b.agent("counter", AGENT).await;

    let mut expected: BTreeMap<String, u64> = BTreeMap::new();
    for _ in 0..count {
        let n = 1 + rng.below(8);
        let s = [0.0, 0.05, 0.1, 0.2, 0.3][rng.below(5) as usize];
        let body = json!({ "prompt": format!("n={n} s={s}"), "agent": "counter", "max_retries": 8 });
        expected.insert(b.task(body).await, n);
    }

    // The chaos, until every task has settled (or the clock runs out).
    let started = Instant::now();
    let mut actions: Vec<String> = Vec::new();
    loop {
        tokio::time::sleep(Duration::from_millis(300 + rng.below(1500))).await;
        let settled = settled_count(&b, &expected).await;
        if settled == expected.len() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(600),
            "seed {seed}: only {settled} of {} tasks settled after 10 minutes; actions: {actions:?}",
            expected.len()
        );
        let action = match rng.below(10) {
            0 => {
                b.kill9();
                tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
                b.restart_at(&address);
                "kill -9 the coordinator, restart it".to_owned()
            }
            1 => {
                launcher.kill9();
                tokio::time::sleep(Duration::from_millis(rng.below(1500))).await;
                launcher.spawn();
                "kill -9 the launcher, restart it".to_owned()
            }
            2 => {
                signal(launcher.pid(), "STOP");
                tokio::time::sleep(Duration::from_millis(3500 + rng.below(1500))).await;
                signal(launcher.pid(), "CONT");
                "pause the launcher past its heartbeat timeout".to_owned()
            }
            3..=6 => match victim(&expected, &mut rng) {
                Some(pid) => {
                    signal(pid, "KILL");
                    format!("kill -9 process {pid} of a running task")
                }
                None => continue,
            },
            _ => continue,
        };
        actions.push(action);
    }
    eprintln!("chaos: {} actions in {:.0} s: {actions:?}", actions.len(), started.elapsed().as_secs_f64());
    assert!(count < 100 || actions.len() >= 3, "seed {seed}: too little chaos to prove anything ({actions:?})");
    check(&b, &expected, &data, seed).await;
}

/// How many tasks have settled.
async fn settled_count(b: &Baton, expected: &BTreeMap<String, u64>) -> usize {
    let Ok(tasks) = b.client.get::<Vec<Task>>("/api/tasks?limit=100000").await else { return 0 };
    tasks.iter().filter(|t| expected.contains_key(t.id.as_str()) && t.status.is_settled()).count()
}

/// A process (a supervisor, a shell, an agent) of a running task, at random.
fn victim(expected: &BTreeMap<String, u64>, rng: &mut Rng) -> Option<i32> {
    let ids: Vec<&String> = expected.keys().collect();
    for _ in 0..20 {
        let id = ids[rng.below(ids.len() as u64) as usize];
        let pids = processes_of_task(id);
        if !pids.is_empty() {
            return Some(pids[rng.below(pids.len() as u64) as usize]);
        }
    }
    None
}

/// Every promise, once the chaos is over.
async fn check(b: &Baton, expected: &BTreeMap<String, u64>, launcher_data: &Path, seed: u64) {
    let say = |what: &str| format!("seed {seed} (CHAOS_SEED={seed} to replay): {what}");
    for (id, n) in expected {
        let t = b.get(id).await;
        assert!(
            matches!(t.task.status, TaskStatus::Succeeded | TaskStatus::Failed),
            "{}",
            say(&format!("task {id} is {}", t.task.status))
        );
        if t.task.status == TaskStatus::Failed {
            assert!(t.task.reason.is_some(), "{}", say(&format!("task {id} failed without a reason")));
        }
        let events = b.events(id).await;
        let ends = events
            .iter()
            .filter(|e| e.kind == EventKind::Task)
            .filter(|e| matches!(e.data["status"].as_str(), Some("succeeded" | "failed" | "cancelled")))
            .count();
        assert_eq!(ends, 1, "{}", say(&format!("task {id} ended {ends} times")));
        // Each run's lines: 1, 2, 3… once each and in order (a killed run's up to
        // where it was acknowledged); the run that succeeded printed them all.
        let mut by_run: BTreeMap<String, Vec<u64>> = BTreeMap::new();
        for e in events.iter().filter(|e| e.kind == EventKind::Output) {
            let Some(k) = e.data["line"].as_str().and_then(|l| l.strip_prefix("line ")?.parse().ok()) else { continue };
            by_run.entry(e.run_id.as_ref().map(|r| r.to_string()).unwrap_or_default()).or_default().push(k);
        }
        for (run, lines) in &by_run {
            let want: Vec<u64> = (1..=lines.len() as u64).collect();
            assert_eq!(lines, &want, "{}", say(&format!("run {run} of task {id} stored its lines so")));
        }
        if t.task.status == TaskStatus::Succeeded {
            let last = t.runs.last().map(|r| r.id.to_string()).unwrap_or_default();
            let got = by_run.get(&last).map_or(0, Vec::len) as u64;
            assert_eq!(got, *n, "{}", say(&format!("the succeeded run of task {id} stored {got} of {n} lines")));
        }
    }
    // No process is left (give the last stops a moment).
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left: Vec<(String, Vec<i32>)> =
            expected.keys().map(|id| (id.clone(), processes_of_task(id))).filter(|(_, p)| !p.is_empty()).collect();
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{}", say(&format!("processes left: {left:?}")));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Every worktree belongs to a task.
    let shorts: HashSet<String> = expected.keys().map(|id| id[2..].to_owned()).collect();
    for dir in worktrees(&launcher_data.join("worktrees")) {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let short = name.split('-').next().unwrap_or("");
        assert!(shorts.contains(short), "{}", say(&format!("a worktree of no task: {}", dir.display())));
    }
    let fsck = Command::new("git").args(["fsck", "--no-dangling"]).current_dir(&b.repo).output().unwrap();
    assert!(fsck.status.success(), "{}", say(&format!("git fsck: {}", String::from_utf8_lossy(&fsck.stderr))));
    if b.database.is_none() {
        let db = b.data.join("baton.db");
        let out = Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])"])
            .arg(&db)
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "ok", "{}", say("the database's integrity check"));
    }
}

/// The task worktrees under a launcher's worktrees directory (`PROJECT/NAME`).
fn worktrees(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for project in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(project.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                out.push(entry.path());
            }
        }
    }
    out
}
