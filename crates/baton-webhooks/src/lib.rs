//! Baton's webhooks, sent: the worker that takes the outbox's deliveries (which
//! the domain writes in the same transaction as the change they tell of) and
//! posts them, signed as the Standard Webhooks specification says, with
//! retries and backoff, each in the shape its receiver wants (Baton's JSON,
//! Slack, Discord, ntfy).
//!
//! This crate depends on the domain (`baton-domain`), never the reverse; it
//! knows nothing of the HTTP server.

pub mod deliver;
pub mod formats;

pub use deliver::worker;
