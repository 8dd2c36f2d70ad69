//! The launcher: claims runs from a coordinator and supervises agent processes on
//! its host. `baton up` embeds one; `baton launcher` runs one on another host.
//! Both speak the same HTTP launcher protocol.
//!
//! Shape (see `AGENTS.md` beside this file for the rules of the road):
//! - [`Launcher`] is the dispatcher: it registers, re-attaches to the runs it left
//!   on disk, long-polls the coordinator for work (woken the moment a run is
//!   queued), and routes stop orders. It is the single source of truth for which
//!   runs this host is working on.
//! - each run has an actor ([`run`]) that owns its spool and supervisor and talks
//!   to the dispatcher only through channels;
//! - each agent process runs under its own supervisor process ([`supervisor`]), so
//!   agents survive the launcher's crash or upgrade and are re-attached.

pub mod ahead;
mod commands;
pub mod container;
mod env;
mod launcher;
mod mirror;
pub mod net;
mod orders;
mod process;
mod programs;
pub mod run;
pub mod sandbox;
mod spares;
pub mod spool;
mod start;
pub mod supervisor;
pub mod warm;
mod watcher;
mod workspace;

pub use launcher::{Launcher, LauncherConfig, LauncherError};
pub use sandbox::SandboxSupport;
