//! A release `baton up` in a temporary repository, for benchmarks.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{SystemTime, UNIX_EPOCH};

use baton_client::Client;

/// Writes the time this process started running (ns since the epoch) into
/// `DIR/$BATON_TASK_ID`.
pub fn stamp(dir: &str) {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let task = std::env::var("BATON_TASK_ID").unwrap_or_default();
    let tmp = Path::new(dir).join(format!(".{task}"));
    std::fs::write(&tmp, now.to_string()).unwrap();
    std::fs::rename(tmp, Path::new(dir).join(task)).unwrap();
}

/// Prints `count` lines at `rate` lines a second, each the time (ns since the
/// epoch) it was written: the agent of the fan-out measure.
pub fn emit(count: u64, rate: u64) {
    use std::io::Write;
    let start = std::time::Instant::now();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut sent = 0;
    while sent < count {
        let due = ((start.elapsed().as_secs_f64() * rate as f64) as u64).min(count);
        if due > sent {
            let now = now_ns();
            for _ in sent..due {
                writeln!(out, "{now}").unwrap();
            }
            out.flush().unwrap();
            sent = due;
        } else {
            std::thread::sleep(std::time::Duration::from_micros(500));
        }
    }
}

/// Nanoseconds since the epoch.
pub fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

/// The `baton` binary beside this one.
pub fn baton_binary() -> PathBuf {
    let me = std::env::current_exe().unwrap();
    me.with_file_name("baton")
}

/// A running coordinator.
pub struct Coordinator {
    /// Keeps the temporary repository alive.
    pub _dir: tempfile::TempDir,
    pub child: Child,
    pub client: Client,
    pub stamps: PathBuf,
    /// The coordinator's URL and admin token.
    pub url: String,
    pub token: String,
    /// Its PostgreSQL database, when the bench runs on PostgreSQL.
    pub _database: Option<baton_testkit::pg::TestDatabase>,
    /// Its repository.
    pub repo: PathBuf,
    /// What `baton` was started with.
    args: Vec<String>,
}

/// Starts `baton` with `args` in `repo`; it and the URL it listens on.
fn spawn(repo: &Path, args: &[String]) -> (Child, String) {
    let mut child = Command::new(baton_binary())
        .args(args)
        .current_dir(repo)
        // `BENCH_LOG=baton_launcher=debug` shows each start's phases.
        .env("BATON_LOG", std::env::var("BENCH_LOG").unwrap_or_else(|_| "error".into()))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start baton up (build it with cargo build --release --bin baton)");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = line.trim().strip_prefix("listening on ").expect("listening line").to_owned();
    (child, url)
}

/// Whether the bench runs on PostgreSQL (`BATON_TEST_PG` names a server: each
/// coordinator gets a fresh database on it).
pub fn on_postgres() -> bool {
    baton_testkit::pg::server().is_some()
}

impl Coordinator {
    /// A coordinator in a new repository whose `.baton/config.toml` is `config`.
    pub fn start(slots: u32, config: &str) -> Self {
        Self::start_with(slots, config, &[])
    }

    /// The same, with more `baton up` arguments.
    pub fn start_with(slots: u32, config: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
        let ok = Command::new("sh")
            .arg("-c")
            .arg("git init -q -b main && git -c user.email=b@b -c user.name=b commit -q --allow-empty -m init")
            .current_dir(&repo)
            .status()
            .unwrap();
        assert!(ok.success());
        let database = on_postgres().then(baton_testkit::pg::TestDatabase::create);
        let mut args: Vec<String> =
            ["up", "--listen", "127.0.0.1:0", "--slots", &slots.to_string()].map(String::from).to_vec();
        if let Some(d) = &database {
            args.extend(["--store".to_owned(), d.url.clone()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        let (child, url) = spawn(&repo, &args);
        let token = std::fs::read_to_string(repo.join(".baton/token")).unwrap().trim().to_owned();
        // In the project's cache: the one place outside its worktree a sandboxed
        // agent may write.
        let stamps = repo.join(".baton/worktrees/repo/.cache/stamps");
        std::fs::create_dir_all(&stamps).unwrap();
        Self {
            client: Client::new(&url, Some(token.clone())).unwrap(),
            _dir: dir,
            child,
            stamps,
            url,
            token,
            _database: database,
            repo,
            args,
        }
    }

    /// Stops the coordinator (SIGKILL).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the stopped coordinator again on the same store.
    pub fn start_again(&mut self) {
        let (child, url) = spawn(&self.repo, &self.args);
        self.client = Client::new(&url, Some(self.token.clone())).unwrap();
        (self.child, self.url) = (child, url);
    }

    /// The store's SQLite file, or its PostgreSQL database's URL.
    pub fn store_place(&self) -> Result<PathBuf, String> {
        match &self._database {
            Some(d) => Err(d.url.clone()),
            None => Ok(self.repo.join(".baton/baton.db")),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A counter from `/metrics`.
    pub async fn metric(&self, name: &str) -> f64 {
        let response = self.client.request(Default::default(), "/metrics").send().await.unwrap();
        let text = response.text().await.unwrap();
        text.lines().find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok()).unwrap_or(0.0)
    }
}

/// A launcher on this host with a data directory of its own (so a mirror fetched
/// over `/git`, as on another host), killed on drop.
pub struct RemoteLauncher {
    child: Child,
    _dir: tempfile::TempDir,
    /// Where its agents may write (its project cache).
    pub stamps: PathBuf,
}

impl RemoteLauncher {
    pub async fn start(c: &Coordinator, slots: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let made: serde_json::Value =
            c.client.post("/api/tokens", &serde_json::json!({ "kind": "launcher", "name": "bench" })).await.unwrap();
        std::fs::write(dir.path().join("token"), made["token"].as_str().unwrap()).unwrap();
        let child = Command::new(baton_binary())
            .args(["launcher", "--url", &c.url, "--slots", &slots.to_string(), "--name", "remote"])
            .arg("--token-file")
            .arg(dir.path().join("token"))
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .env("BATON_LOG", "error")
            .env_remove("BATON_TOKEN")
            .stderr(Stdio::null())
            .spawn()
            .expect("start a launcher");
        let stamps = dir.path().join("data/worktrees/repo/.cache/stamps");
        std::fs::create_dir_all(&stamps).unwrap();
        loop {
            let all: Vec<serde_json::Value> = c.client.get("/api/launchers").await.unwrap();
            if all.iter().any(|l| l["name"] == "remote" && l["status"] == "online") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self { child, _dir: dir, stamps }
    }
}

impl Drop for RemoteLauncher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Coordinator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The resident memory of a process, in KiB.
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

/// The proportional set size of a process, in KiB: its private memory plus its
/// share of pages it shares with others (the binary's code, libc).
pub fn pss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Pss:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

/// Pids of the processes whose command line contains `needle`.
pub fn pids_matching(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").contains(needle))
                .unwrap_or(false)
        })
        .collect()
}
