// The task page's actions: stop, retry, approve, merge (with its strategy) and
// resume with a message; each button enabled only when the status allows it,
// saying why not on hover, and the answer shown beside them.

import { api } from '../../api/client.js';
import { h } from '../../lib/dom.js';
import { shortSha } from '../../lib/format.js';
import { enc } from '../../lib/links.js';
import { state, upsertTask } from '../../state/store.js';
import { errorNodes } from '../../ui/errors.js';

/** @type {Set<Api.TaskStatus>} */
const CAN_STOP = new Set(['queued', 'running', 'checking', 'reviewing', 'pending', 'awaiting_approval', 'blocked', 'paused']);
/** @type {Set<Api.TaskStatus>} */
const CAN_RETRY = new Set(['failed', 'cancelled']);
/** @type {Set<Api.TaskStatus>} */
const CAN_RESUME = new Set(['succeeded', 'failed', 'cancelled', 'paused']);
const BUSY = { stop: 'Stopping…', retry: 'Retrying…', approve: 'Approving…', merge: 'Merging…', resume: 'Sending…' };

/** @typedef {'stop' | 'retry' | 'approve' | 'merge' | 'resume'} Action */

/**
 * @param {import('./view.js').TaskPage} page
 * @param {{merged: () => void}} hooks
 */
export function TaskActions(page, hooks) {
  const t = page.task();
  /** @type {Record<Action, HTMLButtonElement>} */
  const buttons = /** @type {any} */ ({});
  const btn = (/** @type {Action} */ name, /** @type {string} */ label, cls = '') => {
    const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: `btn ${cls}`, 'data-action': name }, label));
    b.addEventListener('click', () => act(name));
    buttons[name] = b;
    return b;
  };
  const proj = state.projects.get(t.project_id);
  const mergeSel = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', 'data-input': 'merge-strategy', 'aria-label': 'Merge strategy' },
    ['merge', 'squash', 'rebase'].map((x) => h('option', { value: x }, x))));
  mergeSel.value = (proj && proj.settings && proj.settings.merge_strategy) || 'merge';
  mergeSel.addEventListener('change', () => { mergeSel.dataset.touched = '1'; });
  const resumeText = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input', rows: 2, 'data-input': 'resume-message', placeholder: 'Follow-up message for the agent (Ctrl+Enter to send)', 'aria-label': 'Resume message' }));
  resumeText.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); act('resume'); }
  });
  const message = h('div', { class: 'action-msg', role: 'status', 'aria-live': 'polite', hidden: true });
  const ext = !!t.external;
  const stop = btn('stop', 'Stop', 'danger'), retry = btn('retry', 'Retry'), resume = btn('resume', 'Resume');
  if (ext) { stop.hidden = true; retry.hidden = true; resume.hidden = true; }
  const element = h('div', { class: 'actions', 'aria-label': 'Actions' },
    h('div', { class: 'action-row' },
      stop, retry, btn('approve', 'Approve', 'primary'),
      h('span', { class: 'merge-group' }, mergeSel, btn('merge', 'Merge', 'primary')),
      ext ? h('span', { class: 'muted small' }, 'An interactive Claude Code session: Baton only watches it.') : null),
    ext ? null : h('div', { class: 'resume-form' }, resumeText, resume),
    message);

  /** @param {Action} name */
  async function act(name) {
    const body = name === 'merge' ? { strategy: mergeSel.value } : name === 'resume' ? { message: resumeText.value.trim() } : {};
    if (name === 'resume' && !body.message) {
      show(message, 'error', [h('p', { class: 'err-text' }, 'Could not resume: write a message for the agent first.')]);
      resumeText.focus();
      return;
    }
    const b = buttons[name];
    const label = b.textContent;
    b.dataset.busy = '1';
    b.disabled = true;
    b.textContent = BUSY[name];
    try {
      const res = await api(`/api/tasks/${enc(page.id)}/${name}`, { method: 'POST', body });
      if (res && res.id) upsertTask(res);
      if (name === 'resume') resumeText.value = '';
      show(message, 'ok', [h('p', null, done(name, (res && res.id ? res : page.task()) || t))]);
      if (name === 'merge') hooks.merged();
    } catch (err) {
      if (page.alive) show(message, 'error', errorNodes(name, err));
    } finally {
      if (page.alive) {
        delete b.dataset.busy;
        b.textContent = label;
        update();
      }
    }
  }

  /** Enables what the status allows; says why not on the others. */
  function update() {
    const now = page.task();
    if (!now) return;
    const st = now.status;
    const merged = now.git && now.git.merge === 'merged';
    const set = (/** @type {Action} */ name, /** @type {boolean} */ ok, /** @type {string} */ why) => {
      const b = buttons[name];
      if (b.dataset.busy) return;
      b.disabled = !ok;
      b.title = ok ? '' : why;
    };
    set('stop', CAN_STOP.has(st), `A ${st} task cannot be stopped`);
    set('retry', CAN_RETRY.has(st), 'Only a failed or cancelled task can be retried');
    set('approve', st === 'awaiting_approval', 'Only a task awaiting approval can be approved');
    set('merge', st === 'succeeded' && !merged, merged ? 'Already merged' : 'Only a succeeded task can be merged');
    set('resume', CAN_RESUME.has(st), 'Only a finished or paused task can be resumed');
    mergeSel.disabled = buttons.merge.disabled;
    const p = state.projects.get(now.project_id);
    const strategy = p && p.settings && p.settings.merge_strategy;
    if (strategy && !mergeSel.dataset.touched) mergeSel.value = strategy;
  }

  return { element, update };
}

/**
 * What an action did, in words.
 * @param {Action} name
 * @param {Api.Task} t the task as the answer gave it
 */
function done(name, t) {
  const g = t.git || {};
  switch (name) {
    case 'stop': return 'Stop requested: the agent is interrupted, then killed after the grace period.';
    case 'retry': return `Retrying: the task is ${t.status} again.`;
    case 'approve': return `Approved: the task is ${t.status}.`;
    case 'merge': return `Merged ${g.branch || 'the branch'} into ${g.base_branch || 'the base branch'}${g.merged_commit ? ` (${shortSha(g.merged_commit)})` : ''}.`;
    default: return 'Sent: the agent resumes the conversation with your message.';
  }
}

/**
 * Shows the answer of an action beside the buttons.
 * @param {HTMLElement} box
 * @param {'ok' | 'error'} kind
 * @param {any[]} nodes
 */
function show(box, kind, nodes) {
  box.hidden = false;
  box.className = `action-msg ${kind}`;
  box.removeAttribute('data-error');
  box.removeAttribute('data-result');
  box.setAttribute(kind === 'error' ? 'data-error' : 'data-result', '');
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  box.replaceChildren(...nodes.flat().filter(Boolean));
}
