//! The HTTP server's one error type: what a handler answers when it does not
//! succeed. A stable [`ErrorCode`], a message for people, optional details, and
//! the cause (for the log). Each cause the server meets (the domain's refusals,
//! the store's failures, the forge webhook's) is mapped to it once, here; its
//! HTTP form is in `api::http`.

use std::error::Error as StdError;

use baton_core::api::ErrorCode;
use baton_core::ids::IdError;
use baton_core::names::NameError;
use baton_domain::Error as DomainError;
use baton_forge::WebhookError;
use baton_store::StoreError;
use serde_json::Value;

/// An API error: a stable code, a message for people, optional details, and the
/// underlying cause (logged, never sent).
#[derive(Debug)]
pub struct AppError {
    /// The stable code.
    pub code: ErrorCode,
    /// What happened.
    pub message: String,
    /// Machine-readable particulars.
    pub details: Option<Value>,
    /// The cause, for the log.
    pub(crate) source: Option<Box<dyn StdError + Send + Sync>>,
}

impl AppError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self { code, message: message.into(), details: None, source: None }
    }

    /// Adds machine-readable details.
    pub fn with_details(mut self, details: Value) -> Self {
        self.details = Some(details);
        self
    }

    /// An internal error caused by `source`.
    pub fn internal(source: impl StdError + Send + Sync + 'static) -> Self {
        Self {
            code: ErrorCode::Internal,
            message: "internal error".into(),
            details: None,
            source: Some(Box::new(source)),
        }
    }

    /// `kind` `id` does not exist.
    pub fn not_found(kind: &'static str, id: impl std::fmt::Display) -> Self {
        DomainError::not_found(kind, id).into()
    }

    /// A value that breaks a rule.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidArgument, message)
    }

    /// The state does not allow this.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::IllegalTransition, message)
    }

    /// The token may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, message)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl StdError for AppError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.source.as_deref().map(|s| s as &(dyn StdError + 'static))
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Store(e) => e.into(),
            DomainError::Internal { what, source } => Self {
                code: ErrorCode::Internal,
                message: "internal error".into(),
                details: None,
                source: Some(source.unwrap_or_else(|| what.into())),
            },
            e => Self { code: e.code(), message: e.to_string(), details: e.details(), source: None },
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what } => Self::new(ErrorCode::AlreadyExists, format!("{what} already exists")),
            StoreError::Closed => Self::new(ErrorCode::Unavailable, "the store is shutting down"),
            // This replica stopped taking work for a newer one's migration.
            StoreError::Incompatible { message } => Self::new(ErrorCode::Unavailable, message),
            StoreError::Unavailable(source) => Self {
                code: ErrorCode::StoreUnavailable,
                message: format!(
                    "the database cannot be written now ({source}); nothing was changed, try again shortly"
                ),
                details: None,
                source: Some(source),
            },
            StoreError::Full(source) => Self {
                code: ErrorCode::InsufficientStorage,
                message: format!(
                    "the disk holding Baton's database is full ({source}); nothing was changed: free some space and try again"
                ),
                details: None,
                source: Some(source),
            },
            other => Self::internal(other),
        }
    }
}

impl From<WebhookError> for AppError {
    fn from(e: WebhookError) -> Self {
        let code = match e {
            WebhookError::Domain(e) => return e.into(),
            WebhookError::FormEncoded => ErrorCode::UnsupportedMediaType,
            WebhookError::NotJson(_) => ErrorCode::MalformedJson,
            WebhookError::Unverified => ErrorCode::Unauthorized,
        };
        Self::new(code, e.to_string())
    }
}

impl From<IdError> for AppError {
    fn from(e: IdError) -> Self {
        Self::new(ErrorCode::InvalidArgument, e.to_string())
    }
}

impl From<NameError> for AppError {
    fn from(e: NameError) -> Self {
        Self::new(ErrorCode::InvalidArgument, e.to_string())
    }
}

impl From<baton_core::status::IllegalTransition> for AppError {
    fn from(e: baton_core::status::IllegalTransition) -> Self {
        DomainError::from(e).into()
    }
}
