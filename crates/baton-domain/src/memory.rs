//! An agent's memory, for agents whose definition says `memory: true`:
//! labelled blocks with a character limit each (every version kept, any one
//! restored), a journal Baton writes at each task's end (and the agent may
//! append notes to), and archival documents under `agents/NAME/` in the
//! context store.
//!
//! [`write_block`] is the one place a block changes: it enforces the limit
//! (a write past it is refused with both sizes — nothing is ever cut), the
//! read-only flag and who may write. [`context`] is what reaches the agent:
//! its blocks and its newest journal entries, within a budget.

use baton_core::agent::AgentDef;
use baton_core::memory::{
    DEFAULT_BLOCKS, JournalEntry, JournalKind, MAX_BLOCK_LIMIT, MemoryBlock, MemoryView, SHARED, WriteBlock, WriteMode,
};
use baton_core::model::Task;
use baton_core::model::TokenKind;
use baton_core::names::validate_simple_name;
use baton_core::time::Timestamp;
use baton_store::{StoreRead, StoreTx};
use serde_json::json;

use crate::Error;
use crate::tokens::Caller;

/// How many characters of memory reach the agent at most (blocks first, then
/// the journal's newest entries).
pub const CONTEXT_BUDGET: usize = 12_000;

/// Who writes a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Writer {
    /// A person (the admin token).
    Person,
    /// The agent itself, from one of its sessions.
    Agent(String),
}

impl Writer {
    fn name(&self) -> String {
        match self {
            Writer::Person => "admin".into(),
            Writer::Agent(a) => a.clone(),
        }
    }
}

/// An agent's blocks now: its own (the default ones, empty, until written) and
/// the shared blocks that name it.
pub fn blocks(r: &dyn StoreRead, agent: &str) -> Result<Vec<MemoryBlock>, Error> {
    let mut own = r.memory_blocks(agent)?;
    for (label, limit, description) in DEFAULT_BLOCKS {
        if !own.iter().any(|b| b.label == *label) {
            own.push(empty_block(agent, label, *limit, description));
        }
    }
    own.extend(r.memory_blocks(SHARED)?.into_iter().filter(|b| b.agents.iter().any(|a| a == agent)));
    own.sort_by(|a, b| a.label.cmp(&b.label));
    Ok(own)
}

fn empty_block(owner: &str, label: &str, limit: u32, description: &str) -> MemoryBlock {
    MemoryBlock {
        owner: owner.into(),
        label: label.into(),
        text: String::new(),
        limit,
        description: description.into(),
        read_only: false,
        agents: Vec::new(),
        version: 0,
        written_by: None,
        updated_at: Timestamp::from_millis(0),
    }
}

/// The agent's definition, when it keeps a memory.
pub fn agent_with_memory(r: &dyn StoreRead, name: &str) -> Result<AgentDef, Error> {
    let def = r.agent(name)?.ok_or_else(|| Error::not_found("agent", name))?;
    if !def.memory {
        return Err(Error::conflict(format!("agent {name} keeps no memory: add `memory: true` to its definition")));
    }
    Ok(def)
}

