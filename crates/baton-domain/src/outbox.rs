//! The outbox: Baton telling the world what happened.
//!
//! A change worth telling of records a [`Delivery`] for each webhook that wants
//! it, in the same transaction as the change, so a change that commits is told
//! of and one that rolls back is not. The domain only says what happened; the
//! webhooks integration (`baton-webhooks`) sends the deliveries off the request
//! path, signed, with retries, in the shape each receiver wants, and the HTTP
//! server serves the one-tap action links a notification carries.

use crate::tokens::hash_token;
use baton_core::ids::ProjectId;
use baton_core::ids::TaskId;
use baton_core::model::{MergeState, Orchestration, Task};
use baton_core::status::{OrchestrationStatus, TaskStatus};
use baton_core::time::Timestamp;
use baton_core::webhook::ActionLink;
use baton_core::webhook::{Delivery, DeliveryStatus, LinkAction, WebhookEvent};
use baton_store::{Notice, StoreError, StoreTx};
use serde_json::Map;
use serde_json::{Value, json};
use std::time::Duration;

/// A test delivery to one webhook, as a person asks for it: queued now, sent
/// by the worker like any other (signed, retried, recorded).
pub fn test_delivery(tx: &mut dyn StoreTx, hook: &baton_core::webhook::Webhook) -> Result<Delivery, StoreError> {
    let now = Timestamp::now();
    let data = json!({ "message": "A test of this webhook, sent from Baton.", "webhook_id": hook.id });
    let payload = json!({ "type": WebhookEvent::WebhookTest, "timestamp": now.to_rfc3339(), "data": data });
    let delivery = pending(hook.id.clone(), WebhookEvent::WebhookTest, payload, now);
    tx.put_delivery(&delivery)?;
    tx.notify(Notice::Deliveries)?;
    Ok(delivery)
}

/// The most characters of a task's result or reason a notification carries.
const TEXT_MAX: usize = 500;

/// Whether a task saved in this state may be worth telling of (its previous
/// state is read only then).
pub fn may_tell(task: &Task) -> bool {
    matches!(
        task.status,
        TaskStatus::Succeeded
            | TaskStatus::Failed
            | TaskStatus::Cancelled
            | TaskStatus::Blocked
            | TaskStatus::AwaitingApproval
    ) || task.git.merge == MergeState::Merged
}

/// Tells of a task's change from `before` (none for a new task): a status it
/// reached, a merge, the end of its plan.
pub fn task_saved(tx: &mut dyn StoreTx, before: Option<&Task>, task: &Task) -> Result<(), StoreError> {
    let status_changed = before.is_none_or(|b| b.status != task.status);
    if status_changed {
        let event = match task.status {
            TaskStatus::Succeeded => Some(WebhookEvent::TaskSucceeded),
            TaskStatus::Failed => Some(WebhookEvent::TaskFailed),
            TaskStatus::Blocked => Some(WebhookEvent::TaskBlocked),
            TaskStatus::AwaitingApproval => Some(WebhookEvent::TaskAwaitingApproval),
            _ => None,
        };
        if let Some(event) = event {
            tell_task(tx, event, task, Value::Null)?;
        }
        if task.status.is_settled() && task.plan_id.is_some() {
            plan_settled(tx, task)?;
        }
    }
    let merged_now = task.git.merge == MergeState::Merged && before.is_none_or(|b| b.git.merge != MergeState::Merged);
    if merged_now {
        tell_task(tx, WebhookEvent::TaskMerged, task, Value::Null)?;
    }
    Ok(())
}

/// The links a notification of `event` carries.
fn actions_for(event: WebhookEvent) -> &'static [LinkAction] {
    match event {
        WebhookEvent::TaskAwaitingApproval => &[LinkAction::Approve, LinkAction::Stop],
        WebhookEvent::TaskSucceeded => &[LinkAction::Merge],
        WebhookEvent::TaskFailed => &[LinkAction::Retry],
        WebhookEvent::MergeConflict => &[LinkAction::Merge, LinkAction::Retry],
        _ => &[],
    }
}

/// Tells of `event` about a task; `extra`'s fields (an object) join the data.
pub fn tell_task(tx: &mut dyn StoreTx, event: WebhookEvent, task: &Task, extra: Value) -> Result<(), StoreError> {
    tell_with(tx, event, Some(&task.project_id), actions_for(event), |tx| {
        let project = tx.project(&task.project_id)?;
        let mut data = json!({
        "task": {
            "id": task.id,
            "title": task.title,
            "status": task.status,
            "reason": task.reason.as_deref().map(clip),
            "result": task.result.as_deref().map(clip),
            "agent": task.agent,
            "branch": task.git.branch,
            "base": task.git.base_branch,
            "merge": task.git.merge,
            "cost_usd": task.usage.cost_usd,
            "project": project.as_ref().map(|p| json!({"id": p.id, "name": p.name})),
        },
        "link": format!("/#/tasks/{}", task.id),
        });
        merge_into(&mut data, extra);
        Ok(Some(data))
    })
}

/// Tells of an orchestration's end, when `o` has just ended.
pub fn orchestration_saved(tx: &mut dyn StoreTx, o: &Orchestration) -> Result<(), StoreError> {
    if !matches!(o.status, OrchestrationStatus::Completed | OrchestrationStatus::Failed) {
        return Ok(());
    }
    tell_with(tx, WebhookEvent::OrchestrationCompleted, Some(&o.project_id), &[], |tx| {
        if tx.orchestration(&o.id)?.is_some_and(|before| before.status == o.status) {
            return Ok(None);
        }
        Ok(Some(json!({
            "orchestration": {
                "id": o.id,
                "status": o.status,
                "description": clip(&o.description),
                "synthesis_task": o.synthesizer_task,
            },
            "result": o.final_result.as_deref().map(clip),
            "link": o.synthesizer_task.as_ref().map_or_else(|| "/#/".to_owned(), |t| format!("/#/tasks/{t}")),
        })))
    })
}

