// An agent's definition, made or changed in the page: a form for the common
// fields (Name, Executor, Model, Command, Prompt, description, tags) or the raw
// Markdown with front matter for the rest. A definition read from a file of a
// repository is not changed in place: "Copy to edit" opens a copy under a new name.

import { api, errorMessage } from '../api/client.js';
import { h } from '../lib/dom.js';
import { enc } from '../lib/links.js';
import { replaceAgents } from '../state/store.js';
import { clearErrors, field, openDialog, showFieldError } from '../ui/dialog.js';
import { toastOk } from '../ui/toast.js';

const EXECUTORS = ['claude-code', 'codex', 'gemini', 'acp', 'command'];

/** Whether a definition comes from a file of a repository. @param {Api.AgentDef} a */
export const fileBacked = (a) => !!a.source && a.source.endsWith('.md');

/**
 * Words as a shell would split them (quotes keep spaces), or a JSON list.
 * @param {string} text
 * @returns {string[]}
 */
export function words(text) {
  const t = text.trim();
  if (t.startsWith('[')) {
    try { return JSON.parse(t).map(String); } catch { /* as words */ }
  }
  const out = [];
  const re = /"((?:[^"\\]|\\.)*)"|'([^']*)'|(\S+)/g;
  for (let m = re.exec(t); m; m = re.exec(t)) out.push(m[1] != null ? m[1].replace(/\\(.)/g, '$1') : m[2] != null ? m[2] : m[3]);
  return out;
}

/** A command as one line. @param {string[]} argv */
const line = (argv) => argv.map((w) => (/[\s'"]/.test(w) ? `'${w.replace(/'/g, `'\\''`)}'` : w)).join(' ');

/**
 * Opens the form: for a new agent, to edit `agent`, or (with `copy`) to make a
 * new agent from it.
 * @param {Api.AgentDef | null} agent
 * @param {{copy?: boolean}} [options]
 */
export function openAgentForm(agent, { copy = false } = {}) {
  const editing = !!agent && !copy;
  const c = {
    name: /** @type {HTMLInputElement} */ (h('input', { class: 'input', name: 'name', autocomplete: 'off', value: agent ? (copy ? `${agent.name}-copy` : agent.name) : '' })),
    executor: /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'executor' }, EXECUTORS.map((x) => h('option', { value: x }, x)))),
    model: /** @type {HTMLInputElement} */ (h('input', { class: 'input', name: 'model', value: (agent && agent.model) || '' })),
    command: /** @type {HTMLInputElement} */ (h('input', { class: 'input wide mono', name: 'command', value: agent && agent.command && agent.command.length ? line(agent.command) : '' })),
    prompt: /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide', rows: 5, name: 'prompt' })),
    description: /** @type {HTMLInputElement} */ (h('input', { class: 'input wide', name: 'description', value: (agent && agent.description) || '' })),
    tags: /** @type {HTMLInputElement} */ (h('input', { class: 'input', name: 'tags', value: agent ? (agent.tags || []).join(', ') : '' })),
    raw: /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide mono', rows: 14, name: 'markdown' })),
  };
  c.executor.value = (agent && agent.executor) || 'command';
  c.prompt.value = (agent && agent.system_prompt) || '';
  if (editing) c.name.readOnly = true;
  const rawMode = /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name: 'raw-mode' }));
  const fields = h('div', { class: 'agent-fields' },
    h('div', { class: 'form-row' }, field('Name', c.name), field('Executor', c.executor), field('Model', c.model)),
    field('Command', c.command, 'The program and its arguments (the command and acp executors need one).'),
    field('Prompt', c.prompt, 'The system prompt.'),
    h('div', { class: 'form-row' }, field('Description', c.description), field('Tags', c.tags, 'Comma-separated.')));
  const rawBox = h('div', { class: 'agent-raw', hidden: true }, field('Markdown', c.raw, 'YAML front matter between --- lines, then the system prompt: every field.'));
  const save = h('button', { type: 'submit', class: 'btn primary', 'data-action': 'save-agent' }, 'Save');
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'form', novalidate: true },
    h('label', { class: 'check' }, rawMode, ' Edit the raw Markdown'), fields, rawBox,
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': '*', hidden: true }),
    h('div', { class: 'form-actions' }, save)));
  rawMode.addEventListener('change', () => toggleRaw(c, rawMode.checked, fields, rawBox, agent));
  const dlg = openDialog(editing ? `Agent ${agent.name}` : 'New agent', form, { wide: true });
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      await saveAgent(c, rawMode.checked, editing);
      toastOk(`Saved agent ${c.name.value.trim()}.`);
      replaceAgents(await api('/api/agents'));
      dlg.close();
    } catch (err) {
      const m = errorMessage(err);
      showFieldError(form, rawMode.checked ? 'Markdown' : /name/.test(m) ? 'Name' : /command/.test(m) ? 'Command' : /executor/.test(m) ? 'Executor' : null, m);
    }
  });
  (editing ? c.model : c.name).focus();
}

/**
 * Switches between the form and the raw Markdown, carrying what was typed.
 * @param {Record<string, any>} c
 * @param {boolean} raw
 * @param {HTMLElement} fields
 * @param {HTMLElement} rawBox
 * @param {Api.AgentDef | null} agent
 */
async function toggleRaw(c, raw, fields, rawBox, agent) {
  fields.hidden = raw;
  rawBox.hidden = !raw;
  if (!raw || c.raw.value) return;
  if (agent && agent.name === c.name.value.trim()) {
    try { c.raw.value = (await api(`/api/agents/${enc(agent.name)}/markdown`)).markdown; return; } catch { /* from the form */ }
  }
  const def = definition(c);
  const yaml = Object.entries(def).filter(([k, v]) => k !== 'system_prompt' && v != null && v !== '' && !(Array.isArray(v) && !v.length))
    .map(([k, v]) => `${k}: ${JSON.stringify(v)}`).join('\n');
  c.raw.value = `---\n${yaml}\n---\n${def.system_prompt || ''}\n`;
}

/** The definition the form says. @param {Record<string, any>} c */
function definition(c) {
  return {
    name: c.name.value.trim(),
    executor: c.executor.value,
    model: c.model.value.trim() || undefined,
    command: words(c.command.value),
    system_prompt: c.prompt.value,
    description: c.description.value.trim(),
    tags: c.tags.value.split(',').map((/** @type {string} */ t) => t.trim()).filter(Boolean),
  };
}

/**
 * Saves the definition: new (POST), changed (PUT), or from its Markdown.
 * @param {Record<string, any>} c
 * @param {boolean} raw
 * @param {boolean} editing
 */
async function saveAgent(c, raw, editing) {
  const name = c.name.value.trim();
  if (raw) {
    const nameIn = /^name:\s*["']?([A-Za-z0-9._-]+)/m.exec(c.raw.value);
    const target = (nameIn && nameIn[1]) || name;
    if (!editing && (await exists(target))) throw new Error(`agent ${target} already exists`);
    return api(`/api/agents/${enc(target)}/markdown`, { method: 'PUT', body: { markdown: c.raw.value } });
  }
  const def = definition(c);
  if (editing) return api(`/api/agents/${enc(name)}`, { method: 'PUT', body: def });
  return api('/api/agents', { method: 'POST', body: def });
}

/** Whether an agent of this name exists. @param {string} name */
async function exists(name) {
  try { await api(`/api/agents/${enc(name)}`); return true; } catch { return false; }
}
