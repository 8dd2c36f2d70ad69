//! `baton doctor`: what this host gives Baton, one line each, with the fix for
//! what is wrong: git, the sandbox, container runtimes, the agent CLIs, the
//! permissions of the tokens and database, whether the coordinator listens in
//! the open without TLS, and the free disk under the data directory.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use baton_launcher::SandboxSupport;

use crate::cli::DoctorArgs;
use crate::context::DATA_DIR_NAME;
use crate::error::CliError;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    Warn,
    Fail,
}

/// One line of the report.
struct Line {
    verdict: Verdict,
    what: String,
    fix: Option<String>,
}

fn line(verdict: Verdict, what: impl Into<String>, fix: Option<&str>) -> Line {
    Line { verdict, what: what.into(), fix: fix.map(str::to_owned) }
}

/// The first line of `program --version`, when it answers within 10 s.
async fn version(program: &str) -> Option<String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.arg("--version").kill_on_drop(true).stdin(std::process::Stdio::null());
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output()).await.ok()?.ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().next().map(|l| l.trim().to_owned()).filter(|l| !l.is_empty())
}

async fn git() -> Line {
    let Some(v) = version("git").await else {
        return line(Verdict::Fail, "git: not found", Some("install git 2.38 or newer"));
    };
    let number: Vec<u32> =
        v.split_whitespace().nth(2).unwrap_or("").split('.').take(2).filter_map(|n| n.parse().ok()).collect();
    if number.as_slice() < [2, 38].as_slice() {
        return line(
            Verdict::Fail,
            format!("git: {v} (merges need `merge-tree --write-tree`)"),
            Some("install git 2.38 or newer"),
        );
    }
    line(Verdict::Ok, format!("git: {v}"), None)
}

async fn sandbox() -> Line {
    let support = SandboxSupport::detect().await;
    match (&support.bwrap, &support.reason) {
        (Some(path), _) => line(Verdict::Ok, format!("sandbox: bubblewrap ({})", path.display()), None),
        (None, reason) => line(
            Verdict::Warn,
            "sandbox: none (agents see what the launcher's user sees)",
            Some(reason.as_deref().unwrap_or("install bubblewrap")),
        ),
    }
}

async fn containers() -> Vec<Line> {
    let mut lines = Vec::new();
    for runtime in ["podman", "docker"] {
        match version(runtime).await {
            Some(v) => lines.push(line(Verdict::Ok, format!("container runtime: {v}"), None)),
            None => lines.push(line(
                Verdict::Ok,
                format!("container runtime: {runtime} not found (only needed for sandbox = \"container\")"),
                None,
            )),
        }
    }
    lines
}

async fn agent_clis() -> Vec<Line> {
    let mut lines = Vec::new();
    for kind in baton_core::agent::ExecutorKind::ALL {
        let Some(program) = kind.default_program() else { continue };
        match version(program).await {
            Some(v) => lines.push(line(Verdict::Ok, format!("{}: {program} {v}", kind.as_str()), None)),
            None => lines.push(line(
                Verdict::Warn,
                format!("{}: {program} not found on PATH", kind.as_str()),
                Some(kind.install_hint()),
            )),
        }
    }
    lines
}

fn permissions(dir: &Path) -> Vec<Line> {
    let mode = |p: &Path| std::fs::metadata(p).ok().map(|m| m.permissions().mode() & 0o777);
    let mut lines = Vec::new();
    let checks: [(&str, u32); 4] = [("", 0o700), ("token", 0o600), ("baton.db", 0o600), ("launcher.id", 0o600)];
    for (name, want) in checks {
        let path = if name.is_empty() { dir.to_owned() } else { dir.join(name) };
        match mode(&path) {
            None => {}
            Some(m) if m & 0o077 == 0 => {
                lines.push(line(Verdict::Ok, format!("permissions: {} is {m:o}", path.display()), None))
            }
            Some(m) => lines.push(Line {
                verdict: Verdict::Fail,
                what: format!("permissions: {} is {m:o}, readable by others", path.display()),
                fix: Some(format!("chmod {want:o} {}", path.display())),
            }),
        }
    }
    lines
}

fn exposure(dir: &Path) -> Option<Line> {
    let url = std::fs::read_to_string(dir.join("url")).ok()?;
    let url = url.trim();
    let host = url.split_once("://")?.1.split(['/', ':']).next()?.to_owned();
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    Some(match (url.starts_with("https://"), loopback) {
        (true, _) => line(Verdict::Ok, format!("listening: {url} (TLS)"), None),
        (false, true) => line(Verdict::Ok, format!("listening: {url} (loopback only)"), None),
        (false, false) => line(
            Verdict::Warn,
            format!("listening: {url} off loopback without TLS: tokens cross the network in the clear"),
            Some("restart with --tls-cert FILE --tls-key FILE (and --public-url https://…)"),
        ),
    })
}

