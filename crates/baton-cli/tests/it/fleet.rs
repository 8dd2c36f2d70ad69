//! A fleet across hosts. Each extra host is a launcher in PID and mount
//! namespaces of its own (`unshare`, as root), with its own HOME and data
//! directory, and the coordinator's repository (and data directory) hidden
//! under a tmpfs: it shares nothing with the coordinator but a URL and a
//! launcher token. Killing the namespace's first process is the host dying with
//! everything on it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use baton_core::api::TaskDetail;
use baton_core::model::Launcher;
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{BATON, Baton, sh};

/// A launcher on a host of its own.
pub(crate) struct Host {
    /// Its files (home, data directory, token).
    pub dir: PathBuf,
    /// Its name.
    pub name: String,
    /// `unshare`, whose child is the namespace's first process.
    child: Option<Child>,
}

impl Host {
    /// Starts a launcher named `name` with a new launcher token, hiding `b`'s
    /// repository; `extra` are more `baton launcher` arguments.
    pub(crate) async fn start(b: &Baton, name: &str, extra: &[&str]) -> Host {
        let token = b.launcher_token(name).await;
        Self::start_with(b, name, &b.url, &token, extra)
    }

    pub(crate) fn start_with(b: &Baton, name: &str, url: &str, token: &str, extra: &[&str]) -> Host {
        Self::start_hiding(b, name, url, token, extra, &[])
    }

    /// The same, hiding `more` directories too (other projects' repositories).
    pub(crate) fn start_hiding(b: &Baton, name: &str, url: &str, token: &str, extra: &[&str], more: &[&Path]) -> Host {
        let dir = b.dir.path().join(format!("host-{name}"));
        std::fs::create_dir_all(dir.join("home")).unwrap();
        std::fs::write(dir.join("token"), token).unwrap();
        let mut hides = vec![b.repo.display().to_string()];
        hides.extend(more.iter().map(|p| p.display().to_string()));
        let mounts: String = hides.iter().map(|h| format!("mount -t tmpfs tmpfs {h} && ")).collect();
        // `sh` stays the namespace's first process (its init: it reaps orphans),
        // with a /proc of the namespace's own.
        let script = format!("{mounts}\"$@\"");
        let child = Command::new("unshare")
            .args(["--pid", "--fork", "--mount-proc", "--mount", "--propagation", "private", "--kill-child"])
            .args(["sh", "-c", &script, "sh"])
            .arg(BATON)
            .args(["launcher", "--url", url, "--name", name, "--slots", "2"])
            .arg("--token-file")
            .arg(dir.join("token"))
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(extra)
            .env("HOME", dir.join("home"))
            .env("BATON_LOG", "warn")
            .env_remove("BATON_URL")
            .env_remove("BATON_TOKEN")
            .stdin(Stdio::null())
            .spawn()
            .expect("start a launcher host");
        Host { dir, name: name.to_owned(), child: Some(child) }
    }

