//! The command section of a push to the coordinator's git endpoint.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_git::fuzzing::push_commands(data));