/// Tells of a plan's end when `task`, one of its tasks, settled the last. Its
/// tasks are read only when a webhook wants to hear of it.
fn plan_settled(tx: &mut dyn StoreTx, task: &Task) -> Result<(), StoreError> {
    tell_with(tx, WebhookEvent::PlanCompleted, Some(&task.project_id), &[], |tx| {
        let Some(plan) = task.plan_id.as_ref().map(|id| tx.plan(id)).transpose()?.flatten() else { return Ok(None) };
        let mut tasks = Vec::new();
        let ids = plan
            .tasks
            .iter()
            .map(|(name, id)| (name.clone(), id))
            .chain(plan.synthesis.iter().map(|id| ("synthesis".into(), id)));
        for (name, id) in ids {
            let status = if *id == task.id { Some(task.status) } else { tx.task(id)?.map(|t| t.status) };
            match status {
                Some(s) if s.is_settled() => tasks.push(json!({"name": name, "id": id, "status": s})),
                _ => return Ok(None),
            }
        }
        let succeeded = tasks.iter().filter(|t| t["status"] == "succeeded").count();
        Ok(Some(json!({
            "plan": {"id": plan.id, "name": plan.name, "tasks": tasks, "succeeded": succeeded, "total": tasks.len()},
            "link": "/#/dag",
        })))
    })
}

/// Records a delivery of `event` for each webhook that wants it, and asks the
/// worker (on whichever replica runs it) to look. `actions` are the one-tap
/// links to make when each is first sent.
pub fn tell(
    tx: &mut dyn StoreTx,
    event: WebhookEvent,
    project: Option<&ProjectId>,
    data: Value,
    actions: &[LinkAction],
) -> Result<(), StoreError> {
    tell_with(tx, event, project, actions, |_| Ok(Some(data)))
}

/// [`tell`], with the data made by `data` only when a webhook wants `event`
/// (and not at all when `data` finds nothing to tell).
fn tell_with<F>(
    tx: &mut dyn StoreTx,
    event: WebhookEvent,
    project: Option<&ProjectId>,
    actions: &[LinkAction],
    data: F,
) -> Result<(), StoreError>
where
    F: FnOnce(&mut dyn StoreTx) -> Result<Option<Value>, StoreError>,
{
    let hooks: Vec<_> = tx.webhooks()?.into_iter().filter(|h| h.wants(event, project)).collect();
    if hooks.is_empty() {
        return Ok(());
    }
    let Some(data) = data(tx)? else { return Ok(()) };
    let now = Timestamp::now();
    let mut payload = json!({ "type": event, "timestamp": now.to_rfc3339(), "data": data });
    if !actions.is_empty() {
        payload["data"]["actions"] = json!(actions);
    }
    for hook in hooks {
        tx.put_delivery(&pending(hook.id, event, payload.clone(), now))?;
    }
    tx.notify(Notice::Deliveries)
}

/// A delivery of `payload` to a webhook, due now.
fn pending(webhook_id: String, event: WebhookEvent, payload: Value, now: Timestamp) -> Delivery {
    Delivery {
        id: format!("msg_{}", crate::tokens::random_hex(12)),
        webhook_id,
        event,
        payload,
        status: DeliveryStatus::Pending,
        attempts: Vec::new(),
        next_at: now,
        created_at: now,
        finished_at: None,
        prepared: false,
        retry_from: None,
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(TEXT_MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}

fn merge_into(data: &mut Value, extra: Value) {
    if let (Some(into), Value::Object(from)) = (data.as_object_mut(), extra) {
        into.extend(from);
    }
}

/// Makes a delivery's links (one per action it names, for its task) and its
/// dashboard link absolute, once, before its first try; every try then sends
/// the same body.
pub fn prepare_links(
    tx: &mut dyn StoreTx,
    mut delivery: Delivery,
    base: &str,
    ttl: Duration,
) -> Result<Delivery, StoreError> {
    let base = base.trim_end_matches('/');
    let data = &mut delivery.payload["data"];
    if let Some(link) = data.get("link").and_then(Value::as_str).map(str::to_owned) {
        data["url"] = json!(format!("{base}{link}"));
    }
    let task = data["task"]["id"].as_str().and_then(|t| TaskId::parse(t).ok());
    let names: Vec<LinkAction> = data["actions"]
        .as_array()
        .map(|a| a.iter().filter_map(|n| n.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    let mut links = Map::new();
    if let Some(task) = task {
        let now = Timestamp::now();
        for action in names {
            let key = crate::tokens::random_hex(32);
            tx.put_action_link(
                &hash_token(&key),
                &ActionLink {
                    task_id: task.clone(),
                    action,
                    created_at: now,
                    expires_at: now.plus_millis(ttl.as_millis() as i64),
                    used_at: None,
                },
            )?;
            links.insert(action.as_str().to_owned(), json!(format!("{base}/act/{task}/{action}/{key}")));
        }
    }
    if let Some(obj) = data.as_object_mut() {
        obj.remove("link");
        if links.is_empty() {
            obj.remove("actions");
        } else {
            obj.insert("actions".into(), Value::Object(links));
        }
    }
    delivery.prepared = true;
    tx.put_delivery(&delivery)?;
    Ok(delivery)
}
