//! A fake GitHub for tests: a real HTTP server on `127.0.0.1:0` that serves
//! one repository through the parts of GitHub's REST API Baton uses — the
//! repository, pull requests (open, list, get, merge), check runs and their
//! jobs' logs, reviews and review comments — and builds the webhook payloads
//! GitHub would send about them, which [`send_webhook`] signs and sends.
//!
//! Every request must carry the token (`Authorization: Bearer TOKEN` or
//! `token TOKEN`) and is recorded ([`FakeForge::requests`]). Answers and
//! errors have the shapes and statuses GitHub's documentation gives; GETs
//! carry an `ETag`, and a matching `If-None-Match` gets 304.
//!
//! Given a bare repository ([`FakeForge::with_bare`]), the fake reads branches
//! from it (a pull request's head commit is read again at each request, so a
//! push shows) and merges in it for real, refusing a conflict as GitHub does.
//! Without one, a branch is at a fixed fake sha made from its name, and a
//! merge makes up its commit. The test plays the rest of GitHub: it adds check
//! runs and reviews, protects a branch, or merges on GitHub's side.
//!
//! [`state`] holds the records and their JSON shapes, [`routes`] the HTTP
//! handlers and [`git`] the merges in the bare repository.

mod git;
mod routes;
mod state;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};

use crate::receiver::hmac_sha256;
use routes::{Shared, lock};
use state::{CheckRun, Comment, Inner, REPO_ID, Review, actions_bot_json, hex, now, random_bytes, random_sha};

/// The id GitHub would give the webhook sending the events.
const HOOK_ID: &str = "424242";

/// One request the fake received.
#[derive(Debug, Clone)]
pub struct ForgeRequest {
    /// Its method, like `GET`.
    pub method: String,
    /// Its path and query, like `/repos/acme/app/pulls?state=all`.
    pub path: String,
    /// Its headers, names in lower case.
    pub headers: HashMap<String, String>,
    /// Its body.
    pub body: Vec<u8>,
}

impl ForgeRequest {
    /// A header's value, by its name in any case ("" when absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(&name.to_ascii_lowercase()).map_or("", String::as_str)
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// A running fake GitHub, stopped when dropped.
pub struct FakeForge {
    /// Its API base URL, like `http://127.0.0.1:43123`, standing in for
    /// `https://api.github.com`.
    pub url: String,
    /// What the server and the test share.
    shared: Shared,
    /// The server.
    server: tokio::task::JoinHandle<()>,
}

impl FakeForge {
    /// Starts on 127.0.0.1:0 serving one repository `owner/name`, accepting `token`.
    pub async fn start(repo: &str, token: &str) -> FakeForge {
        Self::serve(repo, token, None).await
    }

    /// The same, reading branches from (and merging into) a real bare repository.
    pub async fn with_bare(repo: &str, token: &str, bare: &Path) -> FakeForge {
        Self::serve(repo, token, Some(bare.to_path_buf())).await
    }

    /// Starts the server.
    async fn serve(repo: &str, token: &str, bare: Option<PathBuf>) -> FakeForge {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await.expect("bind the fake forge");
        let port = listener.local_addr().expect("a local address").port();
        let url = format!("http://127.0.0.1:{port}");
        let shared = Arc::new(Mutex::new(Inner::new(url.clone(), repo, token, bare)));
        let app = routes::app(Arc::clone(&shared));
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeForge { url, shared, server }
    }

    /// The state, with the open pull requests' commits read again.
    fn fresh(&self) -> MutexGuard<'_, Inner> {
        let mut inner = lock(&self.shared);
        inner.refresh();
        inner
    }

    /// Protects branch `base`: merges into it are refused with 405, as a
    /// ruleset requiring an approving review does.
    pub fn protect(&self, base: &str) {
        lock(&self.shared).protected.insert(base.to_owned());
    }

