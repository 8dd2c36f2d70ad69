//! Slack: requests verified as Slack signs them (`v0=` HMAC-SHA256 of
//! `v0:timestamp:body` with the app's signing secret, within five minutes),
//! and events, slash commands and interactions turned into what Baton acts on.
//! The same payloads come over Socket Mode, unsigned but on the app's own
//! connection.

use baton_core::chat::{ChatAsk, ChatInbound, ChatService};
use baton_core::ids::ProjectId;
use baton_core::time::Timestamp;
use serde_json::Value;

/// How old a signed request may be.
pub const WINDOW_S: i64 = 300;

/// Why a request was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    /// No signature or timestamp header.
    #[error("the request is not signed (X-Slack-Signature and X-Slack-Request-Timestamp)")]
    Unsigned,
    /// Outside the window.
    #[error("the request's timestamp is {0} s away from now (at most 300)")]
    Stale(i64),
    /// Wrong signature.
    #[error("the request's signature does not match")]
    BadSignature,
}

/// Checks a request's signature with `secret`, at `now` (seconds).
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), Refused> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else { return Err(Refused::Unsigned) };
    let at: i64 = ts.trim().parse().map_err(|_| Refused::Unsigned)?;
    if (now - at).abs() > WINDOW_S {
        return Err(Refused::Stale(now - at));
    }
    let mut message = format!("v0:{ts}:").into_bytes();
    message.extend_from_slice(body);
    let want = format!("v0={}", hex::encode(baton_domain::signature::hmac_sha256(secret.as_bytes(), &message)));
    let given = sig.trim().as_bytes();
    if given.len() != want.len() || !baton_domain::signature::same(want.as_bytes(), given) {
        return Err(Refused::BadSignature);
    }
    Ok(())
}

/// The signature Slack would send for `body` at `timestamp` (for tests and fakes).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    format!("v0={}", hex::encode(baton_domain::signature::hmac_sha256(secret.as_bytes(), &message)))
}

/// The channel an event, command or interaction comes from.
pub fn channel_of(payload: &Value) -> Option<String> {
    payload["event"]["channel"]
        .as_str()
        .or_else(|| payload["channel_id"].as_str())
        .or_else(|| payload["channel"]["id"].as_str())
        .map(str::to_owned)
}

fn inbound(key: String, project: &ProjectId, user: &str, channel: &str, ask: ChatAsk) -> ChatInbound {
    ChatInbound {
        key,
        service: ChatService::Slack,
        project_id: project.clone(),
        user: user.to_owned(),
        channel: channel.to_owned(),
        thread: None,
        message: None,
        ask,
        reply_to: None,
        state: "pending".into(),
        outcome: None,
        received_at: Timestamp::now(),
    }
}

/// A mention's text with the leading mentions (`<@U123>`) taken out.
fn without_mentions(text: &str) -> String {
    let mut rest = text.trim();
    while let Some(after) = rest.strip_prefix("<@") {
        match after.find('>') {
            Some(end) => rest = after[end + 1..].trim_start(),
            None => break,
        }
    }
    rest.to_owned()
}

/// An Events API callback: an `app_mention`, a DM, or a message in a thread.
/// Its key is the message's (`channel:ts`), so the `app_mention` and the
/// `message` events of one message act once. Bots' own messages are ignored.
pub fn from_event(envelope: &Value, project: &ProjectId) -> Option<ChatInbound> {
    let e = &envelope["event"];
    if e["bot_id"].is_string() || e["subtype"].is_string() {
        return None;
    }
    let (user, channel, ts) = (e["user"].as_str()?, e["channel"].as_str()?, e["ts"].as_str()?);
    let text = without_mentions(e["text"].as_str().unwrap_or_default());
    let thread = e["thread_ts"].as_str().filter(|t| *t != ts).map(str::to_owned);
    let ask = match (e["type"].as_str()?, e["channel_type"].as_str(), &thread) {
        ("app_mention", _, _) | ("message", Some("im"), None) => ChatAsk::Mention { text },
        ("message", _, Some(_)) => ChatAsk::Reply { text },
        _ => return None,
    };
    let mut c = inbound(format!("slack:{channel}:{ts}"), project, user, channel, ask);
    c.thread = thread;
    c.message = Some(ts.to_owned());
    Some(c)
}

