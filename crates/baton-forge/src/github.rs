//! The few GitHub REST calls Baton makes: open, read and merge a pull request,
//! read a commit's check runs and a job's log, and read a pull request's
//! reviews and their comments. Reads are conditional (`If-None-Match`), so a
//! poll that finds nothing new costs no rate limit.

use std::time::Duration;

use baton_core::model::{ForgeSettings, MergeStrategy, ReviewComment};
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::{Value, json};

use baton_core::text::tail;
use baton_domain::Error;

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The most bytes of a job's log kept.
const LOG_MAX: usize = 64 * 1024;

/// A client of one repository on GitHub (or GitHub Enterprise Server).
#[derive(Clone)]
pub struct GitHub {
    api: String,
    repo: String,
    token: String,
    http: reqwest::Client,
    /// Whether it speaks to GitLab (merge requests, pipelines, notes).
    gitlab: bool,
}

/// A pull request, as far as Baton reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct Pull {
    pub number: u64,
    pub html_url: String,
    pub state: String,
    #[serde(default)]
    pub merged: bool,
    #[serde(default)]
    pub merge_commit_sha: Option<String>,
    pub head: Head,
}

/// A pull request's head.
#[derive(Debug, Clone, Deserialize)]
pub struct Head {
    #[serde(rename = "ref")]
    pub branch: String,
    pub sha: String,
}

/// A check run.
#[derive(Debug, Clone, Deserialize)]
pub struct CheckRun {
    pub id: u64,
    pub name: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub conclusion: Option<String>,
    #[serde(default)]
    pub head_sha: String,
    #[serde(default)]
    pub output: CheckOutput,
    #[serde(default)]
    pub app: Option<App>,
}

/// What a check run reported.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct CheckOutput {
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub summary: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
}

/// The app that made a check run.
#[derive(Debug, Clone, Deserialize)]
pub struct App {
    #[serde(default)]
    pub slug: String,
}

impl CheckRun {
    /// Whether it ended in a way the author must fix.
    pub fn failed(&self) -> bool {
        self.status == "completed" && matches!(self.conclusion.as_deref(), Some("failure" | "timed_out"))
    }
}

/// A review of a pull request.
#[derive(Debug, Clone, Deserialize)]
pub struct PullReview {
    pub id: u64,
    #[serde(default)]
    pub body: Option<String>,
    pub state: String,
    #[serde(default)]
    pub user: Option<User>,
    /// `OWNER`, `MEMBER`, `COLLABORATOR`, `CONTRIBUTOR`, `NONE`…
    #[serde(default)]
    pub author_association: Option<String>,
}

/// A GitHub user.
#[derive(Debug, Clone, Deserialize)]
pub struct User {
    pub login: String,
}

#[derive(Deserialize)]
struct LineComment {
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    line: Option<u64>,
    #[serde(default)]
    body: String,
}

#[derive(Deserialize)]
struct CheckRuns {
    check_runs: Vec<CheckRun>,
}

/// An answer: its body, or nothing new since `etag`.
pub enum Fresh<T> {
    /// Changed (or first read), with its new ETag.
    New(T, Option<String>),
    /// The same as at that ETag.
    Same,
}

