//! The ACP client's handling of an agent's `session/update` notifications.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_agents::fuzzing::acp_updates(data));
