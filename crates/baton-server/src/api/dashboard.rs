//! The dashboard: its page and assets (embedded in the binary), and the one-time
//! login link that gives a browser its cookie.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use baton_core::model::TokenKind;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{COOKIE, Caller, new_token, token_record};
use crate::error::AppError;
use crate::state::AppState;

const INDEX: &str = include_str!("../../assets/index.html");
const APP_JS: &str = include_str!("../../assets/app.js");
const APP_CSS: &str = include_str!("../../assets/app.css");

/// Asset responses: no caching across Baton versions, and no sniffing.
fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

pub(super) async fn index() -> Response {
    let mut response = Html(INDEX).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-cache".parse().expect("a valid header"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
            .parse()
            .expect("a valid header"),
    );
    headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("a valid header"));
    response
}

pub(super) async fn app_js() -> Response {
    asset("text/javascript; charset=utf-8", APP_JS)
}

pub(super) async fn app_css() -> Response {
    asset("text/css; charset=utf-8", APP_CSS)
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct LoginQuery {
    code: Option<String>,
}

/// `GET /login?code=...`: trades a one-time code for an HttpOnly cookie holding a
/// fresh dashboard token, then sends the browser to `/` (so the code leaves the
/// address bar at once).
pub(super) async fn login(State(state): State<Arc<AppState>>, ApiQuery(q): ApiQuery<LoginQuery>) -> Response {
    let fresh = match q.code.as_deref() {
        Some(code) => match state.redeem_login_code(code).await {
            Ok(fresh) => fresh,
            Err(e) => return e.into_response(),
        },
        None => false,
    };
    if !fresh {
        let page = "<!doctype html><meta charset=utf-8><title>Baton</title><body style=\"font-family:system-ui;margin:3em\">\
            <h1>This login link was already used or has expired.</h1>\
            <p>Run <code>baton dashboard</code> in the repository for a new one.</p>";
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let token = new_token(TokenKind::Admin);
    let record = token_record(&token, TokenKind::Admin, Some("dashboard".into()));
    if let Err(e) = state.store.write(move |tx| tx.put_token(&record)).await {
        return AppError::from(e).into_response();
    }
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000");
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_owned())]).into_response()
}

/// `POST /api/login-links`: a new one-time dashboard login link (admin only).
pub(super) async fn login_link(State(state): State<Arc<AppState>>, caller: Caller) -> Result<Json<Value>, AppError> {
    caller.require_admin()?;
    let url = state.login_link().await?;
    Ok(Json(json!({ "url": url, "expires_in_s": crate::state::LOGIN_CODE_TTL.as_secs() })))
}
