//! The API answers as its document says: schemathesis (pinned in `testkit/api`,
//! installed by `scripts/setup-test-deps`) against a real coordinator, every
//! operation, with no token, with the admin token and with a running agent's
//! session token. `testkit/api/run` says what each run checks; a failure prints the
//! seed to replay it with (`SCHEMA_SEED`).

use std::path::Path;
use std::time::Duration;

use serde_json::json;

use crate::harness::Baton;

fn schemathesis(b: &Baton, stage: &str, session_token: &str) {
    let run = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/api/run");
    let status = std::process::Command::new(&run)
        .arg(stage)
        .env("BATON_URL", &b.url)
        .env("BATON_TOKEN", &b.token)
        .env("BATON_SESSION_TOKEN", session_token)
        .env("BATON_DB", b.data.join("baton.db"))
        .status()
        .expect("testkit/api/run");
    assert!(
        status.success(),
        "schemathesis found failures ({stage}); above: each one, with a curl line and the seed. \
         Replay: SCHEMA_SEED=SEED cargo nextest run -E 'test(every_operation_answers_as_its_document_says)'"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_operation_answers_as_its_document_says() {
    let b = Baton::start();
    if b.on_postgres() {
        // The refusals are checked against a snapshot of the SQLite file; the
        // SQLite half of scripts/test runs this.
        return;
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testkit/api/.venv/bin/schemathesis");
    assert!(venv.exists(), "schemathesis is not installed in testkit/api: run scripts/setup-test-deps");
    // Refusals first, while nothing runs, so the store holds still between requests.
    schemathesis(&b, "refused", "");
    // What the refusal runs let through includes draining the launcher (an
    // operation with no invalid form is sent as it is): undrain it to run an agent.
    let launchers: Vec<serde_json::Value> = b.client.get("/api/launchers").await.unwrap();
    for l in &launchers {
        let id = l["id"].as_str().unwrap();
        let _: serde_json::Value = b.client.post(&format!("/api/launchers/{id}/undrain"), &json!({})).await.unwrap();
    }
    // Into its own worktree: the sandbox lets it write nowhere else.
    b.agent("holder", "echo \"$BATON_TOKEN\" > session.token; sleep 900").await;
    let holder = b.task(json!({ "prompt": "hold a session open", "agent": "holder" })).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let token = loop {
        let worktree = b.get(&holder).await.task.git.worktree;
        let text = worktree
            .map(|w| std::fs::read_to_string(Path::new(&w).join("session.token")))
            .and_then(Result::ok)
            .unwrap_or_default();
        if !text.trim().is_empty() {
            break text.trim().to_owned();
        }
        if std::time::Instant::now() > deadline {
            panic!("the agent never wrote its session token: {:?}", b.get(&holder).await.task);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    schemathesis(&b, "accepted", &token);
}
