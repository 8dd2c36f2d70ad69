//! Chat as a seat: what a Slack or Discord user asked for, acted on once
//! through the same scheduler functions as the API, and what goes back, queued
//! in the chat outbox in the same transaction.
//!
//! - A mention (of Baton, or of an agent by name) starts a task — or, for the
//!   agent that leads the project, is its next turn — and its answer is posted
//!   in the thread. The thread is bound to the task when the first post in it
//!   is sent; a reply there resumes that task's session, and only that one.
//! - `/baton run|status|approve|merge|stop|retry` and the buttons under
//!   Baton's messages act, each answered where it was asked.
//! - Progress is one status message per thread, edited as the task moves.
//!
//! Who may do what comes from the project's `[chat.*]` roles: anyone else is
//! answered with a refusal only they see, and nothing changes.

use baton_core::api::CreateTask;
use baton_core::chat::{
    ChatAsk, ChatButton, ChatInbound, ChatPost, ChatRole, ChatRoles, ChatService, ChatThread, PostKind,
};
use baton_core::ids::TaskId;
use baton_core::model::{Project, Task};
use baton_core::status::TaskStatus;
use baton_core::time::Timestamp;
use baton_store::{StoreRead, StoreTx};

use crate::Error;
use crate::scheduler::Effects;
use crate::state::Config;
use crate::tokens::Caller;

/// How long inbound keys are kept for deduplication, and finished posts.
pub const KEEP_MS: i64 = 24 * 3600 * 1000;

/// The roles and answering agent of a project's service.
pub fn roles(project: &Project, service: ChatService) -> Option<(ChatRoles, Option<String>, String)> {
    let chat = project.settings.chat.as_ref()?;
    match service {
        ChatService::Slack => chat.slack.as_ref().map(|s| (s.roles.clone(), s.agent.clone(), s.channel.clone())),
        ChatService::Discord => chat.discord.as_ref().map(|d| (d.roles.clone(), d.agent.clone(), d.channel.clone())),
    }
}

/// The project whose `[chat.*]` channel is `channel`.
pub fn project_of_channel(r: &dyn StoreRead, service: ChatService, channel: &str) -> Result<Option<Project>, Error> {
    Ok(r.projects()?.into_iter().find(|p| roles(p, service).is_some_and(|(_, _, c)| c == channel)))
}

/// Keeps what came in, unless it came before; true when it is new.
pub fn receive(tx: &mut dyn StoreTx, inbound: &ChatInbound) -> Result<bool, Error> {
    Ok(tx.add_chat_inbound(inbound)?)
}

/// A post in the outbox, ready to queue.
pub fn post(
    inbound_or_thread: (&ChatService, &baton_core::ids::ProjectId, &str),
    thread: Option<String>,
    text: String,
) -> ChatPost {
    let (service, project, channel) = inbound_or_thread;
    let now = Timestamp::now();
    ChatPost {
        id: crate::tokens::random_id("cp-"),
        service: *service,
        project_id: project.clone(),
        channel: channel.to_owned(),
        thread,
        post: PostKind::New,
        as_agent: None,
        text,
        buttons: Vec::new(),
        bind: None,
        status_of: None,
        state: "pending".into(),
        attempts: 0,
        next_at: now,
        result: None,
        error: None,
        created_at: now,
    }
}

/// The answer to `c` that only its user sees (or, for a button or a command,
/// where it was asked).
fn refusal(c: &ChatInbound, text: String) -> ChatPost {
    let mut p = post((&c.service, &c.project_id, &c.channel), c.thread.clone(), text);
    p.post = match &c.reply_to {
        Some(to) => PostKind::Reply { to: to.clone(), ephemeral: true, replace: false },
        None => PostKind::Reply { to: format!("user:{}", c.user), ephemeral: true, replace: false },
    };
    p
}

