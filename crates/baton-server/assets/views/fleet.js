// The fleet (key 8, `#/fleet`): each launcher's host, health, slots in use, labels,
// the agent programs it found, its sandbox, and drain / undrain.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { plural } from '../lib/format.js';
import { enc } from '../lib/links.js';
import { rel } from '../lib/time.js';
import { saveLauncher, state } from '../state/store.js';
import { empty, launchersSorted, loading, pageWithHead } from './shared.js';

/** @returns {import('../router.js').View} */
export function FleetView() {
  /** @type {HTMLElement} */
  let content;
  /** @type {Map<string, string>} what the last drain or undrain of a launcher said, when it failed */
  const errors = new Map();
  /**
   * @param {Api.Launcher} l
   * @param {boolean} draining
   * @param {HTMLButtonElement} btn
   */
  async function setDraining(l, draining, btn) {
    btn.disabled = true;
    try {
      const saved = await api(`/api/launchers/${enc(l.id)}/${draining ? 'drain' : 'undrain'}`, { method: 'POST' });
      errors.delete(l.id);
      saveLauncher(saved);
    } catch (err) {
      errors.set(l.id, err.message);
    }
    refresh();
  }
  const refresh = () => rerender(content, () => build(errors, setDraining));
  return {
    title: 'Fleet',
    mount(root) {
      content = pageWithHead(root, 'Fleet');
      refresh();
    },
    refresh,
  };
}

/**
 * The page, from the state.
 * @param {Map<string, string>} errors
 * @param {(l: Api.Launcher, draining: boolean, btn: HTMLButtonElement) => void} setDraining
 */
function build(errors, setDraining) {
  if (!state.ready) return loading();
  const list = launchersSorted();
  const online = list.filter((l) => l.status === 'online');
  const slots = online.reduce((n, l) => n + l.slots, 0);
  const used = online.reduce((n, l) => n + (l.running || []).length, 0);
  return [
    h('p', { class: 'muted' }, `${online.length} of ${plural(list.length, 'launcher')} online · ${used} of ${plural(slots, 'slot')} in use`),
    list.length
      ? h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
        h('thead', null, h('tr', null, ['Launcher', 'Host', 'Health', 'Slots', 'Labels', 'Programs', 'Sandbox', 'Version', 'Last seen', ''].map((c) => h('th', null, c)))),
        h('tbody', null, list.map((l) => row(l, errors.get(l.id), setDraining)))))
      : empty('No launcher has registered. `baton up` embeds one; `baton launcher` runs one elsewhere.'),
  ];
}

/**
 * A launcher's row, with its Drain or Undrain button and what the last one said when it failed.
 * @param {Api.Launcher} l
 * @param {string | undefined} error
 * @param {(l: Api.Launcher, draining: boolean, btn: HTMLButtonElement) => void} setDraining
 */
function row(l, error, setDraining) {
  const used = (l.running || []).length;
  const programs = Object.entries(l.programs || {});
  return h('tr', { 'data-launcher-id': l.id, 'data-draining': l.draining ? 'yes' : 'no' },
    h('td', null, h('strong', null, l.name), h('div', { class: 'muted small mono' }, l.id)),
    h('td', { class: 'mono small' }, l.hostname),
    h('td', null, h('span', { class: `badge launcher-${l.status}` }, l.status),
      l.draining ? [' ', h('span', { class: 'tag warn' }, 'draining')] : null),
    h('td', null, `${used} / ${l.slots}`),
    h('td', null, (l.labels || []).length ? (l.labels || []).map((x) => h('span', { class: 'tag' }, x)) : h('span', { class: 'muted' }, '—')),
    h('td', { class: 'small' }, programs.length
      ? programs.map(([name, p], i) => [i ? ', ' : '', name, h('span', { class: 'muted', title: p.path || '' }, !p.path ? ' (not found)' : p.version ? ` ${p.version}` : '')])
      : (l.executors || []).join(', ')),
    h('td', { class: 'small', title: (l.sandbox && l.sandbox.reason) || '' }, (l.sandbox && l.sandbox.kind) || '—'),
    h('td', { class: 'small mono' }, l.version),
    h('td', null, rel(l.last_seen)),
    h('td', null,
      h('button', { type: 'button', class: 'btn small', 'data-action': l.draining ? 'undrain' : 'drain', 'data-focus-key': 'drain:' + l.id,
        title: l.draining ? 'Take new runs again' : 'Finish the runs it has and take no new ones',
        onclick: (/** @type {MouseEvent & {currentTarget: HTMLButtonElement}} */ e) => setDraining(l, !l.draining, e.currentTarget) }, l.draining ? 'Undrain' : 'Drain'),
      error ? h('div', { class: 'small warn-text' }, error) : null));
}
