// The task page's timeline: every event of the task (messages, tool calls and
// results, output, usage, runs, Baton's own notes), read in pages, then live from
// a stream of its own; it follows the end while the reader is there.

import { api } from '../../api/client.js';
import { EventKind } from '../../api/enums.js';
import { add, h } from '../../lib/dom.js';
import { capText, clock, duration, fmtCost, fmtTokens, ms, oneLine, plural, pretty, textOf } from '../../lib/format.js';
import { enc } from '../../lib/links.js';
import { state, upsertTask } from '../../state/store.js';
import { errorBox } from '../../ui/errors.js';
import { badge, loading } from '../shared.js';

/**
 * An event as the API and the stream give it.
 * @typedef {{id: number, kind: Api.EventKind, ts: string, seq?: number, data?: any, raw?: string}} TimelineEvent
 */
/** @typedef {{lastTask: {status: string, reason?: string} | null}} Memo */

/** Events read per request. */
const EVENTS_PAGE = 10000;

/**
 * @param {import('./view.js').TaskPage} page
 */
export function Timeline(page) {
  const list = h('div', { class: 'timeline', 'aria-live': 'off' }, loading('Loading events…'));
  const count = h('span', { class: 'count' }, '…');
  const jump = h('button', { type: 'button', class: 'btn small jump', hidden: true, onclick: () => window.scrollTo(0, document.documentElement.scrollHeight) }, '↓ Latest');
  const panel = h('div', { class: 'panel', id: 'panel-timeline', role: 'tabpanel', 'aria-labelledby': 'tab-timeline', 'data-panel': 'timeline' }, list, jump);
  /** @type {{close: () => void} | null} */
  let stream = null;
  let lastId = 0, shownCount = 0, flushQueued = false;
  /** @type {TimelineEvent[]} events waiting for the next frame */
  let queue = [];
  /** @type {Memo} the last task event shown: a repeat of its status is dimmed */
  const memo = { lastTask: null };
  const onScroll = () => { if (page.tab === 'timeline') jump.hidden = atBottom(); };
  window.addEventListener('scroll', onScroll, { passive: true });

  /** Reads every event so far, page by page, then follows the stream. */
  async function load() {
    let after = 0;
    const first = [];
    let failed = null;
    try {
      for (;;) {
        const got = await api(`/api/tasks/${enc(page.id)}/events?after=${after}&limit=${EVENTS_PAGE}`);
        if (!page.alive) return;
        first.push(...(got || []));
        if (!got || got.length < EVENTS_PAGE) break;
        after = got[got.length - 1].id;
      }
    } catch (err) {
      failed = err;
    }
    if (!page.alive) return;
    // What loaded is shown, after the reason the rest did not; live events follow.
    list.replaceChildren(...(failed ? [errorBox('load the events', failed)] : []));
    enqueue(first);
    flush(true);
    if (page.alive) stream = follow(page, () => lastId, (ev) => enqueue([ev]));
  }

  /** @type {((evs: TimelineEvent[]) => void)[]} who else reads the events (the conversation) */
  const readers = [];
  /** @param {TimelineEvent[]} evs */
  function enqueue(evs) {
    const fresh = [];
    for (const ev of evs) {
      if (!ev || ev.id <= lastId) continue;
      lastId = ev.id;
      queue.push(ev);
      fresh.push(ev);
      if (ev.kind === 'task' && ev.data) upsertTask(ev.data);
    }
    if (fresh.length) for (const r of readers) r(fresh);
    if (!flushQueued && queue.length) {
      flushQueued = true;
      requestAnimationFrame(flush);
    }
  }

  /** @param {boolean | number} [initial] true for the first batch (a frame's timestamp otherwise) */
  function flush(initial) {
    flushQueued = false;
    if (!page.alive || !queue.length) return;
    // The first batch keeps the header in view; later ones follow the end when the reader is there.
    const stick = initial !== true && page.tab === 'timeline' && atBottom();
    const frag = document.createDocumentFragment();
    for (const ev of queue) frag.append(eventRow(ev, memo));
    shownCount += queue.length;
    queue = [];
    list.append(frag);
    count.textContent = String(shownCount);
    if (stick) window.scrollTo(0, document.documentElement.scrollHeight);
    jump.hidden = page.tab !== 'timeline' || atBottom();
  }

  return {
    panel,
    /** The number of events, for the tab's label. */
    count,
    load,
    /** Gives every event read from now on to `f` too. @param {(evs: TimelineEvent[]) => void} f */
    onEvents(f) { readers.push(f); },
    /** The tabs changed: "↓ Latest" shows again when scrolled away. */
    shown() { jump.hidden = true; },
    stop() {
      if (stream) stream.close();
      window.removeEventListener('scroll', onScroll);
    },
  };
}

