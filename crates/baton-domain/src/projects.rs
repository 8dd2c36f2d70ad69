//! Registering projects: a path must be a git repository with a commit; its
//! `.baton/config.toml` gives the settings, and its agent files are loaded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use baton_core::agent::AgentDef;
use baton_core::api::CreateProject;
use baton_core::event::{EventKind, NewEvent};
use baton_core::ids::ProjectId;
use baton_core::model::{Project, ProjectSettings};
use baton_core::names::validate_simple_name;
use baton_core::time::Timestamp;
use baton_git::{Git, GitError};
use baton_store::StoreTx;

use crate::Error;
use crate::state::AppState;

/// Where a repository keeps Baton's settings.
pub const CONFIG_FILE: &str = ".baton/config.toml";

/// Reads a repository's `.baton/config.toml` (defaults when it does not exist).
pub fn read_settings(root: &Path) -> Result<ProjectSettings, Error> {
    let path = root.join(CONFIG_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).map_err(|e| Error::invalid(format!("{}: {}", path.display(), e.message()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProjectSettings::default()),
        Err(e) => Err(Error::invalid(format!("could not read {}: {e}", path.display()))),
    }
}

fn git_error(e: GitError) -> Error {
    match e {
        GitError::NotARepository(path) => Error::not_found("git repository", path.display()),
        GitError::NoCommits(_) => Error::conflict(e.to_string()),
        other => Error::internal(other),
    }
}

/// Checks that `path` is the top of a git repository with at least one commit,
/// and returns its canonical path and current branch.
pub async fn inspect_repository(path: &str) -> Result<(PathBuf, String), Error> {
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(Error::invalid(format!("project path {path:?} must be absolute")));
    }
    // What the path names on this host: a missing directory is not found, a
    // repository in an unusable state a conflict.
    let canonical = std::fs::canonicalize(given).map_err(|_| Error::not_found("directory", path))?;
    if !canonical.is_dir() {
        return Err(Error::not_found("directory", path));
    }
    let root = Git::discover(&canonical).await.map_err(git_error)?;
    let root = std::fs::canonicalize(&root).unwrap_or(root);
    if root != canonical {
        return Err(Error::conflict(format!(
            "{path} is inside the repository at {}; register the repository's top directory",
            root.display()
        )));
    }
    let git = Git::new(&root);
    if !git.has_commits().await.map_err(git_error)? {
        return Err(git_error(GitError::NoCommits(root)));
    }
    let branch = git.current_branch().await.map_err(git_error)?.ok_or_else(|| {
        Error::conflict(format!("the repository at {} has a detached HEAD; name `default_branch`", root.display()))
    })?;
    Ok((root, branch))
}

/// Registers a project (or returns the one already registered at that path when
/// `existing_ok`), storing its settings and loading its agent files.
pub async fn add_project(state: &Arc<AppState>, req: CreateProject, existing_ok: bool) -> Result<Project, Error> {
    let (root, branch) = inspect_repository(&req.path).await?;
    let root_text = root.to_string_lossy().into_owned();
    let default_branch = match req.default_branch {
        Some(b) => {
            baton_core::names::validate_branch_name(&b)?;
            if !Git::new(&root).branch_exists(&b).await.map_err(git_error)? {
                return Err(Error::unknown(format!("branch {b} does not exist in {root_text}")));
            }
            b
        }
        None => branch,
    };
    let (settings, source) = match req.settings {
        Some(s) => (s, "settings"),
        None => (read_settings(&root)?, CONFIG_FILE),
    };
    // Settings are `.baton/config.toml` as JSON: a rule they break is the text's.
    settings
        .validate()
        .map_err(|m| Error::content(format!("{source}: {m}"), serde_json::json!({ "field": source })))?;
    let name = match req.name {
        Some(n) => n,
        None => root.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "project".into()),
    };
    let name: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || "._-".contains(c) { c } else { '-' }).collect();
    let name = name.trim_start_matches(['.', '-', '_']).to_owned();
    validate_simple_name("project name", &name)?;
    let (agents, errors) = baton_agents::definitions::load_repository(&root);
    for e in &errors {
        tracing::warn!(error = %e, "agent definition skipped");
    }
    let project = Project {
        id: ProjectId::generate(),
        name,
        path: root_text,
        default_branch,
        settings,
        created_at: Timestamp::now(),
    };
    let saved = state
        .store
        .write(move |tx| {
            if let Some(mut existing) = tx.project_by_path(&project.path)? {
                if !existing_ok {
                    return Err(Error::AlreadyExists {
                        message: format!("{} is already project {} ({})", existing.path, existing.name, existing.id),
                        details: Some(serde_json::json!({ "id": existing.id })),
                    });
                }
                existing.settings = project.settings;
                save_project(tx, &existing)?;
                save_agents(tx, &agents)?;
                crate::leads::check_settings(tx, &existing)?;
                crate::schedules::sync(tx, &existing)?;
                return Ok(existing);
            }
            let mut project = project;
            let base = project.name.clone();
            let mut n = 2;
            while tx.project_by_name(&project.name)?.is_some() {
                project.name = format!("{base}-{n}");
                n += 1;
            }
            save_project(tx, &project)?;
            save_agents(tx, &agents)?;
            crate::leads::check_settings(tx, &project)?;
            crate::schedules::sync(tx, &project)?;
            Ok(project)
        })
        .await?;
    Ok(saved)
}

