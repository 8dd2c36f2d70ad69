//! `baton project add|list|reload`, `baton pools`.

use baton_client::Client;
use baton_core::api::CreateProject;

use crate::cli::ProjectCommand;
use crate::error::CliError;
use crate::output::{print_json, table};

pub async fn project(client: &Client, command: ProjectCommand) -> Result<u8, CliError> {
    match command {
        ProjectCommand::Add { path, name, branch, json } => {
            let path = std::fs::canonicalize(&path).map_err(|e| CliError::io(format!("{}", path.display()), e))?;
            let req = CreateProject {
                path: path.to_string_lossy().into_owned(),
                name,
                default_branch: branch,
                settings: None,
            };
            let p = client.create_project(&req).await?;
            if json {
                print_json(&p);
            } else {
                println!("{} {} ({}, base {})", p.id, p.name, p.path, p.default_branch);
            }
        }
        ProjectCommand::Reload { project, json } => {
            let p = client.reload_project(&project).await?;
            if json {
                print_json(&p);
            } else {
                println!("{} {}: settings and agents read again from {}", p.id, p.name, p.path);
            }
        }
        ProjectCommand::List(args) => {
            let projects = client.projects().await?;
            if args.json {
                print_json(&projects);
            } else {
                let rows: Vec<Vec<String>> = projects
                    .iter()
                    .map(|p| vec![p.id.to_string(), p.name.clone(), p.default_branch.clone(), p.path.clone()])
                    .collect();
                table(&["ID", "NAME", "BASE", "PATH"], &rows);
            }
        }
    }
    Ok(0)
}

pub async fn pools(client: &Client, args: crate::cli::JsonArgs) -> Result<u8, CliError> {
    let pools = client.pools().await?;
    if args.json {
        print_json(&pools);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = pools
        .iter()
        .map(|p| {
            let limit = match (p.limit, p.lowered) {
                (Some(l), true) => format!("{l} (lowered)"),
                (Some(l), false) => l.to_string(),
                (None, _) => "-".to_owned(),
            };
            let last = p.last_throttled_at.map_or("-".to_owned(), |t| t.to_string());
            vec![
                p.name.clone(),
                limit,
                p.in_use.to_string(),
                p.queued.to_string(),
                p.throttled_last_hour.to_string(),
                last,
                p.agents.join(","),
            ]
        })
        .collect();
    table(&["POOL", "LIMIT", "IN USE", "QUEUED", "429s (1h)", "LAST 429", "AGENTS"], &rows);
    Ok(0)
}
