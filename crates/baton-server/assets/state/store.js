// The client's state: a mirror of the coordinator (projects, tasks, sessions, runs,
// launchers, agents, orchestrations) and what is derived from it (costs, the leads'
// status, the conflict radar).
//
// Every change to it is made in this module (scripts/test checks that no other
// module writes to `state`). Views read `state` and are told what changed through
// `listen`; they change it only by calling the functions below.

import { api, apiPage, errorMessage, isUnauthorized } from '../api/client.js';
import { debounce } from '../lib/debounce.js';
import { ms } from '../lib/format.js';
import { enc } from '../lib/links.js';

/**
 * What changed, as listeners are told. `derived` is costs, leads or the radar.
 * @typedef {{kind: 'task', task: Api.Task, old?: Api.Task}
 *   | {kind: 'session', session: Api.Session}
 *   | {kind: 'run', run: Api.Run}
 *   | {kind: 'launcher' | 'project' | 'agent' | 'orchestration' | 'document' | 'derived' | 'snapshot', data?: any}} Change
 */

export const state = {
  /** Whether the first snapshots are in. */
  ready: false,
  /** Whether the coordinator said this browser is not logged in. */
  loggedOut: false,
  /** @type {Map<string, Api.Project>} */
  projects: new Map(),
  /** @type {Map<string, Api.Task>} */
  tasks: new Map(),
  /** @type {Map<string, Api.Session>} */
  sessions: new Map(),
  /** @type {Map<string, Api.Run>} */
  runs: new Map(),
  /** @type {Map<string, Api.Launcher>} */
  launchers: new Map(),
  /** @type {Map<string, Api.AgentInfo>} */
  agents: new Map(),
  /** @type {Map<string, Api.Orchestration>} */
  orchestrations: new Map(),
  /** @type {Map<string, {data?: any, at?: number, error?: string}>} project id → its lead's status */
  leads: new Map(),
  /** @type {Map<string, Api.Overlap[]>} task id → the live tasks changing the same files */
  radar: new Map(),
  /** @type {Api.Costs | null} */
  costs: null,
  /** @type {Api.HourStats[]} the last 24 hours, from the coordinator's aggregates */
  hourly: [],
  /** @type {string | null} the key of the next page of older tasks (null: all are read) */
  olderTasks: null,
  /** @type {string | null} */
  costsError: null,
};

/** @type {((change: Change) => void)[]} */
const listeners = [];

/**
 * Calls `f` after every change.
 * @param {(change: Change) => void} f
 */
export function listen(f) {
  listeners.push(f);
}

/** @param {Change} change */
function tell(change) {
  for (const f of listeners) f(change);
}

/**
 * Whether `next` is at least as recent as `old` (events may arrive out of order).
 * @param {any} old
 * @param {any} next
 */
function isNewer(old, next) {
  if (!old) return true;
  const a = ms(old.updated_at ?? old.last_seen);
  const b = ms(next.updated_at ?? next.last_seen);
  if (a == null || b == null) return true;
  return b >= a;
}

/**
 * Keeps `obj` under `key` unless the one held is newer; whether it was kept.
 * @template T
 * @param {Map<string, T>} map
 * @param {string} key
 * @param {T} obj
 */
function upsert(map, key, obj) {
  const old = map.get(key);
  if (old && !isNewer(old, obj)) return false;
  map.set(key, obj);
  return true;
}

/**
 * Keeps a task (newer than the one held), and tells.
 * @param {Api.Task} t
 */
export function upsertTask(t) {
  if (!t || !t.id) return;
  const old = state.tasks.get(t.id);
  if (!upsert(state.tasks, t.id, t)) return;
  queueLead(t.project_id);
  if (!old || old.status !== t.status || (old.usage && t.usage && old.usage.cost_usd !== t.usage.cost_usd)) {
    queueCosts();
    queueHourly();
  }
  tell({ kind: 'task', task: t, old });
}

/**
 * Keeps tasks read from a list (children of a session), without telling each.
 * @param {Api.Task[]} list
 */
export function mergeTasks(list) {
  for (const t of list || []) upsert(state.tasks, t.id, t);
}

/**
 * Keeps a launcher as an answer gave it (drain, undrain).
 * @param {Api.Launcher} l
 */
export function saveLauncher(l) {
  if (l && l.id && upsert(state.launchers, l.id, l)) tell({ kind: 'launcher', data: l });
}

/**
 * Replaces the agents with a fresh list (the agents view's reload).
 * @param {Api.AgentInfo[]} list
 */
export function replaceAgents(list) {
  const seen = new Set();
  for (const a of list || []) { state.agents.set(a.name, a); seen.add(a.name); }
  for (const name of [...state.agents.keys()]) if (!seen.has(name)) state.agents.delete(name);
}

/** @param {Api.AgentInfo & {deleted?: boolean}} a */
function upsertAgent(a) {
  if (!a || !a.name) return;
  if (a.deleted) state.agents.delete(a.name);
  else state.agents.set(a.name, { ...(state.agents.get(a.name) || {}), ...a });
}

/** The coordinator said this browser is not logged in: nothing more is read. */
export function markLoggedOut() {
  state.loggedOut = true;
}

/**
 * Applies one event of the fleet stream.
 * @param {{kind: Api.EventKind, data: any}} ev
 */