/// Writes a block: the one place its limit, its read-only flag and who may
/// write are enforced. A write past the limit is refused with both sizes, and
/// nothing changes.
pub fn write_block(
    tx: &mut dyn StoreTx,
    agent: &str,
    label: &str,
    w: WriteBlock,
    by: &Writer,
) -> Result<MemoryBlock, Error> {
    validate_simple_name("memory label", label)?;
    if label == "context" {
        return Err(Error::invalid("`context` is not a block's label: it names what reaches the agent"));
    }
    agent_with_memory(tx, agent)?;
    let person = *by == Writer::Person;
    if !person && (w.limit.is_some() || w.read_only.is_some() || !w.share_with.is_empty()) {
        return Err(Error::forbidden("only a person sets a block's limit, read-only flag or sharing"));
    }
    let current = blocks(tx, agent)?.into_iter().find(|b| b.label == label);
    let mut block = match (current, w.share_with.is_empty()) {
        (Some(b), true) => b,
        (Some(b), false) => MemoryBlock { owner: SHARED.into(), version: 0, ..b },
        (None, own) => empty_block(if own { agent } else { SHARED }, label, 5_000, ""),
    };
    if block.read_only && !person {
        return Err(Error::forbidden(format!("memory block {label} is read-only for agent {agent}")));
    }
    let text = match w.mode {
        WriteMode::Replace => w.text,
        WriteMode::Append if block.text.is_empty() => w.text,
        WriteMode::Append => format!("{}\n{}", block.text.trim_end_matches('\n'), w.text),
    };
    let limit = w.limit.unwrap_or(block.limit);
    if limit == 0 || limit > MAX_BLOCK_LIMIT {
        return Err(Error::invalid(format!("a block's limit must be 1 to {MAX_BLOCK_LIMIT} characters")));
    }
    let size = text.chars().count() as u32;
    if size > limit {
        return Err(Error::OverLimit { label: label.into(), size, current: block.chars(), limit });
    }
    for other in &w.share_with {
        validate_simple_name("agent name", other)?;
        tx.agent(other)?.ok_or_else(|| Error::not_found("agent", other))?;
    }
    if !w.share_with.is_empty() {
        block.agents = std::iter::once(agent.to_owned()).chain(w.share_with).collect();
        block.agents.dedup();
    }
    block.text = text;
    block.limit = limit;
    block.read_only = w.read_only.unwrap_or(block.read_only);
    block.description = w.description.unwrap_or(block.description);
    block.version = tx.memory_versions(&block.owner, label)?.first().map_or(1, |b| b.version + 1);
    block.written_by = Some(by.name());
    block.updated_at = Timestamp::now();
    tx.put_memory_block(&block)?;
    Ok(block)
}

/// Writes an earlier version's text again, as the newest version.
pub fn revert_block(
    tx: &mut dyn StoreTx,
    agent: &str,
    label: &str,
    version: u32,
    by: &Writer,
) -> Result<MemoryBlock, Error> {
    let owner = blocks(tx, agent)?.into_iter().find(|b| b.label == label).map_or(agent.to_owned(), |b| b.owner);
    let old = tx
        .memory_versions(&owner, label)?
        .into_iter()
        .find(|b| b.version == version)
        .ok_or_else(|| Error::not_found("memory version", format!("{label} v{version} of agent {agent}")))?;
    write_block(tx, agent, label, WriteBlock { text: old.text, ..WriteBlock::default() }, by)
}

/// Appends a note to an agent's journal.
pub fn append_note(
    tx: &mut dyn StoreTx,
    agent: &str,
    text: String,
    task: Option<&Task>,
) -> Result<JournalEntry, Error> {
    if text.trim().is_empty() || text.chars().count() > 20_000 {
        return Err(Error::invalid("a journal note must be 1 to 20,000 characters, not blank"));
    }
    agent_with_memory(tx, agent)?;
    let mut entry = JournalEntry {
        seq: 0,
        agent: agent.into(),
        kind: JournalKind::Note,
        task_id: task.map(|t| t.id.clone()),
        text,
        data: serde_json::Value::Null,
        at: Timestamp::now(),
    };
    entry.seq = tx.append_journal(&entry)?;
    Ok(entry)
}

