//! The scheduler's decisions, table by table, over a real store (SQLite in a
//! temporary directory) and a real git repository, with no launcher process: a
//! test plays the launcher by calling the same functions its requests reach.

use std::collections::HashMap;
use std::sync::Arc;

use baton_core::ids::{LauncherId, RunId, TaskId};
use baton_core::model::TokenKind;
use baton_core::status::{RunStatus, TaskStatus};
use serde_json::{Value, json};

use crate::state::{AppState, Config};
use crate::tokens::Caller;
use crate::transact;

struct World {
    state: Arc<AppState>,
    launcher: LauncherId,
    _dir: tempfile::TempDir,
}

fn caller(kind: TokenKind) -> Caller {
    Caller { kind, subject: None, token_hash: String::new() }
}

fn from<T: serde::de::DeserializeOwned>(v: Value) -> T {
    serde_json::from_value(v).unwrap()
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    let git = |args: &[&str]| {
        let ok = std::process::Command::new("git").args(args).current_dir(&repo).output().unwrap().status.success();
        assert!(ok, "git {args:?}");
    };
    std::fs::create_dir(&repo).unwrap();
    git(&["init", "-q", "-b", "main"]);
    git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "--allow-empty", "-m", "init"]);
    let store = baton_store::sqlite::open(&baton_store::sqlite::SqliteOptions::new(dir.path().join("b.db"))).unwrap();
    let state = Arc::new(AppState::new(store, Config::new("http://127.0.0.1:1")));
    crate::projects::add_project(&state, from(json!({ "path": repo, "name": "p" })), false).await.unwrap();
    let agent = from(json!({ "name": "a", "executor": "command", "command": ["true"], "delegates_to": ["a"] }));
    transact(&state, move |tx, _| crate::projects::save_agents(tx, &[agent])).await.unwrap();
    let req = from(json!({ "name": "l", "hostname": "h", "version": "0", "slots": 8, "executors": ["command"] }));
    let launcher =
        transact(&state, move |tx, fx| super::register(tx, fx, &caller(TokenKind::Launcher), req)).await.unwrap().id;
    World { state, launcher, _dir: dir }
}

impl World {
    /// Creates a task of agent `a` depending on `deps`, with `extra` fields.
    async fn task(&self, deps: &[&TaskId], extra: Value) -> TaskId {
        let mut body = json!({ "project": "p", "agent": "a", "prompt": "work",
                               "depends_on": deps.iter().map(|d| d.to_string()).collect::<Vec<_>>() });
        body.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
        let req = from(body);
        let config = self.state.config.clone();
        let admin = caller(TokenKind::Admin);
        transact(&self.state, move |tx, fx| super::create_task(tx, fx, &admin, req, &config)).await.unwrap().id
    }

    async fn status(&self, id: &TaskId) -> TaskStatus {
        let id = id.clone();
        self.state.store.read(move |r| r.task(&id)).await.unwrap().unwrap().status
    }

    /// What the launcher is handed now: the tasks of the runs it claims.
    async fn claim(&self) -> Vec<(TaskId, RunId)> {
        let (launcher, config) = (self.launcher.clone(), self.state.config.clone());
        let claimed =
            transact(&self.state, move |tx, fx| super::claim_runs(tx, fx, &launcher, &config, &HashMap::new()))
                .await
                .unwrap();
        claimed.into_iter().map(|a| (a.task.id, a.run.id)).collect()
    }

    /// Plays the launcher: the run started, then ended as `status`.
    async fn finish(&self, run: &RunId, status: RunStatus) {
        let (id, launcher) = (run.clone(), self.launcher.clone());
        let report = from(json!({ "status": status, "exit_code": i32::from(status != RunStatus::Succeeded) }));
        transact(&self.state, move |tx, fx| {
            super::run_started(tx, &id, Some(&launcher), from(json!({ "pid": 4242 })))?;
            super::run_finished(tx, fx, &id, Some(&launcher), report)
        })
        .await
        .unwrap();
    }

    /// Claims everything runnable and ends each run of the tasks named in `outcomes`.
    async fn run_round(&self, outcomes: &[(&TaskId, RunStatus)]) -> Vec<TaskId> {
        let claimed = self.claim().await;
        for (task, run) in &claimed {
            if let Some((_, status)) = outcomes.iter().find(|(t, _)| *t == task) {
                self.finish(run, *status).await;
            }
        }
        claimed.into_iter().map(|(t, _)| t).collect()
    }
}

use RunStatus::{Failed as RunFailed, Succeeded as RunOk};
use TaskStatus::*;

