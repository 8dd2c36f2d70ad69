//! The background work: the queued documents embedded, a batch at a time.

use std::sync::Arc;
use std::time::Duration;

use baton_core::time::Timestamp;
use baton_domain::AppState;
use baton_domain::meaning::{EmbedError, Embedder, chunks};
use baton_store::{Chunk, EmbedJob, StoreError};

/// How many documents one claim takes.
const CLAIM: u32 = 16;
/// How long a claimed document is held before another worker may take it.
const HOLD_MS: i64 = 120_000;
/// How many passages one request to the endpoint carries.
const BATCH: usize = 32;
/// How often the queue is looked at when nothing wakes the worker.
const LOOK: Duration = Duration::from_secs(2);
/// The longest wait before an unavailable endpoint is tried again.
const MAX_BACKOFF_S: i64 = 300;

/// Runs for as long as the coordinator does (on every replica: claims keep them
/// from embedding the same document twice). Makes the configured model the
/// index's first (a new one queues every document again) and queues the
/// documents pushed while no endpoint was configured.
pub async fn worker(state: Arc<AppState>) {
    let (Some(config), Some(embedder)) = (state.config.embeddings.clone(), state.embedder.clone()) else { return };
    let (model, dims) = (config.model.clone(), config.dims);
    let start = state
        .store
        .write(move |tx| {
            let changed = tx.set_embed_model(&model, dims)?;
            let queued = if changed { 0 } else { tx.queue_embeddings(false)? };
            Ok::<_, StoreError>((changed, queued))
        })
        .await;
    match start {
        Ok((true, _)) => {
            tracing::info!(model = %config.model, "a new embedding model: every document is embedded again")
        }
        Ok((false, n)) if n > 0 => tracing::info!(documents = n, "documents queued for embedding"),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not prepare the meaning index"),
    }
    loop {
        match round(&state, embedder.as_ref(), &config.model).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "could not embed queued documents"),
        }
        tokio::select! {
            _ = state.embed_work.notified() => {}
            _ = tokio::time::sleep(LOOK) => {}
        }
    }
}

/// One claim's documents embedded; whether there were any.
async fn round(state: &Arc<AppState>, embedder: &dyn Embedder, model: &str) -> Result<bool, StoreError> {
    let now = Timestamp::now();
    let jobs = state.store.write(move |tx| tx.claim_embeddings(now, now.plus_millis(HOLD_MS), CLAIM)).await?;
    if jobs.is_empty() {
        return Ok(false);
    }
    let mut away: Option<String> = None;
    for job in jobs {
        let outcome = match &away {
            Some(why) => Err(EmbedError::Unavailable(why.clone())),
            None => embed_document(state, embedder, model, &job).await,
        };
        if let Err(e) = &outcome
            && let EmbedError::Unavailable(why) = e
        {
            away = Some(why.clone());
        }
        settle(state, model, job, outcome).await?;
    }
    Ok(away.is_none())
}

/// A document's passages and their vectors (none when it changed or went).
async fn embed_document(
    state: &Arc<AppState>,
    embedder: &dyn Embedder,
    model: &str,
    job: &EmbedJob,
) -> Result<Option<Vec<Chunk>>, EmbedError> {
    let name = job.name.clone();
    let read = state.store.read(move |r| Ok::<_, StoreError>((r.document(&name)?, r.embed_status()?))).await;
    let (doc, status) = read.map_err(|e| EmbedError::Unavailable(format!("the store: {e}")))?;
    let Some(doc) = doc.filter(|d| d.version == job.version) else { return Ok(None) };
    let texts = chunks(doc.content.as_deref().unwrap_or(""));
    let mut vectors = Vec::with_capacity(texts.len());
    for batch in texts.chunks(BATCH) {
        vectors.extend(embedder.embed(batch).await?);
    }
    let expected = status.dims.filter(|_| status.model.as_deref() == Some(model));
    let expected = expected.or_else(|| vectors.first().map(|v| v.len() as u32));
    if let Some(wrong) = vectors.iter().find(|v| Some(v.len() as u32) != expected) {
        return Err(EmbedError::Refused(format!(
            "the endpoint answered a {}-dimensional vector; model {model}'s have {} dimensions",
            wrong.len(),
            expected.unwrap_or_default()
        )));
    }
    Ok(Some(
        texts
            .into_iter()
            .zip(vectors)
            .enumerate()
            .map(|(i, (text, vector))| Chunk { seq: i as u32, text, vector })
            .collect(),
    ))
}

/// Stores a document's vectors, or what went wrong.
async fn settle(
    state: &Arc<AppState>,
    model: &str,
    job: EmbedJob,
    outcome: Result<Option<Vec<Chunk>>, EmbedError>,
) -> Result<(), StoreError> {
    let model = model.to_owned();
    match outcome {
        Ok(None) => Ok(()),
        Ok(Some(chunks)) => {
            state.store.write(move |tx| tx.put_chunks(&job.name, job.version, &model, &chunks)).await?;
            Ok(())
        }
        Err(e) => {
            let (failed, wait_s) = match &e {
                EmbedError::Unavailable(_) => (false, (1i64 << job.attempts.min(9)).min(MAX_BACKOFF_S)),
                EmbedError::Refused(_) => (true, 0),
            };
            tracing::debug!(document = %job.name, error = %e, failed, "a document was not embedded");
            let next_at = Timestamp::now().plus_millis(wait_s * 1000);
            let error = e.to_string();
            state.store.write(move |tx| tx.embedding_failed(&job.name, job.version, &error, next_at, failed)).await
        }
    }
}
