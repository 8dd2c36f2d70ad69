//! The provider-aware governor: concurrency pools per provider or account, a
//! retry on the same agent when the provider rate-limits, and a pool limit that
//! halves on each refusal and grows back by one with each run that succeeds
//! (additive increase, multiplicative decrease).
//!
//! A pool's size comes from `[pools]` in the projects' settings (the smallest
//! where several name it); what the provider's answers taught is a
//! [`PoolState`] in the store, so every coordinator replica sees the same limit.

use std::collections::{BTreeMap, HashMap};

use baton_core::agent::AgentDef;
use baton_core::api::PoolInfo;
use baton_core::model::{PoolState, Project};
use baton_core::time::Timestamp;
use baton_store::{ActiveOf, StoreRead, StoreTx};

use crate::Error;

/// How many times in a row a task is retried on the same agent after its
/// provider refused for rate limits, before its fallback agents or a failure.
pub(crate) const THROTTLE_RETRIES: u32 = 8;

/// The first wait after a refusal that named no `Retry-After`; doubled each time.
const BACKOFF_BASE_MS: i64 = 2_000;

/// The longest wait between retries when the provider named none.
const BACKOFF_MAX_MS: i64 = 300_000;

/// The longest `Retry-After` taken as it is.
const RETRY_AFTER_MAX_MS: i64 = 3_600_000;

/// How far back refusals are kept, for `baton pools`.
const WINDOW_MS: i64 = 3_600_000;

/// How many refusals are kept per pool.
const KEPT: usize = 100;

/// Each pool's configured size: the smallest any project gives it.
pub(crate) fn configured(projects: &[Project]) -> BTreeMap<String, u32> {
    let mut out: BTreeMap<String, u32> = BTreeMap::new();
    for project in projects {
        for (name, size) in &project.settings.pools {
            let size = u32::try_from(*size).unwrap_or(u32::MAX).max(1);
            out.entry(name.clone()).and_modify(|s| *s = (*s).min(size)).or_insert(size);
        }
    }
    out
}

/// Whether a pool of that name may be named by an agent: a provider's default
/// one, or one a project configures.
pub fn known(r: &dyn StoreRead, name: &str) -> Result<bool, Error> {
    let defaults = baton_core::agent::ExecutorKind::ALL.iter().filter_map(|e| e.default_pool());
    if defaults.clone().any(|d| d == name) {
        return Ok(true);
    }
    Ok(configured(&r.projects()?).contains_key(name))
}

/// Whether the agent's pool limits its runs now (a freed slot may let another
/// launcher take one of them).
pub(crate) fn limits(r: &dyn StoreRead, agent: &AgentDef) -> Result<bool, Error> {
    let Some(pool) = agent.pool_name() else { return Ok(false) };
    Ok(configured(&r.projects()?).contains_key(pool)
        || r.pool_states()?.iter().any(|s| s.name == pool && (s.limit.is_some() || s.paused_until.is_some())))
}

/// How many runs of these agents work now (or, `queued`, wait for a slot).
fn count<'a>(r: &dyn StoreRead, agents: impl IntoIterator<Item = &'a AgentDef>, queued: bool) -> Result<u32, Error> {
    let mut n = 0;
    for agent in agents {
        let of = if queued { ActiveOf::QueuedOfAgent(&agent.name) } else { ActiveOf::Agent(&agent.name) };
        n += r.active_run_count(of)?;
    }
    Ok(n)
}

