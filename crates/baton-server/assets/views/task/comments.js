// A person's review on the task page: comments on lines of the diff (a click
// on a line picks it), a verdict — approve or request changes, which counts
// for `review_required` as a reviewer agent's does — and "Send to agent", which
// resumes its session with every comment, each naming its file and line. A file
// can also be set back to its base.

import { api, newKey } from '../../api/client.js';
import { h, rerender } from '../../lib/dom.js';
import { enc } from '../../lib/links.js';
import { upsertTask } from '../../state/store.js';
import { errorNodes } from '../../ui/errors.js';

/** @typedef {{file: string, line: number | null, body: string}} Draft */

/**
 * @param {import('./view.js').TaskPage} page
 * @param {() => void} changed the diff must be read again (a file was reverted)
 */
export function ReviewDraft(page, changed) {
  /** @type {Draft[]} */
  const drafts = [];
  const list = h('ul', { class: 'draft-comments' });
  const said = h('div', { class: 'action-msg', role: 'status', hidden: true });
  const btn = (/** @type {string} */ label, /** @type {string} */ action, /** @type {() => void} */ f, cls = '') =>
    h('button', { type: 'button', class: `btn ${cls}`, 'data-action': action, onclick: f }, label);
  const element = h('section', { class: 'block review-draft', 'aria-label': 'Your review' },
    h('h2', null, 'Your review'),
    h('p', { class: 'muted small' }, 'Click a line of the diff, or give its number, to comment on it.'),
    list,
    h('div', { class: 'action-row' },
      btn('Approve', 'approve-review', () => submit('approve', false), 'primary'),
      btn('Request changes', 'request-changes', () => submit('changes_requested', false)),
      btn('Send to agent', 'send-to-agent', () => submit(null, true))),
    said);

  function draw() {
    rerender(list, () => drafts.map((d, i) => h('li', { 'data-comment': `${d.file}:${d.line ?? ''}` },
      h('code', null, d.line ? `${d.file}:${d.line}` : d.file), ' ', d.body, ' ',
      h('button', { type: 'button', class: 'btn small', onclick: () => { drafts.splice(i, 1); draw(); } }, 'Remove'))));
  }

  /** @param {'ok' | 'error'} kind @param {any[]} nodes */
  function show(kind, nodes) {
    said.hidden = false;
    said.className = `action-msg ${kind}`;
    said.replaceChildren(...nodes.flat().filter(Boolean));
  }

  /**
   * Sends the review: the verdict and the comments, to the agent when `send`.
   * @param {'approve' | 'changes_requested' | null} verdict
   * @param {boolean} send
   */
  async function submit(verdict, send) {
    const comments = drafts.map((d) => ({ file: d.file, line: d.line ?? undefined, body: d.body }));
    try {
      const t = await api(`/api/tasks/${enc(page.id)}/review`, { method: 'POST', body: { verdict: verdict || undefined, comments, send }, key: newKey() });
      upsertTask(t);
      drafts.length = 0;
      draw();
      show('ok', [h('p', null, send ? 'Sent: the agent gets every comment as its next turn.' : verdict === 'approve' ? 'Approved.' : 'Recorded.')]);
    } catch (err) {
      show('error', errorNodes(send ? 'send the review' : 'record the review', err));
    }
  }

  /**
   * The tools under one file of the diff: a comment on a line, and revert.
   * @param {string} file
   */
  function fileTools(file) {
    const line = /** @type {HTMLInputElement} */ (h('input', { class: 'input narrow', type: 'number', min: 1, 'aria-label': `Line of ${file}`, 'data-comment-line': file }));
    const body = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide', rows: 2, 'aria-label': `Comment on ${file}`, 'data-comment-body': file }));
    const add = h('button', { type: 'button', class: 'btn small', 'data-action': 'add-comment', onclick: () => {
      if (!body.value.trim()) { body.focus(); return; }
      drafts.push({ file, line: line.value ? Number(line.value) : null, body: body.value.trim() });
      body.value = '';
      line.value = '';
      draw();
    } }, 'Add comment');
    const revert = h('button', { type: 'button', class: 'btn small danger', 'data-action': 'revert-file', onclick: () => revertFile(file) }, 'Revert file');
    return h('div', { class: 'file-tools', 'data-file-tools': file }, h('div', { class: 'action-row' }, line, body, add, revert));
  }

  /** Sets one file back to its base. @param {string} file */
  async function revertFile(file) {
    if (!confirm(`Set ${file} back to its base on the task's branch?`)) return;
    try {
      upsertTask(await api(`/api/tasks/${enc(page.id)}/revert`, { method: 'POST', body: { file } }));
      show('ok', [h('p', null, `Reverted ${file}.`)]);
      changed();
    } catch (err) {
      show('error', errorNodes(`revert ${file}`, err));
    }
  }

  /**
   * A line of the diff was picked: its file's comment box takes its number.
   * @param {HTMLElement} root where the diff is
   * @param {string} file
   * @param {number} n
   */
  function pick(root, file, n) {
    const line = /** @type {HTMLInputElement | null} */ (root.querySelector(`[data-comment-line="${CSS.escape(file)}"]`));
    const body = /** @type {HTMLTextAreaElement | null} */ (root.querySelector(`[data-comment-body="${CSS.escape(file)}"]`));
    if (line) line.value = String(n);
    if (body) body.focus();
  }

  return { element, fileTools, pick };
}