    /// The host dies, with every process on it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Its launcher, once registered.
    pub(crate) async fn launcher(&self, b: &Baton) -> Launcher {
        let start = std::time::Instant::now();
        loop {
            let all: Vec<Launcher> = b.client.get("/api/launchers").await.unwrap();
            if let Some(l) = all.into_iter().find(|l| l.name == self.name && l.status.as_str() == "online") {
                return l;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "launcher {} did not register", self.name);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn done(b: &Baton, id: &str) -> TaskDetail {
    b.wait_within(Duration::from_secs(60), id, "the end", |t| t.task.status.is_finished()).await
}

#[tokio::test]
async fn a_task_runs_on_another_host_shows_its_diff_while_it_runs_and_merges() {
    let b = Baton::start_with(&["--no-launcher"]);
    let host = Host::start(&b, "build-2", &[]).await;
    let me = host.launcher(&b).await;
    let repo = b.repo.display().to_string();
    let script = format!(
        "test -e {repo}/README.md && echo 'sees the coordinator' || echo 'shares nothing'; echo one > work.txt; git add work.txt; git commit -qm one; echo two > wip.txt; sleep 3"
    );
    b.agent("remote", &script).await;
    let id = b.task(json!({ "prompt": "x", "agent": "remote" })).await;
    b.wait_status(&id, TaskStatus::Running).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // While it runs: the diff comes from a checkpoint the launcher pushes on request.
    let diff: Value = b.client.get(&format!("/api/tasks/{id}/diff")).await.unwrap();
    let files: Vec<&str> = diff["files"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
    assert_eq!(files, ["wip.txt", "work.txt"], "committed and uncommitted work, from the other host: {diff}");
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&me.id));
    assert_eq!(t.task.git.launcher.as_ref(), Some(&me.id));
    let lines: Vec<String> =
        b.events(&id).await.iter().filter_map(|e| e.data["line"].as_str().map(str::to_owned)).collect();
    assert!(lines.contains(&"shares nothing".to_owned()), "{lines:?}");
    assert!(t.task.git.worktree.as_deref().unwrap().starts_with(&host.dir.display().to_string()));
    assert!(b.cli(&["merge", &id]).status.success());
    assert_eq!(b.sh("git show main:work.txt"), "one");
    assert_eq!(b.sh("git show main:wip.txt"), "two", "the WIP commit came along");
    // The worktree is on the other host: clean removes it there.
    let worktree = PathBuf::from(t.task.git.worktree.unwrap());
    assert!(worktree.exists());
    assert!(b.cli(&["clean", &id]).status.success());
    assert!(!worktree.exists(), "removed on its host");
}

/// A git command run by the test, against the coordinator, with `token`.
fn git_as(dir: &Path, token: Option<&str>, args: &str) -> (bool, String) {
    let auth = token
        .map(|t| {
            format!("-c http.extraHeader='Authorization: Bearer {t}' -c http.extraHeader='Baton-Launcher-Protocol: 2'")
        })
        .unwrap_or_default();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("git {auth} {args} 2>&1"))
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn pushes_are_limited_to_the_refs_of_runs_the_launcher_holds() {
    let b = Baton::start_with(&["--no-launcher"]);
    b.agent("slow", "sleep 30").await;
    let mine = b.task(json!({ "prompt": "mine", "agent": "slow" })).await;
    let theirs = b.task(json!({ "prompt": "theirs", "agent": "slow", "approval": "required" })).await;
    // A launcher of the test's own holds `mine` (claimed through the protocol).
    let token = b.launcher_token("pusher").await;
    let client = baton_client::Client::new(&b.url, Some(token.clone())).unwrap();
    let register = json!({"name": "pusher", "hostname": "h", "version": "0", "slots": 1, "executors": ["command"]});
    let me: Value = client.post("/api/launchers/register", &register).await.unwrap();
    let lid = me["launcher"]["id"].as_str().unwrap().to_owned();
    let work: Value = client.post(&format!("/api/launchers/{lid}/poll"), &json!({"wait_ms": 5000})).await.unwrap();
    assert_eq!(work["runs"][0]["task"]["id"], mine);
    let base = work["runs"][0]["base_commit"].as_str().unwrap().to_owned();
    let branch = b.get(&mine).await.task.git.branch.unwrap();
    let other = b.get(&theirs).await.task.git.branch.unwrap();
    let project = b.get(&mine).await.task.project_id.to_string();
    let remote = format!("{}/git/{project}", b.url);

    // A clone, a commit: what a launcher would push.
    let work_dir = b.dir.path().join("pusher");
    let (ok, out) = git_as(b.dir.path(), Some(&token), &format!("clone -q {remote} pusher"));
    assert!(ok, "a launcher token fetches: {out}");
    sh(
        &work_dir,
        "git config user.email t@t && git config user.name T && echo x > x.txt && git add x.txt && git commit -qm x",
    );
    let refs_before = b.sh("git for-each-ref --format='%(refname) %(objectname)'");
    for (target, why) in [
        ("HEAD:refs/heads/main", "main"),
        (&*format!("HEAD:refs/heads/{other}"), "another task's branch"),
        ("HEAD:refs/tags/v1", "a tag"),
        (&*format!(":refs/heads/{branch}"), "a deletion"),
    ] {
        let (ok, out) = git_as(&work_dir, Some(&token), &format!("push -q {remote} {target}"));
        assert!(!ok, "{why} was pushed: {out}");
    }
    for (who, label) in [(None, "no token"), (Some(b.token.as_str()), "the admin token")] {
        let (ok, out) = git_as(&work_dir, who, &format!("ls-remote {remote}"));
        assert!(!ok, "{label} fetched: {out}");
    }
    assert_eq!(b.sh("git for-each-ref --format='%(refname) %(objectname)'"), refs_before, "no ref moved");

    // Its own branch: a fast-forward goes, a rewrite does not.
    let (ok, out) = git_as(&work_dir, Some(&token), &format!("push -q {remote} HEAD:refs/heads/{branch}"));
    assert!(ok, "its own branch: {out}");
    sh(&work_dir, &format!("git reset -q --hard {base} && echo y > y.txt && git add y.txt && git commit -qm y"));
    let (ok, out) = git_as(&work_dir, Some(&token), &format!("push -q -f {remote} HEAD:refs/heads/{branch}"));
    assert!(!ok && out.contains("not a fast-forward"), "a rewrite of its branch: {out}");
    let (ok, out) = git_as(&work_dir, Some(&token), &format!("push -q -f {remote} HEAD:refs/baton/checkpoints/{mine}"));
    assert!(ok, "its checkpoint may move anywhere: {out}");

    // Once the run is over, nothing of it may be pushed.
    let report = json!({"status": "failed", "error": "gave up"});
    let run = work["runs"][0]["run"]["id"].as_str().unwrap();
    let _: Value = client.post(&format!("/api/runs/{run}/finished"), &report).await.unwrap();
    sh(&work_dir, "echo z > z.txt && git add z.txt && git commit -qm z");
    let (ok, out) = git_as(&work_dir, Some(&token), &format!("push -q {remote} HEAD:refs/baton/checkpoints/{mine}"));
    assert!(!ok, "a finished run's ref: {out}");

    // A revoked token is refused at once.
    let tokens: Vec<Value> = b.client.get("/api/tokens").await.unwrap();
    let tid = tokens.iter().find(|t| t["name"] == "pusher").unwrap()["id"].as_str().unwrap().to_owned();
    assert!(b.cli(&["token", "revoke", &tid]).status.success());
    let (ok, _) = git_as(&work_dir, Some(&token), &format!("ls-remote {remote}"));
    assert!(!ok, "a revoked token fetched");
    let err = client
        .post::<Value, _>(&format!("/api/launchers/{lid}/heartbeat"), &json!({"running": [], "free_slots": 1}))
        .await;
    assert!(err.unwrap_err().to_string().contains("unauthorized"));
}

#[tokio::test]
async fn labels_place_tasks_and_a_drained_launcher_takes_nothing_new() {
    let b = Baton::start_with(&["--no-launcher"]);
    let gpu = Host::start(&b, "gpu-box", &["--label", "gpu", "--label", "region=eu"]).await;
    let plain = Host::start(&b, "plain-box", &[]).await;
    let (gpu_l, plain_l) = (gpu.launcher(&b).await, plain.launcher(&b).await);
    assert_eq!(gpu_l.labels, ["gpu", "region=eu"]);
    b.agent("quick", "echo ok").await;
    for _ in 0..3 {
        let id = b.task(json!({ "prompt": "x", "agent": "quick", "require": ["gpu"] })).await;
        let t = done(&b, &id).await;
        assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&gpu_l.id), "a task needing gpu runs where gpu is");
    }
    let nowhere = b.task(json!({ "prompt": "x", "agent": "quick", "require": ["region=mars"] })).await;
    let reason = b.get(&nowhere).await.task.reason.unwrap();
    assert!(reason.contains("lacks the label region=mars"), "{reason}");
    let out = b.cli(&["run", "--agent", "quick", "--require", "bad label", "x"]);
    assert_eq!(out.status.code(), Some(7), "a malformed label is refused");