/// A small DAG: `a`; `b` after `a`; `c` after `b`; `d` after `a` and `e`; `e`.
/// Each row ends runs of `a` and `e` as given, then the tasks' statuses.
#[tokio::test]
async fn dependencies_promote_on_success_and_block_on_failure() {
    type Row = (&'static str, RunStatus, RunStatus, [TaskStatus; 5]);
    let table: [Row; 3] = [
        ("both succeed: b and d become runnable", RunOk, RunOk, [Succeeded, Queued, Pending, Queued, Succeeded]),
        ("a fails: everything after it is blocked", RunFailed, RunOk, [Failed, Blocked, Blocked, Blocked, Succeeded]),
        ("e fails: only d is blocked", RunOk, RunFailed, [Succeeded, Queued, Pending, Blocked, Failed]),
    ];
    for (name, a_ends, e_ends, want) in table {
        let w = world().await;
        let a = w.task(&[], json!({})).await;
        let b = w.task(&[&a], json!({})).await;
        let c = w.task(&[&b], json!({})).await;
        let e = w.task(&[], json!({})).await;
        let d = w.task(&[&a, &e], json!({})).await;
        let claimed = w.run_round(&[(&a, a_ends), (&e, e_ends)]).await;
        assert_eq!(claimed, vec![a.clone(), e.clone()], "{name}: only the roots are claimed first");
        let got = [w.status(&a).await, w.status(&b).await, w.status(&c).await, w.status(&d).await, w.status(&e).await];
        assert_eq!(got, want, "{name}");
        let runnable: Vec<TaskId> = w.claim().await.into_iter().map(|(t, _)| t).collect();
        let want_runnable: Vec<TaskId> =
            [(&b, want[1]), (&d, want[3])].into_iter().filter(|(_, s)| *s == Queued).map(|(t, _)| t.clone()).collect();
        assert_eq!(runnable, want_runnable, "{name}: what a launcher is handed next");
    }
}

/// Approval, retries and limits decide what a launcher is handed.
#[tokio::test]
async fn approval_retries_and_limits_decide_what_is_handed_out() {
    // Approval: held until approved.
    let w = world().await;
    let held = w.task(&[], json!({ "approval": "required" })).await;
    assert_eq!(w.status(&held).await, AwaitingApproval);
    assert!(w.claim().await.is_empty(), "an unapproved task is never handed out");
    let id = held.clone();
    transact(&w.state, move |tx, fx| super::approve_task(tx, fx, &id)).await.unwrap();
    assert_eq!(w.claim().await.into_iter().map(|(t, _)| t).collect::<Vec<_>>(), vec![held]);

    // Retries: a failure with retries left queues the task again after a backoff
    // (1 s for the first retry), the last one fails it.
    let w = world().await;
    let flaky = w.task(&[], json!({ "max_retries": 1 })).await;
    let claimed = w.run_round(&[(&flaky, RunFailed)]).await;
    let failed_at = std::time::Instant::now();
    assert_eq!(claimed, vec![flaky.clone()]);
    assert_eq!(w.status(&flaky).await, Queued, "retried");
    assert!(w.claim().await.is_empty(), "not before its backoff");
    let retry = loop {
        if let Some((_, run)) = w.claim().await.pop() {
            break run;
        }
        assert!(failed_at.elapsed() < std::time::Duration::from_secs(10), "the retry was never handed out");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert!(failed_at.elapsed() >= std::time::Duration::from_millis(900), "handed out before its backoff");
    w.finish(&retry, RunFailed).await;
    assert_eq!(w.status(&flaky).await, Failed, "no retries left");

    // The project's parallel limit: two of three are handed out, the third when one ends.
    let w = world().await;
    let id = w.state.store.read(|r| r.project_by_name("p")).await.unwrap().unwrap().id;
    transact(&w.state, move |tx, _| {
        let mut project = tx.project(&id)?.unwrap();
        project.settings.parallel_limit = Some(2);
        tx.put_project(&project)?;
        Ok::<_, crate::Error>(())
    })
    .await
    .unwrap();
    let tasks = [w.task(&[], json!({})).await, w.task(&[], json!({})).await, w.task(&[], json!({})).await];
    let first = w.claim().await;
    assert_eq!(first.len(), 2, "the limit holds");
    assert!(w.claim().await.is_empty(), "nothing more while two run");
    w.finish(&first[0].1, RunOk).await;
    let next: Vec<TaskId> = w.claim().await.into_iter().map(|(t, _)| t).collect();
    assert_eq!(next, vec![tasks[2].clone()], "the third once one ended");
}

/// The timers' decisions take the instant to decide at, so they are tested at any
/// instant without waiting for it: a run past its task's timeout, and a launcher
/// silent past its heartbeat timeout.
#[tokio::test]
async fn timeouts_and_silent_launchers_are_decided_at_the_instant_given() {
    use baton_core::time::Timestamp;
    let w = world().await;
    let slow = w.task(&[], json!({ "timeout_s": 60 })).await;
    let open_ended = w.task(&[], json!({})).await;
    let claimed = w.claim().await;
    assert_eq!(claimed.len(), 2);
    for (_, run) in &claimed {
        let (id, launcher) = (run.clone(), w.launcher.clone());
        transact(&w.state, move |tx, _| super::run_started(tx, &id, Some(&launcher), from(json!({ "pid": 4242 }))))
            .await
            .unwrap();
    }
    let slow_run = claimed.iter().find(|(t, _)| *t == slow).unwrap().1.clone();
    let now = Timestamp::now();
    let table = [
        ("within its timeout", now.plus_millis(30_000), 0, vec![]),
        ("past it", now.plus_millis(61_000), 0, vec![(slow_run.clone(), 60)]),
        ("past it, but within the slack", now.plus_millis(61_000), 5_000, vec![]),
        ("an hour on: only the run with a timeout", now.plus_millis(3_600_000), 0, vec![(slow_run.clone(), 60)]),
    ];
    for (name, at, slack, want) in table {
        let got = w.state.store.read(move |r| super::overdue_runs(r, at, slack)).await.unwrap();
        assert_eq!(got, want, "{name}");
    }
    let overdue = vec![(slow_run.clone(), 60)];
    transact(&w.state, move |tx, fx| super::stop_overdue(tx, fx, &overdue)).await.unwrap();
    let id = slow_run.clone();
    let run = w.state.store.read(move |r| r.run(&id)).await.unwrap().unwrap();
    assert_eq!(run.stop_reason.as_deref(), Some("timed out after 60s"), "the launcher is told to stop it");

    // Heartbeats: a cutoff before the launcher was last seen changes nothing; one
    // after it takes the launcher offline and its runs are lost and queued again.
    for (name, cutoff, lost) in
        [("still heard from", now.plus_millis(-60_000), 0), ("silent", now.plus_millis(1_000), 2)]
    {
        let got = transact(&w.state, move |tx, fx| super::expire_silent(tx, fx, cutoff)).await.unwrap();
        assert_eq!(got.iter().map(|(_, n)| *n).sum::<u32>(), lost, "{name}");
    }
    for task in [&slow, &open_ended] {
        assert_eq!(w.status(task).await, Queued, "a lost run's task is queued again");
    }
}

/// A task started by an agent's session with `callback` tells that session when it
/// ends: at once when the session is idle, else once its run ends — a resumed run
/// of the parent, carrying the child's outcome.
#[tokio::test]
async fn a_callback_reaches_the_parent_session_once_it_is_idle() {
    let w = world().await;
    let parent = w.task(&[], json!({})).await;
    let (_, parent_run) = w.claim().await.pop().unwrap();
    let (id, launcher) = (parent_run.clone(), w.launcher.clone());
    transact(&w.state, move |tx, _| super::run_started(tx, &id, Some(&launcher), from(json!({ "pid": 4242 }))))
        .await
        .unwrap();
    let p = parent.clone();
    let session = w.state.store.read(move |r| r.task(&p)).await.unwrap().unwrap().session_id.unwrap();
    let as_parent = Caller { kind: TokenKind::Session, subject: Some(session.to_string()), token_hash: String::new() };
    let req = from(json!({ "agent": "a", "prompt": "help", "callback": true }));
    let config = w.state.config.clone();
    let child =
        transact(&w.state, move |tx, fx| super::create_task(tx, fx, &as_parent, req, &config)).await.unwrap().id;

    // The child ends while the parent still runs: nothing is handed out for the parent yet.
    let claimed = w.run_round(&[(&child, RunOk)]).await;
    assert_eq!(claimed, vec![child.clone()]);
    assert!(w.claim().await.is_empty(), "the parent is busy; its callback waits");
    // The parent's run ends: the callback resumes its session with the child's outcome.
    w.finish(&parent_run, RunOk).await;
    let handed = {
        let (launcher, config) = (w.launcher.clone(), w.state.config.clone());
        transact(&w.state, move |tx, fx| super::claim_runs(tx, fx, &launcher, &config, &HashMap::new())).await.unwrap()
    };
    assert_eq!(handed.len(), 1, "one resumed run of the parent");
    assert_eq!(handed[0].task.id, parent);
    assert_eq!(handed[0].run.session_id, session);
    assert!(handed[0].prompt.contains(child.as_str()), "it names the child: {}", handed[0].prompt);
}
