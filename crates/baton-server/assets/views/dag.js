// The dependency graph (key 3, `#/dag`): a column per depth, a box per task
// colored by status, an arrow from each prerequisite; drawn in SVG. "Add a task
// after…" picks prerequisites on the graph, then opens the composer with them.

import { TaskStatus } from '../api/enums.js';
import { h, rerender, s } from '../lib/dom.js';
import { fmtCost, ms, truncate } from '../lib/format.js';
import { taskHref } from '../lib/links.js';
import { state } from '../state/store.js';
import { openComposer } from './composer.js';
import { badge, empty, loading, projectSelect, refreshProjectSelect, tasksSorted } from './shared.js';

const dagPrefs = { project: '', linkedOnly: false };
/** @type {{on: boolean, ids: Set<string>}} picking prerequisites for a new task */
const picking = { on: false, ids: new Set() };
/** A box's width and height, the gaps between columns and rows, the margin. */
const W = 230, H = 48, GX = 64, GY = 14, PAD = 16;

/** @returns {import('../router.js').View} */
export function DagView() {
  /** @type {HTMLElement} */
  let content;
  /** @type {HTMLSelectElement} */
  let sel;
  /** @type {HTMLInputElement} */
  let box;
  return {
    title: 'DAG',
    onKey(e) {
      if (!picking.on || (e.key !== 'Enter' && e.key !== ' ')) return false;
      const n = document.activeElement instanceof Element ? document.activeElement.closest('[data-task-id]') : null;
      if (!n) return false;
      n.dispatchEvent(new MouseEvent('click', { bubbles: true }));
      return true;
    },
    mount(root) {
      sel = projectSelect(dagPrefs.project, (v) => { dagPrefs.project = v; this.refresh(); }, 'dag-project');
      box = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', id: 'dag-linked', 'data-input': 'dag-linked' }));
      box.checked = dagPrefs.linkedOnly;
      box.addEventListener('change', () => { dagPrefs.linkedOnly = box.checked; this.refresh(); });
      content = h('div', { class: 'dag-content' });
      content.addEventListener('click', (e) => {
        const n = picking.on && e.target instanceof Element ? e.target.closest('[data-task-id]') : null;
        if (!n) return;
        e.preventDefault();
        const id = n.getAttribute('data-task-id');
        if (picking.ids.has(id)) picking.ids.delete(id); else picking.ids.add(id);
        this.refresh();
      }, true);
      const pickBar = h('div', { class: 'toolbar pick-bar' });
      const drawPickBar = () => pickBar.replaceChildren(picking.on
        ? h('span', null, `${picking.ids.size} picked `,
          h('button', { type: 'button', class: 'btn primary small', 'data-action': 'compose-after', onclick: () => { const after = [...picking.ids]; picking.on = false; picking.ids.clear(); drawPickBar(); this.refresh(); openComposer({ after, project: dagPrefs.project || undefined }); } }, 'New task after these'),
          ' ', h('button', { type: 'button', class: 'btn small', onclick: () => { picking.on = false; picking.ids.clear(); drawPickBar(); this.refresh(); } }, 'Cancel'))
        : h('button', { type: 'button', class: 'btn small', 'data-action': 'pick-after', onclick: () => { picking.on = true; drawPickBar(); this.refresh(); } }, 'Add a task after…'));
      drawPickBar();
      root.append(
        h('div', { class: 'page-head row' }, h('h1', null, 'Dependencies'),
          h('div', { class: 'toolbar' }, sel, h('label', { class: 'check', for: 'dag-linked' }, box, ' Only tasks with dependencies')), pickBar),
        h('ul', { class: 'legend', 'aria-label': 'Status colors' }, TaskStatus.map((st) => h('li', null, badge(st)))),
        content);
      this.refresh();
    },
    refresh() {
      if (sel) refreshProjectSelect(sel, dagPrefs.project);
      const wrap = content.querySelector('.dag-wrap');
      const sx = wrap ? wrap.scrollLeft : 0, sy = wrap ? wrap.scrollTop : 0;
      rerender(content, build);
      const nw = content.querySelector('.dag-wrap');
      if (nw) { nw.scrollLeft = sx; nw.scrollTop = sy; }
    },
  };
}

