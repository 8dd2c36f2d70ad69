//! Git operations for Baton, through the `git` command line.
//!
//! Calling the installed `git` costs nothing to build and supports worktrees and
//! `merge-tree` fully. Every call goes through [`Git::run`]: arguments are passed
//! as separate words (never through a shell), user-supplied names are validated
//! before they get here, and the environment is pinned (`LC_ALL=C`, no prompts, no
//! pager) so output can be parsed.
//!
//! - [`worktree`]: a task's worktree and branch: creating them (from the base, with
//!   the prerequisites' branches merged in), saving uncommitted work as a WIP
//!   commit, describing what the branch changed, removing them safely.
//! - [`merge`]: landing a branch on the base branch without switching or dirtying
//!   any checkout: conflicts are found with `merge-tree`, the result is committed
//!   with `commit-tree`, and the base ref is moved with a compare-and-swap.

pub mod merge;
mod repo;
pub mod worktree;

pub use repo::{Git, GitError};
