//! Search by meaning: documents cut into passages, each passage embedded by a
//! configured endpoint (in the background: a push only queues its document),
//! and searches ranked by words, by meaning, or by both fused (reciprocal rank
//! fusion).
//!
//! Vectors live in the store beside the documents; the coordinator keeps them
//! in memory too, normalized in one matrix, and ranks a query by an exact scan
//! of the passages its filters allow. The copy is reloaded when the store's
//! generation of vectors moves (any replica's embedding or removal moves it).

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use baton_core::api::{DocEntry, DocSearch, MatchedBy, SearchMode, SearchTook};
use baton_store::{DocFilter, DocHit, StoreRead};

use crate::{AppState, Error};

/// A passage is cut at about this many characters (at a heading, a paragraph, a
/// line, or a code block's end when it can)...
pub const CHUNK_CHARS: usize = 1200;
/// ...and the next passage of the same section repeats the last lines of the one
/// before, up to this many characters, so a sentence cut at the border is whole
/// in one of them.
pub const CHUNK_OVERLAP: usize = 200;
/// The longest query, in characters.
pub const MAX_QUERY_CHARS: usize = 2000;
/// Reciprocal rank fusion's constant (the usual 60): a document's fused score
/// is the sum over the rankings it is in of 1 / (K + its rank).
const RRF_K: f64 = 60.0;

/// Where embeddings come from: an OpenAI-compatible `/v1/embeddings` endpoint.
#[derive(Clone)]
pub struct EmbeddingsConfig {
    /// The API's base URL (`http://127.0.0.1:11434/v1`); requests go to
    /// `{url}/embeddings`.
    pub url: String,
    /// The model asked for.
    pub model: String,
    /// The bearer key, if the endpoint needs one (read from the variable named
    /// by `--embeddings-key-env`).
    pub key: Option<String>,
    /// The dimensions expected; learned from the first answer when not given.
    pub dims: Option<u32>,
}

impl std::fmt::Debug for EmbeddingsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingsConfig")
            .field("url", &self.url)
            .field("model", &self.model)
            .field("key", &self.key.as_ref().map(|_| "…"))
            .field("dims", &self.dims)
            .finish()
    }
}

/// Why an embedding failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EmbedError {
    /// The endpoint could not be reached, or answered an error that may pass
    /// (a 5xx, 429, a timeout): tried again later.
    #[error("the embeddings endpoint is unavailable: {0}")]
    Unavailable(String),
    /// The endpoint refused the request or answered something unusable (a 4xx,
    /// vectors of the wrong number or dimension): trying again will not help.
    #[error("{0}")]
    Refused(String),
}

/// A future answering with one vector per input.
pub type EmbedFuture<'a> = Pin<Box<dyn Future<Output = Result<Vec<Vec<f32>>, EmbedError>> + Send + 'a>>;

/// An embeddings endpoint, as the domain needs it.
pub trait Embedder: Send + Sync {
    /// One vector per input, in order.
    fn embed<'a>(&'a self, inputs: &'a [String]) -> EmbedFuture<'a>;
}

/// Cuts a document's text into passages of about [`CHUNK_CHARS`]: a Markdown
/// heading starts a new one, a fenced code block is kept whole when it fits,
/// and a passage continuing a section overlaps the one before by up to
/// [`CHUNK_OVERLAP`] characters of whole lines.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for section in sections(text) {
        let mut current = String::new();
        for block in blocks(&section) {
            for piece in split_long(&block) {
                if !current.is_empty() && current.chars().count() + piece.chars().count() + 2 > CHUNK_CHARS {
                    let tail = overlap(&current);
                    out.push(std::mem::take(&mut current));
                    if tail.chars().count() + piece.chars().count() + 2 <= CHUNK_CHARS {
                        current = tail;
                    }
                }
                if !current.is_empty() {
                    current.push_str("\n\n");
                }
                current.push_str(&piece);
            }
        }
        if !current.trim().is_empty() {
            out.push(current);
        }
    }
    out.into_iter().map(|c| c.trim().to_owned()).filter(|c| !c.is_empty()).collect()
}

/// The text split before each Markdown heading outside a code block.
fn sections(text: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut fenced = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            fenced = !fenced;
        } else if !fenced && line.starts_with('#') && !out.last().is_some_and(|s| s.trim().is_empty()) {
            out.push(String::new());
        }
        let last = out.last_mut().expect("one section at least");
        last.push_str(line);
        last.push('\n');
    }
    out
}

