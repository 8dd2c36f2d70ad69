//! The context store: documents agents share, with every version kept, searched
//! by relevance. Text and bytes both live in the store (bytes once per SHA-256),
//! so every replica sharing a database serves them.

use base64::Engine;
use baton_core::agent::DocRules;
use baton_core::api::{DocDetail, PushDoc};
use baton_core::doc::{Blob, Document};
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::SessionId;
use baton_core::names::{is_json_media_type, is_yaml_media_type, validate_doc_name, validate_media_type};
use baton_core::time::Timestamp;
use baton_store::{DocFilter, StoreRead, StoreTx};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::resolve;

/// How many tags a document may have, and how long each may be.
const MAX_TAGS: usize = 64;
const MAX_TAG_LEN: usize = 64;

/// Names `/api/docs/…` takes for itself.
const RESERVED: [&str; 2] = ["search", "index"];

/// Checks a push and turns binary content into bytes.
pub fn check_push(req: &PushDoc) -> Result<Option<Vec<u8>>, Error> {
    validate_doc_name(&req.name).map_err(|e| Error::invalid(e.to_string()))?;
    if RESERVED.contains(&req.name.as_str()) {
        return Err(Error::invalid(format!(
            "{:?} is reserved (GET /api/docs/{} is the context store's own); name the document otherwise",
            req.name, req.name
        )));
    }
    let bytes = match (&req.content, &req.content_base64) {
        (Some(_), Some(_)) => return Err(Error::combination("give content or content_base64, not both")),
        (None, None) => return Err(Error::combination("a document needs content (or content_base64)")),
        (Some(_), None) => None,
        (None, Some(b64)) => Some(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| Error::invalid(format!("content_base64 is not base64: {e}")))?,
        ),
    };
    if let Some(t) = &req.content_type {
        validate_media_type(t).map_err(|e| Error::invalid(e.to_string()))?;
    }
    for tag in req.tags.iter().flatten() {
        if tag.is_empty()
            || tag.chars().count() > MAX_TAG_LEN
            || tag.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(Error::invalid(format!("invalid tag {tag:?}: 1 to {MAX_TAG_LEN} characters, no spaces")));
        }
    }
    if req.tags.as_ref().is_some_and(|t| t.len() > MAX_TAGS) {
        return Err(Error::invalid(format!("at most {MAX_TAGS} tags")));
    }
    for r in req.relations.iter().flatten() {
        validate_doc_name(&r.target).map_err(|e| Error::invalid(format!("relation: {e}")))?;
    }
    Ok(bytes)
}

/// Content of a JSON or YAML media type must parse as one: what a raw read
/// answers is then what its type says.
fn check_structured(doc: &Document, bytes: Option<&[u8]>) -> Result<(), Error> {
    let bytes = doc.content.as_deref().map(str::as_bytes).or(bytes).unwrap_or_default();
    let refused = |kind: &str, e: &dyn std::fmt::Display| {
        Error::combination(format!("the content is typed {} but is not {kind}: {e}", doc.content_type))
    };
    if is_json_media_type(&doc.content_type) {
        serde_json::from_slice::<serde_json::Value>(bytes).map_err(|e| refused("JSON", &e))?;
    } else if is_yaml_media_type(&doc.content_type) {
        serde_norway::from_slice::<serde_json::Value>(bytes).map_err(|e| refused("YAML", &e))?;
    }
    Ok(())
}

/// Writes a new version of a document (the first, or the next), inside a
/// transaction. True when it was created.
pub fn push(
    tx: &mut dyn StoreTx,
    req: PushDoc,
    bytes: Option<Vec<u8>>,
    writer: Option<SessionId>,
) -> Result<(bool, Document), Error> {
    let now = Timestamp::now();
    let blob = match &bytes {
        Some(bytes) => {
            let sha256: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
            tx.put_blob(&sha256, bytes)?;
            Some((Blob { sha256 }, bytes.len() as u64))
        }
        None => None,
    };
    let project_id = req.project.as_deref().map(|p| resolve::project_ref(tx, p)).transpose()?.map(|p| p.id);
    let previous = tx.document(&req.name)?;
    if let Some(session) = &writer {
        check_rules(tx, session, &req.name, if req.append { Change::Append } else { Change::Write })?;
    }
    let mut req = req;
    if req.append {
        let before = match &previous {
            Some(p) if p.blob.is_some() => {
                return Err(Error::conflict(format!("{} is binary: nothing to append to", p.name)));
            }
            Some(p) => p.content.clone().unwrap_or_default(),
            None => String::new(),
        };
        let added = req.content.take().ok_or_else(|| Error::combination("`append` needs text `content`"))?;
        req.content =
            Some(if before.is_empty() { added } else { format!("{}\n{added}", before.trim_end_matches('\n')) });
    }
    let size = match (&req.content, &blob) {
        (Some(text), _) => text.len() as u64,
        (None, Some((_, size))) => *size,
        (None, None) => 0,
    };
    let default_type = if blob.is_some() { "application/octet-stream" } else { "text/markdown" };
    let doc = match previous {
        Some(prev) => Document {
            content_type: req.content_type.unwrap_or(if blob.is_some() == prev.blob.is_some() {
                prev.content_type
            } else {
                default_type.to_owned()
            }),
            tags: req.tags.unwrap_or(prev.tags),
            metadata: req.metadata.unwrap_or(prev.metadata),
            relations: req.relations.unwrap_or(prev.relations),
            project_id: project_id.or(prev.project_id),
            version: prev.version + 1,
            created_at: prev.created_at,
            name: prev.name,
            content: req.content,
            blob: blob.map(|(b, _)| b),
            size,
            written_by: writer,
            updated_at: now,
        },
        None => Document {
            name: req.name,
            content: req.content,
            blob: blob.map(|(b, _)| b),
            content_type: req.content_type.unwrap_or_else(|| default_type.to_owned()),
            tags: req.tags.unwrap_or_default(),
            metadata: req.metadata.unwrap_or_default(),
            relations: req.relations.unwrap_or_default(),
            project_id,
            version: 1,
            size,
            written_by: writer,
            created_at: now,
            updated_at: now,
        },
    };
    check_structured(&doc, bytes.as_deref())?;
    tx.put_document(&doc)?;
    tx.append_event(writer_session(&doc).as_ref(), None, None, announcement(&doc))?;
    Ok((doc.version == 1, doc))
}

