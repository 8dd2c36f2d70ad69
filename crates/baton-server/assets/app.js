// Baton dashboard: plain ES2020, no dependencies, served by Baton itself.
//
// Data flow: one EventSource on /api/stream (opened before the first snapshots are
// read, so nothing falls in the gap) keeps a client-side mirror of projects, tasks,
// sessions, runs, launchers, agents and orchestrations up to date. Views render
// from that mirror. Nothing polls: derived data (costs, the leads' status, the
// conflict radar) is refetched, debounced, when events say it changed.
//
// All server text goes into the DOM as text nodes (see `h`); nothing is parsed as HTML.

const STATUSES = ['pending', 'awaiting_approval', 'queued', 'running', 'checking', 'reviewing', 'succeeded', 'failed', 'cancelled', 'blocked', 'paused'];
const FLEET_KINDS = ['task', 'session', 'run', 'launcher', 'project', 'agent', 'document', 'orchestration', 'usage'];
const ALL_KINDS = ['init', 'message', 'tool_call', 'tool_result', 'output', 'usage', 'result', 'raw', 'error', 'log',
  'task', 'session', 'run', 'project', 'agent', 'launcher', 'orchestration', 'document', 'hook'];
const CAN_STOP = new Set(['queued', 'running', 'checking', 'reviewing', 'pending', 'awaiting_approval', 'blocked', 'paused']);
const CAN_RETRY = new Set(['failed', 'cancelled']);
const CAN_RESUME = new Set(['succeeded', 'failed', 'cancelled', 'paused']);
const LIVE = new Set(['running', 'checking']);
const NAV_KEYS = { 1: '#/', 2: '#/board', 3: '#/dag', 4: '#/agents', 5: '#/docs', 6: '#/costs', 7: '#/webhooks', 8: '#/fleet' };
const EVENTS_PAGE = 10000;

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

/** Creates an element. Children that are not nodes become text nodes. */
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

// The SVG namespace, spelled so that the asset contains no absolute URL (it loads nothing from elsewhere).
const SVG_NS = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');
/** Creates an SVG element. */
function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

/**
 * Hourly buckets of the last `hours` hours, oldest first, each with its series' sums.
 * @param {number} hours
 * @returns {{start: number, label: string, parts: Map<string, number>}[]}
 */
function hourBuckets(hours) {
  const now = Date.now();
  const first = Math.floor(now / 3600e3) * 3600e3 - (hours - 1) * 3600e3;
  return Array.from({ length: hours }, (_, i) => {
    const start = first + i * 3600e3;
    return { start, label: new Date(start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), parts: new Map() };
  });
}

/**
 * Adds `value` to `series` in the bucket holding the instant `at` (ms), if any.
 * @param {{start: number, parts: Map<string, number>}[]} buckets
 * @param {number | null} at
 * @param {string} series
 * @param {number} value
 */
function addAt(buckets, at, series, value) {
  if (at == null || !buckets.length) return;
  const i = Math.floor((at - buckets[0].start) / 3600e3);
  if (i < 0 || i >= buckets.length) return;
  buckets[i].parts.set(series, (buckets[i].parts.get(series) || 0) + value);
}

/**
 * A bar chart drawn with the page's own SVG: a bar per bucket, stacked by series,
 * each part with its value on hover, and a legend when there are several series.
 * @param {string} label what it shows, for the caption and screen readers
 * @param {{label: string, parts: Map<string, number>}[]} buckets
 * @param {(n: number) => string} format
 * @param {(series: string, index: number) => string} [colorOf] a class giving a series its color
 */
function barChart(label, buckets, format, colorOf = (_, i) => `series-${i % 6}`) {
  const W = 600, H = 150, left = 60, bottom = 18, top = 6;
  const series = [...new Set(buckets.flatMap((b) => [...b.parts.keys()]))].sort();
  const totals = buckets.map((b) => [...b.parts.values()].reduce((a, v) => a + v, 0));
  const max = Math.max(0, ...totals);
  const scale = max ? (H - bottom - top) / max : 0;
  const bw = (W - left) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => {
    let y = H - bottom;
    return series.filter((k) => b.parts.get(k)).map((k) => {
      const v = b.parts.get(k);
      const height = Math.max(1, v * scale);
      y -= height;
      return s('rect', { x: (left + i * bw + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: height.toFixed(1), class: `series ${colorOf(k, series.indexOf(k))}` },
        s('title', null, `${b.label} · ${k}: ${format(v)}`));
    });
  });
  const sum = totals.reduce((a, v) => a + v, 0);
  return h('figure', { class: 'chart', 'data-chart': label },
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${label}: ${format(sum)} in all, at most ${format(max)} in an hour` },
      s('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: 'axis' }),
      s('text', { x: left - 4, y: top + 8, class: 'tick', 'text-anchor': 'end' }, format(max)),
      s('text', { x: left - 4, y: H - bottom, class: 'tick', 'text-anchor': 'end' }, format(0)),
      buckets.length ? s('text', { x: left, y: H - 4, class: 'tick' }, buckets[0].label) : null,
      buckets.length ? s('text', { x: W, y: H - 4, class: 'tick', 'text-anchor': 'end' }, buckets[buckets.length - 1].label) : null,
      bars),
    h('figcaption', null, label,
      series.length > 1 ? h('span', { class: 'legend' }, series.map((k, i) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${colorOf(k, i)}`, 'aria-hidden': 'true' }), k))) : null));
}

function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'style') el.style.cssText = v; // through the CSSOM: allowed by the page's CSP
    else if (k === 'value') el.value = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === '') continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const enc = encodeURIComponent;
const docPath = (name) => String(name).split('/').map(enc).join('/');
const docHref = (name) => '#/docs/' + docPath(name);
const taskHref = (id) => '#/tasks/' + enc(id);

function ms(ts) {
  if (ts == null) return null;
  const n = typeof ts === 'number' ? ts : Date.parse(ts);
  return Number.isFinite(n) ? n : null;
}

function relTime(ts) {
  const t = ms(ts);
  if (t == null) return '—';
  const d = (Date.now() - t) / 1000;
  if (d < -5) return 'in ' + duration(-d * 1000);
  if (d < 10) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  if (d < 86400 * 30) return `${Math.floor(d / 86400)} d ago`;
  return new Date(t).toLocaleDateString();
}

function duration(msec) {
  if (msec == null || !Number.isFinite(msec)) return '—';
  let sec = Math.max(0, Math.floor(msec / 1000));
  if (sec < 60) return `${sec}s`;
  const d = Math.floor(sec / 86400); sec -= d * 86400;
  const hr = Math.floor(sec / 3600); sec -= hr * 3600;
  const m = Math.floor(sec / 60); sec -= m * 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  return `${m}m ${sec}s`;
}

function clock(ts) {
  const t = ms(ts);
  if (t == null) return '';
  const d = new Date(t);
  const p = (n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtCost(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  const v = Number(n);
  return '$' + (Math.abs(v) < 1 ? v.toFixed(4) : v.toFixed(2));
}

function fmtTokens(n) {
  n = Number(n) || 0;
  if (n < 1000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + 'k';
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + 'M';
}

function fmtBytes(n) {
  n = Number(n) || 0;
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

const shortSha = (sha) => (sha ? String(sha).slice(0, 7) : '');
const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;

function truncate(text, n) {
  const t = String(text ?? '');
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

function oneLine(v, n = 140) {
  let t;
  if (v == null) t = '';
  else if (typeof v === 'string') t = v;
  else { try { t = JSON.stringify(v); } catch { t = String(v); } }
  return truncate(t.replace(/\s+/g, ' ').trim(), n);
}

/** A tool output (string, content blocks or any JSON) as readable text. */
function textOf(v) {
  if (v == null) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((b) => b && typeof b === 'object' && typeof b.text === 'string')) {
    return v.map((b) => b.text).join('\n');
  }
  if (typeof v === 'object' && typeof v.content === 'string' && Object.keys(v).length <= 3) return v.content;
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

function pretty(v) {
  if (typeof v === 'string') return v;
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

const MAX_TEXT = 200000;
function capText(t) {
  t = String(t ?? '');
  return t.length > MAX_TEXT ? t.slice(0, MAX_TEXT) + `\n… (${t.length - MAX_TEXT} more characters)` : t;
}

/** Calls `fn` once calls stop for `wait` ms — or, under a steady flood of calls, at
 * least every `maxWait` ms, so a busy stream never starves it. */
function debounce(fn, wait, maxWait = Infinity) {
  let timer = null;
  let first = 0;
  const d = (...args) => {
    const now = Date.now();
    if (!first) first = now;
    clearTimeout(timer);
    const delay = Math.min(wait, Math.max(0, first + maxWait - now));
    timer = setTimeout(() => { timer = null; first = 0; fn(...args); }, delay);
  };
  d.cancel = () => { clearTimeout(timer); timer = null; first = 0; };
  return d;
}

function isNewer(old, next) {
  if (!old) return true;
  const a = ms(old.updated_at ?? old.last_seen);
  const b = ms(next.updated_at ?? next.last_seen);
  if (a == null || b == null) return true;
  return b >= a;
}

// Elements that show time relative to now; refreshed locally (no network).
function rel(ts, attrs = {}) {
  if (ts == null) return h('span', { class: 'muted' }, '—');
  return h('time', { ...attrs, datetime: ts, 'data-rel': ts, title: new Date(ms(ts)).toLocaleString() }, relTime(ts));
}

function since(from, until) {
  if (from == null) return h('span', { class: 'muted' }, '—');
  if (until != null) return h('span', { title: `from ${from} to ${until}` }, duration(ms(until) - ms(from)));
  return h('span', { 'data-since': from, title: `since ${from}` }, duration(Date.now() - ms(from)));
}

// A local clock for the times shown (no network): elapsed times every second,
// "3 min ago" texts every 15 seconds.
function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}
let ticks = 0;
function tickRelative() {
  ticks++;
  if (ticks % 15 === 0) for (const el of document.querySelectorAll('[data-rel]')) setText(el, relTime(el.getAttribute('data-rel')));
  for (const el of document.querySelectorAll('[data-since]')) setText(el, duration(Date.now() - ms(el.getAttribute('data-since'))));
  for (const el of document.querySelectorAll('[data-ago-ms]')) {
    const base = Number(el.getAttribute('data-ago-ms'));
    const at = Number(el.getAttribute('data-ago-at'));
    setText(el, duration(base + (Date.now() - at)) + ' ago');
  }
}
setInterval(tickRelative, 1000);

// ---------------------------------------------------------------------------
// API access and errors
// ---------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * Calls the coordinator's API; the parsed JSON answer, or an ApiError.
 * @param {string} path
 * @param {{method?: string, body?: unknown}} [options]
 * @returns {Promise<any>}
 */
async function api(path, { method = 'GET', body } = {}) {
  /** @type {RequestInit & {headers: Record<string, string>}} */
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['content-type'] = 'application/json';
    init.body = JSON.stringify(body ?? {});
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'Baton could not be reached (is `baton up` still running?)');
  }
  if (res.status === 401) {
    showLoggedOut();
    throw new ApiError(401, 'unauthorized', 'Not logged in.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const e = json && typeof json === 'object' ? json.error : null;
    const message = (e && e.message) || `the server answered ${res.status} ${res.statusText}`.trim();
    throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, message, e ? e.details : undefined);
  }
  return json;
}

function errorMessage(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.message) return err.message;
  return String(err);
}

/** The particulars of an error worth listing (conflicting files, candidates, a cycle). */
function errorList(err) {
  const d = err && err.details;
  if (!d || typeof d !== 'object') return null;
  const pick = (arr, label) => (Array.isArray(arr) && arr.length ? { label, items: arr.map(String) } : null);
  return pick(d.files, err.code === 'merge_conflict' ? 'Conflicting files:' : 'Files:')
    || pick(d.candidates, 'It matches more than one:')
    || pick(d.cycle, 'The dependency cycle:')
    || pick(d.uncommitted, 'Uncommitted files:')
    || pick(d.unmerged_commits, 'Unmerged commits:');
}

/** Nodes that say what went wrong, in plain words. */
/** A box saying what could not be done, and why. */
function errorBox(verb, err) {
  return h('div', { class: 'error-box', 'data-error': '' }, errorNodes(verb, err));
}

function errorNodes(verb, err) {
  const msg = errorMessage(err);
  const text = verb ? `Could not ${verb}: ${msg}` : msg;
  const list = errorList(err);
  return [
    h('p', { class: 'err-text' }, text),
    list && h('p', { class: 'err-label' }, list.label),
    list && h('ul', { class: 'err-files' }, list.items.map((f) => h('li', null, h('code', null, f)))),
  ];
}

function toast(kind, nodes, timeout) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-error': kind === 'error' ? '' : null },
    h('div', { class: 'toast-body' }, nodes), close);
  close.addEventListener('click', () => t.remove());
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
  if (timeout) setTimeout(() => t.remove(), timeout);
}

function toastError(verb, err) {
  if (err instanceof ApiError && err.status === 401) return;
  toast('error', errorNodes(verb, err), 20000);
}

function toastOk(text) {
  toast('ok', [h('p', null, text)], 5000);
}