fn disk(dir: &Path) -> Option<Line> {
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    let free = stat.blocks_available() as u64 * stat.fragment_size() as u64;
    let gib = free as f64 / (1u64 << 30) as f64;
    Some(if free < 1 << 30 {
        line(
            Verdict::Warn,
            format!("disk: {gib:.2} GiB free under {}", dir.display()),
            Some(
                "free some space: worktrees, spools and the database grow with the work (`baton clean` removes merged worktrees)",
            ),
        )
    } else {
        line(Verdict::Ok, format!("disk: {gib:.1} GiB free under {}", dir.display()), None)
    })
}

/// What the data directory holds, by kind, largest first.
fn holdings(dir: &Path) -> Line {
    fn size(p: &Path) -> u64 {
        match std::fs::symlink_metadata(p) {
            Ok(m) if m.is_dir() => std::fs::read_dir(p).into_iter().flatten().flatten().map(|e| size(&e.path())).sum(),
            Ok(m) => m.len(),
            Err(_) => 0,
        }
    }
    let kind = |name: &str| match name {
        "runs" => "run spools",
        "worktrees" => "worktrees",
        "homes" => "agents' homes",
        "mirrors" => "project mirrors",
        n if n.starts_with("baton.db") => "the store",
        _ => "other",
    };
    let mut by_kind: std::collections::BTreeMap<&str, (u64, usize)> = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let path = entry.path();
        let items = if path.is_dir() { std::fs::read_dir(&path).map(|d| d.count()).unwrap_or(0) } else { 0 };
        let slot = by_kind.entry(kind(&name)).or_default();
        slot.0 += size(&path);
        slot.1 += items;
    }
    let total: u64 = by_kind.values().map(|(b, _)| b).sum();
    let mut kinds: Vec<(&str, (u64, usize))> = by_kind.into_iter().collect();
    kinds.sort_by_key(|(_, (bytes, _))| std::cmp::Reverse(*bytes));
    let parts: Vec<String> = kinds
        .iter()
        .map(|(k, (bytes, items))| match *items {
            0 => format!("{k} {}", crate::output::bytes(*bytes)),
            n => format!("{k} {} ({n})", crate::output::bytes(*bytes)),
        })
        .collect();
    line(
        Verdict::Ok,
        format!("data directory {}: {} — {}", dir.display(), crate::output::bytes(total), parts.join(", ")),
        None,
    )
}

/// The data directory to look at: the one given, else `.baton/` of the
/// repository (or directory) we are in.
fn data_dir(given: Option<PathBuf>) -> Option<PathBuf> {
    if given.is_some() {
        return given;
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|d| d.join(DATA_DIR_NAME)).find(|d| d.is_dir())
}

/// The variables a project's settings name for its integrations (chat, the
/// forge), each with where it is named.
fn named_variables(settings: &baton_core::model::ProjectSettings) -> Vec<(String, &'static str)> {
    let mut vars = Vec::new();
    if let Some(chat) = &settings.chat {
        if let Some(s) = &chat.slack {
            vars.push((s.bot_token_env.clone(), "[chat.slack] bot_token_env"));
            vars.extend(s.signing_secret_env.clone().map(|v| (v, "[chat.slack] signing_secret_env")));
            vars.extend(s.app_token_env.clone().map(|v| (v, "[chat.slack] app_token_env")));
        }
        if let Some(d) = &chat.discord {
            vars.push((d.bot_token_env.clone(), "[chat.discord] bot_token_env"));
        }
    }
    if let Some(f) = &settings.forge {
        vars.push((f.token_env().to_owned(), "[forge] token_env"));
        vars.extend(f.webhook_secret_env.clone().map(|v| (v, "[forge] webhook_secret_env")));
    }
    vars
}

