//! A scripted fake of the model APIs the agent CLIs speak — Anthropic Messages
//! (Claude Code, `claude-agent-acp`), OpenAI Responses (Codex CLI) and Gemini
//! `generateContent` (Gemini CLI) — so that end-to-end tests drive the real CLIs
//! offline and deterministically.
//!
//! A [`Script`] is a list of steps, each one model turn: some text, a file written
//! or a shell command run through the CLI's own tool, an arbitrary tool call, or an
//! API error, optionally after a delay. The server is stateless: the step it
//! answers is the number of model turns already in the request's conversation, so
//! a resumed session simply continues the script. Past the last step it answers
//! "Done." Every request is recorded (`GET /_fake/requests`).
//!
//! [`forge`] is a fake GitHub: one repository's pull requests, check runs,
//! job logs and reviews through GitHub's REST API (optionally merging in a real
//! bare repository), and the webhooks GitHub would send about them, signed.

mod anthropic;
pub mod discord;
pub mod embeddings;
pub mod forge;
mod gemini;
pub mod gitlab;
mod openai;
pub mod pg;
pub mod receiver;
mod script;
mod server;
pub mod slack;

pub use script::{ApiError, Script, Step};
pub use server::FakeModel;
