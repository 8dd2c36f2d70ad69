// Projects and settings (key 0, `#/projects`): add a project by its path; edit
// each project's `.baton/config.toml` (checked by the rules `baton project
// reload` applies before anything is written; pools are its `[pools]`); and
// launcher tokens, made (shown once) and revoked.

import { api, errorMessage } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { enc } from '../lib/links.js';
import { rel } from '../lib/time.js';
import { state } from '../state/store.js';
import { clearErrors, field, openDialog, showFieldError } from '../ui/dialog.js';
import { errorBox } from '../ui/errors.js';
import { toastError, toastOk } from '../ui/toast.js';
import { empty, loading, pageWithHead, sectionHead } from './shared.js';

/** @returns {import('../router.js').View} */
export function ProjectsView() {
  /** @type {HTMLElement} */
  let content;
  /** @type {Api.TokenInfo[] | null} */
  let tokens = null;
  /** @type {unknown} */
  let tokenError = null;
  /** @type {{token: string | null, name: string}} a token just made, shown this once; the name being typed */
  const fresh = { token: null, name: '' };
  async function loadTokens() {
    try { tokens = await api('/api/tokens'); tokenError = null; } catch (err) { tokenError = err; }
    refresh();
  }
  const build = () => [
    h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'btn primary', 'data-action': 'add-project', onclick: openAddProject }, 'Add project')),
    !state.ready ? loading() : state.projects.size ? h('ul', { class: 'project-list' }, [...state.projects.values()].map(projectRow)) : empty('No projects yet.'),
    tokensSection(tokens, tokenError, fresh, loadTokens),
  ];
  function refresh() { if (content) rerender(content, build); }
  return {
    title: 'Projects',
    mount(root) {
      content = pageWithHead(root, 'Projects', 'The repositories under Baton’s care, their settings, and the tokens of launchers on other hosts.');
      refresh();
      loadTokens();
    },
    refresh,
    onChange(change) { if (change.kind === 'project' || change.kind === 'snapshot') refresh(); },
  };
}

/** A project, with its settings button. @param {Api.Project} p */
function projectRow(p) {
  return h('li', { class: 'card', 'data-project': p.name },
    h('div', { class: 'card-top' }, h('h2', null, p.name), h('code', { class: 'muted small' }, p.id)),
    h('p', { class: 'small' }, h('code', null, p.path), ` · default branch ${p.default_branch}`),
    h('div', { class: 'action-row' }, h('button', { type: 'button', class: 'btn small', 'data-action': 'settings', onclick: () => openSettings(p) }, 'Settings')));
}

/** The form that registers a repository as a project. */
export function openAddProject() {
  const path = /** @type {HTMLInputElement} */ (h('input', { class: 'input wide mono', name: 'path', placeholder: '/home/me/code/repo' }));
  const name = /** @type {HTMLInputElement} */ (h('input', { class: 'input', name: 'name' }));
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'form', novalidate: true },
    field('Path', path, 'The absolute path of a git repository with at least one commit.'),
    field('Name', name, 'Optional: the directory’s name by default.'),
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': '*', hidden: true }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn primary', 'data-action': 'save-project' }, 'Add'))));
  const dlg = openDialog('Add project', form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      /** @type {Api.Project} */
      const p = await api('/api/projects', { method: 'POST', body: { path: path.value.trim(), name: name.value.trim() || undefined } });
      toastOk(`Added project ${p.name}.`);
      dlg.close();
    } catch (err) {
      const m = errorMessage(err);
      showFieldError(form, /name/.test(m) && !/path/.test(m) ? 'Name' : 'Path', m);
    }
  });
  path.focus();
}

/** A project's settings file, edited and saved when it checks. @param {Api.Project} p */
async function openSettings(p) {
  const text = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide mono', rows: 16, name: 'settings', spellcheck: 'false' }));
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'form', novalidate: true },
    field('Settings', text, 'TOML: parallel_limit, checks, merge_strategy, [pools], [forge], … — checked before it is written.'),
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': '*', hidden: true }),
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn primary', 'data-action': 'save-settings' }, 'Save'))));
  const dlg = openDialog(`Settings of ${p.name}`, form, { wide: true });
  // Nothing is typed until the file is read: it would be overwritten.
  text.disabled = true;
  try {
    /** @type {Api.ProjectConfig} */
    const c = await api(`/api/projects/${enc(p.id)}/config`);
    text.value = c.text;
  } catch (err) {
    showFieldError(form, 'Settings', errorMessage(err));
  } finally {
    text.disabled = false;
  }
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await api(`/api/projects/${enc(p.id)}/config`, { method: 'PUT', body: { text: text.value } });
      toastOk(`Saved the settings of ${p.name}.`);
      dlg.close();
    } catch (err) {
      showFieldError(form, 'Settings', errorMessage(err));
    }
  });
  text.focus();
}

/**
 * Launcher tokens: each, with Revoke; and a form for a new one, shown once.
 * @param {Api.TokenInfo[] | null} tokens
 * @param {unknown} error
 * @param {{token: string | null, name: string}} fresh
 * @param {() => void} reload
 */
function tokensSection(tokens, error, fresh, reload) {
  // What is typed survives the view being drawn again (a project changed meanwhile).
  const name = /** @type {HTMLInputElement} */ (h('input', {
    class: 'input', id: 'token-name', placeholder: 'gpu-host-1', value: fresh.name, 'data-focus-key': 'token-name',
    oninput: () => { fresh.name = name.value; },
  }));
  const shown = h('div', { class: 'notice', role: 'status', hidden: !fresh.token, 'data-new-token': '' },
    fresh.token ? [h('p', null, 'Copy it now: it is shown only this once.'), h('code', { class: 'token-secret' }, fresh.token)] : null);
  const make = async () => {
    try {
      /** @type {Api.NewToken} */
      const t = await api('/api/tokens', { method: 'POST', body: { kind: 'launcher', name: name.value.trim() || undefined } });
      fresh.token = t.token;
      fresh.name = '';
      reload();
    } catch (err) { toastError('make a token', err); }
  };
  return h('section', { class: 'block tokens' }, sectionHead('Launcher tokens'),
    error ? errorBox('load the tokens', error) : null,
    h('div', { class: 'action-row' }, h('label', { for: 'token-name' }, 'Name '), name,
      h('button', { type: 'button', class: 'btn', 'data-action': 'new-token', onclick: make }, 'New launcher token')),
    shown,
    tokens == null ? loading() : h('ul', { class: 'token-list' }, tokens.filter((t) => t.kind === 'launcher').map((t) => h('li', { 'data-token-id': t.id },
      h('code', null, t.id), ` ${t.name || ''} `, h('span', { class: 'muted small' }, rel(t.created_at)), ' ',
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'revoke-token', onclick: () => revoke(t.id, reload) }, 'Revoke')))));
}

/** Revokes a token, after asking. @param {string} id @param {() => void} reload */
async function revoke(id, reload) {
  if (!confirm(`Revoke token ${id}? Launchers using it stop at once.`)) return;
  try {
    await api(`/api/tokens/${enc(id)}`, { method: 'DELETE' });
    toastOk(`Revoked ${id}.`);
    reload();
  } catch (err) { toastError(`revoke ${id}`, err); }
}