fn writer_session(doc: &Document) -> Option<SessionId> {
    doc.written_by.clone()
}

/// The event announcing a document's new version (without its content).
fn announcement(doc: &Document) -> NewEvent {
    let mut data = serde_json::to_value(without_content(doc.clone())).unwrap_or_default();
    data["event"] = json!("written");
    NewEvent::new(EventKind::Document, data)
}

/// How a session changes a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// Creates it, replaces its content, or removes it.
    Write,
    /// Adds to the end of its text.
    Append,
}

/// The gatekeeper (seed 003): an agent's session may change a document only as
/// its definition's `docs` rules allow (any, without rules), and never another
/// agent's archival memory under `agents/NAME/`.
pub fn check_rules(r: &dyn StoreRead, session: &SessionId, name: &str, change: Change) -> Result<(), Error> {
    let agent = resolve::session(r, session)?.agent;
    if let Some(owner) = name.strip_prefix("agents/").and_then(|rest| rest.split('/').next())
        && owner != agent
    {
        return Err(Error::forbidden(format!("{name} is agent {owner}'s memory: agent {agent} may not change it")));
    }
    let Some(rules) = r.agent(&agent)?.and_then(|def| def.docs) else { return Ok(()) };
    let own = name.starts_with(&format!("agents/{agent}/"));
    let writes = own || DocRules::matches(&rules.write, name);
    let appends = writes || DocRules::matches(&rules.append, name);
    match change {
        Change::Write if writes => Ok(()),
        Change::Append if appends => Ok(()),
        Change::Write if appends => {
            Err(Error::forbidden(format!("agent {agent} may only append to {name} (push with `append: true`)")))
        }
        _ => Err(Error::forbidden(format!(
            "agent {agent}'s document rules do not let it change {name} (write: {}; append: {})",
            list(&rules.write),
            list(&rules.append)
        ))),
    }
}

fn list(patterns: &[String]) -> String {
    if patterns.is_empty() { "none".into() } else { patterns.join(", ") }
}

/// Removes a document and its versions.
pub fn delete(tx: &mut dyn StoreTx, name: &str) -> Result<(), Error> {
    if !tx.delete_document(name)? {
        return Err(Error::not_found("document", name));
    }
    tx.append_event(None, None, None, NewEvent::new(EventKind::Document, json!({ "name": name, "deleted": true })))?;
    Ok(())
}

/// A document with its content, bytes, versions and back-references.
pub fn detail(r: &dyn StoreRead, name: &str, version: Option<u32>) -> Result<DocDetail, Error> {
    validate_doc_name(name).map_err(|e| Error::invalid(e.to_string()))?;
    let doc = match version {
        Some(v) => {
            r.document_version(name, v)?.ok_or_else(|| Error::not_found("document version", format!("{name}@{v}")))?
        }
        None => r.document(name)?.ok_or_else(|| Error::not_found("document", name))?,
    };
    let content_base64 = match &doc.blob {
        Some(blob) => {
            let bytes = r.blob(&blob.sha256)?.ok_or_else(|| {
                Error::internal(std::io::Error::other(format!("the bytes of {name} ({}) are missing", blob.sha256)))
            })?;
            Some(base64::engine::general_purpose::STANDARD.encode(bytes))
        }
        None => None,
    };
    let versions = r.document_versions(name)?;
    let referenced_by = r
        .documents(&DocFilter { related_to: Some(name.to_owned()), limit: 1000, ..Default::default() })?
        .into_iter()
        .map(|h| h.doc.name)
        .collect();
    Ok(DocDetail { doc, content_base64, versions, referenced_by })
}

/// A document as listed: without its content.
pub fn without_content(mut doc: Document) -> Document {
    doc.content = None;
    doc
}
