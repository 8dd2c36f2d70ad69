//! The fake forge's HTTP side. Every request is recorded, then (except the
//! job log blobs under `/_fake/logs/`) checked for the token and the
//! repository, then routed by method and path to a handler that answers as
//! GitHub's REST API does, errors included. GETs carry an `ETag`, and a
//! matching `If-None-Match` is answered 304.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method as HttpMethod, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::ForgeRequest;
use super::git::{self, MergeError, Method};
use super::state::{Comment, Inner, Pull, Review, fake_sha, hex, now, random_sha};

/// The state, as the server and the test share it.
pub(super) type Shared = Arc<Mutex<Inner>>;

/// The documentation GitHub points to from most errors.
const DOCS: &str = "https://docs.github.com/rest";

/// The documentation of creating a pull request.
const CREATE_DOCS: &str = "https://docs.github.com/rest/pulls/pulls#create-a-pull-request";

/// The documentation of merging a pull request.
const MERGE_DOCS: &str = "https://docs.github.com/rest/pulls/pulls#merge-a-pull-request";

/// The server's routes: one fallback that routes by itself, so that every
/// answer, a malformed request's included, has GitHub's shape.
pub(super) fn app(shared: Shared) -> Router {
    Router::new().fallback(serve).with_state(shared)
}

/// Locks the state (a test that panicked holding it does not poison it).
pub(super) fn lock(shared: &Shared) -> MutexGuard<'_, Inner> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Records a request and answers it.
async fn serve(
    State(shared): State<Shared>,
    method: HttpMethod,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let request = ForgeRequest { method: method.to_string(), path: uri.to_string(), headers, body: body.to_vec() };
    let mut inner = lock(&shared);
    inner.requests.push(request.clone());
    inner.refresh();
    route(&mut inner, &request)
}

/// Checks a request's token and repository, and hands it to its handler.
fn route(inner: &mut Inner, r: &ForgeRequest) -> Response {
    let (path, query) = r.path.split_once('?').unwrap_or((&r.path, ""));
    let segments: Vec<String> = path.trim_matches('/').split('/').map(|s| decode(s, false)).collect();
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    if let ["_fake", "logs", id] = &segments[..] {
        return job_log(inner, id);
    }
    if !authorized(inner, r) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials", DOCS);
    }
    let ["repos", owner, name, rest @ ..] = &segments[..] else { return not_found() };
    if !owner.eq_ignore_ascii_case(&inner.owner) || !name.eq_ignore_ascii_case(&inner.name) {
        return not_found();
    }
    let query = parse_query(query);
    match (r.method.as_str(), rest) {
        ("GET", []) => ok(r, &inner.repository_json()),
        ("POST", ["pulls"]) => create_pull(inner, r),
        ("GET", ["pulls"]) => list_pulls(inner, r, &query),
        ("GET", ["pulls", n]) => with_pull(inner, n, |inner, p| ok(r, &inner.pull_json(p))),
        ("PUT", ["pulls", n, "merge"]) => merge(inner, r, n),
        ("GET", ["pulls", n, "reviews"]) => with_pull(inner, n, |inner, p| reviews(inner, r, p)),
        ("GET", ["pulls", n, "comments"]) => with_pull(inner, n, |inner, p| comments(inner, r, p, None)),
        ("GET", ["pulls", n, "reviews", id, "comments"]) => {
            let Some(id) = id.parse().ok() else { return not_found() };
            with_pull(inner, n, |inner, p| comments(inner, r, p, Some(id)))
        }
        ("GET", ["commits", reference @ .., "check-runs"]) if !reference.is_empty() => {
            check_runs(inner, r, &reference.join("/"), &query)
        }
        ("GET", ["actions", "jobs", id, "logs"]) => job_log_redirect(inner, id),
        ("GET", ["issues"]) => {
            let label = query.get("labels").cloned().unwrap_or_default();
            let list: Vec<Value> = inner
                .issues
                .iter()
                .filter(|i| {
                    i["state"] == "open"
                        && (label.is_empty()
                            || i["labels"].as_array().is_some_and(|l| l.iter().any(|x| x["name"] == label.as_str())))
                })
                .cloned()
                .collect();
            ok(r, &Value::Array(list))
        }
        ("GET", ["issues", "comments"]) => {
            let since = query.get("since").cloned().unwrap_or_default();
            let list: Vec<Value> = inner
                .comments
                .iter()
                .filter(|c| c["created_at"].as_str().unwrap_or_default() >= since.as_str())
                .cloned()
                .collect();
            ok(r, &Value::Array(list))
        }
        ("POST", ["issues", "comments", id, "reactions"]) => react(inner, r, &format!("issues/comments/{id}")),
        ("GET", ["issues", n]) => match issue_json(inner, n) {
            Some(v) => ok(r, &v),
            None => not_found(),
        },
        ("GET", ["issues", n, "comments"]) => {
            let list: Vec<Value> =
                inner.comments.iter().filter(|c| c["issue_number"].as_str() == Some(*n)).cloned().collect();
            ok(r, &Value::Array(list))
        }
        ("POST", ["issues", n, "comments"]) => {
            let Some(body) = parse_body(r) else { return problems_parsing_json() };
            if issue_json(inner, n).is_none() {
                return not_found();
            }
            let text = body["body"].as_str().unwrap_or_default().to_owned();
            let c = inner.issue_comment_json(n.parse().unwrap_or_default(), "baton-bot", "NONE", &text);
            inner.comments.push(c.clone());
            json_response(StatusCode::CREATED, &c)
        }
        ("POST", ["issues", n, "reactions"]) => react(inner, r, &format!("issues/{n}")),
        _ => not_found(),
    }
}

