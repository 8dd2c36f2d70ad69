//! Baton's domain, with no IO: the ids of things, their states and the transitions
//! between them, the events sessions produce, agent definitions, DAG rules, and the
//! data types the coordinator's API speaks (shared by the server and its clients).
//!
//! Everything here is plain data and pure functions, so every other crate can depend
//! on it and tests can exercise the rules without a database or a process.

pub mod agent;
pub mod api;
pub mod chat;
pub mod cron;
pub mod dag;
pub mod doc;
pub mod event;
pub mod ids;
pub mod memory;
pub mod model;
pub mod names;
pub mod sandbox;
pub mod status;
pub mod text;
pub mod time;
pub mod triggers;
pub mod webhook;
pub mod workset;

pub use ids::{LauncherId, ProjectId, RunId, SessionId, TaskId};
pub use time::Timestamp;
