//! [`Client`]: typed calls to the coordinator.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use baton_core::api::{
    AgentInfo, AttachRequest, AttachResponse, BatchAck, CreateProject, CreateTask, DocDetail, DocEntry, ErrorBody,
    ErrorCode, EventBatch, Heartbeat, PollRequest, PollResponse, PoolInfo, PushDoc, RegisterLauncher, Registered,
    ResumeTask, RunFinished, RunStarted, StopTask, TaskDetail,
};
use baton_core::event::Event;
use baton_core::ids::{LauncherId, RunId};
use baton_core::model::{Launcher, Project, Run, Session, Task};
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::sse::EventStream;

/// A call to the coordinator that failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The coordinator could not be reached.
    #[error("cannot reach the coordinator at {url}")]
    Connect {
        /// Where it was expected.
        url: String,
        /// Why.
        #[source]
        source: reqwest::Error,
    },
    /// The coordinator answered with an error.
    #[error("{message} ({code})")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable code.
        code: ErrorCode,
        /// The coordinator's message.
        message: String,
        /// Its details.
        details: Option<Value>,
    },
    /// A CA file to trust could not be used.
    #[error("cannot use the CA certificates in {path}")]
    Ca {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The answer could not be read.
    #[error("unexpected answer from the coordinator ({status})")]
    Decode {
        /// The HTTP status.
        status: u16,
        /// Why it could not be read.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The exchange failed midway.
    #[error("error talking to the coordinator")]
    Http(#[source] reqwest::Error),
    /// The URL is not usable.
    #[error("invalid coordinator URL {0:?}")]
    BadUrl(String),
}

impl ClientError {
    /// The API error code, when the coordinator answered with one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }
}

static TLS: Once = Once::new();

/// A client of a coordinator, or of several replicas sharing one store: calls go
/// to one URL until it cannot be reached, then to the next.
#[derive(Clone, Debug)]
pub struct Client {
    /// The HTTP client (connection pool).
    http: reqwest::Client,
    /// The coordinators' URLs, without trailing slashes.
    bases: Arc<[String]>,
    /// Which of them calls go to now.
    current: Arc<AtomicUsize>,
    /// The bearer token.
    token: Option<String>,
}

impl Client {
    /// A client of the coordinator at `base` (like `http://127.0.0.1:7070`), or
    /// of the replicas at a comma-separated list of URLs.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        Self::with_ca(base, token, None)
    }

    /// The same, trusting the CA certificates in the PEM file `ca` too (a
    /// coordinator whose certificate a private CA signed).
    pub fn with_ca(base: &str, token: Option<String>, ca: Option<&std::path::Path>) -> Result<Self, ClientError> {
        TLS.call_once(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
        });
        let bases: Vec<String> =
            base.split(',').map(|b| b.trim().trim_end_matches('/').to_owned()).filter(|b| !b.is_empty()).collect();
        if bases.is_empty() {
            return Err(ClientError::BadUrl(base.to_owned()));
        }
        if let Some(bad) = bases.iter().find(|b| !(b.starts_with("http://") || b.starts_with("https://"))) {
            return Err(ClientError::BadUrl(bad.clone()));
        }
        let plain = bases.iter().all(|b| b.starts_with("http://"));
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .no_proxy();
        if plain {
            // Plain HTTP never verifies a certificate: skip loading the system's
            // (hundreds of files parsed, megabytes kept, on every command).
            let tls = rustls::ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth();
            builder = builder.tls_backend_preconfigured(tls);
        }
        if let Some(ca) = ca {
            let pem = std::fs::read(ca).map_err(|e| ClientError::Ca { path: ca.to_owned(), source: Box::new(e) })?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| ClientError::Ca { path: ca.to_owned(), source: Box::new(e) })?;
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(ClientError::Http)?;
        Ok(Self { http, bases: bases.into(), current: Arc::default(), token })
    }

    /// The same coordinators and connection pool, with another token.
    pub fn with_token(&self, token: Option<String>) -> Self {
        Self { http: self.http.clone(), bases: self.bases.clone(), current: self.current.clone(), token }
    }

    /// The URL calls go to now.
    pub fn base(&self) -> String {
        let i = self.current.load(Ordering::Relaxed) % self.bases.len();
        self.bases[i].clone()
    }

    /// Every URL, the one calls go to now first.
    pub fn bases(&self) -> Vec<String> {
        let n = self.bases.len();
        let first = self.current.load(Ordering::Relaxed) % n;
        (0..n).map(|i| self.bases[(first + i) % n].clone()).collect()
    }

    /// A request builder for `path` (starting with `/`), with the token.
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self.http.request(method, format!("{}{}", self.base(), path));
        // Every request names the launcher protocol: a launcher's are refused by a
        // coordinator that needs a newer one, and the header costs others nothing.
        req = req.header(baton_core::api::LAUNCHER_PROTOCOL_HEADER, baton_core::api::LAUNCHER_PROTOCOL);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        req
    }

    async fn send<T: DeserializeOwned>(&self, req: reqwest::RequestBuilder) -> Result<T, ClientError> {
        let response = req.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let body: &[u8] = if bytes.is_empty() { b"null" } else { &bytes };
        serde_json::from_slice(body).map_err(|e| ClientError::Decode { status: status.as_u16(), source: Box::new(e) })
    }

    /// Maps a failed exchange; the next call goes to the next URL (the replica
    /// this one went to may have died).
    fn transport(&self, e: reqwest::Error) -> ClientError {
        let used = e.url().map(|u| u.as_str().to_owned()).unwrap_or_default();
        if self.bases.len() > 1 {
            let now = self.current.load(Ordering::Relaxed);
            // Only if no other call has moved on already.
            if used.starts_with(&self.bases[now % self.bases.len()]) {
                let _ = self.current.compare_exchange(
                    now,
                    (now + 1) % self.bases.len(),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                );
            }
        }
        if e.is_connect() || e.is_timeout() {
            let url = self.bases.iter().find(|b| used.starts_with(b.as_str())).cloned().unwrap_or(used);
            ClientError::Connect { url, source: e }
        } else {
            ClientError::Http(e)
        }
    }

    /// `GET path`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.send(self.request(Method::GET, path)).await
    }

    /// `POST path` with a JSON body.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    /// `POST path` with a JSON body and an `Idempotency-Key`: sent again with
    /// the same key, the coordinator answers as it did the first time and
    /// changes nothing more. So a request whose answer was lost (the
    /// connection dropped after it was sent) or that met a coordinator busy
    /// restarting (503) is sent again, with the same key, a few times.
    pub async fn post_once<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        key: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let mut pause = Duration::from_millis(200);
        for attempt in 0.. {
            let sent = self.send(self.request(Method::POST, path).header("Idempotency-Key", key).json(body)).await;
            let again = match &sent {
                Err(ClientError::Http(_) | ClientError::Connect { .. }) => true,
                Err(ClientError::Api { status, .. }) => *status == 503,
                _ => false,
            };
            if !again || attempt >= RETRIES {
                return sent;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(3));
        }
        unreachable!("the loop returns")
    }

    /// `POST path` with a fresh `Idempotency-Key`, sent again with it when the
    /// answer is lost (see [`Client::post_once`]).
    pub async fn post_safely<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.post_once(path, &new_key(), body).await
    }

    /// `PUT path` with a JSON body.
    pub async fn put<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(self.request(Method::PUT, path).json(body)).await
    }

    /// `DELETE path`.
    pub async fn delete(&self, path: &str) -> Result<(), ClientError> {
        self.send::<Value>(self.request(Method::DELETE, path)).await.map(|_| ())
    }

    /// The live event stream from position `after` (the present when `None`),
    /// optionally limited by `query` (`task=...&kinds=...`).
    pub async fn stream(&self, after: Option<i64>, query: &str) -> Result<EventStream, ClientError> {
        let mut path = String::from("/api/stream?");
        if let Some(after) = after {
            path.push_str(&format!("after={after}&"));
        }
        path.push_str(query);
        let response = self
            .request(Method::GET, &path)
            .header("accept", "text/event-stream")
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let status = response.status();
        if !status.is_success() {
            let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
            return Err(api_error(status, &bytes));
        }
        Ok(EventStream::new(response))
    }

    // --- projects, agents, tasks, sessions -------------------------------

    /// `GET /api/projects`.
    pub async fn projects(&self) -> Result<Vec<Project>, ClientError> {
        self.get("/api/projects").await
    }

    /// `POST /api/projects`.
    pub async fn create_project(&self, req: &CreateProject) -> Result<Project, ClientError> {
        self.post("/api/projects", req).await
    }

    /// `GET /api/agents`.
    pub async fn agents(&self) -> Result<Vec<AgentInfo>, ClientError> {
        self.get("/api/agents").await
    }

    /// `POST /api/tasks`.
    pub async fn create_task(&self, req: &CreateTask) -> Result<Task, ClientError> {
        self.post_safely("/api/tasks", req).await
    }

    /// `GET /api/tasks?query`.
    pub async fn tasks(&self, query: &str) -> Result<Vec<Task>, ClientError> {
        self.get(&format!("/api/tasks?{query}")).await
    }

    /// A page of `GET /api/tasks?{query}`, and the key of the next page (its
    /// `Baton-Next-Before`) when this one is full.
    pub async fn tasks_page(&self, query: &str) -> Result<(Vec<Task>, Option<String>), ClientError> {
        let response =
            self.request(Method::GET, &format!("/api/tasks?{query}")).send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let next = response.headers().get("baton-next-before").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            return Err(api_error(status, &bytes));
        }
        let tasks = serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode { status: status.as_u16(), source: Box::new(e) })?;
        Ok((tasks, next))
    }

    /// Every task `GET /api/tasks?{query}` lists, newest first, page after page
    /// (by key: tasks made meanwhile neither repeat nor go missing).
    pub async fn all_tasks(&self, query: &str) -> Result<Vec<Task>, ClientError> {
        let mut all = Vec::new();
        let mut before: Option<String> = None;
        loop {
            let page = match &before {
                Some(b) => format!("{query}&limit=1000&before={}", encode(b)),
                None => format!("{query}&limit=1000"),
            };
            let (tasks, next) = self.tasks_page(&page).await?;
            all.extend(tasks);
            match next {
                Some(n) => before = Some(n),
                None => return Ok(all),
            }
        }
    }

    /// `GET /api/tasks/{id}`.
    pub async fn task(&self, id: &str) -> Result<TaskDetail, ClientError> {
        self.get(&format!("/api/tasks/{}", encode(id))).await
    }

    /// `GET /api/tasks/{id}/events`.
    pub async fn task_events(&self, id: &str, after: i64, limit: u32) -> Result<Vec<Event>, ClientError> {
        self.get(&format!("/api/tasks/{}/events?after={after}&limit={limit}", encode(id))).await
    }

    /// `POST /api/tasks/{id}/stop`.
    pub async fn stop_task(&self, id: &str, reason: Option<String>) -> Result<Task, ClientError> {
        self.post_safely(&format!("/api/tasks/{}/stop", encode(id)), &StopTask { reason }).await
    }

    /// `POST /api/tasks/{id}/resume`.
    pub async fn resume_task(&self, id: &str, message: &str) -> Result<Task, ClientError> {
        self.resume_task_with(id, &ResumeTask { message: message.to_owned(), budget_usd: None }).await
    }

    /// `POST /api/tasks/{id}/resume`, with a new budget too.
    pub async fn resume_task_with(&self, id: &str, req: &ResumeTask) -> Result<Task, ClientError> {
        self.post_safely(&format!("/api/tasks/{}/resume", encode(id)), req).await
    }

    /// `GET /api/pools`.
    pub async fn pools(&self) -> Result<Vec<PoolInfo>, ClientError> {
        self.get("/api/pools").await
    }

    /// `POST /api/projects/{id}/reload`.
    pub async fn reload_project(&self, id: &str) -> Result<Project, ClientError> {
        self.post(&format!("/api/projects/{}/reload", encode(id)), &serde_json::json!({})).await
    }

    /// `POST /api/tasks/{id}/{action}` for retry and approve.
    pub async fn task_action(&self, id: &str, action: &str) -> Result<Task, ClientError> {
        self.post_safely(&format!("/api/tasks/{}/{action}", encode(id)), &serde_json::json!({})).await
    }

    /// `GET /api/sessions/{id}`.
    pub async fn session(&self, id: &str) -> Result<Session, ClientError> {
        self.get(&format!("/api/sessions/{}", encode(id))).await
    }

    // --- the context store -------------------------------------------------

    /// `POST /api/docs`.
    pub async fn push_doc(&self, req: &PushDoc) -> Result<DocDetail, ClientError> {
        self.post("/api/docs", req).await
    }

    /// `GET /api/docs?...`: `query` is the query string (without `?`).
    pub async fn docs(&self, query: &str) -> Result<Vec<DocEntry>, ClientError> {
        self.get(&format!("/api/docs?{query}")).await
    }

    /// `GET /api/docs/{name}` (an earlier version with `version`).
    pub async fn doc(&self, name: &str, version: Option<u32>) -> Result<DocDetail, ClientError> {
        let v = version.map(|v| format!("?version={v}")).unwrap_or_default();
        self.get(&format!("/api/docs/{}{v}", doc_path(name)?)).await
    }

    /// `DELETE /api/docs/{name}`.
    pub async fn delete_doc(&self, name: &str) -> Result<(), ClientError> {
        self.delete(&format!("/api/docs/{}", doc_path(name)?)).await
    }

    // --- the launcher protocol -------------------------------------------

    /// `POST /api/launchers/register`.
    pub async fn register_launcher(&self, req: &RegisterLauncher) -> Result<Registered, ClientError> {
        self.post("/api/launchers/register", req).await
    }

    /// `POST /api/launchers/{id}/poll`, waiting up to `req.wait_ms`.
    pub async fn poll(&self, id: &LauncherId, req: &PollRequest) -> Result<PollResponse, ClientError> {
        let timeout = Duration::from_millis(req.wait_ms) + Duration::from_secs(15);
        self.send(self.request(Method::POST, &format!("/api/launchers/{id}/poll")).json(req).timeout(timeout)).await
    }

    /// `POST /api/launchers/{id}/attach`.
    pub async fn attach(&self, id: &LauncherId, req: &AttachRequest) -> Result<AttachResponse, ClientError> {
        self.post(&format!("/api/launchers/{id}/attach"), req).await
    }

    /// `POST /api/launchers/{id}/heartbeat`.
    pub async fn heartbeat(&self, id: &LauncherId, hb: &Heartbeat) -> Result<Launcher, ClientError> {
        self.post(&format!("/api/launchers/{id}/heartbeat"), hb).await
    }

    /// `POST /api/runs/{id}/started`.
    pub async fn run_started(&self, id: &RunId, report: &RunStarted) -> Result<Run, ClientError> {
        self.post(&format!("/api/runs/{id}/started"), report).await
    }

    /// `POST /api/runs/{id}/checking`.
    pub async fn run_checking(&self, id: &RunId) -> Result<Run, ClientError> {
        self.post(&format!("/api/runs/{id}/checking"), &serde_json::json!({})).await
    }

    /// `POST /api/runs/{id}/events`.
    pub async fn run_events(&self, id: &RunId, batch: &EventBatch) -> Result<BatchAck, ClientError> {
        self.post(&format!("/api/runs/{id}/events"), batch).await
    }

    /// `POST /api/runs/{id}/finished`.
    pub async fn run_finished(&self, id: &RunId, report: &RunFinished) -> Result<Run, ClientError> {
        self.post(&format!("/api/runs/{id}/finished"), report).await
    }

    /// `PUT /api/sessions/{id}/state`: what the agent's CLI keeps of the conversation.
    pub async fn put_session_state(
        &self,
        id: &baton_core::ids::SessionId,
        state: &baton_core::api::SessionState,
    ) -> Result<(), ClientError> {
        self.send::<Value>(self.request(Method::PUT, &format!("/api/sessions/{id}/state")).json(state))
            .await
            .map(|_| ())
    }

    /// `GET /api/sessions/{id}/state`, when one was saved.
    pub async fn session_state(
        &self,
        id: &baton_core::ids::SessionId,
    ) -> Result<Option<baton_core::api::SessionState>, ClientError> {
        match self.get(&format!("/api/sessions/{id}/state")).await {
            Ok(state) => Ok(Some(state)),
            Err(ClientError::Api { code: ErrorCode::NotFound, .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `POST /api/launchers/{id}/orders/done`: an order was carried out (or not).
    pub async fn order_done(&self, id: &LauncherId, done: &baton_core::api::OrderDone) -> Result<Value, ClientError> {
        self.post(&format!("/api/launchers/{id}/orders/done"), done).await
    }

    /// `POST /api/runs/{id}/checkpoint`: a snapshot of the task's worktree was
    /// pushed to `refs/baton/checkpoints/<task>`.
    pub async fn run_checkpoint(&self, id: &RunId, commit: &str) -> Result<Run, ClientError> {
        self.post(&format!("/api/runs/{id}/checkpoint"), &baton_core::api::Checkpoint { commit: commit.to_owned() })
            .await
    }
}

fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorBody>(bytes) {
        Ok(body) => ClientError::Api {
            status: status.as_u16(),
            code: body.error.code,
            message: body.error.message,
            details: body.error.details,
        },
        Err(e) => ClientError::Decode { status: status.as_u16(), source: Box::new(e) },
    }
}

/// A document name as a URL path: each `/`-separated segment encoded.
/// Checked here, before any request: a `..` in a URL path would be resolved
/// away on the way, so the coordinator could not refuse it itself.
fn doc_path(name: &str) -> Result<String, ClientError> {
    baton_core::names::validate_doc_name(name).map_err(|e| ClientError::Api {
        status: 400,
        code: ErrorCode::InvalidArgument,
        message: e.to_string(),
        details: None,
    })?;
    Ok(name.split('/').map(encode).collect::<Vec<_>>().join("/"))
}

/// Percent-encodes a path segment typed by a user.
pub fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// How many times a request with an `Idempotency-Key` is sent again after a
/// lost answer or a 503.
const RETRIES: u32 = 5;

/// A fresh idempotency key: 32 random hex digits.
pub fn new_key() -> String {
    let mut b = [0u8; 16];
    let _ = getrandom::fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}
