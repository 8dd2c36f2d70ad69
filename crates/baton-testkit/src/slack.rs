//! A fake Slack for tests and for trying Baton by hand: the Web API methods
//! Baton calls (`chat.postMessage`, `chat.update`, `chat.postEphemeral`,
//! `apps.connections.open`), `response_url`s, and a Socket Mode WebSocket;
//! and the sender side, which signs events, slash commands and interactions
//! exactly as Slack does (`v0=` HMAC-SHA256 of `v0:timestamp:body`).
//!
//! Every post is recorded ([`FakeSlack::posts`]). A wrong bot token gets
//! `invalid_auth`; [`FakeSlack::throttle`] answers the next posts with 429
//! and a `Retry-After`. Socket Mode envelopes not acknowledged are sent again
//! on the next connection, as Slack does; [`FakeSlack::drop_socket`] closes it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::receiver::hmac_sha256;

/// A message Baton posted, edited or answered with.
#[derive(Debug, Clone)]
pub struct SlackPost {
    /// `post`, `update`, `ephemeral` or `response`.
    pub kind: String,
    /// Its `ts` (for a post), or the `ts` it edited.
    pub ts: String,
    /// The channel.
    pub channel: String,
    /// The thread it went in.
    pub thread_ts: Option<String>,
    /// Its text.
    pub text: String,
    /// The name it was posted under.
    pub username: Option<String>,
    /// The whole request body.
    pub body: Value,
    /// For a response: which `response_url`.
    pub response: Option<String>,
}

#[derive(Default)]
struct Inner {
    posts: Vec<SlackPost>,
    next_ts: u64,
    throttle: u32,
    retry_after: u32,
    /// Envelopes to send on the socket, and those sent but not acknowledged.
    outbox: VecDeque<Value>,
    unacked: Vec<Value>,
    acked: Vec<String>,
    connections: u32,
    drop_socket: bool,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
    bot_token: String,
    url: Arc<Mutex<String>>,
    wake: Arc<tokio::sync::Notify>,
}