let loggedOutShown = false;
function showLoggedOut() {
  if (loggedOutShown) return;
  loggedOutShown = true;
  S.loggedOut = true;
  if (fleet) fleet.close();
  if (current && current.view.unmount) current.view.unmount();
  document.body.replaceChildren(
    h('div', { class: 'logged-out', 'data-logged-out': '', role: 'alert' },
      h('p', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◆'), ' Baton'),
      h('p', { class: 'logged-out-msg' }, 'Not logged in. Run ', h('code', null, '`baton dashboard`'), ' in the repository for a login link.'),
      h('p', { class: 'muted small' }, 'The link logs this browser in once; then reload this page.')));
}

// ---------------------------------------------------------------------------
// Client state: a mirror of the coordinator, kept current by the live stream
// ---------------------------------------------------------------------------

const S = {
  ready: false,
  loggedOut: false,
  projects: new Map(),
  tasks: new Map(),
  sessions: new Map(),
  runs: new Map(),
  launchers: new Map(),
  agents: new Map(),
  orchestrations: new Map(),
  leads: new Map(), // project id -> {data, at} | {error}
  radar: new Map(), // task id -> overlaps
  costs: null,
  costsError: null,
  lastFleetId: null,
};

function upsert(map, key, obj) {
  const old = map.get(key);
  if (old && !isNewer(old, obj)) return false;
  map.set(key, obj);
  return true;
}

/** @param {Api.Task} t */
function upsertTask(t) {
  if (!t || !t.id) return;
  const old = S.tasks.get(t.id);
  if (!upsert(S.tasks, t.id, t)) return;
  queueLead(t.project_id);
  if (current && current.name === 'board') queueRadar();
  if (!old || old.status !== t.status || (old.usage && t.usage && old.usage.cost_usd !== t.usage.cost_usd)) queueCosts();
  if (current && current.view.onTask) current.view.onTask(t, old);
  scheduleRender();
}

/** @param {Api.AgentInfo & {deleted?: boolean}} a */
function upsertAgent(a) {
  if (!a || !a.name) return;
  if (a.deleted) S.agents.delete(a.name);
  else S.agents.set(a.name, { ...(S.agents.get(a.name) || {}), ...a });
  scheduleRender();
}

/** Applies one event of the fleet stream. */
function applyEvent(ev) {
  const d = ev.data;
  switch (ev.kind) {
    case 'task': upsertTask(d); break;
    case 'session':
      if (d && d.id) upsert(S.sessions, d.id, d);
      if (current && current.view.onSession) current.view.onSession(d);
      break;
    case 'run':
      if (d && d.id) S.runs.set(d.id, d);
      if (current && current.view.onRun) current.view.onRun(d);
      if (current && current.name === 'agents') current.view.reload();
      break;
    case 'launcher':
      if (d && d.id && upsert(S.launchers, d.id, d)) scheduleRender();
      if (current && current.name === 'agents') current.view.reload();
      break;
    case 'project':
      if (d && d.id) { S.projects.set(d.id, d); queueLead(d.id); scheduleRender(); }
      break;
    case 'agent':
      upsertAgent(d);
      if (current && current.name === 'agents') current.view.reload();
      break;
    case 'orchestration':
      if (d && d.id && upsert(S.orchestrations, d.id, d)) scheduleRender();
      break;
    case 'usage':
      queueCosts();
      break;
    case 'document':
      if (current && current.view.onDocument) current.view.onDocument(d);
      break;
    default:
      break;
  }
}

// Derived data, refetched (debounced) when events say it changed.

const pendingLeads = new Set();
const flushLeads = debounce(() => {
  const ids = [...pendingLeads];
  pendingLeads.clear();
  fetchLeads(ids);
}, 1200, 4000);
async function fetchLeads(ids) {
  await Promise.all(ids.map(async (id) => {
    try {
      const data = await api(`/api/projects/${enc(id)}/orchestrator`);
      S.leads.set(id, { data, at: Date.now() });
    } catch (err) {
      S.leads.set(id, { error: errorMessage(err) });
    }
  }));
  scheduleRender();
}
function queueLead(id) {
  if (!id || !S.ready) return;
  pendingLeads.add(id);
  flushLeads();
}

const queueCosts = debounce(async () => {
  if (!S.ready) return;
  try {
    S.costs = await api('/api/costs');
    S.costsError = null;
  } catch (err) {
    S.costsError = errorMessage(err);
  }
  scheduleRender();
}, 1200, 3000);

async function fetchRadar() {
  if (!S.ready) return;
  const next = new Map();
  try {
    for (const p of S.projects.values()) {
      const entries = await api(`/api/projects/${enc(p.id)}/radar`);
      for (const e of entries || []) next.set(e.task_id, e.overlaps || []);
    }
    S.radar = next;
    scheduleRender();
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) console.warn('conflict radar', err);
  }
}
const queueRadar = debounce(fetchRadar, 1500, 5000);

// ---------------------------------------------------------------------------
// The live stream
// ---------------------------------------------------------------------------

let fleet = null;
let fleetBuffer = [];
let fleetBackoff = 1000;

function setLive(state) {
  const el = document.getElementById('live');
  if (!el) return;
  el.setAttribute('data-live', state);
  const label = el.querySelector('.live-label');
  if (label) label.textContent = state === 'connected' ? 'live' : state;
  el.title = state === 'connected' ? 'Live updates are on' : 'Live updates are reconnecting';
}

function openFleet() {
  if (S.loggedOut) return;
  let url = '/api/stream?kinds=' + FLEET_KINDS.join(',');
  const resumeFrom = S.lastFleetId;
  if (resumeFrom != null) url += '&after=' + resumeFrom;
  const es = new EventSource(url, { withCredentials: true });
  fleet = es;
  let hadError = false;
  es.onopen = () => {
    setLive('connected');
    fleetBackoff = 1000;
    if (hadError && S.ready) { queueCosts(); for (const id of S.projects.keys()) queueLead(id); }
  };
  es.onerror = () => {
    if (S.loggedOut || fleet !== es) return;
    hadError = true;
    setLive('reconnecting');
    if (es.readyState === EventSource.CLOSED) {
      // The browser gave up (a non-200 answer): find out why, then reopen.
      setTimeout(async () => {
        try { await api('/healthz'); await api('/api/projects'); } catch { /* shown or retried */ }
        if (S.loggedOut) return;
        fleetBackoff = Math.min(fleetBackoff * 2, 30000);
        openFleet();
        if (resumeFrom == null && S.lastFleetId == null && S.ready) loadSnapshots();
      }, fleetBackoff);
    }
  };
  for (const kind of FLEET_KINDS) {
    es.addEventListener(kind, (m) => {
      if (fleet !== es) return;
      let ev;
      try { ev = JSON.parse(m.data); } catch { return; }
      const id = Number(m.lastEventId) || ev.id;
      // A stream reopened with `after` replays from there on its own reconnects: skip what was seen.
      if (id && S.lastFleetId != null && id <= S.lastFleetId) return;
      if (id) S.lastFleetId = id;
      if (S.ready) applyEvent(ev);
      else fleetBuffer.push(ev);
    });
  }
}

async function loadSnapshots() {
  const names = ['projects', 'tasks', 'launchers', 'agents', 'costs', 'orchestrations'];
  const results = await Promise.allSettled([
    api('/api/projects'),
    api('/api/tasks?limit=1000'),
    api('/api/launchers'),
    api('/api/agents'),
    api('/api/costs'),
    api('/api/orchestrate/tasks'),
  ]);
  if (S.loggedOut) return;
  const [projects, tasks, launchers, agents, costs, orchs] = results.map((r, i) => {
    if (r.status === 'fulfilled') return r.value || [];
    toastError(`load ${names[i]}`, r.reason);
    return null;
  });
  for (const p of projects || []) S.projects.set(p.id, p);
  for (const t of tasks || []) upsert(S.tasks, t.id, t);
  for (const l of launchers || []) upsert(S.launchers, l.id, l);
  for (const a of agents || []) S.agents.set(a.name, a);
  for (const o of orchs || []) upsert(S.orchestrations, o.id, o);
  if (costs && !Array.isArray(costs)) S.costs = costs;
  S.ready = true;
  const buffered = fleetBuffer;
  fleetBuffer = [];
  for (const ev of buffered) applyEvent(ev);
  fetchLeads([...S.projects.keys()]);
  if (current && current.name === 'board') fetchRadar();
  scheduleRender();
}

// ---------------------------------------------------------------------------
// Rendering, routing and keyboard
// ---------------------------------------------------------------------------

let current = null; // {name, view, root}
let renderQueued = false;
let lastRender = 0;
const RENDER_GAP_MS = 200; // under a flood of events, views re-render at most ~5 times a second

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, RENDER_GAP_MS - (performance.now() - lastRender));
  setTimeout(() => requestAnimationFrame(() => {
    renderQueued = false;
    lastRender = performance.now();
    updateSpend();
    if (current && current.view.refresh && !S.loggedOut) current.view.refresh();
  }), wait);
}

function updateSpend() {
  const el = document.getElementById('spend');
  if (el) el.textContent = S.costs ? `Spent ${fmtCost(S.costs.total && S.costs.total.cost_usd)}` : '';
}

/** Re-renders `root` with `build()`, keeping focus and open <details>. */
function rerender(root, build) {
  const active = document.activeElement;
  const focusEl = active && root.contains(active) ? active.closest('[data-focus-key]') : null;
  const focusKey = focusEl && focusEl.getAttribute('data-focus-key');
  const open = new Set([...root.querySelectorAll('details[data-key]')].map((d) => `${d.getAttribute('data-key')}|${d.open ? 1 : 0}`));
  root.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const d of root.querySelectorAll('details[data-key]')) {
    const k = d.getAttribute('data-key');
    if (open.has(`${k}|1`)) d.open = true;
    else if (open.has(`${k}|0`)) d.open = false;
  }
  if (focusKey) {
    const el = root.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (el) el.focus({ preventScroll: true });
  }
}

function parseHash() {
  let raw = location.hash.replace(/^#/, '');
  if (!raw.startsWith('/')) raw = '/' + raw;
  const path = raw.split('?')[0];
  let parts;
  try {
    parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  } catch {
    return { name: 'notfound', params: { path } };
  }
  if (!parts.length || (parts[0] === 'overview' && parts.length === 1)) return { name: 'overview', params: {} };
  const [first, ...rest] = parts;
  if (['board', 'dag', 'agents', 'costs', 'webhooks', 'fleet'].includes(first) && !rest.length) return { name: first, params: {} };
  if (first === 'docs') return { name: 'docs', params: { doc: rest.length ? rest.join('/') : null } };
  if (first === 'tasks' && rest.length >= 1 && rest.length <= 2) return { name: 'task', params: { id: rest[0], tab: rest[1] || null } };
  return { name: 'notfound', params: { path } };
}

const VIEWS = {
  overview: OverviewView,
  board: BoardView,
  dag: DagView,
  task: TaskView,
  agents: AgentsView,
  docs: DocsView,
  costs: CostsView,
  webhooks: WebhooksView,
  fleet: FleetView,
  notfound: NotFoundView,
};
const NAV_OF = { overview: 'overview', board: 'board', dag: 'dag', agents: 'agents', docs: 'docs', costs: 'costs', webhooks: 'webhooks', fleet: 'fleet', task: null };

function route() {
  if (S.loggedOut) return;
  const r = parseHash();
  if (current && current.name === r.name && current.view.update && current.view.update(r.params) !== false) {
    markNav(r.name);
    return;
  }
  if (current && current.view.unmount) current.view.unmount();
  const main = document.getElementById('main');
  const root = h('section', { 'data-view': r.name, class: `view view-${r.name}` });
  main.replaceChildren(root);
  const view = VIEWS[r.name]();
  current = { name: r.name, view, root };
  markNav(r.name);
  document.title = `${view.title || 'Baton'} · Baton`;
  const hadFocus = document.activeElement && document.activeElement !== document.body && document.contains(document.activeElement);
  view.mount(root, r.params);
  window.scrollTo(0, 0);
  if (!hadFocus) main.focus({ preventScroll: true });
}

function markNav(name) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.getAttribute('data-nav') === NAV_OF[name]) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function go(hash) {
  if (location.hash === hash || (hash === '#/' && (location.hash === '' || location.hash === '#'))) route();
  else location.hash = hash;
}

const navStack = [];
function currentHash() {
  return location.hash && location.hash !== '#' ? location.hash : '#/';
}
function onHashChange() {
  const now = currentHash();
  if (navStack.length >= 2 && navStack[navStack.length - 2] === now) navStack.pop();
  else if (navStack[navStack.length - 1] !== now) navStack.push(now);
  route();
}
function goBack() {
  if (navStack.length > 1) history.back();
  else if (parseHash().name !== 'overview') go('#/');
}

