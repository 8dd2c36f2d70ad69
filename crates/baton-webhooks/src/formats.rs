//! The shapes of a delivery's body: Baton's own JSON, and messages for Slack,
//! Discord and ntfy. Each chat message says in one line what happened, to which
//! task, with its status, branch and cost, and links to the task and to its
//! one-tap actions.

use baton_core::text::capitalise;
use baton_core::webhook::{Webhook, WebhookEvent, WebhookFormat};
use serde_json::{Value, json};

/// A body ready to send, and where.
pub struct Shaped {
    /// Where to POST it (the webhook's URL, except for ntfy's JSON publishing).
    pub url: String,
    /// Its content type.
    pub content_type: &'static str,
    /// The bytes (what the signature covers).
    pub body: Vec<u8>,
}

/// The body of a delivery for a webhook's format. `payload` is the delivery's
/// `{"type", "timestamp", "data"}`.
pub fn render(webhook: &Webhook, payload: &Value) -> Shaped {
    let json = |url: String, v: &Value| Shaped {
        url,
        content_type: "application/json",
        body: serde_json::to_vec(v).unwrap_or_default(),
    };
    match webhook.format {
        WebhookFormat::Json => json(webhook.url.clone(), payload),
        WebhookFormat::Slack => json(webhook.url.clone(), &slack(&Summary::of(payload))),
        WebhookFormat::Discord => json(webhook.url.clone(), &discord(&Summary::of(payload))),
        WebhookFormat::Ntfy => {
            let (root, topic) = ntfy_topic(&webhook.url);
            json(root, &ntfy(&Summary::of(payload), &topic))
        }
    }
}

