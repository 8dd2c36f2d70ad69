//! A real `baton up` in a temporary git repository, for integration tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use baton_client::Client;
use baton_core::api::TaskDetail;
use baton_core::model::Task;
use baton_core::status::TaskStatus;
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde_json::{Value, json};

/// The binary under test.
pub const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// Where a coordinator listens unless told otherwise: a free port.
const ANY_PORT: &str = "127.0.0.1:0";

/// A coordinator with its embedded launcher, in a fresh repository.
pub struct Baton {
    /// Holds everything; removed at the end.
    pub dir: tempfile::TempDir,
    /// The git repository.
    pub repo: PathBuf,
    /// Its data directory.
    pub data: PathBuf,
    /// The coordinator's URL.
    pub url: String,
    /// The admin token.
    pub token: String,
    /// A client with the admin token.
    pub client: Client,
    /// Extra arguments to `baton up`.
    args: Vec<String>,
    /// Extra environment of `baton up`.
    env: Vec<(String, String)>,
    /// A command `baton up` runs under (`unshare …`), when it has one.
    wrapper: Vec<String>,
    /// The `baton up` process.
    child: Option<Child>,
    /// Its PostgreSQL database, when the suite runs on PostgreSQL
    /// (`BATON_TEST_STORE=postgres`); the SQLite file in its data directory else.
    pub database: Option<std::sync::Arc<baton_testkit::pg::TestDatabase>>,
}