/// Acts on one thing that came in, in one transaction: what it asked, and the
/// posts that answer it. Its outcome is written on it.
pub fn act(tx: &mut dyn StoreTx, fx: &mut Effects, mut c: ChatInbound, config: &Config) -> Result<(), Error> {
    let project = crate::resolve::project(tx, &c.project_id)?;
    let (roles, default_agent, _) = roles(&project, c.service).ok_or_else(|| Error::conflict("chat is not set up"))?;
    let role = roles.of(&c.user);
    let result = match c.ask.clone() {
        ChatAsk::Mention { text } => mention(tx, fx, &c, &project, default_agent, role, &text, config),
        ChatAsk::Reply { text } => reply(tx, fx, &c, role, &text),
        ChatAsk::Command { text } => command(tx, fx, &c, &project, default_agent, role, &text, config),
        ChatAsk::Button { action, task } => button(tx, fx, &c, role, &action, &task),
    };
    let (outcome, posts) = match result {
        Ok(done) => done,
        // The store failing is tried again; any other refusal (an unknown task,
        // a wrong state) is said to the user, and the inbound is done.
        Err(e @ (Error::Store(_) | Error::Internal { .. } | Error::Unavailable { .. })) => return Err(e),
        Err(e) => (format!("refused: {e}"), vec![refusal(&c, format!("Baton: {e}"))]),
    };
    for p in &posts {
        tx.put_chat_post(p)?;
    }
    c.state = "done".into();
    c.outcome = Some(outcome);
    tx.put_chat_inbound(&c)?;
    Ok(())
}

type Acted = Result<(String, Vec<ChatPost>), Error>;

fn needs(role: ChatRole, at_least: ChatRole, c: &ChatInbound, what: &str) -> Option<(String, Vec<ChatPost>)> {
    (role < at_least).then(|| {
        let needed = match at_least {
            ChatRole::Admin => "an admin",
            ChatRole::Operator => "an operator",
            _ => "a viewer",
        };
        (
            format!("refused: {} is not {needed}", c.user),
            vec![refusal(c, format!("Only {needed} of this project may {what}; nothing was done."))],
        )
    })
}

/// The agent a mention names first (`@baton reviewer look at …`), and the rest.
fn named_agent(r: &dyn StoreRead, text: &str) -> Result<Option<(String, String)>, Error> {
    let mut words = text.trim().splitn(2, char::is_whitespace);
    let first = words.next().unwrap_or_default().trim_start_matches('@');
    if first.is_empty() || baton_core::names::validate_simple_name("agent name", first).is_err() {
        return Ok(None);
    }
    Ok(r.agent(first)?.map(|_| (first.to_owned(), words.next().unwrap_or_default().trim().to_owned())))
}

fn person() -> Caller {
    Caller::person()
}

#[allow(clippy::too_many_arguments)]
fn mention(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    c: &ChatInbound,
    project: &Project,
    default_agent: Option<String>,
    role: ChatRole,
    text: &str,
    config: &Config,
) -> Acted {
    if let Some(refused) = needs(role, ChatRole::Operator, c, "start work") {
        return Ok(refused);
    }
    if let Some(thread) = c.thread.as_ref().and_then(|t| bound(tx, c, t).transpose()) {
        return reply_to_bound(tx, fx, c, thread?, text);
    }
    let (agent, prompt) = match named_agent(tx, text)? {
        Some((a, rest)) => (Some(a), rest),
        None => (default_agent, text.trim().to_owned()),
    };
    if prompt.is_empty() {
        return Ok(("nothing asked".into(), vec![refusal(c, "Say what to do after the mention.".into())]));
    }
    // The thread the answer goes in: the one it was said in, or one made on it
    // (Slack: the message's own thread; Discord: a thread started from it).
    let root = c.thread.clone().or_else(|| match c.service {
        ChatService::Slack => c.message.clone(),
        ChatService::Discord => c.message.as_ref().map(|m| format!("from:{m}")),
    });
    let lead = match &agent {
        Some(a) => crate::lead::acting_task(tx, &project.id, a)?,
        None => None,
    };
    let task = match lead {
        Some(lead) => {
            let note = format!("From {} in {}: {prompt}", c.user, c.service);
            crate::scheduler::send_follow_up(tx, fx, &lead, note, Some(format!("{}:{}", c.service, c.user)))?;
            crate::resolve::task(tx, &lead)?
        }
        None => start(tx, fx, project, agent, prompt, c, config)?,
    };
    let mut p = post((&c.service, &c.project_id, &c.channel), root, status_text(&task));
    p.as_agent = Some(task.agent.clone());
    p.bind = Some(task.id.clone());
    p.status_of = Some(task.id.clone());
    Ok((format!("task {}", task.id), vec![p]))
}

