//! Webhooks: what Baton tells the outside world, to whom, in which shape, and
//! the record of each delivery and each one-tap action link.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{ProjectId, TaskId};
use crate::time::Timestamp;

macro_rules! named {
    (
        $(#[$doc:meta])*
        $name:ident, $what:literal {
            $( $(#[$vdoc:meta])* $variant:ident = $text:literal ),* $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )*
        }

        impl $name {
            /// Every one, in order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// Its name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)*
                    other => Err(format!(
                        "unknown {} {other:?} (expected one of: {})",
                        $what,
                        [$($text),*].join(", ")
                    )),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($name).into()
            }

            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({"type": "string", "enum": [$($text),*]})
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

named! {
    /// Something a webhook can be told of.
    WebhookEvent, "event" {
        /// A task's work succeeded (its checks passed).
        #[default]
        TaskSucceeded = "task.succeeded",
        /// A task failed.
        TaskFailed = "task.failed",
        /// A task cannot start: a task it depends on failed.
        TaskBlocked = "task.blocked",
        /// A task waits for a person's approval before it starts.
        TaskAwaitingApproval = "task.awaiting_approval",
        /// A task's branch was merged into its base.
        TaskMerged = "task.merged",
        /// A merge was refused because it conflicts with the base.
        MergeConflict = "merge.conflict",
        /// A task spent its budget (or its project's) and was paused.
        BudgetExceeded = "budget.exceeded",
        /// A launcher stopped sending heartbeats; its runs were lost.
        LauncherOffline = "launcher.offline",
        /// A project's lead stopped sending heartbeats while work is waiting.
        LeadStale = "lead.stale",
        /// Every task of a plan has ended.
        PlanCompleted = "plan.completed",
        /// An orchestration (planner, experts, synthesizer) ended.
        OrchestrationCompleted = "orchestration.completed",
        /// A test a person asked for (`POST /api/webhooks/{id}/test`); sent to
        /// that webhook only.
        WebhookTest = "webhook.test",
    }
}

named! {
    /// The shape of a webhook's bodies.
    WebhookFormat, "format" {
        /// `{"type", "timestamp", "data"}`, as the Standard Webhooks specification shows.
        #[default]
        Json = "json",
        /// A Slack incoming-webhook message with blocks.
        Slack = "slack",
        /// A Discord webhook message with an embed.
        Discord = "discord",
        /// An ntfy notification (title, priority, tags, click URL, actions).
        Ntfy = "ntfy",
    }
}

named! {
    /// What a one-tap action link does.
    LinkAction, "action" {
        /// Approves a task waiting for approval.
        #[default]
        Approve = "approve",
        /// Merges a task's branch.
        Merge = "merge",
        /// Runs a failed task again.
        Retry = "retry",
        /// Stops a task.
        Stop = "stop",
    }
}

named! {
    /// Where a delivery is.
    DeliveryStatus, "delivery status" {
        /// Not yet answered with a 2xx; tried again at `next_at`.
        #[default]
        Pending = "pending",
        /// The receiver answered with a 2xx.
        Delivered = "delivered",
        /// Given up on: tried for the whole retry window, or the webhook was disabled.
        Failed = "failed",
    }
}

/// A webhook as stored (its secret included).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Webhook {
    /// Its id (`wh_…`).
    pub id: String,
    /// Where deliveries are sent (http or https).
    pub url: String,
    /// The events it wants; `"*"` for all of them.
    pub events: Vec<String>,
    /// Only this project's events (every project's, when `None`).
    pub project_id: Option<ProjectId>,
    /// The shape of the bodies.
    pub format: WebhookFormat,
    /// The signing secret (`whsec_…`).
    pub secret: String,
    /// When it was made.
    pub created_at: Timestamp,
    /// Why it no longer receives anything (a `410 Gone`), when it does not.
    #[serde(default)]
    pub disabled: Option<String>,
}

impl Webhook {
    /// Whether it wants `event` of project `project` (`None` for an event of no
    /// project, such as a launcher's).
    pub fn wants(&self, event: WebhookEvent, project: Option<&ProjectId>) -> bool {
        if self.disabled.is_some() {
            return false;
        }
        if let (Some(mine), Some(theirs)) = (&self.project_id, project)
            && mine != theirs
        {
            return false;
        }
        self.events.iter().any(|e| e == "*" || e == event.as_str())
    }
}

/// One try at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Attempt {
    /// When it was sent.
    pub at: Timestamp,
    /// The receiver's HTTP status, when it answered.
    pub status: Option<u16>,
    /// Why it did not succeed (a timeout, a refused connection, a non-2xx).
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub ms: u64,
}

/// A message for one webhook: the outbox's row. It is written in the same
/// transaction as the change it tells of, and sent until it is answered with a
/// 2xx or given up on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Delivery {
    /// Its id, sent as `webhook-id` (the same on every try).
    pub id: String,
    /// Whose.
    pub webhook_id: String,
    /// What it tells of.
    pub event: WebhookEvent,
    /// The body in the `json` format (the other formats are made from it).
    pub payload: serde_json::Value,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Every try so far, oldest first.
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// When it is tried next (while pending).
    pub next_at: Timestamp,
    /// When it was recorded.
    pub created_at: Timestamp,
    /// When it was delivered or given up on.
    #[serde(default)]
    pub finished_at: Option<Timestamp>,
    /// Whether its links were made and made absolute (done once, before the
    /// first try, so every try sends the same body).
    #[serde(default)]
    pub prepared: bool,
    /// When its retry window began: its creation, or a person's redelivery.
    #[serde(default)]
    pub retry_from: Option<Timestamp>,
}

/// A one-tap action link as stored (under the hash of its secret part).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionLink {
    /// The task it acts on.
    pub task_id: TaskId,
    /// What it does.
    pub action: LinkAction,
    /// When it was made.
    pub created_at: Timestamp,
    /// When it stops working.
    pub expires_at: Timestamp,
    /// When it was used (it works once).
    #[serde(default)]
    pub used_at: Option<Timestamp>,
}

/// `POST /api/webhooks`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    /// Where to send (http or https), at most 2,048 characters.
    #[schemars(url, regex(pattern = "^https?://"), length(max = 2048))]
    pub url: String,
    /// Event names, or `"*"` for all: at least one.
    #[schemars(schema_with = "event_names")]
    pub events: Vec<String>,
    /// Only this project's events (id or name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `json` (the default), `slack`, `discord` or `ntfy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("enum" = ["json", "slack", "discord", "ntfy", null]))]
    pub format: Option<String>,
    /// A signing secret (`whsec_` and the base64 of 24 to 64 bytes); one is
    /// made when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = crate::names::SECRET_PATTERN))]
    pub secret: Option<String>,
}

