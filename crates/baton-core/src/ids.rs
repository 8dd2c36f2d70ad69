//! Newtype ids.
//!
//! Every id is a short type prefix and ten random characters of Crockford's base32
//! alphabet (50 bits), for example `t-4k9mz2x7qa`: short enough to type and to put
//! in a branch name, random enough that a prefix of a few characters is usually
//! unique (the API resolves unique prefixes). The prefix makes a pasted id
//! self-describing and lets the API refuse a session id where a task id belongs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The alphabet of the random part: digits and lowercase letters without i, l, o, u.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// How many random characters follow the prefix.
pub const RANDOM_LEN: usize = 10;

/// An id that does not have the form its type requires.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} id {value:?}: expected {prefix} followed by {RANDOM_LEN} characters of [0-9a-z]")]
pub struct IdError {
    /// The kind of thing the id was meant to name.
    pub kind: &'static str,
    /// The prefix the id should have started with.
    pub prefix: &'static str,
    /// What was given.
    pub value: String,
}

/// Ten random base32 characters.
pub(crate) fn random_suffix() -> String {
    let mut bytes = [0u8; RANDOM_LEN];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| ALPHABET[(b & 31) as usize] as char).collect()
}

/// Whether `s` could be (a prefix of) the random part of an id.
pub fn is_id_chars(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| ALPHABET.contains(&b))
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({
                    "type": "string",
                    "pattern": concat!("^", $prefix, "[0-9a-hjkmnp-tv-z]{10}$"),
                })
            }
        }

        impl $name {
            /// The prefix every id of this type starts with.
            pub const PREFIX: &'static str = $prefix;
            /// The kind of thing this id names, for messages.
            pub const KIND: &'static str = $kind;

            /// A fresh random id.
            pub fn generate() -> Self {
                Self(format!("{}{}", $prefix, random_suffix()))
            }

            /// Parses a complete id.
            pub fn parse(value: &str) -> Result<Self, IdError> {
                match value.strip_prefix($prefix) {
                    Some(rest) if rest.len() == RANDOM_LEN && is_id_chars(rest) => {
                        Ok(Self(value.to_owned()))
                    }
                    _ => Err(IdError { kind: $kind, prefix: $prefix, value: value.to_owned() }),
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The random part, without the type prefix (used in branch names).
            pub fn short(&self) -> &str {
                &self.0[$prefix.len()..]
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
    };
}

id_type!(
    /// Names a project (a git repository under Baton's care).
    ProjectId, "p-", "project"
);
id_type!(
    /// Names a task (a unit of work with its own branch and worktree).
    TaskId, "t-", "task"
);
id_type!(
    /// Names a session (one conversation with one agent process).
    SessionId, "s-", "session"
);
id_type!(
    /// Names a run (one turn of a session handed to a launcher).
    RunId, "r-", "run"
);
id_type!(
    /// Names a launcher (a process that supervises agents on one host).
    LauncherId, "l-", "launcher"
);
id_type!(
    /// Names a plan (a DAG of tasks submitted together).
    PlanId, "pl-", "plan"
);
id_type!(
    /// Names an orchestration (the planner → experts → synthesizer flow).
    OrchestrationId, "o-", "orchestration"
);

/// How a user may refer to a thing by id: the whole id, or a unique prefix of it
/// with or without the type prefix (`t-4k9m`, `4k9m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdRef<T> {
    /// A complete, valid id.
    Exact(T),
    /// The start of the random part, to be resolved against what exists.
    Prefix(String),
}

impl<T: FromStr<Err = IdError>> IdRef<T> {
    /// Reads what a user typed; `prefix` is the type's id prefix.
    pub fn parse(value: &str, prefix: &'static str, kind: &'static str) -> Result<Self, IdError> {
        if let Ok(id) = value.parse::<T>() {
            return Ok(IdRef::Exact(id));
        }
        let rest = value.strip_prefix(prefix).unwrap_or(value);
        if is_id_chars(rest) && rest.len() < RANDOM_LEN {
            Ok(IdRef::Prefix(format!("{prefix}{rest}")))
        } else {
            Err(IdError { kind, prefix, value: value.to_owned() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back() {
        let id = TaskId::generate();
        assert!(id.as_str().starts_with("t-"));
        assert_eq!(id.short().len(), RANDOM_LEN);
        assert_eq!(TaskId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn ids_of_another_type_are_refused() {
        let s = SessionId::generate();
        assert!(TaskId::parse(s.as_str()).is_err());
        assert!(TaskId::parse("t-UPPERCASE1").is_err());
        assert!(TaskId::parse("t-short").is_err());
        assert!(TaskId::parse("t-../../etc").is_err());
    }

    #[test]
    fn json_refuses_malformed_ids() {
        assert!(serde_json::from_str::<TaskId>("\"t-0123456789\"").is_ok());
        assert!(serde_json::from_str::<TaskId>("\"nope\"").is_err());
    }

    #[test]
    fn prefixes_resolve_to_prefix_refs() {
        let r = IdRef::<TaskId>::parse("4k9m", TaskId::PREFIX, TaskId::KIND).unwrap();
        assert_eq!(r, IdRef::Prefix("t-4k9m".into()));
        let r = IdRef::<TaskId>::parse("t-4k9m", TaskId::PREFIX, TaskId::KIND).unwrap();
        assert_eq!(r, IdRef::Prefix("t-4k9m".into()));
        assert!(IdRef::<TaskId>::parse("t-4K9M", TaskId::PREFIX, TaskId::KIND).is_err());
        assert!(IdRef::<TaskId>::parse("", TaskId::PREFIX, TaskId::KIND).is_err());
    }
}