    /// The pull request objects, in number order.
    pub fn pulls(&self) -> Vec<Value> {
        let inner = self.fresh();
        inner.pulls.iter().map(|p| inner.pull_json(p)).collect()
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<ForgeRequest> {
        lock(&self.shared).requests.clone()
    }

    /// Adds a completed (or in-progress when conclusion is None) check run on
    /// `head_sha`, with the log its job printed; its id (also its job's).
    pub fn add_check_run(&self, head_sha: &str, name: &str, conclusion: Option<&str>, log: &str) -> u64 {
        let mut inner = lock(&self.shared);
        let id = inner.id();
        inner.check_runs.push(CheckRun {
            id,
            name: name.to_owned(),
            head_sha: head_sha.to_owned(),
            conclusion: conclusion.map(str::to_owned),
            log: log.to_owned(),
            started_at: now(),
        });
        id
    }

    /// Adds a review on PR `number` (state "APPROVED" | "CHANGES_REQUESTED" |
    /// "COMMENTED") of its head commit, with line comments (path, line, body);
    /// its id. Panics when there is no such PR.
    pub fn add_review(&self, number: u64, state: &str, body: &str, comments: &[(&str, u64, &str)]) -> u64 {
        let mut inner = self.fresh();
        let commit_id = inner.pull(number).unwrap_or_else(|| panic!("no pull request #{number}")).head_sha.clone();
        let id = inner.id();
        let comments = comments
            .iter()
            .map(|(path, line, body)| Comment {
                id: inner.id(),
                path: (*path).to_owned(),
                line: *line,
                body: (*body).to_owned(),
            })
            .collect();
        inner.reviews.push(Review {
            id,
            number,
            state: state.to_owned(),
            body: body.to_owned(),
            commit_id,
            submitted_at: now(),
            comments,
        });
        id
    }

    /// Marks PR `number` merged as if someone pressed the button on GitHub (no
    /// git change); the merge sha (the same again for a merged PR). Panics when
    /// there is no such PR.
    pub fn merge_on_github(&self, number: u64) -> String {
        let mut inner = self.fresh();
        let pull = inner.pull(number).unwrap_or_else(|| panic!("no pull request #{number}"));
        if let Some(sha) = &pull.merge_commit_sha {
            return sha.clone();
        }
        let sha = random_sha();
        inner.mark_merged(number, &sha);
        sha
    }

    /// The `check_run` webhook payload GitHub would send for check run
    /// `check_run_id`: action `completed` (`created` while it is in progress),
    /// the full check run with its open pull requests. Panics when there is no
    /// such check run.
    pub fn check_run_event(&self, check_run_id: u64) -> Value {
        let inner = self.fresh();
        let run = inner.check_runs.iter().find(|c| c.id == check_run_id);
        let run = run.unwrap_or_else(|| panic!("no check run {check_run_id}"));
        json!({
            "action": if run.conclusion.is_some() { "completed" } else { "created" },
            "check_run": inner.check_run_json(run),
            "repository": inner.repository_json(),
            "sender": actions_bot_json(),
        })
    }

    /// The `pull_request` webhook payload GitHub would send for PR `number`
    /// with `action` (like `opened`, `synchronize` or `closed`; a `closed` one
    /// says in `pull_request.merged` whether it was merged). Panics when there
    /// is no such PR.
    pub fn pull_request_event(&self, number: u64, action: &str) -> Value {
        let inner = self.fresh();
        let pull = inner.pull(number).unwrap_or_else(|| panic!("no pull request #{number}"));
        json!({
            "action": action,
            "number": number,
            "pull_request": inner.pull_json(pull),
            "repository": inner.repository_json(),
            "sender": inner.user_json(),
        })
    }

    /// The `pull_request_review` webhook payload GitHub would send when review
    /// `review_id` on PR `number` is submitted: action `submitted`, the
    /// review's state in lower case as webhooks write it (`changes_requested`).
    /// Panics when there is no such review on that PR.
    pub fn review_event(&self, number: u64, review_id: u64) -> Value {
        let inner = self.fresh();
        let review = inner.reviews.iter().find(|r| r.id == review_id && r.number == number);
        let review = review.unwrap_or_else(|| panic!("no review {review_id} on pull request #{number}"));
        let pull = inner.pull(number).unwrap_or_else(|| panic!("no pull request #{number}"));
        let mut review_json = inner.review_json(review);
        review_json["state"] = Value::from(review.state.to_ascii_lowercase());
        json!({
            "action": "submitted",
            "review": review_json,
            "pull_request": inner.pull_json(pull),
            "repository": inner.repository_json(),
            "sender": inner.reviewer_json(),
        })
    }
}

impl FakeForge {
    /// Opens issue number 1001, 1002, … with `labels`; its number.
    pub fn open_issue(&self, title: &str, body: &str, labels: &[&str]) -> u64 {
        let mut inner = self.fresh();
        let number = 1001 + inner.issues.len() as u64;
        let labels: Vec<Value> = labels.iter().map(|l| json!({ "name": l })).collect();
        let full_name = inner.full_name();
        let url = inner.url.clone();
        inner.issues.push(json!({
            "number": number, "title": title, "body": body, "state": "open", "labels": labels,
            "user": { "login": "reporter" }, "author_association": "MEMBER",
            "url": format!("{url}/repos/{full_name}/issues/{number}"),
        }));
        number
    }