    // Drain the plain box while it runs an agent: the agent finishes, nothing new goes there.
    b.agent("sleepy", "sleep 2; echo finished").await;
    let running = b.task(json!({ "prompt": "x", "agent": "sleepy" })).await;
    let t = b.wait_status(&running, TaskStatus::Running).await;
    let host = t.runs[0].launcher_id.clone().unwrap();
    let drained = if host == plain_l.id { &plain_l } else { &gpu_l };
    assert!(b.cli(&["launcher", "drain", drained.id.as_str()]).status.success());
    let listed = String::from_utf8_lossy(&b.cli(&["launchers"]).stdout).into_owned();
    assert!(listed.contains("draining"), "{listed}");
    let later = b.task(json!({ "prompt": "x", "agent": "quick" })).await;
    let t = done(&b, &later).await;
    assert_ne!(t.runs[0].launcher_id.as_ref(), Some(&drained.id), "a drained launcher takes nothing new");
    let t = done(&b, &running).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "its running agent finished");
    assert!(b.cli(&["launcher", "undrain", drained.id.as_str()]).status.success());
    let json: Vec<Launcher> = serde_json::from_slice(&b.cli(&["launchers", "--json"]).stdout).unwrap();
    assert!(json.iter().all(|l| !l.draining));
    drop(nowhere);
}

