//! Agents: where their definitions come from, how each agent CLI is started and
//! resumed, and how its output becomes Baton's normalised events.

pub mod definitions;