export function applyEvent(ev) {
  const d = ev.data;
  switch (ev.kind) {
    case 'task': upsertTask(d); return;
    case 'session':
      if (d && d.id) upsert(state.sessions, d.id, d);
      tell({ kind: 'session', session: d });
      return;
    case 'run':
      if (d && d.id) state.runs.set(d.id, d);
      tell({ kind: 'run', run: d });
      return;
    case 'launcher':
      if (d && d.id) upsert(state.launchers, d.id, d);
      break;
    case 'project':
      if (!d || !d.id) return;
      state.projects.set(d.id, d);
      queueLead(d.id);
      break;
    case 'agent': upsertAgent(d); break;
    case 'orchestration':
      if (d && d.id) upsert(state.orchestrations, d.id, d);
      break;
    case 'usage': queueCosts(); return;
    case 'document': break;
    default: return;
  }
  tell({ kind: ev.kind, data: d });
}

/**
 * Reads everything the views show, in one go (the stream is opened first, so
 * nothing falls in the gap). The answers that failed are returned, with why.
 * @returns {Promise<{what: string, err: unknown}[]>}
 */
export async function loadSnapshots() {
  const reads = {
    projects: api('/api/projects'),
    tasks: apiPage(`/api/tasks?limit=${TASK_PAGE}`),
    hourly: api('/api/stats/hourly?hours=24'),
    launchers: api('/api/launchers'),
    agents: api('/api/agents'),
    costs: api('/api/costs'),
    orchestrations: api('/api/orchestrate/tasks'),
  };
  const names = Object.keys(reads);
  const results = await Promise.allSettled(Object.values(reads));
  /** @type {{what: string, err: unknown}[]} */
  const failed = [];
  const got = Object.fromEntries(results.map((r, i) => {
    if (r.status === 'fulfilled') return [names[i], r.value || []];
    failed.push({ what: names[i], err: r.reason });
    return [names[i], null];
  }));
  if (state.loggedOut) return failed;
  for (const p of got.projects || []) state.projects.set(p.id, p);
  for (const t of (got.tasks && got.tasks.items) || []) upsert(state.tasks, t.id, t);
  state.olderTasks = (got.tasks && got.tasks.next) || null;
  if (Array.isArray(got.hourly)) state.hourly = got.hourly;
  for (const l of got.launchers || []) upsert(state.launchers, l.id, l);
  for (const a of got.agents || []) state.agents.set(a.name, a);
  for (const o of got.orchestrations || []) upsert(state.orchestrations, o.id, o);
  if (got.costs && !Array.isArray(got.costs)) state.costs = got.costs;
  state.ready = true;
  fetchLeads([...state.projects.keys()]);
  tell({ kind: 'snapshot' });
  return failed;
}

// Derived data, refetched (debounced) when events say it changed.

const pendingLeads = new Set();
const flushLeads = debounce(() => {
  const ids = [...pendingLeads];
  pendingLeads.clear();
  fetchLeads(ids);
}, 1200, 4000);

/** @param {string[]} ids */
async function fetchLeads(ids) {
  await Promise.all(ids.map(async (id) => {
    try {
      const data = await api(`/api/projects/${enc(id)}/orchestrator`);
      state.leads.set(id, { data, at: Date.now() });
    } catch (err) {
      state.leads.set(id, { error: errorMessage(err) });
    }
  }));
  tell({ kind: 'derived' });
}

/** Reads a project's lead status again, soon. @param {string} id */
export function queueLead(id) {
  if (!id || !state.ready) return;
  pendingLeads.add(id);
  flushLeads();
}

/** How many tasks a page of the list holds. */
const TASK_PAGE = 500;

/** Reads the next page of older tasks. */
export async function loadOlderTasks() {
  if (!state.olderTasks) return;
  const page = await apiPage(`/api/tasks?limit=${TASK_PAGE}&before=${enc(state.olderTasks)}`);
  for (const t of page.items) upsert(state.tasks, t.id, t);
  state.olderTasks = page.next;
  tell({ kind: 'snapshot' });
}

/** Reads the hourly aggregates again, soon. */
export const queueHourly = debounce(async () => {
  if (!state.ready) return;
  try {
    state.hourly = await api('/api/stats/hourly?hours=24');
  } catch (err) {
    if (!isUnauthorized(err)) console.warn('hourly', err);
  }
  tell({ kind: 'derived' });
}, 2000, 10000);

/** Reads the costs again, soon. */
export const queueCosts = debounce(async () => {
  if (!state.ready) return;
  try {
    state.costs = await api('/api/costs');
    state.costsError = null;
  } catch (err) {
    state.costsError = errorMessage(err);
  }
  tell({ kind: 'derived' });
}, 1200, 3000);

/** Reads the conflict radar of every project now. */
export async function fetchRadar() {
  if (!state.ready) return;
  const next = new Map();
  try {
    for (const p of state.projects.values()) {
      const entries = await api(`/api/projects/${enc(p.id)}/radar`);
      for (const e of entries || []) next.set(e.task_id, e.overlaps || []);
    }
    state.radar = next;
    tell({ kind: 'derived' });
  } catch (err) {
    if (!isUnauthorized(err)) console.warn('conflict radar', err);
  }
}

/** Reads the conflict radar again, soon. */
export const queueRadar = debounce(fetchRadar, 1500, 5000);
