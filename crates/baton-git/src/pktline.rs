//! The command section of a `git push` over the smart HTTP protocol
//! (`git-receive-pack`): pkt-lines of ref updates, read strictly.

/// One ref update of a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    /// Its old value (all zeros: a new ref).
    pub old: String,
    /// Its new value (all zeros: a deletion).
    pub new: String,
    /// The ref.
    pub name: String,
}

/// Reads a push's command section (pkt-lines up to the first flush) from the
/// start of its body; `None` while it is incomplete. The updates, and how many
/// bytes they took.
pub fn parse_commands(buf: &[u8]) -> Result<Option<(Vec<RefUpdate>, usize)>, String> {
    let mut pos = 0;
    let mut updates = Vec::new();
    loop {
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let len_text = std::str::from_utf8(&buf[pos..pos + 4]).map_err(|_| "a bad pkt-line length")?;
        let len = usize::from_str_radix(len_text, 16).map_err(|_| "a bad pkt-line length")?;
        if len == 0 {
            return Ok(Some((updates, pos + 4)));
        }
        if len < 4 {
            return Err("an unexpected special pkt-line in the commands".into());
        }
        if buf.len() < pos + len {
            return Ok(None);
        }
        let line = &buf[pos + 4..pos + len];
        let line = line.split(|b| *b == 0).next().unwrap_or(line);
        let text = std::str::from_utf8(line).map_err(|_| "a command that is not UTF-8")?.trim_end_matches('\n');
        pos += len;
        if text.starts_with("shallow ") || text.starts_with("push-cert") {
            return Err("shallow and signed pushes are not accepted".into());
        }
        let mut parts = text.splitn(3, ' ');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(old), Some(new), Some(name))
                if [old, new]
                    .iter()
                    .all(|id| matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit())) =>
            {
                updates.push(RefUpdate { old: old.to_owned(), new: new.to_owned(), name: name.to_owned() })
            }
            _ => return Err(format!("an unreadable command {text:?}")),
        }
    }
}
