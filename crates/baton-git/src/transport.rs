//! Moving commits between a launcher and its coordinator: a launcher's mirror of
//! a project (a bare repository of its own), fetched from the coordinator's
//! `/git/{project}` over git's smart HTTP protocol and pushed back to it.
//!
//! Credentials never reach a command line or a repository's configuration: the
//! launcher's token goes to git as `http.extraHeader` through `GIT_CONFIG_*`
//! variables (readable by the launcher's user only), and so does a private CA.

use std::path::{Path, PathBuf};

use crate::{Git, GitError};

/// A coordinator's repository of one project, and how to reach it.
#[derive(Debug, Clone)]
pub struct Remote {
    /// `https://coordinator/git/<project-id>`.
    pub url: String,
    /// The launcher token sent as a bearer token.
    pub token: String,
    /// The launcher protocol's header line (`Baton-Launcher-Protocol: 2`), sent
    /// as a launcher's every request must.
    pub protocol_header: String,
    /// A PEM file of CA certificates to trust, for a private CA.
    pub ca_file: Option<PathBuf>,
}

impl Remote {
    /// Configuration for one git command, as `GIT_CONFIG_*` variables.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("http.extraHeader".to_owned(), format!("Authorization: Bearer {}", self.token)),
            ("http.extraHeader".to_owned(), self.protocol_header.clone()),
        ];
        if let Some(ca) = &self.ca_file {
            pairs.push(("http.sslCAInfo".to_owned(), ca.display().to_string()));
        }
        const KEYS: [&str; 3] = ["GIT_CONFIG_KEY_0", "GIT_CONFIG_KEY_1", "GIT_CONFIG_KEY_2"];
        const VALUES: [&str; 3] = ["GIT_CONFIG_VALUE_0", "GIT_CONFIG_VALUE_1", "GIT_CONFIG_VALUE_2"];
        let mut env = vec![("GIT_CONFIG_COUNT", pairs.len().to_string())];
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            env.push((KEYS[i], k));
            env.push((VALUES[i], v));
        }
        if let Some(ca) = &self.ca_file {
            // It wins over `http.sslCAInfo`, so a host that sets it for everything
            // would otherwise ignore the coordinator's CA.
            env.push(("GIT_SSL_CAINFO", ca.display().to_string()));
        }
        env
    }
}

/// Makes a bare repository to mirror a project into, unless there is one. Its
/// objects are borrowed by task repositories, so it never prunes any.
pub async fn init_mirror(dir: &Path) -> Result<(), GitError> {
    if dir.join("HEAD").exists() {
        return Ok(());
    }
    let tmp = dir.with_extension("tmp");
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(GitError::Spawn)?;
    let git = Git::new(&tmp);
    git.run(["init", "-q", "--bare", "--template="]).await?;
    for (k, v) in [("gc.auto", "0"), ("gc.pruneExpire", "never"), ("core.logAllRefUpdates", "false")] {
        git.run(["config", k, v]).await?;
    }
    std::fs::rename(&tmp, dir).map_err(GitError::Spawn)
}

/// Which of `commits` the repository at `git_dir` lacks.
pub async fn missing(git_dir: &Path, commits: &[&str]) -> Result<Vec<String>, GitError> {
    if commits.is_empty() {
        return Ok(Vec::new());
    }
    let input: String = commits.iter().map(|c| format!("{c}\n")).collect();
    let out = Git::new(git_dir).run_with_input(["cat-file", "--batch-check=%(objecttype)"], input.as_bytes()).await?;
    Ok(commits.iter().zip(out.lines()).filter(|(_, kind)| *kind != "commit").map(|(c, _)| (*c).to_owned()).collect())
}

/// Fetches `refspecs` from the coordinator into the mirror.
pub async fn fetch(git_dir: &Path, remote: &Remote, refspecs: &[String]) -> Result<(), GitError> {
    let mut args = vec!["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", remote.url.as_str()];
    args.extend(refspecs.iter().map(String::as_str));
    Git::new(git_dir).run_with_env(args, &remote.env()).await.map(|_| ())
}

/// Fetches `refspecs` from another repository on this host (a task's) into
/// the mirror. Only the other repository's `upload-pack` runs there, which
/// obeys none of its configuration that names a command.
pub async fn fetch_local(git_dir: &Path, from: &Path, refspecs: &[String]) -> Result<(), GitError> {
    let from = from.to_string_lossy().into_owned();
    let mut args = vec!["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--", from.as_str()];
    args.extend(refspecs.iter().map(String::as_str));
    Git::new(git_dir).run(args).await.map(|_| ())
}

/// Pushes `refspecs` from the mirror to the coordinator. A refusal comes back as
/// [`GitError::Failed`] with git's (and the coordinator's) words.
pub async fn push(git_dir: &Path, remote: &Remote, refspecs: &[String]) -> Result<(), GitError> {
    let mut args = vec!["push", "--quiet", "--no-verify", "--porcelain", "--", remote.url.as_str()];
    args.extend(refspecs.iter().map(String::as_str));
    Git::new(git_dir).run_with_env(args, &remote.env()).await.map(|_| ())
}

/// Whether `ancestor` is an ancestor of (or equal to) `commit`.
pub async fn is_ancestor(git_dir: &Path, ancestor: &str, commit: &str) -> Result<bool, GitError> {
    Ok(Git::new(git_dir).probe(["merge-base", "--is-ancestor", ancestor, commit]).await?.0)
}

/// A commit that brings a branch last at `old` to `new`'s files when `new` does
/// not descend from `old` (its history was rewritten): a merge of both whose tree
/// is `new`'s, so the branch still only moves forward and keeps both histories.
pub async fn bridge(git_dir: &Path, old: &str, new: &str, message: &str) -> Result<String, GitError> {
    let git = Git::new(git_dir);
    let tree = format!("{new}^{{tree}}");
    let identity = git.identity_env().await?;
    let out = git.run_with_env(["commit-tree", tree.as_str(), "-p", old, "-p", new, "-m", message], &identity).await?;
    Ok(out.trim().to_owned())
}

/// The object directory of the repository at `repo` (a checkout or a bare one).
pub async fn objects_dir(repo: &Path) -> Result<PathBuf, GitError> {
    let git = Git::new(repo);
    let common = git.run(["rev-parse", "--path-format=absolute", "--git-common-dir"]).await?;
    Ok(PathBuf::from(common.trim()).join("objects"))
}