/// Reads a project's `.baton/config.toml` and agent files again and stores
/// them; tasks paused for a budget that now has room continue.
pub async fn reload_project(state: &Arc<AppState>, id: String) -> Result<Project, Error> {
    let project = state.store.read(move |r| crate::resolve::project_ref(r, &id)).await?;
    require_repository(&project)?;
    let root = PathBuf::from(&project.path);
    let settings = read_settings(&root)?;
    settings.validate().map_err(|m| Error::content(format!("{CONFIG_FILE}: {m}"), serde_json::json!({})))?;
    let (agents, errors) = baton_agents::definitions::load_repository(&root);
    for e in &errors {
        tracing::warn!(error = %e, "agent definition skipped");
    }
    crate::transact(state, move |tx, fx| {
        let mut project = crate::resolve::project(tx, &project.id)?;
        project.settings = settings;
        save_project(tx, &project)?;
        save_agents(tx, &agents)?;
        crate::leads::check_settings(tx, &project)?;
        crate::schedules::sync(tx, &project)?;
        let resumed = crate::scheduler::resume_budget_paused(tx, fx, &project.id)?;
        if resumed > 0 {
            tracing::info!(project = %project.name, resumed, "tasks paused for their budget continue");
        }
        // A pool may be larger now: launchers may take what it held back.
        fx.wake.everyone();
        Ok(project)
    })
    .await
}

fn save_project(tx: &mut dyn StoreTx, project: &Project) -> Result<(), Error> {
    tx.put_project(project)?;
    let data = serde_json::to_value(project).unwrap_or_default();
    tx.append_event(None, None, None, NewEvent::new(EventKind::Project, data))?;
    Ok(())
}

/// Stores agent definitions, announcing each.
/// Refuses when this coordinator cannot see a project's repository: coordinators
/// sharing a database must all see the same repositories (one host, or a shared
/// volume), and one that does not answers what needs the repository with 503.
pub fn require_repository(project: &Project) -> Result<(), Error> {
    if Path::new(&project.path).join(".git").exists() || Path::new(&project.path).join("HEAD").exists() {
        return Ok(());
    }
    Err(Error::Unavailable {
        message: format!(
            "this coordinator cannot see the repository of project {} at {}; coordinators sharing a database must see the same repositories",
            project.name, project.path
        ),
        details: Some(serde_json::json!({ "project": project.name, "path": project.path })),
    })
}

pub fn save_agents(tx: &mut dyn StoreTx, agents: &[AgentDef]) -> Result<(), Error> {
    for agent in agents {
        if let Some(pool) = &agent.pool
            && !crate::scheduler::pool_known(tx, pool)?
        {
            return Err(Error::unknown(format!(
                "agent {} names pool {pool:?}, which is not a provider's (anthropic, openai, google) and no project's \
                 [pools] sizes it; add `{pool} = N` under [pools] in .baton/config.toml",
                agent.name
            )));
        }
        tx.put_agent(agent)?;
        let data = serde_json::to_value(agent).unwrap_or_default();
        tx.append_event(None, None, None, NewEvent::new(EventKind::Agent, data))?;
    }
    Ok(())
}

/// Makes sure the built-in agents exist, without overwriting a definition of the
/// same name from a file or the API.
pub async fn ensure_builtin_agents(state: &Arc<AppState>) -> Result<(), Error> {
    state
        .store
        .write(|tx| {
            let missing: Vec<AgentDef> = AgentDef::builtins()
                .into_iter()
                .filter(|b| !matches!(tx.agent(&b.name), Ok(Some(existing)) if existing.source != "builtin"))
                .collect();
            save_agents(tx, &missing)
        })
        .await
}

/// Worktrees under `dir` (laid out `<project>/<short-task-id>-<slug>`) whose task
/// no longer exists. They are reported so the user can look; never deleted.
pub async fn orphan_worktrees(state: &Arc<AppState>, dir: &Path) -> Vec<PathBuf> {
    let mut candidates: Vec<(PathBuf, Option<baton_core::ids::TaskId>)> = Vec::new();
    for project in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        for entry in std::fs::read_dir(project.path()).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            let short = name.split('-').next().unwrap_or_default();
            candidates.push((entry.path(), baton_core::ids::TaskId::parse(&format!("t-{short}")).ok()));
        }
    }
    let ids: Vec<_> = candidates.iter().map(|(_, id)| id.clone()).collect();
    let known = state
        .store
        .read(move |r| {
            ids.iter()
                .map(|id| Ok(id.as_ref().map(|i| r.task(i)).transpose()?.flatten().is_some()))
                .collect::<Result<Vec<bool>, Error>>()
        })
        .await
        .unwrap_or_default();
    candidates.into_iter().zip(known).filter(|(_, known)| !known).map(|((path, _), _)| path).collect()
}