/// The limit that holds for a pool now, if any.
fn effective(size: Option<u32>, state: Option<&PoolState>) -> Option<u32> {
    match (size, state.and_then(|s| s.limit)) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The pools as one claim sees them: which agents are in each, their limits,
/// and how many of their runs work now.
#[derive(Default)]
pub(crate) struct Pools {
    /// Each agent's pool.
    pool_of: HashMap<String, String>,
    /// Each pool's agents.
    members: HashMap<String, Vec<String>>,
    /// Each limited pool's limit and active runs.
    room: HashMap<String, (u32, u32)>,
    /// Pools that start nothing before a time (a `Retry-After`).
    paused: HashMap<String, Timestamp>,
}

impl Pools {
    /// Reads the pools that hold back runs now.
    pub(crate) fn load(
        tx: &dyn StoreRead,
        projects: &[Project],
        agents: &[AgentDef],
        now: Timestamp,
    ) -> Result<Self, Error> {
        let sizes = configured(projects);
        let states: HashMap<String, PoolState> = tx.pool_states()?.into_iter().map(|s| (s.name.clone(), s)).collect();
        let mut pools = Pools::default();
        for agent in agents {
            let Some(pool) = agent.pool_name() else { continue };
            pools.pool_of.insert(agent.name.clone(), pool.to_owned());
            pools.members.entry(pool.to_owned()).or_default().push(agent.name.clone());
        }
        for pool in pools.members.keys() {
            let state = states.get(pool);
            if let Some(until) = state.and_then(|s| s.paused_until).filter(|t| *t > now) {
                pools.paused.insert(pool.clone(), until);
            }
            if let Some(limit) = effective(sizes.get(pool).copied(), state) {
                let used = count(tx, agents.iter().filter(|a| a.pool_name() == Some(pool)), false)?;
                pools.room.insert(pool.clone(), (limit, used));
            }
        }
        Ok(pools)
    }

    /// The agents whose runs no launcher may take now: their pool is full or
    /// waits out a `Retry-After`.
    pub(crate) fn held_agents(&self) -> impl Iterator<Item = &String> {
        self.members.iter().filter(|(pool, _)| !self.has_room(pool)).flat_map(|(_, agents)| agents)
    }

    fn has_room(&self, pool: &str) -> bool {
        !self.paused.contains_key(pool) && self.room.get(pool).is_none_or(|(limit, used)| used < limit)
    }

    /// Whether a run of `agent` may start now.
    pub(crate) fn has_room_for(&self, agent: &str) -> bool {
        self.pool_of.get(agent).is_none_or(|pool| self.has_room(pool))
    }

    /// A run of `agent` was claimed.
    pub(crate) fn took(&mut self, agent: &str) {
        if let Some((_, used)) = self.pool_of.get(agent).and_then(|pool| self.room.get_mut(pool)) {
            *used += 1;
        }
    }

    /// The other agents of a full pool, to leave out of the next pages.
    pub(crate) fn mates(&self, agent: &str) -> Vec<String> {
        let Some(pool) = self.pool_of.get(agent) else { return Vec::new() };
        self.members.get(pool).cloned().unwrap_or_default()
    }
}

/// How long to wait before the next try: the provider's `Retry-After` when its
/// error named one, else a doubling backoff from 2 s (at most 5 min), with a
/// jitter of up to a quarter either way so a fan-out does not retry in step.
pub(crate) fn backoff_ms(attempt: u32, retry_after_ms: Option<i64>, jitter: f64) -> i64 {
    if let Some(ms) = retry_after_ms {
        return ms.clamp(0, RETRY_AFTER_MAX_MS);
    }
    let base = (BACKOFF_BASE_MS << attempt.saturating_sub(1).min(16)).min(BACKOFF_MAX_MS);
    let spread = (base as f64 * 0.25 * jitter.clamp(-1.0, 1.0)) as i64;
    (base + spread).min(BACKOFF_MAX_MS)
}

/// A `Retry-After` named in a provider's error text, in milliseconds: "retry
/// after 2 seconds", "Retry-After: 2", `"retryDelay": "2s"`, "try again in 1.5s".
pub(crate) fn retry_after_in(text: &str) -> Option<i64> {
    let t = text.to_lowercase();
    let keys = ["retry-after", "retry after", "retrydelay", "retry_delay", "try again in", "retry in"];
    for key in keys {
        let Some(at) = t.find(key) else { continue };
        let rest = &t[at + key.len()..];
        let rest = rest.trim_start_matches([':', '"', ' ', '=']);
        let digits: String = rest.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
        let Ok(n) = digits.parse::<f64>() else { continue };
        let unit = rest[digits.len()..].trim_start();
        let ms = if unit.starts_with("ms") || unit.starts_with("milli") { n } else { n * 1000.0 };
        return Some(ms.round() as i64);
    }
    None
}

/// What a refusal did to a pool, for the task's timeline.
pub(crate) struct Throttled {
    pub(crate) pool: Option<String>,
    pub(crate) limit: Option<u32>,
    pub(crate) wait_ms: i64,
}

/// The provider of `agent` refused a run for rate limits: the pool's limit is
/// halved (from what was running, counting that run), its refusal recorded,
/// and no run of it starts before the provider's `Retry-After`. Returns how long
/// the run's retry waits.
pub(crate) fn refused(
    tx: &mut dyn StoreTx,
    agent: &AgentDef,
    attempt: u32,
    error: Option<&str>,
    now: Timestamp,
) -> Result<Throttled, Error> {
    let retry_after = error.and_then(retry_after_in);
    let wait_ms = backoff_ms(attempt, retry_after, jitter());
    let Some(pool) = agent.pool_name() else { return Ok(Throttled { pool: None, limit: None, wait_ms }) };
    let mut state = state_of(tx, pool)?;
    let size = configured(&tx.projects()?).get(pool).copied();
    // The refused run is over already: it counts as one that was running.
    let running = 1 + count(tx, tx.agents()?.iter().filter(|a| a.pool_name() == Some(pool)), false)?;
    let now_limit = effective(size, Some(&state)).unwrap_or(running).min(running.max(1));
    state.limit = Some((now_limit / 2).max(1));
    state.throttled_at.retain(|t| now.millis_since(*t) < WINDOW_MS);
    state.throttled_at.push(now);
    let excess = state.throttled_at.len().saturating_sub(KEPT);
    state.throttled_at.drain(..excess);
    if let Some(ms) = retry_after {
        let until = now.plus_millis(ms.clamp(0, RETRY_AFTER_MAX_MS));
        state.paused_until = Some(state.paused_until.map_or(until, |t| t.max(until)));
    }
    tx.put_pool_state(&state)?;
    Ok(Throttled { pool: Some(pool.to_owned()), limit: state.limit, wait_ms })
}

/// A run of `agent` succeeded: its pool's lowered limit grows by one, and is
/// lifted once it reaches the pool's size (or, with no size, what ran before).
/// The new limit, when it changed.
pub(crate) fn succeeded(tx: &mut dyn StoreTx, agent: &AgentDef) -> Result<Option<(String, Option<u32>)>, Error> {
    let Some(pool) = agent.pool_name() else { return Ok(None) };
    let mut state = match tx.pool_states()?.into_iter().find(|s| s.name == pool) {
        Some(s) if s.limit.is_some() => s,
        _ => return Ok(None),
    };
    let size = configured(&tx.projects()?).get(pool).copied();
    let next = state.limit.unwrap_or(1).saturating_add(1);
    state.limit = match size {
        Some(size) if next >= size => None,
        _ if next > 64 => None,
        _ => Some(next),
    };
    tx.put_pool_state(&state)?;
    Ok(Some((pool.to_owned(), state.limit)))
}

fn state_of(tx: &dyn StoreRead, pool: &str) -> Result<PoolState, Error> {
    Ok(tx
        .pool_states()?
        .into_iter()
        .find(|s| s.name == pool)
        .unwrap_or_else(|| PoolState { name: pool.to_owned(), ..PoolState::default() }))
}

/// A number in [-1, 1), different each call.
fn jitter() -> f64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return 0.0;
    }
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
}

