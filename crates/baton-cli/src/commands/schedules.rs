//! `baton schedule` and `baton trigger`: work that starts by itself; and
//! `baton workset`: projects a task changes together.

use baton_client::Client;
use baton_core::triggers::{CatchUp, CreateSchedule, CreateTrigger, Schedule, Trigger};

use crate::cli::{ScheduleCommand, TriggerCommand, WorksetCommand};
use crate::error::CliError;
use crate::output::{ago, cut, print_json, table};

pub async fn schedule(client: &Client, command: ScheduleCommand) -> Result<u8, CliError> {
    match command {
        ScheduleCommand::Add { cron, every, agent, project, name, catch_up, overlap, prompt } => {
            let catch_up = match catch_up.as_deref() {
                None | Some("skip") => CatchUp::Skip,
                Some("once") => CatchUp::Once,
                Some(other) => {
                    return Err(CliError::BadValue {
                        flag: "--catch-up",
                        value: other.to_owned(),
                        problem: "skip or once",
                    });
                }
            };
            let project = match project {
                Some(p) => p,
                None => super::run::default_project(client).await?,
            };
            let req = CreateSchedule { name, project: Some(project), cron, every, agent, prompt, catch_up, overlap };
            let s: Schedule = client.post("/api/schedules", &req).await?;
            println!("{}", s.id);
            eprintln!("schedule {} ({}) next fires at {}", s.name, s.id, s.next_at);
        }
        ScheduleCommand::List(args) => {
            let all: Vec<Schedule> = client.get("/api/schedules").await?;
            if args.json {
                print_json(&all);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|s| {
                    let when = s.cron.clone().unwrap_or_else(|| format!("every {} s", s.every_ms.unwrap_or(0) / 1000));
                    vec![
                        s.id.clone(),
                        cut(&s.name, 30),
                        when,
                        if s.paused { "paused".into() } else { s.next_at.to_string() },
                        s.last_fired_at.map(ago).unwrap_or_else(|| "-".into()),
                        cut(s.last_note.as_deref().unwrap_or(""), 50),
                    ]
                })
                .collect();
            table(&["ID", "NAME", "WHEN", "NEXT", "LAST FIRED", "LAST"], &rows);
        }
        ScheduleCommand::Rm { id } => {
            client.delete(&format!("/api/schedules/{id}")).await?;
            eprintln!("schedule {id} removed");
        }
        ScheduleCommand::Pause { id } => {
            let _: Schedule = client.post(&format!("/api/schedules/{id}/pause"), &serde_json::json!({})).await?;
            eprintln!("schedule {id} paused");
        }
        ScheduleCommand::Resume { id } => {
            let s: Schedule = client.post(&format!("/api/schedules/{id}/resume"), &serde_json::json!({})).await?;
            eprintln!("schedule {id} resumed; next fires at {}", s.next_at);
        }
    }
    Ok(0)
}

pub async fn trigger(client: &Client, command: TriggerCommand) -> Result<u8, CliError> {
    match command {
        TriggerCommand::Add { name, agent, template, project, per_hour, json } => {
            let project = match project {
                Some(p) => p,
                None => super::run::default_project(client).await?,
            };
            let req = CreateTrigger { name, project: Some(project), agent, template, per_hour, secret: None };
            let t: Trigger = client.post("/api/triggers", &req).await?;
            if json {
                print_json(&t);
            } else {
                println!("{}", t.secret.clone().unwrap_or_default());
                eprintln!(
                    "trigger {}: POST /api/triggers/{} signed with this secret (shown this once), at most {} tasks an hour",
                    t.name, t.name, t.per_hour
                );
            }
        }
        TriggerCommand::List(args) => {
            let all: Vec<Trigger> = client.get("/api/triggers").await?;
            if args.json {
                print_json(&all);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|t| vec![t.name.clone(), t.agent.clone(), t.per_hour.to_string(), cut(&t.template, 60)])
                .collect();
            table(&["NAME", "AGENT", "PER HOUR", "TEMPLATE"], &rows);
        }
        TriggerCommand::Rm { name } => {
            client.delete(&format!("/api/triggers/{name}")).await?;
            eprintln!("trigger {name} removed");
        }
    }
    Ok(0)
}

pub async fn workset(client: &Client, command: WorksetCommand) -> Result<u8, CliError> {
    match command {
        WorksetCommand::Add { name, projects } => {
            let req = baton_core::workset::CreateWorkset { name, projects };
            let made: baton_core::workset::WorksetView = client.post("/api/worksets", &req).await?;
            println!("{}", made.workset.name);
            eprintln!("workset {}: {}", made.workset.name, made.names.join(", "));
        }
        WorksetCommand::List(args) => {
            let all: Vec<baton_core::workset::WorksetView> = client.get("/api/worksets").await?;
            if args.json {
                print_json(&all);
                return Ok(0);
            }
            let rows: Vec<Vec<String>> = all
                .iter()
                .map(|w| vec![w.workset.name.clone(), w.names.join(", "), ago(w.workset.created_at)])
                .collect();
            table(&["NAME", "PROJECTS", "MADE"], &rows);
        }
        WorksetCommand::Rm { name } => {
            client.delete(&format!("/api/worksets/{}", baton_client::encode(&name))).await?;
            println!("removed {name}");
        }
    }
    Ok(0)
}