/**
 * Follows the task's own stream from the last event shown (`after()`), opened
 * again from there after a drop (the query's `after` would replay from where
 * the first stream began).
 * @param {import('./view.js').TaskPage} page
 * @param {() => number} after
 * @param {(ev: any) => void} onEvent
 */
function follow(page, after, onEvent) {
  /** @type {EventSource | null} */
  let es = null;
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let timer;
  let backoff = 1000, closed = false;
  function open() {
    if (!page.alive || closed) return;
    const stream = new EventSource(`/api/stream?task=${enc(page.id)}&after=${after()}`, { withCredentials: true });
    es = stream;
    stream.onopen = () => { backoff = 1000; };
    stream.onerror = () => {
      stream.close();
      if (!page.alive || closed || es !== stream || state.loggedOut) return;
      es = null;
      timer = setTimeout(open, backoff);
      backoff = Math.min(backoff * 2, 15000);
    };
    for (const kind of EventKind) {
      stream.addEventListener(kind, (m) => {
        if (es !== stream) return;
        try { onEvent(JSON.parse(m.data)); } catch { /* ignore a malformed frame */ }
      });
    }
  }
  open();
  return {
    close() {
      closed = true;
      if (es) es.close();
      es = null;
      clearTimeout(timer);
    },
  };
}

function atBottom() {
  const doc = document.documentElement;
  return window.innerHeight + window.scrollY >= doc.scrollHeight - 60;
}

/**
 * One event's row: its time (the exact time and its place in the session on hover) and its body.
 * @param {TimelineEvent} ev
 * @param {Memo} memo
 */
function eventRow(ev, memo) {
  const d = ev.data && typeof ev.data === 'object' ? ev.data : {};
  const el = h('div', { class: `ev ev-${ev.kind}`, 'data-event-kind': ev.kind, 'data-event-id': ev.id });
  const time = h('time', { class: 'ev-time', datetime: ev.ts, title: `${new Date(ms(ev.ts)).toLocaleString()}${ev.seq != null ? ` · event ${ev.seq} of the session` : ''}` }, clock(ev.ts));
  const body = (BODIES[ev.kind] || otherBody)(d, el, ev, memo);
  add(el, [time, h('div', { class: 'ev-body' }, body)]);
  return el;
}

const label = (/** @type {string[]} */ ...text) => h('span', { class: 'ev-label' }, ...text);
const inlineText = (/** @type {string} */ text) => h('span', { class: 'ev-text inline' }, text);

/** @type {Record<string, string>} the feedback loops' names, as a step on the timeline says them */
const LOOP_NAMES = { checks: 'checks', conflict: 'conflict', review: 'review', pr: 'pull request', forge: 'CI / PR review' };

/** @type {(d: any, el: HTMLElement, ev: any) => unknown} */
const otherBody = (d, el, ev) => [label(ev.kind), ' ', h('span', { class: 'muted' }, oneLine(d, 200))];

/**
 * How each kind of event reads: its body, and classes on its row (an error, stderr, a repeat).
 * @type {Record<string, (d: any, el: HTMLElement, ev: any, memo: any) => unknown>}
 */