/// A project's configuration file as it is on disk (empty when it has none).
pub async fn config_text(state: &Arc<AppState>, id: String) -> Result<baton_core::api::ProjectConfig, Error> {
    let project = state.store.read(move |r| crate::resolve::project_ref(r, &id)).await?;
    require_repository(&project)?;
    let path = Path::new(&project.path).join(CONFIG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(Error::invalid(format!("could not read {}: {e}", path.display()))),
    };
    Ok(baton_core::api::ProjectConfig { path: path.to_string_lossy().into_owned(), text })
}

/// Writes a project's configuration file (`.baton/config.toml` in its checkout,
/// left uncommitted) after checking it by the rules `baton project reload`
/// applies, then reloads the project. Nothing is written when it breaks one: the
/// error says where (`details.line`, `details.column`).
pub async fn write_config(state: &Arc<AppState>, id: String, text: String) -> Result<Project, Error> {
    let project = state.store.read(move |r| crate::resolve::project_ref(r, &id)).await?;
    require_repository(&project)?;
    let settings: ProjectSettings = toml::from_str(&text).map_err(|e| {
        let (line, column) = e.span().map(|s| line_column(&text, s.start)).unwrap_or((1, 1));
        Error::InvalidAt {
            message: format!("{CONFIG_FILE}, line {line}: {}", e.message()),
            details: serde_json::json!({ "line": line, "column": column }),
        }
    })?;
    settings.validate().map_err(|m| Error::content(format!("{CONFIG_FILE}: {m}"), serde_json::json!({})))?;
    let candidate = Project { settings: settings.clone(), ..project.clone() };
    // The settings' own rules broken are the text's fault, whatever the check.
    state.store.read(move |r| crate::leads::check_settings(r, &candidate)).await.map_err(|e| match e {
        Error::Invalid { message } => Error::content(message, serde_json::json!({})),
        other => other,
    })?;
    let path = Path::new(&project.path).join(CONFIG_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::invalid(format!("could not create {}: {e}", dir.display())))?;
    }
    std::fs::write(&path, text).map_err(|e| Error::invalid(format!("could not write {}: {e}", path.display())))?;
    reload_project(state, project.id.to_string()).await
}

/// The line and column (from 1) of byte `at` in `text`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let before = &text[..at.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// The files of a project at `rev` (its default branch by default) whose path
/// contains `query` (any case), at most `limit`, for completing paths in a
/// prompt.
pub async fn files(
    state: &Arc<AppState>,
    id: String,
    rev: Option<String>,
    query: String,
    limit: usize,
) -> Result<Vec<String>, Error> {
    let project = state.store.read(move |r| crate::resolve::project_ref(r, &id)).await?;
    require_repository(&project)?;
    let rev = rev.unwrap_or_else(|| project.default_branch.clone());
    baton_core::names::validate_branch_name(&rev)?;
    let git = Git::new(&project.path);
    let spec = format!("refs/heads/{rev}");
    if git.resolve(&spec).await.map_err(git_error)?.is_none() {
        return Err(Error::not_found("branch", rev));
    }
    let listing = git.run(["ls-tree", "-r", "--name-only", "--full-tree", spec.as_str()]).await.map_err(git_error)?;
    let query = query.to_lowercase();
    Ok(listing.lines().filter(|p| p.to_lowercase().contains(&query)).take(limit).map(str::to_owned).collect())
}

/// A project's branches a task may start from: every local branch but Baton's
/// own task branches (`baton/…`), the default branch first.
pub async fn branches(state: &Arc<AppState>, id: String) -> Result<Vec<String>, Error> {
    let project = state.store.read(move |r| crate::resolve::project_ref(r, &id)).await?;
    require_repository(&project)?;
    let listing = Git::new(&project.path)
        .run(["for-each-ref", "--format=%(refname:short)", "refs/heads/"])
        .await
        .map_err(git_error)?;
    let mut names: Vec<String> = listing
        .lines()
        .filter(|b| !b.starts_with("baton/") && *b != project.default_branch)
        .map(str::to_owned)
        .collect();
    names.sort();
    names.insert(0, project.default_branch.clone());
    Ok(names)
}

/// Refuses a branch the project's repository does not have.
pub async fn require_branch(project: &Project, branch: &str) -> Result<(), Error> {
    baton_core::names::validate_branch_name(branch)?;
    require_repository(project)?;
    if Git::new(&project.path).branch_exists(branch).await.map_err(git_error)? {
        Ok(())
    } else {
        Err(Error::not_found("branch", format!("{branch} in project {}", project.name)))
    }
}
