//! Baton in Slack and Discord.
//!
//! What comes in — Slack's Events API, slash commands and interactions (over
//! HTTP, signed, or over Socket Mode), Discord's interactions (Ed25519-signed)
//! and its Gateway's messages — is checked, turned into a [`ChatInbound`],
//! and kept in the store under the service's own id before it is
//! acknowledged, so a retry or a redelivery acts once and a crash loses
//! nothing. The worker (on the replica that runs the timers) acts on each
//! through the domain ([`baton_domain::chat`]), follows the threads bound to
//! tasks, and sends the outbox's posts, paced per channel.
//!
//! This crate depends on the domain, never the reverse; the HTTP routes are
//! the server's.

pub mod discord;
pub mod gateway;
pub mod send;
pub mod slack;
pub mod socket;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use baton_core::chat::{ChatInbound, ChatPost, ChatService, ChatThread};
use baton_core::ids::ProjectId;
use baton_core::time::Timestamp;
use baton_domain::AppState;
use serde::Serialize;
use tokio::sync::Notify;

use send::{Identity, Outcome, Sender};

/// Wakes the worker: something came in, or a post was queued.
pub static WORK: LazyLock<Notify> = LazyLock::new(Notify::new);

/// How a project's chat service is doing, as `GET /api/chat/status` and
/// `baton doctor` say.
#[derive(Debug, Clone, Default, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// The project.
    pub project: String,
    /// `slack` or `discord`.
    pub service: String,
    /// 401/403 answers in a row.
    pub auth_failures: u32,
    /// Why it stopped posting, after repeated 401/403.
    pub stopped: Option<String>,
    /// Whether its Socket Mode or Gateway connection is up (when it has one).
    pub connected: Option<bool>,
    /// The last post that went out.
    pub last_sent: Option<Timestamp>,
    /// The last error.
    pub last_error: Option<String>,
}

static HEALTH: LazyLock<Mutex<HashMap<(ProjectId, ChatService), Health>>> = LazyLock::new(Mutex::default);

fn health(project: &ProjectId, service: ChatService, f: impl FnOnce(&mut Health)) {
    if let Ok(mut h) = HEALTH.lock() {
        let e = h.entry((project.clone(), service)).or_insert_with(|| Health {
            project: project.to_string(),
            service: service.to_string(),
            ..Health::default()
        });
        f(e);
    }
}

/// Every configured service's health as this replica sees it.
pub fn status() -> Vec<Health> {
    HEALTH.lock().map(|h| h.values().cloned().collect()).unwrap_or_default()
}

/// Keeps what came in (once per id) and wakes the worker. False for a repeat.
pub async fn take(state: &Arc<AppState>, inbound: ChatInbound) -> Result<bool, baton_domain::Error> {
    let fresh = state.store.write(move |tx| baton_domain::chat::receive(tx, &inbound)).await?;
    WORK.notify_one();
    Ok(fresh)
}

/// Runs for as long as the coordinator does; works while this replica holds
/// the timers' lease.
pub async fn worker(state: Arc<AppState>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let sender = match Sender::new(state.config.public_url.clone()) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!(error = %e, "chat will not post: no HTTP client could be made");
            return;
        }
    };
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut pruned = tokio::time::Instant::now();
    loop {
        if state.is_leader() {
            act_on_inbound(&state).await;
            follow_threads(&state).await;
            send_due(&state, &sender, &busy).await;
            if pruned.elapsed() > Duration::from_secs(600) {
                pruned = tokio::time::Instant::now();
                let before = Timestamp::now().plus_millis(-baton_domain::chat::KEEP_MS);
                let _ = state.store.write(move |tx| tx.prune_chat(before)).await;
            }
        }
        tokio::select! {
            _ = WORK.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(300)) => {}
        }
    }
}

async fn act_on_inbound(state: &Arc<AppState>) {
    let Ok(pending) = state.store.read(|r| r.chat_inbound_pending(50)).await else { return };
    for c in pending {
        let (st, one) = (Arc::clone(state), c.clone());
        let acted = baton_domain::transact(state, move |tx, fx| baton_domain::chat::act(tx, fx, one, &st.config)).await;
        if let Err(e) = acted {
            tracing::warn!(key = %c.key, error = %e, "could not act on a chat message");
            let mut failed = c;
            failed.state = "failed".into();
            failed.outcome = Some(e.to_string());
            let _ = state.store.write(move |tx| tx.put_chat_inbound(&failed)).await;
        }
    }
}