function isTyping(t) {
  return t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

function onKeyDown(e) {
  if (S.loggedOut) return;
  const t = e.target;
  if (e.key === 'Escape') {
    if (isTyping(t)) { t.blur(); return; }
    if (e.defaultPrevented) return;
    e.preventDefault();
    goBack();
    return;
  }
  if (e.ctrlKey || e.metaKey || e.altKey || isTyping(t)) return;
  if ((e.key === 'Enter' || e.key === ' ') && t instanceof Element && t.matches('[data-href]')) {
    e.preventDefault();
    go(t.getAttribute('data-href'));
    return;
  }
  if (NAV_KEYS[e.key]) {
    e.preventDefault();
    go(NAV_KEYS[e.key]);
    return;
  }
  if (e.key === '/' && current && current.name === 'docs') {
    e.preventDefault();
    current.view.focusSearch();
  }
}

function onClick(e) {
  const el = e.target instanceof Element ? e.target.closest('[data-href]') : null;
  if (!el || e.defaultPrevented || e.button !== 0) return;
  const inner = e.target.closest('a, button, input, select, textarea, summary, label, details');
  if (inner && el.contains(inner) && inner !== el) return;
  const sel = window.getSelection && window.getSelection();
  if (sel && String(sel).length > 0 && el.contains(sel.anchorNode)) return;
  go(el.getAttribute('data-href'));
}

// ---------------------------------------------------------------------------
// Shared pieces of views
// ---------------------------------------------------------------------------

function badge(status, attrs = {}) {
  return h('span', { ...attrs, class: `badge st-${status}` }, status);
}

function projectName(id) {
  const p = S.projects.get(id);
  return p ? p.name : id;
}

function loading(text = 'Loading…') {
  return h('p', { class: 'loading' }, text);
}

function empty(text) {
  return h('p', { class: 'empty' }, text);
}

function sectionHead(title, ...extra) {
  return h('div', { class: 'section-head' }, h('h2', null, title), extra);
}

function tasksSorted(filter) {
  const out = [];
  for (const t of S.tasks.values()) if (!filter || filter(t)) out.push(t);
  out.sort((a, b) => (ms(b.updated_at) || 0) - (ms(a.updated_at) || 0));
  return out;
}

function projectSelect(value, onChange, key) {
  const sel = h('select', { 'data-input': key, 'aria-label': 'Project', class: 'select' },
    h('option', { value: '' }, 'All projects'),
    [...S.projects.values()].map((p) => h('option', { value: p.id }, p.name)));
  sel.value = S.projects.has(value) ? value : '';
  sel.addEventListener('change', () => onChange(sel.value));
  return sel;
}

function refreshProjectSelect(sel, value) {
  const want = ['', ...S.projects.keys()].join('|');
  const have = [...sel.options].map((o) => o.value).join('|');
  if (want !== have) {
    sel.replaceChildren(h('option', { value: '' }, 'All projects'),
      [...S.projects.values()].map((p) => h('option', { value: p.id }, p.name)));
  }
  sel.value = S.projects.has(value) ? value : '';
}

async function approveTask(id, btn) {
  const t = S.tasks.get(id);
  if (btn) { btn.disabled = true; btn.textContent = 'Approving…'; }
  try {
    const task = await api(`/api/tasks/${enc(id)}/approve`, { method: 'POST', body: {} });
    upsertTask(task);
    toastOk(`Approved “${t ? t.title : id}”; it is queued.`);
  } catch (err) {
    toastError(`approve “${t ? t.title : id}”`, err);
    if (btn) { btn.disabled = false; btn.textContent = 'Approve'; }
  }
}

/**
 * A table row for a task, linking to it.
 * @param {Api.Task} t
 * @param {unknown} cells
 */
function taskRow(t, cells) {
  return h('tr', { 'data-task-id': t.id, 'data-href': taskHref(t.id), class: 'row-link' }, cells);
}

/** @param {Api.Task} t */
function taskTitleLink(t) {
  return h('a', { href: taskHref(t.id), 'data-focus-key': 'task:' + t.id }, t.title || t.id);
}

/**
 * A compact block for a task in a list (children, dependencies, next wave).
 * @param {Api.Task | undefined} t
 * @param {string} [id]
 */
function taskChip(t, id) {
  if (!t) {
    return h('li', { class: 'chip', 'data-task-id': id },
      h('a', { href: taskHref(id) }, h('code', null, id)), ' ', h('span', { class: 'muted' }, 'unknown'));
  }
  return h('li', { class: 'chip', 'data-task-id': t.id },
    badge(t.status), ' ', h('a', { href: taskHref(t.id) }, t.title || t.id), ' ', h('code', { class: 'muted' }, t.id));
}

// ---------------------------------------------------------------------------
// Overview
// ---------------------------------------------------------------------------

function OverviewView() {
  let root;
  function build() {
    if (!S.ready) return loading();
    const counts = new Map();
    let running = 0;
    for (const t of S.tasks.values()) {
      let c = counts.get(t.project_id);
      if (!c) counts.set(t.project_id, (c = {}));
      c[t.status] = (c[t.status] || 0) + 1;
      if (LIVE.has(t.status)) running++;
    }
    const live = tasksSorted((t) => LIVE.has(t.status)).sort((a, b) => (ms(a.started_at) || 0) - (ms(b.started_at) || 0));
    const attention = tasksSorted((t) => t.status === 'awaiting_approval' || t.status === 'blocked' || t.status === 'failed' || t.status === 'paused').slice(0, 12);
    const launchers = [...S.launchers.values()].sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name) : a.status === 'online' ? -1 : 1));
    const orchs = [...S.orchestrations.values()].sort((a, b) => (ms(b.updated_at) || 0) - (ms(a.updated_at) || 0)).slice(0, 8);

    return [
      h('div', { class: 'page-head' },
        h('h1', null, 'Overview'),
        h('p', { class: 'muted' },
          `${plural(S.tasks.size, 'task')} · ${running} running · ${plural(S.projects.size, 'project')} · `,
          `${[...S.launchers.values()].filter((l) => l.status === 'online').length} of ${plural(S.launchers.size, 'launcher')} online`,
          S.costs ? ` · spent ${fmtCost(S.costs.total && S.costs.total.cost_usd)}` : '')),

      h('section', { class: 'block' },
        sectionHead('Projects'),
        S.projects.size
          ? h('div', { class: 'project-grid' }, [...S.projects.values()].map((p) => projectCard(p, counts.get(p.id) || {})))
          : empty('No projects yet. `baton up` registers the repository it starts in.')),

      h('section', { class: 'block' },
        sectionHead('Running agents', h('span', { class: 'count' }, String(live.length))),
        live.length ? runningTable(live) : empty('No agent is working right now.')),

      attention.length ? h('section', { class: 'block' },
        sectionHead('Needs attention'),
        h('ul', { class: 'attention' }, attention.map(attentionItem))) : null,

      h('section', { class: 'block' },
        sectionHead('The last 24 hours'),
        h('div', { class: 'two-col' }, activityCharts())),

      h('section', { class: 'block' },
        sectionHead('Launchers'),
        launchers.length ? launcherTable(launchers) : empty('No launcher has registered. `baton up` embeds one; `baton launcher` runs one elsewhere.')),

      orchs.length ? h('section', { class: 'block' },
        sectionHead('Orchestrations'),
        orchTable(orchs)) : null,
    ];
  }

  /** Tasks finished per hour, and how many waited to start at each hour's end. */
  function activityCharts() {
    const finished = hourBuckets(24);
    const waiting = hourBuckets(24);
    for (const t of S.tasks.values()) {
      if (t.finished_at) addAt(finished, ms(t.finished_at), t.status, 1);
      const from = ms(t.created_at);
      const until = ms(t.started_at) || ms(t.finished_at) || Infinity;
      for (const b of waiting) {
        const end = b.start + 3600e3;
        if (from <= end && until > end) b.parts.set('waiting', (b.parts.get('waiting') || 0) + 1);
      }
    }
    const count = (n) => String(Math.round(n));
    return [barChart('Tasks finished per hour', finished, count, (st) => `fill-${st}`), barChart('Queue depth (tasks waiting to start)', waiting, count, () => 'fill-queued')];
  }

  function projectCard(p, c) {
    const lead = S.leads.get(p.id);
    const ld = lead && lead.data;
    const total = Object.values(c).reduce((a, b) => a + b, 0);
    return h('article', { class: 'card project-card', 'data-project-id': p.id },
      h('div', { class: 'card-top' },
        h('h3', null, p.name),
        ld ? h('span', { class: `badge lead-${ld.status}`, 'data-lead-status': ld.status, title: 'The lead’s status, from its last heartbeat' }, `lead ${ld.status}`) : null,
        ld && ld.isRunning ? h('span', { class: `tag ${ld.isHealthy ? 'ok' : 'warn'}` }, ld.isHealthy ? 'healthy' : 'needs attention') : null),
      h('p', { class: 'muted small mono', title: p.path }, p.path, ' · ', p.default_branch),
      lead && lead.error ? h('p', { class: 'small warn-text' }, `Lead status unavailable: ${lead.error}`) : null,
      ld ? h('p', { class: 'small', 'data-last-poll': ld.lastPoll || '' },
        'Last heartbeat: ',
        !ld.lastPoll ? h('span', { class: 'muted' }, 'never')
          : ld.timeSinceLastPoll != null
            ? h('span', { 'data-ago-ms': ld.timeSinceLastPoll, 'data-ago-at': lead.at, title: new Date(ms(ld.lastPoll)).toLocaleString() }, duration(ld.timeSinceLastPoll + (Date.now() - lead.at)) + ' ago')
            : rel(ld.lastPoll),
        ld.lastPoll ? h('span', { class: 'muted' }, ` (at ${new Date(ms(ld.lastPoll)).toLocaleTimeString()})`) : null,
        ld.source ? [' from ', h('strong', null, ld.source)] : null) : (lead ? null : h('p', { class: 'small muted' }, 'Lead status: loading…')),
      // Counted here from the live tasks (the lead's own figures are fetched at most every few seconds).
      h('p', { class: 'small muted', 'data-project-progress': p.id },
        `${total} total · ${c.succeeded || 0} completed · ${(c.queued || 0) + (c.running || 0) + (c.checking || 0)} in progress · ${(c.pending || 0) + (c.awaiting_approval || 0)} to do`),
      h('ul', { class: 'counts', 'aria-label': 'Tasks by status' },
        STATUSES.map((st) => h('li', { class: c[st] ? '' : 'zero' }, badge(st), h('span', { class: 'n' }, String(c[st] || 0))))),
      ld && ld.state && ld.state.nextWave && ld.state.nextWave.length
        ? h('div', { class: 'small' }, h('span', { class: 'muted' }, 'Next wave: '),
          h('ul', { class: 'chips' }, ld.state.nextWave.slice(0, 8).map((id) => taskChip(S.tasks.get(id), id))))
        : null,
      total ? null : h('p', { class: 'small muted' }, 'No tasks yet.'));
  }

  function runningTable(list) {
    return h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Task', 'Status', 'Agent', 'Branch', 'Last commit', 'Elapsed', 'Cost'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((t) => taskRow(t, [
        h('td', null, taskTitleLink(t), h('div', { class: 'muted small mono' }, t.id)),
        h('td', null, badge(t.status)),
        h('td', null, t.agent),
        h('td', { class: 'mono small' }, (t.git && t.git.branch) || h('span', { class: 'muted' }, '—')),
        h('td', { class: 'mono small' }, (t.git && shortSha(t.git.head)) || h('span', { class: 'muted' }, '—')),
        h('td', null, since(t.started_at)),
        h('td', { class: 'num' }, fmtCost(t.usage && t.usage.cost_usd)),
      ]))));
  }

  function attentionItem(t) {
    return h('li', { class: 'attention-item', 'data-task-id': t.id },
      badge(t.status), ' ', taskTitleLink(t),
      t.reason ? h('span', { class: 'muted small' }, ' — ', truncate(t.reason, 160)) : null,
      t.status === 'awaiting_approval'
        ? h('button', { type: 'button', class: 'btn small primary', 'data-action': 'approve', 'data-focus-key': 'approve:' + t.id, onclick: (e) => approveTask(t.id, e.currentTarget) }, 'Approve')
        : null);
  }

  function launcherTable(list) {
    return h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Name', 'Host', 'Status', 'Slots in use', 'Executors', 'Version', 'Last seen'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((l) => {
        const used = (l.running || []).length;
        const pct = l.slots ? Math.min(100, Math.round((used / l.slots) * 100)) : 0;
        return h('tr', { 'data-launcher-id': l.id },
          h('td', null, h('strong', null, l.name)),
          h('td', { class: 'mono small' }, l.hostname),
          h('td', null, h('span', { class: `badge launcher-${l.status}` }, l.status)),
          h('td', null, h('span', { class: 'slots' }, `${used} / ${l.slots}`),
            h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span', { style: `width:${pct}%` }))),
          h('td', { class: 'small' }, (l.executors || []).join(', ')),
          h('td', { class: 'small mono' }, l.version),
          h('td', null, rel(l.last_seen)));
      })));
  }

  function orchTable(list) {
    return h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Description', 'Status', 'Subtasks', 'Planner', 'Updated'].map((c) => h('th', null, c)))),
      h('tbody', null, list.map((o) => {
        const subs = o.subtasks || [];
        const done = subs.filter((x) => x.status === 'succeeded').length;
        const planner = o.planner_task && S.tasks.get(o.planner_task);
        return h('tr', { 'data-orchestration-id': o.id },
          h('td', null, truncate(o.description, 120)),
          h('td', null, h('span', { class: `badge orch-${o.status}` }, o.status)),
          h('td', null, subs.length ? `${done} / ${subs.length} done` : '—'),
          h('td', null, o.planner_task ? h('a', { href: taskHref(o.planner_task) }, planner ? planner.title : o.planner_task) : o.planner),
          h('td', null, rel(o.updated_at)));
      })));
  }

  return {
    title: 'Overview',
    mount(r) { root = r; this.refresh(); },
    refresh() { rerender(root, build); },
  };
}

// ---------------------------------------------------------------------------
// Board
// ---------------------------------------------------------------------------

const boardPrefs = { project: '', filter: '' };
const COLUMN_CAP = 150;