impl GitHub {
    /// A client for the project's forge, with the token from the coordinator's
    /// environment.
    pub fn new(settings: &ForgeSettings) -> Result<GitHub, Error> {
        let var = settings.token_env();
        let token = std::env::var(var).ok().filter(|t| !t.trim().is_empty()).ok_or_else(|| {
            Error::conflict(format!(
                "[forge] token_env names {var}, which is not set in the coordinator's environment; \
                 set it (a token that may push and open pull requests on {}) and restart `baton up`",
                settings.repo
            ))
        })?;
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .user_agent(concat!("Baton/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::internal)?;
        Ok(GitHub {
            api: settings.api_url(),
            repo: settings.repository().to_owned(),
            token,
            http,
            gitlab: settings.kind == baton_core::model::ForgeKind::Gitlab,
        })
    }

    /// The API's root.
    pub(crate) fn api(&self) -> &str {
        &self.api
    }

    /// The repository (GitHub) or project (GitLab).
    pub(crate) fn repo(&self) -> &str {
        &self.repo
    }

    /// The token.
    pub(crate) fn token(&self) -> &str {
        &self.token
    }

    /// The HTTP client.
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Whether this is GitLab.
    pub fn is_gitlab(&self) -> bool {
        self.gitlab
    }

    /// One call; the status, ETag and JSON body (`Null` for none).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        etag: Option<&str>,
    ) -> Result<(StatusCode, Option<String>, Value), Error> {
        let url = format!("{}/repos/{}{path}", self.api, self.repo);
        let mut req = self
            .http
            .request(method, &url)
            .bearer_auth(&self.token)
            .header("Accept", "application/vnd.github+json")
            .header("X-GitHub-Api-Version", "2022-11-28");
        if let Some(tag) = etag {
            req = req.header("If-None-Match", tag);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await.map_err(|e| unreachable_forge(&self.api, e))?;
        let status = resp.status();
        let tag = resp.headers().get("etag").and_then(|v| v.to_str().ok()).map(str::to_owned);
        let bytes = resp.bytes().await.map_err(|e| unreachable_forge(&self.api, e))?;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        if status == StatusCode::UNAUTHORIZED {
            return Err(Error::ForgeRefused {
                message: format!("GitHub refused the token: {}", message(&value)),
                details: None,
            });
        }
        Ok((status, tag, value))
    }

    /// An issue (or a pull request, as an issue).
    pub async fn issue(&self, number: u64) -> Result<Value, Error> {
        if self.gitlab {
            return super::gitlab::read_issue(self, number).await;
        }
        let (status, _, value) = self.call(Method::GET, &format!("/issues/{number}"), None, None).await?;
        if status != StatusCode::OK {
            return Err(refused(status, &value, "could not read the issue"));
        }
        Ok(value)
    }

    /// An issue's comments, oldest first (the first hundred).
    pub async fn issue_comments(&self, number: u64) -> Result<Vec<Value>, Error> {
        if self.gitlab {
            return super::gitlab::issue_notes(self, number).await;
        }
        let path = format!("/issues/{number}/comments?per_page=100");
        let (status, _, value) = self.call(Method::GET, &path, None, None).await?;
        if status != StatusCode::OK {
            return Err(refused(status, &value, "could not read the issue's comments"));
        }
        Ok(value.as_array().cloned().unwrap_or_default())
    }

    /// Comments on an issue (or a pull request).
    pub async fn comment(&self, number: u64, body: &str) -> Result<(), Error> {
        if self.gitlab {
            return super::gitlab::note(self, number, body).await;
        }
        let req = json!({ "body": body });
        let (status, _, value) =
            self.call(Method::POST, &format!("/issues/{number}/comments"), Some(req), None).await?;
        if status != StatusCode::CREATED {
            return Err(refused(status, &value, "could not comment on the issue"));
        }
        Ok(())
    }

    /// Reacts 👀 to an issue (`issues/N`) or a comment (`issues/comments/ID`).
    pub async fn eyes(&self, what: &str) -> Result<(), Error> {
        if self.gitlab {
            return super::gitlab::eyes(self, what).await;
        }
        let req = json!({ "content": "eyes" });
        let (status, _, value) = self.call(Method::POST, &format!("/{what}/reactions"), Some(req), None).await?;
        if !status.is_success() {
            return Err(refused(status, &value, "could not react"));
        }
        Ok(())
    }

    /// Open issues with `label`, newest first (conditional on `etag`).
    pub async fn labeled(&self, label: &str, etag: Option<&str>) -> Result<Fresh<Vec<Value>>, Error> {
        if self.gitlab {
            return super::gitlab::labeled(self, label).await;
        }
        let path = format!("/issues?labels={label}&state=open&per_page=50");
        let (status, tag, value) = self.call(Method::GET, &path, None, etag).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fresh::Same),
            StatusCode::OK => Ok(Fresh::New(value.as_array().cloned().unwrap_or_default(), tag)),
            _ => Err(refused(status, &value, "could not list the labelled issues")),
        }
    }

