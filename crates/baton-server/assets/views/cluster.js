// The agents that live between tasks, on the agents view: each agent with memory
// and each project's lead, with its state, queue, inbox, memory against its
// limits and last activity; leads started, stopped and restarted from here; an
// agent's memory read, written and reverted in a dialog.

import { api } from '../api/client.js';
import { h } from '../lib/dom.js';
import { enc } from '../lib/links.js';
import { rel } from '../lib/time.js';
import { field, openDialog } from '../ui/dialog.js';
import { toastError, toastOk } from '../ui/toast.js';
import { sectionHead } from './shared.js';

/**
 * The cluster: one row per living agent, with its leads' controls.
 * @param {Api.AgentStatus[]} agents
 * @param {() => void} reload
 */
export function clusterSection(agents, reload) {
  if (!agents.length) return null;
  return h('section', { class: 'cluster', 'aria-label': 'Agents that live' },
    sectionHead('Agents that live', h('span', { class: 'muted small' }, 'with memory, or leading a project; an idle lead has no process and makes no model call')),
    h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Agent', 'State', 'Working / queued', 'Inbox', 'Memory', 'Leads', 'Last activity', ''].map((c) => h('th', null, c)))),
      h('tbody', null, agents.map((a) => h('tr', { 'data-living-agent': a.agent },
        h('td', null, h('strong', null, a.agent)),
        h('td', null, h('span', { class: `badge st-${a.state.replace(' ', '-')}` }, a.state)),
        h('td', null, `${a.working} / ${a.queued_tasks}`),
        h('td', null, String(a.queued_messages)),
        h('td', null, a.memory ? memoryMeter(a) : h('span', { class: 'muted' }, '—')),
        h('td', null, a.leads.length ? a.leads.map((l) => leadLine(l, reload)) : h('span', { class: 'muted' }, '—')),
        h('td', null, rel(a.last_activity)),
        h('td', null, a.memory ? h('button', { type: 'button', class: 'btn small', 'data-action': 'open-memory', onclick: () => openMemory(a.agent, reload) }, 'Memory') : null)))))));
}

/** @param {Api.AgentStatus} a */
function memoryMeter(a) {
  const pct = a.memory_limit ? Math.round((100 * a.memory_chars) / a.memory_limit) : 0;
  return h('span', { class: 'small', title: `${a.memory_chars} of ${a.memory_limit} characters` },
    h('meter', { min: 0, max: a.memory_limit || 1, value: a.memory_chars, 'aria-label': `memory of ${a.agent}` }), ` ${pct}%`);
}

/**
 * A project this agent leads: its state and the buttons that act on it.
 * @param {Api.LeadView} l
 * @param {() => void} reload
 */
function leadLine(l, reload) {
  const act = async (/** @type {string} */ what, /** @type {HTMLButtonElement} */ btn) => {
    btn.disabled = true;
    try {
      const path = `/api/projects/${enc(l.project_id)}/lead`;
      if (what !== 'start') await api(`${path}/stop`, { method: 'POST', body: {} });
      if (what !== 'stop') await api(`${path}/start`, { method: 'POST', body: { agent: l.agent } });
      toastOk(`The lead of ${l.project}: ${what === 'stop' ? 'stopped' : 'started'}.`);
    } catch (err) {
      toastError(`${what} the lead of ${l.project}`, err);
    }
    reload();
  };
  const button = (/** @type {string} */ what, /** @type {string} */ label) => {
    const b = /** @type {HTMLButtonElement} */ (h('button', { type: 'button', class: 'btn small', 'data-action': `lead-${what}`, 'aria-label': `${label} the lead of ${l.project}` }, label));
    b.addEventListener('click', () => act(what, b));
    return b;
  };
  const alive = l.wanted;
  return h('div', { class: 'lead-line', 'data-lead-project': l.project },
    h('span', null, `${l.project} (${l.state})`),
    l.restarts ? h('span', { class: 'muted small' }, ` · restarted ${l.restarts}×`) : null,
    ' ', alive ? [button('stop', 'Stop'), ' ', button('restart', 'Restart')] : button('start', 'Start'));
}