function BoardView() {
  let root, content, sel, input;
  function matches(t) {
    if (boardPrefs.project && t.project_id !== boardPrefs.project) return false;
    const f = boardPrefs.filter.trim().toLowerCase();
    if (!f) return true;
    return (t.title || '').toLowerCase().includes(f) || t.id.includes(f) || (t.agent || '').toLowerCase().includes(f)
      || ((t.git && t.git.branch) || '').toLowerCase().includes(f);
  }
  function build() {
    if (!S.ready) return loading();
    const cols = new Map(STATUSES.map((st) => [st, []]));
    for (const t of tasksSorted(matches)) (cols.get(t.status) || cols.set(t.status, []).get(t.status)).push(t);
    return h('div', { class: 'board' }, [...cols.entries()].map(([st, list]) =>
      h('section', { class: `col${list.length ? '' : ' empty'}`, 'data-status': st, 'aria-label': `${st}: ${list.length}` },
        h('header', { class: 'col-head', title: `${st}: ${list.length}` }, badge(st), h('span', { class: 'count' }, String(list.length))),
        list.length ? h('div', { class: 'col-cards' },
          list.slice(0, COLUMN_CAP).map(taskCard),
          list.length > COLUMN_CAP ? h('p', { class: 'muted small' }, `… and ${list.length - COLUMN_CAP} more (filter to narrow)`) : null)
          : h('p', { class: 'muted small col-empty' }, 'none'))));
  }
  function taskCard(t) {
    const overlaps = S.radar.get(t.id) || [];
    const files = (t.git && t.git.files_changed) || [];
    const merge = t.git && t.git.merge;
    return h('article', {
      class: `card task-card st-edge-${t.status}`, 'data-task-id': t.id, 'data-status': t.status, 'data-href': taskHref(t.id),
      'data-focus-key': 'task:' + t.id, tabindex: 0, role: 'link', 'aria-label': `${t.title} (${t.status})`,
    },
    h('div', { class: 'card-top' }, badge(t.status),
      t.external ? h('span', { class: 'tag' }, 'external') : null,
      merge === 'merged' ? h('span', { class: 'tag ok' }, 'merged') : null,
      merge === 'conflict' ? h('span', { class: 'tag bad' }, 'merge conflict') : null,
      merge === 'queued' ? h('span', { class: 'tag' }, 'merging') : null),
    h('div', { class: 'card-title' }, t.title || t.id),
    h('div', { class: 'card-meta' },
      h('code', null, t.id), h('span', null, t.agent), h('span', null, fmtCost(t.usage && t.usage.cost_usd)),
      files.length ? h('span', { title: files.slice(0, 30).join('\n') }, plural(files.length, 'file')) : null,
      LIVE.has(t.status) && t.started_at ? since(t.started_at) : null),
    t.reason && ['blocked', 'failed', 'cancelled', 'paused'].includes(t.status) ? h('p', { class: `reason reason-${t.status}` }, truncate(t.reason, 220)) : null,
    t.status === 'awaiting_approval' ? h('div', { class: 'approval' },
      h('span', { class: 'badge st-awaiting_approval approval-badge' }, 'approval waiting'),
      h('button', { type: 'button', class: 'btn small primary', 'data-action': 'approve', 'data-focus-key': 'approve:' + t.id,
        onclick: (e) => { e.stopPropagation(); approveTask(t.id, e.currentTarget); } }, 'Approve')) : null,
    overlaps.length ? h('p', { class: 'radar', 'data-radar': '', title: overlaps.map((o) => `${o.task_id}: ${o.files.join(', ')}`).join('\n') },
      '⚠ overlaps ', plural(overlaps.length, 'live task'), ' (', plural(new Set(overlaps.flatMap((o) => o.files)).size, 'file'), ')') : null);
  }
  return {
    title: 'Board',
    mount(r) {
      root = r;
      sel = projectSelect(boardPrefs.project, (v) => { boardPrefs.project = v; this.refresh(); }, 'board-project');
      input = h('input', { type: 'search', class: 'input', placeholder: 'Filter by title, id, agent, branch', 'aria-label': 'Filter tasks', 'data-input': 'board-filter', value: boardPrefs.filter });
      input.addEventListener('input', debounce(() => { boardPrefs.filter = input.value; this.refresh(); }, 120));
      content = h('div', { class: 'board-wrap' });
      root.append(h('div', { class: 'page-head row' }, h('h1', null, 'Board'), h('div', { class: 'toolbar' }, sel, input)), content);
      fetchRadar();
      this.refresh();
    },
    refresh() {
      if (sel) refreshProjectSelect(sel, boardPrefs.project);
      // Keep where the reader had scrolled, across the board and inside each column.
      const board = content.querySelector('.board');
      const left = board ? board.scrollLeft : 0;
      const tops = new Map([...content.querySelectorAll('.col')].map((c) => [c.getAttribute('data-status'), (c.querySelector('.col-cards') || {}).scrollTop || 0]));
      rerender(content, build);
      const nb = content.querySelector('.board');
      if (nb) nb.scrollLeft = left;
      for (const c of content.querySelectorAll('.col')) {
        const cards = c.querySelector('.col-cards');
        const top = tops.get(c.getAttribute('data-status'));
        if (cards && top) cards.scrollTop = top;
      }
    },
  };
}

// ---------------------------------------------------------------------------
// DAG
// ---------------------------------------------------------------------------

const dagPrefs = { project: '', linkedOnly: false };

function DagView() {
  let root, content, sel, box;
  const W = 230, H = 48, GX = 64, GY = 14, PAD = 16;
  function build() {
    if (!S.ready) return loading();
    let tasks = tasksSorted((t) => !dagPrefs.project || t.project_id === dagPrefs.project);
    const ids = new Set(tasks.map((t) => t.id));
    const hasDependents = new Set();
    for (const t of tasks) for (const d of t.depends_on || []) if (ids.has(d)) hasDependents.add(d);
    if (dagPrefs.linkedOnly) {
      tasks = tasks.filter((t) => hasDependents.has(t.id) || (t.depends_on || []).some((d) => ids.has(d)));
    }
    if (!tasks.length) return empty(dagPrefs.linkedOnly ? 'No task depends on another.' : 'No tasks yet.');
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const depth = new Map();
    const visiting = new Set();
    const depthOf = (t) => {
      if (depth.has(t.id)) return depth.get(t.id);
      if (visiting.has(t.id)) return 0;
      visiting.add(t.id);
      let d = 0;
      for (const dep of t.depends_on || []) {
        const p = byId.get(dep);
        if (p) d = Math.max(d, depthOf(p) + 1);
      }
      visiting.delete(t.id);
      depth.set(t.id, d);
      return d;
    };
    const cols = [];
    for (const t of [...tasks].sort((a, b) => (ms(a.created_at) || 0) - (ms(b.created_at) || 0))) {
      const d = depthOf(t);
      (cols[d] || (cols[d] = [])).push(t);
    }
    for (let i = 0; i < cols.length; i++) if (!cols[i]) cols[i] = [];
    // Order each column by the average row of its prerequisites (fewer crossings).
    const row = new Map();
    cols.forEach((col, ci) => {
      if (ci === 0) col.sort((a, b) => (hasDependents.has(b.id) ? 1 : 0) - (hasDependents.has(a.id) ? 1 : 0));
      else {
        const key = (t) => {
          const rs = (t.depends_on || []).map((d) => row.get(d)).filter((r) => r != null);
          return rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : 1e9;
        };
        col.sort((a, b) => key(a) - key(b));
      }
      col.forEach((t, i) => row.set(t.id, i));
    });
    const pos = new Map();
    cols.forEach((col, ci) => col.forEach((t, i) => pos.set(t.id, { x: PAD + ci * (W + GX), y: PAD + i * (H + GY) })));
    const width = PAD * 2 + cols.length * W + (cols.length - 1) * GX;
    const height = PAD * 2 + Math.max(...cols.map((c) => c.length)) * (H + GY) - GY;
    const svg = s('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Task dependency graph' });
    svg.append(s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))));
    const edges = s('g', { class: 'edges' });
    for (const t of tasks) {
      const to = pos.get(t.id);
      for (const dep of t.depends_on || []) {
        const from = pos.get(dep);
        if (!from) continue;
        const d0 = byId.get(dep);
        const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2;
        const mx = (x1 + x2) / 2;
        edges.append(s('path', { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, class: `edge${d0 && d0.status === 'succeeded' ? ' done' : ''}${d0 && (d0.status === 'failed' || d0.status === 'cancelled') ? ' broken' : ''}`, 'marker-end': 'url(#arrow)' }));
      }
    }
    svg.append(edges);
    const nodes = s('g', { class: 'nodes' });
    for (const t of tasks) {
      const p = pos.get(t.id);
      nodes.append(s('g', {
        class: `node st-${t.status}`, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: 'link',
        'data-task-id': t.id, 'data-status': t.status, 'data-href': taskHref(t.id), 'data-focus-key': 'task:' + t.id,
        'aria-label': `${t.title} (${t.status})`,
      },
      s('title', null, `${t.title}\n${t.id} · ${t.status}${t.reason ? '\n' + t.reason : ''}`),
      s('rect', { width: W, height: H, rx: 7, ry: 7 }),
      s('rect', { class: 'stripe', width: 5, height: H, rx: 2 }),
      s('text', { x: 13, y: 19, class: 'node-title' }, truncate(t.title || t.id, 27)),
      s('text', { x: 13, y: 37, class: 'node-sub' }, truncate(`${t.status} · ${t.agent}${t.usage && t.usage.cost_usd ? ' · ' + fmtCost(t.usage.cost_usd) : ''}`, 35))));
    }
    svg.append(nodes);
    return h('div', { class: 'dag-wrap' }, svg);
  }
  return {
    title: 'DAG',
    mount(r) {
      root = r;
      sel = projectSelect(dagPrefs.project, (v) => { dagPrefs.project = v; this.refresh(); }, 'dag-project');
      box = h('input', { type: 'checkbox', id: 'dag-linked', 'data-input': 'dag-linked' });
      box.checked = dagPrefs.linkedOnly;
      box.addEventListener('change', () => { dagPrefs.linkedOnly = box.checked; this.refresh(); });
      content = h('div', { class: 'dag-content' });
      root.append(
        h('div', { class: 'page-head row' }, h('h1', null, 'Dependencies'),
          h('div', { class: 'toolbar' }, sel, h('label', { class: 'check', for: 'dag-linked' }, box, ' Only tasks with dependencies'))),
        h('ul', { class: 'legend', 'aria-label': 'Status colors' }, STATUSES.map((st) => h('li', null, badge(st)))),
        content);
      this.refresh();
    },
    refresh() {
      if (sel) refreshProjectSelect(sel, dagPrefs.project);
      const wrap = content.querySelector('.dag-wrap');
      const sx = wrap ? wrap.scrollLeft : 0, sy = wrap ? wrap.scrollTop : 0;
      rerender(content, build);
      const nw = content.querySelector('.dag-wrap');
      if (nw) { nw.scrollLeft = sx; nw.scrollTop = sy; }
    },
  };
}

// ---------------------------------------------------------------------------
// Task view
// ---------------------------------------------------------------------------

