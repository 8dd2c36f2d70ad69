//! What the cockpit (the dashboard as a seat) stands on, through the API: keys
//! that make a request safe to repeat, messages queued while an agent works,
//! a person's review, a file set back to its base, attempts kept, plans checked
//! without being created, agents as Markdown, settings and test deliveries.

use std::time::Duration;

use baton_core::model::{FollowUpState, MergeState};
use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::Baton;

/// POSTs with an `Idempotency-Key`; the status and the JSON answer.
async fn post_keyed(b: &Baton, path: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}{path}", b.url))
        .bearer_auth(&b.token)
        .header("idempotency-key", key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or_default())
}

async fn task_count(b: &Baton) -> usize {
    let (_, tasks) = b.call(reqwest::Method::GET, "/api/tasks", None).await;
    tasks.as_array().unwrap().len()
}

#[tokio::test]
async fn the_same_idempotency_key_creates_one_task_and_answers_the_same() {
    let b = Baton::start();
    b.agent("quick", "true").await;
    let body = json!({ "project": "repo", "prompt": "once", "agent": "quick", "approval": "required" });
    let (s1, first) = post_keyed(&b, "/api/tasks", "key-1", body.clone()).await;
    let (s2, again) = post_keyed(&b, "/api/tasks", "key-1", body.clone()).await;
    assert_eq!((s1, s2), (201, 201), "{first} {again}");
    assert_eq!(first, again, "the first answer, again");
    assert_eq!(task_count(&b).await, 1);
    let other = json!({ "project": "repo", "prompt": "another", "agent": "quick" });
    let (s3, refused) = post_keyed(&b, "/api/tasks", "key-1", other).await;
    assert_eq!(s3, 422, "{refused}");
    assert_eq!(refused["error"]["code"], "idempotency_key_reused");
    assert_eq!(task_count(&b).await, 1, "nothing more was created");
    // Two at once with one key: one task.
    let (a, c) =
        tokio::join!(post_keyed(&b, "/api/tasks", "key-2", body.clone()), post_keyed(&b, "/api/tasks", "key-2", body));
    assert_eq!(a.1["id"], c.1["id"]);
    assert_eq!(task_count(&b).await, 2);
    // Without a key, each request is its own.
    let (s, bad) = post_keyed(&b, "/api/tasks", "", json!({ "project": "repo", "prompt": "x" })).await;
    assert_eq!(s, 400, "an empty key is refused: {bad}");
}

#[tokio::test]
async fn a_message_sent_while_the_agent_works_is_queued_then_delivered_or_withdrawn() {
    let b = Baton::start();
    // Each turn records its prompt; the first turn waits for a file.
    b.agent(
        "talker",
        r#"printf '%s\n---\n' "$BATON_PROMPT" >> turns.txt; [ "$BATON_RESUME" = 1 ] || while [ ! -f go ]; do sleep 0.05; done"#,
    )
    .await;
    let id = b.task(json!({ "prompt": "first", "agent": "talker" })).await;
    let t = b
        .wait_for(&id, "its worktree", |t| t.task.status == TaskStatus::Running && t.task.git.worktree.is_some())
        .await;
    let dir = std::path::PathBuf::from(t.task.git.worktree.clone().unwrap());
    let (s, kept) = b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "also do B" })).await;
    assert_eq!((s, kept["state"].as_str()), (201, Some("queued")), "{kept}");
    let (_, gone) = b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "never mind" })).await;
    let mid = gone["id"].as_str().unwrap();
    let (s, withdrawn) = b.call(reqwest::Method::DELETE, &format!("/api/tasks/{id}/messages/{mid}"), None).await;
    assert_eq!((s, withdrawn["state"].as_str()), (200, Some("withdrawn")), "{withdrawn}");
    std::fs::write(dir.join("go"), "").unwrap();
    let t = b.wait_for(&id, "two turns", |t| t.runs.len() == 2 && t.task.status == TaskStatus::Succeeded).await;
    assert!(t.runs.iter().all(|r| r.session_id == t.runs[0].session_id), "the same session");
    let turns = std::fs::read_to_string(dir.join("turns.txt")).unwrap();
    assert!(turns.contains("also do B"), "{turns}");
    assert!(!turns.contains("never mind"), "a withdrawn message never arrives: {turns}");
    let states: Vec<FollowUpState> = t.task.follow_ups.iter().map(|m| m.state).collect();
    assert_eq!(states, [FollowUpState::Delivered, FollowUpState::Withdrawn]);
    let (s, again) = b.call(reqwest::Method::DELETE, &format!("/api/tasks/{id}/messages/{mid}"), None).await;
    assert_eq!(s, 409, "{again}");
    // Sent to a task at rest: it resumes at once.
    let (_, now) = b.post(&format!("/api/tasks/{id}/messages"), json!({ "text": "and C" })).await;
    assert_eq!(now["state"], "delivered");
    b.wait_for(&id, "a third turn", |t| t.runs.len() == 3 && t.task.status == TaskStatus::Succeeded).await;
}

