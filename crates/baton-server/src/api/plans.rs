//! `/api/plans` and `/api/orchestrate`: DAGs submitted in one call, and the
//! planner → experts → synthesizer flow.

use std::sync::Arc;

use axum::Json;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{StatusCode, header};
use baton_core::api::{AgentTemplate, CreatePlan, ErrorCode, Orchestrate, PlanCheck, PlanCreated};
use baton_core::model::TokenKind;
use baton_core::model::{Orchestration, Plan, Task};
use bytes::Bytes;
use serde::Serialize;

use crate::api::http::ApiJson;
use crate::api::idempotency::{Created, IdempotencyKey, fingerprint, once};
use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::{resolve, scheduler, transact};

/// A plan's body: JSON, or YAML (`Content-Type: application/yaml`).
pub(super) struct PlanBody(CreatePlan);

impl<S: Send + Sync> FromRequest<S> for PlanBody {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        let yaml =
            req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("yaml"));
        if !yaml {
            return ApiJson::<CreatePlan>::from_request(req, state).await.map(|ApiJson(p)| PlanBody(p));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|r| {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(ErrorCode::PayloadTooLarge, "the plan is larger than allowed")
            } else {
                AppError::new(ErrorCode::MalformedJson, format!("could not read the plan: {r}"))
            }
        })?;
        serde_norway::from_slice(&bytes).map(PlanBody).map_err(|e| {
            let error =
                AppError::new(ErrorCode::InvalidBody, format!("the plan is not valid YAML of the plan's shape: {e}"));
            match e.location() {
                Some(at) => error.with_details(serde_json::json!({ "line": at.line(), "column": at.column() })),
                None => error,
            }
        })
    }
}

impl crate::api::openapi::Input for PlanBody {
    fn describe(draft: &mut crate::api::openapi::Draft, g: &mut schemars::SchemaGenerator) {
        draft.json_body(g.subschema_for::<CreatePlan>().to_value(), true);
    }
}

fn may_create(caller: &Caller) -> Result<(), AppError> {
    match caller.kind {
        TokenKind::Launcher => Err(AppError::forbidden("launcher tokens cannot create tasks")),
        _ => Ok(()),
    }
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    key: IdempotencyKey,
    PlanBody(req): PlanBody,
) -> Result<Created<PlanCreated>, AppError> {
    may_create(&caller)?;
    let (st, who) = (Arc::clone(&state), caller.clone());
    let request = fingerprint("POST /api/plans", &req);
    let reply = once(&state, &caller, key, request, StatusCode::CREATED, move |tx, fx| {
        Ok(scheduler::create_plan(tx, fx, &who, req, &st.config)?)
    })
    .await?;
    Ok(Created(reply))
}

pub(super) async fn check(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    PlanBody(req): PlanBody,
) -> Result<Json<PlanCheck>, AppError> {
    may_create(&caller)?;
    let st = Arc::clone(&state);
    let checked = transact(&state, move |tx, _fx| scheduler::check_plan_only(tx, &caller, &req, &st.config)).await?;
    Ok(Json(checked))
}

pub(super) async fn list(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<Vec<Plan>>, AppError> {
    Ok(Json(state.store.read(|r| r.plans(1000)).await?))
}

/// A plan with its tasks.
#[derive(Serialize, schemars::JsonSchema)]
pub(super) struct PlanDetail {
    #[serde(flatten)]
    plan: Plan,
    task_list: Vec<Task>,
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<PlanDetail>, AppError> {
    let detail = state
        .store
        .read(move |r| {
            let id = baton_core::ids::PlanId::parse(&id).map_err(|_| AppError::not_found("plan", &id))?;
            let plan = r.plan(&id)?.ok_or_else(|| AppError::not_found("plan", &id))?;
            let mut task_list = Vec::new();
            for tid in plan.tasks.values().chain(plan.synthesis.iter()) {
                task_list.push(resolve::task(r, tid)?);
            }
            Ok::<_, AppError>(PlanDetail { plan, task_list })
        })
        .await?;
    Ok(Json(detail))
}

pub(super) async fn orchestrate(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<Orchestrate>,
) -> Result<(StatusCode, Json<Orchestration>), AppError> {
    may_create(&caller)?;
    let o = transact(&state, move |tx, fx| scheduler::orchestrations::start(tx, fx, &caller, req)).await?;
    Ok((StatusCode::CREATED, Json(o)))
}

pub(super) async fn orchestration(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(id): Path<String>,
) -> Result<Json<Orchestration>, AppError> {
    let o = state
        .store
        .read(move |r| {
            let oid =
                baton_core::ids::OrchestrationId::parse(&id).map_err(|_| AppError::not_found("orchestration", &id))?;
            r.orchestration(&oid)?.ok_or_else(|| AppError::not_found("orchestration", &id))
        })
        .await?;
    Ok(Json(o))
}

pub(super) async fn orchestrations(
    State(state): State<Arc<AppState>>,
    _: Auth,
) -> Result<Json<Vec<Orchestration>>, AppError> {
    Ok(Json(state.store.read(|r| r.orchestrations(1000)).await?))
}

pub(super) async fn templates(
    State(state): State<Arc<AppState>>,
    _: Auth,
) -> Result<Json<Vec<AgentTemplate>>, AppError> {
    let agents = state.store.read(|r| r.agents()).await?;
    Ok(Json(
        agents
            .into_iter()
            .map(|a| AgentTemplate { kind: a.name.clone(), name: a.name, description: a.description, tags: a.tags })
            .collect(),
    ))
}
