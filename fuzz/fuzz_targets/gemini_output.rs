//! The gemini executor's output parser, over arbitrary output lines.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    baton_agents::fuzzing::output(baton_core::agent::ExecutorKind::Gemini, data);
});
