//! A fake GitLab for tests: one project through the parts of GitLab's REST
//! API (v4) Baton uses — merge requests (open, read, merge, refused while
//! approvals are missing), pipelines and their jobs' traces, issues, notes,
//! award emoji and members — with the token in `PRIVATE-TOKEN`, and the
//! webhook payloads GitLab would send, which [`send_hook`] delivers with its
//! `X-Gitlab-Token`.
//!
//! Given a bare repository, a merge request's `sha` is its source branch's
//! head there (read at each request, so a push shows).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

/// The project's numeric id on the fake.
pub const PROJECT_ID: u64 = 42;

#[derive(Default)]
struct Inner {
    mrs: Vec<Value>,
    pipelines: Vec<Value>,
    jobs: Vec<Value>,
    notes: Vec<Value>,
    awards: Vec<String>,
    members: Vec<(u64, u64)>,
    approvals_missing: bool,
    next_id: u64,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    path: String,
    token: String,
    bare: Option<PathBuf>,
    url: Arc<Mutex<String>>,
}

/// A running fake GitLab, stopped when dropped.
pub struct FakeGitLab {
    /// Its API root, standing in for `https://gitlab.com/api/v4`.
    pub api_url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeGitLab {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn next(i: &mut Inner) -> u64 {
    i.next_id += 1;
    i.next_id
}

impl FakeGitLab {
    /// Starts on 127.0.0.1:0 serving project `path` (`group/name`), accepting
    /// `token`, reading branches from `bare` when given.
    pub async fn start(path: &str, token: &str, bare: Option<PathBuf>) -> FakeGitLab {
        let shared =
            Shared { inner: Arc::default(), path: path.to_owned(), token: token.to_owned(), bare, url: Arc::default() };
        let app = Router::new()
            .route("/api/v4/projects/{id}/merge_requests", post(create_mr))
            .route("/api/v4/projects/{id}/merge_requests/{iid}", get(read_mr))
            .route("/api/v4/projects/{id}/merge_requests/{iid}/merge", put(merge_mr))
            .route("/api/v4/projects/{id}/pipelines", get(pipelines))
            .route("/api/v4/projects/{id}/pipelines/{pid}/jobs", get(jobs))
            .route("/api/v4/projects/{id}/jobs/{job}/trace", get(trace))
            .route("/api/v4/projects/{id}/members/all/{user}", get(member))
            .route("/api/v4/projects/{id}/issues/{iid}/notes", get(notes).post(add_note))
            .route("/api/v4/projects/{id}/issues/{iid}/award_emoji", post(award))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        *shared.url.lock().expect("url") = url.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeGitLab { api_url: format!("{url}/api/v4"), shared, server }
    }

    /// The merge requests, in iid order.
    pub fn merge_requests(&self) -> Vec<Value> {
        let s = &self.shared;
        let i = s.inner.lock().expect("lock");
        i.mrs.iter().map(|m| refreshed(s, m)).collect()
    }

    /// Merges are refused (405) while approvals are missing.
    pub fn require_approvals(&self, missing: bool) {
        self.shared.inner.lock().expect("lock").approvals_missing = missing;
    }

    /// A user who may push (access level 30, Developer).
    pub fn add_member(&self, user: u64) {
        self.shared.inner.lock().expect("lock").members.push((user, 30));
    }

    /// A finished pipeline for `sha` with `jobs` (name, status, trace); its id.
    pub fn add_pipeline(&self, sha: &str, status: &str, jobs: &[(&str, &str, &str)]) -> u64 {
        let mut i = self.shared.inner.lock().expect("lock");
        let pid = next(&mut i);
        i.pipelines.push(json!({ "id": pid, "sha": sha, "status": status }));
        for (name, st, trace) in jobs {
            let jid = next(&mut i);
            i.jobs.push(json!({ "id": jid, "pipeline_id": pid, "name": name, "status": st, "trace": trace }));
        }
        pid
    }

    /// The `Pipeline Hook` payload GitLab would send for pipeline `pid`.
    pub fn pipeline_event(&self, pid: u64) -> Value {
        let i = self.shared.inner.lock().expect("lock");
        let p = i.pipelines.iter().find(|p| p["id"] == pid).cloned().expect("a pipeline");
        let builds: Vec<Value> = i
            .jobs
            .iter()
            .filter(|j| j["pipeline_id"] == pid)
            .map(|j| json!({ "id": j["id"], "name": j["name"], "status": j["status"] }))
            .collect();
        let mr =
            i.mrs.iter().find(|m| refreshed(&self.shared, m)["sha"] == p["sha"]).map(|m| json!({ "iid": m["iid"] }));
        json!({ "object_kind": "pipeline", "object_attributes": { "id": pid, "sha": p["sha"], "status": p["status"] },
            "merge_request": mr, "builds": builds, "project": self.project_json() })
    }

    /// Merges merge request `iid` on GitLab's side (as a person would).
    pub fn merge_on_gitlab(&self, iid: u64) {
        let mut i = self.shared.inner.lock().expect("lock");
        if let Some(m) = i.mrs.iter_mut().find(|m| m["iid"] == iid) {
            m["state"] = json!("merged");
            m["merge_commit_sha"] = json!("f".repeat(40));
        }
    }

    /// The `Merge Request Hook` payload for `iid` with `action` (`merge`, `close`).
    pub fn merge_request_event(&self, iid: u64, action: &str) -> Value {
        let i = self.shared.inner.lock().expect("lock");
        let m = i.mrs.iter().find(|m| m["iid"] == iid).map(|m| refreshed(&self.shared, m)).expect("a merge request");
        let mut attrs = m.clone();
        attrs["action"] = json!(action);
        json!({ "object_kind": "merge_request", "object_attributes": attrs, "project": self.project_json() })
    }

    fn project_json(&self) -> Value {
        json!({ "id": PROJECT_ID, "path_with_namespace": self.shared.path })
    }
}

/// Sends a webhook payload to Baton as GitLab would; the status and body.
pub async fn send_hook(url: &str, token: &str, event: &str, payload: &Value) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(url)
        .header("x-gitlab-event", event)
        .header("x-gitlab-token", token)
        .json(payload)
        .send()
        .await
        .expect("send to Baton");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

/// A merge request with its `sha` read from the bare repository.
fn refreshed(s: &Shared, m: &Value) -> Value {
    let mut m = m.clone();
    if let (Some(bare), Some(branch)) = (&s.bare, m["source_branch"].as_str()) {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(bare)
            .args(["rev-parse", &format!("refs/heads/{branch}")])
            .output();
        if let Ok(o) = out
            && o.status.success()
        {
            m["sha"] = json!(String::from_utf8_lossy(&o.stdout).trim());
        }
    }
    m
}

/// Whether the request names the project and carries the token.
fn allowed(s: &Shared, id: &str, headers: &HeaderMap) -> Result<(), Box<Response>> {
    let token = headers.get("private-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
    if token != s.token {
        return Err(Box::new(
            (StatusCode::UNAUTHORIZED, axum::Json(json!({ "message": "401 Unauthorized" }))).into_response(),
        ));
    }
    if id != s.path && id != PROJECT_ID.to_string() {
        return Err(Box::new(
            (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "404 Project Not Found" }))).into_response(),
        ));
    }
    Ok(())
}

