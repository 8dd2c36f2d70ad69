//! The fake forge's state — the repository's pull requests, check runs and
//! reviews, and the requests received — and the JSON shapes GitHub's REST API
//! and webhooks give those things.

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ForgeRequest;
use super::git;

/// Where the fake's web pages would be (`html_url`s).
pub(super) const WEB: &str = "https://github.example";

/// The repository's id.
pub(super) const REPO_ID: u64 = 700_000_001;

/// The login of the user the token belongs to, who opens the pull requests.
const USER: &str = "baton";

/// The login of the user who writes the reviews.
const REVIEWER: &str = "octo-reviewer";

/// A pull request.
#[derive(Debug, Clone)]
pub(super) struct Pull {
    /// Its number in the repository, from 1.
    pub number: u64,
    /// Its id across GitHub.
    pub id: u64,
    /// Its title.
    pub title: String,
    /// Its description, if it has one.
    pub body: Option<String>,
    /// The branch it would merge.
    pub head: String,
    /// The branch it would merge into.
    pub base: String,
    /// Whether it is a draft.
    pub draft: bool,
    /// The head branch's commit, as last read (kept once closed).
    pub head_sha: String,
    /// The base branch's commit, as last read (kept once closed).
    pub base_sha: String,
    /// When it was opened.
    pub created_at: String,
    /// When it last changed.
    pub updated_at: String,
    /// When it was closed, merged or not.
    pub closed_at: Option<String>,
    /// When it was merged.
    pub merged_at: Option<String>,
    /// The commit its merge made.
    pub merge_commit_sha: Option<String>,
}

impl Pull {
    /// Whether it is still open.
    pub fn is_open(&self) -> bool {
        self.closed_at.is_none()
    }
}

/// A check run, as a GitHub Actions job makes one (with the job's id).
#[derive(Debug, Clone)]
pub(super) struct CheckRun {
    /// Its id, also its job's.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// The commit it checks.
    pub head_sha: String,
    /// How it ended; `None` while in progress.
    pub conclusion: Option<String>,
    /// What its job printed.
    pub log: String,
    /// When it started.
    pub started_at: String,
}

/// A review of a pull request.
#[derive(Debug, Clone)]
pub(super) struct Review {
    /// Its id.
    pub id: u64,
    /// The pull request's number.
    pub number: u64,
    /// `APPROVED`, `CHANGES_REQUESTED` or `COMMENTED`.
    pub state: String,
    /// What the reviewer wrote.
    pub body: String,
    /// The head commit reviewed.
    pub commit_id: String,
    /// When it was submitted.
    pub submitted_at: String,
    /// Its comments on lines.
    pub comments: Vec<Comment>,
}

/// A review's comment on a line.
#[derive(Debug, Clone)]
pub(super) struct Comment {
    /// Its id.
    pub id: u64,
    /// The file commented on.
    pub path: String,
    /// The line commented on.
    pub line: u64,
    /// What it says.
    pub body: String,
}

/// Everything the fake knows, shared by the server and the test.
#[derive(Debug)]
pub(super) struct Inner {
    /// The API's base URL.
    pub url: String,
    /// The repository's owner.
    pub owner: String,
    /// The repository's name.
    pub name: String,
    /// The token every request must carry.
    pub token: String,
    /// The bare repository branches are read from and merged in, if any.
    pub bare: Option<PathBuf>,
    /// The branches merges into are refused.
    pub protected: HashSet<String>,
    /// The pull requests, in number order.
    pub pulls: Vec<Pull>,
    /// The check runs, in id order.
    pub check_runs: Vec<CheckRun>,
    /// The reviews, in id order.
    pub reviews: Vec<Review>,
    /// Every request received, in order.
    pub requests: Vec<ForgeRequest>,
    /// Issues (numbered from 1001, beside the pull requests).
    pub issues: Vec<Value>,
    /// Issue and pull request comments, in id order.
    pub comments: Vec<Value>,
    /// Reactions: (what, content).
    pub reactions: Vec<(String, String)>,
    /// The next id to give.
    next_id: u64,
}

impl Inner {
    /// The state of a fresh fake serving `owner/name` at `url`.
    pub fn new(url: String, repo: &str, token: &str, bare: Option<PathBuf>) -> Inner {
        let (owner, name) = repo.split_once('/').unwrap_or_else(|| panic!("{repo:?} is not OWNER/NAME"));
        Inner {
            url,
            owner: owner.to_owned(),
            name: name.to_owned(),
            token: token.to_owned(),
            bare,
            protected: HashSet::new(),
            pulls: Vec::new(),
            check_runs: Vec::new(),
            reviews: Vec::new(),
            requests: Vec::new(),
            issues: Vec::new(),
            comments: Vec::new(),
            reactions: Vec::new(),
            next_id: 1_000_001,
        }
    }

