//! The dashboard: its page and assets (embedded in the binary), and the one-time
//! login link that gives a browser its cookie.

use std::sync::Arc;

use crate::api::http::ApiQuery;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use baton_core::model::TokenKind;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{Auth, COOKIE, new_token, token_record};
use crate::error::AppError;
use baton_domain::AppState;

const INDEX: &str = include_str!("../../assets/index.html");

/// The dashboard's files under `assets/`, embedded in the binary (a test checks
/// that every `.js` and `.css` file there is listed, and that every module's
/// imports are).
macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../assets/", $path)))),*]
    };
}
const ASSETS: &[(&str, &str)] = embedded![
    "app.css",
    "main.js",
    "router.js",
    "api/client.js",
    "api/enums.js",
    "lib/charts.js",
    "lib/debounce.js",
    "lib/dom.js",
    "lib/format.js",
    "lib/links.js",
    "lib/time.js",
    "state/store.js",
    "state/stream.js",
    "ui/dialog.js",
    "ui/errors.js",
    "ui/logged-out.js",
    "ui/palette.js",
    "ui/toast.js",
    "views/agent-form.js",
    "views/agents.js",
    "views/attempts.js",
    "views/board.js",
    "views/cluster.js",
    "views/completer.js",
    "views/composer.js",
    "views/costs.js",
    "views/dag.js",
    "views/docs.js",
    "views/fleet.js",
    "views/inbox.js",
    "views/not-found.js",
    "views/overview.js",
    "views/plans.js",
    "views/projects.js",
    "views/shared.js",
    "views/webhooks.js",
    "views/task/actions.js",
    "views/task/comments.js",
    "views/task/conversation.js",
    "views/task/head.js",
    "views/task/loops.js",
    "views/task/review.js",
    "views/task/timeline.js",
    "views/task/view.js",
];

/// Each asset's ETag (a hash of its bytes), in the order of `ASSETS`; made once.
fn etags() -> &'static [String] {
    static ETAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    ETAGS.get_or_init(|| ASSETS.iter().map(|(_, body)| format!("\"{:016x}\"", fnv1a(body.as_bytes()))).collect())
}

/// `GET /assets/{path}`: a module or the style sheet, with an ETag (of this
/// build's file) so a reload asks once and gets `304 Not Modified`.
pub(super) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let Some(i) = ASSETS.iter().position(|(name, _)| *name == path) else {
        return Err(AppError::not_found("dashboard file", path));
    };
    let (name, body) = ASSETS[i];
    let content_type =
        if name.ends_with(".css") { "text/css; charset=utf-8" } else { "text/javascript; charset=utf-8" };
    let etag = etags()[i].clone();
    let fresh = headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).is_some_and(|v| v == etag);
    let status = if fresh { StatusCode::NOT_MODIFIED } else { StatusCode::OK };
    let headers = [
        (header::CONTENT_TYPE, content_type.to_owned()),
        (header::CACHE_CONTROL, "no-cache".to_owned()),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff".to_owned()),
        (header::ETAG, etag),
    ];
    Ok(if fresh { (status, headers).into_response() } else { (status, headers, body).into_response() })
}

/// A stable hash of a file's bytes (FNV-1a, 64 bits): its ETag.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3))
}

/// The page, with a `modulepreload` link per module so the browser fetches them all
/// at once instead of discovering them import by import.
fn page() -> &'static str {
    static PAGE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PAGE.get_or_init(|| {
        let links: String = ASSETS
            .iter()
            .filter(|(name, _)| name.ends_with(".js"))
            .map(|(name, _)| format!("  <link rel=\"modulepreload\" href=\"/assets/{name}\">\n"))
            .collect();
        INDEX.replacen("</head>", &format!("{links}</head>"), 1)
    })
}

pub(super) async fn index() -> Response {
    let mut response = Html(page()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-cache".parse().expect("a valid header"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'"
            .parse()
            .expect("a valid header"),
    );
    headers.insert(header::X_FRAME_OPTIONS, "DENY".parse().expect("a valid header"));
    response
}

#[derive(Deserialize, schemars::JsonSchema)]
pub(super) struct LoginQuery {
    code: Option<String>,
}