/// Kills a host once its task has a checkpoint, starts another, and waits for
/// the task to end there.
async fn die_after_a_checkpoint(b: &Baton, host: &mut Host, id: &str) -> (Host, TaskDetail) {
    b.wait_within(Duration::from_secs(120), id, "a checkpoint", |t| t.task.git.checkpoint.is_some()).await;
    let other = Host::start(b, "other", &[]).await;
    other.launcher(b).await;
    host.kill();
    let t = b.wait_within(Duration::from_secs(120), id, "the end, elsewhere", |t| t.task.status.is_finished()).await;
    (other, t)
}

#[tokio::test]
async fn a_host_that_dies_mid_run_hands_the_task_on_with_its_work() {
    let b = Baton::start_in(&["--no-launcher", "--launcher-timeout", "3"], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "checkpoint_s = 1\n").unwrap();
    });
    let mut first = Host::start(&b, "first", &[]).await;
    let first_id = first.launcher(&b).await.id;
    let script = r#"if [ -f step1.txt ]; then echo "again with $(cat step1.txt) and $(cat notes.txt)"; echo two > step2.txt; exit 0; fi
echo committed > step1.txt; git add step1.txt; git commit -qm step1; echo uncommitted > notes.txt; sleep 120"#;
    b.agent("careful", script).await;
    let id = b.task(json!({ "prompt": "x", "agent": "careful" })).await;
    let (other, t) = die_after_a_checkpoint(&b, &mut first, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    // Its agent kept no conversation of its own: the task started again, in a new
    // session, from the work the first host had pushed.
    assert_eq!(t.sessions.len(), 2);
    let first_session: Value = b.client.get(&format!("/api/sessions/{}", t.sessions[0].id)).await.unwrap();
    assert_eq!(first_session["runs"][0]["launcher_id"], first_id.to_string());
    assert_eq!(first_session["runs"][0]["status"], "lost");
    assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&other.launcher(&b).await.id));
    let lines: Vec<String> =
        b.events(&id).await.iter().filter_map(|e| e.data["line"].as_str().map(str::to_owned)).collect();
    assert!(lines.contains(&"again with committed and uncommitted".to_owned()), "the work came along: {lines:?}");
    let branch = t.task.git.branch.unwrap();
    for (file, text) in [("step1.txt", "committed"), ("notes.txt", "uncommitted"), ("step2.txt", "two")] {
        assert_eq!(b.sh(&format!("git show {branch}:{file}")), text);
    }
}

