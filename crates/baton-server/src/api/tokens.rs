//! `/api/tokens`: tokens for machines (launchers), made, listed and revoked by
//! the admin. A token is shown once, when it is made; only its hash is kept. A
//! revoked token is refused at its next request.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::api::{CreateToken, NewToken, TokenInfo};
use baton_core::model::TokenKind;

use crate::api::http::ApiJson;
use crate::auth::{Auth, new_token, token_record};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::transact;

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<NewToken>), AppError> {
    caller.require_admin()?;
    if req.kind != TokenKind::Launcher {
        return Err(AppError::invalid(format!(
            "only launcher tokens are made here (not {}); sessions get theirs from Baton",
            req.kind.as_str()
        )));
    }
    if let Some(name) = &req.name
        && (name.trim().is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control))
    {
        return Err(AppError::invalid("`name` must be 1 to 128 characters without control characters"));
    }
    let token = new_token(TokenKind::Launcher);
    let mut record = token_record(&token, TokenKind::Launcher, None);
    let id = format!("tok-{}", &record.hash[..12]);
    record.id = Some(id.clone());
    record.name = req.name;
    let stored = record.clone();
    transact(&state, move |tx, _fx| tx.put_token(&stored).map_err(AppError::from)).await?;
    state.tokens.insert(record);
    Ok((StatusCode::CREATED, Json(NewToken { id, token })))
}

pub(super) async fn list(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
) -> Result<Json<Vec<TokenInfo>>, AppError> {
    caller.require_admin()?;
    let tokens = state.store.read(|r| r.tokens(TokenKind::Launcher)).await?;
    Ok(Json(
        tokens
            .into_iter()
            .map(|t| TokenInfo {
                id: t.id.unwrap_or_else(|| format!("tok-{}", &t.hash[..12])),
                kind: t.kind,
                name: t.name,
                launcher: t.subject,
                created_at: t.created_at,
            })
            .collect(),
    ))
}

pub(super) async fn revoke(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    let id2 = id.clone();
    let hash = transact(&state, move |tx, _fx| {
        let found = tx.token_by_id(&id2)?.or_else(|| {
            // Tokens made before ids existed are named by their hash's prefix.
            let prefix = id2.strip_prefix("tok-")?;
            tx.tokens(TokenKind::Launcher).ok()?.into_iter().find(|t| t.id.is_none() && t.hash.starts_with(prefix))
        });
        let token = found.ok_or_else(|| AppError::not_found("token", &id2))?;
        tx.delete_token(&token.hash)?;
        Ok::<_, AppError>(token.hash)
    })
    .await?;
    state.tokens.forget_hash(&hash);
    tracing::info!(token = %id, "token revoked");
    Ok(StatusCode::NO_CONTENT)
}
