//! The delivery worker: sends the outbox's deliveries, one at a time per
//! webhook and in order, on the replica that runs the timers.
//!
//! Nothing here runs on a request's path: a slow or dead receiver holds only its
//! own webhook's queue. A try is a POST signed as the Standard Webhooks
//! specification says (`webhook-id`, `webhook-timestamp`, `webhook-signature`);
//! a 2xx delivers, `410 Gone` disables the webhook, anything else (a timeout, a
//! refused connection, another status) is tried again after the next wait of
//! the schedule, with jitter, until the retry window ends and the delivery is
//! marked failed. Each try is recorded on the delivery before the next is made,
//! so a restart (a kill -9 included) takes up where it was: at least once.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use baton_core::time::Timestamp;
use baton_core::webhook::{Attempt, Delivery, DeliveryStatus, Webhook};
use baton_store::StoreError;

use baton_domain::outbox::prepare_links;
use baton_domain::signature::Secret;
use baton_domain::{AppState, WebhookSettings};

use crate::formats;

/// The longest the worker sleeps before looking again.
const LOOK: Duration = Duration::from_secs(1);

/// How long finished deliveries and expired links are kept.
const KEEP_MS: i64 = 7 * 86_400 * 1000;

/// How often old records are pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The most bytes of a receiver's answer kept in an attempt's error.
const ANSWER_MAX: usize = 200;

/// Runs for as long as the coordinator does; works only while this replica
/// holds the timers' lease.
pub async fn worker(state: Arc<AppState>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = match reqwest::Client::builder()
        .timeout(state.config.webhooks.timeout)
        .connect_timeout(state.config.webhooks.timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Baton-Webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks will not be sent: no HTTP client could be made");
            return;
        }
    };
    let busy: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut pruned: Option<Instant> = None;
    loop {
        let mut wait = LOOK;
        if state.is_leader() {
            if pruned.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                pruned = Some(Instant::now());
                prune(&state).await;
            }
            match state.store.read(|r| r.next_deliveries()).await {
                Ok(heads) => wait = start_due(&state, &client, &busy, heads),
                Err(e) => tracing::warn!(error = %e, "could not read the webhook outbox"),
            }
        }
        tokio::select! {
            _ = state.delivery_work.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

/// Starts a try of each head that is due and whose webhook has none in flight;
/// how long until the next is due (at most [`LOOK`]).
fn start_due(
    state: &Arc<AppState>,
    client: &reqwest::Client,
    busy: &Arc<Mutex<HashSet<String>>>,
    heads: Vec<Delivery>,
) -> Duration {
    let now = Timestamp::now();
    let mut wait = LOOK;
    for delivery in heads {
        let ahead = delivery.next_at.millis_since(now);
        if ahead > 0 {
            wait = wait.min(Duration::from_millis(ahead as u64));
            continue;
        }
        if !busy.lock().is_ok_and(|mut b| b.insert(delivery.webhook_id.clone())) {
            continue;
        }
        let (state, client, busy) = (Arc::clone(state), client.clone(), Arc::clone(busy));
        tokio::spawn(async move {
            let webhook = delivery.webhook_id.clone();
            if let Err(e) = try_once(&state, &client, delivery).await {
                tracing::warn!(%webhook, error = %e, "a webhook delivery could not be recorded");
            }
            if let Ok(mut b) = busy.lock() {
                b.remove(&webhook);
            }
            // Its next delivery may go now.
            state.delivery_work.notify_one();
        });
    }
    wait
}

/// One try of a delivery, recorded.
async fn try_once(state: &Arc<AppState>, client: &reqwest::Client, delivery: Delivery) -> Result<(), StoreError> {
    let id = delivery.webhook_id.clone();
    let Some(webhook) = state.store.read(move |r| r.webhook(&id)).await? else { return Ok(()) };
    if webhook.disabled.is_some() {
        return Ok(());
    }
    let delivery = if delivery.prepared {
        delivery
    } else {
        let (base, ttl) = (state.config.public_url.clone(), state.config.webhooks.link_ttl);
        state.store.write(move |tx| prepare_links(tx, delivery, &base, ttl)).await?
    };
    let attempt = send(client, &webhook, &delivery).await;
    let settings = state.config.webhooks.clone();
    state.store.write(move |tx| record(tx, &webhook, &delivery.id, attempt, &settings)).await
}

/// Sends a delivery to its webhook once.
async fn send(client: &reqwest::Client, webhook: &Webhook, delivery: &Delivery) -> Attempt {
    let at = Timestamp::now();
    let started = Instant::now();
    let shaped = formats::render(webhook, &delivery.payload);
    let timestamp = at.as_millis() / 1000;
    let signature = Secret::parse(&webhook.secret).map(|s| s.sign(&delivery.id, timestamp, &shaped.body));
    let mut request = client
        .post(&shaped.url)
        .header("content-type", shaped.content_type)
        .header("webhook-id", &delivery.id)
        .header("webhook-timestamp", timestamp.to_string());
    if let Ok(signature) = &signature {
        request = request.header("webhook-signature", signature);
    }
    let result = request.body(shaped.body).send().await;
    let ms = started.elapsed().as_millis() as u64;
    match result {
        Ok(answer) if answer.status().is_success() => {
            Attempt { at, status: Some(answer.status().as_u16()), error: None, ms }
        }
        Ok(answer) => {
            let status = answer.status();
            let text = answer.text().await.unwrap_or_default();
            let said: String = text.trim().chars().take(ANSWER_MAX).collect();
            let error =
                if said.is_empty() { format!("answered {status}") } else { format!("answered {status}: {said}") };
            Attempt { at, status: Some(status.as_u16()), error: Some(error), ms }
        }
        Err(e) if e.is_timeout() => Attempt { at, status: None, error: Some("timed out".into()), ms },
        Err(e) => Attempt { at, status: None, error: Some(describe(&e)), ms },
    }
}

/// An HTTP client error with its causes, for people.
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Records a try: delivered, tried again later, given up on, or the webhook
/// disabled by a `410 Gone`.
fn record(
    tx: &mut dyn baton_store::StoreTx,
    webhook: &Webhook,
    id: &str,
    attempt: Attempt,
    settings: &WebhookSettings,
) -> Result<(), StoreError> {
    // Removed with its webhook meanwhile: nothing to record.
    let Some(mut delivery) = tx.delivery(id)? else { return Ok(()) };
    let now = attempt.at;
    let status = attempt.status;
    delivery.attempts.push(attempt);
    match status {
        Some(s) if (200..300).contains(&s) => finish(&mut delivery, DeliveryStatus::Delivered, now),
        Some(410) => {
            finish(&mut delivery, DeliveryStatus::Failed, now);
            disable(tx, webhook, now)?;
        }
        _ => match next_try(&delivery, settings, now) {
            Some(at) => delivery.next_at = at,
            None => finish(&mut delivery, DeliveryStatus::Failed, now),
        },
    }
    tx.put_delivery(&delivery)
}

fn finish(delivery: &mut Delivery, status: DeliveryStatus, now: Timestamp) {
    delivery.status = status;
    delivery.finished_at = Some(now);
}

/// A receiver answered `410 Gone`: the webhook receives nothing more, and what
/// was waiting for it is given up on.
fn disable(tx: &mut dyn baton_store::StoreTx, webhook: &Webhook, now: Timestamp) -> Result<(), StoreError> {
    let Some(mut webhook) = tx.webhook(&webhook.id)? else { return Ok(()) };
    webhook.disabled = Some(format!("the receiver answered 410 Gone at {now}"));
    tx.put_webhook(&webhook)?;
    tracing::warn!(webhook = %webhook.id, url = %webhook.url, "a webhook's receiver answered 410 Gone: it is disabled");
    let deliveries = tx.deliveries(&webhook.id, u32::MAX)?;
    for mut d in deliveries.into_iter().filter(|d| d.status == DeliveryStatus::Pending) {
        finish(&mut d, DeliveryStatus::Failed, now);
        tx.put_delivery(&d)?;
    }
    Ok(())
}

/// When to try again after the tries so far, or `None` once the retry window
/// is over: the schedule's next wait (its last one repeating), ± 20 %.
pub fn next_try(delivery: &Delivery, settings: &WebhookSettings, now: Timestamp) -> Option<Timestamp> {
    let tries = delivery.attempts.len().max(1);
    let base =
        settings.retries.get(tries - 1).or(settings.retries.last()).copied().unwrap_or(Duration::from_secs(3600));
    let wait = (base.as_millis() as f64 * jitter()) as i64;
    let from = delivery.retry_from.unwrap_or(delivery.created_at);
    let end = from.plus_millis(settings.window.as_millis() as i64);
    let at = now.plus_millis(wait.max(1));
    (at <= end).then_some(at)
}

/// A factor between 0.8 and 1.2.
fn jitter() -> f64 {
    let mut b = [0u8; 2];
    let _ = getrandom::fill(&mut b);
    0.8 + 0.4 * f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX)
}

