//! The HTTP routes. Each resource has its own module of thin handlers.

mod agents;
mod dashboard;
mod docs;
pub(crate) mod http;
mod launchers;
mod meta;
mod plans;
mod projects;
mod runs;
mod sessions;
mod stream;
mod tasks;
mod tokens;
mod webhooks;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::middleware;
use axum::routing::{get, post};
use baton_core::api::ErrorCode;

use crate::auth;
use crate::error::AppError;
use crate::state::AppState;

/// The largest event batch a launcher may send, in bytes.
const MAX_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The largest session state (an agent CLI's conversation files, base64) a
/// launcher may save, in bytes.
const MAX_STATE_BYTES: usize = 96 * 1024 * 1024;

/// The coordinator's router, over `state`.
pub fn app(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/projects", get(projects::list).post(projects::create))
        .route("/projects/{id}", get(projects::show))
        .route("/projects/{id}/radar", get(projects::radar))
        .route("/projects/{id}/reload", post(projects::reload))
        .route("/pools", get(projects::pools))
        .route("/costs", get(projects::costs))
        .route("/hooks", post(projects::hook))
        .route("/login-links", post(dashboard::login_link))
        .route("/docs", get(docs::list).post(docs::push).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)))
        .route("/docs/{*name}", get(docs::show).delete(docs::delete))
        .route("/projects/{id}/orchestrator", get(projects::lead))
        .route("/projects/{id}/heartbeat", post(projects::heartbeat))
        .route("/projects/{id}/heartbeats", get(projects::heartbeats))
        .route("/plans", get(plans::list).post(plans::create).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)))
        .route("/plans/{id}", get(plans::show))
        .route("/orchestrate/task", post(plans::orchestrate))
        .route("/orchestrate/task/{id}", get(plans::orchestration))
        .route("/orchestrate/tasks", get(plans::orchestrations))
        .route("/orchestrate/agents", get(plans::templates))
        .route("/agents", get(agents::list).post(agents::create))
        .route("/agents/{name}", get(agents::show).put(agents::replace).delete(agents::delete))
        .route("/tasks", get(tasks::list).post(tasks::create))
        .route("/tasks/{id}", get(tasks::show))
        .route("/tasks/{id}/events", get(tasks::events))
        .route("/tasks/{id}/stop", post(tasks::stop))
        .route("/tasks/{id}/resume", post(tasks::resume))
        .route("/tasks/{id}/retry", post(tasks::retry))
        .route("/tasks/{id}/approve", post(tasks::approve))
        .route("/tasks/{id}/diff", get(tasks::diff))
        .route("/tasks/{id}/wait", get(tasks::wait))
        .route("/tasks/{id}/merge", post(tasks::merge))
        .route("/tasks/{id}/pr", post(tasks::pr))
        .route("/forge/github", post(tasks::github_webhook))
        .route("/tasks/{id}/clean", post(tasks::clean))
        .route("/clean", post(tasks::clean_all))
        .route("/sessions", get(sessions::list))
        .route("/sessions/{id}", get(sessions::show))
        .route("/sessions/{id}/events", get(sessions::events))
        .route(
            "/sessions/{id}/state",
            get(sessions::get_state).put(sessions::put_state).layer(DefaultBodyLimit::max(MAX_STATE_BYTES)),
        )
        .route("/runs/{id}", get(runs::show))
        .route("/runs/{id}/started", post(runs::started))
        .route("/runs/{id}/checking", post(runs::checking))
        .route("/runs/{id}/events", post(runs::events).layer(DefaultBodyLimit::max(MAX_BATCH_BYTES)))
        .route("/runs/{id}/finished", post(runs::finished))
        .route("/launchers", get(launchers::list))
        .route("/launchers/register", post(launchers::register))
        .route("/launchers/{id}/poll", post(launchers::poll))
        .route("/launchers/{id}/attach", post(launchers::attach))
        .route("/launchers/{id}/heartbeat", post(launchers::heartbeat))
        .route("/launchers/{id}/orders/done", post(launchers::order_done))
        .route("/launchers/{id}/drain", post(launchers::drain))
        .route("/launchers/{id}/undrain", post(launchers::undrain))
        .route("/runs/{id}/checkpoint", post(runs::checkpoint))
        .route("/webhooks", get(webhooks::list).post(webhooks::create))
        .route("/webhooks/{id}", get(webhooks::show).delete(webhooks::delete))
        .route("/webhooks/{id}/deliveries", get(webhooks::deliveries))
        .route("/deliveries/{id}/redeliver", post(webhooks::redeliver))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}", axum::routing::delete(tokens::revoke))
        .route("/stream", get(stream::stream))
        .route("/openapi.json", get(meta::openapi))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let max_body = state.config.max_body_bytes;
    // MCP over streamable HTTP: the same tools as `baton mcp`, each call made with
    // the caller's own token against this coordinator's API.
    let coordinator = baton_client::Client::new(&state.config.public_url, None)
        .unwrap_or_else(|_| baton_client::Client::new("http://127.0.0.1:1", None).expect("a valid URL"));
    let mcp = Router::new()
        .nest_service("/mcp", baton_mcp::http_service(coordinator))
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_token));
    Router::new()
        .nest("/api", api)
        .merge(mcp)
        .merge(crate::git_http::routes())
        .route("/", get(dashboard::index))
        .route("/assets/app.js", get(dashboard::app_js))
        .route("/assets/app.css", get(dashboard::app_css))
        .route("/login", get(dashboard::login))
        .route("/act/{task}/{action}/{key}", get(crate::webhooks::actions::confirm).post(crate::webhooks::actions::act))
        .route("/healthz", get(meta::healthz))
        .route("/metrics", get(meta::metrics))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(state.clone(), auth::guard_origin))
        .with_state(state)
}

async fn not_found() -> AppError {
    AppError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> AppError {
    AppError::new(ErrorCode::MethodNotAllowed, "this method is not allowed here")
}

/// Query-string limits shared by list endpoints.
fn clamp_limit(limit: Option<u32>, default: u32, max: u32) -> u32 {
    limit.unwrap_or(default).clamp(1, max)
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Method, Request};
    use tower::ServiceExt;

    use super::*;
    use crate::state::ServerConfig;

    #[tokio::test]
    async fn every_documented_path_is_routed() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            baton_store::sqlite::open(&baton_store::sqlite::SqliteOptions::new(dir.path().join("b.db"))).unwrap();
        let state = Arc::new(AppState::new(store, ServerConfig::new("http://127.0.0.1:1")));
        let router = app(state);
        let spec: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        for (path, ops) in spec["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                let uri = path.replace("{id}", "x").replace("{name}", "x");
                let req = Request::builder()
                    .method(Method::from_bytes(method.to_uppercase().as_bytes()).unwrap())
                    .uri(&uri)
                    .header("host", "127.0.0.1")
                    .body(Body::empty())
                    .unwrap();
                let resp = router.clone().oneshot(req).await.unwrap();
                let status = resp.status().as_u16();
                let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
                let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let unrouted = status == 405 || json["error"]["message"] == "no such route";
                assert!(!unrouted, "{method} {path} is documented but not routed");
            }
        }
    }
}