async fn create_mr(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let url = s.url.lock().expect("url").clone();
    let mut i = s.inner.lock().expect("lock");
    if i.mrs.iter().any(|m| m["state"] == "opened" && m["source_branch"] == body["source_branch"]) {
        return (
            StatusCode::CONFLICT,
            axum::Json(json!({ "message": ["Another open merge request already exists for this source branch"] })),
        )
            .into_response();
    }
    let iid = i.mrs.len() as u64 + 1;
    let id = next(&mut i);
    let mr = json!({ "id": id, "iid": iid, "project_id": PROJECT_ID, "title": body["title"], "description": body["description"],
        "state": "opened", "source_branch": body["source_branch"], "target_branch": body["target_branch"],
        "web_url": format!("{url}/{}/-/merge_requests/{iid}", s.path), "sha": Value::Null, "merge_commit_sha": Value::Null });
    i.mrs.push(mr.clone());
    drop(i);
    (StatusCode::CREATED, axum::Json(refreshed(&s, &mr))).into_response()
}

async fn read_mr(State(s): State<Shared>, Path((id, iid)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    match i.mrs.iter().find(|m| m["iid"] == iid) {
        Some(m) => axum::Json(refreshed(&s, m)).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "404 Not found" }))).into_response(),
    }
}

async fn merge_mr(State(s): State<Shared>, Path((id, iid)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let mut i = s.inner.lock().expect("lock");
    if i.approvals_missing {
        return (StatusCode::METHOD_NOT_ALLOWED, axum::Json(json!({ "message": "405 Method Not Allowed" })))
            .into_response();
    }
    let Some(m) = i.mrs.iter_mut().find(|m| m["iid"] == iid) else {
        return (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "404 Not found" }))).into_response();
    };
    m["state"] = json!("merged");
    m["merge_commit_sha"] = json!("e".repeat(40));
    axum::Json(m.clone()).into_response()
}

async fn pipelines(
    State(s): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    let sha = q.get("sha").cloned().unwrap_or_default();
    let mut list: Vec<Value> = i.pipelines.iter().filter(|p| p["sha"] == sha.as_str()).cloned().collect();
    list.reverse();
    axum::Json(list).into_response()
}

async fn jobs(State(s): State<Shared>, Path((id, pid)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    let list: Vec<Value> = i
        .jobs
        .iter()
        .filter(|j| j["pipeline_id"] == pid)
        .map(|j| json!({ "id": j["id"], "name": j["name"], "status": j["status"] }))
        .collect();
    axum::Json(list).into_response()
}

async fn trace(State(s): State<Shared>, Path((id, job)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    match i.jobs.iter().find(|j| j["id"] == job) {
        Some(j) => j["trace"].as_str().unwrap_or_default().to_owned().into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn member(State(s): State<Shared>, Path((id, user)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    match i.members.iter().find(|(u, _)| *u == user) {
        Some((u, level)) => axum::Json(json!({ "id": u, "access_level": level })).into_response(),
        None => (StatusCode::NOT_FOUND, axum::Json(json!({ "message": "404 Not found" }))).into_response(),
    }
}

async fn notes(State(s): State<Shared>, Path((id, iid)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let i = s.inner.lock().expect("lock");
    let list: Vec<Value> = i.notes.iter().filter(|n| n["noteable_iid"] == iid).cloned().collect();
    axum::Json(list).into_response()
}

async fn add_note(
    State(s): State<Shared>,
    Path((id, iid)): Path<(String, u64)>,
    headers: HeaderMap,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    let mut i = s.inner.lock().expect("lock");
    let nid = next(&mut i);
    let note = json!({ "id": nid, "noteable_iid": iid, "body": body["body"], "system": false, "author": { "username": "baton-bot" } });
    i.notes.push(note.clone());
    (StatusCode::CREATED, axum::Json(note)).into_response()
}

async fn award(State(s): State<Shared>, Path((id, iid)): Path<(String, u64)>, headers: HeaderMap) -> Response {
    if let Err(r) = allowed(&s, &id, &headers) {
        return *r;
    }
    s.inner.lock().expect("lock").awards.push(format!("issues/{iid}"));
    (StatusCode::CREATED, axum::Json(json!({ "name": "eyes" }))).into_response()
}