/// A slash command (`/baton run …`), from its form fields (or Socket Mode's JSON).
pub fn from_command(fields: &Value, project: &ProjectId) -> Option<ChatInbound> {
    let (user, channel) = (fields["user_id"].as_str()?, fields["channel_id"].as_str()?);
    let key = fields["trigger_id"].as_str().map_or_else(
        || format!("slack:command:{channel}:{user}:{}", Timestamp::now().as_millis()),
        |t| format!("slack:command:{t}"),
    );
    let text = fields["text"].as_str().unwrap_or_default().trim().to_owned();
    let mut c = inbound(key, project, user, channel, ChatAsk::Command { text });
    c.reply_to = fields["response_url"].as_str().map(str::to_owned);
    Some(c)
}

/// A button pressed on one of Baton's messages (`block_actions`).
pub fn from_interaction(payload: &Value, project: &ProjectId) -> Option<ChatInbound> {
    if payload["type"].as_str()? != "block_actions" {
        return None;
    }
    let action = payload["actions"].get(0)?;
    let (user, channel) = (payload["user"]["id"].as_str()?, payload["channel"]["id"].as_str()?);
    let key = match payload["trigger_id"].as_str() {
        Some(t) => format!("slack:action:{t}"),
        None => format!("slack:action:{}:{}", action["action_ts"].as_str()?, user),
    };
    let ask = ChatAsk::Button {
        action: action["action_id"].as_str()?.to_owned(),
        task: action["value"].as_str()?.to_owned(),
    };
    let mut c = inbound(key, project, user, channel, ask);
    c.thread = payload["message"]["thread_ts"].as_str().map(str::to_owned);
    c.message = payload["message"]["ts"].as_str().map(str::to_owned);
    c.reply_to = payload["response_url"].as_str().map(str::to_owned);
    Some(c)
}

/// A form body as a JSON object of its fields.
pub fn form(body: &[u8]) -> Value {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap_or_default();
    Value::Object(pairs.into_iter().map(|(k, v)| (k, Value::String(v))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn signatures_are_checked_within_five_minutes() {
        let body = b"token=x&text=run";
        let sig = sign("s3cret", 1_000_000, body);
        assert_eq!(verify("s3cret", Some("1000000"), Some(&sig), body, 1_000_100), Ok(()));
        assert_eq!(verify("other", Some("1000000"), Some(&sig), body, 1_000_100), Err(Refused::BadSignature));
        assert_eq!(verify("s3cret", Some("1000000"), Some(&sig), body, 1_000_301), Err(Refused::Stale(301)));
        assert_eq!(verify("s3cret", None, Some(&sig), body, 1_000_000), Err(Refused::Unsigned));
    }

    #[test]
    fn a_mention_and_its_message_event_share_a_key_and_bots_are_ignored() {
        let p = ProjectId::generate();
        let mention = json!({"event": {"type": "app_mention", "user": "U1", "channel": "C1", "ts": "1.5", "text": "<@UB> fix it"}});
        let c = from_event(&mention, &p).unwrap();
        assert_eq!((c.key.as_str(), &c.ask), ("slack:C1:1.5", &ChatAsk::Mention { text: "fix it".into() }));
        let reply = json!({"event": {"type": "message", "user": "U1", "channel": "C1", "ts": "2.0", "thread_ts": "1.5", "text": "more"}});
        assert_eq!(from_event(&reply, &p).unwrap().thread.as_deref(), Some("1.5"));
        let bot = json!({"event": {"type": "message", "bot_id": "B1", "user": "U1", "channel": "C1", "ts": "3.0", "thread_ts": "1.5"}});
        assert!(from_event(&bot, &p).is_none());
        let top = json!({"event": {"type": "message", "user": "U1", "channel": "C1", "ts": "4.0", "text": "hi"}});
        assert!(from_event(&top, &p).is_none(), "a plain channel message is not for Baton");
    }
}