/// Whether the request carries the token (`Bearer TOKEN` or `token TOKEN`).
fn authorized(inner: &Inner, r: &ForgeRequest) -> bool {
    let Some((scheme, token)) = r.header("authorization").trim().split_once(' ') else { return false };
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("token")) && token.trim() == inner.token
}

/// Answers with `answer` for pull request number `n`, or 404.
fn with_pull(inner: &Inner, n: &str, answer: impl FnOnce(&Inner, &Pull) -> Response) -> Response {
    match n.parse().ok().and_then(|n| inner.pull(n)) {
        Some(pull) => answer(inner, pull),
        None => not_found(),
    }
}

/// `POST /repos/{owner}/{repo}/pulls`: opens a pull request.
fn create_pull(inner: &mut Inner, r: &ForgeRequest) -> Response {
    let Some(body) = parse_body(r) else { return problems_parsing_json() };
    let field = |name: &str| body.get(name).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    let missing: Vec<Value> = ["title", "head", "base"]
        .into_iter()
        .filter(|name| field(name).is_none())
        .map(|name| json!({ "resource": "PullRequest", "field": name, "code": "missing_field" }))
        .collect();
    let (Some(title), Some(head), Some(base)) = (field("title"), field("head"), field("base")) else {
        return validation_failed(missing, CREATE_DOCS);
    };
    // `head` may name its owner, as `owner:branch`.
    let owner_prefix = format!("{}:", inner.owner);
    let head = head.strip_prefix(&owner_prefix).map_or(head.clone(), str::to_owned);
    if inner.pulls.iter().any(|p| p.is_open() && p.head == head && p.base == base) {
        let message = format!("A pull request already exists for {}:{head}.", inner.owner);
        return validation_failed(vec![custom_error(&message)], CREATE_DOCS);
    }
    let (head_sha, base_sha) = match pull_shas(inner, &head, &base) {
        Ok(shas) => shas,
        Err(errors) => return validation_failed(errors, CREATE_DOCS),
    };
    let at = now();
    let pull = Pull {
        number: inner.pulls.len() as u64 + 1,
        id: inner.id(),
        title,
        body: field("body"),
        head,
        base,
        draft: body.get("draft").and_then(Value::as_bool).unwrap_or(false),
        head_sha,
        base_sha,
        created_at: at.clone(),
        updated_at: at,
        closed_at: None,
        merged_at: None,
        merge_commit_sha: None,
    };
    let answer = json_response(StatusCode::CREATED, &inner.pull_json(&pull));
    inner.pulls.push(pull);
    answer
}

