//! Agents: where their definitions come from, how each agent CLI is started and
//! resumed, and how its output becomes Baton's normalised events.
//!
//! [`executor::Executor`] is a closed enum with one adapter per agent kind. Each
//! adapter answers two questions: what command line starts (or resumes) the agent
//! for a turn ([`executor::Launch`]), and how its output lines become events
//! ([`output::OutputParser`]). [`state`] moves what a CLI keeps of a
//! conversation between hosts. Nothing here spawns processes; the launcher does.

pub mod acp;
pub mod claude;
pub mod codex;
pub mod command;
pub mod definitions;
pub mod executor;
#[doc(hidden)]
pub mod fuzzing;
pub mod gemini;
pub mod output;
pub mod state;
