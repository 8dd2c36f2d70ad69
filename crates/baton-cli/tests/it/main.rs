//! Integration tests: the real `baton` binary, on port 0, in temporary git
//! repositories, driven over HTTP and through the CLI.

mod api_errors;
mod chaos;
mod chat;
mod cockpit;
mod crash;
mod dashboard;
mod deploy;
mod docs;
mod durability;
mod faults;
mod fleet;
mod forge;
mod governor;
mod harness;
mod history;
mod hooks;
mod leads;
mod lifecycle;
mod loops;
mod mcp;
mod meaning;
mod memory;
mod orchestration;
mod real_agents;
mod replicas;
mod sandbox;
mod scale;
mod schedules;
mod schema;
mod soak;
mod stream;
mod upgrades;
mod webhooks;
mod worksets;
mod worktrees;
