//! `GET /api/stream`: the live feed of every committed event, as a WebSocket
//! (when the request asks to upgrade) or as server-sent events.
//!
//! A client names where it is with `?after=ID` (or SSE's `Last-Event-ID`) and
//! receives everything after it, in order, exactly once: the feed subscribes to
//! new commits first, then reads what it missed from the database, then follows
//! the subscription, skipping what it already sent. A client too slow for the
//! in-memory buffer falls back to the database and catches up the same way.
//! Without `after`, the feed starts at the present.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::api::http::ApiQuery;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use baton_core::event::Event;
use baton_store::{Committed, EventFilter};
use futures_util::SinkExt;
use futures_util::stream::{self, StreamExt};
use serde::Deserialize;
use tokio::sync::broadcast::{
    self,
    error::{RecvError, TryRecvError},
};

use super::tasks::parse_kinds;
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::resolve;

/// How many events one catch-up read returns.
const CATCH_UP_PAGE: u32 = 1000;

/// How many live events go out to a client in one write at most.
const LIVE_BATCH: usize = 256;

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct StreamQuery {
    /// Send events after this position (0: from the beginning).
    after: Option<i64>,
    /// Only this session's events.
    session: Option<String>,
    /// Only this task's events.
    task: Option<String>,
    /// Only these kinds (comma-separated).
    #[serde(default)]
    #[schemars(schema_with = "super::tasks::kinds_schema")]
    kinds: Option<String>,
}

/// One frame for the client: the event's position, kind, and JSON.
struct Frame {
    id: i64,
    kind: &'static str,
    json: Utf8Bytes,
}

/// A client's position in the feed.
struct Feed {
    state: Arc<AppState>,
    live: broadcast::Receiver<Arc<Committed>>,
    filter: EventFilter,
    catching_up: bool,
}

impl Feed {
    fn matches(&self, e: &Event) -> bool {
        self.filter.session.as_ref().is_none_or(|s| e.session_id.as_ref() == Some(s))
            && self.filter.task.as_ref().is_none_or(|t| e.task_id.as_ref() == Some(t))
            && (self.filter.kinds.is_empty() || self.filter.kinds.contains(&e.kind))
    }

