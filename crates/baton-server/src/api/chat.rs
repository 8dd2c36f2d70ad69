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

pub(super) async fn status(_: crate::auth::Auth) -> Result<Json<Vec<baton_chat::Health>>, AppError> {
    Ok(Json(baton_chat::status()))
}

#[derive(serde::Deserialize, schemars::JsonSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct ChatTest {
    /// The project (default: the only one).
    #[serde(default)]
    project: Option<String>,
}

/// What a test post came to.
#[derive(serde::Serialize, schemars::JsonSchema)]
pub(super) struct ChatTested {
    /// `slack` or `discord`.
    service: String,
    /// The channel.
    channel: String,
    /// Whether it was posted.
    sent: bool,
    /// Why not.
    error: Option<String>,
}

pub(super) async fn test(
    State(state): State<Arc<AppState>>,
    crate::auth::Auth(caller): crate::auth::Auth,
    super::http::OptionalJson(req): super::http::OptionalJson<ChatTest>,
) -> Result<Json<Vec<ChatTested>>, AppError> {
    caller.require_admin()?;
    let project =
        state.store.read(move |r| baton_domain::resolve::request_project(r, req.project.as_deref(), None)).await?;
    let mut ids = Vec::new();
    for service in [ChatService::Slack, ChatService::Discord] {
        let Some((_, _, channel)) = baton_domain::chat::roles(&project, service) else { continue };
        let text = format!("Baton's test message for project {}: this channel can hear from Baton.", project.name);
        let post = baton_domain::chat::post((&service, &project.id, &channel), None, text);
        ids.push((service, channel, post.id.clone()));
        state.store.write(move |tx| tx.put_chat_post(&post)).await?;
    }
    if ids.is_empty() {
        return Err(AppError::new(
            ErrorCode::Conflict,
            format!("project {} has no [chat.slack] or [chat.discord]", project.name),
        ));
    }
    baton_chat::WORK.notify_one();
    let mut out = Vec::new();
    for (service, channel, id) in ids {
        let start = std::time::Instant::now();
        let post = loop {
            let i = id.clone();
            let p = state.store.read(move |r| r.chat_post(&i)).await?;
            match p {
                Some(p) if p.state != "pending" || start.elapsed() > std::time::Duration::from_secs(15) => {
                    break Some(p);
                }
                None => break None,
                _ => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            }
        };
        let (sent, error) =
            match post {
                Some(p) if p.state == "sent" => (true, None),
                Some(p) => (
                    false,
                    Some(p.error.unwrap_or_else(|| {
                        "still waiting after 15 s (is this the replica that runs the timers?)".into()
                    })),
                ),
                None => (false, Some("the post disappeared".into())),
            };
        out.push(ChatTested { service: service.to_string(), channel, sent, error });
    }
    Ok(Json(out))
}

/// `POST /api/permissions`: what an agent asks to do.
#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AskPermission {
    /// The tool it wants to use: 1 to 200 characters, not blank, no control characters.
    #[schemars(length(min = 1, max = 200), regex(pattern = baton_core::names::LINE_PATTERN))]
    tool_name: String,
    /// Its input.
    #[serde(default)]
    input: Value,
}

pub(super) async fn ask_permission(
    State(state): State<Arc<AppState>>,
    crate::auth::Auth(caller): crate::auth::Auth,
    super::http::ApiJson(req): super::http::ApiJson<AskPermission>,
) -> Result<(axum::http::StatusCode, Json<baton_core::chat::PermissionRequest>), AppError> {
    let session = caller
        .session()
        .ok_or_else(|| AppError::forbidden("permission requests come from an agent's session token"))?;
    let tool = &req.tool_name;
    if tool.trim().is_empty() || tool.chars().count() > 200 || tool.chars().any(char::is_control) {
        return Err(AppError::invalid("`tool_name` must be 1 to 200 characters, not blank, no control characters"));
    }
    let asked = baton_domain::transact(&state, move |tx, _| {
        Ok::<_, AppError>(baton_domain::chat::ask_permission(tx, &session, req.tool_name, req.input)?)
    })
    .await?;
    baton_chat::WORK.notify_one();
    Ok((axum::http::StatusCode::CREATED, Json(asked)))
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
pub(super) struct WaitQuery {
    /// At most this many seconds (25 at most).
    timeout_s: Option<u64>,
}

pub(super) async fn wait_permission(
    State(state): State<Arc<AppState>>,
    _: crate::auth::Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
    super::http::ApiQuery(q): super::http::ApiQuery<WaitQuery>,
) -> Result<Json<baton_core::chat::PermissionRequest>, AppError> {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(q.timeout_s.unwrap_or(25).min(25));
    loop {
        let i = id.clone();
        let req = state.store.write(move |tx| baton_domain::chat::decided_permission(tx, &i)).await?;
        if req.state != "pending" || std::time::Instant::now() >= until {
            return Ok(Json(req));
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AnswerPermission {
    /// Allow (true) or deny (false).
    allow: bool,
}

pub(super) async fn answer_permission(
    State(state): State<Arc<AppState>>,
    crate::auth::Auth(caller): crate::auth::Auth,
    axum::extract::Path(id): axum::extract::Path<String>,
    super::http::ApiJson(req): super::http::ApiJson<AnswerPermission>,
) -> Result<Json<baton_core::chat::PermissionRequest>, AppError> {
    caller.require_admin()?;
    let answered =
        state.store.write(move |tx| baton_domain::chat::answer_permission(tx, &id, req.allow, "admin".into())).await?;
    Ok(Json(answered))
}
