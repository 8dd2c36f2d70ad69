//! Webhooks end to end: a real receiver on port 0 checks every signature with
//! the Standard Webhooks algorithm; deliveries are retried with the same id,
//! survive a kill -9 of `baton up` in order, never slow the dispatch of work;
//! one-tap action links act once, on their own task only; bad webhooks are
//! refused with nothing stored.

use std::time::{Duration, Instant};

use baton_core::status::TaskStatus;
use baton_testkit::receiver::{Receiver, verify};
use serde_json::{Value, json};

use crate::harness::Baton;

/// Retries 0.3 s apart instead of 5 s, 30 s, …
const FAST: &[&str] = &["--webhook-retries", "0.3"];

/// Adds a webhook through the CLI; its id and secret.
fn add(b: &Baton, url: &str, events: &str, more: &[&str]) -> (String, String) {
    let mut args = vec!["webhook", "add", url, "--event", events, "--json"];
    args.extend_from_slice(more);
    let out = b.cli(&args);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let made: Value = serde_json::from_slice(&out.stdout).unwrap();
    (made["id"].as_str().unwrap().to_owned(), made["secret"].as_str().unwrap().to_owned())
}

async fn deliveries(b: &Baton, webhook: &str) -> Vec<Value> {
    b.client.get(&format!("/api/webhooks/{webhook}/deliveries")).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_signed_and_a_failing_receiver_gets_the_same_delivery_again() {
    let b = Baton::start_with(FAST);
    let receiver = Receiver::start().await;
    receiver.answer(&[500, 500]);
    let (hook, secret) = add(&b, &receiver.url, "task.failed", &[]);
    b.agent("broken", "echo trying; exit 3").await;
    b.agent("fine", "echo ok").await;
    let fine = b.task(json!({ "prompt": "x", "agent": "fine" })).await;
    b.wait_status(&fine, TaskStatus::Succeeded).await;
    let id = b.task(json!({ "prompt": "x", "agent": "broken", "title": "Break <things> & more" })).await;
    b.wait_status(&id, TaskStatus::Failed).await;

    let got = receiver.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3, "a succeeded task is not told of to a task.failed webhook");
    for r in &got {
        assert!(verify(&secret, r), "each signature verifies: {:?}", r.headers);
        assert_eq!(r.header("webhook-id"), got[0].header("webhook-id"), "the same webhook-id on every try");
        assert_eq!(r.header("content-type"), "application/json");
    }
    let mut forged = got[2].clone();
    forged.body = String::from_utf8(forged.body).unwrap().replace("failed", "succeeded").into_bytes();
    assert!(!verify(&secret, &forged), "a changed body fails verification");
    assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &got[2]), "another secret does not verify");

    let body = got[2].json();
    assert_eq!(body["type"], "task.failed");
    assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
    let task = &body["data"]["task"];
    assert_eq!(task["id"], id.as_str());
    assert_eq!(task["title"], "Break <things> & more");
    assert_eq!(task["status"], "failed");
    assert!(task["reason"].as_str().unwrap().contains("3"), "{task}");
    assert!(task["branch"].as_str().unwrap().starts_with("baton/"), "{task}");
    assert_eq!(task["project"]["name"], "repo");
    assert!(task["cost_usd"].is_number());
    assert_eq!(body["data"]["url"], format!("{}/#/tasks/{id}", b.url));
    let retry = body["data"]["actions"]["retry"].as_str().unwrap();
    assert!(retry.starts_with(&format!("{}/act/{id}/retry/", b.url)), "{retry}");
    assert_eq!(got[0].body, got[2].body, "every try sends the same body");

    // The delivery log shows the three tries.
    let start = Instant::now();
    let log = loop {
        let log = deliveries(&b, &hook).await;
        if log[0]["status"] == "delivered" {
            break log;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(log.len(), 1);
    let statuses: Vec<u64> =
        log[0]["attempts"].as_array().unwrap().iter().map(|a| a["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [500, 500, 200]);
    assert_eq!(log[0]["id"], got[0].header("webhook-id"));
    let listed = String::from_utf8(b.cli(&["webhook", "deliveries", &hook]).stdout).unwrap();
    assert!(listed.contains("task.failed") && listed.contains("delivered"), "{listed}");

    // Sent again by hand: the same id and body.
    let out = b.cli(&["webhook", "redeliver", got[0].header("webhook-id")]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert_eq!(again[3].header("webhook-id"), got[0].header("webhook-id"));
    assert_eq!(again[3].body, got[0].body);
    assert!(verify(&secret, &again[3]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_answers_410_disables_its_webhook() {
    let b = Baton::start_with(FAST);
    let gone = Receiver::start().await;
    gone.answer(&[410]);
    let (hook, _) = add(&b, &gone.url, "*", &[]);
    b.agent("fine", "echo ok").await;
    let id = b.task(json!({ "prompt": "x", "agent": "fine" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    gone.wait_for(1, Duration::from_secs(10)).await;
    let start = Instant::now();
    let shown: Value = loop {
        let shown: Value = b.client.get(&format!("/api/webhooks/{hook}")).await.unwrap();
        if !shown["disabled"].is_null() {
            break shown;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{shown}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(shown["disabled"].as_str().unwrap().contains("410"), "{shown}");
    assert!(shown.get("secret").is_none(), "the secret is shown only when made");
    let second = b.task(json!({ "prompt": "x", "agent": "fine" })).await;
    b.wait_status(&second, TaskStatus::Succeeded).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(gone.received().len(), 1, "a disabled webhook receives nothing more");
    let list = String::from_utf8(b.cli(&["webhook", "list"]).stdout).unwrap();
    assert!(list.contains("410"), "{list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_pending_at_a_kill_9_all_arrive_in_order_after_the_restart() {
    let mut b = Baton::start_with(FAST);
    let mut receiver = Receiver::start().await;
    receiver.stop();
    let (hook, secret) = add(&b, &receiver.url, "task.succeeded", &[]);
    b.agent("fine", "echo ok").await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = b.task(json!({ "prompt": format!("step {n}"), "agent": "fine" })).await;
        b.wait_status(&id, TaskStatus::Succeeded).await;
        ids.push(id);
    }
    // Tried and refused (the receiver is down): pending, in the log.
    let start = Instant::now();
    loop {
        let log = deliveries(&b, &hook).await;
        let tried = log.iter().any(|d| !d["attempts"].as_array().unwrap().is_empty());
        if log.len() == 5 && tried {
            assert!(log.iter().all(|d| d["status"] == "pending"), "{log:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{log:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    b.kill9();
    receiver.start_again().await;
    b.restart();
    receiver.wait_for(5, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got = receiver.received();
    let order: Vec<String> = got.iter().map(|r| r.json()["data"]["task"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(order, ids, "every delivery, once, in the order of the changes");
    assert!(got.iter().all(|r| verify(&secret, r)));
    let log = deliveries(&b, &hook).await;
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
}

/// Create → spawned of `n` tasks, each waited for; the median in ms.
async fn spawn_median(b: &Baton, n: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..n {
        let created = Instant::now();
        let id = b.task(json!({ "prompt": "x", "agent": "fine" })).await;
        b.wait_for(&id, "a run to start", |t| t.task.status != TaskStatus::Queued).await;
        times.push(created.elapsed().as_secs_f64() * 1000.0);
        b.wait_status(&id, TaskStatus::Succeeded).await;
    }
    times.sort_by(f64::total_cmp);
    times[n / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_hangs_does_not_delay_the_dispatch_of_other_tasks() {
    let b = Baton::start_with(&["--webhook-timeout", "60"]);
    b.agent("fine", "echo ok").await;
    let without = spawn_median(&b, 5).await;
    let receiver = Receiver::start().await;
    receiver.delay(Duration::from_secs(60));
    add(&b, &receiver.url, "*", &[]);
    let with = spawn_median(&b, 5).await;
    eprintln!("create → spawned, median of 5: {without:.1} ms without a webhook, {with:.1} ms with one that hangs");
    assert!(!receiver.received().is_empty(), "the hanging receiver was sent a delivery");
    // Dispatch waiting on the receiver would take 60 s per task.
    assert!(with < 5_000.0, "a hanging receiver slowed dispatch: {with:.1} ms (without: {without:.1} ms)");
}

/// The links of the first delivery a receiver got for `task`.
async fn links(receiver: &Receiver, task: &str) -> Value {
    let start = Instant::now();
    loop {
        let found = receiver.received().into_iter().map(|r| r.json()).find(|j| j["data"]["task"]["id"] == task);
        if let Some(j) = found {
            return j["data"]["actions"].clone();
        }
        assert!(start.elapsed() < Duration::from_secs(15), "no delivery for {task}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

async fn open(method: reqwest::Method, url: &str) -> (u16, String) {
    let answer = reqwest::Client::new().request(method, url).send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn action_links_act_once_on_their_own_task_and_a_get_changes_nothing() {
    let b = Baton::start();
    let receiver = Receiver::start().await;
    add(&b, &receiver.url, "task.awaiting_approval", &["--format", "json"]);
    b.agent("fine", "echo ok").await;
    let first = b.task(json!({ "prompt": "x", "agent": "fine", "approval": true, "title": "Ship it" })).await;
    let other = b.task(json!({ "prompt": "y", "agent": "fine", "approval": true })).await;
    let approve = links(&receiver, &first).await["approve"].as_str().unwrap().to_owned();
    let other_stop = links(&receiver, &other).await["stop"].as_str().unwrap().to_owned();

    // A preview fetch changes nothing.
    let (status, page) = open(reqwest::Method::GET, &approve).await;
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Ship it") && page.contains("<form method=\"post\">"), "{page}");
    assert_eq!(b.get(&first).await.task.status, TaskStatus::AwaitingApproval, "a GET does not act");

    // Tampered: another key, or another task's link pointed at this task.
    let mut tampered = approve.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == '0' { '1' } else { '0' });
    assert_eq!(open(reqwest::Method::POST, &tampered).await.0, 403);
    let crossed = other_stop.replace(&other, &first);
    assert_eq!(open(reqwest::Method::POST, &crossed).await.0, 403, "a link for one task cannot act on another");
    let renamed = approve.replace("/approve/", "/stop/");
    assert_eq!(open(reqwest::Method::POST, &renamed).await.0, 403, "nor do another action");
    assert_eq!(b.get(&first).await.task.status, TaskStatus::AwaitingApproval);
    assert_eq!(b.get(&other).await.task.status, TaskStatus::AwaitingApproval);

    // The first use acts; the second is gone.
    let (status, page) = open(reqwest::Method::POST, &approve).await;
    assert_eq!(status, 200, "{page}");
    b.wait_status(&first, TaskStatus::Succeeded).await;
    let (status, page) = open(reqwest::Method::POST, &approve).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("used"), "{page}");
    assert_eq!(open(reqwest::Method::GET, &approve).await.0, 410);
    // The other task's own link still works.
    assert_eq!(open(reqwest::Method::POST, &other_stop).await.0, 200);
    b.wait_status(&other, TaskStatus::Cancelled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_action_link_is_gone() {
    let b = Baton::start_with(&["--action-link-ttl", "1"]);
    let receiver = Receiver::start().await;
    add(&b, &receiver.url, "task.awaiting_approval", &[]);
    b.agent("fine", "echo ok").await;
    let id = b.task(json!({ "prompt": "x", "agent": "fine", "approval": true })).await;
    let approve = links(&receiver, &id).await["approve"].as_str().unwrap().to_owned();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (status, page) = open(reqwest::Method::POST, &approve).await;
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("expired"), "{page}");
    assert_eq!(b.get(&id).await.task.status, TaskStatus::AwaitingApproval, "nothing was done");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_webhooks_are_refused_and_nothing_is_stored() {
    let b = Baton::start();
    let cases = [
        (json!({ "url": "ftp://example.com/x", "events": ["task.failed"] }), "http or https"),
        (json!({ "url": "not a url", "events": ["task.failed"] }), "not a URL"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["task.exploded"] }), "unknown event"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": [] }), "names no event"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["*"], "secret": "hunter2" }), "secret"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["*"], "secret": "whsec_%%%" }), "secret"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["*"], "format": "teams" }), "unknown format"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["*"], "project": "nope" }), "nope"),
        (json!({ "url": "http://127.0.0.1:9/x", "events": ["*"], "colour": "red" }), "colour"),
    ];
    for (body, says) in cases {
        let err = b.client.post::<Value, _>("/api/webhooks", &body).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains(says), "{body}: {text}");
        assert!(err.code().is_some(), "{body}: a stable code");
    }
    let hooks: Vec<Value> = b.client.get("/api/webhooks").await.unwrap();
    assert!(hooks.is_empty(), "nothing stored: {hooks:?}");
    let out = b.cli(&["webhook", "add", "http://127.0.0.1:9/x", "--event", "task.exploded"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("task.failed"), "the error names the known events");

    // An agent's session token may not add one.
    let script = r#"code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' -d '{"url":"http://127.0.0.1:9/x","events":["*"]}' "$BATON_URL/api/webhooks"); echo "add=$code""#;
    b.agent("sneaky", script).await;
    let id = b.task(json!({ "prompt": "x", "agent": "sneaky" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let said: Vec<String> =
        b.events(&id).await.iter().filter_map(|e| e.data["line"].as_str().map(str::to_owned)).collect();
    assert!(said.contains(&"add=403".to_owned()), "{said:?}");
    let hooks: Vec<Value> = b.client.get("/api/webhooks").await.unwrap();
    assert!(hooks.is_empty());
}

/// A receiver's bodies, in order of arrival, once one of them says `last`.
async fn events_until(receiver: &Receiver, last: &str) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let got: Vec<Value> = receiver.received().iter().map(|r| r.json()).collect();
        if got.iter().any(|j| j.to_string().contains(last)) {
            return got;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no {last} among {got:?}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_tells_of_each_tasks_end_of_the_plans_end_of_merges_and_of_conflicts() {
    let b = Baton::start();
    let receiver = Receiver::start().await;
    add(&b, &receiver.url, "*", &["--format", "discord"]);
    add(&b, &receiver.url, "plan.completed", &["--project", "repo"]);
    b.agent("ok", "true").await;
    b.agent("no", "exit 1").await;
    let plan: Value = b
        .client
        .post(
            "/api/plans",
            &json!({ "project": "repo", "name": "release", "tasks": [
                { "name": "a", "prompt": "a", "agent": "ok" },
                { "name": "b", "prompt": "b", "agent": "no" },
                { "name": "c", "prompt": "c", "agent": "ok", "depends_on": ["b"] },
            ]}),
        )
        .await
        .unwrap();
    let got = events_until(&receiver, "\"plan.completed\"").await;
    let finished = got.iter().find(|j| j["type"] == "plan.completed" && j["data"]["plan"].is_object()).unwrap();
    assert_eq!(finished["data"]["plan"]["name"], "release");
    assert_eq!(finished["data"]["plan"]["succeeded"], 1);
    assert_eq!(finished["data"]["plan"]["total"], 3);
    // The discord webhook's messages, one per change (its queue is its own:
    // wait for its last one too).
    let got = events_until(&receiver, "Plan “release” finished").await;
    let lines: Vec<String> = got.iter().filter_map(|j| j["content"].as_str().map(str::to_owned)).collect();
    let id = |n: &str| plan["plan"]["tasks"][n].as_str().unwrap().to_owned();
    for (task, what) in [(id("a"), "succeeded"), (id("b"), "failed"), (id("c"), "is blocked")] {
        assert!(lines.iter().any(|l| l.contains(&task) && l.contains(what)), "{task} {what}: {lines:?}");
    }
    assert!(lines.iter().any(|l| l.contains("Plan “release” finished: 1 of 3")), "{lines:?}");

    // A merge, then two tasks that change one file: the second merge conflicts.
    assert!(b.cli(&["merge", &id("a")]).status.success());
    events_until(&receiver, "was merged into main").await;
    b.agent("one", "echo one > SAME.md && git add -A && git commit -qm one").await;
    b.agent("two", "echo two > SAME.md && git add -A && git commit -qm two").await;
    let one = b.task(json!({ "prompt": "x", "agent": "one" })).await;
    let two = b.task(json!({ "prompt": "x", "agent": "two" })).await;
    b.wait_status(&one, TaskStatus::Succeeded).await;
    b.wait_status(&two, TaskStatus::Succeeded).await;
    assert!(b.cli(&["merge", &one]).status.success());
    assert_eq!(b.cli(&["merge", &two]).status.code(), Some(4));
    events_until(&receiver, "conflicts").await;
    let lines: Vec<String> =
        receiver.received().iter().filter_map(|r| r.json()["content"].as_str().map(str::to_owned)).collect();
    let conflict = lines.iter().find(|l| l.contains("conflicts")).unwrap();
    assert!(conflict.contains(&two), "{conflict}");
    let embeds: Vec<Value> = receiver.received().iter().map(|r| r.json()["embeds"][0].clone()).collect();
    assert!(embeds.iter().any(|e| e["description"].as_str().is_some_and(|d| d.contains("SAME.md"))), "{embeds:?}");
}
