//! `baton project add|list`.

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
