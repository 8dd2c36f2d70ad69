//! Work that starts by itself: schedules that fire on time, once per due time
//! (across a kill -9 and across replicas), never over an open task unless
//! asked; and incoming webhooks, signed, deduplicated and rate-limited.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::Baton;

async fn tasks_of(b: &Baton, origin: &str) -> Vec<Value> {
    let all: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    let mut mine: Vec<Value> = all.into_iter().filter(|t| t["origin"].as_str() == Some(origin)).collect();
    mine.sort_by_key(|t| t["created_at"].as_str().unwrap_or_default().to_owned());
    mine
}

fn millis(t: &Value) -> i64 {
    baton_core::time::Timestamp::parse_rfc3339(t["created_at"].as_str().unwrap()).unwrap().as_millis()
}

async fn schedule(b: &Baton, body: Value) -> Value {
    let (s, v) = b.post("/api/schedules", body).await;
    assert_eq!(s, 201, "{v}");
    v
}

#[tokio::test]
async fn a_schedule_fires_on_time_and_not_over_its_open_task() {
    let b = Baton::start();
    b.agent("quick", "true").await;
    b.agent("slow", "sleep 4").await;
    let quick =
        schedule(&b, json!({ "project": "repo", "every": "2s", "agent": "quick", "prompt": "tick", "name": "ticks" }))
            .await;
    let slow =
        schedule(&b, json!({ "project": "repo", "every": "1s", "agent": "slow", "prompt": "slow", "name": "slow" }))
            .await;
    tokio::time::sleep(Duration::from_millis(7_300)).await;
    let fired = tasks_of(&b, &format!("schedule {}", quick["id"].as_str().unwrap())).await;
    assert!((3..=4).contains(&fired.len()), "every 2 s for 7 s: {} firings", fired.len());
    for pair in fired.windows(2) {
        let gap = millis(&pair[1]) - millis(&pair[0]);
        assert!((1_500..=2_700).contains(&gap), "fired {gap} ms apart");
    }
    let slow_id = slow["id"].as_str().unwrap();
    let overlapped = tasks_of(&b, &format!("schedule {slow_id}")).await;
    assert!(overlapped.len() <= 2, "a firing waits for the open task: {}", overlapped.len());
    let s: Value = b.client.get(&format!("/api/schedules/{slow_id}")).await.unwrap();
    assert!(s["last_note"].as_str().is_some_and(|n| n.contains("still open")) || overlapped.len() == 2, "{s}");
    // The CLI lists them; bad input changes nothing.
    let out = b.cli(&["schedule", "list"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("ticks"));
    for (body, status) in [
        (json!({ "project": "repo", "cron": "0 25 * * *", "prompt": "x" }), 422),
        (json!({ "project": "repo", "every": "500ms", "prompt": "x" }), 422),
        (json!({ "project": "repo", "every": "1m", "agent": "nobody", "prompt": "x" }), 404),
        (json!({ "project": "repo", "cron": "0 3 * * *", "every": "1m", "prompt": "x" }), 422),
    ] {
        let bad_cron = body["cron"] == "0 25 * * *";
        let (s, v) = b.post("/api/schedules", body).await;
        assert_eq!(s, status, "{v}");
        if bad_cron {
            assert_eq!(
                (v["error"]["details"]["position"].as_u64(), v["error"]["details"]["field"].as_str()),
                (Some(2), Some("hour"))
            );
        }
    }
    let all: Vec<Value> = b.client.get("/api/schedules").await.unwrap();
    assert_eq!(all.len(), 2, "nothing more was made");
}

#[tokio::test]
async fn firings_missed_during_a_kill_9_are_caught_up_once_or_skipped() {
    let mut b = Baton::start();
    b.agent("quick", "true").await;
    let once = schedule(
        &b,
        json!({ "project": "repo", "every": "2s", "agent": "quick", "prompt": "once", "catch_up": "once", "overlap": true }),
    )
    .await;
    // With overlap, a slow start under load cannot hold a due time back (a firing
    // skipped over an open task moves the next one later, which would then be on
    // time at the restart and fire as usual).
    let skip =
        schedule(&b, json!({ "project": "repo", "every": "2s", "agent": "quick", "prompt": "skip", "overlap": true }))
            .await;
    let (once, skip) =
        (format!("schedule {}", once["id"].as_str().unwrap()), format!("schedule {}", skip["id"].as_str().unwrap()));
    let start = Instant::now();
    while tasks_of(&b, &once).await.is_empty() || tasks_of(&b, &skip).await.is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "the first firings");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (before_once, before_skip) = (tasks_of(&b, &once).await.len(), tasks_of(&b, &skip).await.len());
    b.kill9();
    std::thread::sleep(Duration::from_millis(5_500));
    b.restart();
    // The timers move to the restarted coordinator once the dead one's lease ends.
    let start = Instant::now();
    while tasks_of(&b, &once).await.len() == before_once {
        assert!(start.elapsed() < Duration::from_secs(25), "no firing after the restart");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let caught_up = tasks_of(&b, &once).await;
    assert_eq!(caught_up.len(), before_once + 1, "two due times missed: one firing, at once");
    // Skip fires nothing for the missed ones: no task of its at the catch-up's tick
    // (its next due time may have come since, and fired as usual).
    let at = millis(caught_up.last().unwrap());
    let skipped = tasks_of(&b, &skip).await;
    assert!(
        skipped.iter().skip(before_skip).all(|t| (millis(t) - at).abs() > 500),
        "skip: none for the missed ones: {skipped:?} (catch-up at {at})"
    );
    let schedules: Vec<Value> = b.client.get("/api/schedules").await.unwrap();
    let note =
        |o: &str| schedules.iter().find(|s| o.ends_with(s["id"].as_str().unwrap())).unwrap()["last_note"].clone();
    assert!(note(&once).as_str().unwrap().contains("caught up"), "{}", note(&once));
    assert!(note(&skip).as_str().unwrap().contains("missed while Baton was down"), "{}", note(&skip));
}

#[tokio::test]
async fn two_replicas_fire_each_due_time_once() {
    let a = Baton::start_on_postgres(&[]);
    let b = a.replica(&[]);
    a.agent("quick", "true").await;
    let s = schedule(&a, json!({ "project": "repo", "every": "1s", "agent": "quick", "prompt": "tick" })).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let fired = tasks_of(&b, &format!("schedule {}", s["id"].as_str().unwrap())).await;
    assert!(fired.len() >= 4, "{}", fired.len());
    for pair in fired.windows(2) {
        let gap = millis(&pair[1]) - millis(&pair[0]);
        assert!(gap >= 500, "two firings {gap} ms apart: one due time fired twice");
    }
}

/// A delivery signed as Standard Webhooks says.
async fn deliver(b: &Baton, name: &str, secret: &str, id: &str, body: &Value) -> (u16, Value) {
    let bytes = body.to_string();
    let ts = baton_core::time::Timestamp::now().as_millis() / 1000;
    let sig = baton_domain::signature::Secret::parse(secret).unwrap().sign(id, ts, bytes.as_bytes());
    let resp = reqwest::Client::new()
        .post(format!("{}/api/triggers/{name}", b.url))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(bytes)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or_default())
}

