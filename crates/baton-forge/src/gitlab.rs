//! GitLab, in the shape the GitHub client has: merge requests for pull
//! requests (opened, read, merged through the API respecting approvals),
//! pipelines' jobs for check runs (a failed job's trace for its log), issues
//! and their notes, award emoji for reactions. The token goes in
//! `PRIVATE-TOKEN`; webhooks are verified by `X-Gitlab-Token`.

use baton_core::model::MergeStrategy;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use baton_domain::Error;

use super::github::{App, CheckOutput, CheckRun, Fresh, GitHub, Head, Pull};

/// One call to `/projects/:id{path}`; the status and JSON body.
pub(crate) async fn call(
    c: &GitHub,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Result<(StatusCode, Value), Error> {
    let project: String = c
        .repo()
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let url = format!("{}/projects/{project}{path}", c.api());
    let mut req = c.http().request(method, &url).header("PRIVATE-TOKEN", c.token());
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.map_err(|e| Error::unavailable(format!("could not reach {}: {e}", c.api())))?;
    let status = resp.status();
    let bytes = resp.bytes().await.map_err(|e| Error::unavailable(format!("could not read GitLab's answer: {e}")))?;
    let value =
        serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    if status == StatusCode::UNAUTHORIZED {
        return Err(Error::ForgeRefused {
            message: format!("GitLab refused the token: {}", message(&value)),
            details: None,
        });
    }
    Ok((status, value))
}

fn message(v: &Value) -> String {
    match &v["message"] {
        Value::String(s) => s.clone(),
        Value::Null => v["error"].as_str().unwrap_or("no message").to_owned(),
        other => other.to_string(),
    }
}

fn refused(status: StatusCode, value: &Value, what: &str) -> Error {
    let message = format!("{what}: GitLab answered {} ({})", status.as_u16(), message(value));
    let details = Some(json!({ "forge_status": status.as_u16(), "forge_answer": value }));
    if status.is_server_error() {
        Error::Unavailable { message, details }
    } else {
        Error::ForgeRefused { message, details }
    }
}

/// A merge request as the pull request Baton follows.
fn pull(mr: &Value) -> Pull {
    let state = mr["state"].as_str().unwrap_or_default();
    Pull {
        number: mr["iid"].as_u64().unwrap_or_default(),
        html_url: mr["web_url"].as_str().unwrap_or_default().to_owned(),
        state: if state == "opened" { "open".into() } else { "closed".into() },
        merged: state == "merged",
        merge_commit_sha: mr["merge_commit_sha"].as_str().or(mr["squash_commit_sha"].as_str()).map(str::to_owned),
        head: Head {
            branch: mr["source_branch"].as_str().unwrap_or_default().to_owned(),
            sha: mr["sha"].as_str().unwrap_or_default().to_owned(),
        },
    }
}

pub(crate) async fn create_pull(c: &GitHub, title: &str, head: &str, base: &str, body: &str) -> Result<Pull, Error> {
    let req = json!({ "source_branch": head, "target_branch": base, "title": title, "description": body });
    let (status, value) = call(c, Method::POST, "/merge_requests", Some(req)).await?;
    if status != StatusCode::CREATED {
        return Err(refused(status, &value, "could not open the merge request"));
    }
    Ok(pull(&value))
}

pub(crate) async fn read_pull(c: &GitHub, number: u64) -> Result<Fresh<Pull>, Error> {
    let (status, value) = call(c, Method::GET, &format!("/merge_requests/{number}"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "could not read the merge request"));
    }
    Ok(Fresh::New(pull(&value), None))
}

/// Merges a merge request (its approvals and pipeline rules apply; GitLab
/// answers 405 or 406 when it may not be merged, 409 when its head moved).
pub(crate) async fn merge_pull(
    c: &GitHub,
    number: u64,
    strategy: MergeStrategy,
    sha: Option<&str>,
) -> Result<String, Error> {
    let mut req = json!({ "squash": strategy == MergeStrategy::Squash });
    if let Some(sha) = sha {
        req["sha"] = json!(sha);
    }
    let (status, value) = call(c, Method::PUT, &format!("/merge_requests/{number}/merge"), Some(req)).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "GitLab did not merge the merge request"));
    }
    Ok(pull(&value).merge_commit_sha.unwrap_or_default())
}

/// The jobs of the newest pipeline of a commit, as check runs.
pub(crate) async fn check_runs(c: &GitHub, sha: &str) -> Result<Fresh<Vec<CheckRun>>, Error> {
    let (status, value) =
        call(c, Method::GET, &format!("/pipelines?sha={sha}&order_by=id&sort=desc&per_page=1"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "could not read the pipelines"));
    }
    let Some(id) = value.get(0).and_then(|p| p["id"].as_u64()) else { return Ok(Fresh::New(Vec::new(), None)) };
    let (status, jobs) = call(c, Method::GET, &format!("/pipelines/{id}/jobs?per_page=100"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &jobs, "could not read the pipeline's jobs"));
    }
    let runs = jobs.as_array().map(|a| a.iter().map(|j| job(j, sha)).collect()).unwrap_or_default();
    Ok(Fresh::New(runs, None))
}

