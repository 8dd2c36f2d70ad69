//! Running git, and the questions about a repository Baton asks.

use std::ffi::OsStr;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use tokio::process::Command;

/// A git command that failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("error running git (is it installed?)")]
    Spawn(#[source] std::io::Error),
    /// git exited with an error.
    #[error("git {args} failed: {stderr}")]
    Failed {
        /// The arguments, for the message.
        args: String,
        /// What git printed on stderr.
        stderr: String,
        /// Its exit code.
        code: Option<i32>,
    },
    /// Merging would conflict; the files named are the ones in conflict.
    #[error("merging {what} conflicts in {}", files.join(", "))]
    Conflict {
        /// What was being merged.
        what: String,
        /// The conflicting files.
        files: Vec<String>,
    },
    /// The path is not inside a git repository.
    #[error("{0} is not a git repository")]
    NotARepository(PathBuf),
    /// The repository has no commit yet.
    #[error("the repository at {0} has no commits yet; commit something first")]
    NoCommits(PathBuf),
    /// git printed something Baton could not read.
    #[error("unexpected output from git {args}: {output}")]
    Unexpected {
        /// The arguments.
        args: String,
        /// The output.
        output: String,
    },
}

/// A git repository (or worktree) at a path.
#[derive(Debug, Clone)]
pub struct Git {
    /// The directory git runs in.
    dir: PathBuf,
    /// A program and arguments that run git (a sandbox: `bwrap ... --`), for
    /// repositories an agent controls, whose configuration may name commands.
    wrapper: Option<Arc<Vec<OsString>>>,
    /// The whole environment git gets, when set (else the caller's).
    env: Option<Arc<Vec<(String, String)>>>,
    /// Configuration given on the command line (`-c key=value`), after Baton's own.
    config: Vec<(String, String)>,
}