/// The integrations of the repository we are in: each variable its settings
/// name set (as `baton up` would see it, from this shell), and what a running
/// coordinator says of its chat services.
async fn integrations(repo: &Path) -> Vec<Line> {
    let Ok(text) = std::fs::read_to_string(repo.join(".baton/config.toml")) else { return Vec::new() };
    let Ok(settings) = toml::from_str::<baton_core::model::ProjectSettings>(&text) else {
        return vec![line(
            Verdict::Fail,
            ".baton/config.toml does not parse",
            Some("run `baton project reload` to see where"),
        )];
    };
    let mut lines = Vec::new();
    for (var, named) in named_variables(&settings) {
        match std::env::var(&var) {
            Ok(v) if !v.trim().is_empty() => lines.push(line(Verdict::Ok, format!("{named}: {var} is set"), None)),
            _ => lines.push(Line {
                verdict: Verdict::Fail,
                what: format!("{named}: {var} is not set"),
                fix: Some(format!("export {var} in the coordinator's environment")),
            }),
        }
    }
    if settings.chat.is_some()
        && let Ok(client) = crate::context::client(None, None)
        && let Ok(Ok(status)) =
            tokio::time::timeout(Duration::from_secs(3), client.get::<Vec<serde_json::Value>>("/api/chat/status")).await
    {
        for s in status {
            let what =
                format!("chat: {} of {}", s["service"].as_str().unwrap_or("?"), s["project"].as_str().unwrap_or("?"));
            match s["stopped"].as_str() {
                Some(why) => lines.push(Line {
                    verdict: Verdict::Fail,
                    what: format!("{what} stopped posting: {why}"),
                    fix: Some("fix the token, then restart the coordinator".into()),
                }),
                None => lines.push(line(Verdict::Ok, format!("{what}: posting"), None)),
            }
        }
    }
    lines
}

pub async fn doctor(args: DoctorArgs) -> Result<u8, CliError> {
    let mut lines = vec![git().await, sandbox().await];
    lines.extend(containers().await);
    lines.extend(agent_clis().await);
    match data_dir(args.data_dir) {
        Some(dir) => {
            if let Some(repo) = dir.parent() {
                lines.extend(integrations(repo).await);
            }
            lines.extend(permissions(&dir));
            lines.extend(exposure(&dir));
            lines.extend(disk(&dir));
            lines.push(holdings(&dir));
        }
        None => lines.push(line(Verdict::Ok, "data directory: none here yet (`baton up` makes .baton/)", None)),
    }
    if let Some(url) = args.store.as_deref().filter(|u| u.starts_with("postgres")) {
        lines.push(postgres(url));
    }
    lines.extend(embeddings(&args.embeddings).await);
    for l in &lines {
        let tag = match l.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        match &l.fix {
            Some(fix) => println!("{tag}  {}  — fix: {fix}", l.what),
            None => println!("{tag}  {}", l.what),
        }
    }
    Ok(if lines.iter().any(|l| l.verdict == Verdict::Fail) { 1 } else { 0 })
}

/// A PostgreSQL store: reachable, encrypted, and what was verified.
fn postgres(url: &str) -> Line {
    let place = baton_store::postgres::redact(url);
    match baton_store::postgres::inspect(url) {
        Err(e) => line(
            Verdict::Fail,
            format!("store {place}: {}", crate::error::report(&e)),
            Some("check the URL, the server and the network"),
        ),
        Ok(r) => {
            let schema = r.schema.map_or("no Baton schema yet".to_owned(), |s| format!("Baton schema {s}"));
            let what = match &r.tls {
                Some(v) => format!(
                    "store {place}: PostgreSQL {}, {schema}; encrypted ({v}), verified: {}",
                    r.version, r.verified
                ),
                None => format!("store {place}: PostgreSQL {}, {schema}; NOT encrypted", r.version),
            };
            match (&r.tls, r.verified) {
                (Some(_), "the CA and the host name") => line(Verdict::Ok, what, None),
                (Some(_), _) => {
                    line(Verdict::Warn, what, Some("add sslmode=verify-full&sslrootcert=CA.pem to the URL"))
                }
                (None, _) => line(
                    Verdict::Warn,
                    what,
                    Some(
                        "add sslmode=verify-full&sslrootcert=CA.pem, unless the server is on this host or a private network",
                    ),
                ),
            }
        }
    }
}

