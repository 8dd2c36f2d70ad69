//! A fake Discord for tests and for trying Baton by hand: the REST routes
//! Baton calls (channel webhooks and their messages, threads, interaction
//! responses, `/gateway/bot`), a Gateway WebSocket (hello, identify, ready,
//! heartbeats, resume with the events missed), and the sender side, which
//! signs interactions with the application's Ed25519 key as Discord does.
//!
//! Every message is recorded ([`FakeDiscord::messages`]). [`FakeDiscord::say`]
//! sends a `MESSAGE_CREATE` on the Gateway; [`FakeDiscord::drop_gateway`]
//! closes the connection (Baton resumes and gets what it missed).

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use ed25519_dalek::{Signer, SigningKey};
use serde_json::{Value, json};

/// The bot's user id on the fake.
pub const BOT: &str = "900000000000000001";

/// A message Baton sent or edited.
#[derive(Debug, Clone)]
pub struct DiscordMessage {
    /// `webhook`, `edit`, `original` (an interaction's answer) or `callback`.
    pub kind: String,
    /// Its id (or the id it edited).
    pub id: String,
    /// The channel or thread it is in.
    pub channel: String,
    /// Its content.
    pub content: String,
    /// The name it was posted under.
    pub username: Option<String>,
    /// The whole body.
    pub body: Value,
}

#[derive(Default)]
struct Inner {
    messages: Vec<DiscordMessage>,
    threads: Vec<(String, String)>,
    next_id: u64,
    /// Gateway dispatches, numbered; what a resume replays.
    events: Vec<Value>,
    seq_sent: u64,
    identifies: u32,
    resumes: u32,
    drop: bool,
    throttle: u32,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    token: String,
    url: Arc<Mutex<String>>,
    wake: Arc<tokio::sync::Notify>,
}

