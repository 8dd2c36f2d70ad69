//! Tokens and callers: how tokens are made and known, and what each kind of
//! caller may do.
//!
//! Tokens are random, given out once, and stored only as SHA-256 hashes; a
//! [`TokenCache`] keeps the known ones so most requests need no database read.
//! How a request names its token (a header, a cookie) is the HTTP server's
//! business; the [`Caller`] it finds is the domain's.

use std::collections::HashMap;
use std::sync::RwLock;

use baton_core::ids::{LauncherId, SessionId};
use baton_core::model::{TokenKind, TokenRecord};
use baton_core::time::Timestamp;
use sha2::{Digest, Sha256};

use crate::Error;

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
    /// The record of the token with this hash, when known.
    pub fn get(&self, hash: &str) -> Option<TokenRecord> {
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
    /// A person acting with the admin's authority (work a schedule, an issue or
    /// a chat message starts on a person's behalf).
    pub fn person() -> Self {
        Caller { kind: TokenKind::Admin, subject: None, token_hash: String::new() }
    }

    /// Refuses unless the caller holds the admin token.
    pub fn require_admin(&self) -> Result<(), Error> {
        match self.kind {
            TokenKind::Admin => Ok(()),
            _ => Err(Error::forbidden("this needs the admin token")),
        }
    }

    /// Refuses unless the caller holds a launcher token: the launcher protocol
    /// takes nothing else (an admin token would skip the checks of which runs a
    /// launcher holds).
    pub fn require_launcher(&self) -> Result<(), Error> {
        match self.kind {
            TokenKind::Launcher => Ok(()),
            _ => Err(Error::forbidden(
                "the launcher protocol needs a launcher token (make one with `baton token create --launcher`)",
            )),
        }
    }

    /// Refuses a launcher token acting for another launcher.
    pub fn require_launcher_id(&self, id: &LauncherId) -> Result<(), Error> {
        self.require_launcher()?;
        match (self.kind, &self.subject) {
            (TokenKind::Launcher, Some(subject)) if subject != id.as_str() => {
                Err(Error::forbidden("this launcher token belongs to another launcher"))
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
