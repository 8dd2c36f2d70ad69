//! The launcher's mirrors: one bare repository per project in its own data
//! directory, which task repositories borrow their objects from.
//!
//! A launcher that sees the project's checkout (the one `baton up` embeds) lets
//! its mirror borrow the project's own objects, so it never fetches. Any other
//! fetches from the coordinator's `/git/{project}`, only when a commit a run
//! needs is missing, in one fetch of every ref it needs. Work goes back the same
//! way: the task's branch is fetched from its repository into the mirror, and
//! pushed from there to the coordinator, which takes only the refs of runs this
//! launcher holds. Nothing is ever pushed from a repository an agent can write.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use baton_core::ids::ProjectId;
use baton_core::model::Project;
use baton_git::GitError;
use baton_git::transport::{self, Remote};

/// A commit a run needs, and the ref of the coordinator's repository it is on.
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    /// The ref (`refs/heads/main`, `refs/baton/checkpoints/<task>`).
    pub refname: String,
    /// The commit.
    pub commit: String,
}

/// Every project's mirror on this host.
pub(crate) struct Mirrors {
    /// Where they live (`<data>/git`).
    dir: PathBuf,
    /// The coordinator (its URLs: the one calls go to now first).
    coordinator: baton_client::Client,
    /// The launcher's token.
    token: String,
    /// A private CA to trust.
    ca_file: Option<PathBuf>,
    /// Whether projects' checkouts are on this host (the embedded launcher).
    local: bool,
    /// One lock per project: fetches into one mirror never overlap.
    locks: Mutex<HashMap<ProjectId, Arc<tokio::sync::Mutex<()>>>>,
    /// Spare task repositories borrowing from the mirrors.
    pub(crate) spares: Arc<crate::spares::Spares>,
}

/// What happened to a mirror that had to be made again.
pub(crate) type Notes = Vec<String>;

impl Mirrors {
    /// The mirrors under `dir`, of the coordinator `coordinator` calls.
    pub fn new(
        dir: PathBuf,
        coordinator: baton_client::Client,
        token: &str,
        ca_file: Option<PathBuf>,
        local: bool,
    ) -> Self {
        Self {
            dir,
            coordinator,
            token: token.to_owned(),
            ca_file,
            local,
            locks: Mutex::default(),
            spares: Arc::default(),
        }
    }

    /// Whether this launcher sees projects' checkouts.
    pub fn local(&self) -> bool {
        self.local
    }

    /// Keeps the project's spare worktrees ready at the head of its default
    /// branch (`commit`, or newer when the branch is seen to have moved).
    pub fn keep_spares(&self, project: &baton_core::model::Project, worktrees_dir: &Path, commit: &str) {
        let mirror = self.path(&project.id);
        let heads = if self.local { PathBuf::from(&project.path) } else { mirror.clone() };
        self.spares.keep(project, worktrees_dir, mirror.join("objects"), heads, commit);
    }

    /// Whether a project's mirror still has its parts (a cheap look, no git): a
    /// task may take a spare that borrows from it without the full check of
    /// [`Mirrors::ready`], which mends a mirror that lost them.
    pub fn looks_whole(&self, project: &ProjectId) -> bool {
        let mirror = self.path(project);
        let parts = ["HEAD", "objects/pack", "objects/info"];
        parts.iter().all(|p| mirror.join(p).exists())
            && (!self.local || mirror.join("objects/info/alternates").is_file())
    }

    /// The mirror of a project.
    pub fn path(&self, project: &ProjectId) -> PathBuf {
        self.dir.join(format!("{project}.git"))
    }

