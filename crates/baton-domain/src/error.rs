//! What a domain operation refuses or fails with.
//!
//! One variant per kind of refusal, each with what a person needs to act on it
//! and, for failures, the cause in its source. The domain knows nothing of HTTP:
//! [`Error::code`] names the stable code a refusal is known by, and the HTTP
//! server maps that code to a status, once (`baton_server::error`).

use std::error::Error as StdError;

use baton_core::api::ErrorCode;
use baton_core::ids::IdError;
use baton_core::names::NameError;
use baton_core::status::IllegalTransition;
use baton_store::StoreError;
use serde_json::{Value, json};

/// A boxed cause, kept for the log.
pub type Cause = Box<dyn StdError + Send + Sync>;

/// Why a domain operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The thing named does not exist.
    #[error("no {kind} {id}")]
    NotFound {
        /// What kind of thing (`task`, `agent`, ...).
        kind: &'static str,
        /// How it was named.
        id: String,
    },
    /// A name in a definition or a setting refers to nothing here (a pool no
    /// project sizes, an agent not defined); the message says how to fix it.
    #[error("{message}")]
    Unknown {
        /// What is named, where, and what to do.
        message: String,
    },
    /// A value breaks a rule.
    #[error("{message}")]
    Invalid {
        /// Which rule, and how to follow it.
        message: String,
    },
    /// Fields valid each on its own break a rule together.
    #[error("{message}")]
    Combination {
        /// Which rule.
        message: String,
    },
    /// Text in a language of its own (TOML, front matter, cron, a template)
    /// breaks that language's rules, at a place `details` names when it can.
    #[error("{message}")]
    InvalidAt {
        /// Which rule.
        message: String,
        /// Where: `line`, `column`, or the field.
        details: Value,
    },
    /// Over a rate limit.
    #[error("{message}")]
    RateLimited {
        /// What was refused and the limit.
        message: String,
        /// The limit and the window.
        details: Value,
    },
    /// A write would make a memory block larger than its limit.
    #[error(
        "memory block {label} may hold {limit} characters; this write would make it {size} (it holds {current}); nothing was changed"
    )]
    OverLimit {
        /// The block.
        label: String,
        /// Its size after the write, in characters.
        size: u32,
        /// Its size now.
        current: u32,
        /// Its limit.
        limit: u32,
    },
    /// A prefix names more than one thing.
    #[error("{text} names more than one {kind}")]
    Ambiguous {
        /// What kind of thing.
        kind: &'static str,
        /// The prefix given.
        text: String,
        /// The ids it matches.
        candidates: Vec<String>,
    },
    /// Dependencies would form a cycle.
    #[error("the plan's dependencies form a cycle: {}", cycle.join(" → "))]
    Cycle {
        /// The names around the cycle, the first repeated last.
        cycle: Vec<String>,
    },
    /// Something is larger than allowed.
    #[error("{message}")]
    TooLarge {
        /// What, and the limit.
        message: String,
    },
    /// The caller may not do this.
    #[error("{message}")]
    Forbidden {
        /// What is missing.
        message: String,
    },
    /// The thing exists already.
    #[error("{message}")]
    AlreadyExists {
        /// What exists.
        message: String,
        /// Which one, for machines.
        details: Option<Value>,
    },
    /// The state of a thing does not allow this now.
    #[error("{message}")]
    NotNow {
        /// Why, and what would allow it.
        message: String,
    },
    /// A state machine refused a transition.
    #[error(transparent)]
    Transition(#[from] IllegalTransition),
    /// Another conflict with the current state.
    #[error("{message}")]
    Conflict {
        /// What conflicts.
        message: String,
        /// Particulars, for machines.
        details: Option<Value>,
    },
    /// A merge would conflict with its base.
    #[error("{message}")]
    MergeConflict {
        /// The files and what was done.
        message: String,
        /// The task, base, files, and whether its agent was resumed.
        details: Value,
    },
    /// The task's reviewer has not approved its work.
    #[error("{message}")]
    ReviewRequired {
        /// The last verdict.
        message: String,
    },
    /// The forge refused.
    #[error("{message}")]
    ForgeRefused {
        /// What the forge said.
        message: String,
        /// The forge's status and answer.
        details: Option<Value>,
    },
    /// This cannot be done now; it may be tried again.
    #[error("{message}")]
    Unavailable {
        /// Why.
        message: String,
        /// Particulars, for machines.
        details: Option<Value>,
    },
    /// One task of a plan was refused: the refusal, saying which task.
    #[error("task {task:?} of the plan: {source}")]
    InPlan {
        /// The task's name in the plan.
        task: String,
        /// Why it was refused.
        #[source]
        source: Box<Error>,
    },
    /// An id that is not of the right form.
    #[error(transparent)]
    Id(#[from] IdError),
    /// A name that is not of the right form.
    #[error(transparent)]
    Name(#[from] NameError),
    /// The store failed or refused.
    #[error("the store failed")]
    Store(#[from] StoreError),
    /// Something went wrong inside; the cause is for the log.
    #[error("{what}")]
    Internal {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: Option<Cause>,
    },
}

impl Error {
    /// `kind` `id` does not exist.
    pub fn not_found(kind: &'static str, id: impl std::fmt::Display) -> Self {
        Self::NotFound { kind, id: id.to_string() }
    }

    /// Text in a language of its own that breaks its rules (`details`: where).
    pub fn content(message: impl Into<String>, details: Value) -> Self {
        Self::InvalidAt { message: message.into(), details }
    }

    /// A name that refers to nothing here (404), with how to fix it.
    pub fn unknown(message: impl Into<String>) -> Self {
        Self::Unknown { message: message.into() }
    }

    /// A value that breaks a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid { message: message.into() }
    }

    /// Fields valid each on its own that break a rule together.
    pub fn combination(message: impl Into<String>) -> Self {
        Self::Combination { message: message.into() }
    }

    /// The state does not allow this now.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::NotNow { message: message.into() }
    }

    /// The caller may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::Forbidden { message: message.into() }
    }

    /// Something larger than allowed.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::TooLarge { message: message.into() }
    }

    /// Not now; try again.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Unavailable { message: message.into(), details: None }
    }

    /// An internal failure caused by `source`.
    pub fn internal(source: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal { what: "internal error".into(), source: Some(Box::new(source)) }
    }

    /// An internal failure with no cause but its description.
    pub fn broken(what: impl Into<String>) -> Self {
        Self::Internal { what: what.into(), source: None }
    }

    /// The stable code this refusal or failure is known by.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } | Error::Unknown { .. } => ErrorCode::NotFound,
            Error::Invalid { .. } | Error::Id(_) | Error::Name(_) => ErrorCode::InvalidArgument,
            Error::InvalidAt { .. } => ErrorCode::InvalidContent,
            Error::Combination { .. } => ErrorCode::InvalidCombination,
            Error::Ambiguous { .. } => ErrorCode::AmbiguousId,
            Error::Cycle { .. } => ErrorCode::DependencyCycle,
            Error::TooLarge { .. } | Error::OverLimit { .. } => ErrorCode::PayloadTooLarge,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::AlreadyExists { .. } => ErrorCode::AlreadyExists,
            Error::NotNow { .. } | Error::Transition(_) => ErrorCode::IllegalTransition,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::MergeConflict { .. } => ErrorCode::MergeConflict,
            Error::ReviewRequired { .. } => ErrorCode::ReviewRequired,
            Error::ForgeRefused { .. } => ErrorCode::ForgeRefused,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Store(e) => store_code(e),
            Error::InPlan { source, .. } => source.code(),
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    /// Machine-readable particulars, where the refusal has any.
    pub fn details(&self) -> Option<Value> {
        match self {
            Error::NotFound { kind, id } => Some(json!({ "kind": kind, "id": id })),
            Error::Ambiguous { candidates, .. } => Some(json!({ "candidates": candidates })),
            Error::Cycle { cycle } => Some(json!({ "cycle": cycle })),
            Error::OverLimit { label, size, current, limit } => {
                Some(json!({ "label": label, "size": size, "current": current, "limit": limit }))
            }
            Error::Transition(e) => Some(json!({ "entity": e.entity, "from": e.from, "to": e.to })),
            Error::RateLimited { details, .. } => Some(details.clone()),
            Error::AlreadyExists { details, .. }
            | Error::Conflict { details, .. }
            | Error::Unavailable { details, .. }
            | Error::ForgeRefused { details, .. } => details.clone(),
            Error::MergeConflict { details, .. } | Error::InvalidAt { details, .. } => Some(details.clone()),
            Error::InPlan { task, source } => {
                // Which task, so an editor can show the error on its line.
                let mut details = source.details().unwrap_or_else(|| json!({}));
                if let Some(obj) = details.as_object_mut() {
                    obj.insert("task".into(), json!(task));
                }
                Some(details)
            }
            _ => None,
        }
    }

    /// An error recorded by its code, message and details (a merge's outcome,
    /// written by the replica that ran it), as the variant its code names.
    pub fn from_record(code: ErrorCode, message: String, details: Option<Value>) -> Self {
        let details_or_null = || details.clone().unwrap_or(Value::Null);
        match code {
            ErrorCode::InvalidArgument => Error::Invalid { message },
            ErrorCode::InvalidCombination => Error::Combination { message },
            ErrorCode::InvalidContent => Error::InvalidAt { message, details: details_or_null() },
            ErrorCode::PayloadTooLarge => Error::TooLarge { message },
            ErrorCode::Forbidden => Error::Forbidden { message },
            ErrorCode::AlreadyExists => Error::AlreadyExists { message, details },
            ErrorCode::IllegalTransition => Error::NotNow { message },
            ErrorCode::Conflict => Error::Conflict { message, details },
            ErrorCode::MergeConflict => Error::MergeConflict { message, details: details_or_null() },
            ErrorCode::ReviewRequired => Error::ReviewRequired { message },
            ErrorCode::ForgeRefused => Error::ForgeRefused { message, details },
            ErrorCode::Unavailable => Error::Unavailable { message, details },
            _ => Error::Internal { what: message, source: None },
        }
    }

    /// Whether this is the store refusing a duplicate.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, Error::Store(StoreError::Duplicate { .. }))
    }
}

