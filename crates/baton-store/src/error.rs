//! The store's error type.

use std::path::PathBuf;

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("error opening the database at {path}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The database refused a statement.
    #[error("database error")]
    Database(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A row could not be decoded.
    #[error("stored {what} could not be read")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// A uniqueness rule was broken (a name or path already in use).
    #[error("{what} already exists")]
    Duplicate {
        /// What was duplicated.
        what: String,
    },
    /// The database was written by a newer Baton.
    #[error("the database has schema version {found}, newer than this Baton knows ({known}); upgrade Baton")]
    TooNew {
        /// The version found.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The store has shut down.
    #[error("the store is closed")]
    Closed,
    /// An operation panicked inside the store.
    #[error("a store operation panicked")]
    Panicked,
}
