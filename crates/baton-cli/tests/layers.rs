//! The house's floors, checked from `cargo metadata`: each of Baton's crates
//! depends only on the crates below it (docs/architecture.md, "Crates"), and the
//! coordinator's domain reaches no HTTP crate, even through another crate.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Each crate of the workspace and the Baton crates it may depend on (normal
/// and build dependencies; tests may use anything).
const ALLOWED: &[(&str, &[&str])] = &[
    ("baton-core", &[]),
    ("baton-store", &["baton-core"]),
    ("baton-git", &["baton-core"]),
    ("baton-agents", &["baton-core"]),
    ("baton-client", &["baton-core"]),
    ("baton-testkit", &["baton-core"]),
    ("baton-mcp", &["baton-core", "baton-client"]),
    ("baton-launcher", &["baton-core", "baton-agents", "baton-client", "baton-git"]),
    ("baton-domain", &["baton-core", "baton-store", "baton-git", "baton-agents"]),
    ("baton-forge", &["baton-core", "baton-store", "baton-git", "baton-domain"]),
    ("baton-webhooks", &["baton-core", "baton-store", "baton-domain"]),
    ("baton-chat", &["baton-core", "baton-store", "baton-domain"]),
    ("baton-embeddings", &["baton-core", "baton-store", "baton-domain"]),
    (
        "baton-server",
        &[
            "baton-core",
            "baton-store",
            "baton-git",
            "baton-agents",
            "baton-client",
            "baton-mcp",
            "baton-domain",
            "baton-forge",
            "baton-webhooks",
            "baton-chat",
            "baton-embeddings",
        ],
    ),
    (
        "baton-cli",
        &[
            "baton-core",
            "baton-store",
            "baton-git",
            "baton-agents",
            "baton-client",
            "baton-mcp",
            "baton-launcher",
            "baton-server",
        ],
    ),
    ("baton-bench", &["baton-core", "baton-client", "baton-git", "baton-store", "baton-testkit"]),
];

/// Crates the domain may not reach, directly or through another crate.
const NOT_IN_THE_DOMAIN: &[&str] = &["axum", "hyper", "reqwest", "tower", "tower-http", "rmcp", "baton-server"];

/// The workspace's resolved graph: each package's name, and the names of what
/// it depends on for building (dev-dependencies left out).
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let out = Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(out.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&out.stderr));
    let meta: Value = serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON");
    let names: BTreeMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let mut graph = BTreeMap::new();
    for node in meta["resolve"]["nodes"].as_array().unwrap() {
        let deps = node["deps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["dep_kinds"].as_array().unwrap().iter().any(|k| k["kind"] != "dev"))
            .map(|d| names[d["pkg"].as_str().unwrap()].to_owned())
            .collect();
        graph.insert(names[node["id"].as_str().unwrap()].to_owned(), deps);
    }
    graph
}

/// Everything `name` depends on, through any number of crates.
fn reach(graph: &BTreeMap<String, BTreeSet<String>>, name: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![name.to_owned()];
    while let Some(n) = todo.pop() {
        for d in graph.get(&n).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn every_arrow_between_batons_crates_runs_downward() {
    let graph = graph();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (name, deps) in graph.iter().filter(|(n, _)| n.starts_with("baton-")) {
        let Some(may) = allowed.get(name.as_str()) else {
            wrong.push(format!("{name} is not in the list of floors (tests/layers.rs, docs/architecture.md)"));
            continue;
        };
        for dep in deps.iter().filter(|d| d.starts_with("baton-")) {
            if !may.contains(&dep.as_str()) {
                wrong.push(format!("{name} depends on {dep}, which is not below it"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_domain_reaches_no_http_crate() {
    let graph = graph();
    let reached = reach(&graph, "baton-domain");
    let found: Vec<&&str> = NOT_IN_THE_DOMAIN.iter().filter(|c| reached.contains(**c)).collect();
    assert!(found.is_empty(), "baton-domain reaches {found:?}");
    // The check sees what it looks for: the server does reach axum.
    assert!(reach(&graph, "baton-server").contains("axum"));
}
