//! Who is calling, and from where.
//!
//! Tokens are random, given out once, and stored only as SHA-256 hashes (see
//! `baton_domain::tokens`). A request
//! names its token in `Authorization: Bearer ...` (the CLI, launchers, agents) or in
//! the `baton_token` cookie (the dashboard, after its login link). Requests from web
//! pages of another origin, or with a `Host` the coordinator does not answer to,
//! are refused before anything else runs, so a page in the user's browser cannot
//! drive a coordinator on localhost.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_core::api::ErrorCode;
use baton_core::model::TokenKind;
use baton_domain::AppState;
pub use baton_domain::tokens::{Caller, hash_token, new_token, random_hex, random_id, token_record};

use crate::ServerConfig;
use crate::error::AppError;

/// The cookie the dashboard's login link sets.
pub const COOKIE: &str = "baton_token";

fn bearer(parts: &Parts) -> Option<String> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Some(token) = value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")) {
            return Some(token.trim().to_owned());
        }
        // git's own credentials (`https://x:TOKEN@host/git/…`): the password is the token.
        if let Some(basic) = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic ")) {
            use base64::Engine;
            let decoded = base64::engine::general_purpose::STANDARD.decode(basic.trim()).ok()?;
            let text = String::from_utf8(decoded).ok()?;
            return text.split_once(':').map(|(_, token)| token.to_owned()).filter(|t| !t.is_empty());
        }
    }
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The authenticated caller of a request, as a handler's argument: its token
/// from the `Authorization` header or the dashboard's cookie, known to the
/// store. A request without one is refused with 401 before the handler runs.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

impl FromRequestParts<Arc<AppState>> for Auth {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, AppError> {
        let Some(token) = bearer(parts) else {
            return Err(AppError::new(
                ErrorCode::Unauthorized,
                "missing token: send Authorization: Bearer <token> (the admin token is in the data directory's `token` file)",
            ));
        };
        let hash = hash_token(&token);
        let record = match state.tokens.get(&hash) {
            Some(r) => Some(r),
            None => {
                let h = hash.clone();
                let found = state.store.read(move |r| r.token(&h)).await?;
                if let Some(r) = &found {
                    state.tokens.insert(r.clone());
                }
                found
            }
        };
        match record {
            Some(r) => {
                check_launcher_protocol(parts, r.kind == TokenKind::Launcher)?;
                Ok(Auth(Caller { kind: r.kind, subject: r.subject, token_hash: r.hash }))
            }
            None => Err(AppError::new(ErrorCode::Unauthorized, "unknown or revoked token")),
        }
    }
}

/// A launcher's every request names its protocol; one older than this
/// coordinator works with is refused (426) rather than handed work it would
/// misread. No header is protocol 1 (Baton before the header). Other callers
/// need not name one, but one they name is checked as a launcher's.
fn check_launcher_protocol(parts: &Parts, launcher: bool) -> Result<(), AppError> {
    use baton_core::api::{LAUNCHER_PROTOCOL, LAUNCHER_PROTOCOL_HEADER, MIN_LAUNCHER_PROTOCOL};
    let named = parts.headers.get(LAUNCHER_PROTOCOL_HEADER).map(|v| v.to_str().unwrap_or("?"));
    let theirs = match named {
        None if !launcher => return Ok(()),
        None => 1,
        Some(v) => v.trim().parse::<u32>().map_err(|_| {
            AppError::invalid(format!(
                "{LAUNCHER_PROTOCOL_HEADER} must be a number (this coordinator speaks {LAUNCHER_PROTOCOL})"
            ))
        })?,
    };
    if theirs < MIN_LAUNCHER_PROTOCOL {
        return Err(AppError::new(
            ErrorCode::UpgradeRequired,
            format!(
                "this launcher speaks launcher protocol {theirs}; this coordinator (Baton {}) needs protocol \
                 {MIN_LAUNCHER_PROTOCOL} or later: upgrade the launcher to the coordinator's Baton",
                env!("CARGO_PKG_VERSION")
            ),
        )
        .with_details(serde_json::json!({ "launcher_protocol": theirs, "needs": MIN_LAUNCHER_PROTOCOL })));
    }
    Ok(())
}

/// Refuses requests without a valid bearer token (for `/mcp`, whose tools then
/// call the API with that same token).
pub async fn require_token(_: Auth, req: Request, next: Next) -> Response {
    let bearer_header = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim().to_ascii_lowercase().starts_with("bearer "));
    if !bearer_header {
        return AppError::new(ErrorCode::Unauthorized, "MCP needs the token in Authorization: Bearer <token>")
            .into_response();
    }
    next.run(req).await
}

/// Refuses requests with a `Host` the coordinator does not answer to (DNS
/// rebinding) and requests whose `Origin` is another site.
pub async fn guard_origin(State(config): State<Arc<ServerConfig>>, req: Request, next: Next) -> Response {
    // HTTP/2 names the host in the `:authority` pseudo-header (the URI), not `Host`.
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).or(authority.as_deref()).unwrap_or("");
    if !config.host_allowed(host) {
        return AppError::new(ErrorCode::ForbiddenOrigin, format!("this coordinator does not answer to host {host:?}"))
            .into_response();
    }
    if let Some(origin) = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let same = origin
            .split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/'))
            .is_some_and(|authority| authority.eq_ignore_ascii_case(host));
        if !same {
            return AppError::new(ErrorCode::ForbiddenOrigin, format!("requests from {origin} are not allowed"))
                .into_response();
        }
    }
    next.run(req).await
}