/// A pipeline's job as a check run.
pub(crate) fn job(j: &Value, sha: &str) -> CheckRun {
    let status = j["status"].as_str().unwrap_or_default();
    let finished = matches!(status, "success" | "failed" | "canceled" | "skipped");
    CheckRun {
        id: j["id"].as_u64().unwrap_or_default(),
        name: j["name"].as_str().unwrap_or_default().to_owned(),
        status: if finished { "completed".into() } else { status.to_owned() },
        conclusion: match status {
            "success" => Some("success".into()),
            "failed" => Some("failure".into()),
            "canceled" => Some("cancelled".into()),
            "skipped" => Some("skipped".into()),
            _ => None,
        },
        head_sha: sha.to_owned(),
        output: CheckOutput::default(),
        app: Some(App { slug: "gitlab-ci".into() }),
    }
}

/// A job's trace (its log).
pub(crate) async fn job_log(c: &GitHub, id: u64) -> String {
    match call(c, Method::GET, &format!("/jobs/{id}/trace"), None).await {
        Ok((s, Value::String(text))) if s.is_success() => text,
        Ok((s, other)) if s.is_success() => other.to_string(),
        _ => String::new(),
    }
}

/// An issue in GitHub's shape (number, title, body, labels, state).
pub(crate) fn issue(v: &Value) -> Value {
    let labels: Vec<Value> = v["labels"]
        .as_array()
        .map(|l| l.iter().map(|x| json!({ "name": x.as_str().or(x["title"].as_str()).unwrap_or_default() })).collect())
        .unwrap_or_default();
    json!({
        "number": v["iid"], "title": v["title"], "body": v["description"], "labels": labels,
        "state": if v["state"] == "opened" { "open" } else { "closed" },
    })
}

pub(crate) async fn read_issue(c: &GitHub, number: u64) -> Result<Value, Error> {
    let (status, value) = call(c, Method::GET, &format!("/issues/{number}"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "could not read the issue"));
    }
    Ok(issue(&value))
}

pub(crate) async fn issue_notes(c: &GitHub, number: u64) -> Result<Vec<Value>, Error> {
    let (status, value) = call(c, Method::GET, &format!("/issues/{number}/notes?sort=asc&per_page=100"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "could not read the issue's notes"));
    }
    Ok(value
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|n| n["system"] != true)
                .map(|n| json!({ "id": n["id"], "body": n["body"], "user": { "login": n["author"]["username"] } }))
                .collect()
        })
        .unwrap_or_default())
}

pub(crate) async fn note(c: &GitHub, number: u64, body: &str) -> Result<(), Error> {
    let (status, value) =
        call(c, Method::POST, &format!("/issues/{number}/notes"), Some(json!({ "body": body }))).await?;
    if status != StatusCode::CREATED {
        return Err(refused(status, &value, "could not add a note to the issue"));
    }
    Ok(())
}

pub(crate) async fn eyes(c: &GitHub, what: &str) -> Result<(), Error> {
    // Only issues take an award here (a note's award needs its issue too).
    let Some(number) = what.strip_prefix("issues/").filter(|n| n.chars().all(|c| c.is_ascii_digit())) else {
        return Ok(());
    };
    let (status, value) =
        call(c, Method::POST, &format!("/issues/{number}/award_emoji"), Some(json!({ "name": "eyes" }))).await?;
    if !status.is_success() {
        return Err(refused(status, &value, "could not award an emoji"));
    }
    Ok(())
}

pub(crate) async fn labeled(c: &GitHub, label: &str) -> Result<Fresh<Vec<Value>>, Error> {
    let (status, value) =
        call(c, Method::GET, &format!("/issues?labels={label}&state=opened&per_page=50"), None).await?;
    if status != StatusCode::OK {
        return Err(refused(status, &value, "could not list the labelled issues"));
    }
    Ok(Fresh::New(value.as_array().map(|a| a.iter().map(issue).collect()).unwrap_or_default(), None))
}

/// Whether GitLab user `user` may push to the project (Developer or above).
pub(crate) async fn may_push(c: &GitHub, user: u64) -> bool {
    match call(c, Method::GET, &format!("/members/all/{user}"), None).await {
        Ok((s, v)) if s.is_success() => v["access_level"].as_u64().unwrap_or(0) >= 30,
        _ => false,
    }
}
