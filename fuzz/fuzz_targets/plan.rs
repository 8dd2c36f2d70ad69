//! Plans in YAML (`baton plan FILE`) and JSON (`POST /api/plans`), and the order
//! of their tasks.
#![no_main]
use baton_core::api::CreatePlan;

fn order(plan: &CreatePlan) {
    let names: Vec<&str> = plan.tasks.iter().map(|t| t.name.as_str()).collect();
    let deps: Vec<Vec<usize>> = plan
        .tasks
        .iter()
        .map(|t| t.depends_on.iter().filter_map(|d| names.iter().position(|n| n == d)).collect())
        .collect();
    if let Ok(order) = baton_core::dag::topological_order(&deps) {
        assert_eq!(order.len(), names.len());
    } else {
        assert!(baton_core::dag::find_cycle(&deps).is_some());
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(plan) = serde_norway::from_str::<CreatePlan>(&text) {
        order(&plan);
    }
    if let Ok(plan) = serde_json::from_slice::<CreatePlan>(data) {
        order(&plan);
    }
});
