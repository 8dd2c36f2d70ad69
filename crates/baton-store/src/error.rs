//! The store's error type.

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened or migrated.
    #[error("cannot open the database {place}")]
    Open {
        /// The database: its file, or its URL without the password.
        place: String,
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
    /// The database cannot be reached now (a restart, a lost connection). A write
    /// that got this may or may not have committed.
    #[error("the database is unavailable")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The disk holding the database is full: nothing was written.
    #[error("the disk holding the database is full")]
    Full(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The database is shared with a coordinator this one cannot work beside.
    #[error("{message}")]
    Incompatible {
        /// What differs, and what to do.
        message: String,
    },
    /// The store has shut down.
    #[error("the store is closed")]
    Closed,
    /// An operation panicked inside the store.
    #[error("a store operation panicked")]
    Panicked,
}
