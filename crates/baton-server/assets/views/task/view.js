// The task page (`#/tasks/ID`, `#/tasks/ID/conversation`, `#/tasks/ID/review`):
// its header (head.js), its actions (actions.js), and three tabs — the live
// timeline of every event (timeline.js), the conversation with its agent
// (conversation.js) and the review: checks, the diff with comments, the runs
// (review.js, comments.js).
//
// This module loads the task, lays the parts out, and passes them what changes.

import { api, errorMessage, isUnauthorized } from '../../api/client.js';
import { debounce } from '../../lib/debounce.js';
import { h } from '../../lib/dom.js';
import { enc, taskHref } from '../../lib/links.js';
import { replaceAddress } from '../../router.js';
import { mergeTasks, state, upsertTask } from '../../state/store.js';
import { errorBox } from '../../ui/errors.js';
import { toastError } from '../../ui/toast.js';
import { loading } from '../shared.js';
import { TaskActions } from './actions.js';
import { Conversation } from './conversation.js';
import { TaskHead } from './head.js';
import { Review } from './review.js';
import { Timeline } from './timeline.js';

/**
 * What the task page's parts share.
 * @typedef {object} TaskPage
 * @property {string} id the task's full id (once loaded)
 * @property {Api.TaskDetail | null} detail the last `GET /api/tasks/{id}`: the task with its sessions, runs and overlaps
 * @property {boolean} alive false once the page is left
 * @property {'timeline' | 'conversation' | 'review'} tab the tab shown
 * @property {{session: string, task_id?: string, error?: string} | null} parent the session that started it, and its task
 * @property {() => Api.Task | null} task the task as the state holds it now
 */

/** @returns {import('../../router.js').View} */
export function TaskView() {
  /** @type {TaskPage} */
  const page = {
    id: '', detail: null, alive: true, tab: 'timeline', parent: null,
    task: () => (page.detail ? state.tasks.get(page.detail.id) || page.detail : null),
  };
  /** @type {HTMLElement} */
  let root;
  /** @type {ReturnType<typeof layout> | null} */
  let parts = null;

  async function load() {
    let d;
    try {
      d = await api(`/api/tasks/${enc(page.id)}`);
    } catch (err) {
      if (page.alive) root.replaceChildren(...loadFailed(page.id, err));
      return;
    }
    if (!page.alive) return;
    take(page, d);
    if (d.id !== page.id) {
      page.id = d.id;
      replaceAddress(taskHref(page.id));
    }
    parts = layout(root, page);
    loadRelations(page, parts);
    await parts.timeline.load();
  }

  async function refreshDetail() {
    if (!page.alive || !page.detail) return;
    try {
      const d = await api(`/api/tasks/${enc(page.id)}`);
      if (!page.alive) return;
      take(page, d);
      parts.head.render();
      parts.review.render();
    } catch (err) {
      if (!isUnauthorized(err)) console.warn('task detail', err);
    }
  }
  const refreshDetailSoon = debounce(refreshDetail, 1500, 5000);

  /** @param {import('../../state/store.js').Change} change */
  function onChange(change) {
    if (!parts) return;
    if (change.kind === 'task') onTask(change.task, change.old);
    else if (change.kind === 'run' && keepRun(page, change.run)) parts.review.render();
    else if (change.kind === 'session') keepSession(page, change.session);
  }

  /** @param {Api.Task} t @param {Api.Task | undefined} old */
  function onTask(t, old) {
    if (t.id === page.detail.id) {
      parts.head.render();
      parts.review.onTask(t, old);
      parts.conversation.render();
      if (!old || old.status !== t.status || old.session_id !== t.session_id) refreshDetailSoon();
    } else if (t.project_id === page.detail.project_id) {
      // Another task of the project: the radar or the list of children may change.
      refreshDetailSoon();
    }
  }

  return {
    title: 'Task',
    mount(r, params) {
      root = r;
      page.id = params.id;
      page.tab = tabOf(params.tab);
      root.append(loading());
      load();
    },
    update(params) {
      if (params.id !== page.id) return false;
      if (params.tab && parts) parts.selectTab(params.tab);
      return true;
    },
    refresh() {
      if (parts) parts.head.render();
    },
    onChange,
    unmount() {
      page.alive = false;
      refreshDetailSoon.cancel();
      if (parts) parts.stop();
    },
  };
}

/** The tabs, in order. @type {('timeline' | 'conversation' | 'review')[]} */
const TABS = ['timeline', 'conversation', 'review'];

/** The tab an address names (the timeline by default). @param {string | null | undefined} name */
function tabOf(name) {
  return TABS.find((t) => t === name) || 'timeline';
}

/**
 * Keeps what `GET /api/tasks/{id}` answered: the detail on the page, the task in the state.
 * @param {TaskPage} page
 * @param {Api.TaskDetail} d
 */
