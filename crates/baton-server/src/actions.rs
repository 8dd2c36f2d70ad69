//! One-tap action links: `/act/{task}/{action}/{key}`.
//!
//! A notification of a task that waits for approval, succeeded, failed or met a
//! merge conflict carries links that approve, merge, retry or stop it. Each is
//! a capability: a 256-bit random key, stored only as its SHA-256 with the one
//! task and the one action it may do, working once, until it expires (24 h by
//! default). Opening it (GET, which chat apps do for previews) shows a page and
//! changes nothing; the page's button POSTs, and only that acts. An unknown key,
//! or a key shown with another task or action, answers 403; a used or expired
//! one 410, with a page that says which. The link is the credential: no login.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use baton_core::model::Task;
use baton_core::time::Timestamp;
use baton_core::webhook::{ActionLink, LinkAction};
use baton_domain::tokens::hash_token;
use baton_domain::{AppState, resolve, scheduler, transact};
use baton_store::{StoreError, StoreRead};

use crate::error::AppError;

/// Why a link does not work.
enum Refusal {
    /// Unknown, or shown with another task or action (403).
    Invalid,
    /// Used already (410).
    Used(Timestamp),
    /// Expired (410).
    Expired(Timestamp),
}

/// The stored link for a URL's parts (its key as hashed), if it works now.
fn check(r: &dyn StoreRead, task: &str, action: &str, hash: &str) -> Result<Result<ActionLink, Refusal>, StoreError> {
    let Some(link) = r.action_link(hash)? else { return Ok(Err(Refusal::Invalid)) };
    if link.task_id.as_str() != task || link.action.as_str() != action {
        return Ok(Err(Refusal::Invalid));
    }
    if let Some(at) = link.used_at {
        return Ok(Err(Refusal::Used(at)));
    }
    if link.expires_at <= Timestamp::now() {
        return Ok(Err(Refusal::Expired(link.expires_at)));
    }
    Ok(Ok(link))
}

fn refused(why: Refusal) -> Response {
    match why {
        Refusal::Invalid => page(
            StatusCode::FORBIDDEN,
            "This link is not valid",
            "It was changed, or it was never made by this Baton. Nothing was done.",
            None,
        ),
        Refusal::Used(at) => page(
            StatusCode::GONE,
            "This link was used already",
            &format!("It was used at {at}. Each link works once. Nothing more was done."),
            None,
        ),
        Refusal::Expired(at) => page(
            StatusCode::GONE,
            "This link has expired",
            &format!("It stopped working at {at}. Open the task in the dashboard to act on it."),
            None,
        ),
    }
}

fn label(action: LinkAction) -> String {
    baton_core::text::capitalise(action.as_str())
}

/// `GET /act/{task}/{action}/{key}`: a page asking to confirm; changes nothing.
pub(crate) async fn confirm(
    State(state): State<Arc<AppState>>,
    Path((task, action, key)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let found = state
        .store
        .read(move |r| {
            let link = check(r, &task, &action, &hash_token(&key))?;
            let task = match &link {
                Ok(l) => r.task(&l.task_id)?,
                Err(_) => None,
            };
            Ok::<_, StoreError>((link, task))
        })
        .await?;
    let (link, task) = match found {
        (Err(why), _) => return Ok(refused(why)),
        (Ok(link), Some(task)) => (link, task),
        (Ok(_), None) => return Ok(refused(Refusal::Invalid)),
    };
    let verb = label(link.action);
    let text = format!(
        "{verb} task {} “{}”? It is {}{}. This link works once, until {}.",
        task.id,
        task.title,
        task.status,
        task.git.branch.as_deref().map(|b| format!(", on branch {b}")).unwrap_or_default(),
        link.expires_at
    );
    Ok(page(StatusCode::OK, &format!("{verb} task {}", task.id), &text, Some(&verb)))
}

/// `POST /act/{task}/{action}/{key}`: takes the link (once) and acts.
pub(crate) async fn act(
    State(state): State<Arc<AppState>>,
    Path((task, action, key)): Path<(String, String, String)>,
) -> Result<Response, AppError> {
    let hash = hash_token(&key);
    let taking = hash.clone();
    // Taken first, so two taps cannot both act; given back when the action fails.
    let taken = state
        .store
        .write(move |tx| {
            let link = match check(tx, &task, &action, &taking)? {
                Ok(link) => link,
                Err(why) => return Ok::<_, StoreError>(Err(why)),
            };
            tx.put_action_link(&taking, &ActionLink { used_at: Some(Timestamp::now()), ..link.clone() })?;
            Ok(Ok(link))
        })
        .await?;
    let link = match taken {
        Ok(link) => link,
        Err(why) => return Ok(refused(why)),
    };
    match perform(&state, &link).await {
        Ok(task) => {
            let text = format!("Task {} “{}” is now {}.", task.id, task.title, task.status);
            Ok(page(StatusCode::OK, &format!("{}: done", label(link.action)), &text, None))
        }
        Err(e) => {
            let e = AppError::from(e);
            let back = ActionLink { used_at: None, ..link };
            state.store.write(move |tx| tx.put_action_link(&hash, &back)).await?;
            let text = format!("{} The link still works: try again once this is resolved.", e.message);
            Ok(page(StatusCode::CONFLICT, "It could not be done", &text, None))
        }
    }
}

async fn perform(state: &Arc<AppState>, link: &ActionLink) -> Result<Task, baton_domain::Error> {
    let id = link.task_id.clone();
    match link.action {
        LinkAction::Approve => transact(state, move |tx, fx| scheduler::approve_task(tx, fx, &id)).await,
        LinkAction::Retry => transact(state, move |tx, fx| scheduler::retry_task(tx, fx, &id)).await,
        LinkAction::Stop => {
            let reason = Some("stopped from a notification's link".to_owned());
            transact(state, move |tx, fx| scheduler::stop_task(tx, fx, &id, reason)).await
        }
        LinkAction::Merge => {
            baton_domain::review::request_merge(state, id.clone(), None, false).await?;
            state.store.read(move |r| resolve::task(r, &id)).await
        }
    }
}

/// A small page that works on a phone, with the confirmation button when
/// `button` names one (it POSTs to the page's own URL).
fn page(status: StatusCode, title: &str, text: &str, button: Option<&str>) -> Response {
    let form = button
        .map(|b| format!("<form method=\"post\"><button type=\"submit\">{}</button></form>", escape(b)))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"robots\" content=\"noindex\"><title>{t} · Baton</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}}\
         button{{font:inherit;padding:.75rem 1.5rem;border-radius:.5rem;border:0;background:#1f6feb;color:#fff}}\
         @media (prefers-color-scheme:dark){{body{{background:#0d1117;color:#e6edf3}}}}</style></head>\
         <body><h1>{t}</h1><p>{x}</p>{form}</body></html>",
        t = escape(title),
        x = escape(text),
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("a valid header"));
    headers.insert(header::REFERRER_POLICY, "no-referrer".parse().expect("a valid header"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"
            .parse()
            .expect("a valid header"),
    );
    response
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}
