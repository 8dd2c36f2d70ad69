//! Agents in a sandbox: what a worker can reach, tried as a malicious agent
//! would, with bubblewrap (installed by `scripts/setup-test-deps`).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use baton_core::api::TaskDetail;
use baton_core::event::EventKind;
use baton_core::sandbox::SandboxKind;
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::Baton;

async fn done(b: &Baton, id: &str) -> TaskDetail {
    b.wait_for(id, "the end", |t| t.task.status.is_finished()).await
}

/// Every line the task's agent printed on stdout.
async fn printed(b: &Baton, id: &str) -> Vec<String> {
    b.events(id)
        .await
        .into_iter()
        .filter(|e| e.kind == EventKind::Output && e.data["stream"] == "stdout")
        .map(|e| e.data["line"].as_str().unwrap_or("").to_owned())
        .collect()
}

/// The value the agent printed as `key=value`.
fn said<'a>(lines: &'a [String], key: &str) -> &'a str {
    let prefix = format!("{key}=");
    lines.iter().find_map(|l| l.strip_prefix(&prefix)).unwrap_or_else(|| panic!("no {key} in {lines:?}"))
}

/// The probe that found every hole, line by line: each must now fail.
const SNOOP: &str = r#"
set -u
data=$1; repo=$2; other=$3
echo "token_relative=$(cat ../../../token 2>/dev/null || echo hidden)"
echo "token_absolute=$(cat "$data/token" 2>/dev/null || echo hidden)"
echo "database=$(head -c 15 "$data/baton.db" 2>/dev/null || echo hidden)"
echo "other_worktree=$(ls "$other" 2>/dev/null | head -1 || true)"
stolen=$(cat "$data/token" 2>/dev/null || echo "$BATON_TOKEN")
echo "create_agent=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H "Authorization: Bearer $stolen" -H 'content-type: application/json' -d '{"name":"evil","executor":"command","command":["true"]}' "$BATON_URL/api/agents")"
echo "github_token=${GITHUB_TOKEN:-unset}"
echo "env_count=$(env | grep -c -e GITHUB_TOKEN -e SECRET_OF_THE_HOST || true)"
git update-ref refs/heads/main HEAD~0 2>/dev/null && echo "own_main=moved"
echo "project_main=$(git -C "$repo" update-ref refs/heads/main HEAD 2>&1 | tr '\n' ' ' | head -c 300 || true)"
echo "write_checkout=$( (echo pwned > "$repo/pwned.txt") 2>&1 | tr '\n' ' ' )"
echo "write_etc=$( (echo pwned > /etc/pwned) 2>&1 | tr '\n' ' ' )"
echo "write_tmp=$(echo ok > /tmp/private && cat /tmp/private)"
echo "write_cache=$(echo ok > "$BATON_CACHE/shared" && cat "$BATON_CACHE/shared")"
echo "write_worktree=$(echo ok > here.txt && cat here.txt)"
echo "ssh=$(ls "$HOME_OF_HOST/.ssh" 2>/dev/null | head -1)"
"#;