/// What a person is told, taken from a payload.
#[derive(Debug, Default)]
pub struct Summary {
    /// What happened, in a few words ("Task t-1a2b “Fix login” failed").
    pub headline: String,
    /// More: the reason, the result, the files in conflict.
    pub detail: Option<String>,
    /// Status, branch, cost, project: each as (name, value).
    pub facts: Vec<(&'static str, String)>,
    /// The link to the thing in the dashboard.
    pub url: Option<String>,
    /// One-tap actions: (label, URL).
    pub actions: Vec<(String, String)>,
    /// How loud: 1 (quiet) to 5 (urgent), as ntfy counts.
    pub priority: u8,
    /// An emoji for the event (its ntfy tag name, its character).
    pub tag: (&'static str, &'static str),
}

impl Summary {
    /// Reads a payload (missing fields are left out).
    pub fn of(payload: &Value) -> Summary {
        let event: Option<WebhookEvent> = payload["type"].as_str().and_then(|t| t.parse().ok());
        let data = &payload["data"];
        let text = |v: &Value| v.as_str().map(str::to_owned);
        let mut s = Summary { url: text(&data["url"]), priority: 3, ..Summary::default() };
        let task = &data["task"];
        let named = format!("Task {} “{}”", task["id"].as_str().unwrap_or("?"), task["title"].as_str().unwrap_or(""));
        let (headline, detail, priority, tag) = match event {
            Some(WebhookEvent::TaskSucceeded) => {
                (format!("{named} succeeded"), text(&task["result"]), 3, ("white_check_mark", "✅"))
            }
            Some(WebhookEvent::TaskFailed) => (format!("{named} failed"), text(&task["reason"]), 4, ("x", "❌")),
            Some(WebhookEvent::TaskBlocked) => {
                (format!("{named} is blocked"), text(&task["reason"]), 3, ("no_entry", "⛔"))
            }
            Some(WebhookEvent::TaskAwaitingApproval) => {
                (format!("{named} is waiting for your approval"), None, 4, ("raised_hand", "✋"))
            }
            Some(WebhookEvent::TaskMerged) => {
                let base = task["base"].as_str().unwrap_or("its base");
                (format!("{named} was merged into {base}"), None, 2, ("twisted_rightwards_arrows", "🔀"))
            }
            Some(WebhookEvent::MergeConflict) => {
                let files = data["conflict"]["files"]
                    .as_array()
                    .map(|f| f.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", "));
                let base = data["conflict"]["base"].as_str().unwrap_or("its base");
                (
                    format!("Merging {named} into {base} conflicts"),
                    files.map(|f| format!("Conflicting files: {f}")),
                    4,
                    ("warning", "⚠️"),
                )
            }
            Some(WebhookEvent::BudgetExceeded) => (
                format!("{named} was paused: its budget is spent"),
                text(&data["budget"]["message"]),
                4,
                ("money_with_wings", "💸"),
            ),
            Some(WebhookEvent::LauncherOffline) => {
                let l = &data["launcher"];
                let lost = data["lost_runs"].as_u64().unwrap_or(0);
                let h = format!(
                    "Launcher {} on {} went offline",
                    l["name"].as_str().unwrap_or("?"),
                    l["host"].as_str().unwrap_or("?")
                );
                (h, Some(format!("{lost} run(s) were lost and will start again elsewhere")), 4, ("electric_plug", "🔌"))
            }
            Some(WebhookEvent::LeadStale) => {
                let p = data["project"]["name"].as_str().unwrap_or("?");
                let age = data["lead"]["silent_s"].as_u64().unwrap_or(0);
                (format!("The lead of project {p} has been silent for {}", ago(age)), None, 4, ("zzz", "💤"))
            }
            Some(WebhookEvent::PlanCompleted) => {
                let p = &data["plan"];
                let (ok, all) = (p["succeeded"].as_u64().unwrap_or(0), p["total"].as_u64().unwrap_or(0));
                (
                    format!("Plan “{}” finished: {ok} of {all} tasks succeeded", p["name"].as_str().unwrap_or("?")),
                    None,
                    3,
                    ("clipboard", "📋"),
                )
            }
            Some(WebhookEvent::OrchestrationCompleted) => {
                let o = &data["orchestration"];
                let h = format!(
                    "Orchestration {} {}",
                    o["id"].as_str().unwrap_or("?"),
                    o["status"].as_str().unwrap_or("ended")
                );
                (h, text(&o["description"]), 3, ("musical_score", "🎼"))
            }
            Some(WebhookEvent::WebhookTest) => {
                ("A test from Baton".to_owned(), text(&data["message"]), 3, ("bell", "🔔"))
            }
            None => (payload["type"].as_str().unwrap_or("Baton").to_owned(), None, 3, ("bell", "🔔")),
        };
        (s.headline, s.detail, s.priority, s.tag) = (headline, detail, priority, tag);
        if task.is_object() {
            s.facts = task_facts(task);
        }
        if let Some(actions) = data["actions"].as_object() {
            s.actions = actions.iter().filter_map(|(k, v)| Some((capitalise(k), v.as_str()?.to_owned()))).collect();
        }
        s
    }

    /// The one line: headline and facts.
    pub fn line(&self) -> String {
        let mut line = format!("{} {}", self.tag.1, self.headline);
        for (name, value) in &self.facts {
            line.push_str(&format!(" · {name} {value}"));
        }
        line
    }
}

fn task_facts(task: &Value) -> Vec<(&'static str, String)> {
    let mut facts = Vec::new();
    if let Some(s) = task["status"].as_str() {
        facts.push(("status", s.to_owned()));
    }
    if let Some(b) = task["branch"].as_str() {
        facts.push(("branch", b.to_owned()));
    }
    facts.push(("cost", format!("${:.2}", task["cost_usd"].as_f64().unwrap_or(0.0))));
    if let Some(p) = task["project"]["name"].as_str() {
        facts.push(("project", p.to_owned()));
    }
    facts
}

fn ago(seconds: u64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

/// Slack's mrkdwn escapes `&`, `<` and `>`.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max.saturating_sub(1)) {
        Some((at, _)) if text.chars().count() > max => format!("{}…", &text[..at]),
        _ => text.to_owned(),
    }
}

