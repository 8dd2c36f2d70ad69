//! `baton memory`, `baton send`, `baton inbox`, and the `baton memory-context`
//! hook that gives Claude Code its memory at every SessionStart.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use baton_client::Client;
use baton_core::memory::{
    AgentMessage, AgentStatus, JournalEntry, JournalNote, LeadView, MemoryBlock, MemoryContext, MemoryView,
    RevertBlock, SendToAgent, StartLead, WriteBlock, WriteMode,
};
use serde_json::json;

use crate::cli::{ChatCommand, LeadCommand, MemoryCommand, SendArgs};
use crate::context;
use crate::error::CliError;
use crate::output::{ago, cut, print_json, table};

pub async fn memory(client: &Client, command: MemoryCommand) -> Result<u8, CliError> {
    match command {
        MemoryCommand::Show { agent, context: true, json } => {
            let ctx: MemoryContext = client.get(&format!("/api/agents/{agent}/memory/context")).await?;
            if json { print_json(&ctx) } else { print!("{}", ctx.text) }
        }
        MemoryCommand::Show { agent, context: false, json } => {
            let view: MemoryView = client.get(&format!("/api/agents/{agent}/memory")).await?;
            if json { print_json(&view) } else { show(&view) }
        }
        MemoryCommand::Set { agent, label, text, append, limit, read_only, share_with } => {
            let text = match text.as_deref() {
                None | Some("-") => {
                    let mut t = String::new();
                    std::io::stdin().read_to_string(&mut t).map_err(|e| CliError::io("cannot read stdin", e))?;
                    t
                }
                Some(t) => t.to_owned(),
            };
            let mode = if append { WriteMode::Append } else { WriteMode::Replace };
            let w = WriteBlock { text, mode, limit, read_only, description: None, share_with };
            let b: MemoryBlock = client.put(&format!("/api/agents/{agent}/memory/{label}"), &w).await?;
            eprintln!("{agent}'s {} is now version {} ({} of {} characters)", b.label, b.version, b.chars(), b.limit);
        }
        MemoryCommand::Revert { agent, label, version } => {
            let path = format!("/api/agents/{agent}/memory/{label}/revert");
            let b: MemoryBlock = client.post(&path, &RevertBlock { version }).await?;
            eprintln!("{agent}'s {label} is back to version {version}'s text, as version {}", b.version);
        }
        MemoryCommand::Versions { agent, label, json } => {
            let versions: Vec<MemoryBlock> = client.get(&format!("/api/agents/{agent}/memory/{label}")).await?;
            if json {
                print_json(&versions);
            } else {
                let rows: Vec<Vec<String>> = versions
                    .iter()
                    .map(|b| {
                        let by = b.written_by.clone().unwrap_or_default();
                        vec![
                            b.version.to_string(),
                            format!("{}/{}", b.chars(), b.limit),
                            by,
                            ago(b.updated_at),
                            cut(&b.text, 50),
                        ]
                    })
                    .collect();
                table(&["VERSION", "SIZE", "BY", "WHEN", "TEXT"], &rows);
            }
        }
        MemoryCommand::Note { agent, text } => {
            let e: JournalEntry = client.post(&format!("/api/agents/{agent}/journal"), &JournalNote { text }).await?;
            eprintln!("noted in {agent}'s journal (entry {})", e.seq);
        }
    }
    Ok(0)
}

fn show(view: &MemoryView) {
    let rows: Vec<Vec<String>> = view
        .blocks
        .iter()
        .map(|b| {
            let mut flags = Vec::new();
            if b.read_only {
                flags.push("read-only".to_owned());
            }
            if !b.agents.is_empty() {
                flags.push(format!("shared with {}", b.agents.join(",")));
            }
            vec![
                b.label.clone(),
                format!("{}/{}", b.chars(), b.limit),
                b.version.to_string(),
                flags.join(" "),
                cut(&b.text.replace('\n', " "), 60),
            ]
        })
        .collect();
    table(&["BLOCK", "SIZE", "VERSION", "", "TEXT"], &rows);
    println!("\nreaches the agent: {} of {} characters", view.context_chars, view.context_budget);
    if !view.journal.is_empty() {
        println!("\njournal, newest first:");
        for e in view.journal.iter().take(10) {
            println!("  {} {}", ago(e.at), cut(&e.text.replace('\n', " "), 100));
        }
    }
}

