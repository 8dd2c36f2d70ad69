//! Document names, branch names, labels, ids and timestamps.
#![no_main]
use baton_core::names;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if names::validate_doc_name(&text).is_ok() {
        assert!(!text.is_empty() && !text.contains('\0'));
    }
    let _ = names::validate_branch_name(&text);
    let _ = names::validate_label(&text);
    let _ = names::validate_simple_name("name", &text);
    let _ = names::task_branch(&baton_core::ids::TaskId::generate(), &text);
    let _ = names::title_from_prompt(&text);
    let _ = baton_core::ids::TaskId::parse(&text);
    let _ = baton_core::time::Timestamp::parse_rfc3339(&text);
});
