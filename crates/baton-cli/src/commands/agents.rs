//! `baton agents`.

use baton_client::Client;

use crate::cli::JsonArgs;
use crate::error::CliError;
use crate::output::{cut, print_json, table};

pub async fn agents(client: &Client, args: JsonArgs) -> Result<u8, CliError> {
    let agents = client.agents().await?;
    if args.json {
        print_json(&agents);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|a| {
            vec![
                a.def.name.clone(),
                a.def.executor.to_string(),
                if a.available { "yes".into() } else { "no launcher".into() },
                a.def.tags.join(","),
                cut(&a.def.source, 40),
                cut(&a.def.description, 50),
            ]
        })
        .collect();
    table(&["NAME", "EXECUTOR", "AVAILABLE", "TAGS", "SOURCE", "DESCRIPTION"], &rows);
    Ok(0)
}