/// The code of a store's failure: a duplicate, a store that cannot be written
/// now or is full are the caller's to know; the rest are internal.
fn store_code(e: &StoreError) -> ErrorCode {
    match e {
        StoreError::Duplicate { .. } => ErrorCode::AlreadyExists,
        StoreError::Closed => ErrorCode::Unavailable,
        StoreError::Unavailable(_) => ErrorCode::StoreUnavailable,
        // A replica that stopped taking work for a newer one's migration.
        StoreError::Incompatible { .. } => ErrorCode::Unavailable,
        StoreError::Full(_) => ErrorCode::InsufficientStorage,
        _ => ErrorCode::Internal,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_error_keeps_its_code_message_and_details() {
        let e = Error::MergeConflict { message: "conflicts in a.txt".into(), details: json!({ "files": ["a.txt"] }) };
        let back = Error::from_record(e.code(), e.to_string(), e.details());
        assert_eq!(back.code(), ErrorCode::MergeConflict);
        assert_eq!(back.to_string(), "conflicts in a.txt");
        assert_eq!(back.details(), Some(json!({ "files": ["a.txt"] })));
    }

    #[test]
    fn a_cycle_names_its_members_in_order() {
        let e = Error::Cycle { cycle: vec!["a".into(), "b".into(), "a".into()] };
        assert_eq!(e.to_string(), "the plan's dependencies form a cycle: a → b → a");
        assert_eq!(e.code(), ErrorCode::DependencyCycle);
    }
}