/**
 * The agent's memory: each block with its size and limit, its text to edit
 * (a text past the limit is refused with both sizes), its versions to bring
 * back; and the journal's newest entries.
 * @param {string} agent
 * @param {() => void} reload
 */
export async function openMemory(agent, reload) {
  /** @type {Api.MemoryView} */
  let view;
  try {
    view = await api(`/api/agents/${enc(agent)}/memory`);
  } catch (err) {
    toastError(`load ${agent}'s memory`, err);
    return;
  }
  const body = h('div', { class: 'memory' },
    h('p', { class: 'muted small' }, `${view.context_chars} of ${view.context_budget} characters reach the agent when a task starts.`),
    view.blocks.map((b) => blockEditor(agent, b, reload)),
    h('h3', null, 'Journal'),
    view.journal.length
      ? h('ul', { class: 'journal' }, view.journal.slice(0, 15).map((e) => h('li', null, h('span', { class: 'muted small' }, rel(e.at)), ' ', e.text)))
      : h('p', { class: 'muted' }, 'Nothing yet: Baton writes an entry when each task ends.'));
  openDialog(`Memory of ${agent}`, body, { wide: true });
}

/**
 * One block: its text, Save, and its earlier versions.
 * @param {string} agent
 * @param {Api.MemoryBlock} b
 * @param {() => void} reload
 */
function blockEditor(agent, b, reload) {
  const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide', rows: 4, name: `block-${b.label}` }));
  text.value = b.text;
  const size = h('span', { class: 'muted small', 'data-block-size': b.label }, `${[...b.text].length} of ${b.limit} characters · version ${b.version}${b.read_only ? ' · read-only for the agent' : ''}`);
  const error = h('p', { class: 'field-error', role: 'alert', hidden: true });
  text.addEventListener('input', () => { size.textContent = `${[...text.value].length} of ${b.limit} characters`; });
  const save = async () => {
    try {
      const saved = await api(`/api/agents/${enc(agent)}/memory/${enc(b.label)}`, { method: 'PUT', body: { text: text.value } });
      error.hidden = true;
      size.textContent = `${[...saved.text].length} of ${saved.limit} characters · version ${saved.version}`;
      toastOk(`${agent}'s ${b.label} saved (version ${saved.version}).`);
      reload();
    } catch (err) {
      error.textContent = err.message;
      error.hidden = false;
    }
  };
  const versions = h('details', { class: 'versions' }, h('summary', null, 'Earlier versions'));
  versions.addEventListener('toggle', () => { if (versions.open) loadVersions(agent, b, versions, text); }, { once: true });
  return h('div', { class: 'block', 'data-block': b.label },
    field(b.label, text, b.description || undefined), size, error,
    h('div', { class: 'action-row' }, h('button', { type: 'button', class: 'btn small primary', 'data-action': 'save-block', onclick: save }, 'Save')),
    versions);
}

/**
 * Fills `into` with a block's versions, each with a Revert.
 * @param {string} agent
 * @param {Api.MemoryBlock} b
 * @param {HTMLElement} into
 * @param {HTMLTextAreaElement} text
 */
async function loadVersions(agent, b, into, text) {
  try {
    /** @type {Api.MemoryBlock[]} */
    const all = await api(`/api/agents/${enc(agent)}/memory/${enc(b.label)}`);
    into.append(h('ul', null, all.map((v) => h('li', null,
      h('span', { class: 'muted small' }, `v${v.version} · ${rel(v.updated_at)} · `), v.text.slice(0, 120), ' ',
      h('button', { type: 'button', class: 'btn small', 'data-action': 'revert-block', onclick: async () => {
        try {
          const back = await api(`/api/agents/${enc(agent)}/memory/${enc(b.label)}/revert`, { method: 'POST', body: { version: v.version } });
          text.value = back.text;
          toastOk(`${b.label} is back to version ${v.version} (now version ${back.version}).`);
        } catch (err) { toastError(`revert ${b.label}`, err); }
      } }, 'Revert')))));
  } catch (err) {
    toastError(`load ${b.label}'s versions`, err);
  }
}