async fn prune(state: &Arc<AppState>) {
    let before = Timestamp::now().plus_millis(-KEEP_MS);
    match state.store.write(move |tx| tx.prune_webhook_records(before)).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(records = n, "old webhook deliveries and expired action links removed"),
        Err(e) => tracing::warn!(error = %e, "could not prune old webhook deliveries"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_core::webhook::WebhookEvent;

    fn delivery(attempts: usize) -> Delivery {
        let at = Timestamp::from_millis(0);
        Delivery {
            id: "msg_1".into(),
            webhook_id: "wh_1".into(),
            event: WebhookEvent::TaskFailed,
            payload: serde_json::Value::Null,
            status: DeliveryStatus::Pending,
            attempts: vec![Attempt { at, status: Some(500), error: None, ms: 1 }; attempts],
            next_at: at,
            created_at: at,
            finished_at: None,
            prepared: true,
            retry_from: None,
        }
    }

    #[test]
    fn the_schedule_backs_off_with_jitter_then_gives_up() {
        let settings = WebhookSettings::default();
        let now = Timestamp::from_millis(0);
        for (tries, secs) in [(1, 5), (2, 30), (3, 120), (4, 600), (5, 3600), (9, 3600)] {
            let at = next_try(&delivery(tries), &settings, now).unwrap().as_millis();
            let (low, high) = (secs * 800, secs * 1200);
            assert!((low..=high).contains(&at), "after {tries} tries: {at} ms, not about {secs} s");
        }
        let late = Timestamp::from_millis(86_400_000 - 1000);
        assert_eq!(next_try(&delivery(30), &settings, late), None, "the 24 h are over");
        let mut redelivered = delivery(30);
        redelivered.retry_from = Some(late);
        assert!(next_try(&redelivered, &settings, late).is_some(), "a redelivery has a window of its own");
    }
}
