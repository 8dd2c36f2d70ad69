// The overview (key 1, `#/`): projects and their leads, the agents at work, what
// needs attention, the last 24 hours in charts, launchers and orchestrations.

import { addAt, barChart, hourBuckets } from '../lib/charts.js';
import { TaskStatus } from '../api/enums.js';
import { h, rerender } from '../lib/dom.js';
import { duration, fmtCost, ms, plural, shortSha, truncate } from '../lib/format.js';
import { taskHref } from '../lib/links.js';
import { rel, since } from '../lib/time.js';
import { state } from '../state/store.js';
import {
  LIVE, approveTask, badge, empty, launchersSorted, loading, sectionHead, taskChip, taskRow, taskTitleLink, tasksSorted,
} from './shared.js';

/** @returns {import('../router.js').View} */
export function OverviewView() {
  /** @type {HTMLElement} */
  let root;
  return {
    title: 'Overview',
    mount(r) { root = r; this.refresh(); },
    refresh() { rerender(root, build); },
  };
}

/** The whole page, from the state. */
function build() {
  if (!state.ready) return loading();
  const counts = new Map();
  let running = 0;
  for (const t of state.tasks.values()) {
    let c = counts.get(t.project_id);
    if (!c) counts.set(t.project_id, (c = {}));
    c[t.status] = (c[t.status] || 0) + 1;
    if (LIVE.has(t.status)) running++;
  }
  const live = tasksSorted((t) => LIVE.has(t.status)).sort((a, b) => (ms(a.started_at) || 0) - (ms(b.started_at) || 0));
  const attention = tasksSorted((t) => t.status === 'awaiting_approval' || t.status === 'blocked' || t.status === 'failed' || t.status === 'paused').slice(0, 12);
  const launchers = launchersSorted();
  const orchs = [...state.orchestrations.values()].sort((a, b) => (ms(b.updated_at) || 0) - (ms(a.updated_at) || 0)).slice(0, 8);

  return [
    h('div', { class: 'page-head' },
      h('h1', null, 'Overview'),
      h('p', { class: 'muted' },
        `${plural(state.tasks.size, 'task')} · ${running} running · ${plural(state.projects.size, 'project')} · `,
        `${[...state.launchers.values()].filter((l) => l.status === 'online').length} of ${plural(state.launchers.size, 'launcher')} online`,
        state.costs ? ` · spent ${fmtCost(state.costs.total && state.costs.total.cost_usd)}` : '')),

    h('section', { class: 'block' },
      sectionHead('Projects'),
      state.projects.size
        ? h('div', { class: 'project-grid' }, [...state.projects.values()].map((p) => projectCard(p, counts.get(p.id) || {})))
        : empty('No projects yet. `baton up` registers the repository it starts in.')),

    h('section', { class: 'block' },
      sectionHead('Running agents', h('span', { class: 'count' }, String(live.length))),
      live.length ? runningTable(live) : empty('No agent is working right now.')),

    attention.length ? h('section', { class: 'block' },
      sectionHead('Needs attention'),
      h('ul', { class: 'attention' }, attention.map(attentionItem))) : null,

    h('section', { class: 'block' },
      sectionHead('The last 24 hours'),
      h('div', { class: 'two-col' }, activityCharts())),

    h('section', { class: 'block' },
      sectionHead('Launchers'),
      launchers.length ? launcherTable(launchers) : empty('No launcher has registered. `baton up` embeds one; `baton launcher` runs one elsewhere.')),

    orchs.length ? h('section', { class: 'block' },
      sectionHead('Orchestrations'),
      orchTable(orchs)) : null,
  ];
}

/**
 * Tasks finished per hour, and how many waited to start at each hour's end, from
 * the coordinator's aggregates (not from the tasks the page holds).
 */
function activityCharts() {
  const finished = hourBuckets(24);
  const waiting = hourBuckets(24);
  for (const hs of state.hourly) {
    const at = ms(hs.start) + 1;
    for (const [st, n] of Object.entries(hs.finished || {})) addAt(finished, at, st, n);
    if (hs.queued != null) addAt(waiting, at, 'waiting', hs.queued);
  }
  const count = (/** @type {number} */ n) => String(Math.round(n));
  return [barChart('Tasks finished per hour', finished, count, (st) => `fill-${st}`), barChart('Queue depth (tasks waiting to start)', waiting, count, () => 'fill-queued')];
}

/**
 * A project: its lead's status and last heartbeat, its tasks by status, its next wave.
 * @param {Api.Project} p
 * @param {Record<string, number>} c its tasks' counts by status
 */
