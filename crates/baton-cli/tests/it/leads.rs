//! The lead Baton runs for a project: started from its template, kept alive
//! through a killed process (resumed in its session; a fresh session with a
//! handoff when resuming fails), woken once when its plan ends, ended when it
//! says it is done, and one per project across replicas.

use std::path::Path;
use std::time::{Duration, Instant};

use baton_core::model::RunKind;
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::{Baton, processes_of_task};

async fn lead(b: &Baton) -> Value {
    b.client.get("/api/projects/repo/lead").await.unwrap_or_default()
}

/// Waits until the lead's view satisfies `done`, up to `limit`.
async fn lead_until(b: &Baton, limit: Duration, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let l = lead(b).await;
        if done(&l) {
            return l;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}; the lead: {l}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the agent of `task` sleeps.
async fn wait_for_sleeper(task: &str) {
    let cmdline = |p: &i32| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
    for _ in 0..1200 {
        if processes_of_task(task).iter().any(|p| cmdline(p).starts_with("sleep")) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no sleeping process of task {task}");
}

/// Kills the agent of `task` (its shell and the `sleep` it waits on) with
/// SIGKILL, once it sleeps.
async fn kill_sleeper(task: &str) {
    let cmdline = |p: &i32| std::fs::read_to_string(format!("/proc/{p}/cmdline")).unwrap_or_default();
    for _ in 0..1200 {
        let procs = processes_of_task(task);
        if procs.iter().any(|p| cmdline(p).starts_with("sleep")) {
            for pid in procs.into_iter().filter(|p| cmdline(p).starts_with("sh\0") || cmdline(p).starts_with("sleep")) {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            }
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("no sleeping process of task {task}");
}

/// A command lead that writes each prompt it gets to `dir`, fails a resume
/// while `dir/fail-resume` exists, and holds its turn while `dir/hold` exists.
fn holding_lead(dir: &Path) -> String {
    format!(
        r#"n=$(ls {d} | grep -c prompt); printf '%s' "$BATON_PROMPT" > {d}/prompt-$n-$BATON_SESSION_ID;
           if [ "$BATON_RESUME" = 1 ] && [ -f {d}/fail-resume ]; then echo "cannot resume"; exit 1; fi;
           if [ -f {d}/hold ]; then sleep 600; fi; echo rested"#,
        d = dir.display()
    )
}

fn prompts(dir: &Path) -> Vec<(String, String)> {
    let mut found: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().starts_with("prompt-"))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read_to_string(e.path()).unwrap()))
        .collect();
    found.sort_by_key(|(name, _)| name.split('-').nth(1).and_then(|n| n.parse::<u32>().ok()));
    found
}

/// The prompts written to `dir`, once there are at least `count` (the lead's
/// process is known before its script has written its prompt).
async fn prompts_within(dir: &Path, count: usize) -> Vec<(String, String)> {
    for _ in 0..200 {
        let found = prompts(dir);
        if found.len() >= count {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} prompts in {}: {:?}", dir.display(), prompts(dir));
}

#[tokio::test]
async fn a_killed_lead_runs_again_in_its_session_and_a_failed_resume_starts_fresh_with_a_handoff() {
    let b = Baton::start();
    let dir = b.shared("lead");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("hold"), "").unwrap();
    let def = json!({ "name": "captain", "executor": "command", "command": ["sh", "-c", holding_lead(&dir)],
                      "memory": true, "delegates_to": ["*"] });
    b.agent_def(def).await;
    b.agent("hand", "true").await;
    let (s, note) = b.put("/api/agents/captain/memory/notes", json!({ "text": "ship the parser first" })).await;
    assert_eq!(s, 200, "{note}");
    let (s, started) = b.post("/api/projects/repo/lead/start", json!({ "agent": "captain" })).await;
    assert_eq!(s, 200, "{started}");
    let task = started["task_id"].as_str().unwrap().to_owned();
    let session = started["session_id"].as_str().unwrap().to_owned();
    lead_until(&b, Duration::from_secs(10), "working", |l| l["state"] == "working" && l["pid"].is_number()).await;
    let first = prompts_within(&dir, 1).await;
    assert!(first[0].1.contains("You lead project repo"), "the template, rendered: {}", first[0].1);
    assert!(first[0].1.contains("- **hand** (command)"), "with the agents it may lead: {}", first[0].1);
    // Its process killed: running again in the same session, within 30 s.
    let killed = Instant::now();
    kill_sleeper(&task).await;
    let back = lead_until(&b, Duration::from_secs(30), "running again", |l| {
        l["state"] == "working" && l["restarts"] == 1 && l["pid"].is_number()
    })
    .await;
    println!("the lead ran again {:?} after its process was killed", killed.elapsed());
    assert_eq!((back["task_id"].as_str(), back["session_id"].as_str()), (Some(task.as_str()), Some(session.as_str())));
    let t = b.get(&task).await;
    assert_eq!(t.runs.last().unwrap().kind, RunKind::Resume, "resumed, not started again");
    // Resuming fails as well: a fresh session starts, with a handoff in its prompt.
    // (Once the resumed run waits: it reads `fail-resume` as it starts.)
    wait_for_sleeper(&task).await;
    std::fs::write(dir.join("fail-resume"), "").unwrap();
    kill_sleeper(&task).await;
    let fresh = lead_until(&b, Duration::from_secs(30), "a fresh session", |l| {
        l["task_id"].as_str().is_some_and(|t| t != task) && l["state"] == "working"
    })
    .await;
    assert_ne!(fresh["session_id"].as_str(), Some(session.as_str()));
    assert!(fresh["note"].as_str().unwrap().contains("resuming it failed"), "{fresh}");
    let new_session = fresh["session_id"].as_str().unwrap().to_owned();
    let start = Instant::now();
    let last = loop {
        // Its process may not have written its prompt yet.
        if let Some(p) = prompts(&dir).into_iter().find(|(name, _)| name.ends_with(&new_session)) {
            break p;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "no prompt of session {new_session}: {:?}", prompts(&dir));
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(last.1.contains("## Handoff") && last.1.contains("ship the parser first"), "{}", last.1);
    assert_eq!(b.get(&task).await.task.status, TaskStatus::Failed, "the old task stays as it ended");
    let (s, stopped) = b.post("/api/projects/repo/lead/stop", json!({})).await;
    assert_eq!((s, stopped["state"].as_str()), (200, Some("stopped")), "{stopped}");
    let gone = fresh["task_id"].as_str().unwrap().to_owned();
    b.wait_for(&gone, "stopped", |t| t.task.status.is_finished()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lead(&b).await["state"], "stopped", "a stopped lead is not brought back");
}

#[tokio::test]
async fn a_lead_is_woken_once_when_its_plan_ends_says_done_and_stops() {
    let b = Baton::start();
    let dir = b.shared("lead");
    std::fs::create_dir_all(&dir).unwrap();
    let plan = r#"{"name":"wave","callback":true,"tasks":[{"name":"a","prompt":"one","agent":"hand"},{"name":"b","prompt":"two","agent":"hand","depends_on":["a"]}]}"#;
    let script = format!(
        r#"printf '%s' "$BATON_PROMPT" > {d}/turn-$(date +%s%N);
           auth="Authorization: Bearer $BATON_TOKEN";
           if [ "$BATON_RESUME" = 1 ]; then
             curl -s -o /dev/null -w '%{{http_code}}\n' -X POST -H "$auth" "$BATON_URL/api/projects/$BATON_PROJECT_ID/lead/done" >> {d}/done;
           else
             curl -sf -X POST -H "$auth" -H 'content-type: application/json' "$BATON_URL/api/plans" -d '{plan}' > /dev/null;
             curl -s -o /dev/null -w '%{{http_code}}\n' -X POST -H "$auth" "$BATON_URL/api/projects/$BATON_PROJECT_ID/lead/done" >> {d}/done;
           fi"#,
        d = dir.display()
    );
    b.agent_def(
        json!({ "name": "captain", "executor": "command", "command": ["sh", "-c", script], "delegates_to": ["hand"] }),
    )
    .await;
    b.agent("hand", "echo $BATON_TASK_ID > work-$BATON_TASK_ID.txt && git add -A && git commit -qm work").await;
    let (s, started) = b.post("/api/projects/repo/lead/start", json!({ "agent": "captain" })).await;
    assert_eq!(s, 200, "{started}");
    let done = lead_until(&b, Duration::from_secs(30), "done", |l| l["state"] == "done").await;
    let task = done["task_id"].as_str().unwrap();
    let t = b
        .wait_for(task, "its turns end", |t| {
            t.task.status.is_finished() && t.runs.iter().all(|r| r.status.is_finished())
        })
        .await;
    assert_eq!(
        t.runs.len(),
        2,
        "started, then woken once by its plan: {:?}",
        t.runs.iter().map(|r| &r.message).collect::<Vec<_>>()
    );
    assert!(t.runs[1].message.contains("Every task of plan wave has ended"), "{}", t.runs[1].message);
    let codes = std::fs::read_to_string(dir.join("done")).unwrap();
    assert_eq!(codes.lines().collect::<Vec<_>>(), ["409", "200"], "refused while tasks were open, then done");
    let o: Value = b.client.get("/api/projects/repo/orchestrator").await.unwrap();
    assert_eq!(o["lead"]["state"], "done", "{o}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.get(task).await.runs.len(), 2, "a lead that is done is not woken again");
}

#[tokio::test]
async fn the_lead_setting_starts_a_lead_and_bad_lead_settings_change_nothing() {
    let b = Baton::start();
    b.agent_def(json!({ "name": "captain", "executor": "command", "command": ["sh", "-c", "echo planned"], "delegates_to": ["*"] }))
        .await;
    std::fs::create_dir_all(b.repo.join(".baton")).unwrap();
    let reload = |b: &Baton| b.cli(&["project", "reload", "repo"]);
    std::fs::write(b.repo.join(".baton/config.toml"), "lead = \"nobody\"\n").unwrap();
    let out = reload(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("lead = \"nobody\" names no agent"), "{err}");
    std::fs::write(b.repo.join(".baton/lead.md"), "Lead {{PROJECT_NAME}} with {{ROCKETS}}\n").unwrap();
    std::fs::write(b.repo.join(".baton/config.toml"), "lead = \"captain\"\n").unwrap();
    let out = reload(&b);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("{{ROCKETS}}"), "the unknown placeholder is named: {err}");
    let p: Value = b.client.get("/api/projects/repo").await.unwrap();
    assert!(p["settings"]["lead"].is_null(), "nothing changed: {p}");
    let (s, _) = b.post("/api/projects/repo/lead/start", json!({ "agent": "nobody" })).await;
    assert_eq!(s, 404, "an unknown agent");
    std::fs::write(b.repo.join(".baton/lead.md"), "Lead {{PROJECT_NAME}} on {{DEFAULT_BRANCH}}.\n").unwrap();
    let out = reload(&b);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let l = lead_until(&b, Duration::from_secs(15), "started by the setting", |l| l["state"] == "idle").await;
    assert_eq!(l["agent"], "captain");
    let t = b.get(l["task_id"].as_str().unwrap()).await;
    assert_eq!(t.task.prompt, "Lead repo on main.\n", "the project's own template");
    let out = b.cli(&["lead", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("captain") && text.contains("idle"), "{text}");
    let out = b.cli(&["agents", "status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("captain") && text.contains("repo (idle)"), "{text}");
}