fn start(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    project: &Project,
    agent: Option<String>,
    prompt: String,
    c: &ChatInbound,
    config: &Config,
) -> Result<Task, Error> {
    let req = CreateTask {
        project: Some(project.id.to_string()),
        prompt: format!("{prompt}\n\n(Asked by {} in {}.)", c.user, c.service),
        agent,
        ..CreateTask::default()
    };
    crate::scheduler::create_task(tx, fx, &person(), req, config)
}

/// The binding of the thread `thread` of `c`'s channel, if Baton follows it.
fn bound(r: &dyn StoreRead, c: &ChatInbound, thread: &str) -> Result<Option<ChatThread>, Error> {
    Ok(r.chat_thread(&ChatThread::key_of(c.service, &c.channel, thread))?)
}

fn reply(tx: &mut dyn StoreTx, fx: &mut Effects, c: &ChatInbound, role: ChatRole, text: &str) -> Acted {
    let Some(thread) = c.thread.as_deref().map(|t| bound(tx, c, t)).transpose()?.flatten() else {
        return Ok(("not a thread Baton follows".into(), Vec::new()));
    };
    if let Some(refused) = needs(role, ChatRole::Operator, c, "talk to an agent") {
        return Ok(refused);
    }
    reply_to_bound(tx, fx, c, thread, text)
}

/// A reply in a bound thread: the next turn of that task's session, and only
/// that one (queued while it works).
fn reply_to_bound(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    c: &ChatInbound,
    mut thread: ChatThread,
    text: &str,
) -> Acted {
    let m = crate::scheduler::send_follow_up(
        tx,
        fx,
        &thread.task_id,
        text.to_owned(),
        Some(format!("{}:{}", c.service, c.user)),
    )?;
    thread.shown = None;
    tx.put_chat_thread(&thread, true)?;
    Ok((format!("message {} to task {} ({:?})", m.id, thread.task_id, m.state), Vec::new()))
}

/// The one line a thread's status message shows.
pub fn status_text(t: &Task) -> String {
    let mark = match t.status {
        TaskStatus::Succeeded => "✅",
        TaskStatus::Failed | TaskStatus::Blocked => "❌",
        TaskStatus::Cancelled => "⏹",
        TaskStatus::AwaitingApproval => "✋",
        TaskStatus::Running | TaskStatus::Checking | TaskStatus::Reviewing => "⏳",
        _ => "🕒",
    };
    let why = t.reason.as_deref().map(|r| format!(" — {}", baton_core::text::tail(r, 200))).unwrap_or_default();
    format!("{mark} {} · {} · {} ({}){why}", t.title, t.status, t.agent, t.id)
}

/// The buttons a task's message offers in its state.
pub fn buttons(t: &Task) -> Vec<ChatButton> {
    let b =
        |action: &str, label: &str| ChatButton { action: action.into(), target: t.id.to_string(), label: label.into() };
    match t.status {
        TaskStatus::AwaitingApproval => vec![b("approve", "Approve"), b("stop", "Stop"), b("view", "View")],
        TaskStatus::Succeeded if t.git.merge == baton_core::model::MergeState::None => {
            vec![b("merge", "Merge"), b("view", "View")]
        }
        TaskStatus::Failed | TaskStatus::Cancelled | TaskStatus::Blocked => {
            vec![b("retry", "Retry"), b("view", "View")]
        }
        s if !s.is_finished() => vec![b("stop", "Stop"), b("view", "View")],
        _ => vec![b("view", "View")],
    }
}

const USAGE: &str =
    "Usage: /baton run [--agent A] PROMPT · /baton status [TASK] · /baton approve|merge|stop|retry TASK";

