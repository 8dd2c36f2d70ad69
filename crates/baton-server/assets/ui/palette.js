// The command palette (Ctrl+K / ⌘K): every view, every action, and tasks by id
// or title, found by typing; ↑ ↓ choose, Enter does it, Escape closes.

import { h } from '../lib/dom.js';
import { taskHref } from '../lib/links.js';
import { go } from '../router.js';
import { state } from '../state/store.js';
import { openDialog } from './dialog.js';

/** @typedef {{label: string, hint: string, run: () => void}} Command */

/** @type {Command[]} the actions, set by main.js */
let actions = [];

/**
 * Sets the palette's actions (the composer, the forms).
 * @param {Command[]} list
 */
export function setActions(list) {
  actions = list;
}

/** The views, by name and key. @returns {Command[]} */
function views() {
  const list = [['Overview', '#/', '1'], ['Board', '#/board', '2'], ['DAG', '#/dag', '3'], ['Agents', '#/agents', '4'],
    ['Documents', '#/docs', '5'], ['Costs', '#/costs', '6'], ['Webhooks', '#/webhooks', '7'], ['Fleet', '#/fleet', '8'],
    ['Inbox', '#/inbox', '9'], ['Projects', '#/projects', '0'], ['Plans', '#/plans', '']];
  return list.map(([label, hash, key]) => ({ label: `Go to ${label}`, hint: key ? `view · ${key}` : 'view', run: () => go(hash) }));
}

/**
 * The tasks whose id starts with `q` or whose title contains it, newest first.
 * @param {string} q
 * @returns {Command[]}
 */
function tasks(q) {
  if (!q) return [];
  const out = [];
  for (const t of state.tasks.values()) {
    if (t.id.startsWith(q) || (t.title || '').toLowerCase().includes(q)) out.push(t);
  }
  out.sort((a, b) => String(b.updated_at).localeCompare(String(a.updated_at)));
  /** @type {Command[]} */
  const found = out.slice(0, 12).map((t) => ({ label: t.title || t.id, hint: `task · ${t.id} · ${t.status}`, run: () => go(taskHref(t.id)) }));
  if (/^t-[0-9a-z]+$/.test(q) && !found.length) found.push({ label: `Open task ${q}`, hint: 'task by id', run: () => go(taskHref(q)) });
  return found;
}

/** What the query matches: actions and views by their words, then tasks. @param {string} query */
function matches(query) {
  const q = query.trim().toLowerCase();
  const words = q.split(/\s+/).filter(Boolean);
  const fits = (/** @type {Command} */ c) => words.every((w) => `${c.label} ${c.hint}`.toLowerCase().includes(w));
  return [...actions, ...views()].filter(fits).concat(tasks(q)).slice(0, 30);
}

/** Opens the palette. */
export function openPalette() {
  if (document.querySelector('dialog.palette-dialog')) return;
  const input = /** @type {HTMLInputElement} */ (h('input', {
    class: 'input wide', type: 'search', placeholder: 'Type a view, an action, a task’s id or title…',
    'aria-label': 'Command', role: 'combobox', 'aria-expanded': 'true', 'aria-controls': 'palette-list', autocomplete: 'off',
  }));
  const list = h('ul', { class: 'palette-list', id: 'palette-list', role: 'listbox', 'aria-label': 'Commands' });
  const dlg = openDialog('Go to, or do', [input, list], { label: 'Command palette' });
  dlg.dialog.classList.add('palette-dialog');
  /** @type {Command[]} */
  let shown = [];
  let active = 0;
  const draw = () => {
    shown = matches(input.value);
    active = Math.min(active, Math.max(0, shown.length - 1));
    list.replaceChildren(...shown.map((c, i) => h('li', {
      role: 'option', id: `palette-${i}`, 'aria-selected': i === active ? 'true' : 'false', class: i === active ? 'active' : null,
      onclick: () => run(i),
    }, h('span', { class: 'palette-label' }, c.label), h('span', { class: 'palette-hint muted small' }, c.hint))));
    if (shown.length) input.setAttribute('aria-activedescendant', `palette-${active}`);
  };
  const run = (/** @type {number} */ i) => {
    const c = shown[i];
    if (!c) return;
    dlg.close();
    c.run();
  };
  input.addEventListener('input', () => { active = 0; draw(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      if (shown.length) active = (active + (e.key === 'ArrowDown' ? 1 : shown.length - 1)) % shown.length;
      draw();
      const el = document.getElementById(`palette-${active}`);
      if (el) el.scrollIntoView({ block: 'nearest' });
    } else if (e.key === 'Enter') {
      e.preventDefault();
      run(active);
    }
  });
  draw();
  input.focus();
}
