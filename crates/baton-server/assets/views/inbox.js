// The inbox (key 9, `#/inbox`): what needs a person now — tasks awaiting
// approval, failed, paused for their budget, with a merge conflict, or whose
// work waits for a review — each with one-key actions: `a` approves, `r`
// retries, `m` merges, Enter opens; ↑ ↓ (or j k) move. Opt-in desktop
// notifications tell of new items while the tab is in the background.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { enc, taskHref } from '../lib/links.js';
import { rel } from '../lib/time.js';
import { go } from '../router.js';
import { listen, state, upsertTask } from '../state/store.js';
import { toastError, toastOk } from '../ui/toast.js';
import { approveTask, badge, empty, loading, pageWithHead, projectName } from './shared.js';

/** @typedef {{task: Api.Task, why: string, keys: string}} Item */

/**
 * Why a task needs a person, if it does.
 * @param {Api.Task} t
 * @returns {{why: string, keys: string} | null}
 */
function needs(t) {
  const merged = t.git && t.git.merge === 'merged';
  if (t.status === 'awaiting_approval') return { why: 'waits for your approval', keys: 'a approve' };
  if (t.status === 'failed') return { why: t.reason || 'failed', keys: 'r retry' };
  if (t.status === 'paused') return { why: t.reason || 'paused: its budget is spent', keys: 'Enter open to raise the budget' };
  if (t.git && t.git.merge === 'conflict') return { why: 'its merge conflicts with the base', keys: 'Enter open' };
  const reviews = (t.loops && t.loops.reviews) || [];
  const last = reviews[reviews.length - 1];
  if (t.status === 'succeeded' && !merged && t.loops && t.loops.review_by && !(last && last.verdict === 'approve')) {
    return { why: 'its work waits for a review', keys: 'Enter open · m merge' };
  }
  return null;
}

/** The inbox's items, the newest change first. @returns {Item[]} */
export function inboxItems() {
  /** @type {Item[]} */
  const out = [];
  for (const t of state.tasks.values()) {
    if (t.external) continue;
    const n = needs(t);
    if (n) out.push({ task: t, ...n });
  }
  return out.sort((a, b) => String(b.task.updated_at).localeCompare(String(a.task.updated_at)));
}

/** @returns {import('../router.js').View} */
export function InboxView() {
  /** @type {HTMLElement} */
  let content;
  const build = () => {
    if (!state.ready) return loading();
    const items = inboxItems();
    return [
      notifyButton(),
      items.length ? h('ul', { class: 'inbox', role: 'list', 'aria-label': 'Needs you' }, items.map(itemRow))
        : empty('Nothing needs you now.'),
    ];
  };
  return {
    title: 'Inbox',
    mount(root) {
      content = pageWithHead(root, 'Inbox', 'What needs a person: approvals, failures, paused tasks, conflicts and reviews. Keys on an item: a approve, r retry, m merge, Enter open; ↑ ↓ move.');
      rerender(content, build);
    },
    refresh() { if (content) rerender(content, build); },
    onKey(e) { return onItemKey(e); },
  };
}

/** An item: the task, why it is here, and its keys. @param {Item} it */
function itemRow(it) {
  const t = it.task;
  return h('li', { class: 'inbox-item', tabindex: 0, 'data-task-id': t.id, 'data-focus-key': `inbox:${t.id}`, 'aria-label': `${t.title}: ${it.why}` },
    badge(t.status), ' ', h('a', { href: taskHref(t.id) }, t.title || t.id),
    h('span', { class: 'muted small' }, ` · ${projectName(t.project_id)} · `, rel(t.updated_at)),
    h('p', { class: 'small' }, it.why),
    h('p', { class: 'muted small keys' }, it.keys));
}

/**
 * A key on a focused item: its action, or moving to the next item.
 * @param {KeyboardEvent} e
 */
function onItemKey(e) {
  const el = document.activeElement instanceof HTMLElement ? document.activeElement.closest('.inbox-item') : null;
  const all = /** @type {HTMLElement[]} */ ([...document.querySelectorAll('.inbox-item')]);
  if (e.key === 'ArrowDown' || e.key === 'j' || e.key === 'ArrowUp' || e.key === 'k') {
    if (!all.length) return false;
    const i = el ? all.indexOf(/** @type {HTMLElement} */ (el)) : -1;
    const next = e.key === 'ArrowDown' || e.key === 'j' ? Math.min(all.length - 1, i + 1) : Math.max(0, i - 1);
    all[next].focus();
    return true;
  }
  if (!(el instanceof HTMLElement)) return false;
  const id = el.getAttribute('data-task-id');
  if (e.key === 'Enter') { go(taskHref(id)); return true; }
  if (e.key === 'a') { approveTask(id); return true; }
  if (e.key === 'r') { act(id, 'retry', 'Retrying'); return true; }
  if (e.key === 'm') { act(id, 'merge', 'Merged'); return true; }
  return false;
}

/**
 * Retries or merges a task, saying so.
 * @param {string} id
 * @param {'retry' | 'merge'} what
 * @param {string} done
 */
async function act(id, what, done) {
  try {
    upsertTask(await api(`/api/tasks/${enc(id)}/${what}`, { method: 'POST', body: {} }));
    toastOk(`${done} ${id}.`);
  } catch (err) {
    toastError(`${what} ${id}`, err);
  }
}

/** The button that turns desktop notifications on (while the tab is in the background). */
function notifyButton() {
  if (!('Notification' in window)) return null;
  const on = Notification.permission === 'granted' && localStorage.getItem('baton.notify') === '1';
  return h('p', null, h('button', {
    type: 'button', class: 'btn small', 'aria-pressed': on ? 'true' : 'false',
    onclick: async () => {
      if (on) { localStorage.removeItem('baton.notify'); }
      else if ((await Notification.requestPermission()) === 'granted') localStorage.setItem('baton.notify', '1');
      const main = document.querySelector('[data-view="inbox"]');
      if (main) go('#/inbox');
    },
  }, on ? 'Desktop notifications: on' : 'Notify me while this tab is in the background'));
}

/**
 * Keeps the inbox's count in the header, and tells of each new item with a
 * desktop notification while the tab is hidden (when they are turned on).
 */
export function watchInbox() {
  const count = document.getElementById('inbox-count');
  /** @type {Set<string> | null} */
  let known = null;
  listen(() => {
    if (!state.ready) return;
    const items = inboxItems();
    if (count) count.textContent = items.length ? String(items.length) : '';
    const ids = new Set(items.map((i) => `${i.task.id}:${i.task.status}`));
    if (known && document.hidden && localStorage.getItem('baton.notify') === '1' && Notification.permission === 'granted') {
      for (const i of items) {
        if (!known.has(`${i.task.id}:${i.task.status}`)) new Notification(`Baton: ${i.task.title}`, { body: i.why, tag: i.task.id });
      }
    }
    known = ids;
  });
}