/** The graph of the tasks the filters keep. */
function build() {
  if (!state.ready) return loading();
  let tasks = tasksSorted((t) => !dagPrefs.project || t.project_id === dagPrefs.project);
  const ids = new Set(tasks.map((t) => t.id));
  const hasDependents = new Set();
  for (const t of tasks) for (const d of t.depends_on || []) if (ids.has(d)) hasDependents.add(d);
  if (dagPrefs.linkedOnly) {
    tasks = tasks.filter((t) => hasDependents.has(t.id) || (t.depends_on || []).some((d) => ids.has(d)));
  }
  if (!tasks.length) return empty(dagPrefs.linkedOnly ? 'No task depends on another.' : 'No tasks yet.');
  const byId = new Map(tasks.map((t) => [t.id, t]));
  const cols = columns(tasks, byId, hasDependents);
  const pos = new Map();
  cols.forEach((col, ci) => col.forEach((t, i) => pos.set(t.id, { x: PAD + ci * (W + GX), y: PAD + i * (H + GY) })));
  const width = PAD * 2 + cols.length * W + (cols.length - 1) * GX;
  const height = PAD * 2 + Math.max(...cols.map((c) => c.length)) * (H + GY) - GY;
  const svg = s('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Task dependency graph' },
    s('defs', null, s('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      s('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrow' }))),
    s('g', { class: 'edges' }, tasks.map((t) => edges(t, pos, byId))),
    s('g', { class: 'nodes' }, tasks.map((t) => node(t, pos.get(t.id)))));
  return h('div', { class: 'dag-wrap' }, svg);
}

/**
 * The tasks in columns by depth (the longest chain of prerequisites before them),
 * each column ordered by the average row of its prerequisites (fewer crossings).
 * @param {Api.Task[]} tasks
 * @param {Map<string, Api.Task>} byId
 * @param {Set<string>} hasDependents
 * @returns {Api.Task[][]}
 */
function columns(tasks, byId, hasDependents) {
  /** @type {Map<string, number>} */
  const depth = new Map();
  const visiting = new Set();
  /** @type {(t: Api.Task) => number} */
  const depthOf = (t) => {
    if (depth.has(t.id)) return depth.get(t.id);
    if (visiting.has(t.id)) return 0;
    visiting.add(t.id);
    let d = 0;
    for (const dep of t.depends_on || []) {
      const p = byId.get(dep);
      if (p) d = Math.max(d, depthOf(p) + 1);
    }
    visiting.delete(t.id);
    depth.set(t.id, d);
    return d;
  };
  const cols = [];
  for (const t of [...tasks].sort((a, b) => (ms(a.created_at) || 0) - (ms(b.created_at) || 0))) {
    const d = depthOf(t);
    (cols[d] || (cols[d] = [])).push(t);
  }
  for (let i = 0; i < cols.length; i++) if (!cols[i]) cols[i] = [];
  const row = new Map();
  cols.forEach((col, ci) => {
    if (ci === 0) col.sort((a, b) => (hasDependents.has(b.id) ? 1 : 0) - (hasDependents.has(a.id) ? 1 : 0));
    else {
      const key = (/** @type {Api.Task} */ t) => {
        const rs = (t.depends_on || []).map((d) => row.get(d)).filter((r) => r != null);
        return rs.length ? rs.reduce((a, b) => a + b, 0) / rs.length : 1e9;
      };
      col.sort((a, b) => key(a) - key(b));
    }
    col.forEach((t, i) => row.set(t.id, i));
  });
  return cols;
}

/**
 * The arrows into a task from its prerequisites: solid when one succeeded, broken when it failed.
 * @param {Api.Task} t
 * @param {Map<string, {x: number, y: number}>} pos
 * @param {Map<string, Api.Task>} byId
 */
function edges(t, pos, byId) {
  const to = pos.get(t.id);
  return (t.depends_on || []).filter((dep) => pos.has(dep)).map((dep) => {
    const from = pos.get(dep);
    const d0 = byId.get(dep);
    const x1 = from.x + W, y1 = from.y + H / 2, x2 = to.x - 2, y2 = to.y + H / 2;
    const mx = (x1 + x2) / 2;
    const cls = `edge${d0 && d0.status === 'succeeded' ? ' done' : ''}${d0 && (d0.status === 'failed' || d0.status === 'cancelled') ? ' broken' : ''}`;
    return s('path', { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2} ${y2}`, class: cls, 'marker-end': 'url(#arrow)' });
  });
}

/**
 * A task's box, a link to it.
 * @param {Api.Task} t
 * @param {{x: number, y: number}} p
 */
function node(t, p) {
  const picked = picking.ids.has(t.id);
  return s('g', {
    class: `node st-${t.status}${picked ? ' picked' : ''}`, transform: `translate(${p.x},${p.y})`, tabindex: 0, role: picking.on ? 'checkbox' : 'link',
    'aria-checked': picking.on ? String(picked) : null,
    'data-task-id': t.id, 'data-status': t.status, 'data-href': picking.on ? null : taskHref(t.id), 'data-focus-key': 'task:' + t.id,
    'aria-label': `${t.title} (${t.status})`,
  },
  s('title', null, `${t.title}\n${t.id} · ${t.status}${t.reason ? '\n' + t.reason : ''}`),
  s('rect', { width: W, height: H, rx: 7, ry: 7 }),
  s('rect', { class: 'stripe', width: 5, height: H, rx: 2 }),
  s('text', { x: 13, y: 19, class: 'node-title' }, truncate(t.title || t.id, 27)),
  s('text', { x: 13, y: 37, class: 'node-sub' }, truncate(`${t.status} · ${t.agent}${t.usage && t.usage.cost_usd ? ' · ' + fmtCost(t.usage.cost_usd) : ''}`, 35)));
}