#[allow(clippy::too_many_arguments)]
fn command(
    tx: &mut dyn StoreTx,
    fx: &mut Effects,
    c: &ChatInbound,
    project: &Project,
    default_agent: Option<String>,
    role: ChatRole,
    text: &str,
    config: &Config,
) -> Acted {
    let mut words = text.split_whitespace();
    let verb = words.next().unwrap_or_default();
    let rest: Vec<&str> = words.collect();
    match verb {
        "run" => {
            if let Some(refused) = needs(role, ChatRole::Operator, c, "start work") {
                return Ok(refused);
            }
            let (agent, prompt) = match rest.as_slice() {
                ["--agent", a, prompt @ ..] => (Some((*a).to_owned()), prompt.join(" ")),
                prompt => (default_agent, prompt.join(" ")),
            };
            if prompt.trim().is_empty() {
                return Ok(("usage".into(), vec![refusal(c, USAGE.into())]));
            }
            let task = start(tx, fx, project, agent, prompt, c, config)?;
            let mut p = post((&c.service, &c.project_id, &c.channel), None, status_text(&task));
            p.as_agent = Some(task.agent.clone());
            p.bind = Some(task.id.clone());
            p.status_of = Some(task.id.clone());
            p.buttons = buttons(&task);
            Ok((format!("task {}", task.id), vec![p]))
        }
        "status" => {
            if let Some(refused) = needs(role, ChatRole::Viewer, c, "read status") {
                return Ok(refused);
            }
            let text = match rest.first() {
                Some(id) => status_text(&crate::resolve::task_ref(tx, id)?),
                None => project_status(tx, project)?,
            };
            Ok(("status".into(), vec![refusal(c, text)]))
        }
        "approve" | "merge" | "stop" | "retry" => match rest.first() {
            Some(task) => button(tx, fx, c, role, verb, task),
            None => Ok(("usage".into(), vec![refusal(c, USAGE.into())])),
        },
        _ => Ok(("usage".into(), vec![refusal(c, USAGE.into())])),
    }
}

fn project_status(r: &dyn StoreRead, project: &Project) -> Result<String, Error> {
    let open = r.tasks(&baton_store::TaskFilter {
        project: Some(project.id.clone()),
        statuses: TaskStatus::ALL.iter().copied().filter(|s| !s.is_finished()).collect(),
        limit: Some(20),
        ..Default::default()
    })?;
    if open.is_empty() {
        return Ok(format!("Nothing open in {}.", project.name));
    }
    Ok(open.iter().map(status_text).collect::<Vec<_>>().join("\n"))
}

/// A button (or its command): the same scheduler function as the API, then
/// the message it was on edited to say who did what.
fn button(tx: &mut dyn StoreTx, fx: &mut Effects, c: &ChatInbound, role: ChatRole, action: &str, task: &str) -> Acted {
    if matches!(action, "allow" | "deny") {
        return permission_button(tx, c, role, action, task);
    }
    let needed = match action {
        "merge" => ChatRole::Admin,
        "view" => ChatRole::Viewer,
        _ => ChatRole::Operator,
    };
    if let Some(refused) = needs(role, needed, c, &format!("{action} tasks")) {
        return Ok(refused);
    }
    let id: TaskId = crate::resolve::task_ref(tx, task)?.id;
    let done = match action {
        "approve" => crate::scheduler::approve_task(tx, fx, &id)?,
        "stop" => crate::scheduler::stop_task(tx, fx, &id, Some(format!("stopped by {} in {}", c.user, c.service)))?,
        "retry" => crate::scheduler::retry_task(tx, fx, &id)?,
        "merge" => {
            crate::review::queue_merge(tx, fx, &id, None, false)?;
            crate::resolve::task(tx, &id)?
        }
        "view" => crate::resolve::task(tx, &id)?,
        other => return Err(Error::invalid(format!("unknown action {other:?}"))),
    };
    let who = match c.service {
        ChatService::Slack => format!("<@{}>", c.user),
        ChatService::Discord => format!("<@{}>", c.user),
    };
    let verb = match action {
        "approve" => "approved",
        "stop" => "stopped",
        "retry" => "retried",
        "merge" => "queued to merge",
        _ => "looked at",
    };
    let mut p = post(
        (&c.service, &c.project_id, &c.channel),
        c.thread.clone(),
        format!("{}\n{verb} by {who}", status_text(&done)),
    );
    if let Some(to) = &c.reply_to {
        p.post = PostKind::Reply {
            to: to.clone(),
            ephemeral: action == "view",
            replace: matches!(c.ask, ChatAsk::Button { .. }),
        };
    }
    p.buttons = if action == "view" { Vec::new() } else { buttons(&done) };
    Ok((format!("{action} {id}"), vec![p]))
}

