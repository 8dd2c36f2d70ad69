//! Posts, sent: Slack's Web API (`chat.postMessage`, `chat.update`,
//! `chat.postEphemeral`, `response_url`) and Discord's REST API (channel
//! webhooks for each agent's name and avatar, threads, interaction
//! responses). Each agent posts under its own name. Posts keep to about one a
//! second per Slack channel and to Discord's rate-limit headers, honour
//! `Retry-After`, and after repeated 401/403 a service stops with the reason.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use baton_core::chat::{ChatButton, ChatPost, ChatService, DiscordSettings, PostKind, SlackSettings};
use serde_json::{Value, json};

/// Slack's limit for a section's text, in characters.
pub const SLACK_TEXT: usize = 3000;

/// Discord's limit for a message's content, in characters.
pub const DISCORD_TEXT: usize = 2000;

/// How many 401/403 in a row stop a service.
pub const AUTH_FAILURES: u32 = 3;

/// What became of a try.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Sent: the message it made, and the thread it went in (a new one, or its own `ts`).
    Sent {
        /// The message.
        made: Option<String>,
        /// The thread.
        thread: Option<String>,
    },
    /// Try again after this long.
    Retry(Duration, String),
    /// Refused for good (a bad request, a channel that does not exist).
    Failed(String),
    /// The service refused the token.
    Unauthorized(String),
}

/// Who a post is from: an agent's name and avatar, or Baton.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The name shown.
    pub name: String,
    /// The avatar, when the agent's definition gives one (`avatar_url`).
    pub avatar: Option<String>,
}

/// The sender: one HTTP client, the pacing of each channel, and Discord's
/// channel webhooks.
pub struct Sender {
    client: reqwest::Client,
    next: Mutex<HashMap<String, Instant>>,
    hooks: Mutex<HashMap<String, (String, String)>>,
    /// The dashboard's root, for View buttons.
    pub public_url: String,
}

fn cut(text: &str, max: usize, link: &str) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let more = format!("… (the rest: {link})");
    let keep: String = text.chars().take(max.saturating_sub(more.chars().count())).collect();
    format!("{keep}{more}")
}

fn env(var: &str) -> Result<String, String> {
    std::env::var(var).ok().filter(|v| !v.trim().is_empty()).ok_or_else(|| format!("the variable {var} is not set"))
}

/// Seconds a 429 asks to wait (`Retry-After`, or Discord's `retry_after`).
fn retry_after(headers: &reqwest::header::HeaderMap, body: &Value) -> Duration {
    let header = headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<f64>().ok());
    let secs = header.or_else(|| body["retry_after"].as_f64()).unwrap_or(1.0).clamp(0.05, 600.0);
    Duration::from_secs_f64(secs)
}

impl Sender {
    /// A sender.
    pub fn new(public_url: String) -> Result<Sender, String> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("Baton/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Sender { client, next: Mutex::default(), hooks: Mutex::default(), public_url })
    }

    /// How long until `channel` may be posted to again (zero: now).
    pub fn wait_for(&self, service: ChatService, channel: &str) -> Duration {
        let key = format!("{service}:{channel}");
        self.next
            .lock()
            .ok()
            .and_then(|n| n.get(&key).copied())
            .map_or(Duration::ZERO, |at| at.saturating_duration_since(Instant::now()))
    }

    fn hold(&self, service: ChatService, channel: &str, for_: Duration) {
        if let Ok(mut n) = self.next.lock() {
            n.insert(format!("{service}:{channel}"), Instant::now() + for_);
        }
    }

    fn view(&self, target: &str) -> String {
        format!("{}/#/tasks/{target}", self.public_url.trim_end_matches('/'))
    }