/// Threads whose task moved get their status edited and their answers posted.
async fn follow_threads(state: &Arc<AppState>) {
    let due = state
        .store
        .read(|r| {
            let mut due = Vec::new();
            for t in r.chat_threads_open()? {
                let task = r.task(&t.task_id)?;
                let moved = match &task {
                    None => true,
                    Some(task) => {
                        let ended = match &task.session_id {
                            Some(s) => r.runs_of_session(s)?.iter().filter(|run| run.status.is_finished()).count(),
                            None => 0,
                        };
                        ended as u32 != t.answered
                            || (t.status_message.is_some()
                                && t.shown.as_deref() != Some(baton_domain::chat::status_text(task).as_str()))
                    }
                };
                if moved {
                    due.push(t);
                }
            }
            Ok::<_, baton_store::StoreError>(due)
        })
        .await;
    let Ok(due) = due else { return };
    for thread in due {
        let followed = state
            .store
            .write(move |tx| {
                let key = thread.key.clone();
                let fresh: ChatThread = tx.chat_thread(&key)?.unwrap_or(thread);
                for p in baton_domain::chat::follow(tx, fresh)? {
                    tx.put_chat_post(&p)?;
                }
                Ok::<_, baton_domain::Error>(())
            })
            .await;
        if let Err(e) = followed {
            tracing::warn!(error = %e, "could not follow a chat thread");
        }
    }
}

/// Starts a try of each due post whose channel has none in flight, in order.
async fn send_due(state: &Arc<AppState>, sender: &Arc<Sender>, busy: &Arc<Mutex<HashSet<String>>>) {
    let Ok(pending) = state.store.read(|r| r.chat_posts_pending(200)).await else { return };
    let now = Timestamp::now();
    let mut seen = HashSet::new();
    for p in pending {
        let lane = format!("{}:{}", p.service, p.channel);
        // Only a channel's oldest pending post may go: order is kept.
        if !seen.insert(lane.clone()) || p.next_at > now || !sender.wait_for(p.service, &p.channel).is_zero() {
            continue;
        }
        if !busy.lock().is_ok_and(|mut b| b.insert(lane.clone())) {
            continue;
        }
        let (state, sender, busy) = (Arc::clone(state), Arc::clone(sender), Arc::clone(busy));
        tokio::spawn(async move {
            deliver(&state, &sender, p).await;
            if let Ok(mut b) = busy.lock() {
                b.remove(&lane);
            }
            WORK.notify_one();
        });
    }
}

/// One try of a post, recorded.
async fn deliver(state: &Arc<AppState>, sender: &Sender, p: ChatPost) {
    let project_id = p.project_id.clone();
    let agent = p.as_agent.clone();
    let Ok((project, def)) = state
        .store
        .read(move |r| {
            Ok::<_, baton_store::StoreError>((
                r.project(&project_id)?,
                agent.map(|a| r.agent(&a)).transpose()?.flatten(),
            ))
        })
        .await
    else {
        return;
    };
    let who = Identity {
        name: def.as_ref().map_or_else(|| "Baton".to_owned(), |d| d.name.clone()),
        avatar: def.as_ref().and_then(|d| d.extra.get("avatar_url")).and_then(|v| v.as_str()).map(str::to_owned),
    };
    let chat = project.as_ref().and_then(|p| p.settings.chat.clone()).unwrap_or_default();
    let stopped =
        HEALTH.lock().ok().and_then(|h| h.get(&(p.project_id.clone(), p.service)).and_then(|x| x.stopped.clone()));
    let outcome = match (stopped, p.service, &chat.slack, &chat.discord) {
        (Some(why), ..) => Outcome::Failed(format!("{} posting is stopped: {why}", p.service)),
        (None, ChatService::Slack, Some(s), _) => sender.slack(s, &p, &who).await,
        (None, ChatService::Discord, _, Some(d)) => sender.discord(d, &p, &who).await,
        _ => Outcome::Failed(format!("the project has no [chat.{}] any more", p.service)),
    };
    record(state, p, outcome).await;
}