function TaskView() {
  let root, id, alive = true;
  let detail = null;           // the last GET /api/tasks/{id}
  let head, actions, tabs, timelinePanel, reviewPanel, timelineList, tabCount, jumpBtn;
  let actionMsg, mergeSel, resumeText, buttons = {};
  let tab = 'timeline';
  let es = null, esTimer = null, esBackoff = 1000;
  let lastId = 0, eventCount = 0, queue = [], flushQueued = false;
  let lastTaskEvent = null;
  let parentTask = null;       // {session, task_id} of the parent session
  let diffState = { loaded: false, head: undefined, loading: false };
  let reviewDiff, reviewChecks, reviewRuns;
  let headKey = '';

  const task = () => (detail ? S.tasks.get(detail.id) || detail : null);

  async function load() {
    let d;
    try {
      d = await api(`/api/tasks/${enc(id)}`);
    } catch (err) {
      if (!alive) return;
      root.replaceChildren(h('div', { class: 'page-head' }, h('h1', null, 'Task ', h('code', null, id))),
        errorBox('load this task', err),
        h('p', null, h('a', { href: '#/board' }, '← Back to the board')));
      return;
    }
    if (!alive) return;
    detail = d;
    if (d.id !== id) {
      id = d.id;
      history.replaceState(history.state, '', taskHref(id));
      navStack[navStack.length - 1] = taskHref(id);
    }
    const { sessions, runs, overlaps, ...t } = d;
    upsertTask(t);
    build();
    loadRelations();
    await loadEvents();
  }

  async function refreshDetail() {
    if (!alive || !detail) return;
    try {
      const d = await api(`/api/tasks/${enc(id)}`);
      if (!alive) return;
      detail = d;
      const { sessions, runs, overlaps, ...t } = d;
      upsertTask(t);
      renderHead();
      renderReviewParts();
    } catch (err) {
      if (!(err instanceof ApiError && err.status === 401)) console.warn('task detail', err);
    }
  }
  const refreshDetailSoon = debounce(refreshDetail, 1500, 5000);

  async function loadRelations() {
    const t = task();
    if (t.parent_session_id) {
      try {
        const sess = await api(`/api/sessions/${enc(t.parent_session_id)}`);
        parentTask = { session: t.parent_session_id, task_id: sess.task_id };
      } catch (err) {
        parentTask = { session: t.parent_session_id, error: errorMessage(err) };
      }
    }
    const sids = new Set((detail.sessions || []).map((x) => x.id));
    if (t.session_id) sids.add(t.session_id);
    for (const sid of sids) {
      try {
        const kids = await api(`/api/tasks?parent=${enc(sid)}&limit=1000`);
        for (const k of kids || []) upsert(S.tasks, k.id, k);
      } catch (err) {
        toastError('load the child tasks', err);
      }
    }
    if (alive) renderHead();
  }

  async function loadEvents() {
    let after = 0;
    const first = [];
    let failed = null;
    try {
      for (;;) {
        const page = await api(`/api/tasks/${enc(id)}/events?after=${after}&limit=${EVENTS_PAGE}`);
        if (!alive) return;
        first.push(...(page || []));
        if (!page || page.length < EVENTS_PAGE) break;
        after = page[page.length - 1].id;
      }
    } catch (err) {
      if (!alive) return;
      failed = err;
    }
    if (!alive) return;
    // What loaded is shown, after the reason the rest did not; live events follow.
    timelineList.replaceChildren(...(failed ? [errorBox('load the events', failed)] : []));
    enqueue(first);
    flush(true);
    openStream();
  }

  function openStream() {
    if (!alive) return;
    const stream = new EventSource(`/api/stream?task=${enc(id)}&after=${lastId}`, { withCredentials: true });
    es = stream;
    stream.onopen = () => { esBackoff = 1000; };
    stream.onerror = () => {
      // Reopen from the last event shown (the query's `after` would otherwise
      // replay from where this stream began).
      stream.close();
      if (!alive || es !== stream || S.loggedOut) return;
      es = null;
      esTimer = setTimeout(openStream, esBackoff);
      esBackoff = Math.min(esBackoff * 2, 15000);
    };
    for (const kind of ALL_KINDS) {
      stream.addEventListener(kind, (m) => {
        if (es !== stream) return;
        try { enqueue([JSON.parse(m.data)]); } catch { /* ignore a malformed frame */ }
      });
    }
  }

  function enqueue(evs) {
    for (const ev of evs) {
      if (!ev || ev.id <= lastId) continue;
      lastId = ev.id;
      queue.push(ev);
      if (ev.kind === 'task' && ev.data) upsertTask(ev.data);
      if (ev.kind === 'run' && ev.data) onRun(ev.data);
      if (ev.kind === 'session' && ev.data) onSession(ev.data);
    }
    if (!flushQueued && queue.length) {
      flushQueued = true;
      requestAnimationFrame(flush);
    }
  }

  function atBottom() {
    const doc = document.documentElement;
    return window.innerHeight + window.scrollY >= doc.scrollHeight - 60;
  }

  function flush(initial) {
    flushQueued = false;
    if (!alive || !queue.length) return;
    // The first batch keeps the header in view; later ones follow the end when the reader is there.
    const stick = initial !== true && tab === 'timeline' && atBottom();
    const frag = document.createDocumentFragment();
    for (const ev of queue) frag.append(renderEvent(ev));
    eventCount += queue.length;
    queue = [];
    timelineList.append(frag);
    tabCount.textContent = String(eventCount);
    if (stick) window.scrollTo(0, document.documentElement.scrollHeight);
    jumpBtn.hidden = tab !== 'timeline' || atBottom();
  }

  function renderEvent(ev) {
    const d = ev.data && typeof ev.data === 'object' ? ev.data : {};
    const el = h('div', { class: `ev ev-${ev.kind}`, 'data-event-kind': ev.kind, 'data-event-id': ev.id });
    const time = h('time', { class: 'ev-time', datetime: ev.ts, title: `${new Date(ms(ev.ts)).toLocaleString()}${ev.seq != null ? ` · event ${ev.seq} of the session` : ''}` }, clock(ev.ts));
    let body;
    switch (ev.kind) {
      case 'message': {
        const role = d.role || 'assistant';
        body = [h('span', { class: `ev-label role role-${role}` }, role), h('div', { class: 'ev-text' }, capText(d.text ?? textOf(d.content)))];
        break;
      }
      case 'tool_call':
        body = h('details', { class: 'ev-details' },
          h('summary', null, h('span', { class: 'ev-label' }, '→ ', d.name || 'tool'), ' ', h('span', { class: 'muted mono' }, oneLine(d.input, 160))),
          h('pre', { class: 'pre' }, capText(pretty(d.input))));
        break;
      case 'tool_result': {
        if (d.is_error === true) el.classList.add('is-error');
        const out = textOf(d.output);
        body = h('details', { class: 'ev-details' },
          h('summary', null, h('span', { class: 'ev-label' }, d.is_error === true ? '← tool error' : '← result'), ' ', h('span', { class: 'muted mono' }, oneLine(out, 160))),
          h('pre', { class: 'pre' }, capText(out)));
        break;
      }
      case 'output':
        if (d.stream === 'stderr') el.classList.add('stderr');
        body = h('pre', { class: 'ev-line' }, d.line ?? ev.raw ?? '');
        break;
      case 'raw':
        body = h('pre', { class: 'ev-line' }, d.line ?? ev.raw ?? oneLine(d, 400));
        break;
      case 'usage':
        body = h('span', { class: 'muted' }, `usage: ${fmtTokens(d.input_tokens)} in, ${fmtTokens(d.output_tokens)} out, ${fmtCost(d.cost_usd)}`);
        break;
      case 'result': {
        if (d.is_error === true) el.classList.add('is-error');
        const facts = [d.subtype, d.num_turns != null ? plural(d.num_turns, 'turn') : null, d.duration_ms != null ? duration(d.duration_ms) : null].filter(Boolean).join(' · ');
        body = [h('span', { class: 'ev-label' }, d.is_error === true ? 'Result (error)' : 'Result'), facts ? h('span', { class: 'muted small' }, ' ', facts) : null,
          d.text ? h('div', { class: 'ev-text' }, capText(d.text)) : null];
        break;
      }
      case 'error':
        el.classList.add('is-error');
        body = [h('span', { class: 'ev-label' }, 'Error'), ' ', h('span', { class: 'ev-text inline' }, d.message ?? oneLine(d, 400))];
        break;
      case 'log':
        body = [h('span', { class: 'ev-label' }, 'baton'), ' ', h('span', { class: 'ev-text inline' }, d.message ?? oneLine(d, 400))];
        break;
      case 'init':
        body = [h('span', { class: 'ev-label' }, 'Started'), ' ', h('span', { class: 'muted' },
          [d.model && `model ${d.model}`, d.agent_session_id && `session ${d.agent_session_id}`, d.cwd && `in ${d.cwd}`].filter(Boolean).join(' · ') || 'agent process')];
        break;
      case 'task': {
        const same = lastTaskEvent && lastTaskEvent.status === d.status && lastTaskEvent.reason === d.reason;
        if (same) el.classList.add('repeat');
        lastTaskEvent = { status: d.status, reason: d.reason };
        body = [h('span', { class: 'ev-label' }, 'task'), ' ', same ? h('span', { class: 'muted' }, 'updated') : badge(d.status),
          !same && d.reason ? h('span', { class: 'muted small' }, ' — ', d.reason) : null];
        break;
      }
      case 'session':
        body = [h('span', { class: 'ev-label' }, 'session'), ' ', h('code', { class: 'muted' }, d.id || ''), ' ', h('span', { class: `badge sess-${d.status}` }, d.status || '?')];
        break;
      case 'run':
        body = [h('span', { class: 'ev-label' }, 'run'), ' ', h('code', { class: 'muted' }, d.id || ''), d.kind ? ` (${d.kind})` : '', ' ',
          h('span', { class: `badge run-${d.status}` }, d.status || '?'),
          d.exit_code != null ? h('span', { class: 'muted small' }, ` exit ${d.exit_code}`) : null,
          d.error ? h('span', { class: 'muted small' }, ' — ', d.error) : null];
        if (['failed', 'timed_out', 'lost'].includes(d.status)) el.classList.add('is-error');
        break;
      case 'hook':
        body = [h('span', { class: 'ev-label' }, 'hook'), ' ', d.hook_event_name || '', d.message ? h('span', { class: 'muted' }, ' — ', d.message) : null,
          d.reason ? h('span', { class: 'muted' }, ' — ', d.reason) : null];
        break;
      default:
        body = [h('span', { class: 'ev-label' }, ev.kind), ' ', h('span', { class: 'muted' }, oneLine(d, 200))];
    }
    add(el, [time, h('div', { class: 'ev-body' }, body)]);
    return el;
  }

  // --- structure ------------------------------------------------------------

  function build() {
    const t = task();
    head = h('div', { class: 'task-head' });
    actions = buildActions(t);
    const tabBtn = (name, label, extra) => h('button', {
      type: 'button', role: 'tab', class: 'tab', id: `tab-${name}`, 'data-tab': name, 'aria-controls': `panel-${name}`,
      onclick: () => selectTab(name),
    }, label, extra);
    tabCount = h('span', { class: 'count' }, '…');
    tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Task views' }, tabBtn('timeline', 'Timeline ', tabCount), tabBtn('review', 'Review'));
    tabs.addEventListener('keydown', (e) => {
      if (e.key === 'ArrowRight' || e.key === 'ArrowLeft') {
        e.preventDefault();
        const next = tab === 'timeline' ? 'review' : 'timeline';
        selectTab(next);
        tabs.querySelector(`[data-tab="${next}"]`).focus();
      }
    });
    timelineList = h('div', { class: 'timeline', 'aria-live': 'off' }, loading('Loading events…'));
    jumpBtn = h('button', { type: 'button', class: 'btn small jump', hidden: true, onclick: () => window.scrollTo(0, document.documentElement.scrollHeight) }, '↓ Latest');
    timelinePanel = h('div', { class: 'panel', id: 'panel-timeline', role: 'tabpanel', 'aria-labelledby': 'tab-timeline', 'data-panel': 'timeline' }, timelineList, jumpBtn);
    reviewDiff = h('div', { class: 'review-diff' });
    reviewChecks = h('div', { class: 'review-checks' });
    reviewRuns = h('div', { class: 'review-runs' });
    reviewPanel = h('div', { class: 'panel', id: 'panel-review', role: 'tabpanel', 'aria-labelledby': 'tab-review', 'data-panel': 'review' },
      h('section', { class: 'block' }, sectionHead('Acceptance checks'), reviewChecks),
      h('section', { class: 'block' }, sectionHead('Changes'), reviewDiff),
      h('section', { class: 'block' }, sectionHead('Runs of the current session'), reviewRuns));
    // The review panel comes first in the document: the visible one is then found first by text.
    root.replaceChildren(head, actions, tabs, reviewPanel, timelinePanel);
    renderHead();
    updateActions();
    renderReviewParts();
    selectTab(tab);
  }

  function selectTab(name) {
    tab = name === 'review' ? 'review' : 'timeline';
    for (const b of tabs.querySelectorAll('[data-tab]')) {
      const on = b.getAttribute('data-tab') === tab;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    }
    timelinePanel.hidden = tab !== 'timeline';
    reviewPanel.hidden = tab !== 'review';
    jumpBtn.hidden = true;
    if (tab === 'review') ensureDiff();
  }

  function renderHead() {
    const t = task();
    if (!t || !head) return;
    document.title = `${t.title} · Baton`;
    const g = t.git || {};
    const sessionIds = new Set((detail.sessions || []).map((x) => x.id));
    if (t.session_id) sessionIds.add(t.session_id);
    const children = tasksSorted((x) => x.parent_session_id && sessionIds.has(x.parent_session_id));
    const dependents = tasksSorted((x) => (x.depends_on || []).includes(t.id));
    const overlaps = detail.overlaps || [];
    const fact = (label, ...value) => h('div', { class: 'fact' }, h('dt', null, label), h('dd', null, value));
    const parent = parentTask && parentTask.task_id ? S.tasks.get(parentTask.task_id) : null;
    // Re-render only when something shown changed (keeps text selection and scroll steady).
    const brief = (x) => (x ? `${x.id}:${x.status}:${x.title}` : '');
    const key = JSON.stringify([t.updated_at, t.status, S.projects.size, parentTask, parent && parent.title,
      (t.depends_on || []).map((d) => brief(S.tasks.get(d))), dependents.map(brief), children.map(brief),
      overlaps.map((o) => [o.task_id, o.files, brief(S.tasks.get(o.task_id))]), (detail.sessions || []).map((x) => `${x.id}:${x.status}`)]);
    if (key === headKey) { updateActions(); return; }
    headKey = key;
    rerender(head, () => [
      h('p', { class: 'crumbs' }, h('a', { href: '#/board' }, 'Board'), ' / ', h('code', null, t.id)),
      h('div', { class: 'title-row' },
        h('h1', null, t.title || t.id),
        h('span', { class: `badge big st-${t.status}`, 'data-task-status': t.status }, t.status),
        t.external ? h('span', { class: 'tag', title: 'An interactive Claude Code session that Baton only watches' }, 'external') : null,
        g.merge === 'merged' ? h('span', { class: 'tag ok' }, 'merged') : null,
        g.merge === 'conflict' ? h('span', { class: 'tag bad' }, 'merge conflict') : null,
        g.merge === 'queued' ? h('span', { class: 'tag' }, 'in merge queue') : null),
      t.reason ? h('p', { class: `reason reason-${t.status}` }, t.reason) : null,
      overlaps.length ? h('div', { class: 'radar-box', 'data-radar': '' },
        h('strong', null, '⚠ Conflict radar: '),
        overlaps.length === 1 ? '1 other live task changes some of the same files.' : `${overlaps.length} other live tasks change some of the same files.`,
        h('ul', null, overlaps.map((o) => {
          const other = S.tasks.get(o.task_id);
          return h('li', { 'data-task-id': o.task_id },
            other ? badge(other.status) : h('span', { class: 'muted small' }, 'status unknown'), ' ', h('a', { href: taskHref(o.task_id) }, other ? other.title : o.task_id), ': ',
            o.files.map((f, i) => [i ? ', ' : '', h('code', null, f)]));
        }))) : null,
      h('dl', { class: 'facts' },
        fact('Agent', t.agent, (t.agent_switches || []).length ? h('span', { class: 'muted small' }, ` (switched from ${t.agent_switches.map((x) => x.from).join(', ')})`) : null),
        fact('Project', projectName(t.project_id)),
        fact('Branch', g.branch ? h('code', null, g.branch) : h('span', { class: 'muted' }, 'none yet'), g.base_branch ? h('span', { class: 'muted small' }, ` → ${g.base_branch}`) : null),
        fact('Last commit', g.head ? h('code', { title: g.head }, shortSha(g.head)) : '—', g.commits && g.commits.length ? h('span', { class: 'muted small' }, ` (${plural(g.commits.length, 'commit')})`) : null),
        fact('Changes', g.diff_stat || (g.files_changed && g.files_changed.length ? plural(g.files_changed.length, 'file') : '—')),
        fact('Cost', h('strong', null, fmtCost(t.usage && t.usage.cost_usd)), h('span', { class: 'muted small' }, ` · ${fmtTokens(t.usage && t.usage.input_tokens)} in / ${fmtTokens(t.usage && t.usage.output_tokens)} out`),
          t.budget_usd != null ? h('span', { class: 'muted small' }, ` · budget ${fmtCost(t.budget_usd)}`) : null),
        fact('Created', rel(t.created_at)),
        fact('Started', t.started_at ? rel(t.started_at) : '—'),
        fact(t.finished_at ? 'Took' : 'Elapsed', t.started_at ? since(t.started_at, LIVE.has(t.status) ? null : t.finished_at) : '—'),
        fact('Retries', `${t.retries || 0} of ${t.max_retries || 0}`),
        t.parent_session_id ? fact('Started by',
          parentTask && parentTask.task_id
            ? h('a', { href: taskHref(parentTask.task_id), 'data-parent-session': t.parent_session_id }, parent ? parent.title : parentTask.task_id)
            : h('code', { 'data-parent-session': t.parent_session_id }, t.parent_session_id),
          h('span', { class: 'muted small' }, ` (session ${t.parent_session_id}${t.callback ? ', with callback' : ''})`),
          parentTask && parentTask.error ? h('span', { class: 'warn-text small' }, ` — ${parentTask.error}`) : null) : null,
        (detail.sessions || []).length ? fact('Sessions', (detail.sessions || []).map((x, i) => [i ? ', ' : '', h('code', null, x.id), ` ${x.status}`])) : null),
      loopsBox(t),
      (t.depends_on || []).length ? h('div', { class: 'rel' }, h('h3', null, 'Depends on'),
        h('ul', { class: 'chips' }, t.depends_on.map((d) => taskChip(S.tasks.get(d), d)))) : null,
      dependents.length ? h('div', { class: 'rel' }, h('h3', null, 'Needed by'), h('ul', { class: 'chips' }, dependents.map((x) => taskChip(x)))) : null,
      children.length ? h('div', { class: 'rel', 'data-children': '' }, h('h3', null, `Child tasks (${children.length})`),
        h('ul', { class: 'chips' }, children.map((x) => taskChip(x)))) : null,
      h('details', { class: 'prompt', 'data-key': 'prompt' }, h('summary', null, 'Prompt'), h('pre', { class: 'pre' }, capText(t.prompt))),
      t.result ? h('details', { class: 'prompt', 'data-key': 'result', open: true }, h('summary', null, 'Result'), h('div', { class: 'ev-text' }, capText(t.result))) : null,
    ]);
    updateActions();
  }

  // --- actions -------------------------------------------------------------

  function buildActions(t) {
    const btn = (name, label, cls = '') => {
      const b = h('button', { type: 'button', class: `btn ${cls}`, 'data-action': name }, label);
      b.addEventListener('click', () => act(name));
      buttons[name] = b;
      return b;
    };
    const proj = S.projects.get(t.project_id);
    mergeSel = h('select', { class: 'select', 'data-input': 'merge-strategy', 'aria-label': 'Merge strategy' },
      ['merge', 'squash', 'rebase'].map((x) => h('option', { value: x }, x)));
    mergeSel.value = (proj && proj.settings && proj.settings.merge_strategy) || 'merge';
    mergeSel.addEventListener('change', () => { mergeSel.dataset.touched = '1'; });
    resumeText = h('textarea', { class: 'input', rows: 2, 'data-input': 'resume-message', placeholder: 'Follow-up message for the agent (Ctrl+Enter to send)', 'aria-label': 'Resume message' });
    resumeText.addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); act('resume'); }
    });
    actionMsg = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite', hidden: true });
    const ext = !!t.external;
    const stop = btn('stop', 'Stop', 'danger');
    const retry = btn('retry', 'Retry');
    const approve = btn('approve', 'Approve', 'primary');
    const merge = btn('merge', 'Merge', 'primary');
    const resume = btn('resume', 'Resume');
    if (ext) { stop.hidden = true; retry.hidden = true; resume.hidden = true; }
    return h('div', { class: 'actions', 'aria-label': 'Actions' },
      h('div', { class: 'action-row' },
        stop, retry, approve,
        h('span', { class: 'merge-group' }, mergeSel, merge),
        ext ? h('span', { class: 'muted small' }, 'An interactive Claude Code session: Baton only watches it.') : null),
      ext ? null : h('div', { class: 'resume-form' }, resumeText, resume),
      actionMsg);
  }

  function updateActions() {
    const t = task();
    if (!t || !buttons.stop) return;
    const st = t.status;
    const set = (name, ok, why) => {
      const b = buttons[name];
      if (b.dataset.busy) return;
      b.disabled = !ok;
      b.title = ok ? '' : why;
    };
    set('stop', CAN_STOP.has(st), `A ${st} task cannot be stopped`);
    set('retry', CAN_RETRY.has(st), 'Only a failed or cancelled task can be retried');
    set('approve', st === 'awaiting_approval', 'Only a task awaiting approval can be approved');
    set('merge', st === 'succeeded' && !(t.git && t.git.merge === 'merged'),
      t.git && t.git.merge === 'merged' ? 'Already merged' : 'Only a succeeded task can be merged');
    set('resume', CAN_RESUME.has(st), 'Only a finished or paused task can be resumed');
    mergeSel.disabled = buttons.merge.disabled;
    const proj = S.projects.get(t.project_id);
    const strategy = proj && proj.settings && proj.settings.merge_strategy;
    if (strategy && !mergeSel.dataset.touched) mergeSel.value = strategy;
  }

  const VERBS = { stop: 'stop', retry: 'retry', approve: 'approve', merge: 'merge', resume: 'resume' };
  const BUSY = { stop: 'Stopping…', retry: 'Retrying…', approve: 'Approving…', merge: 'Merging…', resume: 'Sending…' };

  function showMsg(kind, nodes) {
    actionMsg.hidden = false;
    actionMsg.className = `action-msg ${kind}`;
    actionMsg.removeAttribute('data-error');
    actionMsg.removeAttribute('data-result');
    actionMsg.setAttribute(kind === 'error' ? 'data-error' : 'data-result', '');
    actionMsg.setAttribute('role', kind === 'error' ? 'alert' : 'status');
    actionMsg.replaceChildren(...nodes.flat().filter(Boolean));
  }

  async function act(name) {
    const t = task();
    const b = buttons[name];
    let body = {};
    if (name === 'merge') body = { strategy: mergeSel.value };
    if (name === 'resume') {
      const message = resumeText.value.trim();
      if (!message) {
        showMsg('error', [h('p', { class: 'err-text' }, 'Could not resume: write a message for the agent first.')]);
        resumeText.focus();
        return;
      }
      body = { message };
    }
    const label = b.textContent;
    b.dataset.busy = '1';
    b.disabled = true;
    b.textContent = BUSY[name];
    try {
      const res = await api(`/api/tasks/${enc(t.id)}/${name}`, { method: 'POST', body });
      if (res && res.id) upsertTask(res);
      const nt = (res && res.id ? res : task()) || t;
      const g = nt.git || {};
      const text = {
        stop: 'Stop requested: the agent is interrupted, then killed after the grace period.',
        retry: `Retrying: the task is ${nt.status} again.`,
        approve: `Approved: the task is ${nt.status}.`,
        merge: `Merged ${g.branch || 'the branch'} into ${g.base_branch || 'the base branch'}${g.merged_commit ? ` (${shortSha(g.merged_commit)})` : ''}.`,
        resume: 'Sent: the agent resumes the conversation with your message.',
      }[name];
      if (name === 'resume') resumeText.value = '';
      showMsg('ok', [h('p', null, text)]);
      if (name === 'merge') { diffState.loaded = false; if (tab === 'review') ensureDiff(); }
    } catch (err) {
      if (!alive) return;
      showMsg('error', errorNodes(VERBS[name], err));
    } finally {
      if (alive) {
        delete b.dataset.busy;
        b.textContent = label;
        updateActions();
      }
    }
  }

  // --- review -----------------------------------------------------------------

  /** A task's feedback loops: its pull request, its fix attempts, its reviews. */
  function loopsBox(t) {
    const l = t.loops || {};
    const reviews = l.reviews || [];
    const fixes = [['checks', l.check_fixes], ['conflicts', l.conflict_fixes], ['CI and PR reviews', l.forge_fixes]].filter(([, n]) => n > 0);
    if (!t.pr && !reviews.length && !fixes.length) return null;
    const pr = t.pr;
    const prLink = pr && /^https?:\/\//.test(pr.url) ? h('a', { href: pr.url, rel: 'noopener noreferrer', target: '_blank' }, `#${pr.number}`) : pr ? `#${pr.number}` : null;
    const verdict = (r) => r.verdict ? r.verdict.replace('_', ' ') : r.error ? 'failed' : 'in progress';
    const verdictClass = (r) => r.verdict === 'approve' ? 'st-succeeded' : (r.verdict || r.error) ? 'st-failed' : 'st-reviewing';
    return h('div', { class: 'rel', 'data-loops': '' },
      h('h3', null, 'Feedback loops'),
      pr ? h('p', { 'data-pr': pr.state }, 'Pull request ', prLink, ' ', h('span', { class: `tag ${pr.state === 'merged' ? 'ok' : ''}` }, pr.state),
        pr.last_feedback ? h('span', { class: 'muted small' }, ` · last: ${pr.last_feedback}`) : null) : null,
      fixes.length ? h('p', { 'data-fixes': '' }, 'Fix attempts: ', fixes.map(([what, n], i) => [i ? ' · ' : '', `${what} ${n} of ${l.fix_attempts}`])) : null,
      reviews.length ? h('ol', { class: 'reviews' }, reviews.map((r) => h('li', { 'data-verdict': r.verdict || (r.error ? 'failed' : 'pending') },
        h('span', { class: `badge ${verdictClass(r)}` }, verdict(r)), ' by ', h('a', { href: taskHref(r.task_id) }, r.reviewer), ' ',
        h('span', { class: 'muted small' }, rel(r.at)),
        r.error ? h('div', { class: 'warn-text small' }, r.error) : null,
        (r.comments || []).length ? h('ul', null, r.comments.map((c) => h('li', null,
          c.file ? h('code', null, c.line ? `${c.file}:${c.line}` : c.file) : null, c.file ? ' — ' : null, c.body))) : null))) : null);
  }

  function renderReviewParts() {
    const t = task();
    if (!t || !reviewChecks) return;
    const checks = t.check_results || [];
    if (checks.length) {
      rerender(reviewChecks, () => h('table', { tabindex: '0', class: 'table checks' },
        h('thead', null, h('tr', null, ['Check', 'Result', 'Exit code', 'Took', 'Output'].map((c) => h('th', null, c)))),
        h('tbody', null, checks.map((c, i) => h('tr', { class: c.passed ? 'pass' : 'fail', 'data-check': c.passed ? 'passed' : 'failed' },
          h('td', null, h('code', null, c.command)),
          h('td', null, h('span', { class: `badge ${c.passed ? 'st-succeeded' : 'st-failed'}` }, c.passed ? 'passed' : 'failed')),
          h('td', { class: 'num' }, c.exit_code == null ? '—' : String(c.exit_code)),
          h('td', { class: 'num' }, c.duration_ms != null ? duration(c.duration_ms) : '—'),
          h('td', null, (c.output_tail || c.output)
            ? h('details', { 'data-key': `check-${i}`, open: !c.passed || undefined }, h('summary', null, 'output'), h('pre', { class: 'pre' }, capText(c.output_tail || c.output)))
            : h('span', { class: 'muted' }, 'none')))))));
    } else {
      rerender(reviewChecks, () => empty((t.checks || []).length
        ? `Not run yet: ${t.checks.join(', ')}.`
        : 'This task has no acceptance checks.'));
    }
    const runs = (detail && detail.runs) || [];
    rerender(reviewRuns, () => runs.length ? h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Run', 'Kind', 'Status', 'Exit', 'Started', 'Took', 'Cost', 'Error'].map((c) => h('th', null, c)))),
      h('tbody', null, runs.map((r) => h('tr', { 'data-run-id': r.id },
        h('td', { class: 'mono small' }, r.id),
        h('td', null, r.kind),
        h('td', null, h('span', { class: `badge run-${r.status}` }, r.status)),
        h('td', { class: 'num' }, r.exit_code == null ? (r.signal != null ? `signal ${r.signal}` : '—') : String(r.exit_code)),
        h('td', null, r.started_at ? rel(r.started_at) : '—'),
        h('td', null, r.started_at ? since(r.started_at, r.finished_at) : '—'),
        h('td', { class: 'num' }, fmtCost(r.usage && r.usage.cost_usd)),
        h('td', { class: 'small' }, r.error || r.stop_reason || ''))))) : empty('No runs yet.'));
  }

  async function ensureDiff(force) {
    const t = task();
    if (!t) return;
    const headNow = (t.git && t.git.head) || null;
    if (!force && diffState.loaded && diffState.head === headNow && !LIVE.has(t.status)) return;
    if (diffState.loading) { diffState.again = true; return; }
    diffState.loading = true;
    if (!diffState.loaded) reviewDiff.replaceChildren(loading('Loading the diff…'));
    try {
      const diff = await api(`/api/tasks/${enc(t.id)}/diff`);
      if (!alive) return;
      renderDiff(diff);
    } catch (err) {
      if (!alive) return;
      if (err instanceof ApiError && err.status === 409) {
        reviewDiff.replaceChildren(h('div', { class: 'notice', 'data-diff-empty': '' },
          h('p', null, 'This task has no branch yet, so there is nothing to compare.'), h('p', { class: 'muted small' }, errorMessage(err))));
      } else {
        reviewDiff.replaceChildren(errorBox('load the diff', err));
      }
    } finally {
      diffState.loading = false;
      diffState.loaded = true;
      diffState.head = headNow;
      if (diffState.again && alive) { diffState.again = false; ensureDiff(true); }
    }
  }
  const refreshDiffSoon = debounce(() => { if (alive && tab === 'review') ensureDiff(true); else diffState.loaded = false; }, 2000, 6000);

  function renderDiff(diff) {
    const files = diff.files || [];
    const untracked = diff.untracked || [];
    const sections = splitPatch(diff.patch || '');
    const totalLines = sections.reduce((n, x) => n + x.lines.length, 0);
    rerender(reviewDiff, () => [
      h('p', { class: 'muted small' }, 'Branch ', h('code', null, diff.branch), ' against ', h('code', { title: diff.base }, shortSha(diff.base)),
        ` · ${plural(files.length, 'file')} changed`),
      diff.stat ? h('pre', { class: 'pre stat' }, diff.stat) : null,
      untracked.length ? h('div', { class: 'notice small' }, h('strong', null, 'Untracked (not in the patch): '),
        untracked.map((f, i) => [i ? ', ' : '', h('code', null, f)])) : null,
      sections.length ? h('div', { class: 'diff' }, sections.map((sec, i) => {
        let adds = 0, dels = 0;
        for (const l of sec.lines) {
          if (l.cls === 'd-add') adds++;
          else if (l.cls === 'd-del') dels++;
        }
        return h('details', { class: 'diff-file', 'data-key': `diff:${sec.file}`, open: totalLines < 6000 || i < 5 || undefined },
          h('summary', null, h('code', null, sec.file), ' ', h('span', { class: 'plus' }, `+${adds}`), ' ', h('span', { class: 'minus' }, `−${dels}`)),
          h('pre', { class: 'diff-body' }, sec.lines.map((l) => h('span', { class: `dl ${l.cls}` }, l.text + '\n'))));
      })) : empty('The patch is empty: no committed or uncommitted changes against the base.'),
    ]);
  }

  function splitPatch(patch) {
    const out = [];
    let sec = null;
    let inHeader = false;
    const MAX = 40000;
    let count = 0;
    for (const line of patch.split('\n')) {
      if (line.startsWith('diff --git ')) {
        const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
        sec = { file: m ? m[2] : line.slice(11), lines: [] };
        out.push(sec);
        inHeader = true;
      }
      if (!sec) { sec = { file: '(patch)', lines: [] }; out.push(sec); }
      if (count++ > MAX) {
        if (count === MAX + 2) sec.lines.push({ cls: 'd-meta', text: '… (the rest of the patch is too long to show here; use `baton diff`)' });
        continue;
      }
      let cls = 'd-ctx';
      if (line.startsWith('@@')) { cls = 'd-hunk'; inHeader = false; }
      else if (inHeader) {
        cls = 'd-meta';
        const m = /^\+\+\+ b\/(.*)$/.exec(line);
        if (m) sec.file = m[1];
      } else if (line.startsWith('+')) cls = 'd-add';
      else if (line.startsWith('-')) cls = 'd-del';
      else if (line.startsWith('\\')) cls = 'd-meta';
      sec.lines.push({ cls, text: line });
    }
    for (const x of out) while (x.lines.length && x.lines[x.lines.length - 1].text === '') x.lines.pop();
    return out.filter((x) => x.lines.length);
  }

  // --- live updates ------------------------------------------------------------

  function onTask(t, old) {
    if (!detail || !head) return;
    if (t.id === detail.id) {
      renderHead();
      renderReviewParts();
      const oh = old && old.git && old.git.head, nh = t.git && t.git.head;
      if (oh !== nh || (old && old.status !== t.status) || (old && old.git && t.git && old.git.merge !== t.git.merge)) refreshDiffSoon();
      if (!old || old.status !== t.status || old.session_id !== t.session_id) refreshDetailSoon();
    } else if (t.project_id === detail.project_id) {
      // Another task of the project: the radar or the list of children may change.
      refreshDetailSoon();
    }
  }

  function onRun(r) {
    if (!detail || !r || r.task_id !== detail.id) return;
    const t = task();
    if (r.session_id !== t.session_id) return;
    const runs = detail.runs || (detail.runs = []);
    const i = runs.findIndex((x) => x.id === r.id);
    if (i >= 0) runs[i] = r; else runs.push(r);
    renderReviewParts();
  }

  function onSession(sess) {
    if (!detail || !sess || sess.task_id !== detail.id) return;
    const list = detail.sessions || (detail.sessions = []);
    const i = list.findIndex((x) => x.id === sess.id);
    if (i >= 0) list[i] = sess; else list.push(sess);
  }

  function onScroll() {
    if (jumpBtn && tab === 'timeline') jumpBtn.hidden = atBottom();
  }

  return {
    title: 'Task',
    mount(r, params) {
      root = r;
      id = params.id;
      tab = params.tab === 'review' ? 'review' : 'timeline';
      root.append(loading());
      window.addEventListener('scroll', onScroll, { passive: true });
      load();
    },
    update(params) {
      if (params.id !== id) return false;
      if (params.tab && tabs) selectTab(params.tab);
      return true;
    },
    refresh() {
      if (detail && head) renderHead();
    },
    onTask,
    onRun,
    onSession,
    unmount() {
      alive = false;
      if (es) es.close();
      es = null;
      clearTimeout(esTimer);
      refreshDetailSoon.cancel();
      refreshDiffSoon.cancel();
      window.removeEventListener('scroll', onScroll);
    },
  };
}

