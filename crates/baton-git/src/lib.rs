//! Git operations for Baton, through the `git` command line.
//!
//! Calling the installed `git` costs nothing to build and supports worktrees and
//! `merge-tree` fully. Every call goes through [`Git::run`]: arguments are passed
//! as separate words (never through a shell), user-supplied names are validated
//! before they get here and placed after `--` where git allows it, and the
//! environment is pinned (`LC_ALL=C`, no prompts, no pager) so output can be parsed.

mod repo;

pub use repo::{Git, GitError};
