//! History that does not slow anything: settled tasks' output archived, read
//! the same before and after, and across a restart (on the suite's store).

use std::time::{Duration, Instant};

use baton_core::event::EventKind;
use baton_core::status::TaskStatus;
use serde_json::json;

use crate::harness::Baton;

/// A gauge's value from `/metrics`.
async fn gauge(b: &Baton, name: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from {text}"))
}

/// Every event of a task through the API, 250 at a time.
async fn paged(b: &Baton, id: &str) -> Vec<baton_core::event::Event> {
    let (mut all, mut after) = (Vec::new(), 0);
    loop {
        let page = b.client.task_events(id, after, 250).await.expect("events");
        match page.last() {
            Some(e) => after = e.id,
            None => return all,
        }
        all.extend(page);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archived_output_reads_the_same_through_logs_and_the_api_across_a_restart() {
    // Output is archived once its task has been settled for 0.00002 days (1.7 s).
    let mut b = Baton::start_with(&["--retain-output-days", "0.00002"]);
    b.agent("printer", "for i in $(seq 1 3000); do echo \"line $i of the printer\"; done; echo \"the end\" >&2").await;
    let id = b.task(json!({ "agent": "printer", "prompt": "print" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let logs = b.cli(&["logs", &id]);
    assert!(logs.status.success());
    let events = b.events(&id).await;
    let printed = events.iter().filter(|e| e.kind == EventKind::Output).count();
    assert!(printed >= 3001, "{printed} lines printed");
    assert_eq!(paged(&b, &id).await, events);

    let started = Instant::now();
    while gauge(&b, "baton_archived_events").await < printed as u64 {
        assert!(started.elapsed() < Duration::from_secs(60), "not archived within 60 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let stored = gauge(&b, "baton_archive_stored_bytes").await;
    assert!(stored > 0 && stored * 4 < gauge(&b, "baton_archive_bytes").await, "compressed: {stored} bytes");
    let same = |b: &Baton| {
        let again = b.cli(&["logs", &id]);
        assert_eq!(String::from_utf8_lossy(&again.stdout), String::from_utf8_lossy(&logs.stdout));
    };
    same(&b);
    assert_eq!(b.events(&id).await, events, "the API reads the archived events as they were");
    assert_eq!(paged(&b, &id).await, events, "and page by page");
    let session = events.iter().find_map(|e| e.session_id.clone()).unwrap();
    let (code, by_session) =
        b.call(reqwest::Method::GET, &format!("/api/sessions/{session}/events?limit=10000"), None).await;
    assert_eq!(code, 200, "{by_session}");
    assert_eq!(
        by_session.as_array().unwrap_or_else(|| panic!("{by_session}")).len(),
        events.iter().filter(|e| e.session_id.is_some()).count()
    );

    b.restart();
    same(&b);
    assert_eq!(b.events(&id).await, events, "across a restart");
    assert_eq!(
        gauge(&b, "baton_archived_events").await,
        printed as u64 + events.iter().filter(|e| e.kind == EventKind::Raw).count() as u64
    );
}

#[tokio::test]
async fn a_finished_tasks_home_is_removed_and_made_again_for_a_resume() {
    let b = Baton::start();
    b.agent("homely", r#"test -f "$HOME/.gitconfig" && echo "home at $HOME""#).await;
    let id = b.task(json!({ "prompt": "x", "agent": "homely" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let home = b.data.join("homes").join(&id);
    assert!(!home.exists(), "{} outlived its run", home.display());
    let out = b.cli(&["resume", &id, "again", "--wait"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!home.exists(), "{} outlived its second run", home.display());
    let said = b.events(&id).await.iter().filter(|e| e.data["line"] == format!("home at {}", home.display())).count();
    assert_eq!(said, 2, "each run had its home, seeded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baton_ps_all_and_list_tasks_follow_pages_past_the_first() {
    let b = Baton::start();
    b.agent("held", "true").await;
    let tasks: Vec<serde_json::Value> =
        (0..1_203).map(|i| json!({ "name": format!("t{i}"), "prompt": "held" })).collect();
    let plan = json!({ "project": "repo", "defaults": { "agent": "held", "approval": "required" }, "tasks": tasks });
    let (code, _) = b.post("/api/plans", plan).await;
    assert_eq!(code, 201);

    let out = b.cli(&["ps", "--all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let mut ids: Vec<&str> = listed.iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 1_203, "every task, past the first page of 1,000");
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 1_203, "none twice");

    // An agent pages with list_tasks: a full page names the next.
    let mut mcp = crate::mcp::Stdio_::start(&b, &b.token);
    let (failed, first) = mcp.tool("list_tasks", json!({ "limit": 500 }));
    assert!(!failed, "{first}");
    let first: serde_json::Value = serde_json::from_str(&first).unwrap();
    let mut seen: Vec<String> = first["tasks"].as_array().unwrap().iter().map(|t| t["id"].to_string()).collect();
    let mut next = first["next"].as_str().map(str::to_owned);
    while let Some(before) = next.take() {
        let (failed, page) = mcp.tool("list_tasks", json!({ "limit": 500, "before": before }));
        assert!(!failed, "{page}");
        let page: serde_json::Value = serde_json::from_str(&page).unwrap();
        let items = page.get("tasks").unwrap_or(&page).as_array().unwrap().clone();
        seen.extend(items.iter().map(|t| t["id"].to_string()));
        next = page["next"].as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 1_203);
}
