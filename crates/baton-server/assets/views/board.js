// The board (key 2, `#/board`): a column per status, a card per task, with its
// approval button, merge state and the conflict radar's warning; filtered by
// project and text.

import { TaskStatus } from '../api/enums.js';
import { h, rerender } from '../lib/dom.js';
import { debounce } from '../lib/debounce.js';
import { fmtCost, plural, truncate } from '../lib/format.js';
import { taskHref } from '../lib/links.js';
import { since } from '../lib/time.js';
import { fetchRadar, loadOlderTasks, queueRadar, state } from '../state/store.js';
import { toastError } from '../ui/toast.js';
import { LIVE, approveTask, badge, loading, projectSelect, refreshProjectSelect, tasksSorted } from './shared.js';

const boardPrefs = { project: '', filter: '' };
const COLUMN_CAP = 150;

/** @returns {import('../router.js').View} */
export function BoardView() {
  /** @type {HTMLSelectElement} */
  let sel;
  /** @type {HTMLInputElement} */
  let input;
  /** @type {HTMLElement} */
  let content;
  return {
    title: 'Board',
    mount(root) {
      sel = projectSelect(boardPrefs.project, (v) => { boardPrefs.project = v; this.refresh(); }, 'board-project');
      input = h('input', { type: 'search', class: 'input', placeholder: 'Filter by title, id, agent, branch', 'aria-label': 'Filter tasks', 'data-input': 'board-filter', value: boardPrefs.filter });
      input.addEventListener('input', debounce(() => { boardPrefs.filter = input.value; this.refresh(); }, 120));
      content = h('div', { class: 'board-wrap' });
      root.append(h('div', { class: 'page-head row' }, h('h1', null, 'Board'), h('div', { class: 'toolbar' }, sel, input)), content);
      fetchRadar();
      this.refresh();
    },
    refresh() {
      if (sel) refreshProjectSelect(sel, boardPrefs.project);
      // Keep where the reader had scrolled, across the board and inside each column.
      const board = content.querySelector('.board');
      const left = board ? board.scrollLeft : 0;
      const tops = new Map([...content.querySelectorAll('.col')].map((c) => [c.getAttribute('data-status'), (c.querySelector('.col-cards') || {}).scrollTop || 0]));
      rerender(content, build);
      const nb = content.querySelector('.board');
      if (nb) nb.scrollLeft = left;
      for (const c of content.querySelectorAll('.col')) {
        const cards = c.querySelector('.col-cards');
        const top = tops.get(c.getAttribute('data-status'));
        if (cards && top) cards.scrollTop = top;
      }
    },
    onChange(change) {
      // The radar follows the tasks while the board is on screen.
      if (change.kind === 'task') queueRadar();
      else if (change.kind === 'snapshot') fetchRadar();
    },
  };
}

/** @param {Api.Task} t whether the board's project and text filters keep it */
function matches(t) {
  if (boardPrefs.project && t.project_id !== boardPrefs.project) return false;
  const f = boardPrefs.filter.trim().toLowerCase();
  if (!f) return true;
  return (t.title || '').toLowerCase().includes(f) || t.id.includes(f) || (t.agent || '').toLowerCase().includes(f)
    || ((t.git && t.git.branch) || '').toLowerCase().includes(f);
}

/** The columns, from the state. */
function build() {
  if (!state.ready) return loading();
  /** @type {Map<string, Api.Task[]>} */
  const cols = new Map(TaskStatus.map((st) => [st, /** @type {Api.Task[]} */ ([])]));
  for (const t of tasksSorted(matches)) (cols.get(t.status) || cols.set(t.status, []).get(t.status)).push(t);
  const older = state.olderTasks ? h('p', null, h('button', {
    type: 'button', class: 'btn small', 'data-action': 'older-tasks',
    onclick: () => loadOlderTasks().catch((/** @type {unknown} */ err) => toastError('load older tasks', err)),
  }, 'Load older tasks')) : null;
  return [older, h('div', { class: 'board' }, [...cols.entries()].map(([st, list]) =>
    h('section', { class: `col${list.length ? '' : ' empty'}`, 'data-status': st, 'aria-label': `${st}: ${list.length}` },
      h('header', { class: 'col-head', title: `${st}: ${list.length}` }, badge(st), h('span', { class: 'count' }, String(list.length))),
      list.length ? h('div', { class: 'col-cards' },
        list.slice(0, COLUMN_CAP).map(taskCard),
        list.length > COLUMN_CAP ? h('p', { class: 'muted small' }, `… and ${list.length - COLUMN_CAP} more (filter to narrow)`) : null)
        : h('p', { class: 'muted small col-empty' }, 'none'))))];
}

/**
 * A task's card: status, title, agent, cost, files, elapsed time, why it stopped,
 * its approval button and the radar's warning.
 * @param {Api.Task} t
 */
function taskCard(t) {
  const overlaps = state.radar.get(t.id) || [];
  const files = (t.git && t.git.files_changed) || [];
  const merge = t.git && t.git.merge;
  return h('article', {
    class: `card task-card st-edge-${t.status}`, 'data-task-id': t.id, 'data-status': t.status, 'data-href': taskHref(t.id),
    'data-focus-key': 'task:' + t.id, tabindex: 0, role: 'link', 'aria-label': `${t.title} (${t.status})`,
  },
  h('div', { class: 'card-top' }, badge(t.status),
    t.external ? h('span', { class: 'tag' }, 'external') : null,
    merge === 'merged' ? h('span', { class: 'tag ok' }, 'merged') : null,
    merge === 'conflict' ? h('span', { class: 'tag bad' }, 'merge conflict') : null,
    merge === 'queued' ? h('span', { class: 'tag' }, 'merging') : null),
  h('div', { class: 'card-title' }, t.title || t.id),
  h('div', { class: 'card-meta' },
    h('code', null, t.id), h('span', null, t.agent), h('span', null, fmtCost(t.usage && t.usage.cost_usd)),
    files.length ? h('span', { title: files.slice(0, 30).join('\n') }, plural(files.length, 'file')) : null,
    LIVE.has(t.status) && t.started_at ? since(t.started_at) : null),
  t.reason && ['blocked', 'failed', 'cancelled', 'paused'].includes(t.status) ? h('p', { class: `reason reason-${t.status}` }, truncate(t.reason, 220)) : null,
  t.status === 'awaiting_approval' ? h('div', { class: 'approval' },
    h('span', { class: 'badge st-awaiting_approval approval-badge' }, 'approval waiting'),
    h('button', { type: 'button', class: 'btn small primary', 'data-action': 'approve', 'data-focus-key': 'approve:' + t.id,
      onclick: (/** @type {MouseEvent & {currentTarget: HTMLButtonElement}} */ e) => { e.stopPropagation(); approveTask(t.id, e.currentTarget); } }, 'Approve')) : null,
  overlaps.length ? h('p', { class: 'radar', 'data-radar': '', title: overlaps.map((o) => `${o.task_id}: ${o.files.join(', ')}`).join('\n') },
    '⚠ overlaps ', plural(overlaps.length, 'live task'), ' (', plural(new Set(overlaps.flatMap((o) => o.files)).size, 'file'), ')') : null);
}