    /// The repository's issue comments since `since` (RFC 3339), oldest first.
    pub async fn comments_since(&self, since: &str, etag: Option<&str>) -> Result<Fresh<Vec<Value>>, Error> {
        if self.gitlab {
            return Ok(Fresh::New(Vec::new(), None));
        }
        let path = format!("/issues/comments?since={since}&sort=created&direction=asc&per_page=100");
        let (status, tag, value) = self.call(Method::GET, &path, None, etag).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fresh::Same),
            StatusCode::OK => Ok(Fresh::New(value.as_array().cloned().unwrap_or_default(), tag)),
            _ => Err(refused(status, &value, "could not list the issue comments")),
        }
    }

    /// Opens a pull request.
    pub async fn create_pull(&self, title: &str, head: &str, base: &str, body: &str) -> Result<Pull, Error> {
        if self.gitlab {
            return super::gitlab::create_pull(self, title, head, base, body).await;
        }
        let req = json!({ "title": title, "head": head, "base": base, "body": body });
        let (status, _, value) = self.call(Method::POST, "/pulls", Some(req), None).await?;
        if status != StatusCode::CREATED {
            return Err(refused(status, &value, "could not open the pull request"));
        }
        parse(value)
    }

    /// A pull request, unless it is unchanged since `etag`.
    pub async fn pull(&self, number: u64, etag: Option<&str>) -> Result<Fresh<Pull>, Error> {
        if self.gitlab {
            return super::gitlab::read_pull(self, number).await;
        }
        let (status, tag, value) = self.call(Method::GET, &format!("/pulls/{number}"), None, etag).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fresh::Same),
            StatusCode::OK => Ok(Fresh::New(parse(value)?, tag)),
            _ => Err(refused(status, &value, "could not read the pull request")),
        }
    }

    /// Merges a pull request whose head is `sha`; the merge's commit.
    pub async fn merge_pull(&self, number: u64, strategy: MergeStrategy, sha: Option<&str>) -> Result<String, Error> {
        if self.gitlab {
            return super::gitlab::merge_pull(self, number, strategy, sha).await;
        }
        let method = match strategy {
            MergeStrategy::Merge => "merge",
            MergeStrategy::Squash => "squash",
            MergeStrategy::Rebase => "rebase",
        };
        let mut req = json!({ "merge_method": method });
        if let Some(sha) = sha {
            req["sha"] = json!(sha);
        }
        let (status, _, value) = self.call(Method::PUT, &format!("/pulls/{number}/merge"), Some(req), None).await?;
        if status != StatusCode::OK {
            return Err(refused(status, &value, "GitHub did not merge the pull request"));
        }
        Ok(value["sha"].as_str().unwrap_or_default().to_owned())
    }

    /// The check runs of a commit, unless unchanged since `etag`.
    pub async fn check_runs(&self, sha: &str, etag: Option<&str>) -> Result<Fresh<Vec<CheckRun>>, Error> {
        if self.gitlab {
            return super::gitlab::check_runs(self, sha).await;
        }
        let path = format!("/commits/{sha}/check-runs?per_page=100");
        let (status, tag, value) = self.call(Method::GET, &path, None, etag).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fresh::Same),
            StatusCode::OK => Ok(Fresh::New(parse::<CheckRuns>(value)?.check_runs, tag)),
            _ => Err(refused(status, &value, "could not read the check runs")),
        }
    }

    /// What a failed check printed: its job's log (GitHub Actions' check runs
    /// are jobs), else the check run's own output.
    pub async fn check_log(&self, run: &CheckRun) -> String {
        if self.gitlab {
            return tail(&super::gitlab::job_log(self, run.id).await, LOG_MAX).to_owned();
        }
        if run.app.as_ref().is_some_and(|a| a.slug == "github-actions") {
            let url = format!("{}/repos/{}/actions/jobs/{}/logs", self.api, self.repo, run.id);
            let resp = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28")
                .send()
                .await;
            if let Ok(resp) = resp
                && resp.status().is_success()
                && let Ok(text) = resp.text().await
            {
                return tail(&text, LOG_MAX).to_owned();
            }
        }
        let o = &run.output;
        [o.title.as_deref(), o.summary.as_deref(), o.text.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join("\n\n")
    }

    /// A pull request's reviews, unless unchanged since `etag`.
    pub async fn reviews(&self, number: u64, etag: Option<&str>) -> Result<Fresh<Vec<PullReview>>, Error> {
        if self.gitlab {
            return Ok(Fresh::New(Vec::new(), None));
        }
        let path = format!("/pulls/{number}/reviews?per_page=100");
        let (status, tag, value) = self.call(Method::GET, &path, None, etag).await?;
        match status {
            StatusCode::NOT_MODIFIED => Ok(Fresh::Same),
            StatusCode::OK => Ok(Fresh::New(parse(value)?, tag)),
            _ => Err(refused(status, &value, "could not read the reviews")),
        }
    }

    /// The line comments of one review.
    pub async fn review_comments(&self, number: u64, review: u64) -> Result<Vec<ReviewComment>, Error> {
        let path = format!("/pulls/{number}/reviews/{review}/comments?per_page=100");
        let (status, _, value) = self.call(Method::GET, &path, None, None).await?;
        if status != StatusCode::OK {
            return Err(refused(status, &value, "could not read the review's comments"));
        }
        let comments: Vec<LineComment> = parse(value)?;
        Ok(comments
            .into_iter()
            .filter(|c| !c.body.trim().is_empty())
            .map(|c| ReviewComment { file: c.path, line: c.line, body: c.body })
            .collect())
    }
}

fn parse<T: serde::de::DeserializeOwned>(value: Value) -> Result<T, Error> {
    serde_json::from_value(value)
        .map_err(|e| Error::unavailable(format!("GitHub answered in an unexpected shape: {e}")))
}

/// GitHub's own words: its `message`, and the first of its `errors`.
fn message(value: &Value) -> String {
    let main = value["message"].as_str().unwrap_or("no message").to_owned();
    match value["errors"].get(0) {
        Some(first) => {
            let detail = first["message"].as_str().map(str::to_owned).unwrap_or_else(|| {
                format!("{} {}", first["field"].as_str().unwrap_or(""), first["code"].as_str().unwrap_or(""))
            });
            format!("{main}: {}", detail.trim())
        }
        None => main,
    }
}

/// A refusal, in GitHub's words.
fn refused(status: StatusCode, value: &Value, what: &str) -> Error {
    let message = format!("{what}: GitHub answered {} ({})", status.as_u16(), message(value));
    let details = Some(json!({ "forge_status": status.as_u16(), "forge_answer": value }));
    if status.is_server_error() {
        Error::Unavailable { message, details }
    } else {
        Error::ForgeRefused { message, details }
    }
}

fn unreachable_forge(api: &str, e: reqwest::Error) -> Error {
    Error::unavailable(format!("could not reach {api}: {e}"))
}
