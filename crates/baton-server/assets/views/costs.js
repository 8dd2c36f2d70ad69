// The costs (key 6, `#/costs`): what was spent in all, per hour by project and by
// agent over the last 24 hours, by project, by agent, and by task.

import { addAt, barChart, hourBuckets } from '../lib/charts.js';
import { h, rerender } from '../lib/dom.js';
import { fmtCost, fmtTokens, ms } from '../lib/format.js';
import { state } from '../state/store.js';
import { badge, empty, loading, pageWithHead, projectName, sectionHead, taskRow, taskTitleLink } from './shared.js';

/** How many tasks the "by task" table shows before "Show all". */
const TASK_ROWS = 300;

/** @returns {import('../router.js').View} */
export function CostsView() {
  /** @type {HTMLElement} */
  let content;
  let showAll = false;
  const refresh = () => rerender(content, () => build(showAll, () => { showAll = true; refresh(); }));
  return {
    title: 'Costs',
    mount(root) {
      content = pageWithHead(root, 'Costs');
      refresh();
    },
    refresh,
  };
}

/** @param {Api.Usage | undefined} u */
function usageCells(u) {
  u = u || {};
  return [h('td', { class: 'num' }, fmtCost(u.cost_usd)), h('td', { class: 'num' }, fmtTokens(u.input_tokens)), h('td', { class: 'num' }, fmtTokens(u.output_tokens))];
}
const usageHead = (/** @type {string} */ first) => h('thead', null, h('tr', null, h('th', null, first), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens')));
/** @param {[string, Api.Usage]} a @param {[string, Api.Usage]} b */
const byCost = (a, b) => ((b[1] && b[1].cost_usd) || 0) - ((a[1] && a[1].cost_usd) || 0);
/** What agents spent in each hour, by project and by agent, from the coordinator's aggregates. */
function costCharts() {
  const byProject = hourBuckets(24);
  const byAgent = hourBuckets(24);
  for (const hs of state.hourly) {
    const at = ms(hs.start) + 1;
    for (const [p, cost] of Object.entries(hs.cost_by_project || {})) addAt(byProject, at, projectName(p), cost);
    for (const [a, cost] of Object.entries(hs.cost_by_agent || {})) addAt(byAgent, at, a, cost);
  }
  return [barChart('Cost per hour, by project', byProject, fmtCost), barChart('Cost per hour, by agent', byAgent, fmtCost)];
}

/**
 * The page, from the state.
 * @param {boolean} showAll whether every task is listed
 * @param {() => void} onShowAll
 */
function build(showAll, onShowAll) {
  if (!state.ready) return loading();
  const c = state.costs;
  const tasks = [...state.tasks.values()].filter((t) => t.usage && (t.usage.cost_usd || t.usage.input_tokens || t.usage.output_tokens))
    .sort((a, b) => (b.usage.cost_usd - a.usage.cost_usd) || (b.usage.output_tokens - a.usage.output_tokens));
  const shown = showAll ? tasks : tasks.slice(0, TASK_ROWS);
  return [
    state.costsError ? h('div', { class: 'error-box', 'data-error': '' }, h('p', null, `Could not load the costs: ${state.costsError}`)) : null,
    c ? h('div', { class: 'stat-row' },
      h('div', { class: 'stat' }, h('div', { class: 'stat-n', 'data-total-cost': '' }, fmtCost(c.total && c.total.cost_usd)), h('div', { class: 'muted small' }, 'spent in all')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-n' }, fmtTokens(c.total && c.total.input_tokens)), h('div', { class: 'muted small' }, 'input tokens')),
      h('div', { class: 'stat' }, h('div', { class: 'stat-n' }, fmtTokens(c.total && c.total.output_tokens)), h('div', { class: 'muted small' }, 'output tokens'))) : loading('Loading the costs…'),
    h('section', { class: 'block' }, sectionHead('Cost over the last 24 hours'),
      h('div', { class: 'two-col' }, costCharts())),
    c ? h('div', { class: 'two-col' },
      h('section', { class: 'block' }, sectionHead('By project'),
        Object.keys(c.projects || {}).length ? h('table', { tabindex: '0', class: 'table' }, usageHead('Project'),
          h('tbody', null, Object.entries(c.projects).sort(byCost).map(([id, u]) => h('tr', { 'data-project-id': id }, h('td', null, projectName(id)), usageCells(u))))) : empty('Nothing spent yet.')),
      h('section', { class: 'block' }, sectionHead('By agent'),
        Object.keys(c.agents || {}).length ? h('table', { tabindex: '0', class: 'table' }, usageHead('Agent'),
          h('tbody', null, Object.entries(c.agents).sort(byCost).map(([name, u]) => h('tr', { 'data-agent-name': name }, h('td', null, name), usageCells(u))))) : empty('Nothing spent yet.'))) : null,
    c && (c.rows || []).length > 1 ? h('section', { class: 'block' }, sectionHead('By project and agent'),
      h('table', { tabindex: '0', class: 'table' },
        h('thead', null, h('tr', null, h('th', null, 'Project'), h('th', null, 'Agent'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens'))),
        h('tbody', null, [...c.rows].sort((a, b) => b.usage.cost_usd - a.usage.cost_usd).map((r) => h('tr', null, h('td', null, projectName(r.project_id)), h('td', null, r.agent), usageCells(r.usage)))))) : null,
    h('section', { class: 'block' }, sectionHead('By task', h('span', { class: 'count' }, String(tasks.length))),
      tasks.length ? h('table', { tabindex: '0', class: 'table' },
        h('thead', null, h('tr', null, h('th', null, 'Task'), h('th', null, 'Status'), h('th', null, 'Agent'), h('th', null, 'Project'), h('th', { class: 'num' }, 'Cost'), h('th', { class: 'num' }, 'Input tokens'), h('th', { class: 'num' }, 'Output tokens'))),
        h('tbody', null, shown.map((t) => taskRow(t, [
          h('td', null, taskTitleLink(t), h('div', { class: 'muted small mono' }, t.id)),
          h('td', null, badge(t.status)),
          h('td', null, t.agent),
          h('td', null, projectName(t.project_id)),
          usageCells(t.usage),
        ])))) : empty('No task has spent anything yet.'),
      tasks.length > shown.length ? h('button', { type: 'button', class: 'btn small', 'data-focus-key': 'costs-all', onclick: onShowAll }, `Show all ${tasks.length}`) : null,
      h('p', { class: 'muted small' }, 'Per-task figures cover the tasks loaded in this page (the newest 1000 and any that changed since).')),
  ];
}