/// A post was sent: its thread is bound to its task (the first post makes the
/// binding), and a status post becomes the thread's status message.
pub fn sent(tx: &mut dyn StoreTx, p: &ChatPost, made: Option<String>, thread: Option<String>) -> Result<(), Error> {
    let mut done = p.clone();
    done.state = "sent".into();
    done.result = made.clone();
    done.error = None;
    tx.put_chat_post(&done)?;
    let Some(task) = p.bind.as_ref().or(p.status_of.as_ref()) else { return Ok(()) };
    let Some(thread) = thread.or_else(|| p.thread.clone()).or_else(|| made.clone()) else { return Ok(()) };
    let key = ChatThread::key_of(p.service, &p.channel, &thread);
    let t = crate::resolve::task(tx, task)?;
    let mut binding = tx.chat_thread(&key)?.unwrap_or(ChatThread {
        key,
        service: p.service,
        project_id: p.project_id.clone(),
        channel: p.channel.clone(),
        thread,
        task_id: task.clone(),
        session_id: t.session_id.clone(),
        status_message: None,
        shown: None,
        answered: 0,
        created_at: Timestamp::now(),
    });
    if p.status_of.is_some() {
        binding.status_message = made;
        binding.shown = Some(status_text(&t));
    }
    tx.put_chat_thread(&binding, true).map_err(Error::from)
}

/// What a bound thread should be told now: its status message edited when
/// the task moved, and each run's answer once. The thread closes when its
/// task has settled and everything is said.
pub fn follow(tx: &mut dyn StoreTx, mut thread: ChatThread) -> Result<Vec<ChatPost>, Error> {
    let Some(task) = tx.task(&thread.task_id)? else {
        tx.put_chat_thread(&thread, false)?;
        return Ok(Vec::new());
    };
    let mut posts = Vec::new();
    let base = (&thread.service, &thread.project_id, thread.channel.as_str());
    let line = status_text(&task);
    if thread.shown.as_deref() != Some(line.as_str())
        && let Some(message) = &thread.status_message
    {
        let mut p = post(base, Some(thread.thread.clone()), line.clone());
        p.post = PostKind::Edit { message: message.clone() };
        p.as_agent = Some(task.agent.clone());
        p.buttons = buttons(&task);
        posts.push(p);
        thread.shown = Some(line);
    }
    let runs = match &task.session_id {
        Some(s) => tx.runs_of_session(s)?,
        None => Vec::new(),
    };
    let ended: Vec<_> = runs.iter().filter(|r| r.status.is_finished()).collect();
    for run in ended.iter().skip(thread.answered as usize) {
        let text = run.result.clone().or_else(|| run.error.clone()).unwrap_or_else(|| "(no answer)".into());
        let mut p = post(base, Some(thread.thread.clone()), text);
        p.as_agent = Some(task.agent.clone());
        posts.push(p);
    }
    thread.answered = ended.len() as u32;
    let open = !(task.status.is_settled() && runs.iter().all(|r| r.status.is_finished()));
    tx.put_chat_thread(&thread, open)?;
    Ok(posts)
}

/// How long an agent's permission request waits for a person by default.
pub const PERMISSION_TIMEOUT_S: u64 = 60;

