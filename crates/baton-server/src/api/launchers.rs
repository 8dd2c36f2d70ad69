//! `/api/launchers`: the launcher protocol (register, poll, attach, heartbeat).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use axum::Json;
use axum::extract::{Path, State};
use baton_core::agent::ExecutorKind;
use baton_core::api::{
    Assignment, AttachRequest, AttachResponse, Heartbeat, OrderDone, PollRequest, PollResponse, RegisterLauncher,
    Registered,
};
use baton_core::ids::LauncherId;
use baton_core::model::Launcher;

use crate::api::http::ApiJson;
use crate::auth::{Auth, Caller};
use crate::error::AppError;
use baton_domain::AppState;
use baton_domain::state::Waiting;
use baton_domain::{scheduler, transact, transact_urgent};

/// The longest a poll may wait.
const MAX_POLL_WAIT: Duration = Duration::from_secs(60);

pub(super) async fn list(State(state): State<Arc<AppState>>, _: Auth) -> Result<Json<Vec<Launcher>>, AppError> {
    Ok(Json(state.store.read(|r| r.launchers()).await?))
}

pub(super) async fn register(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    ApiJson(req): ApiJson<RegisterLauncher>,
) -> Result<Json<Registered>, AppError> {
    caller.require_launcher()?;
    let launcher = transact(&state, move |tx, fx| scheduler::register(tx, fx, &caller, req)).await?;
    state.wake_launchers();
    Ok(Json(Registered {
        launcher,
        heartbeat_interval_ms: state.config.heartbeat_interval.as_millis() as u64,
        protocol: baton_core::api::LAUNCHER_PROTOCOL,
    }))
}

fn launcher_id(caller: &Caller, id: &str) -> Result<LauncherId, AppError> {
    let id = LauncherId::parse(id)?;
    caller.require_launcher_id(&id)?;
    Ok(id)
}

/// A launcher's poll waiting for work, known to the others' claims while it lasts.
struct Polling {
    state: Arc<AppState>,
    id: LauncherId,
    notify: Arc<Notify>,
}

impl Polling {
    fn start(state: &Arc<AppState>, id: &LauncherId) -> Self {
        let polling = Polling { state: Arc::clone(state), id: id.clone(), notify: Arc::new(Notify::new()) };
        // Known before its first claim, so that no wake falls between the claim
        // and the wait; any queued run wakes it until it is known what it runs.
        polling.wait_for(ExecutorKind::ALL, None);
        polling
    }

    /// Makes it known, with the executors that wake it and its free slots.
    fn wait_for(&self, executors: &[ExecutorKind], free: Option<u32>) {
        if let Ok(mut p) = self.state.polling.lock() {
            let waiting = Waiting { notify: Arc::clone(&self.notify), executors: executors.to_vec(), free };
            p.insert(self.id.clone(), waiting);
        }
    }
}

impl Drop for Polling {
    fn drop(&mut self) {
        // A poll gone claims nothing more: the other launchers need not wait for it.
        self.state.claim_ended(&self.id);
        if let Ok(mut p) = self.state.polling.lock()
            && p.get(&self.id).is_some_and(|w| Arc::ptr_eq(&w.notify, &self.notify))
        {
            p.remove(&self.id);
        }
    }
}

/// Waits until there is work or a stop order for the launcher, or the wait ends.
/// The launcher's waiting poll is woken the moment a run it can take is queued,
/// a slot of its own frees, or a stop or order is given it.
pub(super) async fn poll(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<PollRequest>,
) -> Result<Json<PollResponse>, AppError> {
    let id = launcher_id(&caller, &id)?;
    let deadline = Instant::now() + Duration::from_millis(req.wait_ms).min(MAX_POLL_WAIT);
    let polling = Polling::start(&state, &id);
    let mut has = req.running.clone();
    loop {
        let (st, lid) = (Arc::clone(&state), id.clone());
        let waiting: HashMap<LauncherId, Option<u32>> =
            state.polling.lock().map(|p| p.iter().map(|(id, w)| (id.clone(), w.free)).collect()).unwrap_or_default();
        let has_now = has.take();
        let claim_started = Instant::now();
        let st2 = Arc::clone(&state);
        let polled = transact_urgent(&state, move |tx, fx| {
            let _timed = Timed(Instant::now(), &st2.metrics.claim_work_micros);
            scheduler::poll(tx, fx, &lid, has_now.as_deref(), &st.config, &waiting)
        })
        .await?;
        let scheduler::Polled { mut runs, stops, orders, executors, free } = polled;
        state.metrics.claims.fetch_add(1, Ordering::Relaxed);
        state.metrics.claim_micros.fetch_add(claim_started.elapsed().as_micros() as u64, Ordering::Relaxed);
        for run in &runs {
            state.claimed(run.agent.executor, 1);
        }
        state.claim_ended(&id);
        if !runs.is_empty() || !stops.is_empty() || !orders.is_empty() || Instant::now() >= deadline {
            state.metrics.runs_claimed.fetch_add(runs.len() as u64, Ordering::Relaxed);
            for run in &mut runs {
                base_commit(run).await;
                if let Err(e) = workset_checkouts(&state, run).await {
                    // The launcher refuses a workset run missing a project, saying why.
                    tracing::warn!(task = %run.task.id, error = %e, "could not prepare a workset task's other projects");
                }
            }
            return Ok(Json(PollResponse { runs, stops, orders }));
        }
        // A wake that came while the claim ran is kept by the Notify (a permit),
        // so none is lost between the claim and the wait.
        polling.wait_for(&executors, Some(free));
        tokio::select! {
            _ = polling.notify.notified() => {}
            _ = tokio::time::sleep_until(deadline.into()) => {}
        }
    }
}