/// A running fake Slack, stopped when dropped.
pub struct FakeSlack {
    /// Its Web API root, standing in for `https://slack.com/api`.
    pub api_url: String,
    /// Its own root.
    pub url: String,
    shared: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for FakeSlack {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl FakeSlack {
    /// Starts on 127.0.0.1:0, accepting `bot_token` as the bot's token.
    pub async fn start(bot_token: &str) -> FakeSlack {
        let shared = Shared {
            inner: Arc::default(),
            bot_token: bot_token.to_owned(),
            url: Arc::default(),
            wake: Arc::default(),
        };
        let app = Router::new()
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/chat.update", post(update))
            .route("/api/chat.postEphemeral", post(ephemeral))
            .route("/api/apps.connections.open", post(open))
            .route("/response/{id}", post(response))
            .route("/socket", get(socket))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        *shared.url.lock().expect("url") = url.clone();
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeSlack { api_url: format!("{url}/api"), url, shared, server }
    }

    /// Everything Baton posted, in order.
    pub fn posts(&self) -> Vec<SlackPost> {
        self.shared.inner.lock().expect("lock").posts.clone()
    }

    /// A `response_url` for a command or an interaction.
    pub fn response_url(&self, id: &str) -> String {
        format!("{}/response/{id}", self.url)
    }

    /// The next `n` posts are refused with 429 and `Retry-After: secs`.
    pub fn throttle(&self, n: u32, secs: u32) {
        let mut i = self.shared.inner.lock().expect("lock");
        i.throttle = n;
        i.retry_after = secs;
    }

    /// Sends `payload` over Socket Mode as an envelope of `kind`
    /// (`events_api`, `slash_commands`, `interactive`); its envelope id.
    pub fn push(&self, kind: &str, payload: Value) -> String {
        let id = format!("env-{}", random_hex());
        let envelope =
            json!({ "envelope_id": id, "type": kind, "payload": payload, "accepts_response_payload": false });
        self.shared.inner.lock().expect("lock").outbox.push_back(envelope);
        self.shared.wake.notify_waiters();
        id
    }

    /// The envelope ids Baton acknowledged, in order.
    pub fn acked(&self) -> Vec<String> {
        self.shared.inner.lock().expect("lock").acked.clone()
    }

    /// How many Socket Mode connections were opened.
    pub fn connections(&self) -> u32 {
        self.shared.inner.lock().expect("lock").connections
    }

    /// Closes the Socket Mode connection (Baton connects again).
    pub fn drop_socket(&self) {
        self.shared.inner.lock().expect("lock").drop_socket = true;
        self.shared.wake.notify_waiters();
    }
}

fn authorized(s: &Shared, headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {}", s.bot_token))
}

fn record(
    s: &Shared,
    kind: &str,
    body: &Value,
    ts: Option<String>,
    response: Option<String>,
) -> Result<String, Box<Response>> {
    let mut i = s.inner.lock().expect("lock");
    if i.throttle > 0 && kind != "response" {
        i.throttle -= 1;
        let after = i.retry_after.to_string();
        return Err(Box::new(
            (
                StatusCode::TOO_MANY_REQUESTS,
                [("retry-after", after)],
                axum::Json(json!({ "ok": false, "error": "ratelimited" })),
            )
                .into_response(),
        ));
    }
    i.next_ts += 1;
    let ts = ts.unwrap_or_else(|| format!("1700000000.{:06}", i.next_ts));
    let text = body["text"].as_str().unwrap_or_default().to_owned();
    i.posts.push(SlackPost {
        kind: kind.into(),
        ts: ts.clone(),
        channel: body["channel"].as_str().unwrap_or_default().into(),
        thread_ts: body["thread_ts"].as_str().map(str::to_owned),
        text,
        username: body["username"].as_str().map(str::to_owned),
        body: body.clone(),
        response,
    });
    Ok(ts)
}

async fn post_message(State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    if !authorized(&s, &headers) {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    match record(&s, "post", &body, None, None) {
        Ok(ts) => axum::Json(json!({ "ok": true, "channel": body["channel"], "ts": ts })).into_response(),
        Err(r) => *r,
    }
}

async fn update(State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    if !authorized(&s, &headers) {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let ts = body["ts"].as_str().map(str::to_owned);
    match record(&s, "update", &body, ts, None) {
        Ok(ts) => axum::Json(json!({ "ok": true, "channel": body["channel"], "ts": ts })).into_response(),
        Err(r) => *r,
    }
}

async fn ephemeral(State(s): State<Shared>, headers: HeaderMap, axum::Json(body): axum::Json<Value>) -> Response {
    if !authorized(&s, &headers) {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    match record(&s, "ephemeral", &body, None, None) {
        Ok(ts) => axum::Json(json!({ "ok": true, "message_ts": ts })).into_response(),
        Err(r) => *r,
    }
}

async fn response(State(s): State<Shared>, Path(id): Path<String>, axum::Json(body): axum::Json<Value>) -> Response {
    match record(&s, "response", &body, None, Some(id)) {
        Ok(_) => "ok".into_response(),
        Err(r) => *r,
    }
}

async fn open(State(s): State<Shared>, headers: HeaderMap) -> Response {
    // Socket Mode takes the app-level token, not the bot's.
    let ok = headers.get("authorization").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("Bearer xapp-"));
    if !ok {
        return axum::Json(json!({ "ok": false, "error": "invalid_auth" })).into_response();
    }
    let url = s.url.lock().expect("url").replace("http://", "ws://");
    axum::Json(json!({ "ok": true, "url": format!("{url}/socket") })).into_response()
}

async fn socket(State(s): State<Shared>, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| serve_socket(s, socket))
}

/// One Socket Mode connection: hello, then the envelopes (those never
/// acknowledged on an earlier connection first), reading acknowledgements.
async fn serve_socket(s: Shared, mut ws: WebSocket) {
    {
        let mut i = s.inner.lock().expect("lock");
        i.connections += 1;
        i.drop_socket = false;
        let again: Vec<Value> = std::mem::take(&mut i.unacked);
        for e in again.into_iter().rev() {
            i.outbox.push_front(e);
        }
    }
    let hello = json!({ "type": "hello", "num_connections": 1 });
    if ws.send(Message::Text(hello.to_string().into())).await.is_err() {
        return;
    }
    loop {
        let (next, drop) = {
            let mut i = s.inner.lock().expect("lock");
            let next = i.outbox.pop_front();
            if let Some(e) = &next {
                i.unacked.push(e.clone());
            }
            (next, i.drop_socket)
        };
        if drop {
            let _ = ws.send(Message::Close(None)).await;
            return;
        }
        if let Some(e) = next {
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
                    let ack: Value = serde_json::from_str(&t).unwrap_or_default();
                    if let Some(id) = ack["envelope_id"].as_str() {
                        let mut i = s.inner.lock().expect("lock");
                        i.unacked.retain(|e| e["envelope_id"] != id);
                        i.acked.push(id.to_owned());
                    }
                }
                Some(Ok(_)) => {}
                _ => return,
            },
        }
    }
}

/// Signs `body` as Slack does, at `timestamp` (seconds).
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut message = format!("v0:{timestamp}:").into_bytes();
    message.extend_from_slice(body);
    let mac = hmac_sha256(secret.as_bytes(), &message);
    format!("v0={}", mac.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// Sends a signed request to Baton as Slack would: `path` under `base`, with
/// `content_type`, signed with `secret` at `age_s` seconds ago, with
/// `X-Slack-Retry-Num` when `retry` is given; the status and body.
pub async fn send(
    base: &str,
    path: &str,
    secret: &str,
    content_type: &str,
    body: &[u8],
    age_s: i64,
    retry: Option<u32>,
) -> (u16, String) {
    let ts =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
            - age_s;
    let mut req = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("content-type", content_type)
        .header("x-slack-request-timestamp", ts.to_string())
        .header("x-slack-signature", sign(secret, ts, body))
        .body(body.to_vec());
    if let Some(n) = retry {
        req = req.header("x-slack-retry-num", n.to_string()).header("x-slack-retry-reason", "http_timeout");
    }
    let resp = req.send().await.expect("send to Baton");
    (resp.status().as_u16(), resp.text().await.unwrap_or_default())
}

/// An Events API callback for a message: an `app_mention` when `mention`,
/// else a `message` (in `thread` when given).
pub fn event(
    event_id: &str,
    channel: &str,
    user: &str,
    ts: &str,
    thread: Option<&str>,
    text: &str,
    mention: bool,
) -> Value {
    let mut e = json!({ "type": if mention { "app_mention" } else { "message" }, "user": user, "channel": channel,
        "ts": ts, "text": text, "channel_type": "channel" });
    if let Some(t) = thread {
        e["thread_ts"] = json!(t);
    }
    json!({ "token": "x", "team_id": "T1", "api_app_id": "A1", "type": "event_callback", "event_id": event_id, "event_time": 1, "event": e })
}

/// A slash command's form fields.
pub fn command(channel: &str, user: &str, text: &str, response_url: &str, trigger: &str) -> String {
    serde_urlencoded_pairs(&[
        ("token", "x"),
        ("team_id", "T1"),
        ("channel_id", channel),
        ("user_id", user),
        ("command", "/baton"),
        ("text", text),
        ("response_url", response_url),
        ("trigger_id", trigger),
    ])
}

/// A button press (`block_actions`) as the interactivity form (`payload=`).
pub fn click(
    channel: &str,
    user: &str,
    message_ts: &str,
    action: &str,
    value: &str,
    response_url: &str,
    trigger: &str,
) -> String {
    let payload = json!({ "type": "block_actions", "user": { "id": user }, "channel": { "id": channel },
        "message": { "ts": message_ts }, "response_url": response_url, "trigger_id": trigger,
        "actions": [{ "action_id": action, "value": value, "action_ts": "1.0" }] });
    serde_urlencoded_pairs(&[("payload", &payload.to_string())])
}

fn serde_urlencoded_pairs(pairs: &[(&str, &str)]) -> String {
    pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect::<Vec<_>>().join("&")
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Sixteen random hex digits.
pub(crate) fn random_hex() -> String {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random bytes");
    b.iter().map(|x| format!("{x:02x}")).collect()
}
