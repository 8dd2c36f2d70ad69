//! `baton webhook`: webhooks added, listed and removed, their deliveries, and a
//! delivery sent again.

use baton_client::Client;
use baton_core::webhook::{CreateWebhook, Delivery, WebhookInfo};

use crate::cli::WebhookCommand;
use crate::error::CliError;
use crate::output::{ago, print_json, table};

pub async fn webhook(client: &Client, command: WebhookCommand) -> Result<u8, CliError> {
    match command {
        WebhookCommand::Add { target: url, events, project, format, secret, json } => {
            let events = events.into_iter().map(|e| e.trim().to_owned()).filter(|e| !e.is_empty()).collect();
            let made: WebhookInfo =
                client.post("/api/webhooks", &CreateWebhook { url, events, project, format, secret }).await?;
            if json {
                print_json(&made);
            } else {
                println!("{}", made.secret.as_deref().unwrap_or_default());
                eprintln!(
                    "webhook {} added ({} to {}): its signing secret above is shown this once",
                    made.id,
                    made.events.join(", "),
                    made.url
                );
            }
        }
        WebhookCommand::List(args) => {
            let hooks: Vec<WebhookInfo> = client.get("/api/webhooks").await?;
            if args.json {
                print_json(&hooks);
            } else {
                let rows: Vec<Vec<String>> = hooks
                    .iter()
                    .map(|h| {
                        vec![
                            h.id.clone(),
                            h.url.clone(),
                            h.events.join(","),
                            h.format.to_string(),
                            h.project_id.as_ref().map(ToString::to_string).unwrap_or_else(|| "(all)".into()),
                            format!("{} pending, {} failed", h.pending, h.failed),
                            h.disabled.clone().unwrap_or_else(|| "active".into()),
                            ago(h.created_at),
                        ]
                    })
                    .collect();
                table(&["ID", "URL", "EVENTS", "FORMAT", "PROJECT", "DELIVERIES", "STATE", "MADE"], &rows);
            }
        }
        WebhookCommand::Rm { id } => {
            client.delete(&format!("/api/webhooks/{id}")).await?;
            eprintln!("webhook {id} removed");
        }
        WebhookCommand::Deliveries { id, limit, json } => {
            let list: Vec<Delivery> = client.get(&format!("/api/webhooks/{id}/deliveries?limit={limit}")).await?;
            if json {
                print_json(&list);
            } else {
                let rows: Vec<Vec<String>> = list
                    .iter()
                    .map(|d| {
                        let last = d.attempts.last();
                        let answer = last
                            .map(|a| match (&a.error, a.status) {
                                (Some(e), _) => e.clone(),
                                (None, Some(s)) => s.to_string(),
                                (None, None) => String::new(),
                            })
                            .unwrap_or_default();
                        vec![
                            d.id.clone(),
                            d.event.to_string(),
                            d.status.to_string(),
                            d.attempts.len().to_string(),
                            answer,
                            ago(d.created_at),
                        ]
                    })
                    .collect();
                table(&["ID", "EVENT", "STATUS", "ATTEMPTS", "LAST ANSWER", "MADE"], &rows);
            }
        }
        WebhookCommand::Redeliver { id } => {
            let d: Delivery = client.post(&format!("/api/deliveries/{id}/redeliver"), &serde_json::json!({})).await?;
            eprintln!("delivery {} will be sent again now (attempt {})", d.id, d.attempts.len() + 1);
        }
    }
    Ok(0)
}