/// `GET /login?code=...`: trades a one-time code for an HttpOnly cookie holding a
/// fresh dashboard token, then sends the browser to `/` (so the code leaves the
/// address bar at once).
pub(super) async fn login(State(state): State<Arc<AppState>>, ApiQuery(q): ApiQuery<LoginQuery>) -> Response {
    let fresh = match q.code.as_deref() {
        Some(code) => match state.redeem_login_code(code).await {
            Ok(fresh) => fresh,
            Err(e) => return AppError::from(e).into_response(),
        },
        None => false,
    };
    if !fresh {
        let page = "<!doctype html><meta charset=utf-8><title>Baton</title><body style=\"font-family:system-ui;margin:3em\">\
            <h1>This login link was already used or has expired.</h1>\
            <p>Run <code>baton dashboard</code> in the repository for a new one.</p>";
        return (StatusCode::UNAUTHORIZED, Html(page)).into_response();
    }
    let token = new_token(TokenKind::Admin);
    let record = token_record(&token, TokenKind::Admin, Some("dashboard".into()));
    if let Err(e) = state.store.write(move |tx| tx.put_token(&record)).await {
        return AppError::from(e).into_response();
    }
    let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age=2592000");
    (StatusCode::SEE_OTHER, [(header::SET_COOKIE, cookie), (header::LOCATION, "/".to_owned())]).into_response()
}

/// `POST /api/login-links`: a new one-time dashboard login link (admin only).
pub(super) async fn login_link(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
) -> Result<Json<Value>, AppError> {
    caller.require_admin()?;
    let url = state.login_link().await?;
    Ok(Json(json!({ "url": url, "expires_in_s": baton_domain::state::LOGIN_CODE_TTL.as_secs() })))
}

#[cfg(test)]
mod tests {
    use super::ASSETS;
    use std::collections::BTreeSet;
    use std::path::{Component, Path, PathBuf};

    fn files(dir: &Path, root: &Path, out: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "js" || e == "css") {
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/"));
            }
        }
    }

    /// A module's relative imports (`from './x.js'`, `import('./x.js')`), resolved from its own folder.
    fn imports(module: &str, text: &str) -> Vec<String> {
        let dir = Path::new(module).parent().unwrap_or(Path::new(""));
        let mut found = Vec::new();
        for quote in ['\'', '"'] {
            for (i, _) in text.match_indices(&format!("from {quote}.")) {
                let rest = &text[i + 6..];
                let spec = &rest[..rest.find(quote).unwrap()];
                found.push(spec.to_owned());
            }
            for (i, _) in text.match_indices(&format!("import({quote}.")) {
                let rest = &text[i + 8..];
                found.push(rest[..rest.find(quote).unwrap()].to_owned());
            }
        }
        found
            .into_iter()
            .map(|spec| {
                let mut path = PathBuf::new();
                for part in dir.join(&spec).components() {
                    match part {
                        Component::ParentDir => assert!(path.pop(), "{module} imports {spec}, outside the assets"),
                        Component::Normal(p) => path.push(p),
                        _ => {}
                    }
                }
                path.to_string_lossy().replace('\\', "/")
            })
            .collect()
    }

    #[test]
    fn every_module_of_the_dashboard_is_embedded_and_so_is_everything_it_imports() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets");
        let mut on_disk = BTreeSet::new();
        files(&root, &root, &mut on_disk);
        let embedded: BTreeSet<String> = ASSETS.iter().map(|(name, _)| (*name).to_owned()).collect();
        assert_eq!(embedded.len(), ASSETS.len(), "a file is listed twice");
        assert_eq!(on_disk, embedded, "crates/baton-server/assets and the ASSETS list in api/dashboard.rs differ");
        let index = super::INDEX;
        assert!(index.contains("src=\"/assets/main.js\"") && index.contains("href=\"/assets/app.css\""));
        let page = super::page();
        assert!(page.contains("<link rel=\"modulepreload\" href=\"/assets/views/task/view.js\">\n</head>"), "{page}");
        for (name, text) in ASSETS {
            for import in imports(name, text) {
                assert!(embedded.contains(&import), "{name} imports {import}, which is not embedded");
            }
        }
        assert!(imports("views/task/view.js", "import { x } from '../../lib/dom.js';") == ["lib/dom.js"]);
    }
}
