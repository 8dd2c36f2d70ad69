//! Bad input: each is refused with the JSON error shape and a stable code, and
//! nothing in the database changes.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::Baton;

/// Sends a raw request; the status and the JSON body.
/// The launcher protocol header: this build's, and the one before it.
const P2: [(&str, &str); 1] = [("Baton-Launcher-Protocol", "2")];
const P1: [(&str, &str); 1] = [("Baton-Launcher-Protocol", "1")];

async fn raw(
    b: &Baton,
    method: Method,
    path: &str,
    token: Option<&str>,
    headers: &[(&str, &str)],
    body: Option<&str>,
) -> (u16, Value) {
    let http = reqwest::Client::new();
    let mut req = http.request(method, format!("{}{path}", b.url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body.to_owned());
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

/// What the database holds that requests could change.
async fn snapshot(b: &Baton) -> Value {
    let tasks: Value = b.client.get("/api/tasks").await.unwrap();
    let mut agents: Value = b.client.get("/api/agents").await.unwrap();
    // What launchers found of the agents' programs is news, not a change.
    for a in agents.as_array_mut().unwrap() {
        for key in ["available", "installs", "install_hint"] {
            a.as_object_mut().unwrap().remove(key);
        }
    }
    let projects: Value = b.client.get("/api/projects").await.unwrap();
    let sessions: Value = b.client.get("/api/sessions").await.unwrap();
    json!({ "tasks": tasks, "agents": agents, "projects": projects, "sessions": sessions })
}

/// Asserts the error shape and code.
fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
}

/// Sends a request that must fail with `code`, and checks nothing changed.
async fn refused(b: &Baton, method: Method, path: &str, body: Option<&str>, want_status: u16, want_code: &str) {
    let before = snapshot(b).await;
    let (status, resp) = raw(b, method, path, Some(&b.token), &[], body).await;
    assert_error(status, &resp, want_status, want_code);
    assert_eq!(snapshot(b).await, before, "the database changed");
}

#[tokio::test]
async fn malformed_json_is_refused() {
    let b = Baton::start();
    refused(&b, Method::POST, "/api/tasks", Some("{\"prompt\": \"x\""), 400, "malformed_json").await;
    refused(&b, Method::POST, "/api/tasks", Some("not json"), 400, "malformed_json").await;
}

#[tokio::test]
async fn wrong_types_are_refused() {
    let b = Baton::start();
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"project":"repo","prompt":42}"#), 400, "invalid_body").await;
    refused(
        &b,
        Method::POST,
        "/api/tasks",
        Some(r#"{"project":"repo","prompt":"x","depends_on":"t-1"}"#),
        400,
        "invalid_body",
    )
    .await;
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"project":"repo"}"#), 400, "invalid_body").await;
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"project":"repo","prompt":"x","bogus":1}"#), 400, "invalid_body")
        .await;
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"project":"repo","prompt":"   "}"#), 400, "invalid_argument")
        .await;
    refused(
        &b,
        Method::POST,
        "/api/tasks",
        Some(r#"{"project":"repo","prompt":"x","timeout_s":0}"#),
        400,
        "invalid_argument",
    )
    .await;
}