/// `baton backup` of a PostgreSQL store: the server checked, and how to back
/// it up with its own tools.
fn backup_postgres(url: &str, file: &Path) -> Result<u8, CliError> {
    let place = baton_store::postgres::redact(url);
    let r = match baton_store::postgres::inspect(url) {
        Ok(r) => r,
        Err(e) => {
            println!("FAIL  store {place}: {}", crate::error::report(&e));
            return Ok(1);
        }
    };
    let pitr = matches!(r.wal_level.as_str(), "replica" | "logical") && r.archive_mode != "off";
    println!(
        "PostgreSQL {} at {place} ({}).",
        r.version,
        r.schema.map_or("no Baton schema yet".into(), |s| format!("Baton schema {s}"))
    );
    println!("Baton does not copy a PostgreSQL store itself: use the server's tools, which take a consistent");
    println!("snapshot while Baton runs, blobs and all (they are rows).");
    println!("  back up:   pg_dump --format=custom --file={} '{place}'", file.display());
    println!("  restore:   createdb NEWDB && pg_restore --no-owner --dbname=NEWDB {}", file.display());
    println!("             then baton up --store postgres://…/NEWDB (the launchers' spools are on their hosts)");
    println!(
        "  point-in-time recovery: wal_level={} archive_mode={} — {}",
        r.wal_level,
        r.archive_mode,
        if pitr {
            "ready (base backups with pg_basebackup, WAL archived)"
        } else {
            "not set up (needs wal_level=replica and archive_mode=on)"
        }
    );
    Ok(0)
}

/// `baton backup`: a consistent copy of the SQLite store (or `--verify`).
pub fn backup(args: crate::cli::BackupArgs) -> Result<u8, CliError> {
    if let Some(url) = args.store.as_deref().filter(|u| u.starts_with("postgres")) {
        return backup_postgres(url, &args.file);
    }
    let known = baton_store::sqlite::known_version();
    if args.verify {
        return match baton_store::backup::verify(&args.file, known) {
            Ok(m) => {
                println!(
                    "ok  {}: Baton {}, schema {}, taken {}; {} tasks, {} events, {} documents; integrity check clean",
                    args.file.display(),
                    m.baton,
                    m.schema,
                    m.taken_at,
                    m.tasks,
                    m.events,
                    m.documents
                );
                Ok(0)
            }
            Err(e) => {
                println!("FAIL  {e}");
                Ok(1)
            }
        };
    }
    let dir = data_dir(args.data_dir).ok_or(CliError::Usage(
        "no data directory here: run in the repository where `baton up` runs, or give --data-dir (on PostgreSQL, use pg_dump)",
    ))?;
    let m = baton_store::backup::take(&dir, &args.file, args.force).map_err(|e| CliError::Backup(Box::new(e)))?;
    eprintln!(
        "backed up {} tasks, {} events, {} documents (schema {}) and {} spools into {}",
        m.tasks,
        m.events,
        m.documents,
        m.schema,
        m.spools.len(),
        args.file.display()
    );
    Ok(0)
}

/// `baton restore`: a data directory made from a backup.
pub fn restore(file: &Path, dir: &Path, spools_from: Option<&Path>) -> Result<u8, CliError> {
    let m = baton_store::backup::restore(file, dir, baton_store::sqlite::known_version(), spools_from)
        .map_err(|e| CliError::Backup(Box::new(e)))?;
    eprintln!(
        "restored {} tasks, {} events, {} documents from a backup taken at {} into {}; start it with `baton up --data-dir {}`",
        m.tasks,
        m.events,
        m.documents,
        m.taken_at,
        dir.display(),
        dir.display()
    );
    Ok(0)
}

/// The embeddings endpoint: its key variable set, and (from a running
/// coordinator) the documents waiting or failed.
async fn embeddings(args: &crate::cli::EmbeddingsArgs) -> Vec<Line> {
    let mut lines = Vec::new();
    match super::up::embeddings(args) {
        Ok(None) => {}
        Ok(Some(config)) => lines.push(line(
            Verdict::Ok,
            format!(
                "embeddings: {} ({}){}",
                config.url,
                config.model,
                if config.key.is_some() { ", key set" } else { "" }
            ),
            None,
        )),
        Err(e) => lines.push(Line {
            verdict: Verdict::Fail,
            what: format!("embeddings: {}", crate::error::report(&e)),
            fix: Some("export the key variable in the coordinator's environment, or fix --embeddings".into()),
        }),
    }
    if let Ok(client) = crate::context::client(None, None)
        && let Ok(Ok(index)) =
            tokio::time::timeout(Duration::from_secs(3), client.get::<baton_core::api::DocIndex>("/api/docs/index"))
                .await
        && index.endpoint.is_some()
    {
        let what = format!("embeddings: {} documents waiting, {} failed", index.pending, index.failed);
        match index.failures.iter().find(|f| f.failed) {
            Some(f) => lines.push(Line {
                verdict: Verdict::Fail,
                what: format!("{what} ({}: {})", f.name, f.error),
                fix: Some("fix the endpoint or the model, then `baton doc reindex`".into()),
            }),
            None => lines.push(line(Verdict::Ok, what, None)),
        }
    }
    lines
}
