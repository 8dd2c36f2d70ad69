//! Entry points for the fuzz targets in `fuzz/`: the parsers of git's
//! porcelain output, over arbitrary text. Not an API.

/// Every parser of git output, over the same text.
pub fn porcelain(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let (files, _, _) = crate::worktree::parse_numstat(&text);
    for f in &files {
        assert!(!f.is_empty(), "numstat names no empty file");
    }
    crate::worktree::parse_status_z(&text);
    crate::worktree::split_z(&text);
    crate::merge::worktrees_on(&text, "refs/heads/main");
    if let Some(id) = crate::repo::packed_ref(&text, "refs/heads/main") {
        assert!(matches!(id.len(), 40 | 64));
    }
    let _ = crate::worktree::check_object_id(text.trim());
}

/// The command section of a push, as the coordinator's git endpoint reads it.
pub fn push_commands(bytes: &[u8]) {
    if let Ok(Some((updates, used))) = crate::pktline::parse_commands(bytes) {
        assert!(used <= bytes.len());
        for u in updates {
            assert!(matches!(u.old.len(), 40 | 64) && matches!(u.new.len(), 40 | 64));
        }
    }
}
