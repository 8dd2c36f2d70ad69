// The agents (key 4, `#/agents`): each definition, where its CLI is installed,
// whether it can run, and the concurrency pools agents share.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { debounce } from '../lib/debounce.js';
import { fmtCost } from '../lib/format.js';
import { rel } from '../lib/time.js';
import { replaceAgents, state } from '../state/store.js';
import { errorBox } from '../ui/errors.js';
import { toastError, toastOk } from '../ui/toast.js';
import { fileBacked, openAgentForm } from './agent-form.js';
import { clusterSection } from './cluster.js';
import { empty, loading, pageWithHead, sectionHead } from './shared.js';

/** @returns {import('../router.js').View} */
export function AgentsView() {
  /** @type {HTMLElement} */
  let content;
  let alive = true;
  /** @type {unknown} */
  let error = null;
  /** @type {Api.PoolInfo[]} */
  let pools = [];
  /** @type {Api.AgentStatus[]} */
  let living = [];
  async function reloadNow() {
    try {
      const [list, poolList, cluster] = await Promise.all([api('/api/agents'), api('/api/pools'), api('/api/agents/status')]);
      if (!alive) return;
      pools = poolList || [];
      living = cluster || [];
      replaceAgents(list);
      error = null;
    } catch (err) {
      error = err;
    }
    if (alive) refresh();
  }
  const reload = debounce(reloadNow, 1500, 5000);
  function build() {
    const agents = [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
    return [
      error ? errorBox('load the agents', error) : null,
      clusterSection(living, reloadNow),
      !state.ready && !agents.length ? loading()
        : agents.length ? h('div', { class: 'agent-grid' }, agents.map(agentCard)) : empty('No agents are defined.'),
      poolsSection(pools),
    ];
  }
  function refresh() { if (content) rerender(content, build); }
  return {
    title: 'Agents',
    mount(root) {
      content = pageWithHead(root, 'Agents', 'Definitions from .claude/agents, .baton/agents and the API, with where their CLI is installed, and the pools they share.');
      content.before(h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'btn primary', 'data-action': 'new-agent', onclick: () => openAgentForm(null) }, 'New agent')));
      refresh();
      reloadNow();
    },
    refresh,
    onChange(change) {
      // Installs, availability and pools change with the launchers and the runs.
      if (['run', 'launcher', 'agent', 'lead'].includes(change.kind)) reload();
    },
    unmount() { alive = false; reload.cancel(); },
  };
}

/**
 * The concurrency pools per provider or account: the governor's limits now.
 * @param {Api.PoolInfo[]} pools
 */
function poolsSection(pools) {
  if (!pools.length) return null;
  const limit = (/** @type {Api.PoolInfo} */ p) => (p.limit == null ? 'no limit' : `${p.limit}${p.lowered ? ` (lowered${p.size != null ? ` from ${p.size}` : ''})` : ''}`);
  return h('section', { class: 'pools' },
    sectionHead('Pools', h('span', { class: 'muted small' }, 'runs at once per provider or account; a limit halves on a 429 and grows back as runs succeed')),
    h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Pool', 'Limit', 'In use', 'Queued', '429s (1 h)', 'Last 429', 'Agents'].map((c) => h('th', null, c)))),
      h('tbody', null, pools.map((p) => h('tr', { 'data-pool-name': p.name },
        h('td', null, h('strong', null, p.name)),
        h('td', { class: p.lowered ? 'warn-text' : null }, limit(p)),
        h('td', null, String(p.in_use)),
        h('td', null, String(p.queued)),
        h('td', null, String(p.throttled_last_hour)),
        h('td', null, rel(p.last_throttled_at)),
        h('td', { class: 'small' }, (p.agents || []).join(', ') || '—')))))));
}

/**
 * An agent: its executor, whether a launcher can run it (and how to install it if
 * not), where its CLI is installed, its model, tools, limits and source.
 * @param {Api.AgentInfo} a
 */
function agentCard(a) {
  const installs = a.installs || [];
  const list = (/** @type {string} */ label, /** @type {string[] | null | undefined} */ arr) => (arr && arr.length ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, label), ' ', arr.join(', ')) : null);
  return h('article', { class: `card agent-card${a.available === false ? ' unavailable' : ''}`, 'data-agent-name': a.name },
    h('div', { class: 'card-top' },
      h('h3', null, a.name),
      h('span', { class: 'tag' }, a.executor),
      a.available === undefined ? null
        : h('span', { class: `badge ${a.available ? 'avail-yes' : 'avail-no'}`, 'data-available': a.available ? 'yes' : 'no' }, a.available ? 'available: yes' : 'available: no')),
    a.description ? h('p', { class: 'desc' }, a.description) : h('p', { class: 'desc muted' }, 'No description.'),
    (a.tags || []).length ? h('ul', { class: 'tags' }, a.tags.map((t) => h('li', { class: 'tag' }, t))) : null,
    h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'CLI'), ' ',
      a.program ? h('code', null, a.program) : h('span', { class: 'muted' }, 'none'),
      (a.command || []).length ? h('span', { class: 'muted small' }, ' · command ', h('code', null, a.command.join(' '))) : null),
    installs.length ? h('ul', { class: 'installs' }, installs.map((i) => h('li', null,
      h('strong', null, i.launcher), ': ',
      i.path ? [h('code', null, i.path), i.version ? h('span', { class: 'muted' }, ` (${i.version})`) : null] : h('span', { class: 'warn-text' }, 'not installed')))) : null,
    a.available === false && a.install_hint ? h('p', { class: 'hint' }, h('strong', null, 'To install: '), a.install_hint) : null,
    a.available === false && !a.install_hint ? h('p', { class: 'hint' }, 'No online launcher offers this agent’s executor.') : null,
    a.model ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Model'), ' ', a.model) : null,
    list('Delegates to', a.delegates_to),
    list('Fallback', a.fallback),
    list('Tools', a.tools),
    a.max_parallel != null ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'At most'), ` ${a.max_parallel} at once`) : null,
    a.budget_usd != null ? h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Budget'), ' ', fmtCost(a.budget_usd)) : null,
    a.source ? h('div', { class: 'fact-line small muted' }, 'From ', h('code', null, a.source)) : null,
    agentActions(a));
}

/**
 * What a person may do with a definition: edit or delete one made through the
 * API; copy any (a file's own is read-only here: "Copy to edit").
 * @param {Api.AgentInfo} a
 */
function agentActions(a) {
  const filed = fileBacked(a);
  return h('div', { class: 'action-row' },
    filed ? h('span', { class: 'muted small' }, 'Read-only: it comes from a file.') : null,
    filed ? null : h('button', { type: 'button', class: 'btn small', 'data-action': 'edit-agent', onclick: () => openAgentForm(a) }, 'Edit'),
    h('button', { type: 'button', class: 'btn small', 'data-action': filed ? 'copy-agent' : 'clone-agent', onclick: () => openAgentForm(a, { copy: true }) }, filed ? 'Copy to edit' : 'Clone'),
    filed ? null : h('button', { type: 'button', class: 'btn small danger', 'data-action': 'delete-agent', onclick: () => deleteAgent(a.name) }, 'Delete'));
}

/** Removes an agent made through the API, after asking. @param {string} name */
async function deleteAgent(name) {
  if (!confirm(`Delete agent ${name}?`)) return;
  try {
    await api(`/api/agents/${encodeURIComponent(name)}`, { method: 'DELETE' });
    replaceAgents(await api('/api/agents'));
    toastOk(`Deleted agent ${name}.`);
  } catch (err) {
    toastError(`delete agent ${name}`, err);
  }
}