    /// The object directories a task repository of the project reads: the
    /// mirror's and those it borrows from in turn.
    pub fn objects(&self, project: &ProjectId) -> Vec<PathBuf> {
        let objects = self.path(project).join("objects");
        let borrowed = std::fs::read_to_string(objects.join("info/alternates")).unwrap_or_default();
        let mut all = vec![objects];
        all.extend(borrowed.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).map(PathBuf::from));
        all
    }

    /// The project's repository on each coordinator replica, the one calls go to
    /// now first.
    fn remotes(&self, project: &ProjectId) -> Vec<Remote> {
        self.coordinator
            .bases()
            .into_iter()
            .map(|base| Remote {
                url: format!("{base}/git/{project}"),
                token: self.token.clone(),
                protocol_header: format!(
                    "{}: {}",
                    baton_core::api::LAUNCHER_PROTOCOL_HEADER,
                    baton_core::api::LAUNCHER_PROTOCOL
                ),
                ca_file: self.ca_file.clone(),
            })
            .collect()
    }

    /// Runs a transfer against each replica in turn until one succeeds; while
    /// the failures are of the coordinator being away (unreachable, or a 5xx:
    /// its database restarting), again after a pause, for up to [`PATIENCE`].
    async fn with_failover<F, Fut>(&self, project: &ProjectId, transfer: F) -> Result<(), GitError>
    where
        F: Fn(Remote) -> Fut,
        Fut: std::future::Future<Output = Result<(), GitError>>,
    {
        let started = std::time::Instant::now();
        let mut pause = std::time::Duration::from_millis(200);
        loop {
            let mut last = None;
            for remote in self.remotes(project) {
                match transfer(remote).await {
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        tracing::warn!(error = %e, "a git transfer with the coordinator failed; trying the next URL if any");
                        last = Some(e);
                    }
                }
            }
            let e = last.expect("a client has at least one URL");
            if !away(&e) || started.elapsed() >= PATIENCE {
                return Err(e);
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(std::time::Duration::from_secs(5));
        }
    }

    fn lock(&self, project: &ProjectId) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(project.clone()).or_default())
    }

    /// The project's mirror with every `wanted` commit in it: fetched (once, all
    /// refs together) when some are missing, made again when it is corrupt.
    /// Notes say what happened that a person should know.
    pub async fn ready(&self, project: &Project, wanted: &[Wanted]) -> Result<(PathBuf, Notes), String> {
        let lock = self.lock(&project.id);
        let _held = lock.lock().await;
        let mirror = self.path(&project.id);
        let mut notes = Vec::new();
        match self.fill(project, &mirror, wanted).await {
            Ok(()) => return Ok((mirror, notes)),
            Err(e) if !corrupt(&e) => {
                return Err(format!("could not update the mirror of project {}: {e}", project.name));
            }
            Err(e) => {
                tracing::warn!(mirror = %mirror.display(), error = %e, "the mirror is corrupt; cloning it again");
                notes.push(format!(
                    "the launcher's mirror of project {} was corrupt ({e}); it was removed and cloned again",
                    project.name
                ));
            }
        }
        // A new mirror: task repositories that borrowed from the old one find the
        // same objects again once it has fetched what they use.
        let _ = std::fs::remove_dir_all(&mirror);
        self.fill(project, &mirror, wanted)
            .await
            .map_err(|e| format!("could not clone the mirror of project {} again: {e}", project.name))?;
        Ok((mirror, notes))
    }

    async fn fill(&self, project: &Project, mirror: &Path, wanted: &[Wanted]) -> Result<(), GitError> {
        transport::init_mirror(mirror).await?;
        if self.local {
            let objects = mirror.join("objects/info/alternates");
            if !objects.exists() {
                let theirs = transport::objects_dir(Path::new(&project.path)).await?;
                baton_git::worktree::set_alternates(mirror, &[theirs]).map_err(GitError::Spawn)?;
            }
        }
        let commits: Vec<&str> = wanted.iter().map(|w| w.commit.as_str()).collect();
        let missing = transport::missing(mirror, &commits).await?;
        if missing.is_empty() {
            return Ok(());
        }
        let refspecs: Vec<String> = wanted
            .iter()
            .filter(|w| missing.contains(&w.commit))
            .map(|w| format!("+{0}:{0}", w.refname))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        self.with_failover(&project.id, |remote| {
            let refspecs = refspecs.clone();
            async move { transport::fetch(mirror, &remote, &refspecs).await }
        })
        .await?;
        let still = transport::missing(mirror, &commits).await?;
        if let Some(commit) = still.first() {
            return Err(GitError::Failed {
                args: "fetch".into(),
                stderr: format!("commit {commit} is not on the coordinator's {}", refspecs.join(", ")),
                code: None,
            });
        }
        Ok(())
    }

    /// Pushes `refspecs` (`<commit>:<ref>`) of a project's mirror to the coordinator.
    pub async fn push(&self, project: &ProjectId, refspecs: &[String]) -> Result<(), GitError> {
        let lock = self.lock(project);
        let _held = lock.lock().await;
        let mirror = self.path(project);
        self.with_failover(project, |remote| {
            let mirror = mirror.clone();
            async move { transport::push(&mirror, &remote, refspecs).await }
        })
        .await
    }

    /// Brings a task repository's `refname` into the project's mirror as `into`;
    /// the commit it names.
    pub async fn take(&self, project: &ProjectId, repo: &Path, refname: &str, into: &str) -> Result<String, GitError> {
        let lock = self.lock(project);
        let _held = lock.lock().await;
        let mirror = self.path(project);
        transport::fetch_local(&mirror, &repo.join(".git"), &[format!("+{refname}:{into}")]).await?;
        let commit = baton_git::Git::new(&mirror).resolve(into).await?;
        commit.ok_or_else(|| GitError::Unexpected { args: format!("rev-parse {into}"), output: String::new() })
    }
}

/// How long a transfer waits for a coordinator that is away.
const PATIENCE: std::time::Duration = std::time::Duration::from_secs(120);

/// Whether a git failure says the coordinator is away rather than that it
/// refused (a refused ref, a missing commit).
fn away(e: &GitError) -> bool {
    let text = e.to_string();
    if text.contains("returned error: 4") {
        return false;
    }
    ["returned error: 50", "unable to access", "Could not connect", "Connection refused", "Empty reply", "timed out"]
        .iter()
        .any(|w| text.contains(w))
}

/// Whether a git failure means the repository itself is damaged.
fn corrupt(e: &GitError) -> bool {
    let text = e.to_string();
    ["corrupt", "bad object", "not a git repository", "unable to read", "loose object", "packfile", "invalid object"]
        .iter()
        .any(|w| text.contains(w))
}
