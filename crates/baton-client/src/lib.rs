//! The HTTP client of the Baton coordinator, used by the CLI, launchers and the
//! MCP server: the REST API, the launcher protocol, and the live event stream
//! (server-sent events). Every API error arrives as [`ClientError::Api`] with the
//! coordinator's stable code.

mod client;
mod sse;

pub use client::{Client, ClientError, encode};
pub use sse::EventStream;
