//! The CLI's errors and their exit codes.

use baton_client::ClientError;
use baton_core::api::ErrorCode;

/// A command that failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The coordinator answered with an error, or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// No coordinator is configured or running for this directory.
    #[error("{0}")]
    NoCoordinator(String),
    /// The command's input is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A file could not be used.
    #[error("{what}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        #[source]
        source: std::io::Error,
    },
    /// Starting the coordinator failed.
    #[error("{0}")]
    Startup(String),
}

impl CliError {
    /// A file error with what was being done.
    pub fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        CliError::Io { what: what.into(), source }
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
            CliError::Client(ClientError::Connect { .. }) | CliError::NoCoordinator(_) => 5,
            CliError::Client(_) => 10,
            CliError::Invalid(_) => 7,
            CliError::Io { .. } | CliError::Startup(_) => 10,
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
