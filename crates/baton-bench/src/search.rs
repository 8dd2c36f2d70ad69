//! The context store's search by meaning at scale: documents pushed while the
//! embeddings endpoint is slow (the push must not wait for it), then hybrid
//! searches over every passage embedded (`--search [CHUNKS]`).

use std::time::{Duration, Instant};

use baton_core::api::{DocIndex, DocSearch};
use baton_testkit::embeddings::FakeEmbeddings;
use serde_json::json;

use crate::harness::{Coordinator, rss_kib};
use crate::measures::{Measure, measure, median_p99};

/// Dimensions of the vectors (as small sentence-embedding models make).
const DIMS: usize = 384;
/// Passages per document: each paragraph is about one passage long.
const PASSAGES: usize = 10;

/// A deterministic stream of words drawn as text draws them: from a
/// vocabulary of [`VOCABULARY`] words by Zipf's law (the k-th most common word
/// k times rarer than the first), with the fake's synonyms among them.
struct Words {
    state: u64,
    /// The cumulative weights of the vocabulary's words, most common first.
    cumulative: Vec<f64>,
}

/// How many words the corpus's language has.
const VOCABULARY: usize = 20_000;
/// Words of the fake's synonym table, placed among the vocabulary (every 500th
/// from the 200th).
const MEANINGFUL: &[&str] = &["car", "service", "interval", "database", "latency", "budget", "repair", "schedule"];

impl Words {
    fn new(seed: u64) -> Self {
        let mut total = 0.0;
        let cumulative = (1..=VOCABULARY)
            .map(|k| {
                total += 1.0 / k as f64;
                total
            })
            .collect();
        Self { state: seed, cumulative }
    }

    fn random(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The word of rank `k` (0 the most common).
    fn word(k: usize) -> String {
        if k >= 200 && (k - 200).is_multiple_of(500) && (k - 200) / 500 < MEANINGFUL.len() {
            return MEANINGFUL[(k - 200) / 500].to_owned();
        }
        let (mut n, mut w) = (k, String::new());
        loop {
            w.push((b'a' + (n % 26) as u8) as char);
            n /= 26;
            if n == 0 {
                break;
            }
        }
        format!("{w}{}", ["", "o", "en", "ar", "is"][k % 5])
    }

    fn next(&mut self) -> String {
        let total = *self.cumulative.last().unwrap_or(&1.0);
        let at = (self.random() >> 11) as f64 / (1u64 << 53) as f64 * total;
        Self::word(self.cumulative.partition_point(|c| *c < at))
    }

    /// A paragraph of about 1,100 characters.
    fn paragraph(&mut self, serial: usize) -> String {
        let mut p = format!("Note {serial}:");
        while p.len() < 1100 {
            p.push(' ');
            p.push_str(&self.next());
        }
        p
    }
}

/// Pushes `n` small documents; the latencies in milliseconds.
async fn push_latencies(c: &Coordinator, n: usize, prefix: &str) -> Vec<f64> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let body = json!({ "name": format!("{prefix}/{i}"), "content": format!("Push number {i}: the car's service interval.") });
        let t = Instant::now();
        let _: serde_json::Value = c.client.post("/api/docs", &body).await.unwrap();
        samples.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    samples
}

/// Every measure of `--search`.
pub async fn search(chunks: usize) -> Vec<Measure> {
    let mut out = Vec::new();
    let mut fake = FakeEmbeddings::start(DIMS).await;
    let plain = Coordinator::start_with(1, "worktrees = false\n", &["--no-launcher"]);
    push_latencies(&plain, 50, "warm").await;
    let (base, _) = median_p99(push_latencies(&plain, 500, "plain").await);
    drop(plain);
    let args = ["--no-launcher", "--embeddings", fake.url.as_str(), "--embeddings-model", "bench"];
    let c = Coordinator::start_with(1, "worktrees = false\n", &args);
    // The endpoint away: pushes queue their embeddings and never wait.
    fake.stop();
    push_latencies(&c, 50, "warm").await;
    let (with, p99) = median_p99(push_latencies(&c, 500, "queued").await);
    out.push(measure("push a document, endpoint away, median", with, "-", "ms"));
    out.push(measure("push a document, endpoint away, p99", p99, "-", "ms"));
    out.push(measure("  added by queueing its embedding", with - base, "< 1", "ms"));
    fake.start_again().await;

    let docs = chunks.div_ceil(PASSAGES);
    let mut words = Words::new(0x9e37_79b9_7f4a_7c15);
    let started = Instant::now();
    for d in 0..docs {
        let text: Vec<String> = (0..PASSAGES).map(|p| words.paragraph(d * PASSAGES + p)).collect();
        let body =
            json!({ "name": format!("corpus/{d}"), "content": text.join("\n\n"), "tags": [format!("t{}", d % 10)] });
        let _: serde_json::Value = c.client.post("/api/docs", &body).await.unwrap();
    }
    let pushed = started.elapsed();
    loop {
        let index: DocIndex = c.client.get("/api/docs/index").await.unwrap();
        if index.pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let embedded = started.elapsed();
    eprintln!("search: {docs} documents pushed in {pushed:.1?}, embedded by {embedded:.1?}");
    out.push(measure(
        "passages embedded a second (fake endpoint)",
        (docs * PASSAGES) as f64 / embedded.as_secs_f64(),
        "-",
        "/s",
    ));

    // Queries as people type them: two or three words, drawn from the same
    // language (so common words are common in queries too), and phrases of the
    // fake's synonyms that match by meaning.
    let mut asked = Words::new(0x2545_f491_4f6c_dd1d);
    let mut queries: Vec<String> =
        (0..250).map(|i| (0..2 + i % 2).map(|_| asked.next()).collect::<Vec<_>>().join(" ")).collect();
    let meant = ["vehicle maintenance", "database latency budget", "repair schedule"];
    queries.extend(meant.iter().cycle().take(50).map(|q| (*q).to_owned()));
    let first: DocSearch = c.client.get("/api/docs/search?q=car%20service&limit=10").await.unwrap();
    out.push(measure("first search after the index changed (loads it)", first.took.rank_ms, "-", "ms"));
    let common: DocSearch = c.client.get(&format!("/api/docs/search?q={}&limit=10", Words::word(0))).await.unwrap();
    out.push(measure("hybrid search for the commonest word (in every passage)", common.took.rank_ms, "-", "ms"));
    for (label, extra) in [("hybrid", ""), ("hybrid, one tag in ten", "&tag=t3")] {
        let mut samples = Vec::new();
        for i in 0..300 {
            let q = &queries[i % queries.len()];
            let found: DocSearch =
                c.client.get(&format!("/api/docs/search?q={}&limit=10{extra}", baton_client::encode(q))).await.unwrap();
            assert!(!found.partial, "{found:?}");
            samples.push(found.took.rank_ms);
        }
        let (p50, p99) = median_p99(samples);
        let n = docs * PASSAGES;
        let (t50, t99) = if extra.is_empty() { ("< 20", "< 60") } else { ("-", "-") };
        out.push(measure(&format!("{label} search over {n} passages, p50"), p50, t50, "ms"));
        out.push(measure(&format!("{label} search over {n} passages, p99"), p99, t99, "ms"));
    }
    out.push(measure("coordinator RSS with the index loaded", rss_kib(c.pid()) as f64 / 1024.0, "-", "MiB"));
    out
}