async fn record(state: &Arc<AppState>, mut p: ChatPost, outcome: Outcome) {
    let (project, service) = (p.project_id.clone(), p.service);
    let result = match outcome {
        Outcome::Sent { made, thread } => {
            health(&project, service, |h| {
                h.auth_failures = 0;
                h.last_sent = Some(Timestamp::now());
            });
            state.store.write(move |tx| baton_domain::chat::sent(tx, &p, made, thread)).await
        }
        Outcome::Retry(after, why) => {
            p.attempts += 1;
            p.next_at = Timestamp::now().plus_millis(after.as_millis() as i64);
            p.error = Some(why.clone());
            health(&project, service, |h| h.last_error = Some(why));
            state.store.write(move |tx| tx.put_chat_post(&p).map_err(baton_domain::Error::from)).await
        }
        Outcome::Failed(why) | Outcome::Unauthorized(why) if p.attempts >= 20 => fail(state, p, why).await,
        Outcome::Failed(why) => fail(state, p, why).await,
        Outcome::Unauthorized(why) => {
            let mut stop = false;
            health(&project, service, |h| {
                h.auth_failures += 1;
                h.last_error = Some(why.clone());
                if h.auth_failures >= send::AUTH_FAILURES {
                    h.stopped = Some(why.clone());
                    stop = true;
                }
            });
            if stop {
                tracing::error!(%project, %service, reason = %why, "chat posting stopped after repeated refusals of its token");
                fail(state, p, why).await
            } else {
                p.attempts += 1;
                p.next_at = Timestamp::now().plus_millis(2000);
                p.error = Some(why);
                state.store.write(move |tx| tx.put_chat_post(&p).map_err(baton_domain::Error::from)).await
            }
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = ?e, "could not record a chat post's try");
    }
}

async fn fail(state: &Arc<AppState>, mut p: ChatPost, why: String) -> Result<(), baton_domain::Error> {
    health(&p.project_id, p.service, |h| h.last_error = Some(why.clone()));
    p.state = "failed".into();
    p.error = Some(why);
    state.store.write(move |tx| tx.put_chat_post(&p).map_err(baton_domain::Error::from)).await
}

/// Marks a service's connection as up or down (Socket Mode, the Gateway).
pub(crate) fn connected(project: &ProjectId, service: ChatService, up: bool) {
    health(project, service, |h| h.connected = Some(up));
}

/// Keeps a Socket Mode connection for each project with `app_token_env`, and a
/// Gateway connection for each project with `[chat.discord]`, on every
/// replica (what they bring is kept once, whichever replica got it).
pub async fn connections(state: Arc<AppState>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut running: HashMap<(ProjectId, ChatService), tokio::task::JoinHandle<()>> = HashMap::new();
    let mut told: HashSet<(ProjectId, String)> = HashSet::new();
    loop {
        if let Ok(projects) = state.store.read(|r| r.projects()).await {
            for p in projects {
                let chat = p.settings.chat.clone().unwrap_or_default();
                for var in unset_variables(&chat) {
                    if told.insert((p.id.clone(), var.clone())) {
                        tracing::error!(project = %p.name, variable = %var, "chat: the variable its settings name is not set; `baton doctor` says which");
                    }
                }
                let wanted = [
                    (ChatService::Slack, chat.slack.as_ref().is_some_and(|s| s.app_token_env.is_some())),
                    (
                        ChatService::Discord,
                        chat.discord.as_ref().is_some_and(|d| d.gateway_url.as_deref() != Some("off")),
                    ),
                ];
                for (service, want) in wanted {
                    let key = (p.id.clone(), service);
                    let alive = running.get(&key).is_some_and(|h| !h.is_finished());
                    if want && !alive {
                        let (st, id) = (Arc::clone(&state), p.id.clone());
                        let handle = match service {
                            ChatService::Slack => tokio::spawn(socket::run(st, id)),
                            ChatService::Discord => tokio::spawn(gateway::run(st, id)),
                        };
                        running.insert(key, handle);
                    } else if !want && let Some(h) = running.remove(&key) {
                        h.abort();
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// The variables `[chat.*]` names that are not set in this process.
pub fn unset_variables(chat: &baton_core::chat::ChatSettings) -> Vec<String> {
    let mut vars = Vec::new();
    if let Some(s) = &chat.slack {
        vars.push(s.bot_token_env.clone());
        vars.extend(s.signing_secret_env.clone());
        vars.extend(s.app_token_env.clone());
    }
    if let Some(d) = &chat.discord {
        vars.push(d.bot_token_env.clone());
    }
    vars.into_iter().filter(|v| std::env::var(v).map_or(true, |x| x.trim().is_empty())).collect()
}
