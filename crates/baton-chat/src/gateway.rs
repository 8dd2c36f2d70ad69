//! Discord's Gateway: a WebSocket on which Discord sends the messages of the
//! project's channel and its threads (mentions of the bot, replies in the
//! threads Baton follows) and interactions, so a Baton with no public URL
//! works. After a drop it resumes its session (Discord sends again what was
//! missed); each message is kept under its id, so none acts twice.

use std::sync::Arc;
use std::time::Duration;

use baton_core::chat::{ChatService, DiscordSettings};
use baton_core::ids::ProjectId;
use baton_domain::AppState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Guild messages, direct messages and message content.
const INTENTS: u64 = (1 << 9) | (1 << 12) | (1 << 15);

/// What survives a dropped connection: the session to resume and the last
/// sequence number seen.
#[derive(Default)]
struct Resume {
    session: Option<String>,
    url: Option<String>,
    seq: Option<u64>,
    bot: Option<String>,
}

/// Connects, and resumes (or identifies again) after a drop, backing off to
/// 30 s, for as long as the project has `[chat.discord]`.
pub async fn run(state: Arc<AppState>, project: ProjectId) {
    let mut backoff = Duration::from_secs(1);
    let mut resume = Resume::default();
    loop {
        let id = project.clone();
        let settings = state
            .store
            .read(move |r| r.project(&id))
            .await
            .ok()
            .flatten()
            .and_then(|p| p.settings.chat.and_then(|c| c.discord));
        let Some(settings) = settings else { return };
        match session(&state, &project, &settings, &mut resume).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(%project, error = %e, "Discord Gateway connection ended");
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        super::connected(&project, ChatService::Discord, false);
        tokio::time::sleep(backoff).await;
    }
}

async fn gateway_url(settings: &DiscordSettings, token: &str) -> Result<String, String> {
    if let Some(url) = &settings.gateway_url {
        return Ok(url.clone());
    }
    let api = settings.api_url.clone().unwrap_or_else(|| "https://discord.com/api/v10".into());
    let answer: Value = reqwest::Client::new()
        .get(format!("{api}/gateway/bot"))
        .header("authorization", format!("Bot {token}"))
        .send()
        .await
        .map_err(|e| format!("could not reach Discord: {e}"))?
        .json()
        .await
        .map_err(|e| format!("Discord's answer is not JSON: {e}"))?;
    answer["url"].as_str().map(str::to_owned).ok_or_else(|| "Discord gave no Gateway URL".into())
}

/// One connection: hello, identify or resume, heartbeats, and dispatches.
async fn session(
    state: &Arc<AppState>,
    project: &ProjectId,
    settings: &DiscordSettings,
    resume: &mut Resume,
) -> Result<(), String> {
    let token = std::env::var(&settings.bot_token_env)
        .map_err(|_| format!("the variable {} is not set", settings.bot_token_env))?;
    let base = match &resume.url {
        Some(u) => u.clone(),
        None => gateway_url(settings, &token).await?,
    };
    let url = format!("{base}{}v=10&encoding=json", if base.contains('?') { "&" } else { "?" });
    let (ws, _) = tokio_tungstenite::connect_async(&url).await.map_err(|e| format!("could not connect: {e}"))?;
    let (mut tx, mut rx) = ws.split();
    let hello: Value = match rx.next().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).map_err(|e| e.to_string())?,
        other => return Err(format!("no hello: {other:?}")),
    };
    let every = Duration::from_millis(hello["d"]["heartbeat_interval"].as_u64().unwrap_or(41_250));
    let greeting = match (&resume.session, resume.seq) {
        (Some(s), seq) => json!({ "op": 6, "d": { "token": token, "session_id": s, "seq": seq } }),
        (None, _) => json!({ "op": 2, "d": { "token": token, "intents": INTENTS,
            "properties": { "os": "linux", "browser": "baton", "device": "baton" } } }),
    };
    tx.send(Message::Text(greeting.to_string().into())).await.map_err(|e| e.to_string())?;
    super::connected(project, ChatService::Discord, true);
    let mut beat = tokio::time::interval(every);
    beat.tick().await;
    loop {
        tokio::select! {
            _ = beat.tick() => {
                let hb = json!({ "op": 1, "d": resume.seq });
                tx.send(Message::Text(hb.to_string().into())).await.map_err(|e| e.to_string())?;
            }
            frame = rx.next() => {
                let text = match frame {
                    Some(Ok(Message::Text(t))) => t.to_string(),
                    Some(Ok(Message::Close(_))) | None => return Ok(()),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => return Err(format!("the connection broke: {e}")),
                };
                let Ok(event) = serde_json::from_str::<Value>(&text) else { continue };
                if !dispatch(state, project, settings, &token, resume, event).await? {
                    return Ok(());
                }
            }
        }
    }
}

/// Handles one Gateway payload; false when the connection should be made again.
async fn dispatch(
    state: &Arc<AppState>,
    project: &ProjectId,
    settings: &DiscordSettings,
    token: &str,
    resume: &mut Resume,
    event: Value,
) -> Result<bool, String> {
    match event["op"].as_u64() {
        Some(7) => return Ok(false),
        Some(9) => {
            // An invalid session: identify afresh next time.
            *resume = Resume::default();
            return Ok(false);
        }
        Some(0) => {}
        _ => return Ok(true),
    }
    if let Some(s) = event["s"].as_u64() {
        resume.seq = Some(s);
    }
    let d = &event["d"];
    let inbound = match event["t"].as_str() {
        Some("READY") => {
            resume.session = d["session_id"].as_str().map(str::to_owned);
            resume.url = d["resume_gateway_url"].as_str().map(str::to_owned);
            resume.bot = d["user"]["id"].as_str().map(str::to_owned);
            None
        }
        Some("MESSAGE_CREATE") => {
            let bot = resume.bot.clone().unwrap_or_default();
            super::discord::from_message(d, project, &bot, &settings.channel)
        }
        Some("INTERACTION_CREATE") => {
            let c = super::discord::from_interaction(d, project);
            if c.is_some() {
                defer(settings, token, d).await;
            }
            c
        }
        _ => None,
    };
    if let Some(c) = inbound {
        super::take(state, c).await.map_err(|e| e.to_string())?;
    }
    Ok(true)
}

/// Answers an interaction that came over the Gateway within Discord's three
/// seconds: deferred (the worker edits the answer in).
async fn defer(settings: &DiscordSettings, token: &str, interaction: &Value) {
    let (Some(id), Some(itoken)) = (interaction["id"].as_str(), interaction["token"].as_str()) else { return };
    let kind = if interaction["type"].as_u64() == Some(super::discord::COMPONENT) { 6 } else { 5 };
    let api = settings.api_url.clone().unwrap_or_else(|| "https://discord.com/api/v10".into());
    let _ = reqwest::Client::new()
        .post(format!("{api}/interactions/{id}/{itoken}/callback"))
        .header("authorization", format!("Bot {token}"))
        .json(&json!({ "type": kind }))
        .send()
        .await;
}
