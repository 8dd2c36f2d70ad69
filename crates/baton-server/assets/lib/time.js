// Times shown relative to now ("3 min ago", elapsed), kept current by a local
// clock (no network), with the exact time on hover.

import { h, setText } from './dom.js';
import { duration, ms, relTime } from './format.js';

/**
 * A time shown relative to now, refreshed locally; the exact time on hover.
 * @param {string | null | undefined} ts
 * @param {Record<string, unknown>} [attrs]
 */
export function rel(ts, attrs = {}) {
  if (ts == null) return h('span', { class: 'muted' }, '—');
  return h('time', { ...attrs, datetime: ts, 'data-rel': ts, title: new Date(ms(ts)).toLocaleString() }, relTime(ts));
}

/**
 * How long since `from` (ticking), or from `from` to `until`.
 * @param {string | null | undefined} from
 * @param {string | null} [until]
 */
export function since(from, until) {
  if (from == null) return h('span', { class: 'muted' }, '—');
  if (until != null) return h('span', { title: `from ${from} to ${until}` }, duration(ms(until) - ms(from)));
  return h('span', { 'data-since': from, title: `since ${from}` }, duration(Date.now() - ms(from)));
}

// The local clock: elapsed times every second, "3 min ago" texts every 15 seconds.
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

/** Starts the local clock of the times shown. */
export function startClock() {
  setInterval(tickRelative, 1000);
}