/// Found by schemathesis: serde reads a struct from an array of its fields, so a
/// lead heartbeat of `[null, null]` was stored.
#[tokio::test]
async fn schemathesis_a_body_given_as_an_array_is_refused() {
    let b = Baton::start();
    refused(&b, Method::POST, "/api/projects/repo/heartbeat", Some("[null, null]"), 400, "invalid_body").await;
    refused(&b, Method::POST, "/api/tasks", Some(r#"["repo", "a prompt"]"#), 400, "invalid_body").await;
    let (status, beats) = raw(&b, Method::GET, "/api/projects/repo/heartbeats", Some(&b.token), &[], None).await;
    assert_eq!((status, beats), (200, json!([])), "a refused heartbeat was stored");
    // A query string of the wrong type is the error shape too (axum's own answer was plain text).
    let (status, resp) = raw(&b, Method::GET, "/api/tasks?limit=many", Some(&b.token), &[], None).await;
    assert_error(status, &resp, 400, "invalid_argument");
}

#[tokio::test]
async fn a_body_that_is_not_json_typed_is_refused() {
    let b = Baton::start();
    let before = snapshot(&b).await;
    let http = reqwest::Client::new();
    let resp = http
        .post(format!("{}/api/tasks", b.url))
        .bearer_auth(&b.token)
        .header("content-type", "text/plain")
        .body(r#"{"project":"repo","prompt":"x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 415);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_media_type");
    assert_eq!(snapshot(&b).await, before);
}

#[tokio::test]
async fn unknown_ids_are_404() {
    let b = Baton::start();
    for path in [
        "/api/tasks/t-0000000000",
        "/api/tasks/zzzz",
        "/api/sessions/s-0000000000",
        "/api/runs/r-0000000000",
        "/api/projects/nope",
        "/api/agents/nope",
        "/api/nothing-here",
    ] {
        let (status, body) = raw(&b, Method::GET, path, Some(&b.token), &[], None).await;
        assert_error(status, &body, 404, "not_found");
    }
    refused(&b, Method::POST, "/api/tasks/t-0000000000/stop", None, 404, "not_found").await;
    refused(&b, Method::POST, "/api/tasks/t-0000000000/retry", None, 404, "not_found").await;
    refused(
        &b,
        Method::POST,
        "/api/tasks",
        Some(r#"{"project":"repo","prompt":"x","depends_on":["t-0000000000"]}"#),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_missing_token_is_401() {
    let b = Baton::start();
    let before = snapshot(&b).await;
    for (method, path, body) in [
        (Method::POST, "/api/tasks", Some(r#"{"project":"repo","prompt":"x"}"#)),
        (Method::GET, "/api/tasks", None),
        (Method::GET, "/api/stream", None),
        (Method::POST, "/api/launchers/register", Some("{}")),
    ] {
        let (status, resp) = raw(&b, method, path, None, &[], body).await;
        assert_error(status, &resp, 401, "unauthorized");
    }
    assert_eq!(snapshot(&b).await, before);
}

#[tokio::test]
async fn a_wrong_token_is_401() {
    let b = Baton::start();
    let before = snapshot(&b).await;
    let (status, resp) =
        raw(&b, Method::POST, "/api/tasks", Some("bta_wrong"), &[], Some(r#"{"project":"repo","prompt":"x"}"#)).await;
    assert_error(status, &resp, 401, "unauthorized");
    let (status, resp) = raw(&b, Method::GET, "/api/tasks", Some(""), &[], None).await;
    assert_error(status, &resp, 401, "unauthorized");
    assert_eq!(snapshot(&b).await, before);
}

#[tokio::test]
async fn a_foreign_origin_is_403() {
    let b = Baton::start();
    let before = snapshot(&b).await;
    let body = Some(r#"{"project":"repo","prompt":"x"}"#);
    let (status, resp) =
        raw(&b, Method::POST, "/api/tasks", Some(&b.token), &[("origin", "https://evil.example")], body).await;
    assert_error(status, &resp, 403, "forbidden_origin");
    let (status, resp) = raw(&b, Method::POST, "/api/tasks", Some(&b.token), &[("host", "evil.example")], body).await;
    assert_error(status, &resp, 403, "forbidden_origin");
    assert_eq!(snapshot(&b).await, before);
    let same_origin = b.url.clone();
    let (status, _) =
        raw(&b, Method::GET, "/api/tasks", Some(&b.token), &[("origin", same_origin.as_str())], None).await;
    assert_eq!(status, 200, "a same-origin request is allowed");
}

#[tokio::test]
async fn an_oversize_body_is_413() {
    let b = Baton::start();
    let big = format!(r#"{{"project":"repo","prompt":"{}"}}"#, "x".repeat(3 * 1024 * 1024));
    refused(&b, Method::POST, "/api/tasks", Some(&big), 413, "payload_too_large").await;
}

#[tokio::test]
async fn unknown_agents_and_executors_are_refused() {
    let b = Baton::start();
    refused(
        &b,
        Method::POST,
        "/api/tasks",
        Some(r#"{"project":"repo","prompt":"x","agent":"nobody"}"#),
        404,
        "not_found",
    )
    .await;
    refused(&b, Method::POST, "/api/agents", Some(r#"{"name":"a","executor":"cobol"}"#), 400, "invalid_body").await;
    refused(
        &b,
        Method::POST,
        "/api/agents",
        Some(r#"{"name":"../a","executor":"command","command":["x"]}"#),
        400,
        "invalid_argument",
    )
    .await;
    // The command executor without a command: two fields that do not go together.
    refused(&b, Method::POST, "/api/agents", Some(r#"{"name":"a","executor":"command"}"#), 422, "invalid_combination")
        .await;
}

#[tokio::test]
async fn a_task_in_an_unknown_project_is_refused() {
    let b = Baton::start();
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"project":"nope","prompt":"x"}"#), 404, "not_found").await;
    // With one project, it is the default; with two, a task must name one.
    let other = crate::harness::git_repo(&b.dir.path().join("other"));
    let _: Value = b.client.post("/api/projects", &json!({ "path": other })).await.unwrap();
    refused(&b, Method::POST, "/api/tasks", Some(r#"{"prompt":"x"}"#), 400, "invalid_argument").await;
}

#[tokio::test]
async fn state_changes_that_are_not_allowed_are_409() {
    let b = Baton::start();
    b.agent("ok", "true").await;
    let id = b.task(json!({ "prompt": "x", "agent": "ok" })).await;
    b.wait_status(&id, baton_core::status::TaskStatus::Succeeded).await;
    for action in ["stop", "retry", "approve"] {
        refused(&b, Method::POST, &format!("/api/tasks/{id}/{action}"), None, 409, "illegal_transition").await;
    }
    refused(
        &b,
        Method::POST,
        "/api/agents",
        Some(r#"{"name":"ok","executor":"command","command":["true"]}"#),
        409,
        "already_exists",
    )
    .await;
}

#[tokio::test]
async fn unknown_methods_are_405() {
    let b = Baton::start();
    let (status, body) = raw(&b, Method::DELETE, "/api/tasks", Some(&b.token), &[], None).await;
    assert_error(status, &body, 405, "method_not_allowed");
}

#[tokio::test]
async fn launcher_reports_for_foreign_runs_and_bad_batches_are_refused() {
    let b = Baton::start_with(&["--no-launcher"]);
    b.agent("slow", "sleep 30").await;
    let id = b.task(json!({ "prompt": "x", "agent": "slow" })).await;
    // A launcher of this test's own, through the real protocol, holds the run.
    let token = b.launcher_token("tester").await;
    let register = r#"{"name":"tester","hostname":"h","version":"0","slots":1,"executors":["command"]}"#;
    // A launcher that names no protocol speaks protocol 1, older than this
    // coordinator works with: refused by name, nothing registered.
    let (status, old) = raw(&b, Method::POST, "/api/launchers/register", Some(&token), &[], Some(register)).await;
    assert_error(status, &old, 426, "upgrade_required");
    assert!(old["error"]["message"].as_str().unwrap().contains("launcher protocol 1"), "{old}");
    let (status, old) = raw(&b, Method::POST, "/api/launchers/register", Some(&token), &P1, Some(register)).await;
    assert_error(status, &old, 426, "upgrade_required");
    let launchers: Vec<Value> = b.client.get("/api/launchers").await.unwrap();
    assert!(launchers.is_empty(), "{launchers:?}");
    let (status, me) = raw(&b, Method::POST, "/api/launchers/register", Some(&token), &P2, Some(register)).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["protocol"], 2, "the coordinator names its protocol: {me}");
    let lid = me["launcher"]["id"].as_str().unwrap().to_owned();
    let (status, work) =
        raw(&b, Method::POST, &format!("/api/launchers/{lid}/poll"), Some(&token), &P2, Some(r#"{"wait_ms":5000}"#))
            .await;
    assert_eq!(status, 200, "{work}");
    let run = work["runs"][0]["run"]["id"].as_str().unwrap().to_owned();
    assert_eq!(work["runs"][0]["task"]["id"], id);
    let before = snapshot(&b).await;
    let send = |body: String, who: String| {
        let (b, run) = (&b, run.clone());
        async move { raw(b, Method::POST, &format!("/api/runs/{run}/events"), Some(&who), &P2, Some(&body)).await }
    };
    let batch = r#"{"from":{"stdout":0,"stderr":0},"to":{"stdout":0,"stderr":0},"events":[{"kind":"task","data":{}}]}"#;
    let (status, body) = send(batch.into(), token.clone()).await;
    assert_error(status, &body, 400, "invalid_argument");
    let backwards = r#"{"from":{"stdout":999999,"stderr":0},"to":{"stdout":999999,"stderr":0},"events":[]}"#;
    let (status, body) = send(backwards.into(), token.clone()).await;
    assert_error(status, &body, 409, "conflict");
    assert!(body["error"]["details"]["offsets"].is_object(), "{body}");
    let huge = format!(
        r#"{{"from":{{"stdout":0,"stderr":0}},"to":{{"stdout":0,"stderr":0}},"events":[{{"kind":"log","data":{{"message":"{}"}}}}]}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let (status, body) = send(huge, token.clone()).await;
    assert_error(status, &body, 413, "payload_too_large");
    // Another launcher's token, the admin's, and none: each refused.
    let other = b.launcher_token("other").await;
    let empty = r#"{"from":{"stdout":0,"stderr":0},"to":{"stdout":0,"stderr":0},"events":[]}"#;
    let (status, body) = send(empty.into(), other).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = send(empty.into(), b.token.clone()).await;
    assert_error(status, &body, 403, "forbidden");
    let (status, body) = raw(&b, Method::POST, &format!("/api/runs/{run}/events"), None, &[], Some(empty)).await;
    assert_error(status, &body, 401, "unauthorized");
    assert_eq!(snapshot(&b).await, before, "nothing changed");
}

#[tokio::test]
async fn a_prompt_template_with_an_unknown_placeholder_is_refused() {
    let b = Baton::start();
    let before = snapshot(&b).await;
    let def = r#"{"name":"typo","executor":"command","command":["true"],"prompt_template":"Do {{taks}}"}"#;
    refused(&b, Method::POST, "/api/agents", Some(def), 400, "invalid_argument").await;
    assert_eq!(snapshot(&b).await, before, "nothing was saved");
}
