//! `/api/agents`: agent definitions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use baton_core::agent::AgentDef;
use baton_core::api::{AgentInfo, ErrorCode, ProgramInstall};
use baton_core::event::{EventKind, NewEvent};
use baton_core::model::Launcher;
use baton_core::status::LauncherStatus;

use crate::api::http::ApiJson;
use crate::auth::Auth;
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::projects::save_agents;

pub(super) async fn list(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<Vec<AgentInfo>>, AppError> {
    let (agents, launchers) = state.store.read(|r| Ok::<_, AppError>((r.agents()?, r.launchers()?))).await?;
    let online: Vec<_> = launchers.iter().filter(|l| l.status == LauncherStatus::Online).collect();
    let infos = agents.into_iter().map(|def| agent_info(def, &online)).collect();
    Ok(Json(infos))
}

/// A definition with where its program is installed. An agent is available
/// when an online launcher offers its executor and has not reported its program
/// missing (a launcher that has not probed yet counts as having it).
fn agent_info(def: AgentDef, online: &[&Launcher]) -> AgentInfo {
    let program = def.program();
    let mut installs = Vec::new();
    let mut available = false;
    for l in online.iter().filter(|l| l.executors.contains(&def.executor)) {
        let found = program.as_ref().and_then(|p| l.programs.get(p));
        if let (Some(_), Some(info)) = (&program, found) {
            installs.push(ProgramInstall {
                launcher: l.name.clone(),
                path: info.path.clone(),
                version: info.version.clone(),
            });
        }
        available |= found.is_none_or(|info| info.path.is_some());
    }
    let install_hint = (!available && program.is_some()).then(|| def.executor.install_hint().to_owned());
    AgentInfo { def, available, program, installs, install_hint }
}

pub(super) async fn show(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
) -> Result<Json<AgentDef>, AppError> {
    let n = name.clone();
    let agent = state.store.read(move |r| r.agent(&n)).await?;
    agent.map(Json).ok_or_else(|| AppError::not_found("agent", name))
}

fn prepare(mut def: AgentDef) -> Result<AgentDef, AppError> {
    def.source = "api".into();
    def.validate().map_err(|e| match e {
        baton_core::agent::AgentDefError::Combination { .. } => {
            AppError::new(ErrorCode::InvalidCombination, e.to_string())
        }
        e => AppError::invalid(e.to_string()),
    })?;
    // A misspelt placeholder would reach the agent as it is written.
    if let Some(template) = &def.prompt_template {
        let unknown = baton_domain::prompt::unknown_placeholders(template);
        if !unknown.is_empty() {
            return Err(AppError::invalid(format!(
                "prompt_template uses unknown placeholders {}; known: {}",
                unknown.iter().map(|n| format!("{{{{{n}}}}}")).collect::<Vec<_>>().join(", "),
                baton_domain::prompt::PLACEHOLDERS.join(", ")
            )));
        }
    }
    Ok(def)
}

pub(super) async fn create(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(def): ApiJson<AgentDef>,
) -> Result<(StatusCode, Json<AgentDef>), AppError> {
    caller.require_admin()?;
    let def = prepare(def)?;
    let saved = def.clone();
    state
        .store
        .write(move |tx| {
            if tx.agent(&def.name)?.is_some() {
                return Err(AppError::new(ErrorCode::AlreadyExists, format!("agent {} already exists", def.name)));
            }
            Ok(save_agents(tx, std::slice::from_ref(&def))?)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(saved)))
}

pub(super) async fn replace(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiJson(def): ApiJson<AgentDef>,
) -> Result<Json<AgentDef>, AppError> {
    caller.require_admin()?;
    if def.name != name {
        return Err(AppError::new(
            ErrorCode::InvalidCombination,
            format!("the body names agent {:?} but the path names {name:?}", def.name),
        ));
    }
    Ok(Json(replace_agent(&state, def).await?))
}

/// Checks a definition and saves it in place of one of the same name (never
/// one read from a file).
async fn replace_agent(state: &Arc<AppState>, def: AgentDef) -> Result<AgentDef, AppError> {
    let def = prepare(def)?;
    let saved = def.clone();
    state
        .store
        .write(move |tx| {
            refuse_file_backed(tx.agent(&def.name)?.as_ref())?;
            Ok::<_, AppError>(save_agents(tx, std::slice::from_ref(&def))?)
        })
        .await?;
    Ok(saved)
}

pub(super) async fn delete(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, AppError> {
    caller.require_admin()?;
    let n = name.clone();
    let existed = state
        .store
        .write(move |tx| {
            refuse_file_backed(tx.agent(&n)?.as_ref())?;
            let existed = tx.delete_agent(&n)?;
            if existed {
                let data = serde_json::json!({ "name": n, "deleted": true });
                tx.append_event(None, None, None, NewEvent::new(EventKind::Agent, data))?;
            }
            Ok::<_, AppError>(existed)
        })
        .await?;
    if existed { Ok(StatusCode::NO_CONTENT) } else { Err(AppError::not_found("agent", name)) }
}

/// An agent's definition as Markdown with front matter (`GET|PUT
/// /api/agents/{name}/markdown`).
#[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AgentMarkdown {
    /// The definition: YAML front matter between `---` lines, then the system prompt.
    markdown: String,
}

pub(super) async fn markdown(
    State(state): State<Arc<AppState>>,
    _: Auth,
    Path(name): Path<String>,
) -> Result<Json<AgentMarkdown>, AppError> {
    let n = name.clone();
    let agent = state.store.read(move |r| r.agent(&n)).await?.ok_or_else(|| AppError::not_found("agent", name))?;
    Ok(Json(AgentMarkdown { markdown: agent.to_markdown() }))
}

pub(super) async fn put_markdown(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(name): Path<String>,
    ApiJson(req): ApiJson<AgentMarkdown>,
) -> Result<Json<AgentDef>, AppError> {
    caller.require_admin()?;
    let def = AgentDef::from_markdown(&req.markdown, &name, "api", baton_core::agent::ExecutorKind::ClaudeCode)
        .map_err(|e| AppError::new(ErrorCode::InvalidContent, format!("agent {name}: {e}")))?;
    if def.name != name {
        return Err(AppError::new(
            ErrorCode::InvalidCombination,
            format!("the front matter names agent {:?} but the path names {name:?}", def.name),
        ));
    }
    Ok(Json(replace_agent(&state, def).await?))
}

/// A definition read from a file of a repository is changed in its file (or
/// copied under another name), never in place: the next reload would bring the
/// file's back.
fn refuse_file_backed(existing: Option<&AgentDef>) -> Result<(), AppError> {
    match existing {
        Some(def) if def.source.ends_with(".md") => Err(AppError::conflict(format!(
            "agent {} comes from {}; change that file (then `baton project reload`), or copy the agent under another name",
            def.name, def.source
        ))),
        _ => Ok(()),
    }
}