    /// Sends one post to Slack.
    pub async fn slack(&self, s: &SlackSettings, p: &ChatPost, who: &Identity) -> Outcome {
        let token = match env(&s.bot_token_env) {
            Ok(t) => t,
            Err(e) => return Outcome::Unauthorized(e),
        };
        let api = s.api_url.clone().unwrap_or_else(|| "https://slack.com/api".into());
        let text = cut(&p.text, SLACK_TEXT, &p.bind.as_ref().map_or_else(|| self.view(""), |t| self.view(t.as_str())));
        let blocks = self.slack_blocks(&text, &p.buttons);
        let (url, body, auth) = match &p.post {
            PostKind::New => {
                let mut b = json!({ "channel": p.channel, "text": text, "blocks": blocks, "username": who.name });
                if let Some(t) = &p.thread {
                    b["thread_ts"] = json!(t);
                }
                if let Some(a) = &who.avatar {
                    b["icon_url"] = json!(a);
                }
                (format!("{api}/chat.postMessage"), b, true)
            }
            PostKind::Edit { message } => (
                format!("{api}/chat.update"),
                json!({ "channel": p.channel, "ts": message, "text": text, "blocks": blocks }),
                true,
            ),
            PostKind::Reply { to, .. } if to.starts_with("user:") => {
                let user = to.trim_start_matches("user:");
                let mut b = json!({ "channel": p.channel, "user": user, "text": text });
                if let Some(t) = &p.thread {
                    b["thread_ts"] = json!(t);
                }
                (format!("{api}/chat.postEphemeral"), b, true)
            }
            PostKind::Reply { to, ephemeral, replace } => {
                let kind = if *ephemeral { "ephemeral" } else { "in_channel" };
                let b = json!({ "text": text, "blocks": blocks, "response_type": kind, "replace_original": replace });
                (to.clone(), b, false)
            }
        };
        self.hold(ChatService::Slack, &p.channel, Duration::from_secs(1));
        let mut req = self.client.post(&url).json(&body);
        if auth {
            req = req.bearer_auth(token);
        }
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(Duration::from_secs(2), format!("could not reach Slack: {e}")),
        };
        let (status, headers) = (resp.status(), resp.headers().clone());
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        slack_outcome(status.as_u16(), &headers, &answer, p)
    }

    fn slack_blocks(&self, text: &str, buttons: &[ChatButton]) -> Value {
        let mut blocks = vec![json!({ "type": "section", "text": { "type": "mrkdwn", "text": text } })];
        if !buttons.is_empty() {
            let elements: Vec<Value> = buttons
                .iter()
                .map(|b| match b.action.as_str() {
                    "view" => json!({ "type": "button", "text": { "type": "plain_text", "text": b.label }, "url": self.view(&b.target), "action_id": "view" }),
                    _ => json!({ "type": "button", "text": { "type": "plain_text", "text": b.label }, "action_id": b.action, "value": b.target }),
                })
                .collect();
            blocks.push(json!({ "type": "actions", "elements": elements }));
        }
        Value::Array(blocks)
    }
}

fn slack_outcome(status: u16, headers: &reqwest::header::HeaderMap, answer: &Value, p: &ChatPost) -> Outcome {
    match status {
        429 => Outcome::Retry(retry_after(headers, answer), "Slack asked to slow down (429)".into()),
        401 | 403 => Outcome::Unauthorized(format!("Slack answered {status}")),
        s if s >= 500 => Outcome::Retry(Duration::from_secs(5), format!("Slack answered {s}")),
        s if s >= 400 => Outcome::Failed(format!("Slack answered {s}")),
        _ if answer["ok"] == false => {
            let error = answer["error"].as_str().unwrap_or("unknown");
            match error {
                "ratelimited" => Outcome::Retry(retry_after(headers, answer), "ratelimited".into()),
                "invalid_auth" | "not_authed" | "account_inactive" | "token_revoked" | "missing_scope" => {
                    Outcome::Unauthorized(format!("Slack refused the token: {error}"))
                }
                _ => Outcome::Failed(format!("Slack refused the post: {error}")),
            }
        }
        _ => {
            let made = answer["ts"].as_str().map(str::to_owned);
            // A new message with no thread is the root of its own.
            let thread = p.thread.clone().or_else(|| made.clone().filter(|_| matches!(p.post, PostKind::New)));
            Outcome::Sent { made, thread }
        }
    }
}

