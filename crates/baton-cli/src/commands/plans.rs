//! `baton plan` and `baton orchestrate`.

use std::collections::{BTreeMap, HashMap};

use baton_client::{Client, encode};
use baton_core::api::{CreatePlan, Orchestrate, PlanCreated};
use baton_core::event::EventKind;
use baton_core::model::Orchestration;
use baton_core::status::{OrchestrationStatus, TaskStatus};

use super::run::default_project;
use crate::cli::{OrchestrateArgs, PlanArgs};
use crate::context::text_or_stdin;
use crate::error::CliError;
use crate::output::{clock, print_json};

fn read_plan(path: &std::path::Path) -> Result<CreatePlan, CliError> {
    let text = if path.as_os_str() == "-" {
        text_or_stdin("-")?
    } else {
        std::fs::read_to_string(path).map_err(|e| CliError::io(format!("cannot read {}", path.display()), e))?
    };
    let json = path.extension().is_some_and(|e| e == "json") || text.trim_start().starts_with('{');
    if json {
        serde_json::from_str(&text).map_err(|e| bad_plan(path, e))
    } else {
        serde_norway::from_str(&text).map_err(|e| bad_plan(path, e))
    }
}

pub async fn plan(client: &Client, args: PlanArgs) -> Result<u8, CliError> {
    let mut req = read_plan(&args.file)?;
    if let Some(p) = args.project {
        req.project = Some(p);
    }
    if req.project.is_none() {
        req.project = Some(default_project(client).await?);
    }
    let mut stream = if args.wait { Some(client.stream(None, "kinds=task").await?) } else { None };
    let created: PlanCreated = client.post_safely("/api/plans", &req).await?;
    let names: HashMap<String, String> = created.tasks.iter().map(|t| (t.id.to_string(), t.name.clone())).collect();
    let mut status: BTreeMap<String, TaskStatus> = created.tasks.iter().map(|t| (t.id.to_string(), t.status)).collect();
    if args.json && !args.wait {
        print_json(&created);
        return Ok(0);
    }
    if !args.json {
        println!("plan {} ({} tasks)", created.plan.id, created.tasks.len());
        for t in &created.tasks {
            println!("  {}  {:<20} {}", t.id, names[t.id.as_str()], t.status);
        }
    }
    let Some(stream) = stream.as_mut() else { return Ok(0) };
    while !status.values().all(|s| s.is_at_rest()) {
        let Some(event) = stream.next().await? else {
            return Err(CliError::LostCoordinator("following the plan"));
        };
        let Some(id) = event.task_id.as_ref().map(ToString::to_string).filter(|id| status.contains_key(id)) else {
            continue;
        };
        let Some(new) = event.data["status"].as_str().and_then(|s| s.parse::<TaskStatus>().ok()) else { continue };
        if status.insert(id.clone(), new) != Some(new) && !args.json {
            let reason = event.data["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default();
            eprintln!("{} {:<20} {new}{reason}", clock(event.ts), names[&id]);
        }
    }
    if args.json {
        let detail: serde_json::Value = client.get(&format!("/api/plans/{}", created.plan.id)).await?;
        print_json(&detail);
    }
    Ok(if status.values().all(|s| *s == TaskStatus::Succeeded) { 0 } else { 1 })
}

pub async fn orchestrate(client: &Client, args: OrchestrateArgs) -> Result<u8, CliError> {
    let project = match args.project {
        Some(p) => p,
        None => default_project(client).await?,
    };
    let req = Orchestrate {
        description: text_or_stdin(&args.description)?,
        project: Some(project),
        planner: args.planner,
        synthesizer: args.synthesizer,
        master_deployment_id: None,
    };
    let mut stream = if args.wait { Some(client.stream(None, "kinds=orchestration").await?) } else { None };
    let mut o: Orchestration = client.post("/api/orchestrate/task", &req).await?;
    let Some(stream) = stream.as_mut() else {
        if args.json {
            print_json(&o);
        } else {
            println!("{}", o.id);
        }
        return Ok(0);
    };
    let mut shown = 0;
    loop {
        if !args.json {
            for line in &o.logs[shown..] {
                eprintln!("{line}");
            }
            shown = o.logs.len();
        }
        if matches!(o.status, OrchestrationStatus::Completed | OrchestrationStatus::Failed) {
            break;
        }
        let Some(event) = stream.next().await? else {
            // The stream ended (the coordinator went away): look again in a moment,
            // on a fresh stream that misses nothing from now on.
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            *stream = client.stream(None, "kinds=orchestration").await?;
            o = client.get(&format!("/api/orchestrate/task/{}", encode(o.id.as_str()))).await?;
            continue;
        };
        if event.kind == EventKind::Orchestration && event.data["id"] == o.id.as_str() {
            o = serde_json::from_value(event.data)
                .map_err(|e| CliError::Unexpected { what: "an orchestration", source: Some(e.into()) })?;
        }
    }
    if args.json {
        print_json(&o);
    } else if let Some(result) = &o.final_result {
        println!("{result}");
    }
    Ok(if o.status == OrchestrationStatus::Completed { 0 } else { 1 })
}

/// A plan file that does not parse.
fn bad_plan(path: &std::path::Path, e: impl std::error::Error + Send + Sync + 'static) -> CliError {
    CliError::BadFile { path: path.to_owned(), what: "a plan", source: Some(Box::new(e)) }
}