/// The head and base commits of a new pull request, or the validation errors
/// GitHub gives when the branches are missing or have nothing to merge.
fn pull_shas(inner: &Inner, head: &str, base: &str) -> Result<(String, String), Vec<Value>> {
    let invalid = |field: &str| json!({ "resource": "PullRequest", "field": field, "code": "invalid" });
    let Some(head_sha) = inner.branch_sha(head) else { return Err(vec![invalid("head")]) };
    let Some(base_sha) = inner.branch_sha(base) else { return Err(vec![invalid("base")]) };
    if let Some(bare) = &inner.bare
        && !git::has_commits_between(bare, &base_sha, &head_sha)
    {
        return Err(vec![custom_error(&format!("No commits between {base} and {head}"))]);
    }
    Ok((head_sha, base_sha))
}

/// `GET /repos/{owner}/{repo}/pulls`: the pull requests, newest first, filtered
/// by `state` (default `open`), `head` (`owner:branch`; ignored without the
/// owner, as GitHub does) and `base`.
fn list_pulls(inner: &Inner, r: &ForgeRequest, query: &HashMap<String, String>) -> Response {
    let state = query.get("state").map_or("open", String::as_str);
    let head = query.get("head").and_then(|h| h.split_once(':'));
    let base = query.get("base");
    let pulls: Vec<Value> = inner
        .pulls
        .iter()
        .rev()
        .filter(|p| match state {
            "all" => true,
            "closed" => !p.is_open(),
            _ => p.is_open(),
        })
        .filter(|p| head.is_none_or(|(owner, branch)| owner.eq_ignore_ascii_case(&inner.owner) && p.head == branch))
        .filter(|p| base.is_none_or(|b| p.base == *b))
        .map(|p| inner.pull_json(p))
        .collect();
    ok(r, &Value::Array(pulls))
}

/// `PUT /repos/{owner}/{repo}/pulls/{number}/merge`: merges a pull request,
/// in the bare repository when there is one.
fn merge(inner: &mut Inner, r: &ForgeRequest, n: &str) -> Response {
    let body = if r.body.is_empty() { Some(json!({})) } else { parse_body(r) };
    let Some(body) = body else { return problems_parsing_json() };
    let method = body.get("merge_method").and_then(Value::as_str).unwrap_or("merge");
    let Some(method) = Method::parse(method) else {
        let error = json!({ "resource": "PullRequest", "field": "merge_method", "code": "invalid" });
        return validation_failed(vec![error], MERGE_DOCS);
    };
    let Some(pull) = n.parse().ok().and_then(|n| inner.pull(n)).cloned() else { return not_found() };
    if !pull.is_open() {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Pull Request is not mergeable", MERGE_DOCS);
    }
    if pull.draft {
        return error(StatusCode::METHOD_NOT_ALLOWED, "Pull Request is still a draft", MERGE_DOCS);
    }
    if inner.protected.contains(&pull.base) {
        let message = "Repository rule violations found\n\n\
                       Changes must be made through a pull request with 1 approving review.";
        return error(StatusCode::METHOD_NOT_ALLOWED, message, MERGE_DOCS);
    }
    if body.get("sha").and_then(Value::as_str).is_some_and(|sha| sha != pull.head_sha) {
        return error(StatusCode::CONFLICT, "Head branch was modified. Review and try the merge again.", MERGE_DOCS);
    }
    let message = merge_message(inner, &pull, method, &body);
    let sha = match &inner.bare {
        None => random_sha(),
        Some(bare) => match git::merge(bare, &pull.base, &pull.base_sha, &pull.head_sha, method, &message) {
            Ok(sha) => sha,
            Err(MergeError::Conflict) => {
                return error(StatusCode::METHOD_NOT_ALLOWED, "Pull Request is not mergeable", MERGE_DOCS);
            }
            Err(MergeError::Failed) => {
                return error(
                    StatusCode::CONFLICT,
                    "Base branch was modified. Review and try the merge again.",
                    MERGE_DOCS,
                );
            }
        },
    };
    inner.mark_merged(pull.number, &sha);
    json_response(StatusCode::OK, &json!({ "sha": sha, "merged": true, "message": "Pull Request successfully merged" }))
}

