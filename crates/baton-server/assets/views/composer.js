// The task composer: everything `baton run` can ask, from a form. It opens from
// the "New task" button on every view, the key `n` and the command palette. It
// remembers the last project, and the last base branch per project; `@` in the
// prompt completes paths of the project's files at the base branch; files
// dropped on it reach the agent beside its worktree. "Start" sends one request
// per submit under an Idempotency-Key, so a double click makes one task.

import { api, errorMessage, newKey } from '../api/client.js';
import { h } from '../lib/dom.js';
import { enc, taskHref } from '../lib/links.js';
import { go } from '../router.js';
import { state, upsertTask } from '../state/store.js';
import { clearErrors, field, openDialog, showFieldError } from '../ui/dialog.js';
import { toastOk } from '../ui/toast.js';
import { Completer } from './completer.js';

/** The largest file attached (as the coordinator's limit). */
const MAX_FILE = 10 * 1024 * 1024;
const LAST_PROJECT = 'baton.composer.project';
/** @param {string} project */
const lastBase = (project) => `baton.composer.base.${project}`;

/** @typedef {{project?: string, after?: string[], prompt?: string, agent?: string}} Prefill */

/**
 * Opens the composer, with `prefill` (prerequisites picked on the DAG, say).
 * @param {Prefill} [prefill]
 */
export function openComposer(prefill = {}) {
  const c = controls(prefill);
  const files = Attachments();
  const start = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'btn primary', 'data-action': 'start' }, 'Start'));
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'form composer', novalidate: true },
    field('Project', c.project), field('Prompt', c.prompt, 'Type @ to name a file of the project.'), c.completer.element,
    h('div', { class: 'form-row' }, field('Agent', c.agent), field('Model', c.model, 'Overrides the agent’s model.')),
    h('div', { class: 'form-row' }, field('Base branch', c.base), field('Attempts', c.attempts, 'Copies of the task to compare.')),
    field('One attempt per agent', c.perAgent, 'Pick several to run the task once with each.'),
    h('details', { class: 'more' }, h('summary', null, 'More: after, approval, limits, checks, sandbox'),
      field('After', c.after, 'Tasks that must succeed first.'),
      h('label', { class: 'check' }, c.approval, ' Wait for approval before it starts'),
      h('div', { class: 'form-row' }, field('Budget', c.budget, 'US dollars.'), field('Timeout', c.timeout, 'Seconds per run.')),
      field('Checks', c.checks, 'One command per line; each must pass.'),
      field('Sandbox', c.sandbox)),
    files.element,
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': '*', hidden: true }),
    h('div', { class: 'form-actions' }, start)));
  const dlg = openDialog('New task', form, { wide: true });
  form.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });
  dlg.dialog.addEventListener('dragover', (e) => { e.preventDefault(); });
  dlg.dialog.addEventListener('drop', (e) => { e.preventDefault(); if (e.dataTransfer) files.add([...e.dataTransfer.files]); });
  /** @type {{body: string, key: string} | null} */
  let last = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    if (start.disabled) return;
    clearErrors(form);
    start.disabled = true;
    start.textContent = 'Starting…';
    try {
      const docs = await files.upload();
      const req = request(c, docs);
      const body = JSON.stringify(req);
      if (!last || last.body !== body) last = { body, key: newKey() };
      await submit(req, last.key);
      dlg.close();
    } catch (err) {
      showFieldError(form, fieldOf(err), errorMessage(err));
    } finally {
      start.disabled = false;
      start.textContent = 'Start';
    }
  });
  c.prompt.focus();
}

/**
 * The form's controls, filled from the state and `prefill`.
 * @param {Prefill} prefill
 */
