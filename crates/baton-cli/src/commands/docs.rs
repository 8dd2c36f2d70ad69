//! `baton doc`: the context store.

use std::io::{Read, Write};

use base64::Engine;
use baton_client::{Client, encode};
use baton_core::api::{DocIndex, DocSearch, MatchedBy, PushDoc};
use baton_core::doc::{Relation, RelationKind};

use serde_json::Value;

use crate::cli::DocCommand;
use crate::error::CliError;
use crate::output::{cut, print_json, table};

/// Runs one `baton doc` command; its exit code.
pub async fn doc(client: &Client, command: DocCommand) -> Result<u8, CliError> {
    match command {
        DocCommand::Push { name, file, tags, meta, relations, content_type, project, append, json } => {
            let bytes = read_input(file.as_deref())?;
            let (content, content_base64) = match String::from_utf8(bytes) {
                Ok(text) => (Some(text), None),
                Err(e) => (None, Some(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()))),
            };
            let req = PushDoc {
                name,
                content,
                content_base64,
                content_type,
                tags: (!tags.is_empty()).then_some(tags),
                metadata: (!meta.is_empty()).then(|| parse_meta(&meta)).transpose()?,
                relations: (!relations.is_empty()).then(|| parse_relations(&relations)).transpose()?,
                project,
                append,
            };
            let detail = client.push_doc(&req).await?;
            if json {
                print_json(&detail);
            } else {
                println!("{} version {}", detail.doc.name, detail.doc.version);
            }
            Ok(0)
        }
        DocCommand::Pull { name, file, version } => {
            let bytes = content(client, &name, version).await?;
            match file {
                Some(path) => std::fs::write(&path, bytes)
                    .map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))?,
                None => std::io::stdout().write_all(&bytes).map_err(|e| CliError::io("cannot write to stdout", e))?,
            }
            Ok(0)
        }
        DocCommand::Read { name, version } => {
            let bytes = content(client, &name, version).await?;
            let mut out = std::io::stdout();
            out.write_all(&bytes).map_err(|e| CliError::io("cannot write to stdout", e))?;
            if !bytes.ends_with(b"\n") {
                let _ = out.write_all(b"\n");
            }
            Ok(0)
        }
        DocCommand::Query { words, mode, tags, prefix, limit, json } if !words.is_empty() => {
            search(client, &words.join(" "), mode, &tags, prefix, limit, json).await
        }
        DocCommand::Query { words, tags, prefix, limit, json, .. } => {
            query(client, &words, &tags, prefix, limit, json).await
        }
        DocCommand::Reindex { status, json } => reindex(client, status, json).await,
        DocCommand::Info { name, json } => info(client, &name, json).await,
        DocCommand::Delete { name } => {
            client.delete_doc(&name).await?;
            println!("deleted {name}");
            Ok(0)
        }
    }
}

/// `baton doc query`: the documents that match, best first.
async fn query(
    client: &Client,
    words: &[String],
    tags: &[String],
    prefix: Option<String>,
    limit: u32,
    json: bool,
) -> Result<u8, CliError> {
    let mut query = vec![format!("limit={limit}")];
    if !words.is_empty() {
        query.push(format!("q={}", encode(&words.join(" "))));
    }
    if !tags.is_empty() {
        query.push(format!("tag={}", encode(&tags.join(","))));
    }
    if let Some(p) = prefix {
        query.push(format!("prefix={}", encode(&p)));
    }
    let hits = client.docs(&query.join("&")).await?;
    if json {
        print_json(&hits);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = hits
        .iter()
        .map(|h| {
            vec![
                h.doc.name.clone(),
                h.doc.version.to_string(),
                h.doc.tags.join(","),
                h.doc.updated_at.to_string(),
                cut(&h.snippet.clone().unwrap_or_default().replace('\n', " "), 60),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "TAGS", "UPDATED", "MATCH"], &rows);
    Ok(0)
}

/// `baton doc info`: a document without its content, with its versions.
async fn info(client: &Client, name: &str, json: bool) -> Result<u8, CliError> {
    let detail = client.doc(name, None).await?;
    if json {
        let mut value = serde_json::to_value(&detail).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.remove("content");
            obj.remove("content_base64");
        }
        print_json(&value);
        return Ok(0);
    }
    let d = &detail.doc;
    println!("name:         {}", d.name);
    println!("version:      {} ({} bytes, {})", d.version, d.size, d.content_type);
    println!("tags:         {}", d.tags.join(", "));
    for (k, v) in &d.metadata {
        println!("meta:         {k} = {v}");
    }
    for r in &d.relations {
        println!(
            "relation:     {} {}",
            serde_json::to_value(r.kind).unwrap_or_default().as_str().unwrap_or(""),
            r.target
        );
    }
    for name in &detail.referenced_by {
        println!("named by:     {name}");
    }
    println!("created:      {}", d.created_at);
    for v in &detail.versions {
        let by = v.written_by.as_ref().map(|s| format!(" by {s}")).unwrap_or_default();
        println!("  v{:<4} {} {} bytes{by}", v.version, v.updated_at, v.size);
    }
    Ok(0)
}

/// A document's content as bytes.
async fn content(client: &Client, name: &str, version: Option<u32>) -> Result<Vec<u8>, CliError> {
    let detail = client.doc(name, version).await?;
    Ok(match (detail.doc.content, detail.content_base64) {
        (Some(text), _) => text.into_bytes(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| CliError::Unexpected { what: "base64", source: Some(e.into()) })?,
        (None, None) => Vec::new(),
    })
}

fn read_input(file: Option<&std::path::Path>) -> Result<Vec<u8>, CliError> {
    match file {
        Some(path) if path != std::path::Path::new("-") => {
            std::fs::read(path).map_err(|e| CliError::io(format!("cannot read {}", path.display()), e))
        }
        _ => {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|e| CliError::io("cannot read stdin", e))?;
            Ok(bytes)
        }
    }
}

