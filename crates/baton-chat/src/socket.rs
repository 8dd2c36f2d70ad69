//! Slack's Socket Mode: the app opens a WebSocket (`apps.connections.open`
//! with its app-level token) and Slack sends its events, commands and
//! interactions over it, so a Baton with no public URL works. Each envelope is
//! kept (deduplicated) before it is acknowledged: one Slack sends again after a
//! dropped connection acts once, and none is lost.

use std::sync::Arc;
use std::time::Duration;

use baton_core::chat::{ChatService, SlackSettings};
use baton_core::ids::ProjectId;
use baton_domain::AppState;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

/// Connects, and connects again after a drop (backing off to 30 s), for as
/// long as the project wants Socket Mode.
pub async fn run(state: Arc<AppState>, project: ProjectId) {
    let mut backoff = Duration::from_secs(1);
    loop {
        let id = project.clone();
        let settings = state
            .store
            .read(move |r| r.project(&id))
            .await
            .ok()
            .flatten()
            .and_then(|p| p.settings.chat.and_then(|c| c.slack));
        let Some(settings) = settings.filter(|s| s.app_token_env.is_some()) else { return };
        match session(&state, &project, &settings).await {
            Ok(()) => backoff = Duration::from_secs(1),
            Err(e) => {
                tracing::warn!(%project, error = %e, "Slack Socket Mode connection ended");
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        super::connected(&project, ChatService::Slack, false);
        tokio::time::sleep(backoff).await;
    }
}

/// The WebSocket URL Slack gives for this connection.
async fn open(settings: &SlackSettings) -> Result<String, String> {
    let var = settings.app_token_env.as_deref().unwrap_or_default();
    let token = std::env::var(var).map_err(|_| format!("the variable {var} is not set"))?;
    let api = settings.api_url.clone().unwrap_or_else(|| "https://slack.com/api".into());
    let answer: Value = reqwest::Client::new()
        .post(format!("{api}/apps.connections.open"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("could not reach Slack: {e}"))?
        .json()
        .await
        .map_err(|e| format!("Slack's answer is not JSON: {e}"))?;
    match answer["url"].as_str() {
        Some(url) if answer["ok"] == true => Ok(url.to_owned()),
        _ => Err(format!("apps.connections.open refused: {}", answer["error"].as_str().unwrap_or("no url"))),
    }
}

/// One connection, until Slack closes it or asks to reconnect.
async fn session(state: &Arc<AppState>, project: &ProjectId, settings: &SlackSettings) -> Result<(), String> {
    let url = open(settings).await?;
    let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.map_err(|e| format!("could not connect: {e}"))?;
    super::connected(project, ChatService::Slack, true);
    while let Some(frame) = ws.next().await {
        let frame = frame.map_err(|e| format!("the connection broke: {e}"))?;
        let text = match frame {
            Message::Text(t) => t.to_string(),
            Message::Ping(p) => {
                let _ = ws.send(Message::Pong(p)).await;
                continue;
            }
            Message::Close(_) => return Ok(()),
            _ => continue,
        };
        let Ok(envelope) = serde_json::from_str::<Value>(&text) else { continue };
        match envelope["type"].as_str() {
            Some("hello") => continue,
            Some("disconnect") => return Ok(()),
            _ => {}
        }
        let inbound = match envelope["type"].as_str() {
            Some("events_api") => super::slack::from_event(&envelope["payload"], project),
            Some("slash_commands") => super::slack::from_command(&envelope["payload"], project),
            Some("interactive") => super::slack::from_interaction(&envelope["payload"], project),
            _ => None,
        };
        // Only the project's channel (and DMs) act in it.
        let inbound = inbound.filter(|c| c.channel == settings.channel || c.channel.starts_with('D'));
        // Kept before the acknowledgement: a drop in between sends it again.
        if let Some(c) = inbound
            && let Err(e) = super::take(state, c).await
        {
            tracing::warn!(error = %e, "could not keep a Socket Mode envelope; not acknowledged");
            continue;
        }
        if let Some(id) = envelope["envelope_id"].as_str() {
            ws.send(Message::Text(json!({ "envelope_id": id }).to_string().into()))
                .await
                .map_err(|e| format!("could not acknowledge: {e}"))?;
        }
    }
    Ok(())
}
