//! `/api/tasks`: creating tasks, reading them, and acting on them.

use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::api::{CleanReport, CleanRequest, CreateTask, MergeTask, ResumeTask, StopTask, TaskDetail};
use baton_core::event::{Event, EventKind};
use baton_core::model::{Task, TokenKind};
use baton_core::status::TaskStatus;
use baton_store::{EventFilter, StoreRead, TaskFilter};
use serde::Deserialize;

use super::clamp_limit;
use crate::api::http::{ApiJson, OptionalJson};
use crate::api::idempotency::{Created, Done, IdempotencyKey, Reply, fingerprint, once};
use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_core::ids::TaskId;
use baton_domain::AppState;
use baton_domain::{resolve, scheduler};

/// The page `GET /api/tasks` answers without a `limit`.
const TASK_PAGE: u32 = 1_000;

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListQuery {
    /// A project id or name.
    project: Option<String>,
    /// Comma-separated statuses.
    #[serde(default)]
    #[schemars(schema_with = "statuses_schema")]
    status: Option<String>,
    /// Only tasks started by this session.
    parent: Option<String>,
    /// At most this many, newest first (default 1,000; 0 is taken as 1 and
    /// more than 100,000 as 100,000): a full page names the next in
    /// `Baton-Next-Before`.
    limit: Option<u32>,
    /// Only tasks older than this one: the last task of the page before. A full
    /// page's answer names the next page's in its `Baton-Next-Before` header.
    before: Option<String>,
}

/// A page of a list: its items, and (in the `Baton-Next-Before` header) the key
/// of the next page when this one is full.
pub(super) struct Page<T> {
    items: Vec<T>,
    next: Option<String>,
}

impl<T: serde::Serialize> axum::response::IntoResponse for Page<T> {
    fn into_response(self) -> axum::response::Response {
        let mut response = Json(self.items).into_response();
        if let Some(next) = self.next.and_then(|n| n.parse().ok()) {
            response.headers_mut().insert("baton-next-before", next);
        }
        response
    }
}

impl<T: schemars::JsonSchema> super::openapi::Output for Page<T> {
    fn describe(draft: &mut super::openapi::Draft, g: &mut schemars::SchemaGenerator) {
        draft.respond_with(
            "200",
            "ok; a full page names the next in its Baton-Next-Before header",
            g.subschema_for::<Vec<T>>().to_value(),
        );
    }
}

/// A comma-separated list of task statuses, as the document says it.
fn statuses_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::openapi::comma_list(TaskStatus::ALL.iter().map(|s| s.as_str()))
}

/// A comma-separated list of event kinds, as the document says it.
pub(super) fn kinds_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    super::openapi::comma_list(EventKind::ALL.iter().map(|k| k.as_str()))
}

/// Parses `a,b,c` into statuses.
pub(super) fn parse_statuses(text: Option<&str>) -> Result<Vec<TaskStatus>, AppError> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| TaskStatus::from_str(s).map_err(|e| AppError::invalid(e.to_string())))
            .collect()
    })
    .unwrap_or(Ok(Vec::new()))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Page<Task>, AppError> {
    let statuses = parse_statuses(q.status.as_deref())?;
    // Never every task at once: a year of history is a million of them.
    let limit = Some(clamp_limit(q.limit, TASK_PAGE, 100_000));
    let tasks = state
        .store
        .read(move |r| {
            let project = match &q.project {
                Some(p) => Some(resolve::project_ref(r, p)?.id),
                None => None,
            };
            let parent_session = match &q.parent {
                Some(s) => Some(resolve::session_id(r, s)?),
                None => None,
            };
            let before = match &q.before {
                Some(t) => Some(resolve::task_ref(r, t)?.id),
                None => None,
            };
            Ok::<_, AppError>(r.tasks(&TaskFilter { project, statuses, parent_session, limit, before })?)
        })
        .await?;
    let full = limit.is_some_and(|l| tasks.len() == l as usize);
    let next = if full { tasks.last().map(|t| t.id.to_string()) } else { None };
    Ok(Page { items: tasks, next })
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<CreateTask>,
) -> Result<Created<Task>, AppError> {
    if caller.kind == TokenKind::Launcher {
        return Err(AppError::forbidden("launcher tokens cannot create tasks"));
    }
    if let Some(base) = req.base.clone() {
        let (named, session) = (req.project.clone(), caller.session());
        let project = state
            .store
            .read(move |r| {
                let parent = session.map(|s| resolve::session(r, &s)).transpose()?;
                resolve::request_project(r, named.as_deref(), parent.as_ref().map(|s| &s.project_id))
            })
            .await?;
        baton_domain::projects::require_branch(&project, &base).await?;
    }
    let (st, who) = (Arc::clone(&state), caller.clone());
    let request = fingerprint("POST /api/tasks", &req);
    let reply = once(&state, &caller, key, request, StatusCode::CREATED, move |tx, fx| {
        Ok(scheduler::create_task(tx, fx, &who, req, &st.config)?)
    })
    .await?;
    if matches!(reply, Reply::Fresh(..)) {
        state.metrics.tasks_created.fetch_add(1, Ordering::Relaxed);
    }
    Ok(Created(reply))
}