#[tokio::test]
async fn the_probe_finds_nothing_and_work_still_lands() {
    let fake_home = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(fake_home.path().join(".ssh")).unwrap();
    std::fs::write(fake_home.path().join(".ssh/id_ed25519"), "PRIVATE KEY").unwrap();
    let home = fake_home.path().to_str().unwrap().to_owned();
    let b = Baton::start_custom(
        &["--slots", "2"],
        &[("GITHUB_TOKEN", "ghp_host_secret_12345"), ("SECRET_OF_THE_HOST", "x"), ("HOME", &home)],
        &[],
        |_| {},
    );
    // A task whose worktree the snoop will look for.
    b.agent("worker", "echo work > work.txt && git add -A && git commit -qm work").await;
    let work = b.task(json!({ "prompt": "real work", "agent": "worker" })).await;
    let worked = done(&b, &work).await;
    assert_eq!(worked.task.status, TaskStatus::Succeeded);
    let other = worked.task.git.worktree.clone().unwrap();

    let script = format!("{SNOOP}\nexit 0");
    b.agent_def(json!({
        "name": "snoop", "executor": "command",
        "command": ["sh", "-c", script, "snoop", b.data.display().to_string(), b.repo.display().to_string(), other],
        "env": { "HOME_OF_HOST": home },
    }))
    .await;
    let main_before = b.sh("git rev-parse main");
    let id = b.task(json!({ "prompt": "look around", "agent": "snoop" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let isolation = t.task.isolation.clone().expect("the task says how it was isolated");
    assert_eq!(isolation.kind, SandboxKind::Bubblewrap);
    let lines = printed(&b, &id).await;
    assert_eq!(said(&lines, "token_relative"), "hidden");
    assert_eq!(said(&lines, "token_absolute"), "hidden");
    assert_eq!(said(&lines, "database"), "hidden");
    assert_eq!(said(&lines, "other_worktree"), "", "another task's worktree is not there");
    assert_eq!(said(&lines, "create_agent"), "403", "its own token may not create agents");
    assert_eq!(said(&lines, "github_token"), "unset");
    assert_eq!(said(&lines, "env_count"), "0");
    assert!(said(&lines, "project_main").contains("Read-only"), "{lines:?}");
    assert!(said(&lines, "write_checkout").contains("Read-only"), "{lines:?}");
    assert!(said(&lines, "write_etc").contains("Read-only"), "{lines:?}");
    assert_eq!(said(&lines, "write_tmp"), "ok");
    assert_eq!(said(&lines, "write_cache"), "ok");
    assert_eq!(said(&lines, "write_worktree"), "ok");
    assert_eq!(said(&lines, "ssh"), "", "the host user's credentials are hidden");
    assert_eq!(b.sh("git rev-parse main"), main_before, "main did not move");
    assert!(!b.repo.join("pwned.txt").exists());
    assert!(!std::path::Path::new("/tmp/private").exists(), "its /tmp was its own");
    let agents: Vec<Value> = b.client.get("/api/agents").await.unwrap();
    assert!(!agents.iter().any(|a| a["name"] == "evil"));

    // The files that hold secrets are the owner's alone.
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&b.data), 0o700);
    if !b.on_postgres() {
        assert_eq!(mode(&b.data.join("baton.db")), 0o600);
    }
    assert_eq!(mode(&b.data.join("token")), 0o600);

    // Meanwhile the honest task's work lands.
    assert!(b.cli(&["merge", &work]).status.success());
    assert_eq!(b.sh("git show main:work.txt"), "work");
}

#[tokio::test]
async fn a_secret_passed_by_name_is_never_shown() {
    let secret = "s3cr3t-value-0123456789";
    let b = Baton::start_custom(&[], &[("MY_SECRET", secret)], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "pass_env = [\"MY_SECRET\"]\n").unwrap();
    });
    let script = r#"echo "plain $MY_SECRET"; echo "to stderr $MY_SECRET" >&2; printf '{"type":"message","role":"assistant","text":"said %s"}\n' "$MY_SECRET"; printf '{"type":"result","result":"result %s"}\n' "$MY_SECRET""#;
    b.agent("leaky", script).await;
    let id = b
        .task(json!({ "prompt": "x", "agent": "leaky", "checks": ["echo check $MY_SECRET; test -n \"$MY_SECRET\""] }))
        .await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "the agent had the secret: {:?}", t.task.reason);
    let everything = [
        String::from_utf8_lossy(&b.cli(&["logs", &id]).stdout).into_owned(),
        String::from_utf8_lossy(&b.cli(&["result", &id]).stdout).into_owned(),
        String::from_utf8_lossy(&b.cli(&["show", &id, "--json"]).stdout).into_owned(),
        serde_json::to_string(&b.events(&id).await).unwrap(),
    ]
    .join("\n");
    assert!(!everything.contains(secret), "the secret leaked:\n{everything}");
    assert!(everything.contains("plain [redacted MY_SECRET]"), "{everything}");
    assert!(everything.contains("to stderr [redacted MY_SECRET]"), "{everything}");
    assert!(everything.contains("result [redacted MY_SECRET]"), "{everything}");
    assert!(everything.contains("check [redacted MY_SECRET]"), "{everything}");
}