/// A Claude Code agent asks for a permission it lacks: the request is kept,
/// posted with Allow / Deny in every chat thread bound to its task, and noted
/// on the task's timeline.
pub fn ask_permission(
    tx: &mut dyn StoreTx,
    session: &baton_core::ids::SessionId,
    tool: String,
    input: serde_json::Value,
) -> Result<baton_core::chat::PermissionRequest, Error> {
    let s = crate::resolve::session(tx, session)?;
    let def = tx.agent(&s.agent)?.ok_or_else(|| Error::not_found("agent", &s.agent))?;
    let now = Timestamp::now();
    let timeout = def.permission_timeout_s.unwrap_or(PERMISSION_TIMEOUT_S).clamp(1, 3600);
    let req = baton_core::chat::PermissionRequest {
        id: crate::tokens::random_id("perm-"),
        task_id: s.task_id.clone(),
        session_id: s.id.clone(),
        agent: s.agent.clone(),
        tool,
        input,
        state: "pending".into(),
        by: None,
        created_at: now,
        deadline: now.plus_millis(timeout as i64 * 1000),
        policy: def.permission_policy.clone().unwrap_or_else(|| "deny".into()),
    };
    tx.put_permission(&req)?;
    let input = req.input.to_string();
    let what = baton_core::text::tail(&input, 500);
    let line =
        format!("{} asks to use {}: `{what}` (id {}; {} s, then {})", req.agent, req.tool, req.id, timeout, req.policy);
    // The threads bound to the task, and those about to be (their first post
    // still waiting in the outbox).
    let mut threads: Vec<(ChatService, baton_core::ids::ProjectId, String, String)> = tx
        .chat_threads_of_task(&req.task_id)?
        .into_iter()
        .map(|t| (t.service, t.project_id, t.channel, t.thread))
        .collect();
    for p in tx.chat_posts_pending(500)? {
        if p.bind.as_ref() == Some(&req.task_id)
            && let Some(t) = p.thread.filter(|t| !t.starts_with("from:"))
            && !threads.iter().any(|(s, _, c, th)| *s == p.service && *c == p.channel && *th == t)
        {
            threads.push((p.service, p.project_id, p.channel, t));
        }
    }
    for (service, project, channel, thread) in threads {
        let mut p = post((&service, &project, &channel), Some(thread), line.clone());
        p.as_agent = Some(req.agent.clone());
        p.buttons = vec![
            ChatButton { action: "allow".into(), target: req.id.clone(), label: "Allow".into() },
            ChatButton { action: "deny".into(), target: req.id.clone(), label: "Deny".into() },
        ];
        tx.put_chat_post(&p)?;
    }
    note(tx, &req, format!("asked for permission: {line}"))?;
    Ok(req)
}

fn note(tx: &mut dyn StoreTx, req: &baton_core::chat::PermissionRequest, text: String) -> Result<(), Error> {
    tx.append_event(Some(&req.session_id), None, Some(&req.task_id), baton_core::event::NewEvent::log(text))?;
    Ok(())
}

/// A person's answer (the first one counts).
pub fn answer_permission(
    tx: &mut dyn StoreTx,
    id: &str,
    allow: bool,
    by: String,
) -> Result<baton_core::chat::PermissionRequest, Error> {
    let mut req = tx.permission(id)?.ok_or_else(|| Error::not_found("permission request", id))?;
    if req.state != "pending" {
        return Err(Error::conflict(format!(
            "permission request {id} was {} by {} already",
            req.state,
            req.by.as_deref().unwrap_or("?")
        )));
    }
    req.state = if allow { "allowed" } else { "denied" }.into();
    req.by = Some(by.clone());
    tx.put_permission(&req)?;
    note(tx, &req, format!("permission for {} {} by {by}", req.tool, req.state))?;
    Ok(req)
}

/// The request as it stands, its policy applied once its deadline passed.
pub fn decided_permission(tx: &mut dyn StoreTx, id: &str) -> Result<baton_core::chat::PermissionRequest, Error> {
    let mut req = tx.permission(id)?.ok_or_else(|| Error::not_found("permission request", id))?;
    if req.state == "pending" && Timestamp::now() >= req.deadline {
        req.state = if req.policy == "allow" { "allowed" } else { "denied" }.into();
        req.by = Some("policy".into());
        tx.put_permission(&req)?;
        note(tx, &req, format!("no answer in time: the policy {} the permission for {}", req.state, req.tool))?;
    }
    Ok(req)
}

fn permission_button(tx: &mut dyn StoreTx, c: &ChatInbound, role: ChatRole, action: &str, id: &str) -> Acted {
    if let Some(refused) = needs(role, ChatRole::Operator, c, "answer an agent's permission request") {
        return Ok(refused);
    }
    let req = answer_permission(tx, id, action == "allow", format!("{}:{}", c.service, c.user))?;
    let text = format!(
        "{} may {}use {}: {} by <@{}>",
        req.agent,
        if action == "allow" { "" } else { "not " },
        req.tool,
        req.state,
        c.user
    );
    let mut p = post((&c.service, &c.project_id, &c.channel), c.thread.clone(), text);
    if let Some(to) = &c.reply_to {
        p.post = PostKind::Reply { to: to.clone(), ephemeral: false, replace: true };
    }
    Ok((format!("{action} {id}"), vec![p]))
}
