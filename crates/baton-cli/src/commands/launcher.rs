//! `baton launcher`: a launcher on another host, and the launcher settings that
//! `baton up` shares.

use std::path::Path;
use std::time::Duration;

use baton_launcher::{Launcher, LauncherConfig, SandboxSupport};
use tokio::sync::watch;

use crate::cli::LauncherArgs;
use crate::error::CliError;

/// The largest event a launcher sends (the coordinator's default limit is 1 MiB).
const MAX_EVENT_BYTES: usize = 1_000_000;

/// A launcher's settings, with its files under `dir`. Finds out which sandbox
/// this host can give agents, and says in one line when it can give none.
pub async fn config(url: &str, token: &str, dir: &Path, name: String, slots: u32) -> Result<LauncherConfig, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::io("cannot find the baton binary", e))?;
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_owned());
    let sandbox = SandboxSupport::detect().await;
    if let Some(reason) = &sandbox.reason {
        eprintln!("warning: agents will run without a sandbox: {reason}");
    }
    Ok(LauncherConfig {
        url: url.to_owned(),
        token: token.to_owned(),
        runs_dir: dir.join("runs"),
        id_file: dir.join("launcher.id"),
        name,
        slots,
        exe,
        max_event_bytes: MAX_EVENT_BYTES,
        poll_wait: Duration::from_secs(55),
        port_base: 41_000,
        ports_per_run: 10,
        worktrees_dir: dir.join("worktrees"),
        data_dir: dir.clone(),
        hidden: vec![dir.clone()],
        labels: Vec::new(),
        sandbox,
        local_repos: false,
        ca_file: None,
    })
}

/// Waits for Ctrl-C or SIGTERM.
pub async fn signalled() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

pub async fn launcher(url: Option<&str>, token: Option<&str>, args: LauncherArgs) -> Result<u8, CliError> {
    let url = url.ok_or_else(|| CliError::Invalid("`baton launcher` needs --url (or BATON_URL)".into()))?;
    let from_file = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::io(format!("cannot read the token file {}", path.display()), e))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let token = from_file.as_deref().or(token).ok_or_else(|| {
        CliError::Invalid("`baton launcher` needs --token-file or --token (or BATON_TOKEN_FILE, BATON_TOKEN)".into())
    })?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| CliError::io(format!("cannot create {}", args.data_dir.display()), e))?;
    let _lock = super::up::lock_dir(&args.data_dir)?;
    let name = args.name.unwrap_or_else(|| nix_hostname().unwrap_or_else(|| "launcher".into()));
    let mut config = config(url, token, &args.data_dir, name, args.slots).await?;
    for label in &args.labels {
        baton_core::names::validate_label(label).map_err(|e| CliError::Invalid(e.to_string()))?;
    }
    config.labels = args.labels.clone();
    config.ca_file = args.ca.clone();
    let launcher = Launcher::new(config).map_err(|e| CliError::Startup(crate::error::report(&e)))?;
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(launcher.run(stopped));
    eprintln!("launcher running against {url}");
    signalled().await;
    eprintln!("launcher stopping; its agents keep running and are re-attached at the next start");
    let _ = stop.send(true);
    let _ = task.await;
    Ok(0)
}

fn nix_hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}
