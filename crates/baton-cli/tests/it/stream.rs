//! The live stream: a client that reconnects from where it was misses nothing
//! and receives nothing twice.

use std::collections::BTreeMap;
use std::time::Duration;

use baton_core::event::Event;
use baton_core::status::TaskStatus;
use futures_util::StreamExt;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::harness::Baton;

async fn connect(
    b: &Baton,
    after: i64,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    let url = format!("{}/api/stream?after={after}", b.url.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {}", b.token).parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(req).await.expect("websocket");
    ws
}

async fn next_event(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>,
) -> Event {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("an event within 10 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = msg {
            return serde_json::from_str(&text).unwrap();
        }
    }
}

#[tokio::test]
async fn a_websocket_client_resumes_from_its_position_without_gaps_or_repeats() {
    let b = Baton::start();
    b.agent("chatty", "for i in 1 2 3 4 5; do echo line $i; done").await;
    let mut first = Vec::new();
    let mut ws = connect(&b, 0).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(b.task(json!({ "prompt": format!("p{i}"), "agent": "chatty" })).await);
    }
    for _ in 0..15 {
        first.push(next_event(&mut ws).await);
    }
    drop(ws);
    for i in 3..6 {
        ids.push(b.task(json!({ "prompt": format!("p{i}"), "agent": "chatty" })).await);
    }
    for id in &ids {
        b.wait_status(id, TaskStatus::Succeeded).await;
    }
    let mut expected: BTreeMap<i64, Event> = BTreeMap::new();
    for id in &ids {
        for e in b.events(id).await {
            expected.insert(e.id, e);
        }
    }
    let last_task_event = *expected.keys().last().unwrap();
    let mut ws = connect(&b, first.last().unwrap().id).await;
    let mut second = Vec::new();
    loop {
        let e = next_event(&mut ws).await;
        let id = e.id;
        second.push(e);
        if id >= last_task_event {
            break;
        }
    }
    let all: Vec<&Event> = first.iter().chain(second.iter()).collect();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id), "strictly increasing: nothing twice, in order");
    let got: Vec<i64> = all.iter().filter(|e| e.task_id.is_some()).map(|e| e.id).collect();
    let want: Vec<i64> = expected.keys().copied().collect();
    assert_eq!(got, want, "every task event, exactly once");
}

#[tokio::test]
async fn server_sent_events_resume_after_a_position_and_filter_by_task() {
    let b = Baton::start();
    b.agent("two", "echo one; echo two").await;
    let a = b.task(json!({ "prompt": "a", "agent": "two" })).await;
    let c = b.task(json!({ "prompt": "c", "agent": "two" })).await;
    b.wait_status(&a, TaskStatus::Succeeded).await;
    b.wait_status(&c, TaskStatus::Succeeded).await;
    let events = b.events(&a).await;
    let from = events[2].id;
    let mut stream = b.client.stream(Some(from), &format!("task={a}")).await.unwrap();
    for want in &events[3..] {
        let got = tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(got.id, want.id);
        assert_eq!(got.task_id.as_ref().map(|t| t.to_string()), Some(a.clone()), "only the task asked for");
    }
}

/// A client that falls further behind than the coordinator's live buffer holds
/// (it reads nothing while an agent prints megabytes) is caught up from the
/// database: every event, once, in order.
#[tokio::test]
async fn a_client_further_behind_than_the_live_buffer_misses_nothing() {
    let b = Baton::start();
    b.agent("loud", "line=$(printf '%01000d' 0); i=0; while [ $i -lt 12000 ]; do echo \"$i $line\"; i=$((i+1)); done")
        .await;
    let mut ws = connect(&b, 0).await;
    let id = b.task(json!({ "prompt": "shout", "agent": "loud" })).await;
    b.wait_status(&id, TaskStatus::Succeeded).await;
    let mut want = Vec::new();
    loop {
        let page = b.client.task_events(&id, want.last().copied().unwrap_or(0), 10_000).await.unwrap();
        if page.is_empty() {
            break;
        }
        want.extend(page.iter().map(|e| e.id));
    }
    assert!(want.len() > 12_000, "{} events", want.len());
    let last = *want.last().unwrap();
    let mut got = Vec::new();
    let mut previous = 0;
    loop {
        let e = next_event(&mut ws).await;
        assert!(e.id > previous, "in order, nothing twice: {} after {previous}", e.id);
        previous = e.id;
        if e.task_id.as_ref().is_some_and(|t| t.as_str() == id) {
            got.push(e.id);
        }
        if e.id >= last {
            break;
        }
    }
    assert_eq!(got, want, "every event of the task");
}

/// A WebSocket client that goes away is let go of at once (its reader and
/// writer both end), while the others keep being served.
#[tokio::test]
async fn a_websocket_client_that_leaves_is_let_go() {
    let b = Baton::start();
    let clients = || async {
        let text = reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap();
        text.lines().find_map(|l| l.strip_prefix("baton_stream_clients ")).unwrap().trim().parse::<u32>().unwrap()
    };
    let mut stays = connect(&b, 0).await;
    let leaves = connect(&b, 0).await;
    assert_eq!(clients().await, 2);
    drop(leaves);
    let start = std::time::Instant::now();
    while clients().await != 1 {
        assert!(start.elapsed() < Duration::from_secs(5), "the client that left is still counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    b.agent("one", "echo one").await;
    let id = b.task(json!({ "prompt": "x", "agent": "one" })).await;
    loop {
        let e = next_event(&mut stays).await;
        if e.task_id.as_ref().is_some_and(|t| t.as_str() == id) {
            break;
        }
    }
}