/// Adds the time since its start to a counter when dropped.
struct Timed<'a>(Instant, &'a std::sync::atomic::AtomicU64);

impl Drop for Timed<'_> {
    fn drop(&mut self) {
        self.1.fetch_add(self.0.elapsed().as_micros() as u64, Ordering::Relaxed);
    }
}

/// Names the commit a new branch starts from: the base branch's head, now; and
/// that head again for a run that must merge it (a conflict to resolve).
async fn base_commit(a: &mut Assignment) {
    let remerge = a.task.loops.remerge;
    if (a.task.git.base_commit.is_some() && !remerge) || !a.project.settings.uses_worktrees() {
        return;
    }
    let base = a.task.git.base_branch.clone().unwrap_or_else(|| a.project.default_branch.clone());
    match baton_git::Git::new(&a.project.path).branch_head(&base).await {
        Ok(commit) if remerge => a.base_head = commit,
        Ok(commit) => a.base_commit = commit,
        Err(e) => tracing::warn!(project = %a.project.name, error = %e, "could not read the base branch's head"),
    }
}

/// For a workset task, its other projects: each with the commit a new branch
/// starts from (its base's head now), and the task's branch there when it has
/// one (a later run continues from it).
async fn workset_checkouts(state: &Arc<AppState>, a: &mut Assignment) -> Result<(), AppError> {
    let Some(workset) = a.task.workset.clone() else { return Ok(()) };
    let own = a.project.id.clone();
    let ids: Vec<_> = workset.parts.iter().filter(|p| p.project_id != own).cloned().collect();
    let projects = state
        .store
        .read(move |r| {
            ids.iter()
                .map(|p| Ok::<_, AppError>((baton_domain::resolve::project(r, &p.project_id)?, p.base_branch.clone())))
                .collect::<Result<Vec<_>, _>>()
        })
        .await?;
    let branch = a.task.git.branch.clone().unwrap_or_default();
    a.workset.clear();
    for (project, base) in projects {
        let git = baton_git::Git::new(&project.path);
        let head = git.branch_head(&branch).await.map_err(AppError::internal)?;
        let base_head =
            git.branch_head(&base).await.map_err(AppError::internal)?.ok_or_else(|| {
                AppError::conflict(format!("branch {base} of project {} does not exist", project.name))
            })?;
        let base_commit = match &head {
            Some(h) => git
                .run(["merge-base", base_head.as_str(), h.as_str()])
                .await
                .map_err(AppError::internal)?
                .trim()
                .to_owned(),
            None => base_head.clone(),
        };
        let base_head = Some(base_head);
        a.workset.push(baton_core::workset::WorksetCheckout { project, base_commit, head, base_head });
    }
    Ok(())
}

/// `POST /api/launchers/{id}/drain`: no new work for it (admin).
pub(super) async fn drain(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Launcher>, AppError> {
    set_draining(&state, &caller, &id, true).await
}

/// `POST /api/launchers/{id}/undrain`: work again (admin).
pub(super) async fn undrain(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Launcher>, AppError> {
    set_draining(&state, &caller, &id, false).await
}

async fn set_draining(
    state: &Arc<AppState>,
    caller: &Caller,
    id: &str,
    draining: bool,
) -> Result<Json<Launcher>, AppError> {
    caller.require_admin()?;
    let id = id.to_owned();
    let launcher = transact(state, move |tx, fx| scheduler::set_draining(tx, fx, &id, draining)).await?;
    Ok(Json(launcher))
}

/// A launcher did (or could not do) an order.
pub(super) async fn order_done(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(done): ApiJson<OrderDone>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = launcher_id(&caller, &id)?;
    transact(&state, move |tx, _fx| {
        scheduler::seen(tx, &id)?;
        scheduler::order_done(tx, &id, done)
    })
    .await?;
    Ok(Json(serde_json::json!({})))
}

pub(super) async fn attach(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<AttachRequest>,
) -> Result<Json<AttachResponse>, AppError> {
    let id = launcher_id(&caller, &id)?;
    let st = Arc::clone(&state);
    let response = transact(&state, move |tx, fx| {
        scheduler::seen(tx, &id)?;
        scheduler::attach(tx, fx, &id, req.runs, &st.config)
    })
    .await?;
    Ok(Json(response))
}

pub(super) async fn heartbeat(
    State(state): State<Arc<AppState>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(hb): ApiJson<Heartbeat>,
) -> Result<Json<Launcher>, AppError> {
    let id = launcher_id(&caller, &id)?;
    let launcher = transact(&state, move |tx, fx| scheduler::heartbeat(tx, fx, &id, hb)).await?;
    Ok(Json(launcher))
}
