//! `/api/projects`.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::api::CreateProject;
use baton_core::model::Project;
use serde::Deserialize;

use crate::api::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::{projects, resolve};

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct ListQuery {
    /// Only the project at this path.
    path: Option<String>,
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<Vec<Project>>, AppError> {
    let projects = state.store.read(|r| r.projects()).await?;
    let projects = match q.path {
        Some(path) => {
            let canonical = std::fs::canonicalize(&path).map(|p| p.to_string_lossy().into_owned()).unwrap_or(path);
            projects.into_iter().filter(|p| p.path == canonical).collect()
        }
        None => projects,
    };
    Ok(Json(projects))
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateProject>,
) -> Result<(StatusCode, Json<Project>), AppError> {
    caller.require_admin()?;
    let project = projects::add_project(&state, req, false).await?;
    Ok((StatusCode::CREATED, Json(project)))
}

pub(super) async fn reload(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Project>, AppError> {
    caller.require_admin()?;
    Ok(Json(projects::reload_project(&state, id).await?))
}

pub(super) async fn pools(
    State(state): State<Arc<AppState>>,
    _: Auth,
) -> Result<Json<Vec<baton_core::api::PoolInfo>>, AppError> {
    let now = baton_core::time::Timestamp::now();
    Ok(Json(state.store.read(move |r| baton_domain::scheduler::pools(r, now)).await?))
}

pub(super) async fn radar(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<baton_core::api::RadarEntry>>, AppError> {
    let radar = state
        .store
        .read(move |r| {
            let project = resolve::project_ref(r, &id)?;
            baton_domain::radar::project_radar(r, &project.id)
        })
        .await?;
    Ok(Json(radar))
}

pub(super) async fn lead(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<baton_core::api::LeadStatus>, AppError> {
    let status = state.store.read(move |r| baton_domain::lead::status(r, &resolve::project_ref(r, &id)?)).await?;
    Ok(Json(status))
}

pub(super) async fn heartbeat(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    crate::api::http::OptionalJson(beat): crate::api::http::OptionalJson<baton_core::api::LeadBeat>,
) -> Result<Json<baton_core::model::LeadHeartbeat>, AppError> {
    caller.require_admin().or_else(|e| caller.session().map(|_| ()).ok_or(e))?;
    let session = caller.session();
    let beat = state
        .store
        .write(move |tx| {
            let project = resolve::project_ref(tx, &id)?;
            let agent = match &session {
                Some(s) => Some(resolve::session(tx, s)?.agent),
                None => None,
            };
            let heartbeat = baton_core::model::LeadHeartbeat {
                project_id: project.id,
                source: beat.source.or(agent).unwrap_or_else(|| "lead".into()),
                session_key: beat.session_key.or(session.map(|s| s.to_string())),
                state: beat.state.unwrap_or_default(),
                at: baton_core::Timestamp::now(),
            };
            tx.add_heartbeat(&heartbeat)?;
            Ok::<_, AppError>(heartbeat)
        })
        .await?;
    Ok(Json(beat))
}

pub(super) async fn heartbeats(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<baton_core::model::LeadHeartbeat>>, AppError> {
    let beats = state
        .store
        .read(move |r| {
            let project = resolve::project_ref(r, &id)?;
            Ok::<_, AppError>(r.heartbeats(&project.id, 500)?)
        })
        .await?;
    Ok(Json(beats))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Project>, AppError> {
    Ok(Json(state.store.read(move |r| resolve::project_ref(r, &id)).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct CostsQuery {
    /// Only this project's (id, prefix or name).
    project: Option<String>,
}

/// `GET /api/costs`: tokens and dollars, in all and per project and agent.
pub(super) async fn costs(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<CostsQuery>,
) -> Result<Json<baton_core::api::Costs>, AppError> {
    let rows = state
        .store
        .read(move |r| {
            let project = q.project.map(|p| resolve::project_ref(r, &p)).transpose()?;
            Ok::<_, AppError>(r.spend(project.as_ref().map(|p| &p.id))?)
        })
        .await?;
    Ok(Json(baton_core::api::Costs::of(rows)))
}

/// `POST /api/hooks`: a Claude Code hook's JSON, recorded as an event of the
/// session that stands for that Claude Code session (see [`baton_domain::hooks`]).
pub(super) async fn hook(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    crate::api::http::ApiJson(hook): crate::api::http::ApiJson<baton_core::api::ClaudeHook>,
) -> Result<Json<baton_core::api::HookRecorded>, AppError> {
    if caller.session().is_none() {
        caller.require_admin()?;
    }
    let hook = serde_json::to_value(hook).map_err(|e| AppError::invalid(e.to_string()))?;
    baton_domain::hooks::check(&hook)?;
    let recorded = state.store.write(move |tx| baton_domain::hooks::record(tx, hook)).await?;
    Ok(Json(recorded))
}

pub(super) async fn config(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<baton_core::api::ProjectConfig>, AppError> {
    caller.require_admin()?;
    Ok(Json(projects::config_text(&state, id).await?))
}

pub(super) async fn write_config(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<baton_core::api::ProjectConfig>,
) -> Result<Json<Project>, AppError> {
    caller.require_admin()?;
    Ok(Json(projects::write_config(&state, id, req.text).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct FilesQuery {
    /// The branch to list (the project's default branch by default).
    #[serde(rename = "ref")]
    #[schemars(regex(pattern = baton_core::names::BRANCH_NAME_PATTERN))]
    rev: Option<String>,
    /// Only paths containing this (any case).
    q: Option<String>,
    /// At most this many (default 50, at most 1000).
    limit: Option<u32>,
}

pub(super) async fn files(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<FilesQuery>,
) -> Result<Json<Vec<String>>, AppError> {
    let limit = super::clamp_limit(q.limit, 50, 1000) as usize;
    Ok(Json(projects::files(&state, id, q.rev, q.q.unwrap_or_default(), limit).await?))
}

pub(super) async fn branches(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Vec<String>>, AppError> {
    Ok(Json(projects::branches(&state, id).await?))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct HourlyQuery {
    /// How many hours back, this one included (default 24, at most 24 × 90).
    hours: Option<u32>,
    /// Only this project's (id or name).
    project: Option<String>,
}

pub(super) async fn hourly(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<HourlyQuery>,
) -> Result<Json<Vec<baton_core::api::HourStats>>, AppError> {
    let hours = super::clamp_limit(q.hours, 24, 24 * 90) as i64;
    let now = baton_domain::scheduler::this_hour();
    let since = now - (hours - 1) * 3_600_000;
    let (rows, queue) = state
        .store
        .read(move |r| {
            let project = match &q.project {
                Some(p) => Some(resolve::project_ref(r, p)?.id),
                None => None,
            };
            Ok::<_, AppError>((r.hours(since, project.as_ref())?, r.hourly_queue(since)?))
        })
        .await?;
    let mut out: Vec<baton_core::api::HourStats> = (0..hours)
        .map(|i| baton_core::api::HourStats {
            start: baton_core::time::Timestamp::from_millis(since + i * 3_600_000),
            finished: Default::default(),
            queued: None,
            cost_by_project: Default::default(),
            cost_by_agent: Default::default(),
        })
        .collect();
    let slot = |hour: i64| usize::try_from((hour - since) / 3_600_000).ok();
    for row in rows {
        let Some(h) = slot(row.hour).and_then(|i| out.get_mut(i)) else { continue };
        for (status, n) in row.finished {
            *h.finished.entry(status.as_str().to_owned()).or_default() += n;
        }
        if row.cost_usd != 0.0 {
            *h.cost_by_project.entry(row.project.to_string()).or_default() += row.cost_usd;
            *h.cost_by_agent.entry(row.agent).or_default() += row.cost_usd;
        }
    }
    for (hour, n) in queue {
        if let Some(h) = slot(hour).and_then(|i| out.get_mut(i)) {
            h.queued = Some(n);
        }
    }
    Ok(Json(out))
}
