//! The fleet from Slack and Discord, against the testkit's fakes (signing as
//! the services do): mentions that start tasks and threads that resume them,
//! `/baton` commands, buttons under roles, Socket Mode and the Gateway across
//! dropped connections, pacing, and signatures, retries and replays.

use std::time::{Duration, Instant};

use baton_core::status::TaskStatus;
use baton_testkit::discord::{self, FakeDiscord};
use baton_testkit::slack::{self, FakeSlack};
use serde_json::{Value, json};

use crate::harness::Baton;

const SECRET: &str = "slack-signing-secret";
const BOT_TOKEN: &str = "xoxb-fake";

/// Answers each turn with its number, counted in its worktree.
const TALKER: &str = r#"n=$(cat .turns 2>/dev/null || echo 0); n=$((n+1)); echo $n > .turns; echo "{\"type\":\"result\",\"text\":\"turn $n\"}""#;

/// A coordinator whose project talks to the fake Slack in channel C1.
async fn with_slack(extra: &str, env: &[(&str, &str)]) -> (Baton, FakeSlack) {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let config = format!(
        "[chat.slack]\nbot_token_env = \"SLACK_BOT\"\nsigning_secret_env = \"SLACK_SECRET\"\napi_url = \"{}\"\nchannel = \"C1\"\nagent = \"talker\"\nadmins = [\"UA\"]\noperators = [\"U1\"]\nviewers = [\"UV\"]\n{extra}",
        fake.api_url
    );
    let mut all = vec![("SLACK_BOT", BOT_TOKEN), ("SLACK_SECRET", SECRET)];
    all.extend_from_slice(env);
    let b = Baton::start_custom(&[], &all, &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    });
    b.agent("talker", TALKER).await;
    (b, fake)
}