    /// A new id, unique across the fake.
    pub fn id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A comment on issue (or pull request) `number`, as GitHub shows it.
    pub fn issue_comment_json(&mut self, number: u64, login: &str, association: &str, body: &str) -> Value {
        let id = self.id();
        let full_name = self.full_name();
        json!({
            "id": id,
            "body": body,
            "user": user_json(login),
            "author_association": association,
            "issue_url": format!("{}/repos/{full_name}/issues/{number}", self.url),
            "issue_number": number.to_string(),
            "created_at": now(),
            "updated_at": now(),
        })
    }

    /// `owner/name`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// The pull request numbered `number`.
    pub fn pull(&self, number: u64) -> Option<&Pull> {
        self.pulls.iter().find(|p| p.number == number)
    }

    /// The commit at the tip of `branch`: read from the bare repository (`None`
    /// when it has no such branch), else a fixed fake sha made from the name.
    pub fn branch_sha(&self, branch: &str) -> Option<String> {
        match &self.bare {
            Some(bare) => git::branch_sha(bare, branch),
            None => Some(fake_sha(branch)),
        }
    }

    /// Reads again the head and base commits of the open pull requests, so
    /// that a push shows.
    pub fn refresh(&mut self) {
        if self.bare.is_none() {
            return;
        }
        let shas: Vec<_> = self.pulls.iter().map(|p| (self.branch_sha(&p.head), self.branch_sha(&p.base))).collect();
        for (pull, (head, base)) in self.pulls.iter_mut().zip(shas).filter(|(p, _)| p.is_open()) {
            if let Some(head) = head.filter(|h| *h != pull.head_sha) {
                pull.head_sha = head;
                pull.updated_at = now();
            }
            if let Some(base) = base {
                pull.base_sha = base;
            }
        }
    }

    /// Closes pull request `number` as merged by `sha`.
    pub fn mark_merged(&mut self, number: u64, sha: &str) {
        let at = now();
        if let Some(pull) = self.pulls.iter_mut().find(|p| p.number == number) {
            pull.closed_at = Some(at.clone());
            pull.merged_at = Some(at.clone());
            pull.updated_at = at;
            pull.merge_commit_sha = Some(sha.to_owned());
        }
    }

    /// The open pull requests whose head is at `sha`.
    fn open_pulls_at(&self, sha: &str) -> impl Iterator<Item = &Pull> {
        self.pulls.iter().filter(move |p| p.is_open() && p.head_sha == sha)
    }

    /// The repository, as `GET /repos/{owner}/{repo}` and webhooks give it.
    pub fn repository_json(&self) -> Value {
        let full_name = self.full_name();
        json!({
            "id": REPO_ID,
            "node_id": "R_kgDOfake",
            "name": self.name,
            "full_name": full_name,
            "owner": { "login": self.owner, "id": 1_000_001, "type": "Organization" },
            "private": false,
            "html_url": format!("{WEB}/{full_name}"),
            "url": format!("{}/repos/{full_name}", self.url),
            "clone_url": format!("{WEB}/{full_name}.git"),
            "default_branch": "main",
            "visibility": "public",
            "archived": false,
        })
    }

    /// A branch end of a pull request (its `head` or `base`).
    fn pull_end_json(&self, branch: &str, sha: &str) -> Value {
        json!({
            "label": format!("{}:{branch}", self.owner),
            "ref": branch,
            "sha": sha,
            "user": { "login": self.owner },
            "repo": { "id": REPO_ID, "name": self.name, "full_name": self.full_name() },
        })
    }

    /// A pull request, as the pulls API and webhooks give it.
    pub fn pull_json(&self, p: &Pull) -> Value {
        let full_name = self.full_name();
        json!({
            "url": format!("{}/repos/{full_name}/pulls/{}", self.url, p.number),
            "id": p.id,
            "node_id": format!("PR_fake{}", p.id),
            "html_url": format!("{WEB}/{full_name}/pull/{}", p.number),
            "number": p.number,
            "state": if p.is_open() { "open" } else { "closed" },
            "locked": false,
            "title": p.title,
            "body": p.body,
            "user": user_json(USER),
            "created_at": p.created_at,
            "updated_at": p.updated_at,
            "closed_at": p.closed_at,
            "merged_at": p.merged_at,
            "merge_commit_sha": p.merge_commit_sha,
            "draft": p.draft,
            "merged": p.merged_at.is_some(),
            "mergeable": true,
            "mergeable_state": "clean",
            "head": self.pull_end_json(&p.head, &p.head_sha),
            "base": self.pull_end_json(&p.base, &p.base_sha),
            "author_association": "MEMBER",
        })
    }

