// The router: a URL per view and per task (`#/board`, `#/tasks/t-…/review`), which
// survives a reload; back and forward; the keys of the page; and re-rendering the
// view on screen when the state changes.

import { h } from './lib/dom.js';
import { fmtCost } from './lib/format.js';
import { listen, state } from './state/store.js';

/**
 * What a view module gives the router. Only `mount` is required.
 * @typedef {object} View
 * @property {string} title the page's title
 * @property {(root: HTMLElement, params: Record<string, any>) => void} mount draws the view into `root`
 * @property {(params: Record<string, any>) => boolean} [update] takes new parameters in place; false to be mounted again
 * @property {() => void} [refresh] redraws from the state (called at most ~5 times a second)
 * @property {(change: import('./state/store.js').Change) => void} [onChange] told of each change to the state
 * @property {() => void} [focusSearch] what `/` does
 * @property {(e: KeyboardEvent) => boolean} [onKey] a key of the view's own (true when it took it)
 * @property {() => void} [unmount] stops what it started (streams, timers)
 */

/** @typedef {{name: string, params: Record<string, any>}} Route */

/** @type {Record<string, () => View>} */
let views = {};
/** @type {{name: string, view: View, root: HTMLElement} | null} */
let current = null;
let stopped = false;

/** @type {Record<string, string>} */
const NAV_KEYS = { 1: '#/', 2: '#/board', 3: '#/dag', 4: '#/agents', 5: '#/docs', 6: '#/costs', 7: '#/webhooks', 8: '#/fleet', 9: '#/inbox', 0: '#/projects' };
const PAGES = ['board', 'dag', 'agents', 'costs', 'webhooks', 'fleet', 'inbox', 'projects', 'plans'];

/** What the keys `n` and Ctrl+K / ⌘K open (set by main.js). */
const openers = { composer: () => {}, palette: () => {} };
/**
 * Sets what `n` (the task composer) and Ctrl+K / ⌘K (the command palette) open.
 * @param {{composer: () => void, palette: () => void}} o
 */
export function setOpeners(o) {
  Object.assign(openers, o);
}

/**
 * The view and its parameters named by the address's hash.
 * @returns {Route}
 */
export function parseHash() {
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
  if (PAGES.includes(first) && !rest.length) return { name: first, params: {} };
  if (first === 'docs') return { name: 'docs', params: { doc: rest.length ? rest.join('/') : null } };
  if (first === 'tasks' && rest.length >= 1 && rest.length <= 2) return { name: 'task', params: { id: rest[0], tab: rest[1] || null } };
  if (first === 'attempts' && rest.length === 1) return { name: 'attempts', params: { id: rest[0] } };
  return { name: 'notfound', params: { path } };
}

/** Shows the view the address names (or lets the one on screen take new parameters). */
function route() {
  if (stopped) return;
  const r = parseHash();
  if (current && current.name === r.name && current.view.update && current.view.update(r.params) !== false) {
    markNav(r.name);
    return;
  }
  if (current && current.view.unmount) current.view.unmount();
  const main = document.getElementById('main');
  const root = h('section', { 'data-view': r.name, class: `view view-${r.name}` });
  main.replaceChildren(root);
  const view = views[r.name]();
  current = { name: r.name, view, root };
  markNav(r.name);
  document.title = `${view.title || 'Baton'} · Baton`;
  const hadFocus = document.activeElement && document.activeElement !== document.body && document.contains(document.activeElement);
  view.mount(root, r.params);
  window.scrollTo(0, 0);
  if (!hadFocus) main.focus({ preventScroll: true });
}

