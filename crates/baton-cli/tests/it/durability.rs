//! Nothing lost across backups and restores: a backup taken while tasks run,
//! restored into a new data directory, starts with every task it knew, its
//! running run taken up from the spool, a worktree made after it reported and
//! kept; and bad backups and restores refused with nothing changed.

use std::time::Duration;

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Baton, processes_of_task, sh};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_tasks_run_restores_into_a_new_data_directory_with_nothing_lost() {
    let mut b = Baton::start();
    if b.on_postgres() {
        return; // PostgreSQL is backed up by pg_dump; see docs/operations.md.
    }
    b.agent("quick", "echo $BATON_TASK_ID > done-$BATON_TASK_ID.txt && git add -A && git commit -qm done").await;
    let go = b.shared("go");
    let slow_script =
        format!("echo started; while [ ! -f {} ]; do sleep 0.1; done; echo after-the-backup; sleep 600", go.display());
    b.agent("slow", &slow_script).await;
    let slow = b.task(json!({ "prompt": "slow", "agent": "slow" })).await;
    b.wait_for(&slow, "running", |t| t.task.status == TaskStatus::Running && t.task.git.worktree.is_some()).await;
    // 200 tasks, queued and running while the backup is taken.
    let mut ids = Vec::new();
    for i in 0..200 {
        ids.push(b.task(json!({ "prompt": format!("quick {i}"), "agent": "quick" })).await);
    }
    let file = b.dir.path().join("baton.tar.gz");
    let out = b.cli(&["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = b.cli(&["backup", file.to_str().unwrap()]);
    assert!(
        !out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--force"),
        "an existing target is refused"
    );
    let out = b.cli(&["backup", "--verify", file.to_str().unwrap()]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("integrity check clean"));
    let known: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    doctor_names_what_the_data_directory_holds(&b);
    // After the backup: the slow agent writes more, and a task makes a worktree.
    std::fs::write(&go, "").unwrap();
    let after = b.task(json!({ "prompt": "after the backup", "agent": "quick" })).await;
    let after_worktree =
        b.wait_for(&after, "its worktree", |t| t.task.status.is_finished()).await.task.git.worktree.unwrap();
    let spool_has = || {
        std::fs::read_dir(b.data.join("runs"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|d| std::fs::read_to_string(d.path().join("stdout")).is_ok_and(|t| t.contains("after-the-backup")))
    };
    for _ in 0..100 {
        if spool_has() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // The machine is lost: the coordinator dies, then the slow agent.
    b.kill9();
    for pid in processes_of_task(&slow) {
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    let restored = b.dir.path().join("restored");
    let old = b.data.clone();
    let out = b.cli(&[
        "restore",
        file.to_str().unwrap(),
        "--data-dir",
        restored.to_str().unwrap(),
        "--spools-from",
        old.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = b.cli(&["restore", file.to_str().unwrap(), "--data-dir", restored.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("not empty"));
    let copied: Vec<String> = std::fs::read_dir(restored.join("runs"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|d| std::fs::read_to_string(d.path().join("stdout")).unwrap_or_default())
        .collect();
    assert!(copied.iter().any(|t| t.contains("after-the-backup")), "the spool as it is now: {copied:?}");
    b.restart_on(restored.clone());
    let now: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    for t in &known {
        assert!(now.iter().any(|n| n["id"] == t["id"]), "task {} is there", t["id"]);
    }
    assert!(!now.iter().any(|n| n["id"] == after.as_str()), "a task made after the backup is not");
    let t = b
        .wait_within(Duration::from_secs(60), &slow, "the running run taken up", |t| {
            t.task.status.is_finished() || t.runs.len() > 1
        })
        .await;
    let events = b.events(&slow).await;
    let dump: Vec<String> = events
        .iter()
        .map(|e| format!("{} {}", e.kind, e.data.to_string().chars().take(200).collect::<String>()))
        .collect();
    assert!(
        events.iter().any(|e| e.data.to_string().contains("after-the-backup")),
        "its later output, from the spool: {:?} {:?}\n{dump:#?}",
        t.task.status,
        t.runs.iter().map(|r| (&r.status, &r.error)).collect::<Vec<_>>()
    );
    let report: Value = serde_json::from_slice(&std::fs::read(restored.join("reconciled.json")).unwrap()).unwrap();
    assert!(report["unknown_worktrees"].to_string().contains(&after_worktree), "{report}");
    assert!(std::path::Path::new(&after_worktree).exists(), "reported, not deleted");
    assert!(sh(&b.repo, "git fsck --no-progress 2>&1 && echo clean").contains("clean"));
    assert_eq!(baton_store::backup::integrity(&restored.join("baton.db")), Ok(()));
    for id in ids.iter().take(3) {
        let t = b.wait_for(id, "its end", |t| t.task.status.is_finished()).await;
        assert_eq!(t.task.status, TaskStatus::Succeeded, "{:?}", t.task.reason);
    }
}

/// `baton doctor` says what the data directory holds, by kind.
fn doctor_names_what_the_data_directory_holds(b: &Baton) {
    let out = b.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let holds = text.lines().find(|l| l.contains("data directory ")).unwrap_or_default();
    assert!(holds.contains("the store") && holds.contains("run spools "), "{text}");
}

#[tokio::test]
async fn bad_backups_are_refused_with_what_is_wrong() {
    let b = Baton::start();
    let junk = b.dir.path().join("junk.tar.gz");
    std::fs::write(&junk, b"not a backup").unwrap();
    let out = b.cli(&["backup", "--verify", junk.to_str().unwrap()]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stdout).contains("not a usable Baton backup"));
    let dir = b.dir.path().join("into");
    let out = b.cli(&["restore", junk.to_str().unwrap(), "--data-dir", dir.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(!dir.join("baton.db").exists(), "nothing was made");
}

/// Starts `baton up --store URL` in a fresh repository and waits for its first
/// line: `Ok` with the URL it listens on, or `Err` with what it said.
fn up_with_store(url: &str) -> Result<(std::process::Child, String), String> {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::harness::git_repo(dir.path());
    let mut child = std::process::Command::new(crate::harness::BATON)
        .args(["up", "--listen", "127.0.0.1:0", "--no-launcher", "--store", url])
        .current_dir(&repo)
        .env("BATON_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    if first.starts_with("listening on ") {
        std::mem::forget(dir);
        return Ok((child, first));
    }
    let out = child.wait_with_output().unwrap();
    Err(String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn postgresql_over_tls_is_verified_as_the_url_says() {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(root.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cluster = root.path().join("pg");
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/pg-cluster");
    let out = std::process::Command::new(&script).args(["start-ssl", cluster.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let base = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    let stop = || {
        let _ = std::process::Command::new(&script).args(["stop", cluster.to_str().unwrap()]).output();
    };
    let tls = cluster.join("tls");
    let ca = tls.join("ca.pem").display().to_string();
    let other = tls.join("other-ca.pem").display().to_string();
    let verified = up_with_store(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"));
    let wrong = up_with_store(&format!("{base}?sslmode=verify-full&sslrootcert={other}"));
    let plain = up_with_store(&format!("{base}?sslmode=disable"));
    let bad_mode = up_with_store(&format!("{base}?sslmode=sometimes"));
    let missing = up_with_store(&format!("{base}?sslmode=verify-ca&sslrootcert=/nonexistent/ca.pem"));
    // baton doctor says what the connection is: encrypted, and what was verified.
    let doctor = |url: &str| {
        let out = std::process::Command::new(crate::harness::BATON)
            .args(["doctor", "--store", url])
            .current_dir(root.path())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find(|l| l.contains("store postgres"))
            .unwrap_or_else(|| panic!("no store line: {text}"))
            .to_owned()
    };
    let full = doctor(&format!("{base}?sslmode=verify-full&sslrootcert={ca}"));
    assert!(
        full.starts_with("ok") && full.contains("encrypted (TLSv1.3)") && full.contains("the CA and the host name"),
        "{full}"
    );
    let unverified = doctor(&format!("{base}?sslmode=require"));
    assert!(unverified.starts_with("warn") && unverified.contains("verified: nothing"), "{unverified}");
    // baton backup of a PostgreSQL store checks the server and says how.
    let out = std::process::Command::new(crate::harness::BATON)
        .args(["backup", "--store", &format!("{base}?sslmode=verify-full&sslrootcert={ca}"), "baton.dump"])
        .current_dir(root.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && said.contains("pg_dump --format=custom --file=baton.dump")
            && said.contains("wal_level="),
        "{said}"
    );
    stop();
    let (mut child, _) = verified.expect("verify-full with the right CA connects");
    let _ = child.kill();
    let _ = child.wait();
    let why = wrong.expect_err("another CA is refused");
    assert!(why.contains("UnknownIssuer") || why.contains("certificate"), "{why}");
    let why = plain.expect_err("without TLS, a server that requires it refuses");
    assert!(why.contains("pg_hba.conf") || why.contains("no encryption"), "the server's own words: {why}");
    assert!(bad_mode.expect_err("an sslmode that does not exist").contains("sslmode=sometimes"));
    assert!(missing.expect_err("a CA file that cannot be read").contains("/nonexistent/ca.pem"));
}

/// A proxy to `upstream` that, for the first request whose head starts with
/// `drop`, forwards it and its answer's arrival but closes the connection
/// instead of passing the answer on: an answer lost after the commit.
async fn lossy_proxy(upstream: String, drop: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let dropped = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            let (upstream, dropped) = (upstream.clone(), dropped.clone());
            tokio::spawn(async move {
                let mut server = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let mut buf = vec![0u8; 65536];
                loop {
                    let n = match client.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    let lose = buf[..n].starts_with(drop.as_bytes())
                        && !dropped.swap(true, std::sync::atomic::Ordering::SeqCst);
                    server.write_all(&buf[..n]).await.unwrap();
                    let m = server.read(&mut buf).await.unwrap_or(0);
                    if lose || m == 0 {
                        return; // the answer is lost with the connection
                    }
                    if client.write_all(&buf[..m]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_sent_again_and_makes_one_task() {
    let b = Baton::start();
    b.agent("quick", "true").await;
    let proxy = lossy_proxy(b.address(), "POST /api/tasks ").await;
    let client = baton_client::Client::new(&proxy, Some(b.token.clone())).unwrap();
    let req = baton_core::api::CreateTask {
        project: Some("repo".into()),
        prompt: "once".into(),
        agent: Some("quick".into()),
        ..Default::default()
    };
    let made = client.create_task(&req).await.expect("the retry gets the first answer");
    let all: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(all.len(), 1, "one task, though the request was sent twice");
    assert_eq!(all[0]["id"].as_str(), Some(made.id.as_str()));
}
