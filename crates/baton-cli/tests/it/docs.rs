//! The context store: `/api/docs` and `baton doc`.

use baton_core::status::TaskStatus;
use serde_json::{Value, json};

use crate::harness::Baton;

fn cli_in(b: &Baton, args: &[&str], input: &[u8]) -> std::process::Output {
    b.cli_in(args, input, None)
}

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn documents_are_pushed_versioned_searched_and_deleted() {
    let b = Baton::start();
    ok(&cli_in(
        &b,
        &[
            "doc",
            "push",
            "notes/api",
            "--tag",
            "api",
            "--meta",
            "owner=lead",
            "--meta",
            "stars=3",
            "--rel",
            "related:notes/db",
        ],
        b"The REST API authenticates with bearer tokens.\n",
    ));
    ok(&cli_in(&b, &["doc", "push", "notes/db", "--tag", "db"], b"SQLite in WAL mode. Tokens are hashed at rest.\n"));
    ok(&cli_in(
        &b,
        &["doc", "push", "glossary/tokens", "--tag", "security"],
        b"tokens: admin tokens, session tokens, launcher tokens\n",
    ));
    // A new version keeps the tags and metadata it does not replace, and the old text.
    ok(&cli_in(&b, &["doc", "push", "notes/api"], b"The REST API authenticates with bearer tokens or a cookie.\n"));

    assert_eq!(
        ok(&b.cli(&["doc", "read", "notes/api"])),
        "The REST API authenticates with bearer tokens or a cookie.\n"
    );
    assert_eq!(
        ok(&b.cli(&["doc", "read", "notes/api", "--version", "1"])),
        "The REST API authenticates with bearer tokens.\n"
    );
    let info: Value = serde_json::from_str(&ok(&b.cli(&["doc", "info", "notes/api", "--json"]))).unwrap();
    assert_eq!(info["version"], 2);
    assert_eq!(info["tags"], json!(["api"]));
    assert_eq!(info["metadata"], json!({ "owner": "lead", "stars": 3 }));
    assert_eq!(info["relations"], json!([{ "kind": "related", "target": "notes/db" }]));
    assert_eq!(info["versions"].as_array().unwrap().len(), 2);
    let db: Value = b.client.get("/api/docs/notes/db").await.unwrap();
    assert_eq!(db["referenced_by"], json!(["notes/api"]));

    // Ranked by relevance: the document about tokens first.
    let hits: Vec<Value> = serde_json::from_str(&ok(&b.cli(&["doc", "query", "tokens", "--json"]))).unwrap();
    let names: Vec<&str> = hits.iter().map(|h| h["name"].as_str().unwrap()).collect();
    assert_eq!(names[0], "glossary/tokens", "{names:?}");
    assert_eq!(names.len(), 3);
    assert!(hits[0]["snippet"].as_str().unwrap().contains("[tokens]"));
    assert!(hits[0].get("content").is_none_or(Value::is_null), "lists leave the content out");
    let hits: Vec<Value> =
        serde_json::from_str(&ok(&b.cli(&["doc", "query", "tokens", "--tag", "db", "--json"]))).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0]["name"], "notes/db");
    // Search syntax in the words is taken literally: no error.
    for q in ["\"unterminated", "a AND (b OR", "NEAR(x y)", "*", "col:umn", "x -y"] {
        let out = b.cli(&["doc", "query", q, "--json"]);
        assert!(out.status.success(), "{q}: {}", String::from_utf8_lossy(&out.stderr));
    }
    let table = ok(&b.cli(&["doc", "query", "cookie"]));
    assert!(table.contains("notes/api"), "{table}");

    // Bytes round-trip as a file.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    ok(&cli_in(&b, &["doc", "push", "images/logo.bin"], &bytes));
    let pulled = b.dir.path().join("logo.bin");
    ok(&b.cli(&["doc", "pull", "images/logo.bin", pulled.to_str().unwrap()]));
    assert_eq!(std::fs::read(&pulled).unwrap(), bytes);
    let info: Value = b.client.get("/api/docs/images/logo.bin").await.unwrap();
    assert_eq!(info["content_type"], "application/octet-stream");
    assert_eq!(info["size"], 3000);

    ok(&b.cli(&["doc", "delete", "notes/db"]));
    let out = b.cli(&["doc", "read", "notes/db"]);
    assert_eq!(out.status.code(), Some(3), "not found");
    let hits: Vec<Value> = serde_json::from_str(&ok(&b.cli(&["doc", "query", "wal", "--json"]))).unwrap();
    assert!(hits.is_empty());
}

#[tokio::test]
async fn unsafe_document_names_are_refused_and_nothing_changes() {
    let b = Baton::start();
    for name in ["../escape", "a/../../b", "/abs", ".hidden", "a//b", "sp ace", ""] {
        let (status, body) = push_raw(&b, json!({ "name": name, "content": "x" })).await;
        assert_eq!(status, 400, "{name:?}: {body}");
        assert_eq!(body["error"]["code"], "invalid_argument", "{name:?}: {body}");
    }
    let (status, body) = push_raw(&b, json!({ "name": "ok", "content": "x", "content_base64": "eA==" })).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_combination")), "{body}");
    let (status, body) = push_raw(&b, json!({ "name": "ok", "content_base64": "not base64!" })).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) =
        push_raw(&b, json!({ "name": "ok", "content": "x", "relations": [{ "kind": "parent", "target": "../x" }] }))
            .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) = push_raw(&b, json!({ "name": "ok", "content": "x", "surprise": 1 })).await;
    assert_eq!(status, 400);
    let docs: Vec<Value> = b.client.get("/api/docs").await.unwrap();
    assert!(docs.is_empty(), "nothing was stored: {docs:?}");
    let out = b.cli(&["doc", "read", "../etc/passwd"]);
    assert_eq!(out.status.code(), Some(7), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!b.data.join("docs").exists() || std::fs::read_dir(b.data.join("docs")).unwrap().count() == 0);
}

async fn push_raw(b: &Baton, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("{}/api/docs", b.url))
        .bearer_auth(&b.token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// One worker writes a document with its own session token; another finds it.
#[tokio::test]
async fn a_document_pushed_by_one_worker_is_found_by_another() {
    let b = Baton::start();
    b.agent(
        "writer",
        r#"curl -sf -H "Authorization: Bearer $BATON_TOKEN" -H 'content-type: application/json' \
             -d '{"name":"findings/cache","content":"The cache lives in BATON_CACHE; eviction is LRU.","tags":["findings"]}' \
             "$BATON_URL/api/docs" > /dev/null && echo pushed"#,
    )
    .await;
    b.agent(
        "reader",
        r#"curl -sf -H "Authorization: Bearer $BATON_TOKEN" "$BATON_URL/api/docs?q=eviction&tag=findings""#,
    )
    .await;
    let w = b.task(json!({ "prompt": "x", "agent": "writer" })).await;
    let t = b.wait_status(&w, TaskStatus::Succeeded).await;
    let r = b.task(json!({ "prompt": "x", "agent": "reader", "depends_on": [w] })).await;
    let found = b.wait_status(&r, TaskStatus::Succeeded).await;
    let hits: Vec<Value> = serde_json::from_str(found.task.result.as_deref().unwrap()).unwrap();
    assert_eq!(hits[0]["name"], "findings/cache");
    let doc: Value = b.client.get("/api/docs/findings/cache").await.unwrap();
    assert_eq!(doc["written_by"], json!(t.sessions[0].id), "the writer's session is recorded");
}