function controls(prefill) {
  const project = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'project' },
    [...state.projects.values()].map((p) => h('option', { value: p.id }, p.name))));
  const remembered = prefill.project || localStorage.getItem(LAST_PROJECT);
  if (remembered && state.projects.has(remembered)) project.value = remembered;
  const prompt = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide', rows: 6, name: 'prompt', required: true }));
  prompt.value = prefill.prompt || '';
  const agent = agentSelect(prefill.agent);
  const base = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'base' }));
  const c = {
    project, prompt, agent, base,
    model: /** @type {HTMLInputElement} */ (h('input', { class: 'input', name: 'model', autocomplete: 'off' })),
    attempts: /** @type {HTMLInputElement} */ (h('input', { class: 'input narrow', type: 'number', min: 1, max: 10, value: '1', name: 'attempts' })),
    perAgent: /** @type {HTMLSelectElement} */ (h('select', { class: 'select', multiple: true, size: 3, name: 'per-agent' },
      agentsSorted().map((a) => h('option', { value: a.name }, a.name)))),
    after: afterSelect(project.value, prefill.after || []),
    approval: /** @type {HTMLInputElement} */ (h('input', { type: 'checkbox', name: 'approval' })),
    budget: /** @type {HTMLInputElement} */ (h('input', { class: 'input narrow', type: 'number', min: 0, step: '0.01', name: 'budget' })),
    timeout: /** @type {HTMLInputElement} */ (h('input', { class: 'input narrow', type: 'number', min: 1, name: 'timeout' })),
    checks: /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide mono', rows: 3, name: 'checks' })),
    sandbox: /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'sandbox' },
      [['', 'the agent’s or the project’s'], ['auto', 'auto'], ['required', 'required'], ['off', 'off'], ['container', 'container']]
        .map(([v, t]) => h('option', { value: v }, t)))),
    completer: Completer(prompt, () => ({ project: project.value, base: base.value })),
  };
  loadBranches(c);
  project.addEventListener('change', () => {
    localStorage.setItem(LAST_PROJECT, project.value);
    loadBranches(c);
    c.after.replaceWith(c.after = afterSelect(project.value, []));
  });
  base.addEventListener('change', () => localStorage.setItem(lastBase(project.value), base.value));
  return c;
}

/** @returns {Api.AgentInfo[]} */
function agentsSorted() {
  return [...state.agents.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/**
 * The agents, each with its executor, model and whether a launcher can run it now.
 * @param {string} [chosen]
 */
function agentSelect(chosen) {
  const sel = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'agent' },
    h('option', { value: '' }, 'the project’s default'),
    agentsSorted().map((a) => h('option', { value: a.name },
      `${a.name} — ${a.executor}${a.model ? `, ${a.model}` : ''}${a.available === false ? ' (no launcher can run it now)' : ''}`))));
  if (chosen) sel.value = chosen;
  return sel;
}

/**
 * The project's tasks a new one may wait for, newest first.
 * @param {string} project
 * @param {string[]} picked
 */
function afterSelect(project, picked) {
  const tasks = [...state.tasks.values()]
    .filter((t) => t.project_id === project && !['cancelled'].includes(t.status) && !(t.git && t.git.merge === 'merged'))
    .sort((a, b) => String(b.created_at).localeCompare(String(a.created_at))).slice(0, 200);
  for (const id of picked) if (!tasks.some((t) => t.id === id) && state.tasks.has(id)) tasks.unshift(state.tasks.get(id));
  return /** @type {HTMLSelectElement} */ (h('select', { class: 'select', multiple: true, size: 4, name: 'after' },
    tasks.map((t) => h('option', { value: t.id, selected: picked.includes(t.id) || null }, `${t.title} (${t.id}, ${t.status})`))));
}

/**
 * Reads the project's branches into the base branch picker, choosing the last
 * one chosen for the project.
 * @param {ReturnType<typeof controls>} c
 */
async function loadBranches(c) {
  const project = c.project.value;
  const p = state.projects.get(project);
  let names = p ? [p.default_branch] : [];
  try {
    names = await api(`/api/projects/${enc(project)}/branches`);
  } catch { /* the default branch alone */ }
  if (c.project.value !== project) return;
  c.base.replaceChildren(...names.map((b) => h('option', { value: b }, b)));
  const remembered = localStorage.getItem(lastBase(project));
  if (remembered && names.includes(remembered)) c.base.value = remembered;
}

/**
 * The request the form asks for.
 * @param {ReturnType<typeof controls>} c
 * @param {{name: string, doc: string}[]} attachments
 */
function request(c, attachments) {
  const num = (/** @type {HTMLInputElement} */ el) => (el.value.trim() === '' ? undefined : Number(el.value));
  const p = state.projects.get(c.project.value);
  /** @type {Record<string, any>} */
  const task = {
    project: c.project.value,
    prompt: c.prompt.value,
    agent: c.agent.value || undefined,
    model: c.model.value.trim() || undefined,
    base: p && c.base.value && c.base.value !== p.default_branch ? c.base.value : undefined,
    depends_on: [...c.after.selectedOptions].map((o) => o.value),
    approval: c.approval.checked ? 'required' : undefined,
    budget_usd: num(c.budget),
    timeout_s: num(c.timeout),
    checks: c.checks.value.trim() ? c.checks.value.split('\n').map((l) => l.trim()).filter(Boolean) : undefined,
    sandbox: c.sandbox.value || undefined,
    attachments: attachments.length ? attachments : undefined,
  };
  const agents = [...c.perAgent.selectedOptions].map((o) => o.value);
  const count = num(c.attempts) || 1;
  return { task, count, agents };
}