/// A section's paragraphs and whole code blocks.
fn blocks(section: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut fenced = false;
    for line in section.lines() {
        let fence = line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~");
        if !fenced && !fence && line.trim().is_empty() {
            if !current.trim().is_empty() {
                out.push(std::mem::take(&mut current));
            }
            current.clear();
            continue;
        }
        if fence && !fenced && !current.trim().is_empty() {
            out.push(std::mem::take(&mut current));
        }
        current.push_str(line);
        current.push('\n');
        if fence {
            fenced = !fenced;
            if !fenced {
                out.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.trim().is_empty() {
        out.push(current);
    }
    out.into_iter().map(|b| b.trim_end().to_owned()).collect()
}

/// A block longer than a passage, cut at lines (and a line longer than a
/// passage, at characters).
fn split_long(block: &str) -> Vec<String> {
    if block.chars().count() <= CHUNK_CHARS {
        return vec![block.to_owned()];
    }
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        let chars: Vec<char> = line.chars().collect();
        for piece in chars.chunks(CHUNK_CHARS) {
            let piece: String = piece.iter().collect();
            if !current.is_empty() && current.chars().count() + piece.chars().count() + 1 > CHUNK_CHARS {
                out.push(std::mem::take(&mut current));
            }
            if !current.is_empty() {
                current.push('\n');
            }
            current.push_str(&piece);
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// The last whole lines of a passage, up to [`CHUNK_OVERLAP`] characters.
fn overlap(passage: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut size = 0;
    for line in passage.lines().rev() {
        size += line.chars().count() + 1;
        if size > CHUNK_OVERLAP {
            break;
        }
        kept.push(line);
    }
    kept.reverse();
    kept.join("\n")
}

/// The vectors of one model, normalized, in one matrix: row `i` is passage
/// `seqs[i]` of document `docs[doc_of[i]]`.
struct Loaded {
    generation: i64,
    model: String,
    dims: usize,
    docs: Vec<String>,
    doc_index: HashMap<String, u32>,
    doc_of: Vec<u32>,
    seqs: Vec<u32>,
    matrix: Vec<f32>,
}

/// The coordinator's copy of the stored vectors.
#[derive(Default)]
pub struct VectorIndex {
    loaded: Mutex<Option<Arc<Loaded>>>,
}

impl VectorIndex {
    /// The vectors of `model` as of `generation`, loaded from `r` when the copy
    /// is older (or of another model).
    fn current(&self, r: &dyn StoreRead, model: &str, generation: i64) -> Result<Arc<Loaded>, Error> {
        let mut slot = self.loaded.lock().map_err(|_| Error::internal(std::io::Error::other("index lock")))?;
        if let Some(l) = slot.as_ref().filter(|l| l.generation == generation && l.model == model) {
            return Ok(Arc::clone(l));
        }
        let vectors = r.chunk_vectors(model)?;
        let dims = vectors.iter().map(|v| v.vector.len()).max().unwrap_or(0);
        let mut l = Loaded {
            generation,
            model: model.to_owned(),
            dims,
            docs: Vec::new(),
            doc_index: HashMap::new(),
            doc_of: Vec::with_capacity(vectors.len()),
            seqs: Vec::with_capacity(vectors.len()),
            matrix: Vec::with_capacity(vectors.len() * dims),
        };
        for v in vectors.into_iter().filter(|v| v.vector.len() == dims) {
            let next = l.docs.len() as u32;
            let doc = *l.doc_index.entry(v.name.clone()).or_insert(next);
            if doc == next {
                l.docs.push(v.name);
            }
            l.doc_of.push(doc);
            l.seqs.push(v.seq);
            l.matrix.extend(normalized(v.vector));
        }
        let l = Arc::new(l);
        *slot = Some(Arc::clone(&l));
        Ok(l)
    }
}

/// `v` scaled to length 1 (a zero vector stays zero).
pub fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// The dot product, in eight lanes (so the compiler vectorizes it).
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            lanes[i] += x[i] * y[i];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

/// A search, as asked.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// The words typed.
    pub query: String,
    /// The mode asked for (the default: hybrid with embeddings, else words).
    pub mode: Option<SearchMode>,
    /// Which documents may be found (its query is ignored).
    pub filter: DocFilter,
}

/// Searches the context store: the query embedded (when meaning is asked for
/// and an endpoint is configured), then ranked in one read.
pub async fn search(state: &Arc<AppState>, req: SearchRequest) -> Result<DocSearch, Error> {
    let words = req.query.trim().to_owned();
    if words.is_empty() {
        return Err(Error::invalid("a search needs words (`q`)"));
    }
    if words.chars().count() > MAX_QUERY_CHARS {
        return Err(Error::invalid(format!(
            "the query has {} characters; at most {MAX_QUERY_CHARS} are searched",
            words.chars().count()
        )));
    }
    let configured = state.config.embeddings.as_ref().zip(state.embedder.as_ref());
    let mode = match (req.mode, configured) {
        (Some(SearchMode::Words), _) => SearchMode::Words,
        (Some(mode), Some(_)) => mode,
        (None, Some(_)) => SearchMode::Hybrid,
        (None, None) => SearchMode::Words,
        (Some(mode), None) => {
            return Err(Error::combination(format!(
                "a {} search needs an embeddings endpoint: start Baton with `--embeddings URL`",
                mode.as_str()
            )));
        }
    };
    let mut note = configured.is_none().then(|| "searched words only: no embeddings endpoint is configured".into());
    let mut query_vector = None;
    let started = std::time::Instant::now();
    if let (true, Some((config, embedder))) = (mode != SearchMode::Words, configured) {
        match embedder.embed(std::slice::from_ref(&words)).await {
            Ok(mut v) if v.len() == 1 => query_vector = Some((config.model.clone(), normalized(v.remove(0)))),
            Ok(v) => note = Some(format!("the endpoint answered {} vectors for one query", v.len())),
            Err(e) if mode == SearchMode::Meaning => return Err(Error::unavailable(e.to_string())),
            Err(e) => note = Some(format!("searched words only: the query could not be embedded ({e})")),
        }
    }
    let embed = started.elapsed();
    let me = Arc::clone(state);
    let mut found =
        state.store.read(move |r| rank(r, &me.vectors, &words, mode, query_vector, req.filter, note)).await?;
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
    found.took = SearchTook { embed_ms: ms(embed), rank_ms: ms(started.elapsed() - embed) };
    Ok(found)
}

/// Ranks in one read: the word ranking and the meaning ranking, each over the
/// documents the filter allows, fused.
fn rank(
    r: &dyn StoreRead,
    index: &VectorIndex,
    words: &str,
    mode: SearchMode,
    query_vector: Option<(String, Vec<f32>)>,
    filter: DocFilter,
    mut note: Option<String>,
) -> Result<DocSearch, Error> {
    let limit = filter.limit.max(1) as usize;
    let pool = (limit * 4).max(50);
    let status = r.embed_status()?;
    let by_words = if mode == SearchMode::Meaning {
        Vec::new()
    } else {
        let telling = mode == SearchMode::Hybrid;
        r.documents(&DocFilter { query: Some(words.to_owned()), limit: pool as u32, telling, ..filter.clone() })?
    };
    let mut partial = mode != SearchMode::Words && (status.pending > 0 || query_vector.is_none());
    let by_meaning = match &query_vector {
        Some((model, q)) if status.model.as_deref() == Some(model) => {
            let loaded = index.current(r, model, status.generation)?;
            if loaded.docs.is_empty() || loaded.dims == q.len() {
                nearest(r, &loaded, q, &filter, pool)?
            } else {
                partial = true;
                note = Some(format!("the query's vector has {} dimensions, the index's {}", q.len(), loaded.dims));
                Vec::new()
            }
        }
        Some(_) => {
            note = Some("the index is of another model: its documents are being embedded again".into());
            Vec::new()
        }
        None => Vec::new(),
    };
    let hits = fuse(r, mode, by_words, by_meaning, limit)?;
    Ok(DocSearch { mode, hits, partial, pending: status.pending, note, took: SearchTook::default() })
}

/// The documents whose best passage is nearest `q`, with that passage and its
/// cosine similarity, best first; only documents the filter allows are scanned,
/// and a passage with nothing in common with the query (a similarity of 0 or
/// less) is no match.
fn nearest(
    r: &dyn StoreRead,
    l: &Loaded,
    q: &[f32],
    filter: &DocFilter,
    pool: usize,
) -> Result<Vec<(String, u32, f32)>, Error> {
    let filtered = !filter.tags.is_empty() || filter.project.is_some() || filter.prefix.is_some();
    let allowed: Option<Vec<bool>> = if filtered {
        let mut allowed = vec![false; l.docs.len()];
        for name in r.document_names(filter)? {
            if let Some(&i) = l.doc_index.get(&name) {
                allowed[i as usize] = true;
            }
        }
        Some(allowed)
    } else {
        None
    };
    let mut best: Vec<(f32, u32)> = vec![(f32::NEG_INFINITY, 0); l.docs.len()];
    for (row, v) in l.matrix.chunks_exact(l.dims.max(1)).enumerate() {
        let doc = l.doc_of[row] as usize;
        if allowed.as_ref().is_some_and(|a| !a[doc]) {
            continue;
        }
        let score = dot(q, v);
        if score > best[doc].0 {
            best[doc] = (score, l.seqs[row]);
        }
    }
    let mut found: Vec<(String, u32, f32)> = best
        .into_iter()
        .enumerate()
        .filter(|(_, (score, _))| *score > 0.0)
        .map(|(doc, (score, seq))| (l.docs[doc].clone(), seq, score))
        .collect();
    found.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    found.truncate(pool);
    Ok(found)
}

/// Fuses the rankings (reciprocal rank fusion in hybrid mode; one ranking's own
/// order otherwise) and reads what the hits need.
fn fuse(
    r: &dyn StoreRead,
    mode: SearchMode,
    by_words: Vec<DocHit>,
    by_meaning: Vec<(String, u32, f32)>,
    limit: usize,
) -> Result<Vec<DocEntry>, Error> {
    struct Found {
        hit: Option<DocHit>,
        passage: Option<(u32, f32)>,
        score: f64,
    }
    let mut found: HashMap<String, Found> = HashMap::new();
    let rrf = |rank: usize| 1.0 / (RRF_K + rank as f64 + 1.0);
    for (rank, hit) in by_words.into_iter().enumerate() {
        let score = if mode == SearchMode::Hybrid { rrf(rank) } else { hit.score.unwrap_or(0.0) };
        found.insert(hit.doc.name.clone(), Found { hit: Some(hit), passage: None, score });
    }
    for (rank, (name, seq, similarity)) in by_meaning.into_iter().enumerate() {
        let score = if mode == SearchMode::Hybrid { rrf(rank) } else { f64::from(similarity) };
        let f = found.entry(name).or_insert(Found { hit: None, passage: None, score: 0.0 });
        f.passage = Some((seq, similarity));
        f.score += score;
    }
    let mut ranked: Vec<(String, Found)> = found.into_iter().collect();
    ranked.sort_by(|a, b| b.1.score.total_cmp(&a.1.score).then_with(|| a.0.cmp(&b.0)));
    let mut hits = Vec::new();
    for (name, f) in ranked {
        if hits.len() >= limit {
            break;
        }
        let matched = match (&f.hit, &f.passage) {
            (Some(_), Some(_)) => MatchedBy::Both,
            (Some(_), None) => MatchedBy::Words,
            _ => MatchedBy::Meaning,
        };
        let (doc, snippet) = match (f.hit, f.passage) {
            (Some(hit), None) => (hit.doc, hit.snippet),
            (hit, Some((seq, _))) => {
                let Some(doc) = hit.map(|h| h.doc).map_or_else(|| r.document(&name), |d| Ok(Some(d)))? else {
                    continue;
                };
                (doc, r.chunk_text(&name, seq)?.map(|t| passage(&t)))
            }
            (None, None) => continue,
        };
        let doc = crate::docs::without_content(doc);
        hits.push(DocEntry { doc, score: Some(f.score), snippet, matched: Some(matched) });
    }
    Ok(hits)
}

/// A passage as shown: at most about 300 characters of it.
fn passage(text: &str) -> String {
    const SHOWN: usize = 300;
    let text = text.trim();
    match text.char_indices().nth(SHOWN) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_start_passages_and_code_blocks_stay_whole() {
        let text = "# One\nThe car's service interval.\n\n# Two\n```rust\nfn main() {\n\n    run();\n}\n```\nAfter.";
        let c = chunks(text);
        assert_eq!(c.len(), 2, "{c:?}");
        assert_eq!(c[0], "# One\nThe car's service interval.");
        assert!(c[1].starts_with("# Two\n\n```rust\nfn main() {\n\n    run();\n}\n```"), "{c:?}");
    }

    #[test]
    fn long_sections_are_cut_with_overlap_and_nothing_is_lost() {
        let para = |i: usize| format!("Paragraph {i} says something about topic {i} at some length, more or less.");
        let text: String = (0..60).map(|i| para(i) + "\n\n").collect();
        let c = chunks(&text);
        assert!(c.len() > 3, "{}", c.len());
        for chunk in &c {
            assert!(chunk.chars().count() <= CHUNK_CHARS, "{}", chunk.len());
        }
        for i in 0..60 {
            assert!(c.iter().any(|chunk| chunk.contains(&para(i))), "paragraph {i} is in a passage");
        }
        let last_line = c[0].lines().last().unwrap();
        assert!(c[1].lines().take(4).any(|l| l == last_line), "the second passage repeats the end of the first");
    }

    #[test]
    fn a_line_longer_than_a_passage_is_cut() {
        let text = "x".repeat(CHUNK_CHARS * 2 + 10);
        let c = chunks(&text);
        assert_eq!(c.iter().map(|c| c.len()).sum::<usize>(), text.len());
        assert!(c.iter().all(|c| c.len() <= CHUNK_CHARS));
    }

    #[test]
    fn dot_matches_the_plain_sum() {
        let a: Vec<f32> = (0..19).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..19).map(|i| 1.0 - i as f32 * 0.1).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-3);
    }
}
