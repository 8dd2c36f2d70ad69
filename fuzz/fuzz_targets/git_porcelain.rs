//! The parsers of git's porcelain output.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton_git::fuzzing::porcelain(data));