fn parse_meta(pairs: &[String]) -> Result<std::collections::BTreeMap<String, Value>, CliError> {
    pairs
        .iter()
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or_else(|| CliError::BadValue {
                flag: "--meta",
                value: p.clone(),
                problem: "is not KEY=VALUE",
            })?;
            let value = serde_json::from_str(v).unwrap_or_else(|_| Value::String(v.to_owned()));
            Ok((k.to_owned(), value))
        })
        .collect()
}

fn parse_relations(items: &[String]) -> Result<Vec<Relation>, CliError> {
    items
        .iter()
        .map(|item| {
            let bad = |problem| CliError::BadValue { flag: "--rel", value: item.clone(), problem };
            let (kind, target) = item.split_once(':').ok_or_else(|| bad("is not KIND:NAME"))?;
            let kind: RelationKind = serde_json::from_value(Value::String(kind.to_owned()))
                .map_err(|_| bad("has a kind that is not parent, child, related, predecessor or successor"))?;
            Ok(Relation { kind, target: target.to_owned() })
        })
        .collect()
}

/// `baton doc query WORDS`: a search by words, meaning or both, best first,
/// each hit with why it matched; what limited the search goes to stderr.
async fn search(
    client: &Client,
    words: &str,
    mode: Option<String>,
    tags: &[String],
    prefix: Option<String>,
    limit: u32,
    json: bool,
) -> Result<u8, CliError> {
    let mut query = vec![format!("limit={}", limit.clamp(1, 100)), format!("q={}", encode(words))];
    if let Some(m) = mode {
        query.push(format!("mode={m}"));
    }
    if !tags.is_empty() {
        query.push(format!("tag={}", encode(&tags.join(","))));
    }
    if let Some(p) = prefix {
        query.push(format!("prefix={}", encode(&p)));
    }
    let found: DocSearch = client.get(&format!("/api/docs/search?{}", query.join("&"))).await?;
    if let Some(note) = &found.note {
        eprintln!("{note}");
    }
    if found.partial && found.pending > 0 {
        eprintln!("partial: {} documents still wait to be embedded", found.pending);
    }
    if json {
        print_json(&found.hits);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = found
        .hits
        .iter()
        .map(|h| {
            let matched = h.matched.map_or("", |m| match m {
                MatchedBy::Words => "words",
                MatchedBy::Meaning => "meaning",
                MatchedBy::Both => "both",
            });
            vec![
                h.doc.name.clone(),
                h.doc.version.to_string(),
                matched.to_owned(),
                h.doc.tags.join(","),
                cut(&h.snippet.clone().unwrap_or_default().replace('\n', " "), 60),
            ]
        })
        .collect();
    table(&["NAME", "VERSION", "MATCHED", "TAGS", "PASSAGE"], &rows);
    Ok(0)
}

/// `baton doc reindex`: every document queued to be embedded again (or, with
/// `--status`, only the index's state).
async fn reindex(client: &Client, status_only: bool, json: bool) -> Result<u8, CliError> {
    let index: DocIndex = if status_only {
        client.get("/api/docs/index").await?
    } else {
        client.post("/api/docs/index", &serde_json::json!({})).await?
    };
    if json {
        print_json(&index);
        return Ok(0);
    }
    match &index.endpoint {
        Some(url) => println!("endpoint: {url}"),
        None => println!("endpoint: none (search is by words only; start Baton with --embeddings URL)"),
    }
    if let Some(model) = &index.model {
        let dims = index.dims.map_or_else(|| "dimensions not yet known".to_owned(), |d| format!("{d} dimensions"));
        println!("model: {model} ({dims})");
    }
    if let Some(n) = index.queued {
        println!("queued: {n} documents");
    }
    println!("waiting: {}", index.pending);
    println!("failed: {}", index.failed);
    for f in &index.failures {
        let state = if f.failed { "failed" } else { "retrying" };
        println!("  {} v{} ({state}, {} tries): {}", f.name, f.version, f.attempts, f.error);
    }
    Ok(if index.failed > 0 { 1 } else { 0 })
}
