//! `baton launcher`: a launcher on another host, and the launcher settings that
//! `baton up` shares.

use std::path::Path;
use std::time::Duration;

use baton_core::model::Launcher;
use baton_core::status::LauncherStatus;
use baton_launcher::{LauncherConfig, SandboxSupport};
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
    let url = url.ok_or(CliError::Usage("`baton launcher` needs --url (or BATON_URL)"))?;
    let from_file = match &args.token_file {
        Some(path) => Some(
            std::fs::read_to_string(path)
                .map_err(|e| CliError::io(format!("cannot read the token file {}", path.display()), e))?
                .trim()
                .to_owned(),
        ),
        None => None,
    };
    let token = from_file
        .as_deref()
        .or(token)
        .ok_or(CliError::Usage("`baton launcher` needs --token-file or --token (or BATON_TOKEN_FILE, BATON_TOKEN)"))?;
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| CliError::io(format!("cannot create {}", args.data_dir.display()), e))?;
    let _lock = super::up::lock_dir(&args.data_dir)?;
    let name = args.name.unwrap_or_else(|| nix_hostname().unwrap_or_else(|| "launcher".into()));
    let mut config = config(url, token, &args.data_dir, name, args.slots).await?;
    for label in &args.labels {
        baton_core::names::validate_label(label).map_err(|source| CliError::BadName { what: "--label", source })?;
    }
    config.labels = args.labels.clone();
    config.ca_file = args.ca.clone();
    let launcher = baton_launcher::Launcher::new(config).map_err(|e| CliError::Launcher(Box::new(e)))?;
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

/// `baton launcher drain|undrain ID`.
pub async fn act(client: &baton_client::Client, args: LauncherArgs) -> Result<u8, CliError> {
    let (id, verb) = match args.action {
        Some(crate::cli::LauncherAction::Drain { id }) => (id, "drain"),
        Some(crate::cli::LauncherAction::Undrain { id }) => (id, "undrain"),
        None => return Err(CliError::Usage("nothing to do: give drain ID or undrain ID")),
    };
    let l: Launcher = client.post(&format!("/api/launchers/{id}/{verb}"), &serde_json::json!({})).await?;
    eprintln!(
        "launcher {} ({}) {}",
        l.id,
        l.name,
        if l.draining { "is draining: it takes no new work" } else { "takes work again" }
    );
    Ok(0)
}

/// `baton launchers`.
pub async fn list(client: &baton_client::Client, args: crate::cli::JsonArgs) -> Result<u8, CliError> {
    let launchers: Vec<Launcher> = client.get("/api/launchers").await?;
    if args.json {
        crate::output::print_json(&launchers);
        return Ok(0);
    }
    let rows: Vec<Vec<String>> = launchers
        .iter()
        .map(|l| {
            let programs: Vec<String> = l
                .programs
                .iter()
                .map(|(name, p)| if p.path.is_some() { name.clone() } else { format!("{name}(missing)") })
                .collect();
            vec![
                l.id.to_string(),
                l.name.clone(),
                l.hostname.clone(),
                l.labels.join(","),
                format!("{}/{}", l.running.len(), l.slots),
                programs.join(","),
                crate::output::ago(l.last_seen),
                state(l).to_owned(),
                l.sandbox.as_ref().map(|s| s.kind.as_str().to_owned()).unwrap_or_default(),
            ]
        })
        .collect();
    crate::output::table(&["ID", "NAME", "HOST", "LABELS", "SLOTS", "PROGRAMS", "SEEN", "STATE", "SANDBOX"], &rows);
    Ok(0)
}

/// `online`, `draining` or `offline`.
fn state(l: &Launcher) -> &'static str {
    match (l.status, l.draining) {
        (LauncherStatus::Offline, _) => "offline",
        (_, true) => "draining",
        _ => "online",
    }
}
