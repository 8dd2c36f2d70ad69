//! The Baton coordinator's HTTP server: the routes (REST, the live stream, the
//! launcher protocol), authentication, TLS, git smart HTTP, MCP over HTTP, the
//! one-tap action links and the dashboard's assets, over the domain
//! (`baton-domain`) and its integrations (`baton-forge`, `baton-webhooks`).
//!
//! [`app`] builds the router from an [`AppState`]; `baton up` and the
//! integration tests share it. Handlers are thin: they authenticate, parse, and
//! hand the work to a domain function that runs inside one store transaction
//! ([`transact`]). Every route is declared once, in `api::api_ops` and
//! `api::site_ops`, which also make the OpenAPI document.
//!
//! This crate is the top of the coordinator: it may depend on every crate below
//! it (core, store, git, agents, client, mcp, domain, forge, webhooks, chat,
//! embeddings), and none of them may depend on it.

mod actions;
mod api;
pub mod auth;
mod coordinator;
pub mod error;
pub mod git_http;
pub mod tls;

pub use api::app;
pub use baton_domain::meaning::EmbeddingsConfig;
pub use baton_domain::{AppState, Config, WebhookSettings, projects, transact, transact_urgent};
pub use coordinator::{Coordinator, ServerConfig};