#[tokio::test]
async fn a_signed_delivery_starts_a_task_once_within_its_rate() {
    let b = Baton::start();
    b.agent("fixer", "true").await;
    let (s, bad) = b
        .post(
            "/api/triggers",
            json!({ "name": "alerts", "agent": "fixer", "template": "Fix {{payload.title}} {{oops}}" }),
        )
        .await;
    assert_eq!((s, bad["error"]["code"].as_str()), (422, Some("invalid_content")), "{bad}");
    let out = b.cli(&[
        "trigger",
        "add",
        "alerts",
        "--agent",
        "fixer",
        "--template",
        "Fix {{payload.error.title}} at {{payload.error.where}}",
        "--per-hour",
        "2",
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let secret = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(secret.starts_with("whsec_"));
    let alert = json!({ "error": { "title": "TypeError: boom", "where": "app.js:10" } });
    let (s, first) = deliver(&b, "alerts", &secret, "msg_1", &alert).await;
    assert_eq!(s, 201, "{first}");
    let task = first["task"].as_str().unwrap();
    assert_eq!(b.get(task).await.task.prompt, "Fix TypeError: boom at app.js:10");
    let (s, again) = deliver(&b, "alerts", &secret, "msg_1", &alert).await;
    assert_eq!((s, again["task"].as_str()), (200, Some(task)), "the same webhook id: the same task");
    assert_eq!(deliver(&b, "alerts", &secret, "msg_2", &alert).await.0, 201);
    let (s, limited) = deliver(&b, "alerts", &secret, "msg_3", &alert).await;
    assert_eq!((s, limited["error"]["code"].as_str()), (429, Some("rate_limited")), "{limited}");
    assert_eq!(limited["error"]["details"]["limit"], 2);
    let other = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    assert_eq!(deliver(&b, "alerts", other, "msg_4", &alert).await.0, 401, "signed with another secret");
    let unsigned =
        reqwest::Client::new().post(format!("{}/api/triggers/alerts", b.url)).json(&alert).send().await.unwrap();
    assert_eq!(unsigned.status().as_u16(), 401);
    let all: Vec<Value> = b.client.get("/api/tasks").await.unwrap();
    assert_eq!(all.len(), 2, "one task per delivery taken");
}

#[tokio::test]
async fn a_projects_schedules_come_from_its_config() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        let config = "[[schedules]]\nname = \"deps\"\ncron = \"0 3 * * *\"\nprompt = \"Bump the dependencies\"\ncatch_up = \"once\"\n";
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    });
    let all: Vec<Value> = b.client.get("/api/schedules").await.unwrap();
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!((all[0]["name"].as_str(), all[0]["source"].as_str()), (Some("deps"), Some("config")));
    assert!(all[0]["next_at"].as_str().unwrap().ends_with("T03:00:00Z"), "{}", all[0]["next_at"]);
    let id = all[0]["id"].as_str().unwrap();
    let (s, _) = b.call(reqwest::Method::DELETE, &format!("/api/schedules/{id}"), None).await;
    assert_eq!(s, 409, "removed in its config only");
    std::fs::write(
        b.repo.join(".baton/config.toml"),
        "[[schedules]]\nname = \"deps\"\ncron = \"0 99 * * *\"\nprompt = \"x\"\n",
    )
    .unwrap();
    let out = b.cli(&["project", "reload", "repo"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("field 2"), "{err}");
    std::fs::write(b.repo.join(".baton/config.toml"), "").unwrap();
    assert!(b.cli(&["project", "reload", "repo"]).status.success());
    let all: Vec<Value> = b.client.get("/api/schedules").await.unwrap();
    assert!(all.is_empty(), "gone with its config");
}