/// The message of the commit a merge makes: `commit_title` (else GitHub's
/// default for the method), a blank line and `commit_message` (else the pull
/// request's title for a merge commit, its description for a squash).
fn merge_message(inner: &Inner, pull: &Pull, method: Method, body: &Value) -> String {
    let given = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_owned);
    let title = given("commit_title").unwrap_or_else(|| match method {
        Method::Squash => format!("{} (#{})", pull.title, pull.number),
        _ => format!("Merge pull request #{} from {}/{}", pull.number, inner.owner, pull.head),
    });
    let message = given("commit_message").unwrap_or_else(|| match method {
        Method::Squash => pull.body.clone().unwrap_or_default(),
        _ => pull.title.clone(),
    });
    if message.is_empty() { title } else { format!("{title}\n\n{message}") }
}

/// `GET /repos/{owner}/{repo}/pulls/{number}/reviews`.
fn reviews(inner: &Inner, r: &ForgeRequest, pull: &Pull) -> Response {
    let reviews: Vec<Value> =
        inner.reviews.iter().filter(|v| v.number == pull.number).map(|v| inner.review_json(v)).collect();
    ok(r, &Value::Array(reviews))
}

/// `GET /repos/{owner}/{repo}/pulls/{number}/comments` (all the pull
/// request's line comments) and `…/reviews/{review_id}/comments` (one
/// review's; 404 for a review not on that pull request).
fn comments(inner: &Inner, r: &ForgeRequest, pull: &Pull, review: Option<u64>) -> Response {
    let of_pull: Vec<&Review> = inner.reviews.iter().filter(|v| v.number == pull.number).collect();
    if review.is_some_and(|id| !of_pull.iter().any(|v| v.id == id)) {
        return not_found();
    }
    let comments: Vec<Value> = of_pull
        .into_iter()
        .filter(|v| review.is_none_or(|id| v.id == id))
        .flat_map(|v| v.comments.iter().map(move |c: &Comment| inner.comment_json(v, c)))
        .collect();
    ok(r, &Value::Array(comments))
}

/// `GET /repos/{owner}/{repo}/commits/{ref}/check-runs`: the check runs on a
/// commit, the latest of each name unless `filter=all`, optionally only those
/// with a `check_name` or a `status`.
fn check_runs(inner: &Inner, r: &ForgeRequest, reference: &str, query: &HashMap<String, String>) -> Response {
    let Some(sha) = resolve(inner, reference) else {
        let message = format!("No commit found for SHA: {reference}");
        return error(StatusCode::UNPROCESSABLE_ENTITY, &message, DOCS);
    };
    let on_sha: Vec<_> = inner.check_runs.iter().filter(|c| c.head_sha == sha).collect();
    let all = query.get("filter").is_some_and(|f| f == "all");
    let runs: Vec<Value> = on_sha
        .iter()
        .filter(|c| all || !on_sha.iter().any(|d| d.name == c.name && d.id > c.id))
        .filter(|c| query.get("check_name").is_none_or(|name| c.name == *name))
        .map(|c| inner.check_run_json(c))
        .filter(|c| query.get("status").is_none_or(|status| c["status"] == status.as_str()))
        .collect();
    ok(r, &json!({ "total_count": runs.len(), "check_runs": runs }))
}

/// The commit a ref names: from the bare repository when there is one, else a
/// branch's fake sha; a full sha stands for itself.
fn resolve(inner: &Inner, reference: &str) -> Option<String> {
    let is_sha = reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit());
    let found = match &inner.bare {
        Some(bare) => git::resolve(bare, reference),
        None if is_sha => None,
        None => Some(fake_sha(reference)),
    };
    found.or_else(|| is_sha.then(|| reference.to_ascii_lowercase()))
}

/// `GET /repos/{owner}/{repo}/actions/jobs/{job_id}/logs`: a redirect to the
/// log's blob, as GitHub gives.
fn job_log_redirect(inner: &Inner, id: &str) -> Response {
    if find_log(inner, id).is_none() {
        return not_found();
    }
    let mut response = empty(StatusCode::FOUND);
    let location = format!("{}/_fake/logs/{id}", inner.url);
    if let Ok(value) = location.parse() {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// `GET /_fake/logs/{id}`: the log blob (no token needed, as its URL is the secret).
fn job_log(inner: &Inner, id: &str) -> Response {
    match find_log(inner, id) {
        Some(log) => {
            let mut response = Response::new(Body::from(log.to_owned()));
            response.headers_mut().insert(header::CONTENT_TYPE, "text/plain; charset=utf-8".parse().expect("a header"));
            response
        }
        None => not_found(),
    }
}

/// The log of the job (check run) `id`.
fn find_log<'a>(inner: &'a Inner, id: &str) -> Option<&'a str> {
    let id: u64 = id.parse().ok()?;
    inner.check_runs.iter().find(|c| c.id == id).map(|c| c.log.as_str())
}

