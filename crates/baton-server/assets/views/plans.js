// The plan editor (`#/plans`): a plan in YAML, checked as you type by the same
// validation `POST /api/plans` does (`POST /api/plans/check`, which creates
// nothing) — an error shows on its line — with a live preview of its graph
// beside it; "Create plan" submits it once.

import { api, errorMessage, newKey } from '../api/client.js';
import { debounce } from '../lib/debounce.js';
import { h, rerender, s } from '../lib/dom.js';
import { truncate } from '../lib/format.js';
import { go } from '../router.js';
import { state } from '../state/store.js';
import { toastOk } from '../ui/toast.js';
import { pageWithHead } from './shared.js';

const EXAMPLE = `name: example
tasks:
  - name: api
    prompt: Add the endpoint
  - name: client
    prompt: Call the endpoint from the client
    depends_on: [api]
`;

/** @typedef {{line: number, message: string} | {line: null, message: string}} Problem */

/** @returns {import('../router.js').View} */
export function PlansView() {
  const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input plan-text mono', id: 'plan-yaml', rows: 18, spellcheck: 'false', 'aria-describedby': 'plan-problem' }));
  text.value = localStorage.getItem('baton.plan') || EXAMPLE;
  const gutter = h('pre', { class: 'gutter', 'aria-hidden': 'true' });
  const problem = h('p', { class: 'field-error plan-problem', id: 'plan-problem', role: 'alert', hidden: true });
  const preview = h('div', { class: 'plan-preview', 'aria-label': 'The plan’s graph' });
  const create = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn primary', 'data-action': 'create-plan' }, 'Create plan'));
  const project = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', id: 'plan-project' },
    [...state.projects.values()].map((p) => h('option', { value: p.name }, p.name))));
  /** @type {Api.PlanCheck | null} */
  let checked = null;
  /** @type {{body: string, key: string} | null} */
  let last = null;

  /** The YAML with the chosen project (when it names none). */
  const body = () => (/^project:/m.test(text.value) || !project.value ? text.value : `project: ${project.value}\n${text.value}`);

  async function check() {
    localStorage.setItem('baton.plan', text.value);
    try {
      checked = await api('/api/plans/check', { method: 'POST', raw: body(), type: 'application/yaml' });
      show(null);
    } catch (err) {
      checked = null;
      show(problemOf(err, text.value));
    }
    rerender(preview, () => graph(checked));
  }
  const checkSoon = debounce(check, 300, 1500);

  /** @param {Problem | null} p */
  function show(p) {
    problem.hidden = !p;
    problem.textContent = p ? (p.line ? `Line ${p.line}: ${p.message}` : p.message) : '';
    text.setAttribute('aria-invalid', p ? 'true' : 'false');
    create.disabled = !!p;
    const lines = text.value.split('\n').length;
    gutter.replaceChildren(...Array.from({ length: lines }, (_, i) => h('span', { class: p && p.line === i + 1 ? 'bad' : null, 'data-line': i + 1 }, `${i + 1}\n`)));
  }

  create.addEventListener('click', async () => {
    if (create.disabled) return;
    const b = body();
    if (!last || last.body !== b) last = { body: b, key: newKey() };
    create.disabled = true;
    try {
      /** @type {Api.PlanCreated} */
      const made = await api('/api/plans', { method: 'POST', raw: b, type: 'application/yaml', key: last.key });
      toastOk(`Created plan ${made.plan.name}: ${made.tasks.length} tasks.`);
      go('#/dag');
    } catch (err) {
      show(problemOf(err, text.value));
    } finally {
      create.disabled = problem.hidden === false;
    }
  });
  text.addEventListener('input', () => checkSoon());
  text.addEventListener('scroll', () => { gutter.scrollTop = text.scrollTop; });
  project.addEventListener('change', () => checkSoon());

  return {
    title: 'Plans',
    mount(root) {
      const content = pageWithHead(root, 'Plan', 'A graph of tasks in YAML, checked as you type (nothing is created until you press Create plan).');
      content.append(
        h('div', { class: 'form-row' }, h('label', { for: 'plan-project' }, 'Project '), project),
        h('div', { class: 'plan-layout' },
          h('div', { class: 'plan-editor' }, h('label', { for: 'plan-yaml' }, 'Plan (YAML)'), h('div', { class: 'editor' }, gutter, text), problem,
            h('div', { class: 'form-actions' }, create)),
          h('section', { class: 'plan-side' }, h('h2', null, 'Preview'), preview)));
      check();
    },
    unmount() { checkSoon.cancel(); },
  };
}

/**
 * Where an error of the check belongs: the YAML's own line, the line of the
 * task it names, or the plan as a whole.
 * @param {any} err
 * @param {string} yaml
 * @returns {Problem}
 */
export function problemOf(err, yaml) {
  const d = (err && err.details) || {};
  const message = errorMessage(err);
  if (typeof d.line === 'number') return { line: d.line, message };
  const task = d.task || (Array.isArray(d.cycle) ? d.cycle[0] : null);
  if (task) {
    const lines = yaml.split('\n');
    const re = new RegExp(`^\\s*-?\\s*name:\\s*["']?${task.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}["']?\\s*$`);
    const i = lines.findIndex((l) => re.test(l));
    if (i >= 0) return { line: i + 1, message };
  }
  return { line: null, message };
}

/** Box sizes and gaps of the preview. */
const W = 170, H = 34, GX = 40, GY = 10, PAD = 8;

/**
 * The checked plan's graph: a column per depth, an arrow from each prerequisite.
 * @param {Api.PlanCheck | null} plan
 */
function graph(plan) {
  if (!plan) return h('p', { class: 'muted' }, 'Fix the plan to see its graph.');
  const depth = new Map();
  for (const t of plan.tasks) depth.set(t.name, Math.max(0, ...t.depends_on.map((d) => (depth.has(d) ? depth.get(d) + 1 : 0))));
  /** @type {string[][]} */
  const cols = [];
  for (const t of plan.tasks) (cols[depth.get(t.name)] || (cols[depth.get(t.name)] = [])).push(t.name);
  const pos = new Map();
  cols.forEach((col, c) => (col || []).forEach((n, r) => pos.set(n, { x: PAD + c * (W + GX), y: PAD + r * (H + GY) })));
  const width = PAD * 2 + cols.length * (W + GX), height = PAD * 2 + Math.max(1, ...cols.map((c) => (c || []).length)) * (H + GY);
  return h('div', { class: 'dag-wrap', tabindex: 0 }, s('svg', { class: 'dag', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': `${plan.tasks.length} tasks` },
    plan.tasks.flatMap((t) => t.depends_on.filter((d) => pos.has(d)).map((d) => {
      const a = pos.get(d), b = pos.get(t.name);
      return s('path', { class: 'edge', d: `M ${a.x + W} ${a.y + H / 2} L ${b.x - 2} ${b.y + H / 2}` });
    })),
    plan.tasks.map((t) => s('g', { class: 'node st-pending', transform: `translate(${pos.get(t.name).x},${pos.get(t.name).y})`, 'data-plan-task': t.name },
      s('rect', { width: W, height: H, rx: 6 }),
      s('text', { x: 8, y: 21, class: 'node-title' }, truncate(`${t.name} · ${t.agent}`, 24))))));
}
