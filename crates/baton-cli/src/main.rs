//! The `baton` binary: coordinator, launcher, supervisor and client in one.
//!
//! `baton supervise` is handled before anything else starts (no async runtime,
//! no threads), because a supervisor must block signals for the whole process.

mod cli;
mod commands;
mod context;
mod error;
mod output;

use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() >= 3 && args[1] == "supervise" {
        let code = match (args.get(2), args.get(3), args.get(4)) {
            (Some(s), None, _) if s == "--standby" => baton_launcher::supervisor::standby(None),
            (Some(s), Some(w), None) if s == "--standby" && w == "--container-warm" => {
                baton_launcher::supervisor::standby_warm()
            }
            (Some(s), Some(a), Some(bwrap)) if s == "--standby" && a == "--sandbox-ahead" => {
                baton_launcher::supervisor::standby(Some(std::path::Path::new(bwrap)))
            }
            (Some(dir), None, _) => baton_launcher::supervisor::main(std::path::Path::new(dir)),
            _ => 2,
        };
        return ExitCode::from(code as u8);
    }
    if args.len() == 4 && args[1] == "sandbox-init" && args[2] == "--status-fd" {
        // Inside a sandbox made ahead, before the agent (see `baton_launcher::ahead`).
        let code = args[3].to_str().and_then(|n| n.parse().ok()).map_or(2, baton_launcher::ahead::init);
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    if args.len() > 2 && args[1] == "sandbox-net" {
        // Inside an agent's sandbox, before the agent (see `baton_launcher::net`).
        let rest: Vec<String> = args[2..].iter().map(|a| a.to_string_lossy().into_owned()).collect();
        return ExitCode::from(baton_launcher::net::main(&rest).clamp(0, 255) as u8);
    }
    let cli = Cli::parse();
    let verbose = matches!(cli.command, Command::Up(_) | Command::Launcher(_));
    init_logging(verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: could not start the async runtime: {e}");
            return ExitCode::from(10);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {}", error::report(&e));
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_logging(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
