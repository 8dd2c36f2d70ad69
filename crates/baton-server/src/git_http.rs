//! `/git/{project}/…`: each project's repository over git's smart HTTP protocol,
//! behind launcher tokens, so a launcher needs nothing of the coordinator's host
//! but a URL and a token.
//!
//! The protocol is git's own: `git upload-pack` and `git receive-pack` run with
//! `--stateless-rpc` (and `--advertise-refs` for `info/refs`), their input and
//! output streamed. A launcher token may fetch anything. It may push only the
//! refs of runs it holds (claimed or running): the task's branch
//! (`refs/heads/…`, fast-forward only) and its checkpoint
//! (`refs/baton/checkpoints/<task>`), never a deletion. Two walls enforce it:
//! the push's commands are read before `receive-pack` starts (a refused ref
//! answers 403 and nothing runs), and Baton's own `pre-receive` hook, in a hooks
//! directory Baton owns, checks every ref again with the objects at hand
//! (fast-forwards) before anything moves.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_core::api::ErrorCode;
use baton_core::ids::LauncherId;
use baton_core::model::{Project, TokenKind};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::resolve;
use baton_git::pktline::parse_commands;

/// The most a request body (a push's pack) may be.
const MAX_BODY: usize = 2 << 30;

/// The most of a push read before its commands must have ended.
const MAX_COMMANDS: usize = 1 << 20;

