// Pieces several views share: status badges, task rows and chips, the project
// picker, the approve button's action.

import { api } from '../api/client.js';
import { h } from '../lib/dom.js';
import { ms } from '../lib/format.js';
import { enc, taskHref } from '../lib/links.js';
import { state, upsertTask } from '../state/store.js';
import { toastError, toastOk } from '../ui/toast.js';

/** @type {Set<Api.TaskStatus>} statuses in which an agent or its checks are at work */
export const LIVE = new Set(['running', 'checking']);

/**
 * Puts a view's heading (with a line on what it shows) in `root`, and returns the
 * element its content goes in.
 * @param {HTMLElement} root
 * @param {string} title
 * @param {string} [about]
 */
export function pageWithHead(root, title, about) {
  const content = h('div');
  root.append(h('div', { class: 'page-head' }, h('h1', null, title), about ? h('p', { class: 'muted' }, about) : null), content);
  return content;
}

/**
 * The launchers, online first, then by name.
 * @returns {Api.Launcher[]}
 */
export function launchersSorted() {
  return [...state.launchers.values()].sort((a, b) => (a.status === b.status ? a.name.localeCompare(b.name) : a.status === 'online' ? -1 : 1));
}

/**
 * A status as a colored badge.
 * @param {string} status
 * @param {Record<string, unknown>} [attrs]
 */
export function badge(status, attrs = {}) {
  return h('span', { ...attrs, class: `badge st-${status}` }, status);
}

/**
 * A project's name (its id while the projects are not read yet).
 * @param {string} id
 */
export function projectName(id) {
  const p = state.projects.get(id);
  return p ? p.name : id;
}

/** @param {string} [text] */
export function loading(text = 'Loading…') {
  return h('p', { class: 'loading' }, text);
}

/** What an empty list says instead. @param {string} text */
export function empty(text) {
  return h('p', { class: 'empty' }, text);
}

/**
 * A section's heading, with what goes beside it (a count, a note).
 * @param {string} title
 * @param {...unknown} extra
 */
export function sectionHead(title, ...extra) {
  return h('div', { class: 'section-head' }, h('h2', null, title), extra);
}

/**
 * The tasks `filter` keeps, the most recently changed first.
 * @param {(t: Api.Task) => boolean} [filter]
 * @returns {Api.Task[]}
 */
export function tasksSorted(filter) {
  const out = [];
  for (const t of state.tasks.values()) if (!filter || filter(t)) out.push(t);
  out.sort((a, b) => (ms(b.updated_at) || 0) - (ms(a.updated_at) || 0));
  return out;
}

/**
 * A picker of the projects ("All projects" first).
 * @param {string} value the project chosen
 * @param {(id: string) => void} onChange
 * @param {string} key its `data-input` name
 * @returns {HTMLSelectElement}
 */
export function projectSelect(value, onChange, key) {
  const sel = /** @type {HTMLSelectElement} */ (h('select', { 'data-input': key, 'aria-label': 'Project', class: 'select' },
    h('option', { value: '' }, 'All projects'),
    [...state.projects.values()].map((p) => h('option', { value: p.id }, p.name))));
  sel.value = state.projects.has(value) ? value : '';
  sel.addEventListener('change', () => onChange(sel.value));
  return sel;
}

/**
 * Keeps a project picker's options in step with the projects.
 * @param {HTMLSelectElement} sel
 * @param {string} value
 */
export function refreshProjectSelect(sel, value) {
  const want = ['', ...state.projects.keys()].join('|');
  const have = [...sel.options].map((o) => o.value).join('|');
  if (want !== have) {
    sel.replaceChildren(h('option', { value: '' }, 'All projects'),
      ...[...state.projects.values()].map((p) => h('option', { value: p.id }, p.name)));
  }
  sel.value = state.projects.has(value) ? value : '';
}

/**
 * Approves a task awaiting approval, saying so (or why not) in a toast.
 * @param {string} id
 * @param {HTMLButtonElement} [btn] the button pressed, busy meanwhile
 */
export async function approveTask(id, btn) {
  const t = state.tasks.get(id);
  if (btn) { btn.disabled = true; btn.textContent = 'Approving…'; }
  try {
    /** @type {Api.Task} */
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
export function taskRow(t, cells) {
  return h('tr', { 'data-task-id': t.id, 'data-href': taskHref(t.id), class: 'row-link' }, cells);
}

/** @param {Api.Task} t */
export function taskTitleLink(t) {
  return h('a', { href: taskHref(t.id), 'data-focus-key': 'task:' + t.id }, t.title || t.id);
}

/**
 * A compact block for a task in a list (children, dependencies, next wave).
 * @param {Api.Task | undefined} t
 * @param {string} [id]
 */
export function taskChip(t, id) {
  if (!t) {
    return h('li', { class: 'chip', 'data-task-id': id },
      h('a', { href: taskHref(id) }, h('code', null, id)), ' ', h('span', { class: 'muted' }, 'unknown'));
  }
  return h('li', { class: 'chip', 'data-task-id': t.id },
    badge(t.status), ' ', h('a', { href: taskHref(t.id) }, t.title || t.id), ' ', h('code', { class: 'muted' }, t.id));
}