/// A running fake Discord, stopped when dropped.
pub struct FakeDiscord {
    /// Its REST root, standing in for `https://discord.com/api/v10`.
    pub api_url: String,
    /// Its Gateway URL.
    pub gateway_url: String,
    /// The application's public key (hex), for `[chat.discord] public_key`.
    pub public_key: String,
    key: SigningKey,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeDiscord {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn id(i: &mut Inner) -> String {
    i.next_id += 1;
    format!("{}", 800_000_000_000_000_000u64 + i.next_id)
}

impl FakeDiscord {
    /// Starts on 127.0.0.1:0, accepting `token` as the bot's token.
    pub async fn start(token: &str) -> FakeDiscord {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed).expect("random bytes");
        let key = SigningKey::from_bytes(&seed);
        let shared =
            Shared { inner: Arc::default(), token: token.to_owned(), url: Arc::default(), wake: Arc::default() };
        let app = Router::new()
            .route("/api/channels/{ch}/webhooks", get(list_hooks).post(make_hook))
            .route("/api/webhooks/{id}/{token}", post(execute))
            .route("/api/webhooks/{id}/{token}/messages/{mid}", patch(edit))
            .route("/api/channels/{ch}/messages/{mid}/threads", post(thread_from))
            .route("/api/channels/{ch}/threads", post(thread_new))
            .route("/api/interactions/{id}/{token}/callback", post(callback))
            .route("/api/gateway/bot", get(gateway_bot))
            .route("/gateway", get(gateway))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        *shared.url.lock().expect("url") = url.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeDiscord {
            api_url: format!("{url}/api"),
            gateway_url: format!("{}/gateway", url.replace("http://", "ws://")),
            public_key: key.verifying_key().to_bytes().iter().map(|b| format!("{b:02x}")).collect(),
            key,
            shared,
            server,
        }
    }

    /// Everything Baton sent, in order.
    pub fn messages(&self) -> Vec<DiscordMessage> {
        self.shared.inner.lock().expect("lock").messages.clone()
    }

    /// The threads Baton made: (thread id, name).
    pub fn threads(&self) -> Vec<(String, String)> {
        self.shared.inner.lock().expect("lock").threads.clone()
    }

    /// The next `n` webhook executions are refused with 429.
    pub fn throttle(&self, n: u32) {
        self.shared.inner.lock().expect("lock").throttle = n;
    }

    /// (identifies, resumes) the Gateway saw.
    pub fn sessions(&self) -> (u32, u32) {
        let i = self.shared.inner.lock().expect("lock");
        (i.identifies, i.resumes)
    }

    /// A user's message on the Gateway (`MESSAGE_CREATE`) in `channel` (a
    /// thread's id for a reply), mentioning the bot when `mention`; its id.
    pub fn say(&self, channel: &str, user: &str, content: &str, mention: bool) -> String {
        let mut i = self.shared.inner.lock().expect("lock");
        let mid = id(&mut i);
        let mentions = if mention { json!([{ "id": BOT }]) } else { json!([]) };
        let content = if mention { format!("<@{BOT}> {content}") } else { content.to_owned() };
        let d = json!({ "id": mid, "channel_id": channel, "guild_id": "1", "author": { "id": user, "bot": false },
            "content": content, "mentions": mentions });
        i.events.push(json!({ "op": 0, "t": "MESSAGE_CREATE", "d": d }));
        drop(i);
        self.shared.wake.notify_waiters();
        mid
    }

    /// Closes the Gateway connection.
    pub fn drop_gateway(&self) {
        self.shared.inner.lock().expect("lock").drop = true;
        self.shared.wake.notify_waiters();
    }

    /// Sends an interaction to Baton at `url`, signed with the application's
    /// key (or with another key when `forge`); the status and the answer.
    pub async fn interact(&self, url: &str, interaction: &Value, forge: bool) -> (u16, Value) {
        let body = interaction.to_string();
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            .to_string();
        let key = if forge { SigningKey::from_bytes(&[9u8; 32]) } else { self.key.clone() };
        let sig = key.sign(&[ts.as_bytes(), body.as_bytes()].concat());
        let resp = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .header("x-signature-ed25519", sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>())
            .header("x-signature-timestamp", ts)
            .body(body)
            .send()
            .await
            .expect("send to Baton");
        (resp.status().as_u16(), resp.json().await.unwrap_or_default())
    }
}

/// A `/baton SUB` command interaction with `options` (name, value).
pub fn command(id: &str, channel: &str, user: &str, sub: &str, options: &[(&str, &str)]) -> Value {
    let opts: Vec<Value> = options.iter().map(|(n, v)| json!({ "name": n, "type": 3, "value": v })).collect();
    json!({ "id": id, "application_id": "app1", "type": 2, "token": format!("itoken-{id}"), "channel_id": channel,
        "member": { "user": { "id": user } },
        "data": { "name": "baton", "options": [{ "name": sub, "type": 1, "options": opts }] } })
}

/// A button press on message `message`.
pub fn button(id: &str, channel: &str, user: &str, message: &str, custom_id: &str) -> Value {
    json!({ "id": id, "application_id": "app1", "type": 3, "token": format!("itoken-{id}"), "channel_id": channel,
        "member": { "user": { "id": user } }, "message": { "id": message }, "data": { "custom_id": custom_id, "component_type": 2 } })
}

fn bot(s: &Shared, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bot {}", s.token))
}

fn unauthorized() -> Response {
    (StatusCode::UNAUTHORIZED, axum::Json(json!({ "message": "401: Unauthorized", "code": 0 }))).into_response()
}

async fn list_hooks(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bot(&s, &headers) {
        return unauthorized();
    }
    axum::Json(json!([])).into_response()
}

async fn make_hook(State(s): State<Shared>, headers: HeaderMap, Path(ch): Path<String>) -> Response {
    if !bot(&s, &headers) {
        return unauthorized();
    }
    axum::Json(json!({ "id": format!("hook-{ch}"), "token": "hooktoken", "name": "Baton", "channel_id": ch }))
        .into_response()
}

async fn execute(
    State(s): State<Shared>,
    Path((_id, token)): Path<(String, String)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    if token != "hooktoken" {
        return unauthorized();
    }
    let mut i = s.inner.lock().expect("lock");
    if i.throttle > 0 {
        i.throttle -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            axum::Json(json!({ "message": "You are being rate limited.", "retry_after": 1.0, "global": false })),
        )
            .into_response();
    }
    let mid = id(&mut i);
    let channel = q.get("thread_id").cloned().unwrap_or_else(|| "channel".into());
    i.messages.push(DiscordMessage {
        kind: "webhook".into(),
        id: mid.clone(),
        channel: channel.clone(),
        content: body["content"].as_str().unwrap_or_default().into(),
        username: body["username"].as_str().map(str::to_owned),
        body: body.clone(),
    });
    (
        [("x-ratelimit-remaining", "4"), ("x-ratelimit-reset-after", "1.0")],
        axum::Json(json!({ "id": mid, "channel_id": channel, "content": body["content"] })),
    )
        .into_response()
}