/// The request's body as JSON, if it is.
fn parse_body(r: &ForgeRequest) -> Option<Value> {
    serde_json::from_slice::<Value>(&r.body).ok().filter(Value::is_object)
}

/// A query string's parameters, decoded.
fn parse_query(query: &str) -> HashMap<String, String> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k, true), decode(v, true))
        })
        .collect()
}

/// `text` with its `%XX` escapes decoded (and `+` as a space in a query).
fn decode(text: &str, query: bool) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = bytes.get(i + 1..i + 3).and_then(|h| u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok());
        match (bytes[i], escaped) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
                continue;
            }
            (b'+', _) if query => out.push(b' '),
            (byte, _) => out.push(byte),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// 200 with `value` and its `ETag`, or 304 with none when the request's
/// `If-None-Match` already has it.
fn ok(r: &ForgeRequest, value: &Value) -> Response {
    let body = serde_json::to_vec(value).expect("JSON");
    let etag = format!("W/\"{}\"", hex(&Sha256::digest(&body)));
    let weak = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let unchanged = r.header("if-none-match").split(',').any(|tag| tag.trim() == "*" || weak(tag) == weak(&etag));
    let mut response = if unchanged { empty(StatusCode::NOT_MODIFIED) } else { json_bytes(StatusCode::OK, body) };
    if let Ok(value) = etag.parse() {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// `status` with `value` as JSON.
fn json_response(status: StatusCode, value: &Value) -> Response {
    json_bytes(status, serde_json::to_vec(value).expect("JSON"))
}

/// `status` with `body`, said to be JSON.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, "application/json; charset=utf-8".parse().expect("a header"));
    headers.insert("x-github-media-type", "github.v3; format=json".parse().expect("a header"));
    response
}

/// `status` with no body.
fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

/// An error as GitHub writes one.
fn error(status: StatusCode, message: &str, docs: &str) -> Response {
    json_response(status, &json!({ "message": message, "documentation_url": docs }))
}

/// 404, as GitHub answers for what does not exist (or may not be seen).
fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "Not Found", DOCS)
}

/// 400 for a body that is not a JSON object.
fn problems_parsing_json() -> Response {
    error(StatusCode::BAD_REQUEST, "Problems parsing JSON", DOCS)
}

/// 422 with GitHub's `errors` list.
fn validation_failed(errors: Vec<Value>, docs: &str) -> Response {
    let body = json!({ "message": "Validation Failed", "errors": errors, "documentation_url": docs });
    json_response(StatusCode::UNPROCESSABLE_ENTITY, &body)
}

/// One of GitHub's `custom` validation errors on a pull request.
fn custom_error(message: &str) -> Value {
    json!({ "resource": "PullRequest", "code": "custom", "message": message })
}

/// An issue, or a pull request seen as an issue (with `pull_request`).
fn issue_json(inner: &Inner, n: &str) -> Option<Value> {
    let number: u64 = n.parse().ok()?;
    if let Some(i) = inner.issues.iter().find(|i| i["number"] == number) {
        return Some(i.clone());
    }
    let p = inner.pull(number)?;
    let mut v = inner.pull_json(p);
    v["pull_request"] = json!({ "url": v["url"] });
    Some(v)
}

/// `POST …/reactions`: 201 with the reaction.
fn react(inner: &mut Inner, r: &ForgeRequest, what: &str) -> Response {
    let Some(body) = parse_body(r) else { return problems_parsing_json() };
    let content = body["content"].as_str().unwrap_or_default().to_owned();
    inner.reactions.push((what.to_owned(), content.clone()));
    json_response(StatusCode::CREATED, &json!({ "id": inner.id(), "content": content }))
}