#[tokio::test]
async fn a_real_claude_code_agent_moves_hosts_with_its_conversation() {
    use baton_testkit::{FakeModel, Script, Step};
    let fake = FakeModel::start(Script::new(vec![
        Step::write("hello.txt", "before the host died\n"),
        Step::bash("sleep 300"),
        Step::text("Recovered."),
    ]))
    .await
    .unwrap();
    let b = Baton::start_in(&["--no-launcher", "--launcher-timeout", "3"], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "checkpoint_s = 1\n").unwrap();
    });
    // No HOME in the definition: each host gives the task a home of its own, so
    // the conversation must travel.
    let mut def = crate::real_agents::Cli::Claude.def("worker", &fake.url, &b.dir.path().join("unused-home"));
    def["env"].as_object_mut().unwrap().remove("HOME");
    b.agent_def(def).await;
    let mut first = Host::start(&b, "first", &[]).await;
    first.launcher(&b).await;
    let id = b.task(json!({ "prompt": "Write hello.txt, then wait", "agent": "worker" })).await;
    let start = std::time::Instant::now();
    while !crate::harness::processes_of_task(&id)
        .iter()
        .any(|pid| std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.contains("sleep\u{0}300")))
    {
        assert!(start.elapsed() < crate::real_agents::TURN, "the agent never reached its second tool call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A checkpoint or two later, the conversation so far is on the coordinator.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (_other, t) = die_after_a_checkpoint(&b, &mut first, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.sessions.len(), 1, "the same session");
    assert_eq!(t.runs.len(), 2);
    assert_eq!(t.runs[1].kind, baton_core::model::RunKind::Resume, "resumed, not started over");
    assert_eq!(t.task.result.as_deref(), Some("Recovered."));
    let last = fake.requests().into_iter().rev().find(|r| r["path"] != "/").expect("requests");
    let body = last["body"].to_string();
    assert!(body.contains("Write hello.txt"), "the resumed turn has the first turn: {body}");
    let branch = t.task.git.branch.unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:hello.txt")), "before the host died");
    let events = b.events(&id).await;
    assert!(
        events.iter().any(|e| e.data["message"]
            .as_str()
            .is_some_and(|m| m.contains("restored the agent's earlier conversation"))),
        "the timeline says the conversation came along"
    );
}

/// A test CA, and a certificate it signed for `localhost` and 127.0.0.1.
fn test_ca(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    std::fs::create_dir_all(dir).unwrap();
    sh(
        dir,
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=baton-test-ca 2>/dev/null \
         && openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null \
         && printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' > san.ext \
         && openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile san.ext 2>/dev/null",
    );
    (dir.join("ca.pem"), dir.join("server.pem"), dir.join("server.key"))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[tokio::test]
async fn a_launcher_reaches_its_coordinator_over_https_with_a_private_ca() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(certs.path());
    let port = free_port();
    let public = format!("https://localhost:{port}");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let listen = format!("127.0.0.1:{port}");
    let b = Baton::start_custom(
        &["--no-launcher", "--listen", &listen, "--public-url", &public, "--tls-cert", &cert, "--tls-key", &key],
        &[],
        &[],
        |_| {},
    );
    let token = b.launcher_token("secure").await;
    let ca_arg = ca.display().to_string();
    let host = Host::start_with(&b, "secure", &public, &token, &["--ca", &ca_arg]);
    let me = host.launcher(&b).await;
    b.agent("writer", "echo over-tls > tls.txt").await;
    let id = b.task(json!({ "prompt": "x", "agent": "writer" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs[0].launcher_id.as_ref(), Some(&me.id));
    assert!(b.cli(&["merge", &id]).status.success());
    assert_eq!(b.sh("git show main:tls.txt"), "over-tls");
    // Without the CA, the certificate is not trusted.
    let client = baton_client::Client::new(&public, Some(b.token.clone())).unwrap();
    assert!(client.get::<Value>("/api/projects").await.is_err());
    let trusted = baton_client::Client::with_ca(&public, Some(b.token.clone()), Some(&ca)).unwrap();
    assert!(trusted.get::<Value>("/api/projects").await.is_ok());
}

#[tokio::test]
async fn bad_exposure_settings_are_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::harness::git_repo(dir.path());
    let up = |args: &[&str]| {
        let out =
            Command::new(BATON).arg("up").args(args).current_dir(&repo).env("BATON_LOG", "warn").output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = up(&["--listen", "127.0.0.1:0", "--public-url", "ftp://coord.example"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("is not an http(s) URL"), "{err}");
    let (code, err) =
        up(&["--listen", "127.0.0.1:0", "--tls-cert", "/nonexistent.pem", "--tls-key", "/nonexistent.key"]);
    assert_eq!(code, Some(10), "{err}");
    assert!(err.contains("cannot load the TLS certificate"), "{err}");
    let (code, err) = up(&["--listen", "0.0.0.0:0", "--public-url", "http://coord.example:7077"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("without TLS would send tokens in the clear"), "{err}");
    let (code, err) = up(&["--listen", "0.0.0.0:0"]);
    assert_eq!(code, Some(7), "{err}");
    assert!(err.contains("needs --public-url"), "{err}");
}

#[tokio::test]
async fn the_coordinator_away_for_20_s_loses_nothing_of_a_remote_agent() {
    let mut b = Baton::start_with(&["--no-launcher"]);
    let _host = Host::start(&b, "steady", &[]).await;
    b.agent("counter", "i=0; while [ $i -lt 400 ]; do i=$((i+1)); echo \"line $i\"; sleep 0.1; done").await;
    let id = b.task(json!({ "prompt": "x", "agent": "counter" })).await;
    b.wait_for(&id, "some lines", |t| t.task.status == TaskStatus::Running).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let address = b.address();
    b.kill9();
    tokio::time::sleep(Duration::from_secs(20)).await;
    b.restart_at(&address);
    let t = b.wait_within(Duration::from_secs(90), &id, "the end", |t| t.task.status.is_finished()).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.runs.len(), 1, "the same run: the agent kept running");
    let lines: Vec<u32> = b
        .events(&id)
        .await
        .iter()
        .filter_map(|e| e.data["line"].as_str()?.strip_prefix("line ")?.parse().ok())
        .collect();
    assert_eq!(lines, (1..=400).collect::<Vec<u32>>(), "every line once, in order");
}

#[tokio::test]
async fn a_corrupt_mirror_is_cloned_again_and_says_so() {
    let b = Baton::start_with(&["--no-launcher"]);
    let host = Host::start(&b, "flaky", &[]).await;
    host.launcher(&b).await;
    b.agent("writer", "echo $BATON_TASK_ID > mine.txt").await;
    let first = b.task(json!({ "prompt": "x", "agent": "writer" })).await;
    assert_eq!(done(&b, &first).await.task.status, TaskStatus::Succeeded);
    let mirrors = host.dir.join("data/git");
    let mirror = std::fs::read_dir(&mirrors).unwrap().flatten().map(|e| e.path()).find(|p| p.is_dir()).unwrap();
    // A disk that lost the object store.
    std::fs::remove_dir_all(mirror.join("objects")).unwrap();
    let second = b.task(json!({ "prompt": "y", "agent": "writer" })).await;
    let t = done(&b, &second).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let said = b.events(&second).await.iter().any(|e| {
        e.data["message"]
            .as_str()
            .is_some_and(|m| m.contains("mirror of project repo was corrupt") && m.contains("cloned again"))
    });
    assert!(said, "the timeline says the mirror was cloned again");
}

#[tokio::test]
async fn a_resume_goes_back_to_the_host_that_has_the_worktree() {
    let b = Baton::start_with(&["--no-launcher"]);
    let first = Host::start(&b, "first", &[]).await;
    let first_id = first.launcher(&b).await.id;
    b.agent("turns", "echo turn >> turns.txt").await;
    let id = b.task(json!({ "prompt": "x", "agent": "turns" })).await;
    assert_eq!(done(&b, &id).await.task.status, TaskStatus::Succeeded);
    // Another launcher with more free slots comes; the resume still goes where
    // the worktree is.
    let other = Host::start(&b, "roomier", &[]).await;
    other.launcher(&b).await;
    for _ in 0..3 {
        assert!(b.cli(&["resume", &id, "again", "--wait"]).status.success());
    }
    let t = b.get(&id).await;
    assert!(t.runs.iter().all(|r| r.launcher_id.as_ref() == Some(&first_id)), "{:?}", t.runs);
    let branch = t.task.git.branch.unwrap();
    assert_eq!(b.sh(&format!("git show {branch}:turns.txt")), "turn\nturn\nturn\nturn");
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_is_handed_out_again() {
    let b = Baton::start_with(&["--no-launcher"]);
    b.agent("slow", "sleep 30").await;
    let id = b.task(json!({ "prompt": "x", "agent": "slow" })).await;
    let token = b.launcher_token("forgetful").await;
    let client = baton_client::Client::new(&b.url, Some(token)).unwrap();
    let register = json!({"name": "forgetful", "hostname": "h", "version": "0", "slots": 1, "executors": ["command"]});
    let me: Value = client.post("/api/launchers/register", &register).await.unwrap();
    let lid = me["launcher"]["id"].as_str().unwrap().to_owned();
    let poll = |running: Value| {
        let (client, lid) = (client.clone(), lid.clone());
        async move {
            client
                .post::<Value, _>(&format!("/api/launchers/{lid}/poll"), &json!({"wait_ms": 200, "running": running}))
                .await
                .unwrap()
        }
    };
    let first = poll(json!([])).await;
    assert_eq!(first["runs"][0]["task"]["id"], id);
    let run = first["runs"][0]["run"]["id"].clone();
    // The answer "never arrived": the next poll names no run.
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let again = poll(json!([])).await;
    assert_eq!(again["runs"][0]["run"]["id"], run, "the same run, handed again");
    assert_ne!(again["runs"][0]["env"]["BATON_TOKEN"], first["runs"][0]["env"]["BATON_TOKEN"], "with a fresh token");
    let kept = poll(json!([run])).await;
    assert!(kept["runs"].as_array().unwrap().is_empty(), "not when the launcher has it");
}
