//! A launcher's batch of events, as the coordinator reads it, each event cut
//! to the size the coordinator keeps.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(batch) = serde_json::from_slice::<baton_core::api::EventBatch>(data) {
        for event in batch.events {
            let fitted = baton_agents::output::fit(event, 4096);
            let _ = serde_json::to_vec(&fitted);
        }
    }
});
