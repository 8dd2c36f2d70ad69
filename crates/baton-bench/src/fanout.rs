//! Events from one agent, ingested (agent stdout → supervisor spool → launcher
//! → committed) and fanned out to many WebSocket clients of `/api/stream`: the
//! delivery latency from the moment the agent wrote each line to the moment each
//! client has it.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::{Coordinator, baton_binary, now_ns};
use crate::measures::{Measure, agent, create, measure, median_p99};

/// One client: connects, then takes `count` output events; the latency of each
/// (ms) and when it had the last.
async fn client(url: String, token: String, count: usize) -> (Vec<f32>, Instant) {
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");
    let mut latencies = Vec::with_capacity(count);
    while latencies.len() < count {
        let msg = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .expect("events keep coming")
            .expect("the stream stays open")
            .expect("a frame");
        let Message::Text(text) = msg else { continue };
        // The line is the time the agent wrote it; no full parse, to keep the
        // clients' own cost down.
        let Some(at) = text.as_str().find("\"line\":\"").map(|i| i + 8) else { continue };
        let digits: &str = &text.as_str()[at..];
        let end = digits.find('"').unwrap_or(digits.len());
        let Ok(written) = digits[..end].parse::<u128>() else { continue };
        latencies.push((now_ns().saturating_sub(written)) as f32 / 1e6);
    }
    (latencies, Instant::now())
}

/// `rate` events a second for `seconds`, to `clients` WebSocket clients.
pub async fn fanout(c: &Coordinator, rate: u64, seconds: u64, clients: usize) -> Vec<Measure> {
    let count = rate * seconds;
    let emitter = baton_binary().with_file_name("baton-bench");
    agent(c, "emitter", json!([emitter, "emit", count.to_string(), rate.to_string()])).await;
    let url = format!("{}/api/stream?kinds=output", c.url.replace("http://", "ws://"));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        tasks.push(tokio::spawn(client(url.clone(), c.token.clone(), count as usize)));
    }
    // Every client is connected (and following the present) before the agent starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let start = Instant::now();
    create(c, "emitter", json!({})).await;
    let mut all = Vec::new();
    let mut last = start;
    for t in tasks {
        let (latencies, done) = t.await.expect("client");
        all.extend(latencies.into_iter().map(f64::from));
        last = last.max(done);
    }
    let delivered = all.len() as f64 / last.duration_since(start).as_secs_f64();
    let (median, p99) = median_p99(all);
    let label = format!("{}k events/s to {clients} WebSocket clients", rate / 1000);
    vec![
        measure(&format!("{label}: delivery, median"), median, "-", "ms"),
        measure(&format!("{label}: delivery, p99"), p99, "< 50", "ms"),
        measure(&format!("{label}: frames delivered per second"), delivered / 1000.0, "-", "k/s"),
    ]
}