// ---------------------------------------------------------------------------
// Agents
// ---------------------------------------------------------------------------

function AgentsView() {
  let root, content, alive = true;
  let error = null;
  let pools = [];
  async function reloadNow() {
    try {
      const [list, poolList] = await Promise.all([api('/api/agents'), api('/api/pools')]);
      if (!alive) return;
      pools = poolList || [];
      const seen = new Set();
      for (const a of list || []) { S.agents.set(a.name, a); seen.add(a.name); }
      for (const name of [...S.agents.keys()]) if (!seen.has(name)) S.agents.delete(name);
      error = null;
    } catch (err) {
      error = err;
    }
    if (alive) refresh();
  }
  const reload = debounce(reloadNow, 1500, 5000);
  function build() {
    const agents = [...S.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    return [
      error ? errorBox('load the agents', error) : null,
      !S.ready && !agents.length ? loading()
        : agents.length ? h('div', { class: 'agent-grid' }, agents.map(agentCard)) : empty('No agents are defined.'),
      poolsSection(),
    ];
  }
  // Concurrency pools per provider or account: the governor's limits now.
  function poolsSection() {
    if (!pools.length) return null;
    const limit = (p) => (p.limit == null ? 'no limit' : `${p.limit}${p.lowered ? ` (lowered${p.size != null ? ` from ${p.size}` : ''})` : ''}`);
    const when = (ts) => (ts ? h('span', { title: new Date(ms(ts)).toLocaleString() }, relTime(ts)) : '—');
    return h('section', { class: 'pools' },
      sectionHead('Pools', h('span', { class: 'muted small' }, 'runs at once per provider or account; a limit halves on a 429 and grows back as runs succeed')),
      h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
        h('thead', null, h('tr', null, ['Pool', 'Limit', 'In use', 'Queued', '429s (1 h)', 'Last 429', 'Agents'].map((c) => h('th', null, c)))),
        h('tbody', null, pools.map((p) => h('tr', { 'data-pool-name': p.name },
          h('td', null, h('strong', null, p.name)),
          h('td', { class: p.lowered ? 'warn-text' : null }, limit(p)),
          h('td', null, String(p.in_use)),
          h('td', null, String(p.queued)),
          h('td', null, String(p.throttled_last_hour)),
          h('td', null, when(p.last_throttled_at)),
          h('td', { class: 'small' }, (p.agents || []).join(', ') || '—')))))));
  }
  function agentCard(a) {
    const installs = a.installs || [];
    const list = (label, arr) => (arr && arr.length ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, label), ' ', arr.join(', ')) : null);
    return h('article', { class: `card agent-card${a.available === false ? ' unavailable' : ''}`, 'data-agent-name': a.name },
      h('div', { class: 'card-top' },
        h('h3', null, a.name),
        h('span', { class: 'tag' }, a.executor),
        a.available === undefined ? null
          : h('span', { class: `badge ${a.available ? 'avail-yes' : 'avail-no'}`, 'data-available': a.available ? 'yes' : 'no' }, a.available ? 'available: yes' : 'available: no')),
      a.description ? h('p', { class: 'desc' }, a.description) : h('p', { class: 'desc muted' }, 'No description.'),
      (a.tags || []).length ? h('ul', { class: 'tags' }, a.tags.map((t) => h('li', { class: 'tag' }, t))) : null,
      h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'CLI'), ' ',
        a.program ? h('code', null, a.program) : h('span', { class: 'muted' }, 'none'),
        (a.command || []).length ? h('span', { class: 'muted small' }, ' · command ', h('code', null, a.command.join(' '))) : null),
      installs.length ? h('ul', { class: 'installs' }, installs.map((i) => h('li', null,
        h('strong', null, i.launcher), ': ',
        i.path ? [h('code', null, i.path), i.version ? h('span', { class: 'muted' }, ` (${i.version})`) : null] : h('span', { class: 'warn-text' }, 'not installed')))) : null,
      a.available === false && a.install_hint ? h('p', { class: 'hint' }, h('strong', null, 'To install: '), a.install_hint) : null,
      a.available === false && !a.install_hint ? h('p', { class: 'hint' }, 'No online launcher offers this agent’s executor.') : null,
      a.model ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Model'), ' ', a.model) : null,
      list('Delegates to', a.delegates_to),
      list('Fallback', a.fallback),
      list('Tools', a.tools),
      a.max_parallel != null ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'At most'), ` ${a.max_parallel} at once`) : null,
      a.budget_usd != null ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Budget'), ' ', fmtCost(a.budget_usd)) : null,
      a.source ? h('div', { class: 'fact-line small muted' }, 'From ', h('code', null, a.source)) : null);
  }
  function refresh() { if (content) rerender(content, build); }
  return {
    title: 'Agents',
    mount(r) {
      root = r;
      content = h('div');
      root.append(h('div', { class: 'page-head' }, h('h1', null, 'Agents'),
        h('p', { class: 'muted' }, 'Definitions from .claude/agents, .baton/agents and the API, with where their CLI is installed, and the pools they share.')), content);
      refresh();
      reloadNow();
    },
    refresh,
    reload,
    unmount() { alive = false; reload.cancel(); },
  };
}

