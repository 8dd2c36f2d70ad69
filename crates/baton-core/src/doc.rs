//! The context store's documents: what agents share (seed 001), with tags,
//! metadata, relations, and every earlier version kept.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ids::{ProjectId, SessionId};
use crate::time::Timestamp;

/// A document of the context store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Document {
    /// Its name, unique (`notes/api.md`); see [`crate::names::validate_doc_name`].
    pub name: String,
    /// Its text; `None` for a binary document, whose bytes are in `blob`.
    #[serde(default)]
    pub content: Option<String>,
    /// A binary document's stored file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blob: Option<Blob>,
    /// Its media type (`text/markdown`, `image/png`, ...).
    pub content_type: String,
    /// Labels to find it by.
    #[serde(default)]
    pub tags: Vec<String>,
    /// Free-form metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, Value>,
    /// Links to other documents.
    #[serde(default)]
    pub relations: Vec<Relation>,
    /// The project it is about, if any.
    #[serde(default)]
    pub project_id: Option<ProjectId>,
    /// Its version: 1 when created, one more at each edit.
    pub version: u32,
    /// Its size in bytes.
    pub size: u64,
    /// The session that wrote this version, when an agent did.
    #[serde(default)]
    pub written_by: Option<SessionId>,
    /// When it was first created.
    pub created_at: Timestamp,
    /// When this version was written.
    pub updated_at: Timestamp,
}

/// A binary document's bytes, stored as a file named by their hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Blob {
    /// SHA-256 of the bytes, hex.
    pub sha256: String,
}

/// A link from one document to another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Relation {
    /// What the other document is to this one.
    pub kind: RelationKind,
    /// The other document's name.
    #[schemars(regex(pattern = crate::names::DOC_NAME_PATTERN), length(min = 1, max = 200))]
    pub target: String,
}

/// How two documents relate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RelationKind {
    /// The other is this one's parent.
    Parent,
    /// The other is this one's child.
    Child,
    /// The other is related.
    Related,
    /// The other comes before this one.
    Predecessor,
    /// The other comes after this one.
    Successor,
}

/// One version of a document, without its content (`GET /api/docs/{name}` lists them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DocVersion {
    /// The version number.
    pub version: u32,
    /// Its size in bytes.
    pub size: u64,
    /// Who wrote it.
    pub written_by: Option<SessionId>,
    /// When.
    pub updated_at: Timestamp,
}

#[cfg(test)]
mod tests {
    use crate::names::validate_doc_name;

    #[test]
    fn document_names_cannot_escape() {
        for ok in ["notes", "notes/api.md", "a-b_c.d/e", "2024/plan.v2"] {
            assert!(validate_doc_name(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "../etc/passwd", "a/../b", "/abs", "trailing/", "a//b", ".hidden", "a/.b", "sp ace", "a\\b", "é"]
        {
            assert!(validate_doc_name(bad).is_err(), "{bad:?} accepted");
        }
    }
}