/// Baton's `pre-receive` hook: the second wall (see the module's documentation).
pub const PRE_RECEIVE: &str = r#"#!/bin/sh
# Baton's wall for pushes from launchers: only the refs of runs the pushing
# launcher holds, fast-forward only on branches, never a deletion.
while read old new ref; do
  case " $BATON_ALLOWED_REFS " in
    *" $ref "*) ;;
    *) echo "baton: $ref is not a ref of a run this launcher holds" >&2; exit 1 ;;
  esac
  case $new in
    *[!0]*) ;;
    *) echo "baton: $ref cannot be deleted" >&2; exit 1 ;;
  esac
  case $ref in
    refs/heads/*)
      case $old in
        *[!0]*)
          if ! git merge-base --is-ancestor "$old" "$new"; then
            echo "baton: $ref: not a fast-forward (a task's branch only moves forward)" >&2; exit 1
          fi ;;
      esac ;;
  esac
done
"#;

/// Writes Baton's hooks into `dir` (made if needed).
pub fn install_hooks(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    let path = dir.join("pre-receive");
    std::fs::write(&path, PRE_RECEIVE)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
}

/// The routes, to nest at the root.
pub(crate) fn routes(hooks: Option<PathBuf>) -> Router<Arc<AppState>> {
    Router::new()
        .route("/git/{project}/info/refs", get(info_refs))
        .route("/git/{project}/git-upload-pack", post(upload_pack))
        .route("/git/{project}/git-receive-pack", post(receive_pack))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::Extension(GitHooks(hooks)))
}

/// Baton's own git hooks (`pre-receive`), run by pushes, when it has them.
#[derive(Debug, Clone)]
struct GitHooks(Option<PathBuf>);

/// The two services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "upload-pack",
            Service::ReceivePack => "receive-pack",
        }
    }
}

/// `?service=git-upload-pack`.
#[derive(serde::Deserialize)]
struct InfoQuery {
    service: Option<String>,
}

/// The launcher a request comes from: git speaks only with launcher tokens.
fn launcher_of(caller: &Caller) -> Result<Option<LauncherId>, AppError> {
    if caller.kind != TokenKind::Launcher {
        return Err(AppError::forbidden("git access needs a launcher token (`baton token create --launcher`)"));
    }
    Ok(caller.subject.as_deref().and_then(|s| LauncherId::parse(s).ok()))
}

async fn project_of(state: &Arc<AppState>, name: &str) -> Result<Project, AppError> {
    let project = project_named(state, name).await?;
    baton_domain::projects::require_repository(&project)?;
    Ok(project)
}

async fn project_named(state: &Arc<AppState>, name: &str) -> Result<Project, AppError> {
    let name = name.strip_suffix(".git").unwrap_or(name).to_owned();
    Ok(state.store.read(move |r| resolve::project_ref(r, &name)).await?)
}

/// The protocol version the client asks for (`Git-Protocol: version=2`), when
/// it is well formed.
fn git_protocol(headers: &HeaderMap) -> Option<String> {
    let value = headers.get("git-protocol")?.to_str().ok()?;
    let ok = !value.is_empty()
        && value.len() <= 256
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"=:._-".contains(&b));
    ok.then(|| value.to_owned())
}

/// `git -c … <service> --stateless-rpc` for the repository at `repo` (arguments
/// such as `--advertise-refs` go before the path: add them, then the path).
fn git(service: Service, config: &[String], protocol: Option<&str>) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new("git");
    for c in config {
        cmd.arg("-c").arg(c);
    }
    cmd.arg(service.name())
        .arg("--stateless-rpc")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(p) = protocol {
        cmd.env("GIT_PROTOCOL", p);
    }
    cmd
}

/// Configuration of `upload-pack`: a fetch may ask for any commit a ref reaches.
fn upload_config() -> Vec<String> {
    vec!["uploadpack.allowReachableSHA1InWant=true".into()]
}

async fn info_refs(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    UrlPath(project): UrlPath<String>,
    Query(q): Query<InfoQuery>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    launcher_of(&caller)?;
    let service = match q.service.as_deref() {
        Some("git-upload-pack") => Service::UploadPack,
        Some("git-receive-pack") => Service::ReceivePack,
        _ => {
            return Err(AppError::invalid(
                "only git's smart HTTP protocol is served: ?service=git-upload-pack or git-receive-pack",
            ));
        }
    };
    let project = project_of(&state, &project).await?;
    let protocol = git_protocol(&headers);
    let out = git(service, &upload_config(), protocol.as_deref())
        .arg("--advertise-refs")
        .arg(&project.path)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(AppError::internal)?;
    if !out.status.success() {
        return Err(git_failed(service, &out.stderr));
    }
    let mut body = Vec::new();
    // Protocol version 2 has no preamble (as `git http-backend` does it).
    if !protocol.as_deref().is_some_and(|p| p.contains("version=2")) {
        let line = format!("# service=git-{}\n", service.name());
        body.extend_from_slice(format!("{:04x}{line}0000", line.len() + 4).as_bytes());
    }
    body.extend_from_slice(&out.stdout);
    Ok(git_response(&format!("application/x-git-{}-advertisement", service.name()), Body::from(body)))
}

fn git_failed(service: Service, stderr: &[u8]) -> AppError {
    let text = String::from_utf8_lossy(stderr).trim().to_owned();
    tracing::warn!(service = service.name(), stderr = %text, "git failed");
    AppError::new(ErrorCode::Internal, format!("git {} failed", service.name()))
}

fn git_response(content_type: &str, body: Body) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, v);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The request body as a stream of chunks, gunzipped when git sent it gzipped
/// (it does for bodies over about 1 KB; a stream that is not gunzipped reads as
/// "bad line length character").
async fn body_chunks(
    req: Request,
) -> Result<std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>, AppError> {
    let gzip = req.headers().get(header::CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    let stream = req.into_body().into_data_stream().map(|c| c.map_err(std::io::Error::other));
    if !gzip {
        return Ok(Box::pin(stream));
    }
    let compressed = axum::body::to_bytes(Body::from_stream(stream), MAX_BODY)
        .await
        .map_err(|e| AppError::new(ErrorCode::PayloadTooLarge, format!("could not read the request: {e}")))?;
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&compressed[..])
        .take(MAX_BODY as u64)
        .read_to_end(&mut plain)
        .map_err(|e| AppError::new(ErrorCode::InvalidBody, format!("the gzipped request does not inflate: {e}")))?;
    Ok(Box::pin(futures_util::stream::once(async move { Ok(Bytes::from(plain)) })))
}

/// Runs a service with `head` (what was read already) and then the rest of the
/// request as its input, its output streamed back.
async fn serve(
    service: Service,
    mut cmd: tokio::process::Command,
    head: Vec<u8>,
    mut rest: std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send>>,
) -> Result<Response, AppError> {
    let mut child = cmd.spawn().map_err(AppError::internal)?;
    let mut stdin = child.stdin.take().ok_or_else(|| AppError::internal(std::io::Error::other("no stdin")))?;
    let stdout = child.stdout.take().ok_or_else(|| AppError::internal(std::io::Error::other("no stdout")))?;
    let stderr = child.stderr.take();
    tokio::spawn(async move {
        if stdin.write_all(&head).await.is_err() {
            return;
        }
        while let Some(chunk) = rest.next().await {
            let Ok(chunk) = chunk else { return };
            if stdin.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    if let Some(mut stderr) = stderr {
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text).await;
            if !text.trim().is_empty() {
                tracing::debug!(service = service.name(), stderr = %text.trim(), "git said");
            }
        });
    }
    // The child goes with the stream: a client that disconnects ends it.
    let stream = tokio_util::io::ReaderStream::new(stdout).chain(futures_util::stream::once(async move {
        let _ = child.wait().await;
        Ok::<Bytes, std::io::Error>(Bytes::new())
    }));
    Ok(git_response(&format!("application/x-git-{}-result", service.name()), Body::from_stream(stream)))
}

async fn upload_pack(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    UrlPath(project): UrlPath<String>,
    req: Request,
) -> Result<Response, AppError> {
    launcher_of(&caller)?;
    let project = project_of(&state, &project).await?;
    let protocol = git_protocol(req.headers());
    let mut cmd = git(Service::UploadPack, &upload_config(), protocol.as_deref());
    cmd.arg(&project.path);
    state.metrics.git_fetches.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let body = body_chunks(req).await?;
    serve(Service::UploadPack, cmd, Vec::new(), body).await
}

/// The refs a launcher may push: those of the runs it holds.
async fn allowed_refs(state: &Arc<AppState>, launcher: LauncherId) -> Result<Vec<String>, AppError> {
    state
        .store
        .read(move |r| {
            let mut refs = Vec::new();
            for run in r.active_runs_of_launcher(&launcher)? {
                let Some(task) = r.task(&run.task_id)? else { continue };
                if let Some(branch) = &task.git.branch {
                    refs.push(format!("refs/heads/{branch}"));
                }
                refs.push(format!("refs/baton/checkpoints/{}", task.id));
            }
            Ok::<_, AppError>(refs)
        })
        .await
}

async fn receive_pack(
    State(state): State<Arc<AppState>>,
    axum::Extension(GitHooks(hooks)): axum::Extension<GitHooks>,
    Auth(caller): Auth,
    UrlPath(project): UrlPath<String>,
    req: Request,
) -> Result<Response, AppError> {
    let launcher = launcher_of(&caller)?.ok_or_else(|| {
        AppError::forbidden("this launcher token has not registered a launcher yet; only a launcher's runs may push")
    })?;
    let project = project_of(&state, &project).await?;
    let protocol = git_protocol(req.headers());
    let mut body = body_chunks(req).await?;
    let mut head = Vec::new();
    let updates = loop {
        if let Some((updates, _)) = parse_commands(&head).map_err(|e| AppError::invalid(format!("a push with {e}")))? {
            break updates;
        }
        if head.len() > MAX_COMMANDS {
            return Err(AppError::invalid("a push whose commands do not end"));
        }
        match body.next().await {
            Some(Ok(chunk)) => head.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(AppError::invalid(format!("could not read the push: {e}"))),
            None => return Err(AppError::invalid("a push that ends before its commands do")),
        }
    };
    let allowed = allowed_refs(&state, launcher.clone()).await?;
    for update in &updates {
        if !allowed.contains(&update.name) {
            tracing::warn!(launcher = %launcher, refname = %update.name, "refused a push outside the launcher's runs");
            return Err(AppError::forbidden(format!(
                "{} is not a ref of a run launcher {launcher} holds; a launcher may push only its runs' branches and checkpoints",
                update.name
            ))
            .with_details(serde_json::json!({ "ref": update.name, "allowed": allowed })));
        }
        if update.new.bytes().all(|b| b == b'0') {
            return Err(AppError::forbidden(format!("{} cannot be deleted", update.name)));
        }
    }
    let hooks = match &hooks {
        Some(dir) => format!("core.hooksPath={}", dir.display()),
        None => "core.hooksPath=/dev/null".to_owned(),
    };
    let config = ["receive.denyDeletes=true".to_owned(), "receive.fsckObjects=true".to_owned(), hooks];
    let mut cmd = git(Service::ReceivePack, &config, protocol.as_deref());
    cmd.arg(&project.path).env("BATON_ALLOWED_REFS", allowed.join(" "));
    state.metrics.git_pushes.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    serve(Service::ReceivePack, cmd, head, body).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(text: &str) -> String {
        format!("{:04x}{text}", text.len() + 4)
    }

    #[test]
    fn a_push_commands_are_read_before_its_pack() {
        let (z, a) = ("0".repeat(40), "a".repeat(40));
        let body = format!(
            "{}{}0000PACK...",
            pkt(&format!("{z} {a} refs/heads/baton/x\0report-status side-band-64k\n")),
            pkt(&format!("{a} {a} refs/baton/checkpoints/t-1\n"))
        );
        let (updates, used) = parse_commands(body.as_bytes()).unwrap().unwrap();
        assert_eq!(updates.len(), 2);
        assert_eq!(updates[0].name, "refs/heads/baton/x");
        assert_eq!(updates[1].old, a);
        assert_eq!(&body[used..], "PACK...");
        assert!(parse_commands(&body.as_bytes()[..10]).unwrap().is_none(), "incomplete");
        assert!(parse_commands(b"zzzz").is_err());
        assert!(parse_commands(pkt("shallow abc\n").as_bytes()).is_err());
        assert!(parse_commands(pkt("nonsense\n").as_bytes()).is_err());
    }
}
