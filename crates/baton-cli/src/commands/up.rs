//! `baton up`: the coordinator, its API and an embedded launcher, for the
//! repository it is started in.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use baton_core::api::CreateProject;
use baton_core::ids::LauncherId;
use baton_core::model::TokenKind;
use baton_server::auth::new_token;
use baton_server::{Coordinator, EmbeddingsConfig, ServerConfig, projects};
use baton_store::sqlite::{self, Durability as StoreDurability, SqliteOptions};
use nix::fcntl::{Flock, FlockArg};
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::launcher::{config as launcher_config, signalled};
use crate::cli::{Durability, EmbeddingsArgs, UpArgs};
use crate::context::DATA_DIR_NAME;
use crate::error::{CliError, report};

/// What `.baton/.gitignore` keeps out of git: runtime files, not the user's
/// `agents/` and `config.toml`.
const GITIGNORE: &str = "# Baton's runtime files (this file included), so they never show in git status.\n# agents/ and config.toml are yours to commit.\n/.gitignore\n/baton.db*\n/token\n/url\n/launcher.id\n/lock\n/runs/\n/worktrees/\n/docs/\n/git/\n/homes/\n/hooks/\n";

/// Takes the directory's lock so two processes never share it.
pub fn lock_dir(dir: &Path) -> Result<Flock<File>, CliError> {
    let path = dir.join("lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| CliError::io(format!("cannot open {}", path.display()), e))?;
    Flock::lock(file, FlockArg::LockExclusiveNonblock).map_err(|_| CliError::Locked(dir.to_owned()))
}

/// Makes a directory only its owner may enter.
pub fn private_dir(dir: &Path) -> Result<(), CliError> {
    std::fs::create_dir_all(dir).map_err(|e| CliError::io(format!("cannot create {}", dir.display()), e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| CliError::io(format!("cannot make {} private", dir.display()), e))
}

fn write_private(path: &Path, text: &str) -> Result<(), CliError> {
    let tmp = path.with_extension("tmp");
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| CliError::io(format!("cannot write {}", tmp.display()), e))?;
    f.write_all(text.as_bytes()).map_err(|e| CliError::io(format!("cannot write {}", tmp.display()), e))?;
    std::fs::rename(&tmp, path).map_err(|e| CliError::io(format!("cannot write {}", path.display()), e))
}

async fn bind(listen: &str) -> Result<TcpListener, CliError> {
    match TcpListener::bind(listen).await {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && listen == "127.0.0.1:7077" => {
            tracing::warn!("port 7077 is taken; listening on a free port instead");
            TcpListener::bind("127.0.0.1:0").await.map_err(|e| CliError::io("cannot listen on 127.0.0.1", e))
        }
        Err(e) => Err(CliError::io(format!("cannot listen on {listen}"), e)),
    }
}

/// The admin token: read from the data directory, or made at the first start.
/// Only its hash goes into the database. (Each coordinator sharing a database
/// has its own, in its own data directory.)
async fn admin_token(coordinator: &Coordinator, data_dir: &Path) -> Result<String, CliError> {
    let path = data_dir.join("token");
    let token = match std::fs::read_to_string(&path) {
        Ok(t) if !t.trim().is_empty() => t.trim().to_owned(),
        _ => {
            let t = new_token(TokenKind::Admin);
            write_private(&path, &t)?;
            t
        }
    };
    coordinator.trust_admin_token(&token).await.map_err(CliError::coordinator("cannot store the admin token"))?;
    Ok(token)
}

/// Opens the store `--store` names (the SQLite file in the data directory by
/// default).
fn open_store(args: &UpArgs, data_dir: &Path) -> Result<baton_store::Store, CliError> {
    let sqlite_at = |path: PathBuf| {
        let options = SqliteOptions {
            path,
            readers: 2,
            durability: match args.durability {
                Durability::Process => StoreDurability::Process,
                Durability::Power => StoreDurability::Power,
            },
        };
        sqlite::open(&options).map_err(|e| CliError::Store(Box::new(e)))
    };
    let store = match args.store.as_deref().map(str::trim) {
        None | Some("") => {
            let store = sqlite_at(data_dir.join("baton.db"))?;
            // The database holds every token's hash and every agent's output: its owner's only.
            for file in ["baton.db", "baton.db-wal", "baton.db-shm"] {
                let _ = std::fs::set_permissions(data_dir.join(file), std::fs::Permissions::from_mode(0o600));
            }
            store
        }
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            let options = baton_store::postgres::PgOptions::new(url);
            baton_store::postgres::open(&options).map_err(|e| CliError::Store(Box::new(e)))?
        }
        Some(url) if url.starts_with("sqlite:") => {
            let path = url.trim_start_matches("sqlite:").trim_start_matches("//");
            if path.is_empty() {
                return Err(CliError::Usage("--store sqlite:PATH needs a path"));
            }
            sqlite_at(PathBuf::from(path))?
        }
        Some(other) => {
            return Err(CliError::BadValue {
                flag: "--store",
                value: baton_store::postgres::redact(other),
                problem: "is not a store URL: give postgres://USER:PASSWORD@HOST:PORT/DB or sqlite:PATH",
            });
        }
    };
    tracing::info!(store = store.kind(), "store opened");
    Ok(store)
}