const BODIES = {
  message(d) {
    const role = d.role || 'assistant';
    return [h('span', { class: `ev-label role role-${role}` }, role), h('div', { class: 'ev-text' }, capText(d.text ?? textOf(d.content)))];
  },
  tool_call: (d) => h('details', { class: 'ev-details' },
    h('summary', null, label('→ ', d.name || 'tool'), ' ', h('span', { class: 'muted mono' }, oneLine(d.input, 160))),
    h('pre', { class: 'pre' }, capText(pretty(d.input)))),
  tool_result(d, el) {
    if (d.is_error === true) el.classList.add('is-error');
    const out = textOf(d.output);
    return h('details', { class: 'ev-details' },
      h('summary', null, label(d.is_error === true ? '← tool error' : '← result'), ' ', h('span', { class: 'muted mono' }, oneLine(out, 160))),
      h('pre', { class: 'pre' }, capText(out)));
  },
  output(d, el, ev) {
    if (d.stream === 'stderr') el.classList.add('stderr');
    return h('pre', { class: 'ev-line' }, d.line ?? ev.raw ?? '');
  },
  raw: (d, el, ev) => h('pre', { class: 'ev-line' }, d.line ?? ev.raw ?? oneLine(d, 400)),
  usage: (d) => h('span', { class: 'muted' }, `usage: ${fmtTokens(d.input_tokens)} in, ${fmtTokens(d.output_tokens)} out, ${fmtCost(d.cost_usd)}`),
  result(d, el) {
    if (d.is_error === true) el.classList.add('is-error');
    const facts = [d.subtype, d.num_turns != null ? plural(d.num_turns, 'turn') : null, d.duration_ms != null ? duration(d.duration_ms) : null].filter(Boolean).join(' · ');
    return [label(d.is_error === true ? 'Result (error)' : 'Result'), facts ? h('span', { class: 'muted small' }, ' ', facts) : null,
      d.text ? h('div', { class: 'ev-text' }, capText(d.text)) : null];
  },
  error(d, el) {
    el.classList.add('is-error');
    return [label('Error'), ' ', inlineText(d.message ?? oneLine(d, 400))];
  },
  log(d, el) {
    if (!d.loop) return [label('baton'), ' ', inlineText(d.message ?? oneLine(d, 400))];
    // A step of a feedback loop: what checks, a conflict, a reviewer or the forge said went back to the agent.
    // Its message already says which attempt or round it is.
    const kind = String(d.loop.kind || 'loop');
    el.classList.add('ev-loop');
    el.setAttribute('data-loop', kind);
    return [label('↻ ', LOOP_NAMES[kind] || kind), ' ', inlineText(d.message ?? '')];
  },
  init: (d) => [label('Started'), ' ', h('span', { class: 'muted' },
    [d.model && `model ${d.model}`, d.agent_session_id && `session ${d.agent_session_id}`, d.cwd && `in ${d.cwd}`].filter(Boolean).join(' · ') || 'agent process')],
  task(d, el, ev, memo) {
    const same = memo.lastTask && memo.lastTask.status === d.status && memo.lastTask.reason === d.reason;
    if (same) el.classList.add('repeat');
    memo.lastTask = { status: d.status, reason: d.reason };
    return [label('task'), ' ', same ? h('span', { class: 'muted' }, 'updated') : badge(d.status),
      !same && d.reason ? h('span', { class: 'muted small' }, ' — ', d.reason) : null];
  },
  session: (d) => [label('session'), ' ', h('code', { class: 'muted' }, d.id || ''), ' ', h('span', { class: `badge sess-${d.status}` }, d.status || '?')],
  run(d, el) {
    if (['failed', 'timed_out', 'lost'].includes(d.status)) el.classList.add('is-error');
    return [label('run'), ' ', h('code', { class: 'muted' }, d.id || ''), d.kind ? ` (${d.kind})` : '', ' ',
      h('span', { class: `badge run-${d.status}` }, d.status || '?'),
      d.exit_code != null ? h('span', { class: 'muted small' }, ` exit ${d.exit_code}`) : null,
      d.error ? h('span', { class: 'muted small' }, ' — ', d.error) : null];
  },
  hook: (d) => [label('hook'), ' ', d.hook_event_name || '', d.message ? h('span', { class: 'muted' }, ' — ', d.message) : null,
    d.reason ? h('span', { class: 'muted' }, ' — ', d.reason) : null],
};