impl Sender {
    /// Sends one post to Discord.
    pub async fn discord(&self, d: &DiscordSettings, p: &ChatPost, who: &Identity) -> Outcome {
        let token = match env(&d.bot_token_env) {
            Ok(t) => t,
            Err(e) => return Outcome::Unauthorized(e),
        };
        let api = d.api_url.clone().unwrap_or_else(|| "https://discord.com/api/v10".into());
        let content =
            cut(&p.text, DISCORD_TEXT, &p.bind.as_ref().map_or_else(|| self.view(""), |t| self.view(t.as_str())));
        let components = self.discord_components(&p.buttons);
        let bot = format!("Bot {token}");
        match &p.post {
            PostKind::Reply { to, ephemeral, .. } => {
                let mut body = json!({ "content": content, "components": components });
                if *ephemeral {
                    body["flags"] = json!(64);
                }
                let url = format!("{api}/webhooks/{}/{to}/messages/@original", d.application_id);
                self.discord_call(self.client.patch(url).json(&body), &p.channel, None).await
            }
            PostKind::Edit { message } => {
                let Ok((id, hook)) = self.hook(&api, &bot, &d.channel).await else {
                    return Outcome::Retry(Duration::from_secs(5), "no channel webhook".into());
                };
                let mut url = format!("{api}/webhooks/{id}/{hook}/messages/{message}");
                if let Some(t) = p.thread.as_ref().filter(|t| *t != &d.channel) {
                    url.push_str(&format!("?thread_id={t}"));
                }
                let body = json!({ "content": content, "components": components });
                self.discord_call(self.client.patch(url).json(&body), &p.channel, p.thread.clone()).await
            }
            PostKind::New => self.discord_new(d, &api, &bot, p, who, content, components).await,
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn discord_new(
        &self,
        d: &DiscordSettings,
        api: &str,
        bot: &str,
        p: &ChatPost,
        who: &Identity,
        content: String,
        components: Value,
    ) -> Outcome {
        // A bound post with no thread starts one; `from:M` starts one from message M.
        let thread = match (&p.thread, &p.bind) {
            (Some(t), _) if t.starts_with("from:") => {
                let name: String = p.text.lines().next().unwrap_or("Baton").chars().take(90).collect();
                let url = format!("{api}/channels/{}/messages/{}/threads", d.channel, t.trim_start_matches("from:"));
                match self
                    .thread(self.client.post(url).header("authorization", bot).json(&json!({ "name": name })))
                    .await
                {
                    Ok(id) => Some(id),
                    Err(o) => return o,
                }
            }
            (None, Some(_)) => {
                let name: String = p.text.lines().next().unwrap_or("Baton").chars().take(90).collect();
                let url = format!("{api}/channels/{}/threads", d.channel);
                let body = json!({ "name": name, "type": 11 });
                match self.thread(self.client.post(url).header("authorization", bot).json(&body)).await {
                    Ok(id) => Some(id),
                    Err(o) => return o,
                }
            }
            (other, _) => other.clone(),
        };
        let Ok((id, hook)) = self.hook(api, bot, &d.channel).await else {
            return Outcome::Retry(Duration::from_secs(5), "no channel webhook".into());
        };
        let mut url = format!("{api}/webhooks/{id}/{hook}?wait=true");
        if let Some(t) = thread.as_ref().filter(|t| *t != &d.channel) {
            url.push_str(&format!("&thread_id={t}"));
        }
        let mut body = json!({ "content": content, "components": components, "username": who.name });
        if let Some(a) = &who.avatar {
            body["avatar_url"] = json!(a);
        }
        self.discord_call(self.client.post(url).json(&body), &p.channel, thread).await
    }

    /// Creates a thread; its id.
    async fn thread(&self, req: reqwest::RequestBuilder) -> Result<String, Outcome> {
        match self.discord_call(req, "threads", None).await {
            Outcome::Sent { made: Some(id), .. } => Ok(id),
            Outcome::Sent { made: None, .. } => Err(Outcome::Failed("Discord made a thread without an id".into())),
            other => Err(other),
        }
    }

    /// The channel's webhook (Baton's own, made once), as id and token.
    async fn hook(&self, api: &str, bot: &str, channel: &str) -> Result<(String, String), ()> {
        if let Some(h) = self.hooks.lock().ok().and_then(|h| h.get(channel).cloned()) {
            return Ok(h);
        }
        let list: Value = self
            .client
            .get(format!("{api}/channels/{channel}/webhooks"))
            .header("authorization", bot)
            .send()
            .await
            .map_err(|_| ())?
            .json()
            .await
            .map_err(|_| ())?;
        let found =
            list.as_array().and_then(|a| a.iter().find(|w| w["name"] == "Baton" && w["token"].is_string()).cloned());
        let hook = match found {
            Some(h) => h,
            None => {
                let made = self
                    .client
                    .post(format!("{api}/channels/{channel}/webhooks"))
                    .header("authorization", bot)
                    .json(&json!({ "name": "Baton" }));
                made.send().await.map_err(|_| ())?.json().await.map_err(|_| ())?
            }
        };
        let pair = (hook["id"].as_str().ok_or(())?.to_owned(), hook["token"].as_str().ok_or(())?.to_owned());
        if let Ok(mut h) = self.hooks.lock() {
            h.insert(channel.to_owned(), pair.clone());
        }
        Ok(pair)
    }

    async fn discord_call(&self, req: reqwest::RequestBuilder, bucket: &str, thread: Option<String>) -> Outcome {
        let resp = match req.send().await {
            Ok(r) => r,
            Err(e) => return Outcome::Retry(Duration::from_secs(2), format!("could not reach Discord: {e}")),
        };
        let (status, headers) = (resp.status().as_u16(), resp.headers().clone());
        let answer: Value = resp.json().await.unwrap_or(Value::Null);
        // Keep to the bucket's limit: an empty one waits for its reset.
        let remaining =
            headers.get("x-ratelimit-remaining").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u32>().ok());
        let reset =
            headers.get("x-ratelimit-reset-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<f64>().ok());
        if let (Some(0), Some(after)) = (remaining, reset) {
            self.hold(ChatService::Discord, bucket, Duration::from_secs_f64(after.clamp(0.0, 600.0)));
        }
        match status {
            429 => Outcome::Retry(retry_after(&headers, &answer), "Discord asked to slow down (429)".into()),
            401 | 403 => Outcome::Unauthorized(format!(
                "Discord answered {status}: {}",
                answer["message"].as_str().unwrap_or("")
            )),
            s if s >= 500 => Outcome::Retry(Duration::from_secs(5), format!("Discord answered {s}")),
            s if s >= 400 => {
                Outcome::Failed(format!("Discord answered {s}: {}", answer["message"].as_str().unwrap_or("")))
            }
            _ => Outcome::Sent { made: answer["id"].as_str().map(str::to_owned), thread },
        }
    }

    fn discord_components(&self, buttons: &[ChatButton]) -> Value {
        if buttons.is_empty() {
            return json!([]);
        }
        let row: Vec<Value> = buttons
            .iter()
            .map(|b| match b.action.as_str() {
                "view" => json!({ "type": 2, "style": 5, "label": b.label, "url": self.view(&b.target) }),
                "stop" | "deny" => json!({ "type": 2, "style": 4, "label": b.label, "custom_id": format!("{}:{}", b.action, b.target) }),
                _ => json!({ "type": 2, "style": 1, "label": b.label, "custom_id": format!("{}:{}", b.action, b.target) }),
            })
            .collect();
        json!([{ "type": 1, "components": row }])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_text_is_cut_with_a_link_never_dropped() {
        let long = "x".repeat(5000);
        let out = cut(&long, 2000, "http://b/#/tasks/t-1");
        assert_eq!(out.chars().count(), 2000);
        assert!(out.ends_with("(the rest: http://b/#/tasks/t-1)"));
        assert_eq!(cut("short", 2000, "l"), "short");
    }
}