/// Waits until `check` holds on the fake's posts.
async fn until<T>(what: &str, limit: Duration, check: impl Fn() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(start.elapsed() < limit, "{what}: not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn event(b: &Baton, body: &Value, age: i64, retry: Option<u32>) -> (u16, String) {
    slack::send(&b.url, "/api/chat/slack/events", SECRET, "application/json", body.to_string().as_bytes(), age, retry)
        .await
}

async fn tasks(b: &Baton) -> Vec<Value> {
    b.client.get("/api/tasks").await.unwrap()
}

#[tokio::test]
async fn a_slack_mention_starts_a_task_answers_in_its_thread_and_a_reply_resumes_that_session_only() {
    let (b, fake) = with_slack("", &[]).await;
    let challenge = json!({ "type": "url_verification", "challenge": "c-123", "token": "x" });
    let (s, body) = event(&b, &challenge, 0, None).await;
    assert_eq!((s, body.contains("c-123")), (200, true), "{body}");
    // Unsigned, badly signed, and too old: 401, nothing kept.
    let mention = slack::event("Ev1", "C1", "U1", "1700000001.000100", None, "<@UB> count your turns", true);
    let raw =
        reqwest::Client::new().post(format!("{}/api/chat/slack/events", b.url)).json(&mention).send().await.unwrap();
    assert_eq!(raw.status().as_u16(), 401);
    let bad = slack::send(
        &b.url,
        "/api/chat/slack/events",
        "wrong",
        "application/json",
        mention.to_string().as_bytes(),
        0,
        None,
    )
    .await;
    assert_eq!(bad.0, 401, "{}", bad.1);
    assert_eq!(event(&b, &mention, 301, None).await.0, 401, "a timestamp 301 s old");
    assert!(tasks(&b).await.is_empty());
    // The mention: a task, its status and its answer in the mention's thread.
    assert_eq!(event(&b, &mention, 0, None).await.0, 200);
    let answer = until("the answer in the thread", Duration::from_secs(20), || {
        fake.posts().into_iter().find(|p| p.kind == "post" && p.text == "turn 1")
    })
    .await;
    assert_eq!(answer.thread_ts.as_deref(), Some("1700000001.000100"));
    assert_eq!(answer.username.as_deref(), Some("talker"), "posted under the agent's name");
    let all = tasks(&b).await;
    assert_eq!(all.len(), 1);
    let id = all[0]["id"].as_str().unwrap().to_owned();
    // The same event again, as Slack's retry: nothing more.
    assert_eq!(event(&b, &mention, 0, Some(1)).await.0, 200);
    // A reply in the thread: the same session's next turn.
    let reply = slack::event("Ev2", "C1", "U1", "1700000002.000100", Some("1700000001.000100"), "and again", false);
    assert_eq!(event(&b, &reply, 0, None).await.0, 200);
    until("the second answer", Duration::from_secs(20), || fake.posts().into_iter().find(|p| p.text == "turn 2")).await;
    let t = b.get(&id).await;
    assert_eq!(t.runs.len(), 2, "two turns");
    assert!(t.runs.iter().all(|r| r.session_id == t.runs[0].session_id), "of one session");
    assert_eq!(event(&b, &reply, 0, Some(2)).await.0, 200, "a retry of the reply");
    // A reply in a thread Baton does not follow starts nothing.
    let elsewhere = slack::event("Ev3", "C1", "U1", "1700000003.000100", Some("1699999999.000001"), "hello?", false);
    assert_eq!(event(&b, &elsewhere, 0, None).await.0, 200);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(b.get(&id).await.runs.len(), 2, "the retry and the other thread did nothing");
    assert_eq!(tasks(&b).await.len(), 1);
    let status = fake.posts().into_iter().rfind(|p| p.kind == "update").expect("the status message edited");
    assert!(status.text.contains("succeeded"), "{}", status.text);
}

// Multi-threaded: the fake Slack answers while the CLI runs (blocking) at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slash_commands_and_buttons_act_for_their_roles_only_and_once() {
    let (b, fake) = with_slack("", &[]).await;
    let cmd = |user: &str, text: &str, trigger: &str| {
        let form = slack::command("C1", user, text, &fake.response_url(trigger), trigger);
        let url = b.url.clone();
        async move {
            slack::send(
                &url,
                "/api/chat/slack/commands",
                SECRET,
                "application/x-www-form-urlencoded",
                form.as_bytes(),
                0,
                None,
            )
            .await
        }
    };
    let (s, body) = cmd("U1", "run --agent talker count", "trig-1").await;
    assert_eq!(s, 200, "{body}");
    let answer = until("the run's answer in its thread", Duration::from_secs(20), || {
        fake.posts().into_iter().find(|p| p.text == "turn 1")
    })
    .await;
    let root = fake.posts().into_iter().find(|p| p.kind == "post" && p.thread_ts.is_none()).expect("a root message");
    assert_eq!(answer.thread_ts.as_deref(), Some(root.ts.as_str()), "the thread follows the task it started");
    // Unknown commands get the usage; unknown tasks a refusal; no role: refused at once.
    cmd("U1", "dance", "trig-2").await;
    until("the usage", Duration::from_secs(10), || {
        fake.posts().into_iter().find(|p| p.response.as_deref() == Some("trig-2") && p.text.contains("Usage"))
    })
    .await;
    cmd("U1", "approve t-000000000000", "trig-3").await;
    let unknown = until("an unknown task", Duration::from_secs(10), || {
        fake.posts().into_iter().find(|p| p.response.as_deref() == Some("trig-3"))
    })
    .await;
    assert!(unknown.text.contains("t-000000000000"), "{}", unknown.text);
    let (s, refused) = cmd("U0", "run hello", "trig-4").await;
    assert!(s == 200 && refused.contains("no role"), "{refused}");
    // Approve: by a viewer, refused; by an operator, it runs; twice, once.
    let id = b.task(json!({ "prompt": "wait for me", "agent": "talker", "approval": "required" })).await;
    let click = |user: &str, trigger: &str| {
        let form = slack::click("C1", user, "1700000009.000001", "approve", &id, &fake.response_url(trigger), trigger);
        let url = b.url.clone();
        async move {
            slack::send(
                &url,
                "/api/chat/slack/interactions",
                SECRET,
                "application/x-www-form-urlencoded",
                form.as_bytes(),
                0,
                None,
            )
            .await
        }
    };
    click("UV", "press-1").await;
    until("the viewer's refusal", Duration::from_secs(10), || {
        fake.posts()
            .into_iter()
            .find(|p| p.response.as_deref() == Some("press-1") && p.text.contains("Only an operator"))
    })
    .await;
    assert_eq!(b.get(&id).await.task.status, TaskStatus::AwaitingApproval, "unchanged");
    click("U1", "press-2").await;
    click("U1", "press-2").await;
    let edited = until("the message edited", Duration::from_secs(10), || {
        fake.posts().into_iter().find(|p| p.response.as_deref() == Some("press-2"))
    })
    .await;
    assert!(edited.text.contains("approved by <@U1>") && edited.body["replace_original"] == true, "{:?}", edited.body);
    b.wait_status(&id, TaskStatus::Succeeded).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        fake.posts().iter().filter(|p| p.response.as_deref() == Some("press-2")).count(),
        1,
        "one press, one act"
    );
    // `baton chat test` posts and says so; `baton doctor` names the variables this shell lacks.
    let out = b.cli(&["chat", "test"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("ok    slack C1"), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(fake.posts().iter().any(|p| p.text.contains("test message")));
    let out = b.cli(&["doctor"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[chat.slack] bot_token_env: SLACK_BOT is not set"), "{text}");
}

#[tokio::test]
async fn socket_mode_reconnects_with_no_message_lost_or_doubled_and_a_429_is_waited_out() {
    let fake = FakeSlack::start(BOT_TOKEN).await;
    let config = format!(
        "[chat.slack]\nbot_token_env = \"SLACK_BOT\"\napp_token_env = \"SLACK_APP\"\napi_url = \"{}\"\nchannel = \"C1\"\nagent = \"talker\"\noperators = [\"U1\"]\n",
        fake.api_url
    );
    let b = Baton::start_custom(&[], &[("SLACK_BOT", BOT_TOKEN), ("SLACK_APP", "xapp-fake")], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    });
    b.agent("talker", TALKER).await;
    until("a Socket Mode connection", Duration::from_secs(20), || (fake.connections() >= 1).then_some(())).await;
    fake.throttle(1, 1);
    let first = fake.push("events_api", slack::event("Ev1", "C1", "U1", "1700000001.000100", None, "<@UB> one", true));
    let sent = Instant::now();
    until("the first answer", Duration::from_secs(20), || fake.posts().into_iter().find(|p| p.text == "turn 1")).await;
    assert!(sent.elapsed() >= Duration::from_secs(1), "the 429's Retry-After was waited out");
    fake.drop_socket();
    let second = fake.push("events_api", slack::event("Ev2", "C1", "U1", "1700000002.000100", None, "<@UB> two", true));
    until("both acknowledged", Duration::from_secs(30), || {
        let acked = fake.acked();
        (acked.contains(&first) && acked.contains(&second)).then_some(())
    })
    .await;
    assert!(fake.connections() >= 2, "connected again");
    // Slack sending an envelope again (same message) does nothing more.
    fake.push("events_api", slack::event("Ev2-again", "C1", "U1", "1700000002.000100", None, "<@UB> two", true));
    until("two tasks done", Duration::from_secs(20), || {
        let n = fake.posts().iter().filter(|p| p.text == "turn 1").count();
        (n == 2).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(tasks(&b).await.len(), 2, "one task per message, none lost, none doubled");
}

/// A coordinator whose project talks to the fake Discord in channel D1.
async fn with_discord() -> (Baton, FakeDiscord) {
    let fake = FakeDiscord::start("discord-bot").await;
    let config = format!(
        "[chat.discord]\nbot_token_env = \"DISCORD_BOT\"\npublic_key = \"{}\"\napplication_id = \"app1\"\napi_url = \"{}\"\ngateway_url = \"{}\"\nchannel = \"D1\"\nagent = \"talker\"\noperators = [\"U1\"]\nviewers = [\"UV\"]\n",
        fake.public_key, fake.api_url, fake.gateway_url
    );
    let b = Baton::start_custom(&[], &[("DISCORD_BOT", "discord-bot")], &[], |repo| {
        std::fs::create_dir_all(repo.join(".baton")).unwrap();
        std::fs::write(repo.join(".baton/config.toml"), config).unwrap();
    });
    b.agent("talker", TALKER).await;
    (b, fake)
}

#[tokio::test]
async fn discord_interactions_are_verified_commands_and_buttons_act_and_the_gateway_resumes() {
    let (b, fake) = with_discord().await;
    let url = format!("{}/api/chat/discord/interactions", b.url);
    let (s, _) = fake.interact(&url, &json!({ "type": 1 }), true).await;
    assert_eq!(s, 401, "a bad signature");
    let (s, pong) = fake.interact(&url, &json!({ "type": 1 }), false).await;
    assert_eq!((s, pong), (200, json!({ "type": 1 })));
    // /baton run: deferred, then a thread with the status and the answer, under the agent's name.
    let (s, deferred) =
        fake.interact(&url, &discord::command("i1", "D1", "U1", "run", &[("prompt", "count")]), false).await;
    assert_eq!((s, deferred["type"].as_u64()), (200, Some(5)));
    let answer = until("the answer in a thread", Duration::from_secs(20), || {
        fake.messages().into_iter().find(|m| m.kind == "webhook" && m.content == "turn 1")
    })
    .await;
    assert_eq!(answer.username.as_deref(), Some("talker"));
    assert!(fake.threads().iter().any(|(t, _)| *t == answer.channel), "in a thread Baton made");
    // A button by a user with no role: refused at once; by an operator: approved, the message updated.
    let id = b.task(json!({ "prompt": "wait", "agent": "talker", "approval": "required" })).await;
    let (_, refused) =
        fake.interact(&url, &discord::button("i2", "D1", "U0", "m1", &format!("approve:{id}")), false).await;
    assert_eq!(refused["data"]["flags"], 64, "only they see it: {refused}");
    let (s, update) =
        fake.interact(&url, &discord::button("i3", "D1", "U1", "m1", &format!("approve:{id}")), false).await;
    assert_eq!((s, update["type"].as_u64()), (200, Some(6)));
    fake.interact(&url, &discord::button("i3", "D1", "U1", "m1", &format!("approve:{id}")), false).await;
    let edited = until("the message edited", Duration::from_secs(10), || {
        fake.messages().into_iter().find(|m| m.kind == "original" && m.id == "itoken-i3")
    })
    .await;
    assert!(edited.content.contains("approved by <@U1>"), "{}", edited.content);
    b.wait_status(&id, TaskStatus::Succeeded).await;
    // The Gateway: a mention starts a task in a thread; a reply there, sent
    // while the connection is down, arrives once after the resume.
    until("the Gateway's ready", Duration::from_secs(20), || (fake.sessions().0 >= 1).then_some(())).await;
    fake.say("D1", "U1", "count again", true);
    let first = until("the mention's answer", Duration::from_secs(20), || {
        fake.messages().into_iter().filter(|m| m.kind == "webhook" && m.content == "turn 1").nth(1)
    })
    .await;
    fake.drop_gateway();
    tokio::time::sleep(Duration::from_millis(200)).await;
    fake.say(&first.channel, "U1", "and again", false);
    until("the reply's answer after the resume", Duration::from_secs(30), || {
        fake.messages().into_iter().find(|m| m.kind == "webhook" && m.content == "turn 2" && m.channel == first.channel)
    })
    .await;
    assert!(fake.sessions().1 >= 1, "resumed, not identified again: {:?}", fake.sessions());
    tokio::time::sleep(Duration::from_secs(1)).await;
    let turns: Vec<_> = fake.messages().into_iter().filter(|m| m.content == "turn 2").collect();
    assert_eq!(turns.len(), 1, "the reply acted once");
}

#[tokio::test]
async fn a_mention_acknowledged_just_before_a_kill_9_is_acted_on_once_after_the_restart() {
    let (mut b, fake) = with_slack("", &[]).await;
    let mention = slack::event("Ev1", "C1", "U1", "1700000001.000100", None, "<@UB> count", true);
    assert_eq!(event(&b, &mention, 0, None).await.0, 200, "acknowledged: it is kept");
    b.kill9();
    b.restart();
    // Slack retries it too, after the restart: still once.
    assert_eq!(event(&b, &mention, 0, Some(1)).await.0, 200);
    until("the answer", Duration::from_secs(30), || fake.posts().into_iter().find(|p| p.text == "turn 1")).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(tasks(&b).await.len(), 1, "acted on once");
    assert_eq!(fake.posts().iter().filter(|p| p.text == "turn 1").count(), 1);
}