    /// A check run, as the checks API and webhooks give it.
    pub fn check_run_json(&self, c: &CheckRun) -> Value {
        let full_name = self.full_name();
        let pulls: Vec<Value> = self
            .open_pulls_at(&c.head_sha)
            .map(|p| {
                json!({
                    "url": format!("{}/repos/{full_name}/pulls/{}", self.url, p.number),
                    "id": p.id,
                    "number": p.number,
                    "head": { "ref": p.head, "sha": p.head_sha, "repo": { "id": REPO_ID, "name": self.name } },
                    "base": { "ref": p.base, "sha": p.base_sha, "repo": { "id": REPO_ID, "name": self.name } },
                })
            })
            .collect();
        let head_branch = self.open_pulls_at(&c.head_sha).next().map(|p| p.head.clone());
        let completed = c.conclusion.as_ref().map(|_| c.started_at.clone());
        json!({
            "id": c.id,
            "node_id": format!("CR_fake{}", c.id),
            "name": c.name,
            "head_sha": c.head_sha,
            "external_id": "",
            "url": format!("{}/repos/{full_name}/check-runs/{}", self.url, c.id),
            "html_url": format!("{WEB}/{full_name}/runs/{}", c.id),
            "details_url": format!("{WEB}/{full_name}/actions/runs/{}/job/{}", c.id + 500_000, c.id),
            "status": if c.conclusion.is_some() { "completed" } else { "in_progress" },
            "conclusion": c.conclusion,
            "started_at": c.started_at,
            "completed_at": completed,
            "output": {
                "title": c.conclusion.as_ref().map(|k| format!("{}: {k}", c.name)),
                "summary": "",
                "text": null,
                "annotations_count": 0,
            },
            "check_suite": { "id": c.id + 900_000, "head_branch": head_branch, "head_sha": c.head_sha },
            "app": { "id": 15_368, "slug": "github-actions", "name": "GitHub Actions" },
            "pull_requests": pulls,
        })
    }

    /// A review, as the reviews API gives it (webhooks write its state in
    /// lower case).
    pub fn review_json(&self, r: &Review) -> Value {
        let full_name = self.full_name();
        let pull_url = format!("{}/repos/{full_name}/pulls/{}", self.url, r.number);
        let html_url = format!("{WEB}/{full_name}/pull/{}#pullrequestreview-{}", r.number, r.id);
        json!({
            "id": r.id,
            "node_id": format!("PRR_fake{}", r.id),
            "user": user_json(REVIEWER),
            "body": r.body,
            "state": r.state,
            "commit_id": r.commit_id,
            "submitted_at": r.submitted_at,
            "author_association": "MEMBER",
            "html_url": html_url,
            "pull_request_url": pull_url,
            "_links": { "html": { "href": html_url }, "pull_request": { "href": pull_url } },
        })
    }

    /// A review's line comment, as the review comments APIs give it.
    pub fn comment_json(&self, r: &Review, c: &Comment) -> Value {
        let full_name = self.full_name();
        json!({
            "id": c.id,
            "node_id": format!("PRRC_fake{}", c.id),
            "pull_request_review_id": r.id,
            "url": format!("{}/repos/{full_name}/pulls/comments/{}", self.url, c.id),
            "html_url": format!("{WEB}/{full_name}/pull/{}#discussion_r{}", r.number, c.id),
            "pull_request_url": format!("{}/repos/{full_name}/pulls/{}", self.url, r.number),
            "path": c.path,
            "line": c.line,
            "original_line": c.line,
            "side": "RIGHT",
            "commit_id": r.commit_id,
            "original_commit_id": r.commit_id,
            "body": c.body,
            "user": user_json(REVIEWER),
            "created_at": r.submitted_at,
            "updated_at": r.submitted_at,
            "author_association": "MEMBER",
        })
    }

    /// The user who opens the pull requests, as a webhook's `sender`.
    pub fn user_json(&self) -> Value {
        user_json(USER)
    }

    /// The user who writes the reviews, as a webhook's `sender`.
    pub fn reviewer_json(&self) -> Value {
        user_json(REVIEWER)
    }
}

/// A user as GitHub shows one.
fn user_json(login: &str) -> Value {
    json!({ "login": login, "id": 1_000_000 + login.len(), "type": "User", "html_url": format!("{WEB}/{login}") })
}

/// GitHub Actions' bot, the sender of check run webhooks.
pub(super) fn actions_bot_json() -> Value {
    json!({ "login": "github-actions[bot]", "id": 41_898_282, "type": "Bot" })
}

/// The fixed sha a branch is at when the fake has no bare repository.
pub(super) fn fake_sha(branch: &str) -> String {
    hex(&Sha256::digest(format!("branch:{branch}").as_bytes()))[..40].to_owned()
}

/// A random sha, for the commits a merge without a bare repository makes.
pub(super) fn random_sha() -> String {
    hex(&random_bytes::<20>())
}

/// `N` random bytes.
pub(super) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes
}

/// Bytes in lower-case hexadecimal.
pub(super) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The time now as GitHub writes it, like `2026-01-31T12:00:00Z`.
pub(super) fn now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (year, month, day) = civil_from_days(secs / 86_400);
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z")
}

/// The calendar date `days` days after 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, for days on or after the epoch).
pub(super) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
