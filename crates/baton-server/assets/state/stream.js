// The live stream: one EventSource on /api/stream, opened before the first
// snapshots are read (so nothing falls in the gap), resumed after a drop from the
// last event seen. Its events go to the store; nothing polls.

import { api } from '../api/client.js';
import { toastError } from '../ui/toast.js';
import { applyEvent, loadSnapshots, queueCosts, queueLead, state } from './store.js';

/** @type {Api.EventKind[]} the kinds the mirror follows */
const FLEET_KINDS = ['task', 'session', 'run', 'launcher', 'project', 'agent', 'document', 'orchestration', 'usage'];

/** @type {EventSource | null} */
let fleet = null;
/** @type {any[]} events that arrived before the snapshots: applied after them */
let buffered = [];
let backoff = 1000;
/** @type {number | null} the last event applied */
let lastId = null;

/** Shows in the header whether live updates are on. @param {boolean} on */
function setLive(on) {
  const el = document.getElementById('live');
  if (!el) return;
  const word = on ? 'connected' : 'reconnecting';
  el.setAttribute('data-live', word);
  const label = el.querySelector('.live-label');
  if (label) label.textContent = on ? 'live' : word;
  el.title = on ? 'Live updates are on' : 'Live updates are reconnecting';
}

function open() {
  if (state.loggedOut) return;
  let url = '/api/stream?kinds=' + FLEET_KINDS.join(',');
  const resumeFrom = lastId;
  if (resumeFrom != null) url += '&after=' + resumeFrom;
  const es = new EventSource(url, { withCredentials: true });
  fleet = es;
  let hadError = false;
  es.onopen = () => {
    setLive(true);
    backoff = 1000;
    if (hadError && state.ready) { queueCosts(); for (const id of state.projects.keys()) queueLead(id); }
  };
  es.onerror = () => {
    if (state.loggedOut || fleet !== es) return;
    hadError = true;
    setLive(false);
    if (es.readyState === EventSource.CLOSED) setTimeout(() => reopen(resumeFrom), backoff);
  };
  for (const kind of FLEET_KINDS) es.addEventListener(kind, (m) => { if (fleet === es) receive(m); });
}

/**
 * The browser gave up (a non-200 answer): find out why, then open again.
 * @param {number | null} resumeFrom
 */
async function reopen(resumeFrom) {
  try { await api('/healthz'); await api('/api/projects'); } catch { /* shown or retried */ }
  if (state.loggedOut) return;
  backoff = Math.min(backoff * 2, 30000);
  open();
  if (resumeFrom == null && lastId == null && state.ready) load();
}

/** @param {MessageEvent} m */
function receive(m) {
  let ev;
  try { ev = JSON.parse(m.data); } catch { return; }
  const id = Number(m.lastEventId) || ev.id;
  // A stream reopened with `after` replays from there on its own reconnects: skip what was seen.
  if (id && lastId != null && id <= lastId) return;
  if (id) lastId = id;
  if (state.ready) applyEvent(ev);
  else buffered.push(ev);
}

async function load() {
  const failed = await loadSnapshots();
  for (const f of failed) toastError(`load ${f.what}`, f.err);
  const held = buffered;
  buffered = [];
  for (const ev of held) applyEvent(ev);
}

/** Opens the stream, then reads the snapshots. */
export function startStream() {
  open();
  load();
}

/** Closes the stream for good (the browser is logged out). */
export function stopStream() {
  if (fleet) fleet.close();
  fleet = null;
}