/// `baton up`: the coordinator, its embedded launcher and the dashboard, until
/// a signal stops them (the agents keep running).
pub async fn up(args: UpArgs) -> Result<u8, CliError> {
    let (repo, data_dir) = data_dir(&args).await?;
    let _lock = lock_dir(&data_dir)?;
    let store = open_store(&args, &data_dir)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(baton_server::tls::load(cert, key).map_err(CliError::Tls)?),
        _ => None,
    };
    let listener = bind(&args.listen).await?;
    let addr = listener.local_addr().map_err(|e| CliError::io("cannot read the listening address", e))?;
    let exposure = Exposure::check(&args, addr, tls.is_some())?;
    // The embedded launcher and this host's CLI use a loopback address; with TLS,
    // a plain listener of their own on loopback (no certificate to trust).
    let local = match &tls {
        Some(_) => Some(bind("127.0.0.1:0").await?),
        None => None,
    };
    let url = match &local {
        Some(l) => {
            format!("http://{}", l.local_addr().map_err(|e| CliError::io("cannot read the listening address", e))?)
        }
        None if addr.ip().is_unspecified() => format!("http://127.0.0.1:{}", addr.port()),
        None => format!("http://{addr}"),
    };
    let config = server_config(&args, &exposure, &url, &data_dir)?;
    let coordinator =
        Coordinator::start(store, config).await.map_err(CliError::coordinator("cannot start the coordinator"))?;
    settle_in(&coordinator, &data_dir, repo.as_deref()).await?;
    let login = coordinator.login_link().await.map_err(CliError::coordinator("cannot make a login link"))?;
    // One write for both lines: whoever reads the first line may close the pipe.
    let _ = write!(
        std::io::stdout().lock(),
        "listening on {url}\ndashboard: {login} (a one-time login link; `baton dashboard` prints another)\n",
    );
    let _ = std::io::stdout().flush();
    write_private(&data_dir.join("url"), &url)?;
    tracing::info!(data_dir = %data_dir.display(), "admin token in {}", data_dir.join("token").display());

    let (stop, stopped) = watch::channel(false);
    let server = tokio::spawn(serve(listener, local, tls, coordinator.router(), stopped.clone()));
    let launcher = if args.no_launcher {
        None
    } else {
        Some(start_launcher(&coordinator, &data_dir, &url, args.slots, stopped).await?)
    };
    tokio::select! {
        _ = signalled() => {}
        result = server => {
            return match result {
                Ok(Ok(())) => Ok(0),
                Ok(Err(e)) => Err(CliError::io("the server stopped", e)),
                Err(e) => Err(CliError::Server(e)),
            };
        }
    }
    eprintln!("stopping; running agents keep running and are re-attached by the next `baton up`");
    let _ = std::fs::remove_file(data_dir.join("url"));
    let _ = stop.send(true);
    if let Some(l) = launcher {
        let _ = tokio::time::timeout(Duration::from_secs(3), l).await;
    }
    coordinator.stop().await;
    Ok(0)
}

