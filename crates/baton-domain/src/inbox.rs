//! An agent's inbox (seed 003's delegated messages): messages sent to an
//! agent's address by people or by other agents, each moving through queued →
//! delivered → done, or refused.
//!
//! Who may send to whom is the authority table: an agent may message the
//! agents its definition's `messages_to` or `delegates_to` names. Only a
//! sender with authority over the agent (a person, or an agent that may
//! delegate to it) wakes it: the message becomes a task of its own, taken
//! before the agent's queued tasks, whose end goes back to the sender as a
//! callback. Any other message waits in the inbox and is handed to the agent
//! with its next task.

use baton_core::agent::AgentDef;
use baton_core::api::CreateTask;
use baton_core::ids::TaskId;
use baton_core::memory::{AgentMessage, MessageState, SendToAgent};
use baton_core::model::{Session, Task, TokenKind};
use baton_core::names::validate_simple_name;
use baton_core::time::Timestamp;
use baton_store::{StoreRead, StoreTx};

use crate::Error;
use crate::resolve;
use crate::scheduler::Effects;
use crate::state::Config;
use crate::tokens::Caller;

/// The longest message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 100_000;

/// How many messages may wait in one inbox.
pub const MAX_QUEUED: usize = 200;

/// Who sends: a person, or an agent's session.
struct Sender {
    name: String,
    session: Option<Session>,
    /// Whether it may wake the agent (a person, or an agent that may delegate to it).
    wakes: bool,
}

fn sender(r: &dyn StoreRead, caller: &Caller, to: &AgentDef) -> Result<Sender, Error> {
    if caller.kind == TokenKind::Admin {
        return Ok(Sender { name: "admin".into(), session: None, wakes: true });
    }
    let Some(id) = caller.session() else {
        return Err(Error::forbidden("messages come from people (the admin token) or agents (a session token)"));
    };
    let session = resolve::session(r, &id)?;
    let def = r.agent(&session.agent)?.ok_or_else(|| Error::not_found("agent", &session.agent))?;
    let named = |list: &[String]| list.iter().any(|n| n == &to.name || n == "*");
    let wakes = named(&def.delegates_to);
    if !wakes && !named(&def.messages_to) {
        return Err(Error::forbidden(format!(
            "agent {} may not message agent {} (add it to {}'s `messages_to` or `delegates_to`)",
            def.name, to.name, def.name
        )));
    }
    Ok(Sender { name: def.name, session: Some(session), wakes })
}

/// Sends a message to an agent. It wakes the agent when the sender has
/// authority over it, and waits in its inbox otherwise; a sender without any
/// authority is refused and nothing is kept.
pub fn send(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    to: &str,
    req: SendToAgent,
    config: &Config,
) -> Result<AgentMessage, Error> {
    validate_simple_name("agent name", to)?;
    if req.text.trim().is_empty() || req.text.chars().count() > MAX_MESSAGE_CHARS {
        return Err(Error::invalid(format!("a message must be 1 to {MAX_MESSAGE_CHARS} characters, not blank")));
    }
    let target = tx.agent(to)?.ok_or_else(|| Error::not_found("agent", to))?;
    let from = sender(tx, caller, &target)?;
    if tx.messages(to, &[MessageState::Queued], MAX_QUEUED as u32 + 1)?.len() >= MAX_QUEUED {
        return Err(Error::conflict(format!("agent {to} has {MAX_QUEUED} messages waiting already")));
    }
    let project = resolve::request_project(tx, req.project.as_deref(), from.session.as_ref().map(|s| &s.project_id))?;
    let now = Timestamp::now();
    let mut message = AgentMessage {
        id: crate::tokens::random_id("msg-"),
        to: to.into(),
        from: from.name.clone(),
        from_session: from.session.as_ref().map(|s| s.id.clone()),
        text: req.text,
        state: MessageState::Queued,
        task_id: None,
        reason: None,
        created_at: now,
        updated_at: now,
    };
    if let Some(lead) = crate::lead::acting_task(tx, &project.id, to)? {
        // The project's lead lives in one conversation: the message is its next turn.
        let note = format!("Message {} from {}:\n\n{}", message.id, message.from, message.text);
        crate::scheduler::send_follow_up(tx, fx, &lead, note, Some(message.from.clone()))?;
        message.state = MessageState::Delivered;
        message.task_id = Some(lead);
    } else if from.wakes {
        let task = wake(tx, fx, caller, &message, &target, &project.name, config)?;
        message.state = MessageState::Delivered;
        message.task_id = Some(task);
    }
    tx.put_message(&message)?;
    Ok(message)
}