/// `events` of a webhook: one or more event names, or `*`.
fn event_names(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let names: Vec<&str> = WebhookEvent::ALL.iter().map(|e| e.as_str()).chain(["*"]).collect();
    schemars::json_schema!({ "type": "array", "minItems": 1, "items": { "type": "string", "enum": names } })
}

/// A webhook as the API shows it: its secret only in the answer that made it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WebhookInfo {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// The events it wants.
    pub events: Vec<String>,
    /// Only this project's events.
    pub project_id: Option<ProjectId>,
    /// The shape of the bodies.
    pub format: WebhookFormat,
    /// When it was made.
    pub created_at: Timestamp,
    /// Why it receives nothing any more, when it does not.
    pub disabled: Option<String>,
    /// Deliveries not yet answered.
    pub pending: u32,
    /// Deliveries given up on.
    pub failed: u32,
    /// The signing secret: only in the answer to its creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_ones_are_refused() {
        for e in WebhookEvent::ALL {
            assert_eq!(e.as_str().parse::<WebhookEvent>().unwrap(), *e);
        }
        let err = "task.exploded".parse::<WebhookEvent>().unwrap_err();
        assert!(err.contains("unknown event \"task.exploded\"") && err.contains("task.failed"), "{err}");
        assert!("teams".parse::<WebhookFormat>().is_err());
        assert_eq!(serde_json::to_string(&WebhookFormat::Slack).unwrap(), "\"slack\"");
    }

    #[test]
    fn a_webhook_wants_its_events_of_its_project() {
        let p = ProjectId::generate();
        let q = ProjectId::generate();
        let mut hook = Webhook {
            id: "wh_1".into(),
            url: "http://x".into(),
            events: vec!["task.failed".into()],
            project_id: Some(p.clone()),
            format: WebhookFormat::Json,
            secret: String::new(),
            created_at: Timestamp::now(),
            disabled: None,
        };
        assert!(hook.wants(WebhookEvent::TaskFailed, Some(&p)));
        assert!(!hook.wants(WebhookEvent::TaskFailed, Some(&q)));
        assert!(!hook.wants(WebhookEvent::TaskMerged, Some(&p)));
        assert!(hook.wants(WebhookEvent::TaskFailed, None), "an event of no project reaches project webhooks");
        hook.events = vec!["*".into()];
        assert!(hook.wants(WebhookEvent::LauncherOffline, None));
        hook.disabled = Some("gone".into());
        assert!(!hook.wants(WebhookEvent::TaskFailed, Some(&p)));
    }
}