    /// The next frames, or `None` when the coordinator is shutting down.
    async fn next(&mut self) -> Option<Vec<Frame>> {
        loop {
            if self.catching_up {
                let filter = self.filter.clone();
                let page = self.state.store.read(move |r| r.events(&filter)).await.ok()?;
                if page.len() < CATCH_UP_PAGE as usize {
                    self.catching_up = false;
                }
                if let Some(last) = page.last() {
                    self.filter.after = last.id;
                    return Some(
                        page.into_iter()
                            .map(|e| Frame {
                                id: e.id,
                                kind: e.kind.as_str(),
                                json: serde_json::to_string(&e).unwrap_or_default().into(),
                            })
                            .collect(),
                    );
                }
                continue;
            }
            // Everything already committed goes out together (one write to the
            // client for many events, when they come fast).
            let mut frames = Vec::new();
            let mut next = self.live.recv().await;
            loop {
                match next {
                    Ok(c) => self.take(&c, &mut frames),
                    Err(RecvError::Lagged(_)) => {
                        self.catching_up = true;
                        break;
                    }
                    Err(RecvError::Closed) if frames.is_empty() => return None,
                    Err(RecvError::Closed) => break,
                }
                if frames.len() >= LIVE_BATCH {
                    break;
                }
                next = match self.live.try_recv() {
                    Ok(c) => Ok(c),
                    Err(TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
                    Err(TryRecvError::Closed) => Err(RecvError::Closed),
                    Err(TryRecvError::Empty) => break,
                };
            }
            if !frames.is_empty() {
                return Some(frames);
            }
        }
    }

    /// Adds a live event's frame, unless already sent or filtered out.
    fn take(&mut self, c: &Committed, frames: &mut Vec<Frame>) {
        if c.event.id <= self.filter.after {
            return;
        }
        self.filter.after = c.event.id;
        if self.matches(&c.event) {
            // The store made the JSON with serde_json: valid UTF-8, shared, not copied.
            let Ok(json) = Utf8Bytes::try_from(c.json.clone()) else { return };
            frames.push(Frame { id: c.event.id, kind: c.event.kind.as_str(), json });
        }
    }
}

/// Counts a live client for as long as it is connected.
struct ClientGuard(Arc<AppState>);

impl ClientGuard {
    fn new(state: &Arc<AppState>) -> Self {
        state.metrics.stream_clients.fetch_add(1, Ordering::Relaxed);
        Self(Arc::clone(state))
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.0.metrics.stream_clients.fetch_sub(1, Ordering::Relaxed);
    }
}

pub(super) async fn stream(
    State(state): State<Arc<AppState>>,
    _: Auth,
    ApiQuery(q): ApiQuery<StreamQuery>,
    req: Request,
) -> Result<Response, AppError> {
    let (mut parts, _body) = req.into_parts();
    let last_event_id =
        parts.headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<i64>().ok());
    let kinds = parse_kinds(q.kinds.as_deref())?;
    let live = state.store.subscribe();
    let (session, task, start) = state
        .store
        .read(move |r| {
            let session = q.session.as_deref().map(|s| resolve::session_id(r, s)).transpose()?;
            let task = q.task.as_deref().map(|t| resolve::task_id(r, t)).transpose()?;
            let start = match q.after.or(last_event_id) {
                Some(after) => after.max(0),
                None => r.last_event_id()?,
            };
            Ok::<_, AppError>((session, task, start))
        })
        .await?;
    let feed = Feed {
        state: Arc::clone(&state),
        live,
        filter: EventFilter { after: start, session, task, kinds, limit: CATCH_UP_PAGE },
        catching_up: true,
    };
    let guard = ClientGuard::new(&state);
    let wants_ws = parts
        .headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if wants_ws {
        let ws = WebSocketUpgrade::from_request_parts(&mut parts, &state)
            .await
            .map_err(|e| AppError::invalid(format!("bad WebSocket upgrade: {e}")))?;
        return Ok(ws.on_upgrade(move |socket| websocket(socket, feed, guard)));
    }
    let frames =
        stream::unfold((feed, guard), |(mut feed, guard)| async move {
            feed.next().await.map(|frames| (frames, (feed, guard)))
        })
        .flat_map(|frames| {
            stream::iter(frames.into_iter().map(|f| {
                Ok::<_, Infallible>(SseEvent::default().id(f.id.to_string()).event(f.kind).data(f.json.as_str()))
            }))
        });
    Ok(Sse::new(frames).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

async fn websocket(socket: WebSocket, mut feed: Feed, _guard: ClientGuard) {
    let (mut tx, mut rx) = socket.split();
    // Reading only notices the client leaving (and answers its pings). It runs
    // apart from sending: a read attempt on every batch sent would cost more than
    // the batch (the read buffer is cleared each time).
    let reader = AbortOnDrop(tokio::spawn(async move {
        while let Some(Ok(msg)) = rx.next().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    }));
    let mut gone = std::pin::pin!(async move {
        let mut reader = reader;
        let _ = (&mut reader.0).await;
    });
    let mut ping = tokio::time::interval(Duration::from_secs(20));
    ping.tick().await;
    loop {
        tokio::select! {
            frames = feed.next() => {
                let Some(frames) = frames else { break };
                for f in frames {
                    if tx.feed(Message::Text(f.json)).await.is_err() {
                        return;
                    }
                }
                if tx.flush().await.is_err() {
                    return;
                }
            }
            () = &mut gone => return,
            _ = ping.tick() => {
                if tx.send(Message::Ping(Default::default())).await.is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Message::Close(None)).await;
}

/// Aborts a task when dropped (the reader of a WebSocket whose writer is done).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
