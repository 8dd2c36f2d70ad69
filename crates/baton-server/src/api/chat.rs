//! `/api/chat/…`: Slack's Events API, slash commands and interactivity, and
//! Discord's interactions endpoint. No Baton token: each request is
//! authenticated by the service's signature (Slack's signing secret, within
//! five minutes; Discord's Ed25519 key), 401 otherwise with nothing changed.
//! Each is kept before it is answered, within the services' three seconds,
//! and acted on by the chat worker once.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use baton_core::api::ErrorCode;
use baton_core::chat::{ChatInbound, ChatRole, ChatService};
use baton_core::model::Project;
use baton_domain::AppState;
use serde_json::{Value, json};

use crate::error::AppError;

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn unauthorized(why: impl Into<String>) -> AppError {
    AppError::new(ErrorCode::Unauthorized, why.into())
}

/// The projects whose Slack signing secret signed this request.
async fn slack_signed(state: &Arc<AppState>, headers: &HeaderMap, body: &[u8]) -> Result<Vec<Project>, AppError> {
    let projects = state.store.read(|r| r.projects()).await?;
    let now = baton_core::time::Timestamp::now().as_millis() / 1000;
    let (ts, sig) = (header(headers, "x-slack-request-timestamp"), header(headers, "x-slack-signature"));
    let mut last = baton_chat::slack::Refused::Unsigned;
    let mut signed = Vec::new();
    for p in projects {
        let Some(var) =
            p.settings.chat.as_ref().and_then(|c| c.slack.as_ref()).and_then(|s| s.signing_secret_env.clone())
        else {
            continue;
        };
        let Ok(secret) = std::env::var(&var) else { continue };
        match baton_chat::slack::verify(&secret, ts, sig, body, now) {
            Ok(()) => signed.push(p),
            Err(e) => last = e,
        }
    }
    if signed.is_empty() {
        return Err(unauthorized(format!("not a request from Slack: {last}")));
    }
    Ok(signed)
}

/// The project among `signed` whose channel `channel` is.
fn of_channel(signed: Vec<Project>, channel: Option<String>) -> Option<Project> {
    let channel = channel?;
    signed.into_iter().find(|p| baton_domain::chat::roles(p, ChatService::Slack).is_some_and(|(_, _, c)| c == channel))
}

/// A refusal only the user sees, at once, for someone with no role at all.
fn not_allowed(project: &Project, service: ChatService, user: &str) -> bool {
    baton_domain::chat::roles(project, service).is_some_and(|(roles, _, _)| roles.of(user) == ChatRole::None)
}

async fn keep(state: &Arc<AppState>, inbound: Option<ChatInbound>) -> Result<(), AppError> {
    if let Some(c) = inbound {
        baton_chat::take(state, c).await?;
    }
    Ok(())
}

pub(super) async fn slack_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let signed = slack_signed(&state, &headers, &body).await?;
    let payload: Value = serde_json::from_slice(&body).map_err(|e| AppError::invalid(format!("not JSON: {e}")))?;
    if payload["type"] == "url_verification" {
        return Ok(Json(json!({ "challenge": payload["challenge"] })));
    }
    // A retry (X-Slack-Retry-Num) of what was kept before is a repeat: kept once.
    if let Some(project) = of_channel(signed, baton_chat::slack::channel_of(&payload)) {
        keep(&state, baton_chat::slack::from_event(&payload, &project.id)).await?;
    }
    Ok(Json(json!({ "ok": true })))
}

pub(super) async fn slack_commands(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let signed = slack_signed(&state, &headers, &body).await?;
    let fields = baton_chat::slack::form(&body);
    let Some(project) = of_channel(signed, fields["channel_id"].as_str().map(str::to_owned)) else {
        return Ok(Json(json!({ "response_type": "ephemeral", "text": "This channel is not a Baton project's." })));
    };
    if not_allowed(&project, ChatService::Slack, fields["user_id"].as_str().unwrap_or_default()) {
        return Ok(Json(
            json!({ "response_type": "ephemeral", "text": "You have no role in this project's Baton; nothing was done." }),
        ));
    }
    keep(&state, baton_chat::slack::from_command(&fields, &project.id)).await?;
    Ok(Json(json!({ "response_type": "ephemeral", "text": "On it." })))
}

pub(super) async fn slack_interactions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let signed = slack_signed(&state, &headers, &body).await?;
    let fields = baton_chat::slack::form(&body);
    let payload: Value = serde_json::from_str(fields["payload"].as_str().unwrap_or_default())
        .map_err(|e| AppError::invalid(format!("the payload is not JSON: {e}")))?;
    let Some(project) = of_channel(signed, baton_chat::slack::channel_of(&payload)) else {
        return Ok(Json(json!({})));
    };
    if not_allowed(&project, ChatService::Slack, payload["user"]["id"].as_str().unwrap_or_default()) {
        let refusal = json!({ "response_type": "ephemeral", "replace_original": false,
            "text": "You have no role in this project's Baton; nothing was done." });
        return Ok(Json(refusal));
    }
    keep(&state, baton_chat::slack::from_interaction(&payload, &project.id)).await?;
    Ok(Json(json!({})))
}

pub(super) async fn discord_interactions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, AppError> {
    let (ts, sig) = (header(&headers, "x-signature-timestamp"), header(&headers, "x-signature-ed25519"));
    let projects = state.store.read(|r| r.projects()).await?;
    let signed: Vec<Project> = projects
        .into_iter()
        .filter(|p| {
            p.settings
                .chat
                .as_ref()
                .and_then(|c| c.discord.as_ref())
                .is_some_and(|d| baton_chat::discord::verify(&d.public_key, ts, sig, &body))
        })
        .collect();
    if signed.is_empty() {
        return Err(unauthorized("not a request from Discord: the Ed25519 signature does not match"));
    }
    let i: Value = serde_json::from_slice(&body).map_err(|e| AppError::invalid(format!("not JSON: {e}")))?;
    if i["type"].as_u64() == Some(baton_chat::discord::PING) {
        return Ok(Json(json!({ "type": 1 })));
    }
    let channel = i["channel_id"].as_str().unwrap_or_default();
    let project = signed
        .iter()
        .find(|p| baton_domain::chat::roles(p, ChatService::Discord).is_some_and(|(_, _, c)| c == channel))
        .or(signed.first())
        .cloned()
        .ok_or_else(|| unauthorized("no project"))?;
    let user = i["member"]["user"]["id"].as_str().or(i["user"]["id"].as_str()).unwrap_or_default();
    if not_allowed(&project, ChatService::Discord, user) {
        return Ok(Json(json!({ "type": 4, "data": { "flags": 64,
            "content": "You have no role in this project's Baton; nothing was done." } })));
    }
    keep(&state, baton_chat::discord::from_interaction(&i, &project.id)).await?;
    // Deferred: the worker edits the answer in (a command's, or the message the button is on).
    let kind = if i["type"].as_u64() == Some(baton_chat::discord::COMPONENT) { 6 } else { 5 };
    Ok(Json(json!({ "type": kind })))
}

pub(super) async fn status(_: crate::auth::Auth) -> Json<Vec<baton_chat::Health>> {
    Json(baton_chat::status())
}
