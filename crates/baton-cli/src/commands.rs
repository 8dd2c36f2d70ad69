//! One module per command; this file only routes.

mod agents;
mod docs;
mod doctor;
mod follow;
mod hook;
mod launcher;
mod memory;
mod plans;
mod projects;
mod review;
mod run;
mod schedules;
mod tasks;
mod tokens;
mod up;
mod webhooks;

use crate::cli::{Cli, Command};
use crate::context;
use crate::error::CliError;

/// Runs a command; the process exit code.
pub async fn dispatch(cli: Cli) -> Result<u8, CliError> {
    let urls = (!cli.url.is_empty()).then(|| cli.url.join(","));
    let (url, token) = (urls.as_deref(), cli.token.as_deref());
    match cli.command {
        Command::Up(args) => up::up(args).await,
        Command::Doctor(args) => doctor::doctor(args).await,
        Command::Launcher(args) if args.action.is_none() => launcher::launcher(url, token, args).await,
        Command::Supervise { .. } => Err(CliError::Usage("`baton supervise` is started by launchers")),
        Command::AcpClient(args) => agents::acp_client(args).await,
        Command::Hook(args) => hook::hook(url, token, args).await,
        Command::Backup(args) => doctor::backup(args),
        Command::Restore { file, data_dir, spools_from } => doctor::restore(&file, &data_dir, spools_from.as_deref()),
        Command::MemoryContext { fallback } => memory::hook_context(url, token, fallback).await,
        command => {
            let client = context::client(url, token)?;
            match command {
                Command::Run(args) => run::run(&client, args).await,
                Command::Doc(command) => docs::doc(&client, command).await,
                Command::Dashboard => {
                    let link: serde_json::Value = client.post("/api/login-links", &serde_json::json!({})).await?;
                    let url = link["url"]
                        .as_str()
                        .ok_or(CliError::Unexpected { what: "an answer with no login link", source: None })?;
                    println!("{url}");
                    Ok(0)
                }
                Command::Mcp => {
                    baton_mcp::serve_stdio(client).await.map_err(CliError::Mcp)?;
                    Ok(0)
                }
                Command::Ps(args) => tasks::ps(&client, args).await,
                Command::Show(args) => tasks::show(&client, args).await,
                Command::Logs(args) => tasks::logs(&client, args).await,
                Command::Result(args) => tasks::result(&client, args).await,
                Command::Stop(args) => tasks::stop(&client, args).await,
                Command::Resume(args) => tasks::resume(&client, args).await,
                Command::Retry(args) => tasks::retry(&client, args).await,
                Command::Approve(args) => tasks::approve(&client, args).await,
                Command::Agents(args) => match args.action {
                    Some(crate::cli::AgentsAction::Status(a)) => memory::cluster(&client, a.json).await,
                    None => agents::agents(&client, crate::cli::JsonArgs { json: args.json }).await,
                },
                Command::Lead(command) => memory::lead(&client, command).await,
                Command::Plan(args) => plans::plan(&client, args).await,
                Command::Orchestrate(args) => plans::orchestrate(&client, args).await,
                Command::Diff(args) => review::diff(&client, args).await,
                Command::Merge(args) => review::merge(&client, args).await,
                Command::Pr(args) => review::pr(&client, args).await,
                Command::Clean(args) => review::clean(&client, args).await,
                Command::Project(command) => projects::project(&client, command).await,
                Command::Launcher(args) => launcher::act(&client, args).await,
                Command::Launchers(args) => launcher::list(&client, args).await,
                Command::Pools(args) => projects::pools(&client, args).await,
                Command::Token(command) => tokens::token(&client, command).await,
                Command::Webhook(command) => webhooks::webhook(&client, command).await,
                Command::Memory(command) => memory::memory(&client, command).await,
                Command::Send(args) => memory::send(&client, args).await,
                Command::Chat(command) => memory::chat(&client, command).await,
                Command::Schedule(command) => schedules::schedule(&client, command).await,
                Command::Trigger(command) => schedules::trigger(&client, command).await,
                Command::Workset(command) => schedules::workset(&client, command).await,
                Command::Inbox { agent, json } => memory::inbox(&client, &agent, json).await,
                Command::Up(_)
                | Command::Doctor(_)
                | Command::Supervise { .. }
                | Command::AcpClient(_)
                | Command::Hook(_)
                | Command::MemoryContext { .. }
                | Command::Backup(_)
                | Command::Restore { .. } => {
                    unreachable!("handled above")
                }
            }
        }
    }
}