function projectCard(p, c) {
  const lead = state.leads.get(p.id);
  const ld = lead && lead.data;
  const total = Object.values(c).reduce((a, b) => a + b, 0);
  return h('article', { class: 'card project-card', 'data-project-id': p.id },
    h('div', { class: 'card-top' },
      h('h3', null, p.name),
      ld ? h('span', { class: `badge lead-${ld.status}`, 'data-lead-status': ld.status, title: 'The lead’s status, from its last heartbeat' }, `lead ${ld.status}`) : null,
      ld && ld.isRunning ? h('span', { class: `tag ${ld.isHealthy ? 'ok' : 'warn'}` }, ld.isHealthy ? 'healthy' : 'needs attention') : null),
    h('p', { class: 'muted small mono', title: p.path }, p.path, ' · ', p.default_branch),
    lead && lead.error ? h('p', { class: 'small warn-text' }, `Lead status unavailable: ${lead.error}`) : null,
    ld ? h('p', { class: 'small', 'data-last-poll': ld.lastPoll || '' },
      'Last heartbeat: ',
      !ld.lastPoll ? h('span', { class: 'muted' }, 'never')
        : ld.timeSinceLastPoll != null
          ? h('span', { 'data-ago-ms': ld.timeSinceLastPoll, 'data-ago-at': lead.at, title: new Date(ms(ld.lastPoll)).toLocaleString() }, duration(ld.timeSinceLastPoll + (Date.now() - lead.at)) + ' ago')
          : rel(ld.lastPoll),
      ld.lastPoll ? h('span', { class: 'muted' }, ` (at ${new Date(ms(ld.lastPoll)).toLocaleTimeString()})`) : null,
      ld.source ? [' from ', h('strong', null, ld.source)] : null) : (lead ? null : h('p', { class: 'small muted' }, 'Lead status: loading…')),
    // Counted here from the live tasks (the lead's own figures are fetched at most every few seconds).
    h('p', { class: 'small muted', 'data-project-progress': p.id },
      `${total} total · ${c.succeeded || 0} completed · ${(c.queued || 0) + (c.running || 0) + (c.checking || 0)} in progress · ${(c.pending || 0) + (c.awaiting_approval || 0)} to do`),
    h('ul', { class: 'counts', 'aria-label': 'Tasks by status' },
      TaskStatus.map((st) => h('li', { class: c[st] ? '' : 'zero' }, badge(st), h('span', { class: 'n' }, String(c[st] || 0))))),
    ld && ld.state && ld.state.nextWave && ld.state.nextWave.length
      ? h('div', { class: 'small' }, h('span', { class: 'muted' }, 'Next wave: '),
        h('ul', { class: 'chips' }, ld.state.nextWave.slice(0, 8).map((/** @type {string} */ id) => taskChip(state.tasks.get(id), id))))
      : null,
    total ? null : h('p', { class: 'small muted' }, 'No tasks yet.'));
}

/** @param {Api.Task[]} list the tasks at work */
function runningTable(list) {
  return h('table', { tabindex: '0', class: 'table' },
    h('thead', null, h('tr', null, ['Task', 'Status', 'Agent', 'Branch', 'Last commit', 'Elapsed', 'Cost'].map((c) => h('th', null, c)))),
    h('tbody', null, list.map((t) => taskRow(t, [
      h('td', null, taskTitleLink(t), h('div', { class: 'muted small mono' }, t.id)),
      h('td', null, badge(t.status)),
      h('td', null, t.agent),
      h('td', { class: 'mono small' }, (t.git && t.git.branch) || h('span', { class: 'muted' }, '—')),
      h('td', { class: 'mono small' }, (t.git && shortSha(t.git.head)) || h('span', { class: 'muted' }, '—')),
      h('td', null, since(t.started_at)),
      h('td', { class: 'num' }, fmtCost(t.usage && t.usage.cost_usd)),
    ]))));
}

/** @param {Api.Task} t a task waiting for a person (approval, failure, block, pause) */
function attentionItem(t) {
  return h('li', { class: 'attention-item', 'data-task-id': t.id },
    badge(t.status), ' ', taskTitleLink(t),
    t.reason ? h('span', { class: 'muted small' }, ' — ', truncate(t.reason, 160)) : null,
    t.status === 'awaiting_approval'
      ? h('button', { type: 'button', class: 'btn small primary', 'data-action': 'approve', 'data-focus-key': 'approve:' + t.id, onclick: (/** @type {MouseEvent & {currentTarget: HTMLButtonElement}} */ e) => approveTask(t.id, e.currentTarget) }, 'Approve')
      : null);
}

/** @param {Api.Launcher[]} list */
function launcherTable(list) {
  return h('table', { tabindex: '0', class: 'table' },
    h('thead', null, h('tr', null, ['Name', 'Host', 'Status', 'Slots in use', 'Executors', 'Version', 'Last seen'].map((c) => h('th', null, c)))),
    h('tbody', null, list.map((l) => {
      const used = (l.running || []).length;
      const pct = l.slots ? Math.min(100, Math.round((used / l.slots) * 100)) : 0;
      return h('tr', { 'data-launcher-id': l.id },
        h('td', null, h('strong', null, l.name)),
        h('td', { class: 'mono small' }, l.hostname),
        h('td', null, h('span', { class: `badge launcher-${l.status}` }, l.status)),
        h('td', null, h('span', { class: 'slots' }, `${used} / ${l.slots}`),
          h('span', { class: 'bar', 'aria-hidden': 'true' }, h('span', { style: `width:${pct}%` }))),
        h('td', { class: 'small' }, (l.executors || []).join(', ')),
        h('td', { class: 'small mono' }, l.version),
        h('td', null, rel(l.last_seen)));
    })));
}

/** @param {Api.Orchestration[]} list */
function orchTable(list) {
  return h('table', { tabindex: '0', class: 'table' },
    h('thead', null, h('tr', null, ['Description', 'Status', 'Subtasks', 'Planner', 'Updated'].map((c) => h('th', null, c)))),
    h('tbody', null, list.map((o) => {
      const subs = o.subtasks || [];
      const done = subs.filter((x) => x.status === 'succeeded').length;
      const planner = o.planner_task && state.tasks.get(o.planner_task);
      return h('tr', { 'data-orchestration-id': o.id },
        h('td', null, truncate(o.description, 120)),
        h('td', null, h('span', { class: `badge orch-${o.status}` }, o.status)),
        h('td', null, subs.length ? `${done} / ${subs.length} done` : '—'),
        h('td', null, o.planner_task ? h('a', { href: taskHref(o.planner_task) }, planner ? planner.title : o.planner_task) : o.planner),
        h('td', null, rel(o.updated_at)));
    })));
}