/// Runs a command and panics unless it succeeds.
pub fn sh(dir: &Path, script: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(script).current_dir(dir).output().expect("sh");
    assert!(out.status.success(), "{script}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A fresh git repository with one commit, in `dir/repo`.
pub fn git_repo(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    sh(
        &repo,
        "git init -q -b main && git config user.email t@example.com && git config user.name Test && echo hello > README.md && git add . && git commit -qm init",
    );
    repo
}

impl Baton {
    /// Starts `baton up` in a new repository.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts `baton up` with extra arguments.
    pub fn start_with(args: &[&str]) -> Self {
        Self::start_in(args, |_| {})
    }

    /// Starts `baton up` in a repository none of whose parent directories others
    /// may write to (not under `/tmp`): some CLIs refuse files there.
    pub fn start_private() -> Self {
        let base = Path::new(&std::env::var("HOME").unwrap()).join(".cache/baton-tests");
        std::fs::create_dir_all(&base).unwrap();
        std::fs::set_permissions(&base, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        Self::start_at(tempfile::tempdir_in(base).unwrap(), &[], |_| {})
    }

    /// Starts `baton up` after `prepare` has set up the repository (and committed).
    pub fn start_in(args: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        Self::start_at(tempfile::tempdir().unwrap(), args, prepare)
    }

    /// Starts `baton up` with more environment, under `wrapper` (a command that
    /// ends by running its arguments), after `prepare`.
    pub fn start_custom(args: &[&str], env: &[(&str, &str)], wrapper: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = git_repo(dir.path());
        prepare(&repo);
        let mut baton = Self::unstarted(dir, repo, args);
        baton.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        baton.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        baton.launch(ANY_PORT);
        baton
    }

    /// Starts `baton up` on a PostgreSQL database of its own, whichever store the
    /// suite runs on (for tests of several coordinators).
    pub fn start_on_postgres(args: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let repo = git_repo(dir.path());
        let mut baton = Self::unstarted(dir, repo, args);
        if baton.database.is_none() {
            baton.database = Some(std::sync::Arc::new(baton_testkit::pg::TestDatabase::create()));
        }
        baton.launch(ANY_PORT);
        baton
    }

    /// Starts another coordinator on this one's database and repository (a
    /// replica), with a data directory of its own.
    pub fn replica(&self, args: &[&str]) -> Self {
        self.replica_under(args, &[])
    }

    /// A replica started with `env` set (another build, played by
    /// `BATON_TEST_EXTRA_MIGRATIONS`).
    pub fn replica_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Self {
        self.replica_of(args, &[], env)
    }

    /// A replica started under `wrapper` (a command that ends by running its
    /// arguments: `unshare …`).
    pub fn replica_under(&self, args: &[&str], wrapper: &[&str]) -> Self {
        self.replica_of(args, wrapper, &[])
    }

    fn replica_of(&self, args: &[&str], wrapper: &[&str], env: &[(&str, &str)]) -> Self {
        assert!(self.database.is_some(), "replicas share a PostgreSQL database");
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut all: Vec<&str> = args.to_vec();
        let data_arg = data.display().to_string();
        all.extend(["--data-dir", &data_arg]);
        let mut baton = Self::unstarted(dir, self.repo.clone(), &all);
        baton.data = data;
        baton.database = self.database.clone();
        baton.wrapper = wrapper.iter().map(|s| s.to_string()).collect();
        baton.env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        baton.launch(ANY_PORT);
        baton
    }

    fn unstarted(dir: tempfile::TempDir, repo: PathBuf, args: &[&str]) -> Self {
        let data = repo.join(".baton");
        Baton {
            dir,
            repo,
            data,
            url: String::new(),
            token: String::new(),
            client: Client::new("http://127.0.0.1:1", None).unwrap(),
            args: args.iter().map(|s| s.to_string()).collect(),
            env: Vec::new(),
            wrapper: Vec::new(),
            child: None,
            database: baton_testkit::pg::wanted()
                .then(|| std::sync::Arc::new(baton_testkit::pg::TestDatabase::create())),
        }
    }

    fn start_at(dir: tempfile::TempDir, args: &[&str], prepare: impl FnOnce(&Path)) -> Self {
        let repo = git_repo(dir.path());
        prepare(&repo);
        let mut baton = Self::unstarted(dir, repo, args);
        baton.launch(ANY_PORT);
        baton
    }

    fn launch(&mut self, listen: &str) {
        let mut command = match self.wrapper.split_first() {
            Some((program, rest)) => {
                let mut c = Command::new(program);
                c.args(rest).arg(BATON);
                c
            }
            None => Command::new(BATON),
        };
        command.arg("up");
        if !self.args.iter().any(|a| a == "--listen") {
            command.args(["--listen", listen]);
        }
        if let Some(db) = self.database.as_ref().filter(|_| !self.args.iter().any(|a| a == "--store")) {
            command.args(["--store", &db.url]);
        }
        let mut child = command
            .args(["--grace", "2"])
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.repo)
            .env("BATON_LOG", "warn")
            .env_remove("BATON_URL")
            .env_remove("BATON_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start baton up");
        // Kept at once, so that a failure below still ends it (on drop).
        let stdout = child.stdout.take().unwrap();
        self.child = Some(child);
        let mut first = String::new();
        BufReader::new(stdout).read_line(&mut first).unwrap();
        let url =
            first.trim().strip_prefix("listening on ").unwrap_or_else(|| panic!("first line was {first:?}")).to_owned();
        self.token = std::fs::read_to_string(self.data.join("token")).unwrap().trim().to_owned();
        self.client = Client::new(&url, Some(self.token.clone())).unwrap();
        self.url = url;
        if !self.args.iter().any(|a| a == "--no-launcher") {
            self.wait_for_launcher();
        }
    }

    /// Waits until the embedded launcher has registered.
    fn wait_for_launcher(&self) {
        let start = Instant::now();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let client = self.client.clone();
        std::thread::spawn(move || {
            rt.block_on(async move {
                loop {
                    let launchers: Vec<Value> = client.get("/api/launchers").await.unwrap_or_default();
                    if launchers.iter().any(|l| l["status"] == "online") {
                        return;
                    }
                    assert!(start.elapsed() < Duration::from_secs(10), "the launcher did not register");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            })
        })
        .join()
        .unwrap();
    }

    /// Kills this coordinator and starts one on the same repository with the
    /// data directory `data` (a restored backup, say).
    pub fn restart_on(&mut self, data: PathBuf) {
        self.kill9();
        self.args.extend(["--data-dir".to_owned(), data.display().to_string()]);
        self.data = data;
        self.launch(ANY_PORT);
    }

    /// Kills this coordinator and starts one on the same data with other
    /// arguments to `baton up`.
    pub fn restart_with(&mut self, args: &[&str]) {
        self.kill9();
        self.args = args.iter().map(|s| s.to_string()).collect();
        self.launch(ANY_PORT);
    }

    /// Whether this coordinator keeps its state in PostgreSQL.
    pub fn on_postgres(&self) -> bool {
        self.database.is_some()
    }

    /// Kills `baton up` with SIGKILL (its agents keep running).
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts `baton up` again on the same data directory.
    pub fn restart(&mut self) {
        self.restart_at(ANY_PORT);
    }

    /// Starts `baton up` again on the same data directory, listening on `listen`
    /// (the old address, to come back where a client waits for it).
    pub fn restart_at(&mut self, listen: &str) {
        self.kill9();
        self.launch(listen);
    }

    /// The `baton up` process's id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The address the coordinator listens on.
    pub fn address(&self) -> String {
        self.url.trim_start_matches("http://").to_owned()
    }

    /// A file agents may write and tests read: in the project's cache directory,
    /// the one place outside its worktree a sandboxed agent may write to.
    pub fn shared(&self, name: &str) -> PathBuf {
        let dir = self.data.join("worktrees/repo/.cache");
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// A new launcher token (`POST /api/tokens`).
    pub async fn launcher_token(&self, name: &str) -> String {
        let made: Value =
            self.client.post("/api/tokens", &json!({ "kind": "launcher", "name": name })).await.expect("make a token");
        made["token"].as_str().expect("a token").to_owned()
    }

    /// Defines a `command` agent running `script` with `sh -c`.
    pub async fn agent(&self, name: &str, script: &str) {
        self.agent_def(json!({ "name": name, "executor": "command", "command": ["sh", "-c", script] })).await;
    }

    /// Defines an agent from JSON.
    pub async fn agent_def(&self, def: Value) {
        let _: Value = self.client.post("/api/agents", &def).await.expect("create agent");
    }

    /// Creates a task; its id.
    pub async fn task(&self, body: Value) -> String {
        let mut body = body;
        body.as_object_mut().unwrap().entry("project").or_insert(json!("repo"));
        let t: Task = self.client.post("/api/tasks", &body).await.expect("create task");
        t.id.to_string()
    }

    /// Runs the CLI in the repository against this coordinator.
    pub fn cli(&self, args: &[&str]) -> Output {
        Command::new(BATON)
            .args(args)
            .current_dir(&self.repo)
            .env("BATON_URL", &self.url)
            .env("BATON_TOKEN", &self.token)
            .env("BATON_LOG", "warn")
            .output()
            .expect("run baton")
    }

    /// Runs the CLI with `input` on stdin, against `url` (default: this coordinator).
    pub fn cli_in(&self, args: &[&str], input: &[u8], url: Option<&str>) -> Output {
        use std::io::Write;
        let mut child = Command::new(BATON)
            .args(args)
            .current_dir(&self.repo)
            .env("BATON_URL", url.unwrap_or(&self.url))
            .env("BATON_TOKEN", &self.token)
            .env("BATON_LOG", "warn")
            .env_remove("BATON_SESSION_ID")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run baton");
        child.stdin.take().unwrap().write_all(input).unwrap();
        child.wait_with_output().expect("run baton")
    }

    /// A task, now.
    pub async fn get(&self, id: &str) -> TaskDetail {
        self.client.task(id).await.expect("get task")
    }

    /// Waits (up to 30 s) until the task satisfies `done`.
    pub async fn wait_for(&self, id: &str, what: &str, done: impl Fn(&TaskDetail) -> bool) -> TaskDetail {
        self.wait_within(Duration::from_secs(30), id, what, done).await
    }

    /// Waits (up to `limit`) until the task satisfies `done`.
    pub async fn wait_within(
        &self,
        limit: Duration,
        id: &str,
        what: &str,
        done: impl Fn(&TaskDetail) -> bool,
    ) -> TaskDetail {
        let start = Instant::now();
        loop {
            let t = self.get(id).await;
            if done(&t) {
                return t;
            }
            assert!(
                start.elapsed() < limit,
                "timed out waiting for {what}; task is {:?}: {:?}",
                t.task.status,
                t.task.reason
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the task is in `status`.
    pub async fn wait_status(&self, id: &str, status: TaskStatus) -> TaskDetail {
        self.wait_for(id, status.as_str(), |t| t.task.status == status).await
    }

    /// Runs a shell script in the repository; its trimmed stdout.
    pub fn sh(&self, script: &str) -> String {
        sh(&self.repo, script).trim().to_owned()
    }

    /// POSTs JSON with the admin token; the status and the JSON answer (`Null` when none).
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::POST, path, body).await
    }

    /// PUTs JSON with the admin token; the status and the JSON answer.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(reqwest::Method::PUT, path, body).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(body)).await
    }

    /// A request with any method and the admin token, with a JSON body or none;
    /// the status and the JSON answer (`Null` when none).
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new().request(method, format!("{}{path}", self.url)).bearer_auth(&self.token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.unwrap();
        (resp.status().as_u16(), resp.json().await.unwrap_or_default())
    }

    /// Every event of a task, in order.
    pub async fn events(&self, id: &str) -> Vec<baton_core::event::Event> {
        self.client.task_events(id, 0, 10_000).await.expect("events")
    }
}

/// Processes whose environment names this task (every agent process and its
/// descendants inherit `BATON_TASK_ID`).
pub fn processes_of_task(task: &str) -> Vec<i32> {
    let needle = format!("BATON_TASK_ID={task}");
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let is_zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false);
        if !is_zombie && env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            found.push(pid);
        }
    }
    // The sandbox's first process (bubblewrap's, which the run records as its
    // agent's) is the task's too, though a sandbox made ahead started it before
    // the task's environment existed.
    let parents: Vec<i32> = found
        .iter()
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let ppid: i32 = stat.rsplit(')').next()?.split_whitespace().nth(1)?.parse().ok()?;
            let cmdline = std::fs::read(format!("/proc/{ppid}/cmdline")).ok()?;
            let program = cmdline.split(|b| *b == 0).next()?;
            program.ends_with(b"bwrap").then_some(ppid)
        })
        .collect();
    for p in parents {
        if !found.contains(&p) {
            found.push(p);
        }
    }
    found
}

/// Waits (up to 10 s) until the file has `n` lines, and says what it has if not.
/// A session shows `running` as soon as its agent is spawned, which can be
/// before the agent's first command has run.
pub async fn wait_lines(path: &Path, n: usize) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().count() >= n || start.elapsed() > Duration::from_secs(10) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (up to 5 s) until no process of the task is left.
pub async fn assert_no_processes(task: &str) {
    let start = Instant::now();
    loop {
        let left = processes_of_task(task);
        if left.is_empty() {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "processes left for {task}: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

impl Drop for Baton {
    fn drop(&mut self) {
        self.kill9();
        // Agents outlive `baton up` by design; a test must not leave them behind.
        let runs = self.data.join("runs");
        if let Ok(entries) = std::fs::read_dir(&runs) {
            for e in entries.flatten() {
                for name in ["agent.pid", "supervisor.pid"] {
                    if let Some(pid) =
                        std::fs::read_to_string(e.path().join(name)).ok().and_then(|s| s.trim().parse::<i32>().ok())
                    {
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                        let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
                    }
                }
            }
        }
    }
}