/// A task with its sessions and the runs of its current session.
pub(super) fn detail(r: &dyn StoreRead, task: Task) -> Result<TaskDetail, AppError> {
    let sessions = r.sessions_of_task(&task.id)?;
    let runs = match &task.session_id {
        Some(s) => r.runs_of_session(s)?,
        None => Vec::new(),
    };
    let overlaps = baton_domain::radar::overlaps(r, &task)?;
    Ok(TaskDetail { task, sessions, runs, overlaps })
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<TaskDetail>, AppError> {
    let detail = state.store.read(move |r| detail(r, resolve::task_ref(r, &id)?)).await?;
    Ok(Json(detail))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct EventsQuery {
    /// Only events after this stream position.
    after: Option<i64>,
    /// Comma-separated kinds.
    #[serde(default)]
    #[schemars(schema_with = "kinds_schema")]
    kinds: Option<String>,
    /// At most this many.
    limit: Option<u32>,
}

/// Parses `a,b,c` into event kinds.
pub(super) fn parse_kinds(text: Option<&str>) -> Result<Vec<EventKind>, AppError> {
    text.map(|t| {
        t.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| EventKind::from_str(s).map_err(AppError::invalid))
            .collect()
    })
    .unwrap_or(Ok(Vec::new()))
}

pub(super) async fn events(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<EventsQuery>,
) -> Result<Json<Vec<Event>>, AppError> {
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let limit = clamp_limit(q.limit, 1000, 10_000);
    let events = state
        .store
        .read(move |r| {
            let task = resolve::task_id(r, &id)?;
            let filter = EventFilter { after: q.after.unwrap_or(0), session: None, task: Some(task), kinds, limit };
            Ok::<_, AppError>(r.events(&filter)?)
        })
        .await?;
    Ok(Json(events))
}

/// Admins act on any task; an agent's session acts on the tasks it started.
pub(super) fn may_act(caller: &Caller, task: &Task) -> Result<(), AppError> {
    match caller.kind {
        TokenKind::Admin => Ok(()),
        TokenKind::Session if caller.session().is_some() && caller.session() == task.parent_session_id => Ok(()),
        _ => Err(AppError::forbidden(format!("this token may not act on task {}", task.id))),
    }
}

/// An action on a task, as `act` runs it.
type Action = dyn FnOnce(&mut dyn baton_store::StoreTx, &mut scheduler::Effects, &TaskId) -> Result<Task, baton_domain::Error>
    + Send;

/// Runs an action on a task after checking the caller may act on it, once per
/// idempotency key.
async fn act(
    state: Arc<AppState>,
    caller: Caller,
    (id, key, request): (String, IdempotencyKey, String),
    f: Box<Action>,
) -> Result<Done<Task>, AppError> {
    let who = caller.clone();
    let reply = once(&state, &caller, key, request, StatusCode::OK, move |tx, fx| {
        let task = resolve::task_ref(tx, &id)?;
        may_act(&who, &task)?;
        Ok(f(tx, fx, &task.id)?)
    })
    .await?;
    Ok(Done(reply))
}

pub(super) async fn stop(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
    OptionalJson(req): OptionalJson<StopTask>,
) -> Result<Done<Task>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/stop"), &req);
    act(state, caller, (id, key, request), Box::new(move |tx, fx, id| scheduler::stop_task(tx, fx, id, req.reason)))
        .await
}

pub(super) async fn resume(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
    ApiJson(req): ApiJson<ResumeTask>,
) -> Result<Done<Task>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/resume"), &req);
    let f = move |tx: &mut dyn baton_store::StoreTx, fx: &mut scheduler::Effects, id: &TaskId| {
        scheduler::resume_task(tx, fx, id, req.message, req.budget_usd)
    };
    act(state, caller, (id, key, request), Box::new(f)).await
}

pub(super) async fn retry(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
) -> Result<Done<Task>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/retry"), &());
    act(state, caller, (id, key, request), Box::new(scheduler::retry_task)).await
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct DiffQuery {
    /// `patch` for the plain patch instead of JSON.
    #[schemars(regex(pattern = "^patch$"))]
    format: Option<String>,
}

pub(super) async fn diff(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DiffQuery>,
) -> Result<axum::response::Response, AppError> {
    use axum::response::IntoResponse;
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    let diff = baton_domain::review::diff(&state, task).await?;
    Ok(match q.format.as_deref() {
        Some("patch") => {
            ([(axum::http::header::CONTENT_TYPE, "text/x-diff; charset=utf-8")], diff.patch).into_response()
        }
        Some(other) => return Err(AppError::invalid(format!("unknown format {other:?} (expected patch)"))),
        None => Json(diff).into_response(),
    })
}