/// Every pool: the providers' defaults, those projects configure and those
/// agents name, with their limit, runs in use and queued, and recent refusals.
pub fn list(r: &dyn StoreRead, now: Timestamp) -> Result<Vec<PoolInfo>, Error> {
    let projects = r.projects()?;
    let sizes = configured(&projects);
    let states: HashMap<String, PoolState> = r.pool_states()?.into_iter().map(|s| (s.name.clone(), s)).collect();
    let agents = r.agents()?;
    let mut names: Vec<String> = baton_core::agent::ExecutorKind::ALL
        .iter()
        .filter_map(|e| e.default_pool())
        .map(str::to_owned)
        .chain(sizes.keys().cloned())
        .chain(agents.iter().filter_map(|a| a.pool_name().map(str::to_owned)))
        .chain(states.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let state = states.get(&name);
        let members: Vec<&AgentDef> = agents.iter().filter(|a| a.pool_name() == Some(name.as_str())).collect();
        let in_use = count(r, members.iter().copied(), false)?;
        let queued = count(r, members.iter().copied(), true)?;
        let recent: Vec<Timestamp> = state
            .map(|s| s.throttled_at.iter().filter(|t| now.millis_since(**t) < WINDOW_MS).copied().collect())
            .unwrap_or_default();
        out.push(PoolInfo {
            size: sizes.get(&name).copied(),
            limit: effective(sizes.get(&name).copied(), state),
            lowered: state.is_some_and(|s| s.limit.is_some()),
            in_use,
            queued,
            throttled_last_hour: recent.len() as u32,
            last_throttled_at: recent.last().copied(),
            paused_until: state.and_then(|s| s.paused_until).filter(|t| *t > now),
            agents: members.iter().map(|a| a.name.clone()).collect(),
            name,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_with_a_bounded_jitter_and_takes_retry_after_as_it_is() {
        assert_eq!(backoff_ms(1, None, 0.0), 2_000);
        assert_eq!(backoff_ms(2, None, 0.0), 4_000);
        assert_eq!(backoff_ms(3, None, 0.0), 8_000);
        assert_eq!(backoff_ms(30, None, 0.0), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(1, None, 1.0), 2_500);
        assert_eq!(backoff_ms(1, None, -1.0), 1_500);
        assert_eq!(backoff_ms(5, Some(2_000), 0.9), 2_000);
        assert_eq!(backoff_ms(1, Some(10 * RETRY_AFTER_MAX_MS), 0.0), RETRY_AFTER_MAX_MS);
        for _ in 0..100 {
            let j = jitter();
            assert!((-1.0..1.0).contains(&j), "{j}");
        }
    }

    #[test]
    fn retry_after_is_read_from_the_ways_providers_say_it() {
        assert_eq!(retry_after_in("API Error: 429 rate limited, retry after 2 seconds"), Some(2_000));
        assert_eq!(retry_after_in("Retry-After: 3"), Some(3_000));
        assert_eq!(retry_after_in(r#"{"retryDelay": "1.5s"}"#), Some(1_500));
        assert_eq!(retry_after_in("Please try again in 250ms."), Some(250));
        assert_eq!(retry_after_in("429 Too Many Requests"), None);
        assert_eq!(retry_after_in("retry after soon"), None);
    }

    #[test]
    fn a_pool_is_limited_by_its_smallest_size_and_by_what_the_provider_taught() {
        assert_eq!(effective(None, None), None);
        let lowered = PoolState { name: "a".into(), limit: Some(2), ..PoolState::default() };
        assert_eq!(effective(Some(6), Some(&lowered)), Some(2));
        assert_eq!(effective(None, Some(&lowered)), Some(2));
        assert_eq!(effective(Some(1), Some(&lowered)), Some(1));
        let mut p = Pools::default();
        p.pool_of.insert("x".into(), "a".into());
        p.pool_of.insert("y".into(), "a".into());
        p.members.insert("a".into(), vec!["x".into(), "y".into()]);
        p.room.insert("a".into(), (2, 0));
        for agent in ["x", "y"] {
            assert!(p.has_room_for(agent));
            p.took(agent);
        }
        assert!(!p.has_room_for("x"), "a pool of 2 takes no third run");
        assert!(p.has_room_for("unpooled"));
        let held: Vec<&String> = p.held_agents().collect();
        assert_eq!(held.len(), 2);
    }
}