/// A Slack incoming-webhook message: `text` (the notification's line) and
/// blocks (a section, a context line of facts, link buttons).
fn slack(s: &Summary) -> Value {
    let headline = match &s.url {
        Some(url) => format!("*<{}|{}>*", url, slack_escape(&s.headline)),
        None => format!("*{}*", slack_escape(&s.headline)),
    };
    let mut section = format!("{} {headline}", s.tag.1);
    if let Some(detail) = &s.detail {
        section.push('\n');
        section.push_str(&slack_escape(detail));
    }
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&section, 3000)}})];
    if !s.facts.is_empty() {
        let facts: Vec<String> = s.facts.iter().map(|(n, v)| format!("{n} *{}*", slack_escape(v))).collect();
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": facts.join(" · ")}]}));
    }
    let mut buttons: Vec<Value> = s
        .actions
        .iter()
        .map(|(label, url)| {
            json!({"type": "button", "text": {"type": "plain_text", "text": label}, "url": url, "action_id": format!("baton-{}", label.to_lowercase())})
        })
        .collect();
    if let Some(url) = &s.url {
        buttons.push(json!({"type": "button", "text": {"type": "plain_text", "text": "Open"}, "url": url, "action_id": "baton-open"}));
    }
    if !buttons.is_empty() {
        blocks.push(json!({"type": "actions", "elements": buttons}));
    }
    json!({"text": cut(&slack_escape(&s.line()), 3000), "blocks": blocks})
}

/// A Discord webhook message: `content` (the line) and one embed; mentions in
/// an agent's words ping nobody.
fn discord(s: &Summary) -> Value {
    let color = match s.priority {
        5 | 4 => 0xD9_3025,
        2 => 0x2E_A043,
        _ => 0x1F_6FEB,
    };
    let mut fields: Vec<Value> =
        s.facts.iter().map(|(n, v)| json!({"name": capitalise(n), "value": cut(v, 1024), "inline": true})).collect();
    if !s.actions.is_empty() {
        let links: Vec<String> = s.actions.iter().map(|(label, url)| format!("[{label}]({url})")).collect();
        fields.push(json!({"name": "Actions", "value": cut(&links.join(" · "), 1024), "inline": false}));
    }
    let mut embed = json!({"title": cut(&s.headline, 256), "color": color, "fields": fields});
    if let Some(url) = &s.url {
        embed["url"] = json!(url);
    }
    if let Some(detail) = &s.detail {
        embed["description"] = json!(cut(detail, 4096));
    }
    json!({"content": cut(&s.line(), 2000), "embeds": [embed], "allowed_mentions": {"parse": []}})
}

/// An ntfy message published as JSON to the server's root: title, message,
/// priority, tags, click URL and view actions.
fn ntfy(s: &Summary, topic: &str) -> Value {
    let facts: Vec<String> = s.facts.iter().map(|(n, v)| format!("{n} {v}")).collect();
    let mut message = facts.join(" · ");
    if let Some(detail) = &s.detail {
        message = if message.is_empty() { detail.clone() } else { format!("{message}\n{detail}") };
    }
    if message.is_empty() {
        message = s.headline.clone();
    }
    let actions: Vec<Value> = s
        .actions
        .iter()
        .take(3)
        .map(|(label, url)| json!({"action": "view", "label": label, "url": url, "clear": true}))
        .collect();
    let mut body = json!({
        "topic": topic,
        "title": cut(&s.headline, 250),
        "message": cut(&message, 4000),
        "priority": s.priority,
        "tags": [s.tag.0],
    });
    if let Some(url) = &s.url {
        body["click"] = json!(url);
    }
    if !actions.is_empty() {
        body["actions"] = json!(actions);
    }
    body
}

