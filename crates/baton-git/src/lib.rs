//! Git operations for Baton, through the `git` command line.
//!
//! Calling the installed `git` costs nothing to build and supports worktrees and
//! `merge-tree` fully. Every call goes through [`Git::run`]: arguments are passed
//! as separate words (never through a shell), user-supplied names are validated
//! before they get here, and the environment is pinned (`LC_ALL=C`, no prompts, no
//! pager) so output can be parsed.
//!
//! - [`worktree`]: a task's working tree, a repository of its own borrowing the
//!   launcher's objects: creating it (from the base, with the prerequisites merged
//!   in, or from the branch's last pushed commit and checkpoint), saving
//!   uncommitted work as a WIP commit, snapshots, describing what a branch changed.
//! - [`transport`]: a launcher's mirror of a project, fetched from and pushed to
//!   the coordinator over git's smart HTTP protocol.
//! - [`merge`]: landing a branch on the base branch without switching or dirtying
//!   any checkout: conflicts are found with `merge-tree`, the result is committed
//!   with `commit-tree`, and the base ref is moved with a compare-and-swap.

#[doc(hidden)]
pub mod edit;
pub mod fuzzing;
pub mod merge;
pub mod pktline;
mod repo;
pub mod transport;
pub mod worktree;

pub use repo::{Git, GitError};