/// A task of its own for the message, at the head of the agent's queue; its
/// end goes back to the sending session as a callback.
fn wake(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    caller: &Caller,
    message: &AgentMessage,
    target: &AgentDef,
    project: &str,
    config: &Config,
) -> Result<TaskId, Error> {
    let req = CreateTask {
        project: Some(project.to_owned()),
        prompt: format!(
            "A message in your inbox, from {} ({}):\n\n{}\n\nAct on it; {}",
            message.from,
            message.id,
            message.text,
            match message.from_session {
                Some(_) => format!("{} hears how your turn ended.", message.from),
                None => "your last answer is kept with the message.".to_owned(),
            }
        ),
        title: Some(format!("Message from {}", message.from)),
        agent: Some(target.name.clone()),
        callback: message.from_session.is_some(),
        ..CreateTask::default()
    };
    let mut new = crate::scheduler::tasks::new_task(tx, caller, req, config)?;
    new.asked.message = Some(message.id.clone());
    let task = crate::scheduler::tasks::insert(tx, fx, new, TaskId::generate())?;
    Ok(task.id)
}

/// The messages waiting for an agent that its next task takes (marked
/// delivered to it), and those already delivered to this very task (a start
/// made again), as the text that goes before its prompt.
pub(crate) fn hand_over(tx: &mut dyn StoreTx, task: &Task) -> Result<Option<String>, Error> {
    if task.message.is_some() || task.external {
        return Ok(None);
    }
    let mut taken = Vec::new();
    for mut m in tx.messages(&task.agent, &[MessageState::Queued, MessageState::Delivered], MAX_QUEUED as u32 * 2)? {
        match m.state {
            MessageState::Queued => {
                m.state = MessageState::Delivered;
                m.task_id = Some(task.id.clone());
                m.updated_at = Timestamp::now();
                tx.put_message(&m)?;
                taken.push(m);
            }
            _ if m.task_id.as_ref() == Some(&task.id) => taken.push(m),
            _ => {}
        }
    }
    if taken.is_empty() {
        return Ok(None);
    }
    let mut text = String::from("Messages in your inbox, oldest first:\n");
    for m in &taken {
        text.push_str(&format!("\n- From {} ({}): {}\n", m.from, m.id, m.text));
    }
    text.push_str("\n---\n\n");
    Ok(Some(text))
}

/// A task ended: the messages it took are done.
pub(crate) fn settle(tx: &mut dyn StoreTx, task: &Task) -> Result<(), Error> {
    let ids: Vec<String> = match &task.message {
        Some(id) => vec![id.clone()],
        None => tx
            .messages(&task.agent, &[MessageState::Delivered], MAX_QUEUED as u32 * 2)?
            .into_iter()
            .filter(|m| m.task_id.as_ref() == Some(&task.id))
            .map(|m| m.id)
            .collect(),
    };
    for id in ids {
        if let Some(mut m) = tx.message(&id)?
            && m.state != MessageState::Done
        {
            m.state = MessageState::Done;
            let answer: String = task.result.as_deref().unwrap_or_default().chars().take(2_000).collect();
            m.reason = Some(match answer.is_empty() {
                true => format!("task {} {}", task.id, task.status),
                false => format!("task {} {}: {answer}", task.id, task.status),
            });
            m.updated_at = Timestamp::now();
            tx.put_message(&m)?;
        }
    }
    Ok(())
}
