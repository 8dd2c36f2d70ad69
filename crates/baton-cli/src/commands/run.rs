//! `baton run`: create a task, optionally following it to its end.

use baton_client::Client;
use baton_core::api::{Approval, CreateTask};
use baton_core::model::OnConflict;

use super::follow::{self, Show};
use crate::cli::RunArgs;
use crate::context::text_or_stdin;
use crate::error::CliError;
use crate::output::print_json;

pub async fn run(client: &Client, args: RunArgs) -> Result<u8, CliError> {
    let prompt = text_or_stdin(&args.prompt)?;
    let project = match (args.project, &args.workset) {
        (Some(p), _) => Some(p),
        (None, Some(_)) => None,
        (None, None) => Some(default_project(client).await?),
    };
    let req = CreateTask {
        project,
        workset: args.workset,
        prompt,
        title: args.title,
        agent: args.agent,
        tags: args.tags,
        depends_on: args.after,
        checks: (!args.checks.is_empty()).then_some(args.checks),
        timeout_s: args.timeout,
        stall_s: args.stall,
        max_retries: args.retries,
        budget_usd: args.budget,
        approval: args.approval.then_some(Approval(true)),
        branch: args.branch,
        callback: false,
        sandbox: args.sandbox,
        require: args.require,
        fix_attempts: args.fix_attempts,
        on_conflict: args.on_conflict.map(|w| match w.as_str() {
            "resume" => OnConflict::Resume,
            _ => OnConflict::Refuse,
        }),
        review_by: args.review_by,
        review_rounds: args.review_rounds,
        model: args.model,
        base: args.base,
        attachments: Vec::new(),
    };
    let task = client.create_task(&req).await?;
    if !args.wait {
        if args.json {
            print_json(&task);
        } else {
            println!("{}", task.id);
        }
        return Ok(0);
    }
    eprintln!("task {} {} ({})", task.id, task.status, task.agent);
    let stream = follow::open(client, task.id.as_str(), Some(0)).await?;
    let show = if args.json { Show::Quiet } else { Show::Progress };
    let done = follow::follow(client, task.id.as_str(), stream, show).await?;
    follow::announce(&done);
    if args.json {
        print_json(&done);
    } else if let Some(result) = &done.result {
        println!("{result}");
    }
    Ok(follow::exit_code(&done))
}

/// The project of the repository the command runs in, or the only project.
pub async fn default_project(client: &Client) -> Result<String, CliError> {
    let projects = client.projects().await?;
    let cwd = std::env::current_dir().map_err(|e| CliError::io("cannot read the current directory", e))?;
    let cwd = std::fs::canonicalize(&cwd).unwrap_or(cwd);
    let here = projects.iter().filter(|p| cwd.starts_with(&p.path)).max_by_key(|p| p.path.len());
    match (here, projects.as_slice()) {
        (Some(p), _) => Ok(p.id.to_string()),
        (None, [only]) => Ok(only.id.to_string()),
        (None, []) => Err(CliError::Usage("the coordinator has no project yet: run `baton up` in a git repository")),
        (None, _) => Err(CliError::Usage("several projects exist; name one with --project")),
    }
}