pub(super) async fn merge(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<MergeTask>,
) -> Result<Json<Task>, AppError> {
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    may_act(&caller, &task)?;
    Ok(Json(baton_domain::review::request_merge(&state, task.id, req.strategy, req.force).await?))
}

/// `POST /api/tasks/{id}/pr`: push the task's branch and open its pull request.
pub(super) async fn pr(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, Json<Task>), AppError> {
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    may_act(&caller, &task)?;
    Ok((axum::http::StatusCode::CREATED, Json(baton_forge::open_pr(&state, task.id).await?)))
}

/// `POST /api/forge/github`: GitHub's webhook (no Baton token: the
/// `X-Hub-Signature-256` of the project's webhook secret authenticates it).
pub(super) async fn github_webhook(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (event, signature) = (header("x-github-event"), header("x-hub-signature-256"));
    let content_type = header("content-type");
    Ok(Json(baton_forge::github_webhook(&state, &event, &content_type, &signature, &body).await?))
}

pub(super) async fn gitlab_webhook(
    State(state): State<Arc<AppState>>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Json<serde_json::Value>, AppError> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let (event, token) = (header("x-gitlab-event"), header("x-gitlab-token"));
    Ok(Json(baton_forge::gitlab_webhook(&state, &event, &token, &body).await?))
}

pub(super) async fn clean(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    OptionalJson(req): OptionalJson<CleanRequest>,
) -> Result<Json<CleanReport>, AppError> {
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    may_act(&caller, &task)?;
    let report = baton_domain::review::clean(&state, &task, req.force).await?;
    match &report.refused {
        Some(why) if !report.removed && !report.pending => Err(AppError::new(
            baton_core::api::ErrorCode::Conflict,
            format!("the worktree of task {} was not removed: {why}", task.id),
        )
        .with_details(serde_json::to_value(&report).unwrap_or_default())),
        _ => Ok(Json(report)),
    }
}

/// `POST /api/clean`: the worktrees of every merged or abandoned task (and, with
/// `force`, every finished one).
pub(super) async fn clean_all(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    OptionalJson(req): OptionalJson<CleanRequest>,
) -> Result<Json<Vec<CleanReport>>, AppError> {
    caller.require_admin()?;
    let tasks = state.store.read(|r| r.tasks(&TaskFilter::default())).await?;
    let chosen: Vec<Task> = tasks
        .into_iter()
        .filter(|t| t.git.worktree.is_some() && t.status.is_finished())
        .filter(|t| {
            let abandoned = matches!(t.status, TaskStatus::Failed | TaskStatus::Cancelled);
            let merged = t.git.merge == baton_core::model::MergeState::Merged;
            merged || abandoned || req.force
        })
        .collect();
    Ok(Json(baton_domain::review::clean_many(&state, &chosen, req.force, true).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct WaitQuery {
    /// The longest to wait, in seconds (at most 3600).
    #[schemars(range(max = 3600))]
    timeout_s: Option<u64>,
}

/// Whether a task has reached a status it will not leave by itself.
/// `GET /api/tasks/{id}/wait`: synchronous delegation. Answers when the task
/// succeeds, fails, is cancelled or blocked, or waits for an approval (or when
/// the wait ends), with the task.
pub(super) async fn wait(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<WaitQuery>,
) -> Result<Json<TaskDetail>, AppError> {
    let mut changes = state.store.subscribe();
    let task = state.store.read(move |r| resolve::task_ref(r, &id)).await?;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(q.timeout_s.unwrap_or(600).min(3600));
    let id = task.id.clone();
    let mut status = task.status;
    while !status.ends_a_wait() {
        match tokio::time::timeout_at(deadline, changes.recv()).await {
            Err(_) => break,
            Ok(Ok(c)) if c.event.kind == EventKind::Task && c.event.task_id.as_ref() == Some(&id) => {
                status = c.event.data["status"].as_str().and_then(|s| s.parse().ok()).unwrap_or(status);
            }
            Ok(Ok(_)) => {}
            Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {
                let tid = id.clone();
                status = state.store.read(move |r| resolve::task(r, &tid)).await?.status;
            }
            Ok(Err(tokio::sync::broadcast::error::RecvError::Closed)) => break,
        }
    }
    let detail = state.store.read(move |r| detail(r, resolve::task(r, &id)?)).await?;
    Ok(Json(detail))
}

pub(super) async fn approve(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    key: IdempotencyKey,
) -> Result<Done<Task>, AppError> {
    let request = fingerprint(&format!("POST /api/tasks/{id}/approve"), &());
    act(state, caller, (id, key, request), Box::new(scheduler::approve_task)).await
}
