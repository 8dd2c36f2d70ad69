//! Search by meaning: documents embedded in the background by an
//! OpenAI-compatible endpoint (the testkit's fake, whose vectors put synonyms on
//! shared dimensions), searched by words, by meaning, or both.

use std::process::Command;
use std::time::{Duration, Instant};

use baton_core::api::{DocIndex, DocSearch, MatchedBy, SearchMode};
use baton_testkit::embeddings::FakeEmbeddings;
use serde_json::{Value, json};

use crate::harness::{BATON, Baton};
use crate::mcp::Stdio_;

/// Dimensions of the fake's vectors.
const DIMS: usize = 64;

fn up_args(fake: &FakeEmbeddings, model: &str) -> Vec<String> {
    ["--embeddings", &fake.url, "--embeddings-model", model].iter().map(|s| s.to_string()).collect()
}

fn refs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

async fn push(b: &Baton, name: &str, content: &str, tags: &[&str]) {
    let (status, body) = b.post("/api/docs", json!({ "name": name, "content": content, "tags": tags })).await;
    assert!(status == 201 || status == 200, "{status} {body}");
}

async fn search(b: &Baton, query: &str) -> DocSearch {
    b.client.get(&format!("/api/docs/search?{query}")).await.unwrap()
}

/// Waits until no document waits to be embedded.
async fn drained(b: &Baton, within: Duration) -> DocIndex {
    let start = Instant::now();
    loop {
        let index: DocIndex = b.client.get("/api/docs/index").await.unwrap();
        if index.pending == 0 {
            return index;
        }
        assert!(start.elapsed() < within, "documents still wait to be embedded: {index:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn names(found: &DocSearch) -> Vec<&str> {
    found.hits.iter().map(|h| h.doc.name.as_str()).collect()
}

async fn library(b: &Baton) {
    push(b, "notes/fleet", "# Fleet\nThe car's service interval is 10,000 km.\n", &["ops"]).await;
    push(b, "notes/soup", "Tomato soup: simmer the tomatoes for twenty minutes.", &["food"]).await;
    push(b, "notes/garden", "Water the roses in the morning.", &["home"]).await;
}

/// "vehicle maintenance" finds the document that says "car service interval"
/// by meaning (hybrid and meaning modes), never by words; through the API, the
/// CLI and MCP, with the endpoint's key sent as a bearer token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_by_meaning_finds_what_the_words_do_not() {
    let fake = FakeEmbeddings::start(DIMS).await;
    fake.require_key("sk-test");
    let mut args = up_args(&fake, "fake-embed");
    args.extend(["--embeddings-key-env".into(), "TEST_EMBEDDINGS_KEY".into()]);
    let b = Baton::start_custom(&refs(&args), &[("TEST_EMBEDDINGS_KEY", "sk-test")], &[], |_| {});
    library(&b).await;
    let index = drained(&b, Duration::from_secs(20)).await;
    assert_eq!((index.model.as_deref(), index.dims, index.failed), (Some("fake-embed"), Some(DIMS as u32), 0));

    let words = search(&b, "q=vehicle%20maintenance&mode=words").await;
    assert!(words.hits.is_empty(), "the words alone do not match: {:?}", names(&words));
    for mode in ["meaning", "hybrid"] {
        let found = search(&b, &format!("q=vehicle%20maintenance&mode={mode}")).await;
        assert_eq!(names(&found).first(), Some(&"notes/fleet"), "{mode}: {found:?}");
        let hit = &found.hits[0];
        assert_eq!(hit.matched, Some(MatchedBy::Meaning));
        assert!(hit.snippet.as_deref().unwrap_or("").contains("service interval"), "the passage: {hit:?}");
        assert!(!found.partial, "{found:?}");
    }
    // Hybrid is the default with an endpoint; a document found both ways says so.
    let both = search(&b, "q=car%20service").await;
    assert_eq!(both.mode, SearchMode::Hybrid);
    assert_eq!(both.hits[0].doc.name, "notes/fleet");
    assert_eq!(both.hits[0].matched, Some(MatchedBy::Both), "{both:?}");
    // Tags filter before ranking: the nearest document is not in the tag.
    let tagged = search(&b, "q=vehicle%20maintenance&mode=meaning&tag=food").await;
    assert!(tagged.hits.iter().all(|h| h.doc.name == "notes/soup"), "{tagged:?}");
    // A passage with nothing in common with the query is no match.
    let found = search(&b, "q=vehicle%20maintenance&mode=meaning").await;
    assert_eq!(names(&found), ["notes/fleet"], "{found:?}");

    let out = b.cli(&["doc", "query", "--mode", "meaning", "vehicle", "maintenance"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("notes/fleet") && text.contains("meaning"), "{text}");
    let out = b.cli(&["doc", "query", "--mode", "words", "vehicle", "maintenance", "--json"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[]");

    let mut mcp = Stdio_::start(&b, &b.token);
    let (err, text) = mcp.tool("doc_query", json!({ "query": "vehicle maintenance" }));
    assert!(!err && text.contains("notes/fleet") && text.contains("\"meaning\""), "{text}");
    let requests = fake.requests();
    assert!(requests.iter().all(|r| r["model"] == "fake-embed"), "{requests:?}");
    let metrics = reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_embeddings_pending 0"), "{metrics}");
}

/// The endpoint is down while documents are pushed: every push succeeds, search
/// says its meaning results are partial, and once the endpoint is back the
/// backlog drains and the meaning match appears.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_endpoint_never_loses_a_push_and_the_backlog_drains() {
    let mut fake = FakeEmbeddings::start(DIMS).await;
    let b = Baton::start_with(&refs(&up_args(&fake, "fake-embed")));
    fake.stop();
    library(&b).await;
    let found = search(&b, "q=vehicle%20maintenance").await;
    assert!(found.partial && found.hits.is_empty(), "{found:?}");
    assert!(found.note.as_deref().unwrap_or("").contains("could not be embedded"), "{found:?}");
    let (status, body) = b.call(reqwest::Method::GET, "/api/docs/search?q=vehicle&mode=meaning", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (503, Some("unavailable")), "{body}");
    let index: DocIndex = b.client.get("/api/docs/index").await.unwrap();
    assert_eq!(index.pending, 3, "{index:?}");
    let out = b.cli(&["doc", "reindex", "--status"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("waiting: 3"), "{out:?}");
    let docs: Vec<Value> = b.client.get("/api/docs").await.unwrap();
    assert_eq!(docs.len(), 3, "every push was kept");

    fake.start_again().await;
    drained(&b, Duration::from_secs(30)).await;
    let found = search(&b, "q=vehicle%20maintenance").await;
    assert_eq!(names(&found).first(), Some(&"notes/fleet"), "{found:?}");
    assert!(!found.partial, "{found:?}");
}

/// Another model embeds every document again, and the old vectors are never
/// mixed with the new: until the new ones come, meaning finds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_model_embeds_everything_again_and_never_mixes_vectors() {
    let fake = FakeEmbeddings::start(DIMS).await;
    let mut b = Baton::start_with(&refs(&up_args(&fake, "model-a")));
    library(&b).await;
    drained(&b, Duration::from_secs(20)).await;
    assert_eq!(names(&search(&b, "q=vehicle%20maintenance&mode=meaning").await)[0], "notes/fleet");

    fake.delay(Duration::from_secs(3));
    b.restart_with(&refs(&up_args(&fake, "model-b")));
    let index: DocIndex = b.client.get("/api/docs/index").await.unwrap();
    assert_eq!(index.model.as_deref(), Some("model-b"));
    assert!(index.pending > 0, "{index:?}");
    fake.delay(Duration::ZERO);
    let found = search(&b, "q=vehicle%20maintenance&mode=meaning").await;
    assert!(found.partial, "{found:?}");
    drained(&b, Duration::from_secs(30)).await;
    let found = search(&b, "q=vehicle%20maintenance&mode=meaning").await;
    assert_eq!(names(&found).first(), Some(&"notes/fleet"), "{found:?}");
    let b_inputs: usize = fake
        .requests()
        .iter()
        .filter(|r| r["model"] == "model-b")
        .map(|r| r["input"].as_array().map_or(1, Vec::len))
        .sum();
    // Every document again (the query vectors are one input each).
    assert!(b_inputs >= 3, "{b_inputs}");
}

/// A memory search never returns another agent's memory, even when the other's
/// is nearer in meaning: the namespace filters before ranking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memory_search_finds_only_the_agents_own_memory() {
    let fake = FakeEmbeddings::start(DIMS).await;
    let b = Baton::start_with(&refs(&up_args(&fake, "fake-embed")));
    push(&b, "agents/bob/fleet", "The car's service interval is 10,000 km.", &[]).await;
    push(&b, "agents/alice/roses", "Water the roses in the morning.", &[]).await;
    push(&b, "agents/alice/truck", "The truck was washed on Monday.", &[]).await;
    drained(&b, Duration::from_secs(20)).await;
    let script = r#"printf '%s\n' \
      '{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"a","version":"0"}}}' \
      '{"jsonrpc":"2.0","method":"notifications/initialized"}' \
      '{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"memory_search","arguments":{"query":"vehicle maintenance","mode":"meaning"}}}' \
      | (cat; sleep 3) | baton mcp | grep '"id":2'"#;
    b.agent_def(json!({
        "name": "alice", "executor": "command", "memory": true,
        "command": ["sh", "-c", script.replace("baton mcp", &format!("{BATON} mcp"))],
    }))
    .await;
    let id = b.task(json!({ "prompt": "recall", "agent": "alice" })).await;
    let t = b.wait_within(Duration::from_secs(60), &id, "done", |t| t.task.status.is_finished()).await;
    let answer = t.task.result.unwrap_or_default();
    assert!(answer.contains("agents/alice/truck"), "alice's own nearest memory: {answer}");
    assert!(!answer.contains("agents/bob"), "never bob's: {answer}");
}

/// Bad input gets a clear error and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_embeddings_input_is_refused_clearly() {
    // Vectors of the wrong dimension: the document is marked with the reason.
    let fake = FakeEmbeddings::start(16).await;
    let mut args = up_args(&fake, "fake-embed");
    args.extend(["--embeddings-dims".into(), "64".into()]);
    let b = Baton::start_with(&refs(&args));
    push(&b, "notes/fleet", "The car's service interval.", &[]).await;
    let start = Instant::now();
    let index = loop {
        let index: DocIndex = b.client.get("/api/docs/index").await.unwrap();
        if index.failed > 0 {
            break index;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "{index:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let failure = &index.failures[0];
    assert!(failure.failed && failure.name == "notes/fleet", "{index:?}");
    assert!(failure.error.contains("16-dimensional") && failure.error.contains("64"), "{}", failure.error);
    let out = b.cli(&["doc", "reindex", "--status"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("16-dimensional"), "{out:?}");
    let metrics = reqwest::get(format!("{}/metrics", b.url)).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("baton_embeddings_failed 1"), "{metrics}");
    let doc: Value = b.client.get("/api/docs/notes/fleet").await.unwrap();
    assert_eq!(doc["version"], 1, "the document itself is kept");

    // An unknown mode, a query over the limit, a reserved name.
    let (status, body) = b.call(reqwest::Method::GET, "/api/docs/search?q=x&mode=vibes", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("vibes"), "{body}");
    let long = "word ".repeat(500);
    let (status, body) = b.call(reqwest::Method::GET, &format!("/api/docs/search?q={}", long.trim()), None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_argument")), "{body}");
    let (status, _) = b.post("/api/docs", json!({ "name": "search", "content": "x" })).await;
    assert_eq!(status, 400);

    // Without an endpoint, a meaning search is refused and a plain one says it
    // searched words only.
    let plain = Baton::start();
    push(&plain, "notes/fleet", "The car's service interval.", &[]).await;
    let (status, body) = plain.call(reqwest::Method::GET, "/api/docs/search?q=car&mode=meaning", None).await;
    assert_eq!((status, body["error"]["code"].as_str()), (422, Some("invalid_combination")), "{body}");
    let found = search(&plain, "q=car").await;
    assert_eq!((found.mode, names(&found)), (SearchMode::Words, vec!["notes/fleet"]));
    assert!(found.note.as_deref().unwrap_or("").contains("words only"), "{found:?}");

    // A key variable that is not set: `baton up` refuses to start, and doctor says so.
    let dir = tempfile::tempdir().unwrap();
    let repo = crate::harness::git_repo(dir.path());
    let key_args = ["--embeddings", fake.url.as_str(), "--embeddings-key-env", "NO_SUCH_KEY_VAR"];
    let out = Command::new(BATON)
        .args(["up", "--listen", "127.0.0.1:0"])
        .args(key_args)
        .current_dir(&repo)
        .env_remove("NO_SUCH_KEY_VAR")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("NO_SUCH_KEY_VAR") && stderr.contains("not set"), "{stderr}");
    let out = Command::new(BATON).arg("doctor").args(key_args).current_dir(&repo).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FAIL") && stdout.contains("NO_SUCH_KEY_VAR"), "{stdout}");
}
