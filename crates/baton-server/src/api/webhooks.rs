//! `/api/webhooks` and `/api/deliveries`: webhooks made, listed and removed by
//! the admin, their deliveries, and a delivery sent again. A webhook's secret
//! is shown once, in the answer that made it.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::time::Timestamp;
use baton_core::webhook::{CreateWebhook, Delivery, DeliveryStatus, Webhook, WebhookEvent, WebhookFormat, WebhookInfo};
use baton_store::{Notice, StoreRead};
use serde::Deserialize;

use super::clamp_limit;
use crate::api::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::signature::Secret;
use baton_domain::{resolve, transact};

/// The longest URL a webhook may have.
const URL_MAX: usize = 2048;

fn info(r: &dyn StoreRead, hook: Webhook) -> Result<WebhookInfo, AppError> {
    let (pending, failed) = r.delivery_counts(&hook.id)?;
    Ok(WebhookInfo {
        id: hook.id,
        url: hook.url,
        events: hook.events,
        project_id: hook.project_id,
        format: hook.format,
        created_at: hook.created_at,
        disabled: hook.disabled,
        pending,
        failed,
        secret: None,
    })
}

/// Checks a request, before anything is stored.
fn checked(req: CreateWebhook) -> Result<(CreateWebhook, WebhookFormat, Secret), AppError> {
    let url = reqwest::Url::parse(&req.url)
        .map_err(|e| AppError::invalid(format!("`url` {:?} is not a URL: {e}", req.url)))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(AppError::invalid(format!("`url` must be an http or https URL with a host, not {:?}", req.url)));
    }
    if req.url.len() > URL_MAX {
        return Err(AppError::invalid(format!("`url` is longer than {URL_MAX} characters")));
    }
    if req.events.is_empty() {
        return Err(AppError::invalid("`events` names no event (\"*\" is every one)"));
    }
    for event in req.events.iter().filter(|e| *e != "*") {
        event.parse::<WebhookEvent>().map_err(AppError::invalid)?;
    }
    let format = req.format.as_deref().map(str::parse).transpose().map_err(AppError::invalid)?.unwrap_or_default();
    let secret = match &req.secret {
        Some(text) => Secret::parse(text).map_err(|e| AppError::invalid(format!("`secret`: {e}")))?,
        None => Secret::generate(),
    };
    Ok((req, format, secret))
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    key: super::idempotency::IdempotencyKey,
    ApiJson(req): ApiJson<CreateWebhook>,
) -> Result<super::idempotency::Created<WebhookInfo>, AppError> {
    caller.require_admin()?;
    let request = super::idempotency::fingerprint("POST /api/webhooks", &req);
    let (req, format, secret) = checked(req)?;
    let mut events = req.events.clone();
    events.sort_unstable();
    events.dedup();
    // The answer (its secret included) is kept with the key: a retry after a
    // lost answer gets the same webhook and secret, and makes no second one.
    let reply = super::idempotency::once(&state, &caller, key, request, StatusCode::CREATED, move |tx, _fx| {
        let project_id = req.project.as_deref().map(|p| resolve::project_ref(tx, p)).transpose()?.map(|p| p.id);
        let hook = Webhook {
            id: baton_domain::tokens::random_id("wh_"),
            url: req.url,
            events,
            project_id,
            format,
            secret: secret.expose(),
            created_at: Timestamp::now(),
            disabled: None,
        };
        tx.put_webhook(&hook)?;
        let secret = hook.secret.clone();
        let mut shown = info(tx, hook)?;
        shown.secret = Some(secret);
        Ok::<_, AppError>(shown)
    })
    .await?;
    Ok(super::idempotency::Created(reply))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
) -> Result<Json<Vec<WebhookInfo>>, AppError> {
    caller.require_admin()?;
    let hooks = state.store.read(|r| r.webhooks()?.into_iter().map(|h| info(r, h)).collect()).await?;
    Ok(Json(hooks))
}

fn webhook(r: &dyn StoreRead, id: &str) -> Result<Webhook, AppError> {
    r.webhook(id)?.ok_or_else(|| AppError::not_found("webhook", id))
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<WebhookInfo>, AppError> {
    caller.require_admin()?;
    Ok(Json(state.store.read(move |r| info(r, webhook(r, &id)?)).await?))
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    let removed = state.store.write(move |tx| tx.delete_webhook(&id).map(|r| (r, id))).await?;
    match removed {
        (true, _) => Ok(StatusCode::NO_CONTENT),
        (false, id) => Err(AppError::not_found("webhook", &id)),
    }
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct DeliveriesQuery {
    /// At most this many, newest first.
    limit: Option<u32>,
}

pub(super) async fn deliveries(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> Result<Json<Vec<Delivery>>, AppError> {
    caller.require_admin()?;
    let limit = clamp_limit(q.limit, 50, 1000);
    let list = state.store.read(move |r| Ok::<_, AppError>(r.deliveries(&webhook(r, &id)?.id, limit)?)).await?;
    Ok(Json(list))
}

/// `POST /api/deliveries/{id}/redeliver`: sends a delivery again (the same
/// `webhook-id` and body), now, with a retry window of its own.
pub(super) async fn redeliver(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Delivery>, AppError> {
    caller.require_admin()?;
    let delivery = transact(&state, move |tx, _fx| {
        let mut d = tx.delivery(&id)?.ok_or_else(|| AppError::not_found("delivery", &id))?;
        if let Some(why) = webhook(tx, &d.webhook_id)?.disabled {
            return Err(AppError::conflict(format!(
                "webhook {} is disabled ({why}); add it again to use it",
                d.webhook_id
            )));
        }
        let now = Timestamp::now();
        d.status = DeliveryStatus::Pending;
        d.next_at = now;
        d.retry_from = Some(now);
        d.finished_at = None;
        tx.put_delivery(&d)?;
        tx.notify(Notice::Deliveries)?;
        Ok(d)
    })
    .await?;
    Ok(Json(delivery))
}

/// `POST /api/webhooks/{id}/test`: a test delivery, sent like any other.
pub(super) async fn test(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Delivery>), AppError> {
    caller.require_admin()?;
    let delivery = transact(&state, move |tx, _fx| {
        let hook = webhook(tx, &id)?;
        if let Some(why) = &hook.disabled {
            return Err(AppError::conflict(format!("webhook {id} is disabled ({why}); add it again to use it")));
        }
        Ok(baton_domain::outbox::test_delivery(tx, &hook)?)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(delivery)))
}