    /// A comment on issue or pull request `number` by `login`, whose
    /// `author_association` is `association` (`MEMBER`, `NONE`…); its id.
    pub fn add_comment(&self, number: u64, login: &str, association: &str, body: &str) -> u64 {
        let mut inner = self.fresh();
        let c = inner.issue_comment_json(number, login, association, body);
        let id = c["id"].as_u64().unwrap_or_default();
        inner.comments.push(c);
        id
    }

    /// The comments on issue or pull request `number`, oldest first.
    pub fn comments(&self, number: u64) -> Vec<Value> {
        let inner = self.fresh();
        let number = number.to_string();
        inner.comments.iter().filter(|c| c["issue_number"].as_str() == Some(number.as_str())).cloned().collect()
    }

    /// The reactions made: (what, content), like (`issues/1001`, `eyes`).
    pub fn reactions(&self) -> Vec<(String, String)> {
        self.fresh().reactions.clone()
    }

    /// The `issues` webhook payload for issue `number` with `action` (`labeled`).
    pub fn issue_event(&self, number: u64, action: &str) -> Value {
        let inner = self.fresh();
        let issue = inner
            .issues
            .iter()
            .find(|i| i["number"] == number)
            .cloned()
            .unwrap_or_else(|| panic!("no issue #{number}"));
        let label = issue["labels"][0].clone();
        json!({ "action": action, "issue": issue, "label": label, "repository": inner.repository_json(), "sender": inner.user_json() })
    }

