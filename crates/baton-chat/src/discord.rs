//! Discord: interactions verified as Discord signs them (Ed25519 over
//! `timestamp + body` with the application's public key), slash commands and
//! message components turned into what Baton acts on, and the Gateway's
//! messages (mentions, replies in threads).

use baton_core::chat::{ChatAsk, ChatInbound, ChatService};
use baton_core::ids::ProjectId;
use baton_core::time::Timestamp;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::Value;

/// Interaction types.
pub const PING: u64 = 1;
/// A slash command.
pub const COMMAND: u64 = 2;
/// A button.
pub const COMPONENT: u64 = 3;

/// Checks an interaction's signature with the application's public key (hex).
pub fn verify(public_key: &str, timestamp: Option<&str>, signature: Option<&str>, body: &[u8]) -> bool {
    let (Some(ts), Some(sig)) = (timestamp, signature) else { return false };
    let Ok(key) = hex::decode(public_key.trim()).map_err(|_| ()).and_then(|k| <[u8; 32]>::try_from(k).map_err(|_| ()))
    else {
        return false;
    };
    let Ok(key) = VerifyingKey::from_bytes(&key) else { return false };
    let Ok(sig) = hex::decode(sig.trim()).map_err(|_| ()).and_then(|s| <[u8; 64]>::try_from(s).map_err(|_| ())) else {
        return false;
    };
    let mut message = ts.as_bytes().to_vec();
    message.extend_from_slice(body);
    key.verify(&message, &Signature::from_bytes(&sig)).is_ok()
}

fn user_of(i: &Value) -> Option<&str> {
    i["member"]["user"]["id"].as_str().or_else(|| i["user"]["id"].as_str())
}

fn inbound(key: String, project: &ProjectId, user: &str, channel: &str, ask: ChatAsk) -> ChatInbound {
    ChatInbound {
        key,
        service: ChatService::Discord,
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

/// `/baton run prompt:… agent:…` and the rest, as the text after `/baton`.
fn command_text(data: &Value) -> String {
    let Some(sub) = data["options"].get(0) else { return String::new() };
    let mut words = vec![sub["name"].as_str().unwrap_or_default().to_owned()];
    let options = sub["options"].as_array().cloned().unwrap_or_default();
    let value =
        |name: &str| options.iter().find(|o| o["name"] == name).and_then(|o| o["value"].as_str().map(str::to_owned));
    if let Some(agent) = value("agent") {
        words.push(format!("--agent {agent}"));
    }
    words.extend(value("task"));
    words.extend(value("prompt"));
    words.join(" ")
}

/// A slash command or a button, as Baton acts on it. The interaction's token
/// is where the answer goes (its original response, deferred).
pub fn from_interaction(i: &Value, project: &ProjectId) -> Option<ChatInbound> {
    let (id, user, channel) = (i["id"].as_str()?, user_of(i)?, i["channel_id"].as_str()?);
    let ask = match i["type"].as_u64()? {
        COMMAND => ChatAsk::Command { text: command_text(&i["data"]) },
        COMPONENT => {
            let (action, task) = i["data"]["custom_id"].as_str()?.split_once(':')?;
            ChatAsk::Button { action: action.to_owned(), task: task.to_owned() }
        }
        _ => return None,
    };
    let mut c = inbound(format!("discord:interaction:{id}"), project, user, channel, ask);
    c.reply_to = i["token"].as_str().map(str::to_owned);
    c.message = i["message"]["id"].as_str().map(str::to_owned);
    Some(c)
}

/// A Gateway `MESSAGE_CREATE`: a mention of the bot in the project's channel
/// (a new thread), or a message in a thread (a reply). Bots' own are ignored.
pub fn from_message(m: &Value, project: &ProjectId, bot: &str, channel: &str) -> Option<ChatInbound> {
    if m["author"]["bot"].as_bool() == Some(true) {
        return None;
    }
    let (id, user, at) = (m["id"].as_str()?, m["author"]["id"].as_str()?, m["channel_id"].as_str()?);
    let mentioned = m["mentions"].as_array().is_some_and(|a| a.iter().any(|u| u["id"] == bot));
    let text = m["content"].as_str().unwrap_or_default().replace(&format!("<@{bot}>"), "").trim().to_owned();
    let (ask, thread) = match (at == channel, mentioned) {
        (true, true) => (ChatAsk::Mention { text }, None),
        (true, false) => return None,
        // In a thread (its own channel): a reply, if Baton follows it.
        (false, _) => (ChatAsk::Reply { text }, Some(at.to_owned())),
    };
    // A thread is keyed under the project's channel, its parent.
    let mut c = inbound(format!("discord:message:{id}"), project, user, channel, ask);
    c.thread = thread;
    c.message = Some(id.to_owned());
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::json;

    #[test]
    fn interactions_are_verified_with_the_applications_key() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let public = hex::encode(key.verifying_key().to_bytes());
        let body = br#"{"type":1}"#;
        let sig = hex::encode(key.sign(&[b"123".as_slice(), body].concat()).to_bytes());
        assert!(verify(&public, Some("123"), Some(&sig), body));
        assert!(!verify(&public, Some("124"), Some(&sig), body), "another timestamp");
        assert!(!verify(&public, Some("123"), Some("00"), body));
        assert!(!verify(&public, None, Some(&sig), body));
    }

    #[test]
    fn commands_and_buttons_become_asks() {
        let p = ProjectId::generate();
        let cmd = json!({"id": "1", "type": 2, "channel_id": "C", "token": "tok", "member": {"user": {"id": "U"}},
            "data": {"name": "baton", "options": [{"name": "run", "type": 1, "options": [{"name": "prompt", "value": "fix it"}, {"name": "agent", "value": "w"}]}]}});
        let c = from_interaction(&cmd, &p).unwrap();
        assert_eq!(c.ask, ChatAsk::Command { text: "run --agent w fix it".into() });
        assert_eq!(c.reply_to.as_deref(), Some("tok"));
        let button = json!({"id": "2", "type": 3, "channel_id": "C", "token": "t2", "user": {"id": "U"}, "data": {"custom_id": "approve:t-1"}});
        assert_eq!(
            from_interaction(&button, &p).unwrap().ask,
            ChatAsk::Button { action: "approve".into(), task: "t-1".into() }
        );
    }
}