#[tokio::test]
async fn setup_and_checks_run_in_the_sandbox() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        let setup =
            "echo set-up > setup.txt && (cat ../../../token > stolen.txt 2>/dev/null || echo hidden > stolen.txt)";
        std::fs::write(repo.join(".baton/config.toml"), format!("setup = {setup:?}\n")).unwrap();
    });
    b.agent("noop", "true").await;
    let data = b.data.display().to_string();
    let check = format!("test ! -e {data}/token && test ! -e {data}/baton.db && echo checked-inside");
    let id = b.task(json!({ "prompt": "x", "agent": "noop", "checks": [check] })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?} {:?}", t.task.reason, t.task.check_results);
    assert_eq!(t.task.check_results[0].output_tail, "checked-inside");
    let stolen = b.sh(&format!("git show {}:stolen.txt", t.task.git.branch.unwrap()));
    assert_eq!(stolen, "hidden", "the setup could not read the token");
}

/// A loopback HTTP server that answers `hello from PORT` to every request.
fn hello_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let body = format!("hello from {port}");
            let _ = write!(conn, "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        }
    });
    port
}

#[tokio::test]
async fn network_none_reaches_baton_only_and_an_allowlist_only_its_hosts() {
    let (listed, unlisted) = (hello_server(), hello_server());
    let b = Baton::start();
    let probe = format!(
        r#"echo "direct=$(curl -s --max-time 3 http://127.0.0.1:{listed}/ || echo refused)"
echo "baton=$(curl -s --max-time 5 "$BATON_URL/healthz" | head -c 40)"
echo "listed=$(curl -s -f -p --noproxy '' --max-time 5 -x "${{HTTPS_PROXY:-http://127.0.0.1:1}}" http://127.0.0.1:{listed}/ || echo refused)"
echo "unlisted=$(curl -s -f -p --noproxy '' --max-time 5 -x "${{HTTPS_PROXY:-http://127.0.0.1:1}}" http://127.0.0.1:{unlisted}/ || echo refused)"
"#
    );
    b.agent_def(json!({ "name": "offline", "executor": "command", "command": ["sh", "-c", probe], "network": "none" }))
        .await;
    b.agent_def(json!({
        "name": "allowed", "executor": "command", "command": ["sh", "-c", probe],
        "network": [format!("127.0.0.1:{listed}")],
    }))
    .await;
    let offline = b.task(json!({ "prompt": "x", "agent": "offline" })).await;
    let allowed = b.task(json!({ "prompt": "x", "agent": "allowed" })).await;
    let (t1, t2) = (done(&b, &offline).await, done(&b, &allowed).await);
    assert_eq!(t1.task.status, TaskStatus::Succeeded, "{:?}", t1.task.reason);
    assert_eq!(t2.task.status, TaskStatus::Succeeded, "{:?}", t2.task.reason);
    let lines = printed(&b, &offline).await;
    assert_eq!(said(&lines, "direct"), "refused", "no loopback port but Baton's");
    assert!(said(&lines, "baton").contains("ok"), "Baton is reachable: {lines:?}");
    assert_eq!(said(&lines, "listed"), "refused", "no proxy without an allowlist");
    let lines = printed(&b, &allowed).await;
    assert_eq!(said(&lines, "direct"), "refused", "only through the proxy");
    assert!(said(&lines, "baton").contains("ok"), "{lines:?}");
    assert_eq!(said(&lines, "listed"), format!("hello from {listed}"));
    assert_eq!(said(&lines, "unlisted"), "refused");
    assert_eq!(t2.task.isolation.unwrap().network.to_string(), format!("127.0.0.1:{listed}"));
}

#[tokio::test]
async fn a_host_without_a_sandbox_says_so_and_required_tasks_fail() {
    // A host where bubblewrap cannot run: its program is hidden in the mount
    // namespace `baton up` runs in.
    let hide = r#"for p in bwrap podman docker; do w=$(command -v $p) && mount --bind /dev/null "$w"; done; exec "$@""#;
    let b = Baton::start_custom(
        &[],
        &[],
        &["unshare", "--mount", "--propagation", "private", "sh", "-c", hide, "sh"],
        |_| {},
    );
    b.agent("noop", "echo ran").await;
    let auto = b.task(json!({ "prompt": "x", "agent": "noop" })).await;
    let required = b.task(json!({ "prompt": "x", "agent": "noop", "sandbox": "required" })).await;
    let t = done(&b, &auto).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded);
    let isolation = t.task.isolation.unwrap();
    assert_eq!(isolation.kind, SandboxKind::None);
    assert!(isolation.reason.unwrap().contains("bubblewrap is not installed"));
    let shown = String::from_utf8_lossy(&b.cli(&["show", &auto]).stdout).into_owned();
    assert!(shown.contains("sandbox: none"), "{shown}");
    let t = done(&b, &required).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    let reason = t.task.reason.unwrap();
    assert!(reason.contains("requires a sandbox") && reason.contains("apt-get install bubblewrap"), "{reason}");
    // And a container needs a runtime.
    b.agent_def(json!({ "name": "boxed", "executor": "command", "command": ["true"], "sandbox": "container", "image": "alpine:3" }))
        .await;
    let boxed = b.task(json!({ "prompt": "x", "agent": "boxed" })).await;
    let t = done(&b, &boxed).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert!(t.task.reason.unwrap().contains("needs podman or docker, which is not installed"));
}

#[tokio::test]
async fn bad_sandbox_settings_are_refused() {
    let b = Baton::start();
    for (def, why) in [
        (
            json!({ "name": "a", "executor": "command", "command": ["true"], "sandbox": "maybe" }),
            "`maybe`, expected one of `auto`",
        ),
        (json!({ "name": "b", "executor": "command", "command": ["true"], "network": "open" }), "unknown network"),
        (json!({ "name": "c", "executor": "command", "command": ["true"], "pass_env": ["*"] }), "whole environment"),
        (
            json!({ "name": "d", "executor": "command", "command": ["true"], "sandbox": "container" }),
            "needs an `image`",
        ),
    ] {
        let err = b.client.post::<Value, _>("/api/agents", &def).await.unwrap_err().to_string();
        assert!(err.contains(why), "{def}: {err}");
    }
    let err = b
        .client
        .post::<Value, _>("/api/tasks", &json!({ "project": "repo", "prompt": "x", "sandbox": "nope" }))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown variant") || err.contains("sandbox"), "{err}");
}

/// A container image made here from the host's own `sh` and `sleep` (no
/// registry), and podman's settings for this machine; removed on drop.
struct TestImage {
    tag: String,
    conf: tempfile::NamedTempFile,
}

impl TestImage {
    fn build() -> Self {
        Self::of(&[("/bin/dash", "/bin/sh"), ("/bin/sleep", "/bin/sleep")])
    }

    /// An image of these programs (host path, image path) and their libraries.
    fn of(programs: &[(&str, &str)]) -> Self {
        let root = tempfile::tempdir().unwrap();
        let mut files: Vec<(String, String)> = programs.iter().map(|(f, t)| (f.to_string(), t.to_string())).collect();
        for (bin, _) in programs {
            let ldd = std::process::Command::new("ldd").arg(bin).output().unwrap();
            for lib in String::from_utf8_lossy(&ldd.stdout).split_whitespace().filter(|w| w.starts_with('/')) {
                files.push((lib.to_owned(), lib.to_owned()));
            }
        }
        for (from, to) in files {
            let to = root.path().join(to.trim_start_matches('/'));
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(&from, &to).unwrap();
        }
        std::fs::create_dir_all(root.path().join("tmp")).unwrap();
        let mut suffix = [0u8; 4];
        getrandom::fill(&mut suffix).unwrap();
        let tag =
            format!("localhost/baton-test-{}:latest", suffix.iter().map(|b| format!("{b:02x}")).collect::<String>());
        // This machine's podman needs runc and limits it may set (no
        // CAP_SYS_RESOURCE here); a normal host needs neither.
        let conf = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(
            conf.path(),
            "[containers]\ndefault_ulimits = [\"nofile=1024:1024\", \"nproc=1024:1024\"]\n[engine]\nruntime = \"runc\"\n",
        )
        .unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("tar -C {} -c . | podman import -q - {tag} >/dev/null", root.path().display()))
            .env("CONTAINERS_CONF", conf.path())
            .status()
            .unwrap();
        assert!(status.success(), "podman import");
        TestImage { tag, conf }
    }

    fn conf(&self) -> String {
        self.conf.path().display().to_string()
    }
}

impl Drop for TestImage {
    fn drop(&mut self) {
        let _ = std::process::Command::new("podman")
            .args(["rmi", "-f", &self.tag])
            .env("CONTAINERS_CONF", self.conf.path())
            .output();
    }
}

fn containers_named(conf: &str, name: &str) -> String {
    let out = std::process::Command::new("podman")
        .args(["ps", "-a", "--format", "{{.Names}}", "--filter", &format!("name={name}")])
        .env("CONTAINERS_CONF", conf)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn a_container_agent_writes_its_file_its_work_lands_and_stop_kills_it() {
    let image = TestImage::build();
    let conf = image.conf();
    let b = Baton::start_custom(&[], &[("CONTAINERS_CONF", &conf)], &[], |_| {});
    let boxed = |name: &str, script: &str| json!({ "name": name, "executor": "command", "command": ["sh", "-c", script], "sandbox": "container", "image": image.tag });
    let script = format!(
        "echo from-the-box > box.txt; echo \"secret=${{GITHUB_TOKEN:-none}}\"; test -e {} && echo token-seen || echo token-hidden",
        b.data.join("token").display()
    );
    b.agent_def(boxed("boxed", &script)).await;
    b.agent_def(boxed("sleeper", "echo started > started.txt; sleep 60")).await;
    let id = b.task(json!({ "prompt": "x", "agent": "boxed", "checks": ["test -f box.txt"] })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.task.isolation.clone().unwrap().kind, SandboxKind::Container);
    // What it printed, and every event if the line is not there (a rare miss on a loaded host, once, on PostgreSQL).
    let lines = printed(&b, &id).await;
    assert!(lines.contains(&"secret=none".to_owned()), "printed {lines:?}; events {:#?}", b.events(&id).await);
    assert!(lines.contains(&"token-hidden".to_owned()), "Baton's data directory is hidden: {lines:?}");
    assert!(b.cli(&["merge", &id]).status.success());
    assert_eq!(b.sh("git show main:box.txt"), "from-the-box");
    assert!(b.sh("git log -1 --format=%s main^2").starts_with("WIP:"), "Baton committed what the agent left");
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(b.repo.join(".git")).unwrap());
    let wt = t.task.git.worktree.unwrap();
    let written = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(format!("{wt}/box.txt")).unwrap());
    assert_eq!(written, owner, "the file is owned by the launcher's user");

    let id = b.task(json!({ "prompt": "x", "agent": "sleeper" })).await;
    let t = b
        .wait_for(&id, "the agent's file", |t| {
            t.task.git.worktree.as_ref().is_some_and(|w| std::path::Path::new(w).join("started.txt").exists())
        })
        .await;
    let run = t.runs[0].id.to_string();
    assert_eq!(containers_named(&conf, &format!("baton-{run}")), format!("baton-{run}"));
    assert!(b.cli(&["stop", &id, "--wait"]).status.success());
    assert_eq!(b.get(&id).await.task.status, TaskStatus::Cancelled);
    assert_eq!(containers_named(&conf, &format!("baton-{run}")), "", "the container is gone");

    // An image that does not exist fails the task with the reason.
    b.agent_def(json!({ "name": "ghost", "executor": "command", "command": ["true"], "sandbox": "container", "image": "localhost/no-such-image:1" })).await;
    let id = b.task(json!({ "prompt": "x", "agent": "ghost" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    assert!(t.task.reason.unwrap().contains("does not exist"));
}

/// The warm containers of the Baton whose process is `pid`, waiting or
/// running: name and the host pid of its first process.
fn warm_containers(conf: &str, pid: u32) -> Vec<(String, i32)> {
    let names = containers_named(conf, &format!("baton-warm-{pid}-"));
    let mut found: Vec<(String, i32)> = names
        .lines()
        .filter_map(|name| {
            let out = std::process::Command::new("podman")
                .args(["inspect", "--format", "{{.State.Pid}}", name])
                .env("CONTAINERS_CONF", conf)
                .output()
                .ok()?;
            let pid = String::from_utf8_lossy(&out.stdout).trim().parse().ok().filter(|p| *p > 0)?;
            Some((name.to_owned(), pid))
        })
        .collect();
    found.sort();
    found
}

/// Waits until the Baton of `pid` has `n` warm containers, and answers them.
async fn wait_warm(conf: &str, pid: u32, n: usize) -> Vec<(String, i32)> {
    let start = std::time::Instant::now();
    loop {
        let found = warm_containers(conf, pid);
        if found.len() == n {
            return found;
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(60), "wanted {n} warm containers, have {found:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// `container_pool`: a run takes a warm container (its places bound in, its
/// variables and directory its own, its work landing as before), which is used
/// once and removed; the pool fills again behind it, shrinks when the setting
/// is lowered, a stop reaches a warm container's agent, and the launcher's end
/// takes the waiting ones with it.
#[tokio::test]
async fn a_warm_container_takes_one_run_and_its_pool_refills_and_shrinks() {
    let image = TestImage::build();
    let conf = image.conf();
    let mut b = Baton::start_custom(&[], &[("CONTAINERS_CONF", &conf)], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "container_pool = 2\n").unwrap();
        crate::harness::sh(repo, "git add . && git commit -qm pool");
    });
    let pid = b.pid().unwrap();
    let boxed = |name: &str, script: &str| json!({ "name": name, "executor": "command", "command": ["sh", "-c", script], "sandbox": "container", "image": image.tag });
    let token = b.data.join("token");
    let script = format!(
        "echo from-the-box > box.txt; echo \"wt=$BATON_WORKTREE pwd=$(pwd)\"; echo \"secret=${{GITHUB_TOKEN:-none}}\"; \
         echo to-stderr >&2; test -e {0} && echo token-seen || echo token-hidden",
        token.display(),
    );
    let script = script.as_str();
    b.agent_def(boxed("boxed", script)).await;
    b.agent_def(boxed("sleeper", "echo started > started.txt; sleep 60")).await;
    // The first run of the image makes its container, and its pool.
    let first = b.task(json!({ "prompt": "x", "agent": "boxed" })).await;
    assert_eq!(done(&b, &first).await.task.status, TaskStatus::Succeeded, "{:?}", printed(&b, &first).await);
    let warm = wait_warm(&conf, pid, 2).await;

    let id = b.task(json!({ "prompt": "x", "agent": "boxed", "checks": ["test -f box.txt"] })).await;
    let t = done(&b, &id).await;
    let lines = printed(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}: {lines:?}", t.task.reason);
    assert_eq!(t.task.isolation.clone().unwrap().kind, SandboxKind::Container);
    let wt = t.task.git.worktree.clone().unwrap();
    let agent = t.runs[0].pid.unwrap();
    let used = warm.iter().find(|(_, pid)| *pid == agent).unwrap_or_else(|| panic!("{agent} ran in none of {warm:?}"));
    assert!(lines.contains(&format!("wt={wt} pwd={wt}")), "{lines:?}");
    assert!(lines.contains(&"secret=none".to_owned()), "{lines:?}");
    assert!(lines.contains(&"token-hidden".to_owned()), "Baton's data directory is hidden: {lines:?}");
    let errors =
        b.events(&id).await.into_iter().filter(|e| e.kind == EventKind::Output && e.data["stream"] == "stderr");
    assert!(errors.map(|e| e.data["line"].clone()).any(|l| l == "to-stderr"), "its errors are its run's too");
    assert!(b.cli(&["merge", &id]).status.success());
    assert_eq!(b.sh("git show main:box.txt"), "from-the-box");
    // Used once: gone, and the pool is whole again without it.
    let again = wait_warm(&conf, pid, 2).await;
    assert!(!again.iter().any(|(n, _)| *n == used.0), "{again:?}");
    assert_eq!(containers_named(&conf, &used.0), "", "the used container is removed");

    // Warm containers killed while they wait: the next run gets a container
    // made for it (or a new warm one), and the pool is made again.
    for (_, pid) in &again {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), nix::sys::signal::Signal::SIGKILL);
    }
    let id = b.task(json!({ "prompt": "x", "agent": "boxed" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?} {:?}", t.task.reason, printed(&b, &id).await);
    let again = wait_warm(&conf, pid, 2).await;

    // A stop reaches a warm container's agent.
    let id = b.task(json!({ "prompt": "x", "agent": "sleeper" })).await;
    let t = b
        .wait_for(&id, "the agent's file", |t| {
            t.task.git.worktree.as_ref().is_some_and(|w| std::path::Path::new(w).join("started.txt").exists())
        })
        .await;
    let running: Vec<String> = warm_containers(&conf, pid).into_iter().map(|(n, _)| n).collect();
    let ran_in = again.iter().find(|(n, _)| running.contains(n)).map(|(n, _)| n.clone());
    assert!(b.cli(&["stop", &id, "--wait"]).status.success());
    assert_eq!(b.get(&id).await.task.status, TaskStatus::Cancelled);
    assert!(t.runs.len() == 1);
    let after = wait_warm(&conf, pid, 2).await;
    assert!(
        again.iter().filter(|c| !after.contains(c)).count() == 1,
        "the stopped run's warm container ({ran_in:?}) is gone: {again:?} then {after:?}"
    );

    // Lowered, the pool shrinks at the next run of the image.
    std::fs::write(b.repo.join(".baton/config.toml"), "container_pool = 1\n").unwrap();
    b.sh("git commit -qam smaller");
    assert!(b.cli(&["project", "reload", "repo"]).status.success());
    let id = b.task(json!({ "prompt": "x", "agent": "boxed" })).await;
    assert_eq!(done(&b, &id).await.task.status, TaskStatus::Succeeded);
    wait_warm(&conf, pid, 1).await;

    // The launcher gone, its waiting containers go too.
    b.kill9();
    wait_warm(&conf, pid, 0).await;
}

/// An image without `sh` cannot have warm containers (they wait in it): its
/// runs get containers made for them, as without a pool.
#[tokio::test]
async fn an_image_without_a_shell_gets_containers_made_for_each_run() {
    let image = TestImage::of(&[("/bin/sleep", "/bin/sleep")]);
    let conf = image.conf();
    let b = Baton::start_custom(&[], &[("CONTAINERS_CONF", &conf)], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), "container_pool = 2\n").unwrap();
        crate::harness::sh(repo, "git add . && git commit -qm pool");
    });
    let pid = b.pid().unwrap();
    b.agent_def(json!({ "name": "nap", "executor": "command", "command": ["sleep", "0"], "sandbox": "container", "image": image.tag })).await;
    for _ in 0..3 {
        let id = b.task(json!({ "prompt": "x", "agent": "nap" })).await;
        let t = done(&b, &id).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    assert_eq!(warm_containers(&conf, pid), vec![], "no warm container was kept");
    assert!(!b.data.join("warm").read_dir().is_ok_and(|mut d| d.next().is_some()), "no slot is left");
}

#[tokio::test]
async fn a_program_under_tmp_runs_sandboxed_and_a_missing_one_fails_with_its_path() {
    let b = Baton::start();
    // A program in a package under /tmp, which the sandbox's private /tmp covers,
    // with its interpreter named by `#!/usr/bin/env` and a file of its package.
    let pkg = tempfile::tempdir_in("/tmp").unwrap();
    std::fs::create_dir_all(pkg.path().join("bin")).unwrap();
    std::fs::create_dir_all(pkg.path().join("lib")).unwrap();
    std::fs::write(pkg.path().join("lib/words.txt"), "from-the-package\n").unwrap();
    let program = pkg.path().join("bin/tool");
    let beside = tempfile::NamedTempFile::new_in("/tmp").unwrap();
    let script = format!(
        "#!/usr/bin/env sh\ncat \"$(dirname \"$0\")/../lib/words.txt\"\ntest -e {} && echo beside-seen || echo beside-hidden\n",
        beside.path().display()
    );
    std::fs::write(&program, script).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    b.agent_def(json!({ "name": "tmp-tool", "executor": "command", "command": [program] })).await;
    let id = b.task(json!({ "prompt": "x", "agent": "tmp-tool" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    assert_eq!(t.task.isolation.clone().unwrap().kind, SandboxKind::Bubblewrap);
    let out = printed(&b, &id).await.join("\n");
    assert!(out.contains("from-the-package"), "the package is visible: {out}");
    assert!(out.contains("beside-hidden"), "and the rest of /tmp is still private: {out}");
    // A program that does not exist fails the run at once, naming its path.
    b.agent_def(json!({ "name": "ghost-tool", "executor": "command", "command": ["/tmp/no/such/tool"] })).await;
    let id = b.task(json!({ "prompt": "x", "agent": "ghost-tool" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Failed);
    let why = format!("{:?} {:?}", t.task.reason, t.runs.iter().map(|r| &r.error).collect::<Vec<_>>());
    assert!(why.contains("/tmp/no/such/tool"), "{why}");
}

/// The processes whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let out = std::process::Command::new("pgrep").args(["-P", &pid.to_string()]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect()
}

/// The sandbox made ahead: each run takes a standby supervisor's own sandbox
/// (its first process is that sandbox's, not one made for the run; a standby
/// serves one run), and a sandbox that died before its run is replaced by one
/// made for the run, isolated the same.
#[tokio::test]
async fn runs_take_sandboxes_made_ahead_once_and_a_dead_one_is_replaced() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let b = Baton::start_with(&["--slots", "2"]);
    let probe = r#"tr '\0' ' ' < /proc/1/cmdline; echo; grep CapEff /proc/self/status; ls /tmp | wc -l"#;
    b.agent_def(json!({ "name": "probe", "executor": "command", "command": ["sh", "-c", probe] })).await;
    for _ in 0..3 {
        let id = b.task(json!({ "prompt": "x", "agent": "probe" })).await;
        let t = done(&b, &id).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
        let lines = printed(&b, &id).await;
        assert!(lines[0].contains("sandbox-init"), "made ahead: {lines:?}");
        assert!(lines[1].ends_with("0000000000000000"), "no capability left: {lines:?}");
    }
    // A program that is a file alone under /tmp: its mount point is a file.
    let alone = tempfile::Builder::new().prefix("tool-").tempfile_in("/tmp").unwrap();
    std::fs::write(alone.path(), "#!/bin/sh\ntr '\\0' ' ' < /proc/1/cmdline; echo; echo alone-ran\n").unwrap();
    std::fs::set_permissions(alone.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let alone_path = alone.into_temp_path();
    b.agent_def(json!({ "name": "alone", "executor": "command", "command": [alone_path.to_str().unwrap()] })).await;
    let id = b.task(json!({ "prompt": "x", "agent": "alone" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let lines = printed(&b, &id).await;
    assert!(lines[0].contains("sandbox-init") && lines[1] == "alone-ran", "{lines:?}");
    let standbys: Vec<u32> = children(b.pid().unwrap())
        .into_iter()
        .filter(|p| std::fs::read_to_string(format!("/proc/{p}/cmdline")).is_ok_and(|c| c.contains("--standby")))
        .collect();
    assert!(!standbys.is_empty(), "standby supervisors wait with their sandboxes");
    // A standby that dies takes its sandbox with it: nothing is left waiting.
    let gone = standbys[0];
    let sandboxes = children(gone);
    assert!(!sandboxes.is_empty(), "{gone} has its sandbox");
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(gone as i32), nix::sys::signal::Signal::SIGKILL);
    let start = std::time::Instant::now();
    while sandboxes.iter().any(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .is_ok_and(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
    }) {
        assert!(start.elapsed() < std::time::Duration::from_secs(5), "the sandbox of a dead standby lingers");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Kill every waiting sandbox (its `sandbox-init`: the sandbox ends with
    // it): the next run is sandboxed by bubblewrap for it.
    for s in &standbys[1..] {
        for bwrap in children(*s) {
            for init in children(bwrap) {
                for c in children(init) {
                    let _ =
                        nix::sys::signal::kill(nix::unistd::Pid::from_raw(c as i32), nix::sys::signal::Signal::SIGKILL);
                }
            }
        }
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let id = b.task(json!({ "prompt": "x", "agent": "probe" })).await;
    let t = done(&b, &id).await;
    assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    let lines = printed(&b, &id).await;
    assert!(lines[0].contains("--bind") && !lines[0].contains("sandbox-init"), "made for the run: {lines:?}");
    assert!(lines[1].ends_with("0000000000000000"), "{lines:?}");
}
