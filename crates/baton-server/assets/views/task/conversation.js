// The task page's conversation tab: the person's prompt and follow-ups, the
// agent's messages, and its tool calls folded to a line each, in order; the
// messages still queued (withdrawable) under them; and a box to send another.
// A message sent while the agent works waits for its turn to end; one sent to
// a task at rest resumes the same session.

import { api, newKey } from '../../api/client.js';
import { h, rerender } from '../../lib/dom.js';
import { capText, oneLine, textOf } from '../../lib/format.js';
import { enc } from '../../lib/links.js';
import { rel } from '../../lib/time.js';
import { errorNodes } from '../../ui/errors.js';
import { toastError } from '../../ui/toast.js';
import { empty } from '../shared.js';

/** @typedef {{who: 'person' | 'agent' | 'tool', text: string, detail?: string, at?: string}} Turn */

/**
 * @param {import('./view.js').TaskPage} page
 */
export function Conversation(page) {
  /** @type {Turn[]} */
  const turns = [];
  const seenRuns = new Set();
  const log = h('ol', { class: 'conversation', 'aria-label': 'Conversation' });
  const queued = h('div', { class: 'queued' });
  const box = /** @type {HTMLTextAreaElement} */ (h('textarea', { class: 'input wide', rows: 3, id: 'conversation-message', placeholder: 'Ctrl+Enter sends' }));
  const send = /** @type {HTMLButtonElement} */ (h('button', { type: 'submit', class: 'btn primary', 'data-action': 'send' }, 'Send'));
  const said = h('div', { class: 'action-msg', role: 'status', hidden: true });
  const form = h('form', { class: 'send-form' },
    h('label', { for: box.id }, 'Message'), box, h('div', { class: 'form-actions' }, send), said);
  const panel = h('div', { class: 'panel', id: 'panel-conversation', role: 'tabpanel', 'aria-labelledby': 'tab-conversation', 'data-panel': 'conversation', hidden: true },
    log, queued, form);
  /** @type {{text: string, key: string} | null} */
  let last = null;

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const text = box.value.trim();
    if (!text || send.disabled) return;
    if (!last || last.text !== text) last = { text, key: newKey() };
    send.disabled = true;
    try {
      /** @type {Api.FollowUp} */
      const m = await api(`/api/tasks/${enc(page.id)}/messages`, { method: 'POST', body: { text }, key: last.key });
      box.value = '';
      last = null;
      said.hidden = false;
      said.className = 'action-msg ok';
      said.replaceChildren(h('p', null, m.state === 'queued' ? 'Queued: it reaches the agent when its turn ends.' : 'Sent: the agent resumes the conversation.'));
    } catch (err) {
      said.hidden = false;
      said.className = 'action-msg error';
      said.replaceChildren(...errorNodes('send the message', err));
    } finally {
      send.disabled = false;
    }
  });
  box.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); form.requestSubmit(); }
  });

  return {
    panel,
    /** Takes events as the timeline reads them. @param {any[]} events */
    take(events) {
      for (const ev of events) {
        const t = turnOf(ev, seenRuns);
        if (t) turns.push(t);
      }
      this.render();
    },
    render() {
      rerender(log, () => (turns.length ? turns.map(turnRow) : [empty('Nothing said yet.')]));
      const t = page.task();
      const waiting = ((t && t.follow_ups) || []).filter((m) => m.state === 'queued');
      rerender(queued, () => (waiting.length ? [h('h3', { class: 'small' }, 'Queued for the end of its turn'),
        h('ul', { class: 'queued-list' }, waiting.map((m) => queuedRow(page, m)))] : []));
    },
  };
}

/**
 * What an event adds to the conversation, if anything: a run's message (the
 * person's prompt or follow-up, once per run), the agent's words, a tool call,
 * or its final answer.
 * @param {any} ev
 * @param {Set<string>} seenRuns
 * @returns {Turn | null}
 */
function turnOf(ev, seenRuns) {
  const d = ev.data || {};
  switch (ev.kind) {
    case 'run':
      if (!d.id || seenRuns.has(d.id) || !d.message) return null;
      seenRuns.add(d.id);
      return { who: 'person', text: d.message, at: ev.ts };
    case 'message':
      if ((d.role || 'assistant') === 'user') return null;
      return { who: 'agent', text: d.text ?? textOf(d.content), at: ev.ts };
    case 'tool_call':
      return { who: 'tool', text: d.name || 'tool', detail: oneLine(d.input, 140), at: ev.ts };
    case 'result':
      return d.text ? { who: 'agent', text: d.text, at: ev.ts } : null;
    default:
      return null;
  }
}

/** @param {Turn} t */
function turnRow(t) {
  if (t.who === 'tool') {
    return h('li', { class: 'turn turn-tool', 'data-turn': 'tool' }, h('span', { class: 'muted small' }, '→ ', t.text, ' '), h('code', { class: 'muted small' }, t.detail || ''));
  }
  return h('li', { class: `turn turn-${t.who}`, 'data-turn': t.who },
    h('p', { class: 'turn-who small muted' }, t.who === 'person' ? 'You' : 'Agent', t.at ? [' · ', rel(t.at)] : null),
    h('div', { class: 'turn-text' }, capText(t.text)));
}

/**
 * A queued message, with its Withdraw button.
 * @param {import('./view.js').TaskPage} page
 * @param {Api.FollowUp} m
 */
function queuedRow(page, m) {
  const btn = h('button', {
    type: 'button', class: 'btn small', 'data-action': 'withdraw',
    onclick: async () => {
      try {
        await api(`/api/tasks/${enc(page.id)}/messages/${enc(m.id)}`, { method: 'DELETE' });
      } catch (err) {
        toastError('withdraw the message', err);
      }
    },
  }, 'Withdraw');
  return h('li', { class: 'queued-item', 'data-message-id': m.id, 'data-state': m.state }, h('span', { class: 'badge st-queued' }, 'queued'), ' ', m.text, ' ', btn);
}
