//! A webhook receiver for tests: a real HTTP server on `127.0.0.1:0` that
//! records every request and answers as told (a status per request, then 200;
//! optionally after a delay), and that can go down and come back on the same
//! port. [`verify`] checks a request's signature with the Standard Webhooks
//! algorithm, written here apart from Baton's own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

/// One request received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its path and query.
    pub path: String,
    /// Its headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Its body.
    pub body: Vec<u8>,
    /// When it arrived.
    pub at: Instant,
    /// What it was answered.
    pub status: u16,
}

impl Received {
    /// A header's value ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    answers: VecDeque<u16>,
    delay: Duration,
}

/// A running (or stopped) receiver.
pub struct Receiver {
    /// Its URL, like `http://127.0.0.1:43123/hook`.
    pub url: String,
    port: u16,
    inner: Arc<Mutex<Inner>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Starts a receiver on a free port.
    pub async fn start() -> Self {
        let mut r = Receiver { url: String::new(), port: 0, inner: Arc::default(), server: None };
        r.listen().await;
        r
    }

    async fn listen(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("bind the receiver");
        self.port = listener.local_addr().expect("a local address").port();
        self.url = format!("http://127.0.0.1:{}/hook", self.port);
        let app = Router::new().fallback(record).with_state(Arc::clone(&self.inner));
        self.server = Some(tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }));
    }

    /// Answers the next requests with these statuses, in order (then 200).
    pub fn answer(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().answers.extend(statuses);
    }

    /// Waits this long before answering each request.
    pub fn delay(&self, delay: Duration) {
        self.inner.lock().unwrap().delay = delay;
    }

    /// Stops listening: connections are refused until [`Receiver::start_again`].
    pub fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }

    /// Listens again, on the same port.
    pub async fn start_again(&mut self) {
        self.stop();
        port_free(self.port).await;
        self.listen().await;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    /// Waits until `n` requests have arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let start = Instant::now();
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(start.elapsed() < within, "the receiver got {} requests, not {n}, within {within:?}", got.len());
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn record(State(inner): State<Arc<Mutex<Inner>>>, uri: Uri, headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let (status, delay) = {
        let mut i = inner.lock().unwrap();
        (i.answers.pop_front().unwrap_or(200), i.delay)
    };
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    inner.lock().unwrap().received.push(Received { path: uri.to_string(), headers, body: body.to_vec(), at, status });
    tokio::time::sleep(delay).await;
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// Whether a request carries a valid Standard Webhooks signature made with
/// `secret` (`whsec_` and base64): HMAC-SHA256 keyed by the secret's decoded
/// bytes, over `webhook-id.webhook-timestamp.body`, base64, after `v1,`.
pub fn verify(secret: &str, r: &Received) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| STANDARD.decode(k).ok()) else { return false };
    let mut signed = format!("{}.{}.", r.header("webhook-id"), r.header("webhook-timestamp")).into_bytes();
    signed.extend_from_slice(&r.body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &signed)));
    r.header("webhook-signature").split(' ').any(|s| s == expected)
}

/// HMAC (RFC 2104) with SHA-256.
pub(crate) fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new().chain_update(pad(0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(pad(0x5c)).chain_update(inner).finalize().into()
}

/// Waits (up to 5 s) until `port` can be bound again after a server on it stopped.
pub(crate) async fn port_free(port: u16) {
    for _ in 0..50 {
        if tokio::net::TcpListener::bind(("127.0.0.1", port)).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specifications_example_verifies() {
        let body = br#"{"test": 2432232314}"#.to_vec();
        let mut r = Received {
            path: "/".into(),
            headers: HashMap::from([
                ("webhook-id".into(), "msg_p5jXN8AQM9LWM0D4loKWxJek".into()),
                ("webhook-timestamp".into(), "1614265330".into()),
                ("webhook-signature".into(), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=".into()),
            ]),
            body,
            at: Instant::now(),
            status: 200,
        };
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        assert!(verify(secret, &r));
        r.body.push(b' ');
        assert!(!verify(secret, &r), "a changed body is detected");
    }
}
