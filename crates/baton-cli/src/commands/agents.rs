//! `baton agents`.

use baton_client::Client;
use baton_core::api::AgentInfo;

use crate::cli::{AcpClientArgs, JsonArgs};
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
                installed(a),
                if a.available { "yes".into() } else { "no".into() },
                a.def.tags.join(","),
                cut(&a.def.source, 30),
                cut(&a.def.description, 40),
            ]
        })
        .collect();
    table(&["NAME", "EXECUTOR", "CLI", "AVAILABLE", "TAGS", "SOURCE", "DESCRIPTION"], &rows);
    for a in agents.iter().filter(|a| !a.available) {
        let why = match (&a.program, &a.install_hint) {
            (Some(program), Some(hint)) if a.installs.iter().all(|i| i.path.is_none()) && !a.installs.is_empty() => {
                format!("{program} is not installed; {hint}")
            }
            _ => format!("no online launcher offers the {} executor", a.def.executor),
        };
        eprintln!("{}: {why}", a.def.name);
    }
    Ok(0)
}

/// The CLI column: the program and its version where installed (`installed`
/// for programs that are not asked their version), `missing`
/// where launchers looked and did not find it, `?` before any looked.
fn installed(a: &AgentInfo) -> String {
    let Some(program) = &a.program else { return "-".into() };
    let name = program.rsplit('/').next().unwrap_or(program);
    match a.installs.iter().find(|i| i.path.is_some()) {
        Some(i) => match i.version.as_deref() {
            Some(version) => cut(&format!("{name} {}", short_version(version)), 40),
            None => format!("{name} installed"),
        },
        None if a.installs.is_empty() => format!("{name} ?"),
        None => format!("{name} missing"),
    }
}

/// `2.1.197 (Claude Code)` → `2.1.197`; `codex-cli 0.169.0` → `0.169.0`.
fn short_version(v: &str) -> &str {
    v.split_whitespace().find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit())).unwrap_or(v)
}

/// `baton acp-client`: one turn of an ACP agent, as Baton's JSON lines.
pub async fn acp_client(args: AcpClientArgs) -> Result<u8, CliError> {
    use baton_agents::acp::{ClientOptions, Permission, run_client};
    use std::io::Read;
    let mut prompt = String::new();
    std::io::stdin()
        .read_to_string(&mut prompt)
        .map_err(|e| CliError::io("could not read the prompt from stdin", e))?;
    let mcp_servers = match &args.mcp {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::io(format!("could not read {}", path.display()), e))?;
            serde_json::from_str(&text).map_err(|e| CliError::BadFile {
                path: path.clone(),
                what: "a JSON object of MCP servers",
                source: Some(e.into()),
            })?
        }
        None => Default::default(),
    };
    let options = ClientOptions {
        command: args.command,
        cwd: args.cwd,
        permission: if args.permission == "reject" { Permission::Reject } else { Permission::Allow },
        resume: args.resume,
        mcp_servers,
        prompt,
    };
    let code = run_client(options).await.clamp(0, 255);
    // Exit here rather than through the runtime's shutdown, which would wait for
    // the thread still waiting on a descendant that outlived the grace period.
    std::process::exit(code)
}
