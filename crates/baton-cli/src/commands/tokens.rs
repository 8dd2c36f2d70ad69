//! `baton token`: tokens for launchers on other hosts.

use baton_client::Client;
use baton_core::api::{CreateToken, NewToken, TokenInfo};
use baton_core::model::TokenKind;

use crate::cli::TokenCommand;
use crate::error::CliError;
use crate::output::{ago, print_json, table};

pub async fn token(client: &Client, command: TokenCommand) -> Result<u8, CliError> {
    match command {
        TokenCommand::Create { launcher: _, name, json } => {
            let made: NewToken = client.post("/api/tokens", &CreateToken { kind: TokenKind::Launcher, name }).await?;
            if json {
                print_json(&made);
            } else {
                println!("{}", made.token);
                eprintln!(
                    "launcher token {} (shown this once): baton launcher --url URL --token-file FILE on the launcher's host",
                    made.id
                );
            }
        }
        TokenCommand::List(args) => {
            let tokens: Vec<TokenInfo> = client.get("/api/tokens").await?;
            if args.json {
                print_json(&tokens);
            } else {
                let rows: Vec<Vec<String>> = tokens
                    .iter()
                    .map(|t| {
                        vec![
                            t.id.clone(),
                            t.kind.as_str().to_owned(),
                            t.name.clone().unwrap_or_default(),
                            t.launcher.clone().unwrap_or_else(|| "(not yet used)".into()),
                            ago(t.created_at),
                        ]
                    })
                    .collect();
                table(&["ID", "KIND", "NAME", "LAUNCHER", "MADE"], &rows);
            }
        }
        TokenCommand::Revoke { id } => {
            client.delete(&format!("/api/tokens/{id}")).await?;
            eprintln!("token {id} revoked");
        }
    }
    Ok(0)
}