pub async fn send(client: &Client, args: SendArgs) -> Result<u8, CliError> {
    let key = args.key.unwrap_or_else(|| format!("cli-{}", baton_core::ids::TaskId::generate().short()));
    let req = SendToAgent { text: args.message, project: args.project };
    let m: AgentMessage = client.post_once(&format!("/api/agents/{}/messages", args.agent), &key, &req).await?;
    if args.json {
        print_json(&m);
    } else {
        let task = m.task_id.as_ref().map(|t| format!(" (task {t})")).unwrap_or_default();
        println!("{} {}{task}", m.id, json!(m.state).as_str().unwrap_or_default());
    }
    Ok(0)
}

pub async fn inbox(client: &Client, agent: &str, json: bool) -> Result<u8, CliError> {
    let messages: Vec<AgentMessage> = client.get(&format!("/api/agents/{agent}/messages")).await?;
    if json {
        print_json(&messages);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = messages
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.from.clone(),
                json!(m.state).as_str().unwrap_or_default().to_owned(),
                m.task_id.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                ago(m.created_at),
                cut(&m.text.replace('\n', " "), 50),
            ]
        })
        .collect();
    table(&["ID", "FROM", "STATE", "TASK", "SENT", "TEXT"], &rows);
    Ok(0)
}

/// How long the hook waits for the coordinator before it falls back to the
/// memory as it was when the run started.
const PATIENCE: Duration = Duration::from_secs(3);

/// Claude Code's SessionStart hook (at start, on resume, after a compaction):
/// the agent's memory as it is now, as added context. Never fails Claude Code:
/// without the coordinator it gives the memory the run started with.
pub async fn hook_context(url: Option<&str>, token: Option<&str>, fallback: Option<PathBuf>) -> Result<u8, CliError> {
    let mut input = String::new();
    let _ = std::io::stdin().take(1 << 20).read_to_string(&mut input);
    let hook: serde_json::Value = serde_json::from_str(&input).unwrap_or_default();
    let source = hook["source"].as_str().unwrap_or("startup").to_owned();
    let fresh = match (std::env::var("BATON_AGENT"), context::client(url, token)) {
        (Ok(agent), Ok(client)) => {
            let path = format!("/api/agents/{agent}/memory/context?source={}", baton_client::encode(&source));
            match tokio::time::timeout(PATIENCE, client.get::<MemoryContext>(&path)).await {
                Ok(Ok(ctx)) => Some(ctx.text),
                Ok(Err(e)) => {
                    eprintln!("baton memory-context: {e}");
                    None
                }
                Err(_) => None,
            }
        }
        _ => None,
    };
    let text = fresh.or_else(|| fallback.and_then(|f| std::fs::read_to_string(f).ok())).unwrap_or_default();
    let answer = json!({ "hookSpecificOutput": { "hookEventName": "SessionStart", "additionalContext": text } });
    println!("{answer}");
    Ok(0)
}