impl Git {
    /// Git in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into(), wrapper: None, env: None, config: Vec::new() }
    }

    /// Git in `dir`, run through `wrapper` (a sandbox's command line, which ends
    /// where the program begins) with exactly `env`. Hooks are off: commands Baton
    /// runs in an agent's repository never run the agent's hooks.
    pub fn jailed(
        dir: impl Into<PathBuf>,
        wrapper: Option<Arc<Vec<OsString>>>,
        env: Arc<Vec<(String, String)>>,
    ) -> Self {
        let mut git = Self { dir: dir.into(), wrapper, env: Some(env), config: Vec::new() };
        git.config.push(("core.hooksPath".into(), "/dev/null".into()));
        git.config.push(("core.fsmonitor".into(), "false".into()));
        git
    }

    /// The same, with `key=value` set for every command (`-c`).
    pub fn with_config(mut self, key: &str, value: &str) -> Self {
        self.config.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The directory git runs in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs git with `args` and extra environment; its stdout on success.
    pub async fn run_with_env<I, S>(&self, args: I, env: &[(&str, String)]) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        let mut cmd = self.command(args.clone());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let output = cmd.output().await.map_err(GitError::Spawn)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(GitError::Failed {
                args: describe(args),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                code: output.status.code(),
            })
        }
    }

    /// Runs git with `input` on its stdin; its stdout on success.
    pub async fn run_with_input<I, S>(&self, args: I, input: &[u8]) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        use tokio::io::AsyncWriteExt;
        let mut cmd = self.command(args.clone());
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(GitError::Spawn)?;
        if let Some(mut stdin) = child.stdin.take() {
            // A git that stopped reading (it failed at once) says why on stderr.
            let _ = stdin.write_all(input).await;
        }
        let output = child.wait_with_output().await.map_err(GitError::Spawn)?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            Err(GitError::Failed {
                args: describe(args),
                stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
                code: output.status.code(),
            })
        }
    }

    /// Runs git and returns its exit code and raw stdout, whatever the code.
    pub async fn output<I, S>(&self, args: I) -> Result<(Option<i32>, Vec<u8>, String), GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self.command(args).output().await.map_err(GitError::Spawn)?;
        Ok((output.status.code(), output.stdout, String::from_utf8_lossy(&output.stderr).trim().to_owned()))
    }

    /// The commit a revision names, or `None` when it names none.
    pub async fn resolve(&self, rev: &str) -> Result<Option<String>, GitError> {
        let spec = format!("{rev}^{{commit}}");
        let (ok, out) = self.probe(["rev-parse", "--verify", "--quiet", "--end-of-options", spec.as_str()]).await?;
        Ok(ok.then(|| out.trim().to_owned()).filter(|s| !s.is_empty()))
    }

    /// Environment giving commits an author when the repository has none
    /// configured (commits Baton makes for agents must not fail for want of one).
    pub async fn identity_env(&self) -> Result<Vec<(&'static str, String)>, GitError> {
        let (has_email, _) = self.probe(["config", "user.email"]).await?;
        let (has_name, _) = self.probe(["config", "user.name"]).await?;
        if has_email && has_name {
            return Ok(Vec::new());
        }
        Ok(vec![
            ("GIT_AUTHOR_NAME", "Baton".to_owned()),
            ("GIT_AUTHOR_EMAIL", "baton@localhost".to_owned()),
            ("GIT_COMMITTER_NAME", "Baton".to_owned()),
            ("GIT_COMMITTER_EMAIL", "baton@localhost".to_owned()),
        ])
    }

    fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = match &self.wrapper {
            Some(wrapper) => {
                let mut cmd = Command::new(&wrapper[0]);
                cmd.args(&wrapper[1..]).arg("git");
                cmd
            }
            None => Command::new("git"),
        };
        if let Some(env) = &self.env {
            cmd.env_clear().envs(env.iter().map(|(k, v)| (k, v)));
        }
        cmd.arg("-C").arg(&self.dir).args(["-c", "core.quotepath=off", "-c", "advice.detachedHead=false"]);
        for (k, v) in &self.config {
            cmd.arg("-c").arg(format!("{k}={v}"));
        }
        cmd.args(args)
            .env("LC_ALL", "C")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_PAGER", "cat")
            .env_remove("GIT_DIR")
            .env_remove("GIT_WORK_TREE")
            .env_remove("GIT_INDEX_FILE")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        cmd
    }

    /// Runs git with `args`; its stdout on success.
    pub async fn run<I, S>(&self, args: I) -> Result<String, GitError>
    where
        I: IntoIterator<Item = S> + Clone,
        S: AsRef<OsStr>,
    {
        self.run_with_env(args, &[]).await
    }

    /// Runs git and returns whether it exited 0, with its stdout (for commands
    /// whose failure is an answer, like `merge-base --is-ancestor`).
    pub async fn probe<I, S>(&self, args: I) -> Result<(bool, String), GitError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let output = self.command(args).output().await.map_err(GitError::Spawn)?;
        Ok((output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned()))
    }

    /// The top directory of the repository containing `path`.
    pub async fn discover(path: &Path) -> Result<PathBuf, GitError> {
        let git = Git::new(path);
        let (ok, out) = git.probe(["rev-parse", "--show-toplevel"]).await?;
        if !ok {
            return Err(GitError::NotARepository(path.to_owned()));
        }
        Ok(PathBuf::from(out.trim()))
    }

    /// Whether the repository has at least one commit.
    pub async fn has_commits(&self) -> Result<bool, GitError> {
        Ok(self.probe(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"]).await?.0)
    }

    /// The branch checked out, or `None` on a detached HEAD.
    pub async fn current_branch(&self) -> Result<Option<String>, GitError> {
        let (ok, out) = self.probe(["symbolic-ref", "--quiet", "--short", "HEAD"]).await?;
        Ok(ok.then(|| out.trim().to_owned()).filter(|b| !b.is_empty()))
    }

    /// The commit a branch points at, read from the ref files when it can be
    /// (no process: this is on the way to every new task's start), else asked
    /// of git.
    pub async fn branch_head(&self, branch: &str) -> Result<Option<String>, GitError> {
        let refname = format!("refs/heads/{branch}");
        if let Some(dir) = git_dir(&self.dir) {
            if let Ok(text) = std::fs::read_to_string(dir.join(&refname)) {
                let id = text.trim();
                if matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Ok(Some(id.to_owned()));
                }
            } else if let Ok(packed) = std::fs::read_to_string(dir.join("packed-refs")) {
                let found = packed_ref(&packed, &refname);
                if found.is_some() {
                    return Ok(found);
                }
            }
        }
        self.resolve(&refname).await
    }

    /// Whether a local branch exists.
    pub async fn branch_exists(&self, branch: &str) -> Result<bool, GitError> {
        let refname = format!("refs/heads/{branch}");
        Ok(self.probe(["show-ref", "--verify", "--quiet", refname.as_str()]).await?.0)
    }
}

/// The git directory of a checkout (`.git`) or of a bare repository; `None`
/// for anything else (a linked worktree's `.git` file: git is asked then).
fn git_dir(path: &Path) -> Option<PathBuf> {
    let dot = path.join(".git");
    if dot.is_dir() {
        return Some(dot);
    }
    (!dot.exists() && path.join("HEAD").is_file()).then(|| path.to_owned())
}

fn describe<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    args.into_iter().map(|a| a.as_ref().to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ")
}

/// A ref's object id in a `packed-refs` file's text.
pub(crate) fn packed_ref(packed: &str, refname: &str) -> Option<String> {
    packed.lines().find_map(|l| {
        let (id, name) = l.split_once(' ')?;
        (name == refname && matches!(id.len(), 40 | 64) && id.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| id.to_owned())
    })
}
