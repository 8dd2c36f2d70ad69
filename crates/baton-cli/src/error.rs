//! The CLI's errors and their exit codes.
//!
//! One variant per kind of failure, each with what a person needs to fix it
//! and the cause in its source; `main` prints the error with its causes on one
//! line ([`report`]) and exits with [`CliError::exit_code`].

use std::path::PathBuf;

use baton_client::ClientError;
use baton_core::api::ErrorCode;

/// A cause, boxed.
type Cause = Box<dyn std::error::Error + Send + Sync>;

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The coordinator answered with an error, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No coordinator is configured or running for this directory.
    #[error("no coordinator found: run `baton up` in this repository, or set BATON_URL and BATON_TOKEN")]
    NoCoordinator,
    /// The coordinator's stream ended while a command followed it.
    #[error("lost the coordinator while {0}")]
    LostCoordinator(&'static str),
    /// The command was given something it cannot use; the sentence says what.
    #[error("{0}")]
    Usage(&'static str),
    /// A flag's value breaks a rule.
    #[error("{flag} {value:?} {problem}")]
    BadValue {
        /// The flag.
        flag: &'static str,
        /// What it was given.
        value: String,
        /// What is wrong, and what it should be (`is not …`).
        problem: &'static str,
    },
    /// A name (a label, say) that is not of the allowed form.
    #[error("invalid {what}")]
    BadName {
        /// What was named.
        what: &'static str,
        /// Why not.
        #[source]
        source: baton_core::names::NameError,
    },
    /// A file the command reads is not what it should be.
    #[error("{} is not {what}", path.display())]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What it should be (`valid JSON`, a plan, ...).
        what: &'static str,
        /// Why it is not, when there is more to say.
        #[source]
        source: Option<Cause>,
    },
    /// Listening beyond loopback needs what makes it safe.
    #[error("listening on {addr} beyond loopback {needs}")]
    Exposed {
        /// The address given.
        addr: std::net::SocketAddr,
        /// What it needs.
        needs: &'static str,
    },
    /// A backup or a restore did not happen.
    #[error("{0}")]
    Backup(Box<baton_store::backup::BackupError>),
    /// The coordinator answered with something the CLI cannot read.
    #[error("the coordinator sent {what} this baton cannot read")]
    Unexpected {
        /// What it sent.
        what: &'static str,
        /// Why it could not be read.
        #[source]
        source: Option<Cause>,
    },
    /// A finished task without a result.
    #[error("task {task} is {status} and has no result yet")]
    NoResult {
        /// The task.
        task: String,
        /// Its status.
        status: baton_core::status::TaskStatus,
    },
    /// A file or directory could not be used.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Another Baton holds the data directory.
    #[error("another Baton process is using {}", .0.display())]
    Locked(PathBuf),
    /// git is not installed.
    #[error("git is not on PATH: Baton needs it for worktrees, branches and merges (apt-get install git)")]
    NoGit,
    /// The store could not be opened.
    #[error("cannot open the store")]
    Store(#[source] Box<baton_store::StoreError>),
    /// The TLS certificate or key could not be loaded.
    #[error("cannot load the TLS certificate and key")]
    Tls(#[source] baton_server::tls::TlsError),
    /// The coordinator could not be started or set up.
    #[error("{what}")]
    Coordinator {
        /// What was being done.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: Box<baton_server::error::AppError>,
    },
    /// The launcher could not be started.
    #[error("cannot start the launcher")]
    Launcher(#[source] Box<baton_launcher::LauncherError>),
    /// The HTTP server's task ended abnormally.
    #[error("the server stopped")]
    Server(#[source] tokio::task::JoinError),
    /// The MCP server over stdio failed.
    #[error("MCP")]
    Mcp(#[source] Cause),
}

impl CliError {
    /// A file error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io { what: what.into(), source }
    }

    /// A failure of the coordinator while doing `what`.
    pub fn coordinator(what: &'static str) -> impl FnOnce(baton_server::error::AppError) -> Self {
        move |source| CliError::Coordinator { what, source: Box::new(source) }
    }

    /// The documented exit code (see `baton --help`).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Client(ClientError::Api { code, .. }) => match code {
                ErrorCode::NotFound => 3,
                ErrorCode::IllegalTransition
                | ErrorCode::Conflict
                | ErrorCode::AlreadyExists
                | ErrorCode::MergeConflict
                | ErrorCode::ReviewRequired
                | ErrorCode::ForgeRefused => 4,
                ErrorCode::Unauthorized | ErrorCode::Forbidden | ErrorCode::ForbiddenOrigin => 6,
                ErrorCode::Internal | ErrorCode::Unavailable => 10,
                _ => 7,
            },
            CliError::Client(ClientError::Connect { .. }) | CliError::NoCoordinator | CliError::LostCoordinator(_) => 5,
            CliError::Client(_) => 10,
            CliError::Usage(_)
            | CliError::BadValue { .. }
            | CliError::BadName { .. }
            | CliError::BadFile { .. }
            | CliError::Exposed { .. }
            | CliError::NoResult { .. } => 7,
            CliError::Backup(e) => match **e {
                baton_store::backup::BackupError::Io { .. } | baton_store::backup::BackupError::Store(_) => 10,
                _ => 7,
            },
            CliError::Unexpected { .. }
            | CliError::Io { .. }
            | CliError::Locked(_)
            | CliError::NoGit
            | CliError::Store(_)
            | CliError::Tls(_)
            | CliError::Coordinator { .. }
            | CliError::Launcher(_)
            | CliError::Server(_)
            | CliError::Mcp(_) => 10,
        }
    }
}

/// The error and its causes on one line.
pub fn report(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_of_failure_has_its_documented_exit_code() {
        assert_eq!(CliError::NoCoordinator.exit_code(), 5);
        assert_eq!(CliError::Usage("nothing to do").exit_code(), 7);
        assert_eq!(CliError::NoGit.exit_code(), 10);
        assert_eq!(CliError::Locked(PathBuf::from("/d")).exit_code(), 10);
    }

    #[test]
    fn a_report_names_every_cause_once() {
        let e = CliError::BadFile {
            path: PathBuf::from("plan.yaml"),
            what: "a plan",
            source: Some("line 3: expected a map".into()),
        };
        assert_eq!(report(&e), "plan.yaml is not a plan: line 3: expected a map");
    }
}