/// Records a task's end in its agent's journal (when the agent keeps a
/// memory): its outcome, diff stat, cost and the agent's last message — also
/// when the agent crashed or was killed.
pub(crate) fn record_outcome(tx: &mut dyn StoreTx, task: &Task) -> Result<(), Error> {
    if !tx.agent(&task.agent)?.is_some_and(|a| a.memory) || task.external {
        return Ok(());
    }
    let last = task.result.as_deref().or(task.reason.as_deref()).unwrap_or("(nothing)");
    let last: String = last.chars().take(600).collect();
    let stat = task.git.diff_stat.clone().unwrap_or_else(|| "no changes".into());
    let text = format!(
        "Task {} “{}” {} ({stat}; ${:.4}). Last word: {last}",
        task.id, task.title, task.status, task.usage.cost_usd
    );
    let entry = JournalEntry {
        seq: 0,
        agent: task.agent.clone(),
        kind: JournalKind::Outcome,
        task_id: Some(task.id.clone()),
        text,
        data: json!({ "status": task.status, "diff_stat": task.git.diff_stat, "cost_usd": task.usage.cost_usd }),
        at: Timestamp::now(),
    };
    tx.append_journal(&entry)?;
    Ok(())
}

/// What reaches the agent: its blocks, then its newest journal entries, within
/// [`CONTEXT_BUDGET`] characters. A block is given whole or not at all: one
/// that does not fit is named, with its size, for the agent to read with
/// `memory_view` (nothing is cut). `None` for an agent without memory.
pub fn context(r: &dyn StoreRead, agent: &AgentDef) -> Result<Option<String>, Error> {
    if !agent.memory {
        return Ok(None);
    }
    let mut text = String::from("# Your memory (kept by Baton between your tasks)\n");
    let mut left_out = Vec::new();
    for b in blocks(r, &agent.name)? {
        let ro = if b.read_only { ", read-only" } else { "" };
        let mut part = format!("\n## {} ({} of {} characters{ro})\n", b.label, b.chars(), b.limit);
        if !b.description.is_empty() {
            part.push_str(&format!("_{}_\n", b.description));
        }
        part.push_str(if b.text.is_empty() { "(empty)" } else { &b.text });
        part.push('\n');
        if text.chars().count() + part.chars().count() > CONTEXT_BUDGET {
            left_out.push(format!("{} ({} characters)", b.label, b.chars()));
        } else {
            text.push_str(&part);
        }
    }
    if !left_out.is_empty() {
        text.push_str(&format!(
            "\nNot shown, over the budget of {CONTEXT_BUDGET} characters: {}. Read them with memory_view.\n",
            left_out.join(", ")
        ));
    }
    text.push_str("\nChange a block with the memory_write tool; add to your journal with journal_append.\n");
    let journal = r.journal(&agent.name, 50)?;
    if !journal.is_empty() {
        text.push_str("\n## Your journal, newest first\n");
        for e in journal {
            let line = format!("- {} {}\n", e.at, e.text);
            if text.chars().count() + line.chars().count() > CONTEXT_BUDGET {
                break;
            }
            text.push_str(&line);
        }
    }
    Ok(Some(text))
}

/// An agent's memory as people and the agent see it.
pub fn view(r: &dyn StoreRead, agent: &str) -> Result<MemoryView, Error> {
    let def = agent_with_memory(r, agent)?;
    let text = context(r, &def)?.unwrap_or_default();
    Ok(MemoryView {
        agent: agent.into(),
        blocks: blocks(r, agent)?,
        journal: r.journal(agent, 50)?,
        context_chars: text.chars().count() as u32,
        context_budget: CONTEXT_BUDGET as u32,
    })
}

/// Who may read and write an agent's memory: a person (the admin token), or
/// a session of that agent itself. Any other caller is refused.
pub fn writer(r: &dyn StoreRead, caller: &Caller, agent: &str) -> Result<Writer, Error> {
    if caller.kind == TokenKind::Admin {
        return Ok(Writer::Person);
    }
    let Some(id) = caller.session() else {
        return Err(Error::forbidden("an agent's memory is its own: this needs the admin token or its session's"));
    };
    let session = crate::resolve::session(r, &id)?;
    if session.agent != agent {
        return Err(Error::forbidden(format!(
            "a session of agent {} may use its own memory only, not agent {agent}'s",
            session.agent
        )));
    }
    Ok(Writer::Agent(agent.into()))
}