/** Marks the view's link in the header as the current page. @param {string} name */
function markNav(name) {
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.getAttribute('data-nav') === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

/** Goes to `hash` (shows it again when it is already there). @param {string} hash */
export function go(hash) {
  if (location.hash === hash || (hash === '#/' && (location.hash === '' || location.hash === '#'))) route();
  else location.hash = hash;
}

/** @type {string[]} the addresses visited in this tab, so that Escape goes back only within the page */
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

/**
 * Puts `hash` in the address bar in place of the current one (a task's full id
 * for the prefix it was opened with), without showing anything again.
 * @param {string} hash
 */
export function replaceAddress(hash) {
  history.replaceState(history.state, '', hash);
  navStack[navStack.length - 1] = hash;
}

// Rendering: under a flood of events, the view is redrawn at most ~5 times a second.

const RENDER_GAP_MS = 200;
let renderQueued = false;
let lastRender = 0;

function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  const wait = Math.max(0, RENDER_GAP_MS - (performance.now() - lastRender));
  setTimeout(() => requestAnimationFrame(() => {
    renderQueued = false;
    lastRender = performance.now();
    updateSpend();
    if (current && current.view.refresh && !stopped) current.view.refresh();
  }), wait);
}

function updateSpend() {
  const el = document.getElementById('spend');
  if (el) el.textContent = state.costs ? `Spent ${fmtCost(state.costs.total && state.costs.total.cost_usd)}` : '';
}

// Keys and clicks.

/**
 * @param {EventTarget | null} t
 * @returns {t is HTMLElement}
 */
function isTyping(t) {
  return t instanceof HTMLElement && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName));
}

/** Escape goes back, 0–9 go to the views, Enter follows a focused row, `/` searches, `n` composes, Ctrl+K opens the palette. @param {KeyboardEvent} e */
function onKeyDown(e) {
  if (stopped) return;
  const t = e.target;
  if ((e.ctrlKey || e.metaKey) && !e.altKey && (e.key === 'k' || e.key === 'K')) {
    e.preventDefault();
    openers.palette();
    return;
  }
  if (document.querySelector('dialog[open]')) return;
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
  } else if (e.key === 'n' && !e.shiftKey) {
    e.preventDefault();
    openers.composer();
  } else if (current && current.view.onKey && current.view.onKey(e)) {
    e.preventDefault();
  } else if (NAV_KEYS[e.key]) {
    e.preventDefault();
    go(NAV_KEYS[e.key]);
  } else if (e.key === '/' && current && current.view.focusSearch) {
    e.preventDefault();
    current.view.focusSearch();
  }
}

/** A click on a row or card with `data-href` follows it (unless it was on a control or selected text). @param {MouseEvent} e */
function onClick(e) {
  const target = e.target instanceof Element ? e.target : null;
  const el = target ? target.closest('[data-href]') : null;
  if (!el || e.defaultPrevented || e.button !== 0) return;
  const inner = target.closest('a, button, input, select, textarea, summary, label, details');
  if (inner && el.contains(inner) && inner !== el) return;
  const sel = window.getSelection && window.getSelection();
  if (sel && String(sel).length > 0 && el.contains(sel.anchorNode)) return;
  go(el.getAttribute('data-href'));
}

/**
 * Starts routing among `table`'s views, and shows the one the address names.
 * @param {Record<string, () => View>} table
 */
export function startRouter(table) {
  views = table;
  // A browser route such as /tasks/t-… (served by the same page) becomes its hash route.
  if ((!location.hash || location.hash === '#') && location.pathname !== '/' && !location.pathname.startsWith('/assets/')) {
    const p = location.pathname.replace(/\/+$/, '');
    if (/^\/(board|dag|agents|docs|costs|webhooks|fleet|tasks|inbox|projects|plans|attempts)(\/|$)/.test(p)) history.replaceState(null, '', '/#' + p + location.search);
  }
  navStack.push(currentHash());
  window.addEventListener('hashchange', onHashChange);
  document.addEventListener('keydown', onKeyDown);
  document.addEventListener('click', onClick);
  listen((change) => {
    if (current && current.view.onChange && !stopped) current.view.onChange(change);
    scheduleRender();
  });
  route();
}

/** Takes the view off the screen for good (the browser is logged out). */
export function stopRouter() {
  stopped = true;
  if (current && current.view.unmount) current.view.unmount();
  current = null;
}
