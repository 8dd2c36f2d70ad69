//! A run's spool directory: everything needed to supervise an agent and to pick
//! it up again after the launcher restarts.
//!
//! ```text
//! runs/<run-id>/
//!   spec.json        the exact process to run, for the supervisor (0600)
//!   stdin            the prompt, when the executor reads stdin
//!   stdout, stderr   the agent's output, byte for byte, appended by the agent itself
//!   lock             held (flock) by the supervisor for as long as it lives
//!   supervisor.pid   the supervisor's pid
//!   agent.pid        the agent's process group id (its pid; in a sandbox, the
//!                    sandbox's first process, whose group holds the agent)
//!   exit.json        how the agent ended, written atomically by the supervisor
//! ```

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use baton_core::ids::RunId;
use serde::{Deserialize, Serialize};

/// The process a supervisor runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Spec {
    /// The program.
    pub program: String,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: PathBuf,
    /// Whether the `stdin` file holds its input.
    pub stdin: bool,
    /// Seconds before it is stopped as timed out.
    pub timeout_s: Option<u64>,
    /// Seconds between the interrupt and SIGKILL when stopping.
    pub grace_s: u64,
    /// Seconds without a byte of output before it is stopped as stalled.
    #[serde(default)]
    pub stall_s: Option<u64>,
    /// The sandbox's command line the program runs under (`bwrap` and its
    /// arguments, without the program), when it has one (with a container, the
    /// one git runs under in the worktree).
    #[serde(default)]
    pub sandbox: Option<Vec<String>>,
    /// Names of the variables of `env` whose values are secrets (shown redacted).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// The agent's network policy, when it has a network namespace of its own.
    #[serde(default)]
    pub network: Option<baton_core::sandbox::NetworkPolicy>,
    /// The container the agent runs in, when it runs in one.
    #[serde(default)]
    pub container: Option<crate::container::Container>,
}

/// How the agent ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// It exited by itself.
    Exited,
    /// It was stopped on request.
    Stopped,
    /// It ran past its timeout.
    TimedOut,
    /// It printed nothing for `stall_s` seconds.
    Stalled,
    /// It could not be started.
    SpawnFailed,
}

/// What the supervisor writes when the agent is gone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ExitRecord {
    /// How it ended.
    pub outcome: Outcome,
    /// Its exit code, when it exited.
    pub exit_code: Option<i32>,
    /// The signal that killed it, when one did.
    pub signal: Option<i32>,
    /// What went wrong, for a spawn failure.
    pub error: Option<String>,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
}

/// A run's spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    /// The directory.
    dir: PathBuf,
}

impl Spool {
    /// The spool of `run` under `runs_dir`.
    pub fn of(runs_dir: &Path, run: &RunId) -> Self {
        Self { dir: runs_dir.join(run.as_str()) }
    }

    /// The spool at `dir`.
    pub fn at(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    /// Creates the directory (only its owner may read it).
    pub fn create(&self) -> io::Result<()> {
        fs::create_dir_all(&self.dir)?;
        fs::set_permissions(&self.dir, fs::Permissions::from_mode(0o700))
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file of the spool.
    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Writes a file readable only by its owner, atomically (write, then rename).
    pub fn write_private(&self, name: &str, bytes: &[u8]) -> io::Result<()> {
        let tmp = self.path(&format!(".{name}.tmp"));
        let mut f = OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
        f.write_all(bytes)?;
        drop(f);
        fs::rename(tmp, self.path(name))
    }

    fn read_json<T: for<'de> Deserialize<'de>>(&self, name: &str) -> io::Result<T> {
        let text = fs::read(self.path(name))?;
        serde_json::from_slice(&text).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }

    fn write_json<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        let bytes = serde_json::to_vec(value).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        self.write_private(name, &bytes)
    }

    /// The supervisor's instructions.
    pub fn read_spec(&self) -> io::Result<Spec> {
        self.read_json("spec.json")
    }

    /// Writes the supervisor's instructions.
    pub fn write_spec(&self, spec: &Spec) -> io::Result<()> {
        self.write_json("spec.json", spec)
    }

    /// How the agent ended, once it has.
    pub fn read_exit(&self) -> io::Result<ExitRecord> {
        self.read_json("exit.json")
    }

    /// Records how the agent ended.
    pub fn write_exit(&self, record: &ExitRecord) -> io::Result<()> {
        self.write_json("exit.json", record)
    }

    /// A pid file's number.
    pub fn read_pid(&self, name: &str) -> Option<i32> {
        fs::read_to_string(self.path(name)).ok()?.trim().parse().ok()
    }

    /// Reads at most `max` bytes of output file `name` from `offset`.
    pub fn read_from(&self, name: &str, offset: u64, max: usize) -> io::Result<Vec<u8>> {
        let mut f = match File::open(self.path(name)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        f.seek(SeekFrom::Start(offset))?;
        let mut buf = Vec::new();
        f.take(max as u64).read_to_end(&mut buf)?;
        Ok(buf)
    }

    /// Removes the spool.
    pub fn remove(&self) -> io::Result<()> {
        fs::remove_dir_all(&self.dir)
    }
}

/// The run ids with a spool under `runs_dir`.
pub fn list(runs_dir: &Path) -> Vec<RunId> {
    let Ok(entries) = fs::read_dir(runs_dir) else {
        return Vec::new();
    };
    let mut ids: Vec<RunId> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().and_then(|n| RunId::parse(n).ok()))
        .collect();
    ids.sort();
    ids
}