pub async fn lead(client: &Client, command: LeadCommand) -> Result<u8, CliError> {
    let project = |p: Option<String>| async move {
        match p {
            Some(p) => Ok::<_, CliError>(p),
            None => super::run::default_project(client).await,
        }
    };
    let (view, json): (LeadView, bool) = match command {
        LeadCommand::Start { project: p, agent } => {
            let path = format!("/api/projects/{}/lead/start", project(p).await?);
            (client.post(&path, &StartLead { agent }).await?, false)
        }
        LeadCommand::Restart { project: p, agent } => {
            let id = project(p).await?;
            let stopped: LeadView = client.post(&format!("/api/projects/{id}/lead/stop"), &json!({})).await?;
            let agent = agent.or(Some(stopped.record.agent));
            (client.post(&format!("/api/projects/{id}/lead/start"), &StartLead { agent }).await?, false)
        }
        LeadCommand::Stop { project: p } => {
            let path = format!("/api/projects/{}/lead/stop", project(p).await?);
            (client.post(&path, &json!({})).await?, false)
        }
        LeadCommand::Status { project: p, json } => {
            (client.get(&format!("/api/projects/{}/lead", project(p).await?)).await?, json)
        }
    };
    if json {
        print_json(&view);
        return Ok(0);
    }
    let r = &view.record;
    println!("project   {}", view.project);
    println!("agent     {}", r.agent);
    println!("state     {}{}", view.state, view.pid.map(|p| format!(" (pid {p})")).unwrap_or_default());
    if let (Some(task), Some(session)) = (&r.task_id, &r.session_id) {
        println!("task      {task} (session {session}, fence {})", r.fence);
    }
    println!("deadline  {}", r.deadline);
    if r.restarts > 0 {
        println!("restarts  {}", r.restarts);
    }
    if let Some(note) = &r.note {
        println!("last      {note}");
    }
    Ok(0)
}

pub async fn cluster(client: &Client, json: bool) -> Result<u8, CliError> {
    let agents: Vec<AgentStatus> = client.get("/api/agents/status").await?;
    if json {
        print_json(&agents);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            let leads: Vec<String> = a.leads.iter().map(|l| format!("{} ({})", l.project, l.state)).collect();
            vec![
                a.agent.clone(),
                a.state.clone(),
                format!("{}/{}", a.working, a.queued_tasks),
                a.queued_messages.to_string(),
                if a.memory { format!("{}/{}", a.memory_chars, a.memory_limit) } else { "-".into() },
                leads.join(", "),
                a.last_activity.map(ago).unwrap_or_else(|| "-".into()),
            ]
        })
        .collect();
    table(&["AGENT", "STATE", "WORKING/QUEUED", "INBOX", "MEMORY", "LEADS", "LAST ACTIVITY"], &rows);
    Ok(0)
}

pub async fn chat(client: &Client, command: ChatCommand) -> Result<u8, CliError> {
    match command {
        ChatCommand::Test { project } => {
            let project = match project {
                Some(p) => p,
                None => super::run::default_project(client).await?,
            };
            let results: Vec<serde_json::Value> = client.post("/api/chat/test", &json!({ "project": project })).await?;
            let mut failed = false;
            for r in &results {
                let (service, channel) = (r["service"].as_str().unwrap_or("?"), r["channel"].as_str().unwrap_or("?"));
                match r["sent"].as_bool() {
                    Some(true) => println!("ok    {service} {channel}: the test message was posted"),
                    _ => {
                        failed = true;
                        println!("FAIL  {service} {channel}: {}", r["error"].as_str().unwrap_or("not posted"));
                    }
                }
            }
            Ok(if failed { 1 } else { 0 })
        }
        ChatCommand::Status(args) => {
            let status: Vec<serde_json::Value> = client.get("/api/chat/status").await?;
            if args.json {
                print_json(&status);
            } else {
                for s in &status {
                    let state = s["stopped"].as_str().map_or_else(|| "posting".to_owned(), |w| format!("stopped: {w}"));
                    let conn = match s["connected"].as_bool() {
                        Some(true) => ", connected",
                        Some(false) => ", not connected",
                        None => "",
                    };
                    println!(
                        "{} {}: {state}{conn}",
                        s["project"].as_str().unwrap_or("?"),
                        s["service"].as_str().unwrap_or("?")
                    );
                }
            }
            Ok(0)
        }
    }
}
