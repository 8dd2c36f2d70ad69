//! Who is calling, and from where.
//!
//! Tokens are random, given out once, and stored only as SHA-256 hashes. A request
//! names its token in `Authorization: Bearer ...` (the CLI, launchers, agents) or in
//! the `baton_token` cookie (the dashboard, after its login link). Requests from web
//! pages of another origin, or with a `Host` the coordinator does not answer to,
//! are refused before anything else runs, so a page in the user's browser cannot
//! drive a coordinator on localhost.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use baton_core::api::ErrorCode;
use baton_core::ids::{LauncherId, SessionId};
use baton_core::model::{TokenKind, TokenRecord};
use baton_core::time::Timestamp;
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::state::AppState;

/// The cookie the dashboard's login link sets.
pub const COOKIE: &str = "baton_token";

/// SHA-256 of a token, in hex.
pub fn hash_token(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh token of `kind`: a kind prefix and 256 random bits in hex.
pub fn new_token(kind: TokenKind) -> String {
    let prefix = match kind {
        TokenKind::Admin => "bta_",
        TokenKind::Launcher => "btl_",
        TokenKind::Session => "bts_",
    };
    format!("{prefix}{}", random_hex(32))
}

/// A fresh random id: `prefix` and 48 random bits in hex.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", random_hex(6))
}

/// `bytes` random bytes from the operating system, in hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system's random source failed");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// A token record for a new token.
pub fn token_record(token: &str, kind: TokenKind, subject: Option<String>) -> TokenRecord {
    TokenRecord { hash: hash_token(token), kind, subject, created_at: Timestamp::now(), id: None, name: None }
}

/// Known tokens, by hash, so most requests need no database read.
#[derive(Default)]
pub struct TokenCache {
    /// Hash → record.
    map: RwLock<HashMap<String, TokenRecord>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<TokenRecord> {
        self.map.read().ok()?.get(hash).cloned()
    }

    /// Remembers a token.
    pub fn insert(&self, record: TokenRecord) {
        if let Ok(mut map) = self.map.write() {
            map.insert(record.hash.clone(), record);
        }
    }

    /// Forgets one token.
    pub fn forget_hash(&self, hash: &str) {
        if let Ok(mut map) = self.map.write() {
            map.remove(hash);
        }
    }

    /// Forgets every token of `kind` for `subject`.
    pub fn forget(&self, kind: TokenKind, subject: &str) {
        self.forget_subject(kind.as_str(), Some(subject));
    }

    /// Forgets every token of a kind (as stored) and subject.
    pub fn forget_subject(&self, kind: &str, subject: Option<&str>) {
        if let Ok(mut map) = self.map.write() {
            map.retain(|_, r| !(r.kind.as_str() == kind && r.subject.as_deref() == subject));
        }
    }

    /// Forgets every token (revocations may have been missed).
    pub fn clear(&self) {
        if let Ok(mut map) = self.map.write() {
            map.clear();
        }
    }
}

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub struct Caller {
    /// What its token allows.
    pub kind: TokenKind,
    /// The session or launcher the token belongs to.
    pub subject: Option<String>,
    /// The hash of its token (a launcher token is bound to its launcher at the
    /// first registration).
    pub token_hash: String,
}

impl Caller {
    /// Refuses unless the caller holds the admin token.
    pub fn require_admin(&self) -> Result<(), AppError> {
        match self.kind {
            TokenKind::Admin => Ok(()),
            _ => Err(AppError::forbidden("this needs the admin token")),
        }
    }

    /// Refuses unless the caller holds a launcher token: the launcher protocol
    /// takes nothing else (an admin token would skip the checks of which runs a
    /// launcher holds).
    pub fn require_launcher(&self) -> Result<(), AppError> {
        match self.kind {
            TokenKind::Launcher => Ok(()),
            _ => Err(AppError::forbidden(
                "the launcher protocol needs a launcher token (make one with `baton token create --launcher`)",
            )),
        }
    }

    /// Refuses a launcher token acting for another launcher.
    pub fn require_launcher_id(&self, id: &LauncherId) -> Result<(), AppError> {
        self.require_launcher()?;
        match (self.kind, &self.subject) {
            (TokenKind::Launcher, Some(subject)) if subject != id.as_str() => {
                Err(AppError::forbidden("this launcher token belongs to another launcher"))
            }
            _ => Ok(()),
        }
    }

    /// The session a session token belongs to.
    pub fn session(&self) -> Option<SessionId> {
        match self.kind {
            TokenKind::Session => self.subject.as_deref().and_then(|s| SessionId::parse(s).ok()),
            _ => None,
        }
    }
}

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

impl FromRequestParts<Arc<AppState>> for Caller {
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
            Some(r) => Ok(Caller { kind: r.kind, subject: r.subject, token_hash: r.hash }),
            None => Err(AppError::new(ErrorCode::Unauthorized, "unknown or revoked token")),
        }
    }
}

/// Refuses requests without a valid bearer token (for `/mcp`, whose tools then
/// call the API with that same token).
pub async fn require_token(_caller: Caller, req: Request, next: Next) -> Response {
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
pub async fn guard_origin(State(state): State<Arc<AppState>>, req: Request, next: Next) -> Response {
    // HTTP/2 names the host in the `:authority` pseudo-header (the URI), not `Host`.
    let authority = req.uri().authority().map(|a| a.as_str().to_owned());
    let host = req.headers().get(header::HOST).and_then(|v| v.to_str().ok()).or(authority.as_deref()).unwrap_or("");
    if !state.config.host_allowed(host) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token(TokenKind::Admin);
        let b = new_token(TokenKind::Admin);
        assert_ne!(a, b);
        assert!(a.starts_with("bta_") && a.len() == 68);
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_eq!(hash_token("x").len(), 64);
    }
}
