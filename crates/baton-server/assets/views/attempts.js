// Attempts side by side (`#/attempts/ID`): every task started together with
// this one, each with its status, diff stat, checks, cost and time, and its
// diff; "Keep this one" merges it, cancels the others (stopping those still at
// work) and cleans their worktrees, keeping their branches.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { fmtCost, plural } from '../lib/format.js';
import { enc, taskHref } from '../lib/links.js';
import { since } from '../lib/time.js';
import { go } from '../router.js';
import { state, upsertTask } from '../state/store.js';
import { errorBox, errorNodes } from '../ui/errors.js';
import { toastOk } from '../ui/toast.js';
import { badge, loading, pageWithHead } from './shared.js';

/** @returns {import('../router.js').View} */
export function AttemptsView() {
  /** @type {HTMLElement} */
  let content;
  /** @type {string[]} */
  let ids = [];
  /** @type {Map<string, string>} each attempt's patch */
  const patches = new Map();
  /** @type {unknown} */
  let error = null;
  let alive = true;

  /** @param {string} id */
  async function load(id) {
    try {
      /** @type {Api.TaskDetail} */
      const d = await api(`/api/tasks/${enc(id)}`);
      ids = d.attempts && d.attempts.length ? d.attempts : [d.id];
      for (const x of ids) upsertTask(x === d.id ? d : (await api(`/api/tasks/${enc(x)}`)));
      refresh();
      await loadPatches();
    } catch (err) {
      error = err;
      refresh();
    }
  }

  async function loadPatches() {
    for (const x of ids) {
      const t = state.tasks.get(x);
      if (!t || !t.git || !t.git.head) continue;
      try {
        const r = await fetch(`/api/tasks/${enc(x)}/diff?format=patch`, { credentials: 'same-origin' });
        if (r.ok) patches.set(x, await r.text());
      } catch { /* shown as not loaded */ }
    }
    if (alive) refresh();
  }

  function refresh() {
    if (!content) return;
    rerender(content, () => {
      if (error) return errorBox('load the attempts', error);
      if (!ids.length) return loading();
      return h('div', { class: 'attempts-grid', style: `--n: ${ids.length}` }, ids.map((x) => column(x, patches.get(x))));
    });
  }

  return {
    title: 'Attempts',
    mount(root, params) {
      content = pageWithHead(root, 'Attempts', 'The same task started several times. Compare them and keep the best: it is merged, the others are cancelled and their worktrees removed (their branches stay).');
      refresh();
      load(params.id);
    },
    refresh,
    onChange(change) {
      if (change.kind === 'task' && ids.includes(change.task.id)) {
        const old = change.old;
        if (!old || (old.git && old.git.head) !== (change.task.git && change.task.git.head)) loadPatches();
      }
    },
    unmount() { alive = false; },
  };
}

/**
 * One attempt's column.
 * @param {string} id
 * @param {string | undefined} patch
 */
function column(id, patch) {
  const t = state.tasks.get(id);
  if (!t) return h('section', { class: 'card attempt' }, loading());
  const checks = t.check_results || [];
  const passed = checks.filter((c) => c.passed).length;
  const said = h('div', { class: 'action-msg', role: 'status', hidden: true });
  const keep = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn primary', 'data-action': 'keep', 'data-task-id': t.id }, 'Keep this one'));
  keep.disabled = t.status === 'cancelled' || (t.git && t.git.merge === 'merged');
  keep.addEventListener('click', () => keepIt(t, keep, said));
  return h('section', { class: 'card attempt', 'data-attempt': t.id, 'aria-label': `Attempt ${t.id}` },
    h('div', { class: 'card-top' }, h('h2', null, h('a', { href: taskHref(t.id) }, t.id)), badge(t.status)),
    h('p', { class: 'small' }, 'Agent ', h('strong', null, t.agent), t.model ? ` · model ${t.model}` : ''),
    h('ul', { class: 'facts small' },
      h('li', null, (t.git && t.git.diff_stat) || `${plural(((t.git && t.git.files_changed) || []).length, 'file')} changed`),
      h('li', null, checks.length ? `checks: ${passed} of ${checks.length} passed` : 'no checks'),
      h('li', null, `cost ${fmtCost(t.usage && t.usage.cost_usd)}`),
      h('li', null, 'time ', t.started_at ? since(t.started_at, t.finished_at) : '—'),
      t.git && t.git.merge === 'merged' ? h('li', null, h('strong', null, 'merged')) : null,
      t.reason ? h('li', { class: 'muted' }, t.reason) : null),
    h('div', { class: 'action-row' }, keep), said,
    h('details', { class: 'attempt-diff', open: true }, h('summary', null, 'Diff'),
      h('pre', { class: 'diff-body small', tabindex: 0 }, patch == null ? 'Not read yet.' : patch || 'No changes.')));
}

/**
 * Keeps an attempt: merges it, cancels the others.
 * @param {Api.Task} t
 * @param {HTMLButtonElement} btn
 * @param {HTMLElement} said
 */
async function keepIt(t, btn, said) {
  btn.disabled = true;
  btn.textContent = 'Keeping…';
  try {
    /** @type {Api.Kept} */
    const kept = await api(`/api/tasks/${enc(t.id)}/keep`, { method: 'POST', body: {} });
    upsertTask(kept.task);
    toastOk(`Kept ${kept.task.id}${kept.task.git && kept.task.git.merge === 'merged' ? ' and merged it' : ''}; ${plural(kept.cancelled.length, 'other attempt')} cancelled.`);
    go(taskHref(kept.task.id));
  } catch (err) {
    said.hidden = false;
    said.className = 'action-msg error';
    said.replaceChildren(...errorNodes('keep this attempt', err));
    btn.disabled = false;
    btn.textContent = 'Keep this one';
  }
}
