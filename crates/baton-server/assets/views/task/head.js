// The task page's header: title and status, why it stopped, the conflict radar,
// the facts (agent, branch, cost, times, sandbox…), its feedback loops (loops.js),
// the tasks it depends on, needs and started, its prompt and result.

import { h, rerender } from '../../lib/dom.js';
import { capText, fmtCost, fmtTokens, plural, shortSha } from '../../lib/format.js';
import { taskHref } from '../../lib/links.js';
import { rel, since } from '../../lib/time.js';
import { state } from '../../state/store.js';
import { LIVE, badge, projectName, taskChip, tasksSorted } from '../shared.js';
import { loopsBox } from './loops.js';

/**
 * @param {import('./view.js').TaskPage} page
 * @param {() => void} rendered called after each render (the actions follow the status)
 */
export function TaskHead(page, rendered) {
  const element = h('div', { class: 'task-head' });
  let shownKey = '';
  return {
    element,
    /** Draws the header again, when something it shows changed (keeps text selection and scroll steady). */
    render() {
      const t = page.task();
      if (!t) return;
      document.title = `${t.title} · Baton`;
      const rel = related(t, page);
      const key = keyOf(t, page, rel);
      if (key !== shownKey) {
        shownKey = key;
        rerender(element, () => headNodes(t, page, rel));
      }
      rendered();
    },
  };
}

/**
 * The tasks the header lists: those started by its sessions, those that need it.
 * @param {Api.Task} t
 * @param {import('./view.js').TaskPage} page
 */
function related(t, page) {
  const sessionIds = new Set((page.detail.sessions || []).map((x) => x.id));
  if (t.session_id) sessionIds.add(t.session_id);
  return {
    children: tasksSorted((x) => x.parent_session_id && sessionIds.has(x.parent_session_id)),
    dependents: tasksSorted((x) => (x.depends_on || []).includes(t.id)),
  };
}

/**
 * Everything the header shows, as one string.
 * @param {Api.Task} t
 * @param {import('./view.js').TaskPage} page
 * @param {{children: Api.Task[], dependents: Api.Task[]}} related
 */
function keyOf(t, page, { children, dependents }) {
  const brief = (/** @type {Api.Task | undefined} */ x) => (x ? `${x.id}:${x.status}:${x.title}` : '');
  const parent = page.parent && page.parent.task_id ? state.tasks.get(page.parent.task_id) : null;
  return JSON.stringify([t.updated_at, t.status, state.projects.size, page.parent, parent && parent.title,
    (t.depends_on || []).map((d) => brief(state.tasks.get(d))), dependents.map(brief), children.map(brief),
    (page.detail.overlaps || []).map((o) => [o.task_id, o.files, brief(state.tasks.get(o.task_id))]),
    (page.detail.sessions || []).map((x) => `${x.id}:${x.status}`)]);
}

/**
 * @param {Api.Task} t
 * @param {import('./view.js').TaskPage} page
 * @param {{children: Api.Task[], dependents: Api.Task[]}} related
 */
function headNodes(t, page, { children, dependents }) {
  const g = t.git || {};
  return [
    h('p', { class: 'crumbs' }, h('a', { href: '#/board' }, 'Board'), ' / ', h('code', null, t.id)),
    h('div', { class: 'title-row' },
      h('h1', null, t.title || t.id),
      h('span', { class: `badge big st-${t.status}`, 'data-task-status': t.status }, t.status),
      t.external ? h('span', { class: 'tag', title: 'An interactive Claude Code session that Baton only watches' }, 'external') : null,
      g.merge === 'merged' ? h('span', { class: 'tag ok' }, 'merged') : null,
      g.merge === 'conflict' ? h('span', { class: 'tag bad' }, 'merge conflict') : null,
      g.merge === 'queued' ? h('span', { class: 'tag' }, 'in merge queue') : null),
    t.reason ? h('p', { class: `reason reason-${t.status}` }, t.reason) : null,
    radarBox(page.detail.overlaps || []),
    h('dl', { class: 'facts' }, facts(t, page)),
    loopsBox(t),
    (t.depends_on || []).length ? h('div', { class: 'rel' }, h('h3', null, 'Depends on'),
      h('ul', { class: 'chips' }, t.depends_on.map((d) => taskChip(state.tasks.get(d), d)))) : null,
    dependents.length ? h('div', { class: 'rel' }, h('h3', null, 'Needed by'), h('ul', { class: 'chips' }, dependents.map((x) => taskChip(x)))) : null,
    children.length ? h('div', { class: 'rel', 'data-children': '' }, h('h3', null, `Child tasks (${children.length})`),
      h('ul', { class: 'chips' }, children.map((x) => taskChip(x)))) : null,
    h('details', { class: 'prompt', 'data-key': 'prompt' }, h('summary', null, 'Prompt'), h('pre', { class: 'pre' }, capText(t.prompt))),
    t.result ? h('details', { class: 'prompt', 'data-key': 'result', open: true }, h('summary', null, 'Result'), h('div', { class: 'ev-text' }, capText(t.result))) : null,
  ];
}

/**
 * The other live tasks changing some of the same files.
 * @param {Api.Overlap[]} overlaps
 */