/// The repository `baton up` runs in (if any) and its data directory, made
/// private, with a `.gitignore` so git never shows it. No git on PATH is an
/// error before anything is made.
async fn data_dir(args: &UpArgs) -> Result<(Option<PathBuf>, PathBuf), CliError> {
    let cwd = std::env::current_dir().map_err(|e| CliError::io("cannot read the current directory", e))?;
    let repo = match baton_git::Git::discover(&cwd).await {
        Ok(repo) => Some(repo),
        Err(baton_git::GitError::Spawn(_)) => return Err(CliError::NoGit),
        Err(_) => None,
    };
    let data_dir =
        args.data_dir.clone().unwrap_or_else(|| repo.clone().unwrap_or_else(|| cwd.clone()).join(DATA_DIR_NAME));
    private_dir(&data_dir)?;
    let data_dir = std::fs::canonicalize(&data_dir).unwrap_or(data_dir);
    if !data_dir.join(".gitignore").exists() {
        let _ = std::fs::write(data_dir.join(".gitignore"), GITIGNORE);
    }
    Ok((repo, data_dir))
}

/// The coordinator's settings from `baton up`'s flags, with Baton's own git
/// hooks written into the data directory.
fn server_config(args: &UpArgs, exposure: &Exposure, url: &str, data_dir: &Path) -> Result<ServerConfig, CliError> {
    let public_url = exposure.public_url.clone().unwrap_or_else(|| url.to_owned());
    let mut config = ServerConfig::new(&public_url);
    config.allowed_hosts = Some(exposure.hosts.clone());
    let domain = &mut config.coordinator;
    domain.grace_s = args.grace;
    // Backups through the API are of an SQLite store in this data directory.
    if args.store.as_deref().is_none_or(|s| s.trim().is_empty()) {
        domain.data_dir = Some(data_dir.to_owned());
    }
    domain.launcher_timeout = Duration::from_secs(args.launcher_timeout);
    domain.heartbeat_retention = Duration::from_secs(args.heartbeat_retention);
    domain.retain_output = args.retain_output_days.map(|d| Duration::from_secs_f64(d * 86_400.0));
    domain.heartbeat_interval = (domain.launcher_timeout / 3).min(Duration::from_secs(5));
    domain.webhooks = baton_server::WebhookSettings {
        retries: args.webhook_retries.0.iter().map(|s| Duration::from_secs_f64(*s)).collect(),
        window: Duration::from_secs_f64(args.webhook_window),
        timeout: Duration::from_secs_f64(args.webhook_timeout),
        link_ttl: Duration::from_secs_f64(args.action_link_ttl),
    };
    domain.embeddings = embeddings(&args.embeddings)?;
    let hooks = data_dir.join("hooks");
    baton_server::git_http::install_hooks(&hooks)
        .map_err(|e| CliError::io(format!("cannot write Baton's git hooks into {}", hooks.display()), e))?;
    config.git_hooks_dir = Some(hooks);
    Ok(config)
}