function take(page, d) {
  page.detail = d;
  const { sessions, runs, overlaps, ...t } = d;
  upsertTask(/** @type {Api.Task} */ (t));
}

/**
 * What the page says when the task cannot be read (an unknown or ambiguous id…).
 * @param {string} id
 * @param {unknown} err
 */
function loadFailed(id, err) {
  return [
    h('div', { class: 'page-head' }, h('h1', null, 'Task ', h('code', null, id))),
    errorBox('load this task', err),
    h('p', null, h('a', { href: '#/board' }, '← Back to the board')),
  ];
}

/**
 * Lays out the page's parts in `root`: header, actions, the tabs and their panels.
 * @param {HTMLElement} root
 * @param {TaskPage} page
 */
function layout(root, page) {
  const timeline = Timeline(page);
  const review = Review(page);
  const conversation = Conversation(page);
  timeline.onEvents((evs) => conversation.take(evs));
  const actions = TaskActions(page, { merged: () => review.changed() });
  const head = TaskHead(page, () => actions.update());
  const tabBtn = (/** @type {string} */ name, /** @type {string} */ label, /** @type {Node} */ extra) => h('button', {
    type: 'button', role: 'tab', class: 'tab', id: `tab-${name}`, 'data-tab': name, 'aria-controls': `panel-${name}`,
    onclick: () => selectTab(name),
  }, label, extra);
  const tabs = h('div', { class: 'tabs', role: 'tablist', 'aria-label': 'Task views' },
    tabBtn('timeline', 'Timeline ', timeline.count), tabBtn('conversation', 'Conversation', null), tabBtn('review', 'Review', null));
  tabs.addEventListener('keydown', (e) => {
    if (e.key !== 'ArrowRight' && e.key !== 'ArrowLeft') return;
    e.preventDefault();
    const i = TABS.indexOf(page.tab);
    const next = TABS[(i + (e.key === 'ArrowRight' ? 1 : TABS.length - 1)) % TABS.length];
    selectTab(next);
    /** @type {HTMLElement} */ (tabs.querySelector(`[data-tab="${next}"]`)).focus();
  });
  /** @param {string} name */
  function selectTab(name) {
    page.tab = tabOf(name);
    for (const b of /** @type {NodeListOf<HTMLButtonElement>} */ (tabs.querySelectorAll('[data-tab]'))) {
      const on = b.getAttribute('data-tab') === page.tab;
      b.setAttribute('aria-selected', on ? 'true' : 'false');
      b.tabIndex = on ? 0 : -1;
    }
    timeline.panel.hidden = page.tab !== 'timeline';
    review.panel.hidden = page.tab !== 'review';
    conversation.panel.hidden = page.tab !== 'conversation';
    timeline.shown();
    if (page.tab === 'review') review.ensureDiff();
  }
  // The review panel comes first in the document: the visible one is then found first by text.
  root.replaceChildren(head.element, actions.element, tabs, review.panel, conversation.panel, timeline.panel);
  head.render();
  actions.update();
  review.render();
  selectTab(page.tab);
  return {
    head, review, timeline, conversation, selectTab,
    stop() { timeline.stop(); review.stop(); },
  };
}

/**
 * Reads the session that started it, and the tasks its own sessions started.
 * @param {TaskPage} page
 * @param {{head: {render: () => void}}} parts
 */
async function loadRelations(page, parts) {
  const t = page.task();
  if (t.parent_session_id) {
    try {
      const sess = await api(`/api/sessions/${enc(t.parent_session_id)}`);
      page.parent = { session: t.parent_session_id, task_id: sess.task_id };
    } catch (err) {
      page.parent = { session: t.parent_session_id, error: errorMessage(err) };
    }
  }
  const sids = new Set((page.detail.sessions || []).map((x) => x.id));
  if (t.session_id) sids.add(t.session_id);
  for (const sid of sids) {
    try {
      mergeTasks(await api(`/api/tasks?parent=${enc(sid)}&limit=1000`));
    } catch (err) {
      toastError('load the child tasks', err);
    }
  }
  if (page.alive) parts.head.render();
}

/**
 * Keeps a run of the task's current session among its runs; whether it was one.
 * @param {TaskPage} page
 * @param {Api.Run} r
 */
function keepRun(page, r) {
  if (!r || r.task_id !== page.detail.id || r.session_id !== page.task().session_id) return false;
  const runs = page.detail.runs || (page.detail.runs = []);
  const i = runs.findIndex((x) => x.id === r.id);
  if (i >= 0) runs[i] = r; else runs.push(r);
  return true;
}

/**
 * Keeps a session of the task among its sessions.
 * @param {TaskPage} page
 * @param {Api.Session} sess
 */
function keepSession(page, sess) {
  if (!sess || sess.task_id !== page.detail.id) return;
  const list = page.detail.sessions || (page.detail.sessions = []);
  const i = list.findIndex((x) => x.id === sess.id);
  if (i >= 0) list[i] = sess; else list.push(sess);
}
