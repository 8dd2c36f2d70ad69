//! Agent definition files (Markdown with YAML front matter).
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_agents::fuzzing::definition(data));