async fn edit(
    State(s): State<Shared>,
    Path((_id, token, mid)): Path<(String, String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let kind = if mid == "@original" { "original" } else { "edit" };
    if kind == "edit" && token != "hooktoken" {
        return unauthorized();
    }
    let mut i = s.inner.lock().expect("lock");
    i.messages.push(DiscordMessage {
        kind: kind.into(),
        id: if kind == "original" { token.clone() } else { mid.clone() },
        channel: String::new(),
        content: body["content"].as_str().unwrap_or_default().into(),
        username: None,
        body: body.clone(),
    });
    axum::Json(json!({ "id": mid, "content": body["content"] })).into_response()
}

async fn thread_from(State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    thread_new(State(s), headers, axum::Json(body)).await
}

async fn thread_new(State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    if !bot(&s, &headers) {
        return unauthorized();
    }
    let mut i = s.inner.lock().expect("lock");
    let tid = id(&mut i);
    i.threads.push((tid.clone(), body["name"].as_str().unwrap_or_default().into()));
    axum::Json(json!({ "id": tid, "type": 11, "name": body["name"] })).into_response()
}

async fn callback(
    State(s): State<Shared>,
    Path((iid, _token)): Path<(String, String)>,
    axum::Json(body): axum::Json<Value>,
) -> Response {
    let mut i = s.inner.lock().expect("lock");
    i.messages.push(DiscordMessage {
        kind: "callback".into(),
        id: iid,
        channel: String::new(),
        content: String::new(),
        username: None,
        body,
    });
    StatusCode::NO_CONTENT.into_response()
}

async fn gateway_bot(State(s): State<Shared>, headers: HeaderMap) -> Response {
    if !bot(&s, &headers) {
        return unauthorized();
    }
    let url = s.url.lock().expect("url").replace("http://", "ws://");
    axum::Json(json!({ "url": format!("{url}/gateway"), "shards": 1 })).into_response()
}

async fn gateway(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_gateway(s, socket))
}

/// One Gateway connection: hello; identify (ready, then new events) or resume
/// (the events after its sequence number, then resumed); heartbeats acked.
async fn serve_gateway(s: Shared, mut ws: WebSocket) {
    let hello = json!({ "op": 10, "d": { "heartbeat_interval": 1000 } });
    if ws.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    let first: Value = match ws.recv().await {
        Some(Ok(Message::Text(t))) => serde_json::from_str(&t).unwrap_or_default(),
        _ => return,
    };
    let resumed = {
        let mut i = s.inner.lock().expect("lock");
        i.drop = false;
        match first["op"].as_u64() {
            Some(6) if first["d"]["session_id"] == "fake-session" => {
                i.resumes += 1;
                Some(first["d"]["seq"].as_u64().unwrap_or(0) as usize)
            }
            _ => {
                i.identifies += 1;
                None
            }
        }
    };
    let mut next = match resumed {
        Some(seq) => seq,
        None => {
            let url = s.url.lock().expect("url").replace("http://", "ws://");
            let ready = json!({ "op": 0, "t": "READY", "s": 0, "d": { "session_id": "fake-session",
                "resume_gateway_url": format!("{url}/gateway"), "user": { "id": BOT, "bot": true } } });
            let at = s.inner.lock().expect("lock").events.len();
            if ws.send(Message::Text(ready.to_string().into())).await.is_err() {
                return;
            }
            at
        }
    };
    loop {
        let (event, drop) = {
            let i = s.inner.lock().expect("lock");
            (i.events.get(next).cloned(), i.drop)
        };
        if drop {
            let _ = ws.send(Message::Close(None)).await;
            return;
        }
        if let Some(mut e) = event {
            next += 1;
            e["s"] = json!(next);
            s.inner.lock().expect("lock").seq_sent = next as u64;
            if ws.send(Message::Text(e.to_string().into())).await.is_err() {
                return;
            }
            continue;
        }
        tokio::select! {
            _ = s.wake.notified() => {}
            _ = tokio::time::sleep(std::time::Duration::from_millis(50)) => {}
            frame = ws.recv() => match frame {
                Some(Ok(Message::Text(t))) => {
                    let v: Value = serde_json::from_str(&t).unwrap_or_default();
                    if v["op"] == 1 {
                        let _ = ws.send(Message::Text(json!({ "op": 11 }).to_string().into())).await;
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}
