//! Baton's persistent store.
//!
//! [`Store`] is the handle the rest of Baton uses. Work is handed to it as closures
//! over [`StoreRead`] (reads) or [`StoreTx`] (a write transaction), so a domain
//! operation (create a task, finish a run) reads, checks and writes atomically, and
//! nothing outside this crate knows which database is behind it.
//!
//! The SQLite backend ([`sqlite`]) runs every write on one writer thread. Writes
//! that arrive together are committed together (group commit), each inside its own
//! savepoint so one failing operation does not undo another; a caller gets its
//! answer only after the commit, so an acknowledged write is on disk. Events
//! appended by a transaction are published to subscribers after it commits, in the
//! order of their ids, which is what makes the live stream gap-free.

pub mod archive;
pub mod backup;
mod error;
pub mod postgres;
mod rows;
mod search;
pub mod sqlite;
mod store;

pub use error::StoreError;
pub use store::{
    ActiveOf, ArchiveTotals, Backend, Chunk, ChunkVector, Committed, Completion, DocFilter, DocHit, EmbedJob,
    EmbedStatus, EventFilter, HourDelta, HourRow, Notice, QueuedRuns, ReadJob, Store, StoreRead, StoreTx, TaskFilter,
    WriteJob,
};