/// What a started coordinator does once: trusts the data directory's admin
/// token, moves old binary documents into the store, registers the repository
/// it runs in, and says what in the configuration would fail later.
async fn settle_in(coordinator: &Coordinator, data_dir: &Path, repo: Option<&Path>) -> Result<(), CliError> {
    let state = Arc::clone(coordinator.state());
    admin_token(coordinator, data_dir).await?;
    match coordinator.import_blobs(&data_dir.join("docs")).await {
        Ok(0) => {}
        Ok(n) => tracing::info!(documents = n, "binary documents moved from files into the store"),
        Err(e) => tracing::warn!(error = %e, "could not move binary documents into the store"),
    }
    if let Some(root) = repo {
        let req = CreateProject { path: root.to_string_lossy().into_owned(), ..Default::default() };
        match projects::add_project(&state, req, true).await {
            Ok(p) => {
                tracing::info!(project = %p.name, id = %p.id, path = %p.path, "project registered")
            }
            Err(e) => {
                tracing::warn!(error = %e, "this repository was not registered as a project")
            }
        }
    }
    // A forge whose token is missing is said now, not at the first pull request.
    for warning in coordinator.configuration_warnings().await {
        eprintln!("warning: {warning}");
    }
    // The first start after `baton restore`: what the backup did not hold is
    // reconciled below (worktrees it does not know are reported, never
    // deleted; runs that were running are taken up from their spools, or lost).
    let restored = data_dir.join("restored.json");
    let mut roots = vec![data_dir.join("worktrees")];
    if let Ok(note) = std::fs::read_to_string(&restored) {
        tracing::warn!(note = %note.trim(), "first start after a restore: reconciling the store with what is on disk");
        let _ = std::fs::rename(&restored, data_dir.join("restored.json.done"));
        // The worktrees the backup's tasks used live where they were made.
        let known = state.store.read(|r| r.tasks(&baton_store::TaskFilter::default())).await.unwrap_or_default();
        for t in known {
            let root = t.git.worktree.as_deref().map(Path::new).and_then(|w| w.parent()).and_then(|p| p.parent());
            if let Some(root) = root.map(Path::to_path_buf).filter(|r| !roots.contains(r)) {
                roots.push(root);
            }
        }
    }
    let mut orphans = Vec::new();
    for root in &roots {
        orphans.extend(projects::orphan_worktrees(&state, root).await);
    }
    for orphan in &orphans {
        tracing::warn!(worktree = %orphan.display(), "this worktree belongs to no task Baton knows; it was left as it is");
    }
    if roots.len() > 1 || data_dir.join("restored.json.done").exists() && !data_dir.join("reconciled.json").exists() {
        // After a restore, what was found is kept for people to read.
        let report =
            serde_json::json!({ "unknown_worktrees": orphans, "at": baton_core::time::Timestamp::now().to_rfc3339() });
        let _ =
            std::fs::write(data_dir.join("reconciled.json"), serde_json::to_vec_pretty(&report).unwrap_or_default());
    }
    Ok(())
}

/// Serves the API on `listener` (with TLS when `tls` is given) and on `local`
/// (plain, loopback), until `stopped` turns true.
async fn serve(
    listener: TcpListener,
    local: Option<TcpListener>,
    tls: Option<Arc<baton_server::tls::Config>>,
    router: axum::Router,
    stopped: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let until = |mut s: watch::Receiver<bool>| async move {
        let _ = s.wait_for(|v| *v).await;
    };
    // Small responses (a launcher's assignment) must not wait for delayed ACKs.
    let plain = |l: TcpListener| {
        axum::serve::ListenerExt::tap_io(l, |tcp| {
            let _ = tcp.set_nodelay(true);
        })
    };
    if let Some(local) = local {
        let (router, stopped) = (router.clone(), stopped.clone());
        tokio::spawn(async move { axum::serve(plain(local), router).with_graceful_shutdown(until(stopped)).await });
    }
    match tls {
        Some(tls) => {
            let secure = baton_server::tls::TlsListener::new(listener, tls)?;
            axum::serve(secure, router).with_graceful_shutdown(until(stopped)).await
        }
        None => axum::serve(plain(listener), router).with_graceful_shutdown(until(stopped)).await,
    }
}

/// Where the coordinator may be reached from: the URL it tells agents and
/// launchers, and the host names it answers to.
struct Exposure {
    /// `--public-url`, checked.
    public_url: Option<String>,
    /// Host names the `Host` header may carry.
    hosts: Vec<String>,
}