// ---------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------

// Webhooks, their recent deliveries (status, attempts, last answer) and
// "redeliver". Deliveries change without events on the stream: read every few
// seconds while the view is open.
function WebhooksView() {
  let content, alive = true, timer = null;
  let error = null, hooks = null;
  const deliveries = new Map();
  async function reloadNow() {
    try {
      const list = await api('/api/webhooks');
      const logs = await Promise.all((list || []).map((w) => api(`/api/webhooks/${enc(w.id)}/deliveries?limit=10`)));
      if (!alive) return;
      hooks = list || [];
      deliveries.clear();
      hooks.forEach((w, i) => deliveries.set(w.id, logs[i] || []));
      error = null;
    } catch (err) {
      error = err;
    }
    if (alive) refresh();
  }
  async function redeliver(d) {
    try {
      await api(`/api/deliveries/${enc(d.id)}/redeliver`, { method: 'POST', body: {} });
      toastOk(`Delivery ${d.id} will be sent again now.`);
      reloadNow();
    } catch (err) {
      toastError('send the delivery again', err);
    }
  }
  function answer(a) {
    if (!a) return '—';
    return a.error || String(a.status);
  }
  function deliveryRow(d) {
    const last = d.attempts[d.attempts.length - 1];
    return h('tr', { 'data-delivery-id': d.id },
      h('td', null, h('code', null, d.event)),
      h('td', null, h('span', { class: `badge delivery-${d.status}` }, d.status)),
      h('td', null, String(d.attempts.length)),
      h('td', { class: 'small' }, answer(last)),
      h('td', null, h('span', { title: new Date(ms(d.created_at)).toLocaleString() }, relTime(d.created_at))),
      h('td', null, h('button', { type: 'button', class: 'btn small', 'data-focus-key': `redeliver-${d.id}`, onclick: () => redeliver(d) }, 'Redeliver')));
  }
  function hookCard(w) {
    const log = deliveries.get(w.id) || [];
    return h('article', { class: 'card webhook-card', 'data-webhook-id': w.id },
      h('div', { class: 'card-top' },
        h('h3', null, h('code', null, w.id)),
        h('span', { class: 'tag' }, w.format),
        w.disabled ? h('span', { class: 'badge avail-no' }, 'disabled') : h('span', { class: 'badge avail-yes' }, 'active')),
      h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'URL'), ' ', h('code', { class: 'wrap' }, w.url)),
      h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Events'), ' ', w.events.join(', ')),
      h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Deliveries'), ` ${w.pending} pending, ${w.failed} failed`),
      w.disabled ? h('p', { class: 'hint' }, w.disabled) : null,
      log.length ? h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
        h('thead', null, h('tr', null, ['Event', 'Status', 'Attempts', 'Last answer', 'Made', ''].map((c) => h('th', null, c)))),
        h('tbody', null, log.map(deliveryRow)))) : h('p', { class: 'muted small' }, 'Nothing delivered yet.'));
  }
  function build() {
    return [
      error ? errorBox('load the webhooks', error) : null,
      hooks === null ? loading()
        : hooks.length ? hooks.map(hookCard)
          : empty('No webhooks. Add one with: baton webhook add URL --event task.awaiting_approval --format slack'),
    ];
  }
  function refresh() { if (content) rerender(content, build); }
  return {
    title: 'Webhooks',
    mount(r) {
      content = h('div');
      r.append(h('div', { class: 'page-head' }, h('h1', null, 'Webhooks'),
        h('p', { class: 'muted' }, 'Where Baton tells what happened: signed deliveries, retried for 24 h, with one-tap action links.')), content);
      refresh();
      reloadNow();
      timer = setInterval(reloadNow, 3000);
    },
    refresh,
    unmount() { alive = false; clearInterval(timer); },
  };
}

// ---------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------

const docPrefs = { q: '' };