#[tokio::test]
async fn comments_on_the_diff_reach_the_agent_with_their_files_and_lines() {
    let b = Baton::start();
    b.agent(
        "writer",
        r#"if [ "$BATON_RESUME" = 1 ]; then printf '%s' "$BATON_PROMPT" > prompt.txt; else echo one > a.txt; echo two > b.txt; fi; git add -A && git commit -qm work"#,
    )
    .await;
    let id = b.task(json!({ "prompt": "write", "agent": "writer" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let review = json!({
        "verdict": "changes_requested",
        "comments": [
            { "file": "a.txt", "line": 1, "body": "say one louder" },
            { "file": "b.txt", "line": 1, "body": "two is wrong" }
        ],
        "send": true
    });
    let (s, t) = b.post(&format!("/api/tasks/{id}/review"), review).await;
    assert_eq!(s, 200, "{t}");
    let t = b.wait_for(&id, "the second turn", |t| t.runs.len() == 2 && t.task.status.is_at_rest()).await;
    let prompt = &t.runs[1].message;
    for want in ["a.txt:1", "say one louder", "b.txt:1", "two is wrong"] {
        assert!(prompt.contains(want), "{want} in {prompt}");
    }
    let person = t.task.loops.reviews.iter().find(|r| r.reviewer == "person").unwrap();
    assert_eq!(person.verdict, Some(baton_core::model::Verdict::ChangesRequested));
    // A person's approval counts for a reviewer's gate.
    let (s, _) = b.post(&format!("/api/tasks/{id}/review"), json!({ "verdict": "approve" })).await;
    assert_eq!(s, 200);
    let (s, bad) = b.post(&format!("/api/tasks/{id}/review"), json!({})).await;
    assert_eq!((s, bad["error"]["code"].as_str()), (422, Some("invalid_combination")), "{bad}");
}

#[tokio::test]
async fn a_file_goes_back_to_its_base_on_the_branch() {
    let b = Baton::start();
    b.sh("echo base > keep.txt && git add keep.txt && git commit -qm keep");
    b.agent("editor", "echo changed > keep.txt && echo new > new.txt && git add -A && git commit -qm edit").await;
    let id = b.task(json!({ "prompt": "edit", "agent": "editor" })).await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    let branch = t.task.git.branch.clone().unwrap();
    let (s, after) = b.post(&format!("/api/tasks/{id}/revert"), json!({ "file": "keep.txt" })).await;
    assert_eq!(s, 200, "{after}");
    assert_eq!(b.sh(&format!("git show {branch}:keep.txt")), "base");
    assert_eq!(b.sh(&format!("git show {branch}:new.txt")), "new", "other files keep their changes");
    let wt = t.task.git.worktree.clone().unwrap();
    assert_eq!(std::fs::read_to_string(format!("{wt}/keep.txt")).unwrap().trim(), "base", "the worktree follows");
    assert_eq!(after["git"]["files_changed"], json!(["new.txt"]));
    let (s, again) = b.post(&format!("/api/tasks/{id}/revert"), json!({ "file": "keep.txt" })).await;
    assert_eq!(s, 409, "nothing left to revert: {again}");
    let (s, bad) = b.post(&format!("/api/tasks/{id}/revert"), json!({ "file": "../etc/passwd" })).await;
    assert_eq!(s, 400, "{bad}");
}

#[tokio::test]
async fn three_attempts_and_the_kept_one_lands_alone() {
    let b = Baton::start();
    b.agent("attempt", r#"echo "$BATON_TASK_ID" > "result-$BATON_TASK_ID.txt"; git add -A && git commit -qm attempt"#)
        .await;
    let (s, made) = b
        .post(
            "/api/attempts",
            json!({ "task": { "project": "repo", "prompt": "try", "agent": "attempt" }, "count": 3 }),
        )
        .await;
    assert_eq!(s, 201, "{made}");
    let ids: Vec<String> = made.as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        let t = b.wait_status(id, TaskStatus::Succeeded).await;
        let mut siblings: Vec<String> = t.task.attempts.iter().map(ToString::to_string).collect();
        siblings.sort();
        let mut all = ids.clone();
        all.sort();
        assert_eq!(siblings, all);
    }
    let (s, kept) = b.post(&format!("/api/tasks/{}/keep", ids[1]), json!({})).await;
    assert_eq!(s, 200, "{kept}");
    assert_eq!(kept["task"]["git"]["merge"], "merged");
    let main = b.sh("git ls-tree --name-only main");
    assert!(main.contains(&format!("result-{}.txt", ids[1])), "{main}");
    for other in [&ids[0], &ids[2]] {
        assert!(!main.contains(other.as_str()), "only the kept work lands: {main}");
        let t = b
            .wait_for(other, "its worktree gone", |t| {
                t.task.git.worktree.as_ref().is_none_or(|w| !std::path::Path::new(w).exists())
            })
            .await;
        assert_eq!(t.task.status, TaskStatus::Cancelled);
        assert_ne!(t.task.git.merge, MergeState::Merged);
        let branch = t.task.git.branch.clone().unwrap();
        assert!(!b.sh(&format!("git branch --list {branch}")).is_empty(), "the branch stays");
    }
    let (s, _) = b.post(&format!("/api/tasks/{}/keep", ids[0]), json!({})).await;
    assert_eq!(s, 409, "a cancelled attempt is not kept");
    // One per agent.
    b.agent("other", "true").await;
    let (s, made) = b
        .post("/api/attempts", json!({ "task": { "project": "repo", "prompt": "p" }, "agents": ["attempt", "other"] }))
        .await;
    assert_eq!(s, 201, "{made}");
    let agents: Vec<&str> = made.as_array().unwrap().iter().map(|t| t["agent"].as_str().unwrap()).collect();
    assert_eq!(agents, ["attempt", "other"]);
    let (s, _) = b.post("/api/attempts", json!({ "task": { "project": "repo", "prompt": "p" }, "count": 11 })).await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn a_plan_is_checked_without_being_created() {
    let b = Baton::start();
    b.agent("quick", "true").await;
    let plan = json!({ "tasks": [
        { "name": "a", "prompt": "a", "agent": "quick" },
        { "name": "b", "prompt": "b", "agent": "quick", "depends_on": ["a"] }
    ]});
    let (s, checked) = b.post("/api/plans/check", plan).await;
    assert_eq!(s, 200, "{checked}");
    assert_eq!(checked["tasks"][1]["depends_on"], json!(["a"]));
    assert_eq!(task_count(&b).await, 0, "nothing was created");
    let cycle = json!({ "tasks": [
        { "name": "a", "prompt": "a", "agent": "quick", "depends_on": ["b"] },
        { "name": "b", "prompt": "b", "agent": "quick", "depends_on": ["a"] }
    ]});
    let (s, refused) = b.post("/api/plans/check", cycle).await;
    assert_eq!((s, refused["error"]["code"].as_str()), (422, Some("dependency_cycle")), "{refused}");
    let unknown = json!({ "tasks": [{ "name": "x", "prompt": "x", "agent": "nobody" }] });
    let (s, refused) = b.post("/api/plans/check", unknown).await;
    assert_eq!(s, 404, "{refused}");
    assert_eq!(refused["error"]["details"]["task"], "x", "the task it is about, for its line");
    let yaml = reqwest::Client::new()
        .post(format!("{}/api/plans/check", b.url))
        .bearer_auth(&b.token)
        .header("content-type", "application/yaml")
        .body("tasks:\n  - name: a\n    prompt: [unclosed\n")
        .send()
        .await
        .unwrap();
    assert_eq!(yaml.status(), 400);
    let body: Value = yaml.json().await.unwrap();
    assert!(body["error"]["details"]["line"].as_u64().is_some(), "{body}");
    assert_eq!(task_count(&b).await, 0);
}

#[tokio::test]
async fn agents_round_trip_as_markdown_and_files_are_not_changed_in_place() {
    let b = Baton::start_in(&[], |repo| {
        std::fs::create_dir_all(repo.join(".baton/agents")).unwrap();
        std::fs::write(repo.join(".baton/agents/filed.md"), "---\ncommand: [sh, -c, 'true']\n---\nFrom a file.\n")
            .unwrap();
    });
    let md = "---\nname: written\ndescription: From the page\ncommand: [sh, -c, 'echo hi']\n---\nBe brief.\n";
    let (s, def) = b.call(reqwest::Method::PUT, "/api/agents/written/markdown", Some(json!({ "markdown": md }))).await;
    assert_eq!(s, 200, "{def}");
    assert_eq!(def["system_prompt"], "Be brief.");
    let (_, back) = b.call(reqwest::Method::GET, "/api/agents/written/markdown", None).await;
    assert!(back["markdown"].as_str().unwrap().contains("description: From the page"), "{back}");
    let out = b.cli(&["agents", "--json"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"written\""));
    let (s, refused) = b
        .call(
            reqwest::Method::PUT,
            "/api/agents/filed/markdown",
            Some(json!({ "markdown": md.replace("written", "filed") })),
        )
        .await;
    assert_eq!(s, 409, "{refused}");
    let (s, _) = b.call(reqwest::Method::DELETE, "/api/agents/filed", None).await;
    assert_eq!(s, 409, "a file-backed agent is not deleted in place");
    let (s, _) =
        b.call(reqwest::Method::PUT, "/api/agents/x/markdown", Some(json!({ "markdown": "no front matter" }))).await;
    assert_eq!(s, 422, "front matter is a language of its own: invalid_content");
}

#[tokio::test]
async fn settings_are_written_only_when_they_check_and_a_webhook_gets_its_test() {
    let b = Baton::start();
    let (s, refused) = b
        .call(reqwest::Method::PUT, "/api/projects/repo/config", Some(json!({ "text": "parallel_limit = \"x\"\n" })))
        .await;
    assert_eq!((s, refused["error"]["code"].as_str()), (422, Some("invalid_content")), "{refused}");
    assert_eq!(refused["error"]["details"]["line"], 1);
    assert!(!b.repo.join(".baton/config.toml").exists(), "nothing was written");
    let (s, project) = b
        .call(reqwest::Method::PUT, "/api/projects/repo/config", Some(json!({ "text": "parallel_limit = 3\n" })))
        .await;
    assert_eq!(s, 200, "{project}");
    assert_eq!(project["settings"]["parallel_limit"], 3);
    let (_, config) = b.call(reqwest::Method::GET, "/api/projects/repo/config", None).await;
    assert_eq!(config["text"], "parallel_limit = 3\n");
    let (_, files) = b.call(reqwest::Method::GET, "/api/projects/repo/files?q=READ", None).await;
    assert!(files.as_array().unwrap().iter().any(|f| f == "README.md"), "{files}");
    let (_, branches) = b.call(reqwest::Method::GET, "/api/projects/repo/branches", None).await;
    assert_eq!(branches[0], "main");
    // A webhook's test delivery reaches it.
    let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = std::sync::Arc::clone(&received);
    tokio::spawn(async move {
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |body: String| {
                let got = std::sync::Arc::clone(&got);
                async move {
                    got.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        axum::serve(listener, app).await.unwrap();
    });
    let (s, hook) = b
        .post("/api/webhooks", json!({ "url": format!("http://127.0.0.1:{port}/hook"), "events": ["task.failed"] }))
        .await;
    assert_eq!(s, 201, "{hook}");
    let (s, delivery) = b.post(&format!("/api/webhooks/{}/test", hook["id"].as_str().unwrap()), json!({})).await;
    assert_eq!(s, 201, "{delivery}");
    let start = std::time::Instant::now();
    while received.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(20), "the test delivery never came");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(received.lock().unwrap()[0].contains("webhook.test"));
}

#[tokio::test]
async fn a_task_starts_from_the_base_branch_and_model_it_was_given() {
    let b = Baton::start();
    b.sh("git checkout -qb release && echo r > r.txt && git add r.txt && git commit -qm r && git checkout -q main");
    b.agent("probe", r#"ls > seen.txt; echo "$BATON_PROMPT" > prompt.txt; git add -A && git commit -qm probe"#).await;
    let (s, doc) =
        b.post("/api/docs", json!({ "name": "attachments/t1/notes.txt", "content": "attached words" })).await;
    assert!(s == 200 || s == 201, "{doc}");
    let id = b
        .task(json!({
            "prompt": "look", "agent": "probe", "base": "release", "model": "m-override",
            "attachments": [{ "name": "notes.txt", "doc": "attachments/t1/notes.txt" }]
        }))
        .await;
    let t = b.wait_status(&id, TaskStatus::Succeeded).await;
    assert_eq!(t.task.git.base_branch.as_deref(), Some("release"));
    assert_eq!(t.task.model.as_deref(), Some("m-override"));
    let wt = t.task.git.worktree.clone().unwrap();
    assert!(std::fs::read_to_string(format!("{wt}/seen.txt")).unwrap().contains("r.txt"), "started from release");
    let prompt = std::fs::read_to_string(format!("{wt}/prompt.txt")).unwrap();
    let path = prompt.lines().find(|l| l.contains("notes.txt")).expect("the prompt names the file");
    let path = path.trim_start_matches("- ").split(" (").next().unwrap();
    assert_eq!(std::fs::read_to_string(path).unwrap(), "attached words");
    let (s, refused) = b.post("/api/tasks", json!({ "project": "repo", "prompt": "x", "base": "nope" })).await;
    assert_eq!(s, 404, "a base branch that does not exist: {refused}");
}

#[tokio::test]
async fn lists_page_by_key_and_the_hours_add_up_what_happened() {
    let b = Baton::start();
    b.agent("spender", r#"echo '{"type":"usage","input_tokens":1,"output_tokens":1,"cost_usd":0.25}'"#).await;
    b.agent("failing", "exit 3").await;
    let mut ids = Vec::new();
    for agent in ["spender", "spender", "failing"] {
        ids.push(b.task(json!({ "prompt": "x", "agent": agent })).await);
    }
    for id in &ids {
        b.wait_for(id, "the end", |t| t.task.status.is_at_rest()).await;
    }
    let page = |before: Option<&str>| {
        let url = match before {
            Some(k) => format!("{}/api/tasks?limit=2&before={k}", b.url),
            None => format!("{}/api/tasks?limit=2", b.url),
        };
        let token = b.token.clone();
        async move {
            let resp = reqwest::Client::new().get(url).bearer_auth(token).send().await.unwrap();
            let next = resp.headers().get("baton-next-before").map(|v| v.to_str().unwrap().to_owned());
            let tasks: Vec<Value> = resp.json().await.unwrap();
            (tasks.iter().map(|t| t["id"].as_str().unwrap().to_owned()).collect::<Vec<_>>(), next)
        }
    };
    let (first, next) = page(None).await;
    assert_eq!(first, [ids[2].clone(), ids[1].clone()]);
    let late = b.task(json!({ "prompt": "late", "agent": "spender", "approval": "required" })).await;
    let (second, end) = page(next.as_deref()).await;
    assert_eq!(second, [ids[0].clone()], "the older page, without the task made meanwhile");
    assert_eq!(end, None, "the last page names no next");
    assert!(!second.contains(&late));
    let (_, hours) = b.call(reqwest::Method::GET, "/api/stats/hourly?hours=2", None).await;
    let now = &hours[1];
    assert_eq!(now["finished"]["succeeded"], 2, "{hours}");
    assert_eq!(now["finished"]["failed"], 1, "{hours}");
    let spent: f64 = now["cost_by_agent"]["spender"].as_f64().unwrap();
    assert!((spent - 0.5).abs() < 1e-9, "{hours}");
}