impl Exposure {
    /// Checks `--public-url`, and that listening beyond loopback is deliberate
    /// (a public URL, and TLS or `--insecure-http`).
    fn check(args: &UpArgs, addr: std::net::SocketAddr, tls: bool) -> Result<Self, CliError> {
        let mut hosts: Vec<String> = ["127.0.0.1", "localhost", "[::1]"].map(String::from).to_vec();
        let public_url = match &args.public_url {
            Some(url) => {
                let url = url.trim().trim_end_matches('/').to_owned();
                let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://")).ok_or_else(|| {
                    CliError::BadValue {
                        flag: "--public-url",
                        value: url.clone(),
                        problem: "is not an http(s) URL (like https://coord.example:7077)",
                    }
                })?;
                let authority = rest.split('/').next().unwrap_or("");
                let host = match authority.rsplit_once(':') {
                    Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) && !h.is_empty() => h,
                    _ => authority,
                };
                if host.is_empty() || host.contains(['@', ' ']) {
                    return Err(CliError::BadValue { flag: "--public-url", value: url, problem: "names no host" });
                }
                hosts.push(host.to_owned());
                Some(url)
            }
            None => None,
        };
        if !addr.ip().is_loopback() {
            if public_url.is_none() {
                return Err(CliError::Exposed {
                    addr,
                    needs: "needs --public-url (the URL agents and launchers use, and the host this coordinator answers to)",
                });
            }
            if !tls && !args.insecure_http {
                return Err(CliError::Exposed {
                    addr,
                    needs: "without TLS would send tokens in the clear: give --tls-cert FILE --tls-key FILE, or --insecure-http to accept that",
                });
            }
            if !tls {
                eprintln!(
                    "warning: listening on {addr} without TLS (--insecure-http): tokens cross the network in the clear"
                );
            }
            if !addr.ip().is_unspecified() {
                hosts.push(addr.ip().to_string());
            }
        }
        Ok(Self { public_url, hosts })
    }
}

/// Starts the embedded launcher with a launcher token of its own.
async fn start_launcher(
    coordinator: &Coordinator,
    data_dir: &Path,
    url: &str,
    slots: u32,
    stopped: watch::Receiver<bool>,
) -> Result<tokio::task::JoinHandle<()>, CliError> {
    let id_file: PathBuf = data_dir.join("launcher.id");
    let id = match std::fs::read_to_string(&id_file).ok().and_then(|s| LauncherId::parse(s.trim()).ok()) {
        Some(id) => id,
        None => {
            let id = LauncherId::generate();
            write_private(&id_file, id.as_str())?;
            id
        }
    };
    let token =
        coordinator.launcher_token(&id).await.map_err(CliError::coordinator("cannot make the launcher's token"))?;
    let mut config = launcher_config(url, &token, data_dir, "embedded".into(), slots).await?;
    config.local_repos = true;
    let launcher = baton_launcher::Launcher::new(config).map_err(|e| CliError::Launcher(Box::new(e)))?;
    Ok(tokio::spawn(async move {
        if let Err(e) = launcher.run(stopped).await {
            tracing::error!(error = %report(&e), "the launcher stopped");
        }
    }))
}

/// The embeddings endpoint `--embeddings` names, with its key read from the
/// variable `--embeddings-key-env` names (refused when that is not set).
pub(crate) fn embeddings(args: &EmbeddingsArgs) -> Result<Option<EmbeddingsConfig>, CliError> {
    let Some(url) = args.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) else { return Ok(None) };
    let host = url.strip_prefix("http://").or_else(|| url.strip_prefix("https://")).unwrap_or("");
    if host.is_empty() || host.starts_with('/') || url.chars().any(char::is_whitespace) {
        return Err(CliError::BadValue {
            flag: "--embeddings",
            value: url.to_owned(),
            problem: "is not an http(s) URL (the API's base, like http://127.0.0.1:11434/v1)",
        });
    }
    let key = match args.key_env.as_deref().filter(|v| !v.is_empty()) {
        Some(var) => match std::env::var(var) {
            Ok(key) if !key.trim().is_empty() => Some(key.trim().to_owned()),
            _ => {
                return Err(CliError::BadValue {
                    flag: "--embeddings-key-env",
                    value: var.to_owned(),
                    problem: "names an environment variable that is not set (export the endpoint's key in it)",
                });
            }
        },
        None => None,
    };
    Ok(Some(EmbeddingsConfig { url: url.to_owned(), model: args.model.clone(), key, dims: args.dims }))
}