/// `https://ntfy.sh/topic` → (`https://ntfy.sh/`, `topic`): ntfy takes JSON
/// messages at its root, the topic named in the body.
fn ntfy_topic(url: &str) -> (String, String) {
    let trimmed = url.trim_end_matches('/');
    match trimmed.rsplit_once('/') {
        Some((root, topic)) if !root.ends_with('/') && !root.ends_with(':') => (format!("{root}/"), topic.to_owned()),
        _ => (url.to_owned(), String::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ntfy_topics_come_from_the_url() {
        assert_eq!(ntfy_topic("https://ntfy.sh/baton-alerts"), ("https://ntfy.sh/".into(), "baton-alerts".into()));
        assert_eq!(ntfy_topic("http://127.0.0.1:8080/x/team/"), ("http://127.0.0.1:8080/x/".into(), "team".into()));
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(cut("abcdef", 4), "abc…");
        assert_eq!(cut("abcd", 4), "abcd");
        assert_eq!(cut("ééééé", 3), "éé…");
        assert_eq!(slack_escape("a <b> & c"), "a &lt;b&gt; &amp; c");
    }
}

/// The checked-in samples: what each chat format makes of one notification,
/// compared byte for byte, and checked against the shape and limits each
/// service documents. `BATON_BLESS=1` writes them again.
#[cfg(test)]
mod samples {
    use super::*;

    fn payload() -> Value {
        json!({
            "type": "task.failed",
            "timestamp": "2026-12-05T09:30:00.000Z",
            "data": {
                "task": {
                    "id": "t-1a2b3c4d5e6f",
                    "title": "Fix the <login> & session bug",
                    "status": "failed",
                    "reason": "checks failed: cargo test (exit 101)",
                    "result": null,
                    "agent": "claude",
                    "branch": "baton/1a2b3c4d-fix-the-login",
                    "base": "main",
                    "merge": "none",
                    "cost_usd": 0.4213,
                    "project": {"id": "p-0f0e0d0c0b0a", "name": "shop"}
                },
                "url": "https://baton.example.com/#/tasks/t-1a2b3c4d5e6f",
                "actions": {"retry": "https://baton.example.com/act/t-1a2b3c4d5e6f/retry/00ff"}
            }
        })
    }

    fn hook(format: WebhookFormat, url: &str) -> Webhook {
        Webhook {
            id: "wh_1".into(),
            url: url.into(),
            events: vec!["*".into()],
            project_id: None,
            format,
            secret: String::new(),
            created_at: baton_core::Timestamp::from_millis(0),
            disabled: None,
        }
    }

    fn compare(name: &str, shaped: &Shaped) -> Value {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/samples").join(name);
        let value: Value = serde_json::from_slice(&shaped.body).unwrap();
        let pretty = serde_json::to_string_pretty(&value).unwrap() + "\n";
        if std::env::var_os("BATON_BLESS").is_some() {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &pretty).unwrap();
        }
        let sample = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(pretty, sample, "{name} differs from its sample (BATON_BLESS=1 writes it again)");
        value
    }

    fn chars(v: &Value) -> usize {
        v.as_str().map_or(0, |s| s.chars().count())
    }

    /// Slack: `text` and `blocks` of section, context and actions blocks; a
    /// section's text at most 3,000 characters; at most 25 elements in an
    /// actions block; a button's text at most 75, its URL at most 3,000, its
    /// action_id at most 255 and unique.
    #[test]
    fn slack_matches_its_sample_and_slacks_message_shape() {
        let v = compare(
            "slack.json",
            &render(&hook(WebhookFormat::Slack, "https://hooks.slack.com/services/T/B/X"), &payload()),
        );
        assert!(chars(&v["text"]) > 0 && chars(&v["text"]) <= 3000);
        let blocks = v["blocks"].as_array().unwrap();
        assert!(blocks.len() <= 50);
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "section" => {
                    assert_eq!(block["text"]["type"], "mrkdwn");
                    assert!(chars(&block["text"]["text"]) <= 3000);
                }
                "context" => {
                    let elements = block["elements"].as_array().unwrap();
                    assert!(!elements.is_empty() && elements.len() <= 10);
                }
                "actions" => {
                    let buttons = block["elements"].as_array().unwrap();
                    assert!(!buttons.is_empty() && buttons.len() <= 25);
                    let mut ids = std::collections::HashSet::new();
                    for b in buttons {
                        assert_eq!(b["type"], "button");
                        assert_eq!(b["text"]["type"], "plain_text");
                        assert!(chars(&b["text"]["text"]) <= 75);
                        assert!(b["url"].as_str().unwrap().starts_with("https://") && chars(&b["url"]) <= 3000);
                        assert!(
                            ids.insert(b["action_id"].as_str().unwrap().to_owned()) && chars(&b["action_id"]) <= 255
                        );
                    }
                }
                other => panic!("a block type Baton does not send: {other}"),
            }
        }
        let section = blocks[0]["text"]["text"].as_str().unwrap();
        assert!(section.contains("&lt;login&gt; &amp;"), "mrkdwn is escaped: {section}");
    }

    /// Discord: `content` at most 2,000 characters; at most 10 embeds; an
    /// embed's title at most 256, description 4,096, at most 25 fields, each
    /// name 256 and value 1,024; a colour as an integer; mentions parsed from
    /// nothing.
    #[test]
    fn discord_matches_its_sample_and_discords_message_shape() {
        let v = compare(
            "discord.json",
            &render(&hook(WebhookFormat::Discord, "https://discord.com/api/webhooks/1/x"), &payload()),
        );
        assert!(chars(&v["content"]) <= 2000);
        assert_eq!(v["allowed_mentions"]["parse"], json!([]));
        let embeds = v["embeds"].as_array().unwrap();
        assert!(!embeds.is_empty() && embeds.len() <= 10);
        let e = &embeds[0];
        assert!(chars(&e["title"]) <= 256 && chars(&e["description"]) <= 4096);
        assert!(e["color"].is_u64());
        assert!(e["url"].as_str().unwrap().starts_with("https://"));
        let fields = e["fields"].as_array().unwrap();
        assert!(fields.len() <= 25);
        for f in fields {
            assert!(chars(&f["name"]) > 0 && chars(&f["name"]) <= 256);
            assert!(chars(&f["value"]) > 0 && chars(&f["value"]) <= 1024);
            assert!(f["inline"].is_boolean());
        }
    }

    /// ntfy (JSON publishing): topic, title, message, priority 1–5, tags, click,
    /// at most 3 actions of `view` with label and URL.
    #[test]
    fn ntfy_matches_its_sample_and_ntfys_json_shape() {
        let shaped = render(&hook(WebhookFormat::Ntfy, "https://ntfy.sh/baton-team"), &payload());
        assert_eq!(shaped.url, "https://ntfy.sh/");
        let v = compare("ntfy.json", &shaped);
        assert_eq!(v["topic"], "baton-team");
        assert!((1..=5).contains(&v["priority"].as_u64().unwrap()));
        assert!(v["tags"].as_array().unwrap().iter().all(Value::is_string));
        assert!(v["click"].as_str().unwrap().starts_with("https://"));
        let actions = v["actions"].as_array().unwrap();
        assert!(actions.len() <= 3);
        assert!(actions.iter().all(|a| a["action"] == "view" && a["label"].is_string() && a["url"].is_string()));
    }

    #[test]
    fn json_is_the_payload_itself() {
        let shaped = render(&hook(WebhookFormat::Json, "https://example.com/hook"), &payload());
        assert_eq!(serde_json::from_slice::<Value>(&shaped.body).unwrap(), payload());
        assert_eq!(
            Summary::of(&payload()).line(),
            "❌ Task t-1a2b3c4d5e6f “Fix the <login> & session bug” failed · status failed · branch baton/1a2b3c4d-fix-the-login · cost $0.42 · project shop"
        );
    }
}
