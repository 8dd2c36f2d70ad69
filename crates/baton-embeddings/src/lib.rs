//! Embeddings for the context store: [`Client`] speaks the OpenAI-compatible
//! `POST {base}/embeddings` (Ollama, llama.cpp, vLLM, hosted APIs), and
//! [`worker`] embeds the documents the store queued, in the background, so a
//! push never waits for the endpoint.
//!
//! The worker claims queued documents (each held for a while, so replicas
//! sharing a store split the work), cuts each into passages, embeds them in
//! batches and stores the vectors in one transaction, if the document has not
//! changed meanwhile. An endpoint that is away is tried again with backoff; an
//! answer that can never fit (vectors of the wrong dimension, a refused
//! request) marks the document with the reason until `baton doc reindex`.

mod client;
mod worker;

pub use client::Client;
pub use worker::worker;
