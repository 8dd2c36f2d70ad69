//! The arguments of the MCP server's tools, as a lead's client sends them.
#![no_main]
use serde_json::Value;

fn read<T: serde::de::DeserializeOwned>(value: &Value) -> Option<T> {
    serde_json::from_value(value.clone()).ok()
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else { return };
    let _ = read::<baton_mcp::StartTask>(&value);
    let _ = read::<baton_mcp::ResumeTaskArgs>(&value);
    let _ = read::<baton_mcp::TaskRef>(&value);
    let _ = read::<baton_mcp::ListTasks>(&value);
    let _ = read::<baton_mcp::StopTaskArgs>(&value);
    let _ = read::<baton_mcp::MergeArgs>(&value);
    let _ = read::<baton_mcp::SubmitPlan>(&value);
    if let Some(doc) = read::<baton_mcp::DocPushArgs>(&value) {
        let _ = baton_core::names::validate_doc_name(&doc.name);
    }
    let _ = read::<baton_mcp::DocReadArgs>(&value);
    let _ = read::<baton_mcp::DocQueryArgs>(&value);
    if let Some(doc) = read::<baton_mcp::DocName>(&value) {
        let _ = baton_core::names::validate_doc_name(&doc.name);
    }
});