    /// The `issue_comment` webhook payload for comment `id` (action `created`).
    pub fn comment_event(&self, id: u64) -> Value {
        let inner = self.fresh();
        let comment =
            inner.comments.iter().find(|c| c["id"] == id).cloned().unwrap_or_else(|| panic!("no comment {id}"));
        let number = comment["issue_number"].as_str().unwrap_or_default().to_owned();
        let wanted: u64 = number.parse().unwrap_or_default();
        let issue = match inner.issues.iter().find(|i| i["number"].as_u64() == Some(wanted)) {
            Some(i) => i.clone(),
            None => {
                let pull = inner
                    .pull(number.parse().unwrap_or_default())
                    .unwrap_or_else(|| panic!("no issue or pull #{number}"));
                let mut v = inner.pull_json(pull);
                v["pull_request"] = json!({ "url": v["url"] });
                v
            }
        };
        json!({ "action": "created", "issue": issue, "comment": comment, "repository": inner.repository_json(), "sender": comment["user"] })
    }
}

impl Drop for FakeForge {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// GitHub's `X-Hub-Signature-256` value for a body: `sha256=` + lower-case hex HMAC-SHA256.
pub fn sign(secret: &str, body: &[u8]) -> String {
    format!("sha256={}", hex(&hmac_sha256(secret.as_bytes(), body)))
}

/// POSTs a webhook to `url` as GitHub does: headers `X-GitHub-Event`,
/// `X-GitHub-Delivery` (a random GUID), `X-GitHub-Hook-ID`,
/// `User-Agent: GitHub-Hookshot/fake`, `Content-Type: application/json`,
/// `X-Hub-Signature-256` signed with `secret`. Returns (status, body text);
/// panics when `url` cannot be reached.
pub async fn send_webhook(url: &str, secret: &str, event: &str, payload: &Value) -> (u16, String) {
    let body = serde_json::to_vec(payload).expect("a JSON payload");
    let target_id = payload["repository"]["id"].as_u64().unwrap_or(REPO_ID).to_string();
    let response = client()
        .post(url)
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", guid())
        .header("X-GitHub-Hook-ID", HOOK_ID)
        .header("X-GitHub-Hook-Installation-Target-Type", "repository")
        .header("X-GitHub-Hook-Installation-Target-ID", target_id)
        .header("User-Agent", "GitHub-Hookshot/fake")
        .header("Content-Type", "application/json")
        .header("X-Hub-Signature-256", sign(secret, &body))
        .body(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("send a webhook to {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// An HTTP client that follows no redirect.
fn client() -> reqwest::Client {
    // reqwest is built without a crypto provider of its own: it needs one installed even for plain HTTP.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client")
}

/// A random GUID, as `X-GitHub-Delivery` carries.
fn guid() -> String {
    let h = hex(&random_bytes::<16>());
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    /// The token the tests' forges accept.
    const TOKEN: &str = "ghp_test";

    /// A request to the forge carrying the token.
    fn api(forge: &FakeForge, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        client().request(method, format!("{}{path}", forge.url)).bearer_auth(TOKEN)
    }

    /// Opens a pull request of `head` into `main`; its answer's status and body.
    async fn open_pull(forge: &FakeForge, head: &str) -> (u16, Value) {
        let body = json!({ "title": "Add a feature", "head": head, "base": "main", "body": "Please." });
        let response = api(forge, reqwest::Method::POST, "/repos/acme/app/pulls").json(&body).send().await.unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    /// Runs git in `dir`, as a test user; its trimmed output.
    fn git(dir: &Path, args: &[&str]) -> String {
        let out = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
            .args(args)
            .output()
            .expect("git");
        assert!(out.status.success(), "git {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    #[test]
    fn sign_gives_githubs_documented_example() {
        assert_eq!(
            sign("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn dates_are_calendar_dates() {
        assert_eq!(state::civil_from_days(0), (1970, 1, 1));
        assert_eq!(state::civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(state::civil_from_days(19_782), (2024, 2, 29));
    }

    #[tokio::test]
    async fn a_pull_fetched_again_with_its_etag_is_not_modified() {
        let forge = FakeForge::start("acme/app", TOKEN).await;
        let (status, pull) = open_pull(&forge, "feature").await;
        assert_eq!(status, 201, "{pull}");
        assert_eq!(pull["number"], 1);
        assert_eq!(pull["head"]["label"], "acme:feature");
        assert_eq!(pull["html_url"], "https://github.example/acme/app/pull/1");

        let first = api(&forge, reqwest::Method::GET, "/repos/acme/app/pulls/1").send().await.unwrap();
        assert_eq!(first.status(), 200);
        let etag = first.headers()["etag"].to_str().unwrap().to_owned();
        let again = api(&forge, reqwest::Method::GET, "/repos/acme/app/pulls/1")
            .header("If-None-Match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304);
        assert!(again.bytes().await.unwrap().is_empty());

        let (status, second) = open_pull(&forge, "feature").await;
        assert_eq!(status, 422);
        assert_eq!(second["errors"][0]["message"], "A pull request already exists for acme:feature.");
        assert_eq!(forge.requests().len(), 4);
        assert_eq!(forge.requests()[0].json()["head"], "feature");
    }

    #[tokio::test]
    async fn a_merge_into_a_protected_base_is_refused_and_the_pull_stays_open() {
        let forge = FakeForge::start("acme/app", TOKEN).await;
        open_pull(&forge, "feature").await;
        forge.protect("main");
        let response = api(&forge, reqwest::Method::PUT, "/repos/acme/app/pulls/1/merge")
            .json(&json!({ "merge_method": "squash" }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
        let body: Value = response.json().await.unwrap();
        assert!(body["message"].as_str().unwrap().starts_with("Repository rule violations found"), "{body}");
        assert_eq!(forge.pulls()[0]["state"], "open");
        assert_eq!(forge.pulls()[0]["merged"], false);
    }

    #[tokio::test]
    async fn a_request_without_the_token_is_refused() {
        let forge = FakeForge::start("acme/app", TOKEN).await;
        let response = client().get(format!("{}/repos/acme/app", forge.url)).send().await.unwrap();
        assert_eq!(response.status(), 401);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["message"], "Bad credentials");
        let wrong = client().get(format!("{}/repos/acme/app", forge.url)).bearer_auth("nope").send().await.unwrap();
        assert_eq!(wrong.status(), 401);
        let other = api(&forge, reqwest::Method::GET, "/repos/acme/other").send().await.unwrap();
        assert_eq!(other.status(), 404);
    }

    #[tokio::test]
    async fn a_pull_is_merged_in_the_bare_repository() {
        let dir = tempfile::tempdir().unwrap();
        let (bare, work) = (dir.path().join("bare.git"), dir.path().join("work"));
        git(dir.path(), &["init", "--quiet", "--bare", "-b", "main", bare.to_str().unwrap()]);
        git(dir.path(), &["clone", "--quiet", bare.to_str().unwrap(), work.to_str().unwrap()]);
        git(&work, &["commit", "--quiet", "--allow-empty", "-m", "start"]);
        git(&work, &["push", "--quiet", "origin", "HEAD:main"]);
        let forge = FakeForge::with_bare("acme/app", TOKEN, &bare).await;
        let (status, body) = open_pull(&forge, "feature").await;
        assert_eq!((status, &body["errors"][0]["code"]), (422, &json!("invalid")), "{body}");
        git(&work, &["push", "--quiet", "origin", "HEAD:feature"]);
        let (status, body) = open_pull(&forge, "feature").await;
        assert_eq!(body["errors"][0]["message"], "No commits between main and feature", "{status} {body}");

        std::fs::write(work.join("feature.txt"), "new\n").unwrap();
        git(&work, &["add", "feature.txt"]);
        git(&work, &["commit", "--quiet", "-m", "Add the feature"]);
        git(&work, &["push", "--quiet", "origin", "HEAD:feature"]);
        let (status, pull) = open_pull(&forge, "feature").await;
        assert_eq!(status, 201, "{pull}");
        let head = git(&work, &["rev-parse", "HEAD"]);
        assert_eq!(pull["head"]["sha"], head.as_str());

        let run = forge.add_check_run(&head, "test", Some("failure"), "error: it broke\n");
        let runs: Value = api(&forge, reqwest::Method::GET, "/repos/acme/app/commits/feature/check-runs")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(runs["total_count"], 1, "{runs}");
        assert_eq!(runs["check_runs"][0]["pull_requests"][0]["number"], 1);
        let logs = api(&forge, reqwest::Method::GET, &format!("/repos/acme/app/actions/jobs/{run}/logs"))
            .send()
            .await
            .unwrap();
        assert_eq!(logs.status(), 302);
        let blob = logs.headers()["location"].to_str().unwrap().to_owned();
        assert_eq!(client().get(blob).send().await.unwrap().text().await.unwrap(), "error: it broke\n");

        let merged = api(&forge, reqwest::Method::PUT, "/repos/acme/app/pulls/1/merge")
            .json(&json!({ "merge_method": "merge", "sha": head.clone() }))
            .send()
            .await
            .unwrap();
        assert_eq!(merged.status(), 200);
        let merged: Value = merged.json().await.unwrap();
        let tip = git(&bare, &["rev-parse", "refs/heads/main"]);
        assert_eq!(merged["sha"], tip.as_str());
        assert_eq!(git(&bare, &["rev-parse", "refs/heads/main^2"]), head);
        assert_eq!(forge.pulls()[0]["merge_commit_sha"], tip.as_str());
        assert_eq!(forge.pull_request_event(1, "closed")["pull_request"]["merged"], true);
    }

    #[tokio::test]
    async fn a_review_event_writes_its_state_in_lower_case() {
        let forge = FakeForge::start("acme/app", TOKEN).await;
        open_pull(&forge, "feature").await;
        let review = forge.add_review(1, "CHANGES_REQUESTED", "Not yet.", &[("src/lib.rs", 3, "Why?")]);
        let event = forge.review_event(1, review);
        assert_eq!(event["review"]["state"], "changes_requested");
        assert_eq!(event["repository"]["full_name"], "acme/app");
        let path = format!("/repos/acme/app/pulls/1/reviews/{review}/comments");
        let comments: Value = api(&forge, reqwest::Method::GET, &path).send().await.unwrap().json().await.unwrap();
        assert_eq!(comments[0]["line"], 3);
        assert_eq!(comments[0]["pull_request_review_id"], review);
    }
}