function DocsView() {
  let root, input, list, pane, alive = true;
  let selected = null, version = null, seq = 0, dseq = 0;
  let results = [];

  async function search() {
    const my = ++seq;
    const q = input.value.trim();
    docPrefs.q = input.value;
    const url = q ? `/api/docs?q=${enc(q)}&limit=100` : '/api/docs?limit=100';
    list.setAttribute('aria-busy', 'true');
    try {
      const res = await api(url);
      if (!alive || my !== seq) return;
      results = res || [];
      renderList(q);
    } catch (err) {
      if (!alive || my !== seq) return;
      list.replaceChildren(errorBox('search the documents', err));
    } finally {
      if (my === seq) list.removeAttribute('aria-busy');
    }
  }
  const searchSoon = debounce(search, 250);

  function highlight(snippet) {
    const out = [];
    const re = /\[([^\[\]]*)\]/g;
    let last = 0, m;
    while ((m = re.exec(snippet))) {
      if (m.index > last) out.push(snippet.slice(last, m.index));
      out.push(h('mark', null, m[1]));
      last = re.lastIndex;
    }
    if (last < snippet.length) out.push(snippet.slice(last));
    return out;
  }

  function renderList(q) {
    rerender(list, () => [
      h('p', { class: 'muted small' }, q ? `${plural(results.length, 'match', 'matches')} for “${q}”` : `${plural(results.length, 'document')}, newest first`),
      results.length ? h('ul', { class: 'doc-list' }, results.map((e) => h('li', null,
        h('a', { href: docHref(e.name), class: `doc-item${e.name === selected ? ' selected' : ''}`, 'data-doc-name': e.name, 'data-focus-key': 'doc:' + e.name,
          'aria-current': e.name === selected ? 'true' : null },
        h('span', { class: 'doc-name' }, e.name),
        h('span', { class: 'doc-meta' }, `v${e.version} · ${fmtBytes(e.size)} · `, rel(e.updated_at)),
        (e.tags || []).length ? h('span', { class: 'tags' }, e.tags.map((t) => h('span', { class: 'tag' }, t))) : null,
        e.snippet ? h('span', { class: 'snippet' }, highlight(e.snippet)) : null)))) : empty(q ? 'Nothing matches.' : 'The context store is empty.'),
    ]);
  }

  async function showDoc() {
    const my = ++dseq;
    if (!selected) {
      pane.replaceChildren(empty('Choose a document to read it.'));
      return;
    }
    pane.replaceChildren(loading());
    try {
      const d = await api(`/api/docs/${docPath(selected)}${version ? `?version=${version}` : ''}`);
      if (!alive || my !== dseq) return;
      renderDoc(d);
    } catch (err) {
      if (!alive || my !== dseq) return;
      pane.replaceChildren(errorBox(`read ${selected}${version ? ` (version ${version})` : ''}`, err));
    }
  }

  function renderDoc(d) {
    const versions = d.versions || [];
    const latest = versions.length ? versions[0].version : d.version;
    const meta = Object.entries(d.metadata || {});
    pane.replaceChildren(h('article', { class: 'doc', 'data-doc': d.name },
      h('h2', null, d.name),
      h('p', { class: 'muted small' },
        `version ${d.version}${d.version !== latest ? ` (latest is ${latest})` : ''} · ${d.content_type} · ${fmtBytes(d.size)} · updated `, rel(d.updated_at),
        d.written_by ? [' by session ', h('code', null, d.written_by)] : null,
        d.project_id ? ` · project ${projectName(d.project_id)}` : null),
      (d.tags || []).length ? h('ul', { class: 'tags' }, d.tags.map((t) => h('li', { class: 'tag' }, t))) : null,
      meta.length ? h('div', { class: 'doc-section' }, h('h3', null, 'Metadata'),
        h('table', { tabindex: '0', class: 'table kv' }, h('tbody', null, meta.map(([k, v]) => h('tr', null, h('th', null, k), h('td', { class: 'mono small' }, typeof v === 'string' ? v : JSON.stringify(v))))))) : null,
      (d.relations || []).length ? h('div', { class: 'doc-section' }, h('h3', null, 'Relations'),
        h('ul', null, d.relations.map((r) => h('li', null, h('span', { class: 'muted' }, r.kind, ': '), h('a', { href: docHref(r.target) }, r.target))))) : null,
      (d.referenced_by || []).length ? h('div', { class: 'doc-section' }, h('h3', null, 'Referenced by'),
        h('ul', null, d.referenced_by.map((n) => h('li', null, h('a', { href: docHref(n) }, n))))) : null,
      versions.length > 1 ? h('div', { class: 'doc-section' }, h('h3', null, 'Versions'),
        h('ul', { class: 'versions' }, versions.map((v) => h('li', null,
          h('button', { type: 'button', class: `btn small${v.version === d.version ? ' current' : ''}`, 'aria-pressed': v.version === d.version ? 'true' : 'false',
            onclick: () => { version = v.version === latest ? null : v.version; showDoc(); } }, `v${v.version}`),
          h('span', { class: 'muted small' }, ` ${fmtBytes(v.size)} · `, rel(v.updated_at), v.written_by ? ` · ${v.written_by}` : ''))))) : null,
      h('div', { class: 'doc-section' }, h('h3', null, 'Content'),
        d.content != null
          ? h('pre', { class: 'pre doc-content' }, capText(d.content))
          : h('p', { class: 'notice' }, `binary, ${d.size} bytes `,
            h('a', { href: `/api/docs/${docPath(d.name)}?raw=true${version ? `&version=${version}` : ''}`, download: d.name.split('/').pop() }, 'download')))));
  }

  return {
    title: 'Documents',
    mount(r, params) {
      root = r;
      input = h('input', { type: 'search', class: 'input wide', 'data-input': 'doc-search', placeholder: 'Search documents (press / to focus)', 'aria-label': 'Search documents', value: docPrefs.q });
      input.addEventListener('input', () => searchSoon());
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); searchSoon.cancel(); search(); }
      });
      list = h('div', { class: 'doc-results', 'aria-label': 'Search results' }, loading());
      pane = h('div', { class: 'doc-pane' });
      root.append(
        h('div', { class: 'page-head row' }, h('h1', null, 'Documents'), h('div', { class: 'toolbar grow' }, input)),
        h('div', { class: 'doc-layout' }, list, pane));
      selected = params.doc;
      search();
      showDoc();
    },
    update(params) {
      if (params.doc !== selected) {
        selected = params.doc;
        version = null;
        for (const a of list.querySelectorAll('[data-doc-name]')) {
          const on = a.getAttribute('data-doc-name') === selected;
          a.classList.toggle('selected', on);
          if (on) a.setAttribute('aria-current', 'true'); else a.removeAttribute('aria-current');
        }
        showDoc();
      }
      return true;
    },
    focusSearch() { input.focus(); input.select(); },
    onDocument(d) {
      searchSoon();
      if (d && d.name === selected && !version) showDoc();
    },
    unmount() { alive = false; searchSoon.cancel(); },
  };
}

// ---------------------------------------------------------------------------
// Costs
// ---------------------------------------------------------------------------

const TASK_ROWS = 300;

function CostsView() {
  let root, content, showAll = false;
  function usageCells(u) {
    u = u || {};
    return [h('td', { class: 'num' }, fmtCost(u.cost_usd)), h('td', { class: 'num' }, fmtTokens(u.input_tokens)), h('td', { class: 'num' }, fmtTokens(u.output_tokens))];
  }
  const usageHead = (first) => h('thead', null, h('tr', null, h('th', null, first), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens')));
  const byCost = (a, b) => ((b[1] && b[1].cost_usd) || 0) - ((a[1] && a[1].cost_usd) || 0);
  /** What tasks that ended in each hour cost, by project and by agent. */
  function costCharts() {
    const byProject = hourBuckets(24);
    const byAgent = hourBuckets(24);
    for (const t of S.tasks.values()) {
      const cost = t.usage && t.usage.cost_usd;
      if (!cost) continue;
      const at = ms(t.finished_at) || ms(t.updated_at);
      addAt(byProject, at, projectName(t.project_id), cost);
      addAt(byAgent, at, t.agent, cost);
    }
    return [barChart('Cost per hour, by project', byProject, fmtCost), barChart('Cost per hour, by agent', byAgent, fmtCost)];
  }
  function build() {
    if (!S.ready) return loading();
    const c = S.costs;
    const tasks = [...S.tasks.values()].filter((t) => t.usage && (t.usage.cost_usd || t.usage.input_tokens || t.usage.output_tokens))
      .sort((a, b) => (b.usage.cost_usd - a.usage.cost_usd) || (b.usage.output_tokens - a.usage.output_tokens));
    const shown = showAll ? tasks : tasks.slice(0, TASK_ROWS);
    return [
      S.costsError ? h('div', { class: 'error-box', 'data-error': '' }, h('p', null, `Could not load the costs: ${S.costsError}`)) : null,
      c ? h('div', { class: 'stat-row' },
        h('div', { class: 'stat' }, h('div', { class: 'stat-n', 'data-total-cost': '' }, fmtCost(c.total && c.total.cost_usd)), h('div', { class: 'muted small' }, 'spent in all')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-n' }, fmtTokens(c.total && c.total.input_tokens)), h('div', { class: 'muted small' }, 'input tokens')),
        h('div', { class: 'stat' }, h('div', { class: 'stat-n' }, fmtTokens(c.total && c.total.output_tokens)), h('div', { class: 'muted small' }, 'output tokens'))) : loading('Loading the costs…'),
      h('section', { class: 'block' }, sectionHead('Cost over the last 24 hours'),
        h('div', { class: 'two-col' }, costCharts())),
      c ? h('div', { class: 'two-col' },
        h('section', { class: 'block' }, sectionHead('By project'),
          Object.keys(c.projects || {}).length ? h('table', { tabindex: '0', class: 'table' }, usageHead('Project'),
            h('tbody', null, Object.entries(c.projects).sort(byCost).map(([id, u]) => h('tr', { 'data-project-id': id }, h('td', null, projectName(id)), usageCells(u))))) : empty('Nothing spent yet.')),
        h('section', { class: 'block' }, sectionHead('By agent'),
          Object.keys(c.agents || {}).length ? h('table', { tabindex: '0', class: 'table' }, usageHead('Agent'),
            h('tbody', null, Object.entries(c.agents).sort(byCost).map(([name, u]) => h('tr', { 'data-agent-name': name }, h('td', null, name), usageCells(u))))) : empty('Nothing spent yet.'))) : null,
      c && (c.rows || []).length > 1 ? h('section', { class: 'block' }, sectionHead('By project and agent'),
        h('table', { tabindex: '0', class: 'table' },
          h('thead', null, h('tr', null, h('th', null, 'Project'), h('th', null, 'Agent'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens'))),
          h('tbody', null, [...c.rows].sort((a, b) => b.usage.cost_usd - a.usage.cost_usd).map((r) => h('tr', null, h('td', null, projectName(r.project_id)), h('td', null, r.agent), usageCells(r.usage)))))) : null,
      h('section', { class: 'block' }, sectionHead('By task', h('span', { class: 'count' }, String(tasks.length))),
        tasks.length ? h('table', { tabindex: '0', class: 'table' },
          h('thead', null, h('tr', null, h('th', null, 'Task'), h('th', null, 'Status'), h('th', null, 'Agent'), h('th', null, 'Project'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens'))),
          h('tbody', null, shown.map((t) => taskRow(t, [
            h('td', null, taskTitleLink(t), h('div', { class: 'muted small mono' }, t.id)),
            h('td', null, badge(t.status)),
            h('td', null, t.agent),
            h('td', null, projectName(t.project_id)),
            usageCells(t.usage),
          ])))) : empty('No task has spent anything yet.'),
        tasks.length > shown.length ? h('button', { type: 'button', class: 'btn small', 'data-focus-key': 'costs-all', onclick: () => { showAll = true; refresh(); } }, `Show all ${tasks.length}`) : null,
        h('p', { class: 'muted small' }, 'Per-task figures cover the tasks loaded in this page (the newest 1000 and any that changed since).')),
    ];
  }
  function refresh() { rerender(content, build); }
  return {
    title: 'Costs',
    mount(r) {
      root = r;
      content = h('div');
      root.append(h('div', { class: 'page-head' }, h('h1', null, 'Costs')), content);
      refresh();
    },
    refresh,
  };
}

// ---------------------------------------------------------------------------
// Fleet
// ---------------------------------------------------------------------------

/** The launchers: where agents run, what each host offers, and drain / undrain. */
function FleetView() {
  let content;
  /** @type {Map<string, string>} what the last drain or undrain of a launcher said, when it failed */
  const errors = new Map();
  /**
   * @param {Api.Launcher} l
   * @param {boolean} draining
   * @param {HTMLButtonElement} btn
   */
  async function setDraining(l, draining, btn) {
    btn.disabled = true;
    try {
      const saved = await api(`/api/launchers/${enc(l.id)}/${draining ? 'drain' : 'undrain'}`, { method: 'POST' });
      errors.delete(l.id);
      upsert(S.launchers, saved.id, saved);
    } catch (err) {
      errors.set(l.id, err.message);
    }
    refresh();
  }
  /** @param {Api.Launcher} l */
  function row(l) {
    const used = (l.running || []).length;
    const programs = Object.entries(l.programs || {});
    return h('tr', { 'data-launcher-id': l.id, 'data-draining': l.draining ? 'yes' : 'no' },
      h('td', null, h('strong', null, l.name), h('div', { class: 'muted small mono' }, l.id)),
      h('td', { class: 'mono small' }, l.hostname),
      h('td', null, h('span', { class: `badge launcher-${l.status}` }, l.status),
        l.draining ? [' ', h('span', { class: 'tag warn' }, 'draining')] : null),
      h('td', null, `${used} / ${l.slots}`),
      h('td', null, (l.labels || []).length ? (l.labels || []).map((x) => h('span', { class: 'tag' }, x)) : h('span', { class: 'muted' }, '—')),
      h('td', { class: 'small' }, programs.length
        ? programs.map(([name, p], i) => [i ? ', ' : '', name, h('span', { class: 'muted', title: p.path || '' }, !p.path ? ' (not found)' : p.version ? ` ${p.version}` : '')])
        : (l.executors || []).join(', ')),
      h('td', { class: 'small', title: (l.sandbox && l.sandbox.reason) || '' }, (l.sandbox && l.sandbox.kind) || '—'),
      h('td', { class: 'small mono' }, l.version),
      h('td', null, rel(l.last_seen)),
      h('td', null,
        h('button', { type: 'button', class: 'btn small', 'data-action': l.draining ? 'undrain' : 'drain', 'data-focus-key': 'drain:' + l.id,
          title: l.draining ? 'Take new runs again' : 'Finish the runs it has and take no new ones',
          onclick: (e) => setDraining(l, !l.draining, e.currentTarget) }, l.draining ? 'Undrain' : 'Drain'),
        errors.has(l.id) ? h('div', { class: 'small warn-text' }, errors.get(l.id)) : null));
  }
  function build() {
    if (!S.ready) return loading();
    const list = [...S.launchers.values()].sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name) : a.status === 'online' ? -1 : 1));
    const online = list.filter((l) => l.status === 'online');
    const slots = online.reduce((n, l) => n + l.slots, 0);
    const used = online.reduce((n, l) => n + (l.running || []).length, 0);
    return [
      h('p', { class: 'muted' }, `${online.length} of ${plural(list.length, 'launcher')} online · ${used} of ${plural(slots, 'slot')} in use`),
      list.length
        ? h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
          h('thead', null, h('tr', null, ['Launcher', 'Host', 'Health', 'Slots', 'Labels', 'Programs', 'Sandbox', 'Version', 'Last seen', ''].map((c) => h('th', null, c)))),
          h('tbody', null, list.map(row))))
        : empty('No launcher has registered. `baton up` embeds one; `baton launcher` runs one elsewhere.'),
    ];
  }
  function refresh() { rerender(content, build); }
  return {
    title: 'Fleet',
    mount(root) {
      content = h('div');
      root.append(h('div', { class: 'page-head' }, h('h1', null, 'Fleet')), content);
      refresh();
    },
    refresh,
  };
}

// ---------------------------------------------------------------------------
// Not found
// ---------------------------------------------------------------------------

function NotFoundView() {
  return {
    title: 'Not found',
    mount(root, params) {
      root.append(h('div', { class: 'page-head' }, h('h1', null, 'Nothing here')),
        h('p', null, 'The dashboard has no page at ', h('code', null, params.path || ''), '. ', h('a', { href: '#/' }, 'Go to the overview'), '.'));
    },
  };
}

// ---------------------------------------------------------------------------
// Start
// ---------------------------------------------------------------------------

function start() {
  // A browser route such as /tasks/t-… (served by the same page) becomes its hash route.
  if ((!location.hash || location.hash === '#') && location.pathname !== '/' && !location.pathname.startsWith('/assets/')) {
    const p = location.pathname.replace(/\/+$/, '');
    if (/^\/(board|dag|agents|docs|costs|tasks)(\/|$)/.test(p)) history.replaceState(null, '', '/#' + p + location.search);
  }
  navStack.push(currentHash());
  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('keydown', onKeyDown);
  document.addEventListener('click', onClick);
  openFleet();        // the stream first, so nothing falls between it and the snapshots
  route();
  loadSnapshots();
}

start();
