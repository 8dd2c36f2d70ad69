//! Stores written by every schema Baton has shipped open with today's binary,
//! and everything the old version reported through its API is still reported:
//! projects, agents, tasks with their git state, sessions, runs and events,
//! plans and orchestrations, documents with every version, webhooks with their
//! deliveries, tokens, costs. The fixtures were made by the old versions' own
//! code (testkit/fixtures/README.md says how); the comparison is
//! testkit/fixtures/check.

use std::path::PathBuf;
use std::process::Command;

use crate::harness::BATON;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../testkit/fixtures").join(name)
}

/// Runs the check of one fixture with today's binary; panics with its report
/// when something the old version showed is missing or changed.
fn check(name: &str, extra: &[&str]) {
    let out = Command::new(fixture("check"))
        .args(["--baton", BATON, "--fixture"])
        .arg(fixture(name))
        .args(extra)
        .output()
        .expect("run testkit/fixtures/check (python3)");
    let report = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{report}");
    assert!(out.status.success(), "{name} opened with today's Baton differs from what its version showed:\n{report}");
}

#[test]
fn sqlite_stores_of_every_shipped_schema_open_with_every_row() {
    check("sqlite-schema4", &[]);
    check("sqlite-schema10", &[]);
}

#[test]
fn a_postgresql_dump_of_every_shipped_schema_opens_with_every_row() {
    let server =
        baton_testkit::pg::server().expect("BATON_TEST_PG names no PostgreSQL server (scripts/test starts one)");
    check("postgres-schema4", &["--pg", &server]);
}