/**
 * Sends the request: one task, or attempts; then shows what was made.
 * @param {ReturnType<typeof request>} req
 * @param {string} key
 */
async function submit(req, key) {
  if (req.agents.length || req.count > 1) {
    const body = req.agents.length ? { task: req.task, agents: req.agents } : { task: req.task, count: req.count };
    /** @type {Api.Task[]} */
    const made = await api('/api/attempts', { method: 'POST', body, key });
    for (const t of made) upsertTask(t);
    toastOk(`Started ${made.length} attempts.`);
    go(`#/attempts/${enc(made[0].id)}`);
    return;
  }
  /** @type {Api.Task} */
  const t = await api('/api/tasks', { method: 'POST', body: req.task, key });
  upsertTask(t);
  toastOk(`Started “${t.title}”.`);
  go(taskHref(t.id));
}

/**
 * The field an error concerns, from its code, details and words.
 * @param {any} err
 * @returns {string | null}
 */
export function fieldOf(err) {
  const d = (err && err.details) || {};
  const kinds = { agent: 'Agent', task: 'After', project: 'Project', document: 'Files', branch: 'Base branch' };
  if (d.kind && kinds[/** @type {keyof typeof kinds} */ (d.kind)]) return kinds[/** @type {keyof typeof kinds} */ (d.kind)];
  const m = String((err && err.message) || '');
  const words = [['`prompt`', 'Prompt'], ['`title`', 'Prompt'], ['`model`', 'Model'], ['branch', 'Base branch'],
    ['`timeout_s`', 'Timeout'], ['`budget_usd`', 'Budget'], ['`checks`', 'Checks'], ['attachment', 'Files'],
    ['`count`', 'Attempts'], ['agents', 'One attempt per agent'], ['agent', 'Agent'], ['project', 'Project']];
  for (const [w, label] of words) if (m.includes(w)) return label;
  return null;
}

/**
 * The files dropped on the composer or picked: listed, sent to the context store
 * on submit, each refused when it is over the limit.
 */
function Attachments() {
  /** @type {File[]} */
  let picked = [];
  const input = /** @type {HTMLInputElement} */ (h('input', { type: 'file', multiple: true, class: 'input' }));
  const list = h('ul', { class: 'attachments' });
  const element = h('div', { class: 'drop', 'data-drop': '' }, field('Files', input, 'Drop files here, or pick them: the agent reads them beside its worktree (10 MiB each).'), list);
  const draw = () => list.replaceChildren(...picked.map((f, i) => h('li', null, `${f.name} (${Math.ceil(f.size / 1024)} KiB) `,
    h('button', { type: 'button', class: 'btn small', onclick: () => { picked.splice(i, 1); draw(); } }, 'Remove'))));
  /** @param {File[]} files */
  const add = (files) => { picked = picked.concat(files); draw(); };
  input.addEventListener('change', () => { add([...(input.files || [])]); input.value = ''; });
  return {
    element,
    add,
    /** Sends each file to the context store; what the task names. */
    async upload() {
      const out = [];
      const folder = `attachments/${newKey()}`;
      for (const f of picked) {
        if (f.size > MAX_FILE) throw Object.assign(new Error(`attachment ${f.name} is ${f.size} bytes; the limit is ${MAX_FILE} bytes (10 MiB)`), { details: { kind: 'document' } });
        const doc = `${folder}/${f.name.replace(/[^A-Za-z0-9._-]/g, '_')}`;
        await api('/api/docs', { method: 'POST', body: { name: doc, content_base64: await base64(f), tags: ['attachment'] } });
        out.push({ name: f.name, doc });
      }
      return out;
    },
  };
}

/** A file's bytes in base64. @param {File} f @returns {Promise<string>} */
async function base64(f) {
  const bytes = new Uint8Array(await f.arrayBuffer());
  let text = '';
  for (let i = 0; i < bytes.length; i += 0x8000) text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(text);
}