function radarBox(overlaps) {
  if (!overlaps.length) return null;
  return h('div', { class: 'radar-box', 'data-radar': '' },
    h('strong', null, '⚠ Conflict radar: '),
    overlaps.length === 1 ? '1 other live task changes some of the same files.' : `${overlaps.length} other live tasks change some of the same files.`,
    h('ul', null, overlaps.map((o) => {
      const other = state.tasks.get(o.task_id);
      return h('li', { 'data-task-id': o.task_id },
        other ? badge(other.status) : h('span', { class: 'muted small' }, 'status unknown'), ' ', h('a', { href: taskHref(o.task_id) }, other ? other.title : o.task_id), ': ',
        o.files.map((f, i) => [i ? ', ' : '', h('code', null, f)]));
    })));
}

/** A fact of the header: its label and its value. @type {(label: string, ...value: any[]) => HTMLElement} */
const fact = (label, ...value) => h('div', { class: 'fact' }, h('dt', null, label), h('dd', null, value));

/**
 * @param {Api.Task} t
 * @param {import('./view.js').TaskPage} page
 */
function facts(t, page) {
  const g = t.git || {};
  const u = t.usage;
  return [
    fact('Agent', t.agent, (t.agent_switches || []).length ? h('span', { class: 'muted small' }, ` (switched from ${t.agent_switches.map((x) => x.from).join(', ')})`) : null),
    fact('Project', projectName(t.project_id)),
    t.workset ? fact('Workset', h('strong', null, t.workset.name), ': ', t.workset.parts.map((p, i) => [i ? ', ' : '',
      p.pr ? h('a', { href: p.pr, rel: 'noopener' }, p.name) : h('code', null, p.name),
      p.merged_commit ? h('span', { class: 'muted small' }, ` (landed ${shortSha(p.merged_commit)})`) : null])) : null,
    fact('Branch', g.branch ? h('code', null, g.branch) : h('span', { class: 'muted' }, 'none yet'), g.base_branch ? h('span', { class: 'muted small' }, ` → ${g.base_branch}`) : null),
    fact('Last commit', g.head ? h('code', { title: g.head }, shortSha(g.head)) : '—', g.commits && g.commits.length ? h('span', { class: 'muted small' }, ` (${plural(g.commits.length, 'commit')})`) : null),
    fact('Changes', g.diff_stat || (g.files_changed && g.files_changed.length ? plural(g.files_changed.length, 'file') : '—')),
    fact('Cost', h('strong', null, fmtCost(u && u.cost_usd)), h('span', { class: 'muted small' }, ` · ${fmtTokens(u && u.input_tokens)} in / ${fmtTokens(u && u.output_tokens)} out`),
      t.budget_usd != null ? h('span', { class: 'muted small' }, ` · budget ${fmtCost(t.budget_usd)}`) : null),
    fact('Created', rel(t.created_at)),
    fact('Started', t.started_at ? rel(t.started_at) : '—'),
    fact(t.finished_at ? 'Took' : 'Elapsed', t.started_at ? since(t.started_at, LIVE.has(t.status) ? null : t.finished_at) : '—'),
    fact('Retries', `${t.retries || 0} of ${t.max_retries || 0}`),
    sandboxFact(t),
    t.parent_session_id ? startedBy(t, page.parent) : null,
    (page.detail.sessions || []).length ? fact('Sessions', page.detail.sessions.map((x, i) => [i ? ', ' : '', h('code', null, x.id), ` ${x.status}`])) : null,
  ];
}

/**
 * How its agent is isolated: as the launcher reported for its last run, or as asked.
 * @param {Api.Task} t
 */
function sandboxFact(t) {
  const iso = t.isolation;
  if (!iso && !t.sandbox) return null;
  if (!iso) return fact('Sandbox', h('span', { 'data-sandbox': 'asked' }, t.sandbox), h('span', { class: 'muted small' }, ' (asked; not run yet)'));
  const net = iso.network;
  return fact('Sandbox',
    h('span', { 'data-sandbox': iso.kind, class: iso.kind === 'none' ? 'warn-text' : null }, iso.kind),
    net ? h('span', { class: 'muted small' }, ` · network ${networkWords(net)}`) : null,
    iso.reason ? h('div', { class: 'muted small' }, iso.reason) : null);
}

/**
 * Where its network traffic may go: `full`, `none`, or the hosts allowed.
 * @param {Api.NetworkPolicy} net
 */
function networkWords(net) {
  if (typeof net === 'string') return net;
  return net.length ? `only ${net.join(', ')}` : 'none';
}

/**
 * The session that started this task, linked to its task.
 * @param {Api.Task} t
 * @param {import('./view.js').TaskPage['parent']} p
 */
function startedBy(t, p) {
  const parent = p && p.task_id ? state.tasks.get(p.task_id) : null;
  return fact('Started by',
    p && p.task_id
      ? h('a', { href: taskHref(p.task_id), 'data-parent-session': t.parent_session_id }, parent ? parent.title : p.task_id)
      : h('code', { 'data-parent-session': t.parent_session_id }, t.parent_session_id),
    h('span', { class: 'muted small' }, ` (session ${t.parent_session_id}${t.callback ? ', with callback' : ''})`),
    p && p.error ? h('span', { class: 'warn-text small' }, ` — ${p.error}`) : null);
}
