// The webhooks (key 7, `#/webhooks`): each webhook, its recent deliveries (status,
// attempts, last answer) and "redeliver". Deliveries change without events on the
// stream: they are read every few seconds while the view is open.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { rel } from '../lib/time.js';
import { enc } from '../lib/links.js';
import { clearErrors, field, openDialog, showFieldError } from '../ui/dialog.js';
import { errorBox } from '../ui/errors.js';
import { toastError, toastOk } from '../ui/toast.js';
import { empty, loading, pageWithHead } from './shared.js';

/** @returns {import('../router.js').View} */
export function WebhooksView() {
  /** @type {HTMLElement} */
  let content;
  let alive = true;
  /** @type {ReturnType<typeof setInterval> | null} */
  let timer = null;
  /** @type {unknown} */
  let error = null;
  /** @type {Api.WebhookInfo[] | null} */
  let hooks = null;
  /** @type {Map<string, Api.Delivery[]>} */
  const deliveries = new Map();
  async function reloadNow() {
    try {
      /** @type {Api.WebhookInfo[]} */
      const list = await api('/api/webhooks');
      const logs = await Promise.all((list || []).map((w) => api(`/api/webhooks/${enc(w.id)}/deliveries?limit=10`)));
      if (!alive) return;
      hooks = list || [];
      deliveries.clear();
      hooks.forEach((w, i) => deliveries.set(w.id, logs[i] || []));
      error = null;
    } catch (err) {
      error = err;
    }
    if (alive) refresh();
  }
  /** @param {Api.Delivery} d */
  async function redeliver(d) {
    try {
      await api(`/api/deliveries/${enc(d.id)}/redeliver`, { method: 'POST', body: {} });
      toastOk(`Delivery ${d.id} will be sent again now.`);
      reloadNow();
    } catch (err) {
      toastError('send the delivery again', err);
    }
  }
  /** @param {Api.WebhookInfo} w @param {'test' | 'remove'} what */
  async function hookAction(w, what) {
    if (what === 'remove' && !confirm(`Remove webhook ${w.id} and its deliveries?`)) return;
    try {
      if (what === 'test') await api(`/api/webhooks/${enc(w.id)}/test`, { method: 'POST', body: {} });
      else await api(`/api/webhooks/${enc(w.id)}`, { method: 'DELETE' });
      toastOk(what === 'test' ? `A test delivery to ${w.id} is on its way.` : `Removed ${w.id}.`);
      reloadNow();
    } catch (err) {
      toastError(what === 'test' ? 'send a test' : 'remove the webhook', err);
    }
  }
  function build() {
    return [
      h('div', { class: 'toolbar' }, h('button', { type: 'button', class: 'btn primary', 'data-action': 'add-webhook', onclick: () => openAddWebhook(reloadNow) }, 'Add webhook')),
      error ? errorBox('load the webhooks', error) : null,
      hooks === null ? loading()
        : hooks.length ? hooks.map((w) => hookCard(w, deliveries.get(w.id) || [], redeliver, hookAction))
          : empty('No webhooks. Add one with: baton webhook add URL --event task.awaiting_approval --format slack'),
    ];
  }
  function refresh() { if (content) rerender(content, build); }
  return {
    title: 'Webhooks',
    mount(root) {
      content = pageWithHead(root, 'Webhooks', 'Where Baton tells what happened: signed deliveries, retried for 24 h, with one-tap action links.');
      refresh();
      reloadNow();
      timer = setInterval(reloadNow, 3000);
    },
    refresh,
    unmount() { alive = false; clearInterval(timer); },
  };
}

/**
 * A webhook: where it sends, which events, and its last deliveries.
 * @param {Api.WebhookInfo} w
 * @param {Api.Delivery[]} log
 * @param {(d: Api.Delivery) => void} redeliver
 * @param {(w: Api.WebhookInfo, what: 'test' | 'remove') => void} action
 */
function hookCard(w, log, redeliver, action) {
  return h('article', { class: 'card webhook-card', 'data-webhook-id': w.id },
    h('div', { class: 'card-top' },
      h('h3', null, h('code', null, w.id)),
      h('span', { class: 'tag' }, w.format),
      w.disabled ? h('span', { class: 'badge avail-no' }, 'disabled') : h('span', { class: 'badge avail-yes' }, 'active')),
    h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'URL'), ' ', h('code', { class: 'wrap' }, w.url)),
    h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Events'), ' ', w.events.join(', ')),
    h('div', { class: 'fact-line' }, h('span', { class: 'muted' }, 'Deliveries'), ` ${w.pending} pending, ${w.failed} failed`),
    w.disabled ? h('p', { class: 'hint' }, w.disabled) : null,
    h('div', { class: 'action-row' },
      h('button', { type: 'button', class: 'btn small', 'data-action': 'test-webhook', onclick: () => action(w, 'test') }, 'Send test'),
      h('button', { type: 'button', class: 'btn small danger', 'data-action': 'remove-webhook', onclick: () => action(w, 'remove') }, 'Remove')),
    log.length ? h('div', { class: 'table-wrap' }, h('table', { tabindex: '0', class: 'table' },
      h('thead', null, h('tr', null, ['Event', 'Status', 'Attempts', 'Last answer', 'Made', ''].map((c) => h('th', null, c)))),
      h('tbody', null, log.map((d) => deliveryRow(d, redeliver))))) : h('p', { class: 'muted small' }, 'Nothing delivered yet.'));
}

/**
 * @param {Api.Delivery} d
 * @param {(d: Api.Delivery) => void} redeliver
 */
function deliveryRow(d, redeliver) {
  const last = d.attempts[d.attempts.length - 1];
  return h('tr', { 'data-delivery-id': d.id },
    h('td', null, h('code', null, d.event)),
    h('td', null, h('span', { class: `badge delivery-${d.status}` }, d.status)),
    h('td', null, String(d.attempts.length)),
    h('td', { class: 'small' }, last ? last.error || String(last.status) : '—'),
    h('td', null, rel(d.created_at)),
    h('td', null, h('button', { type: 'button', class: 'btn small', 'data-focus-key': `redeliver-${d.id}`, onclick: () => redeliver(d) }, 'Redeliver')));
}

/**
 * The form that adds a webhook; its secret is shown once.
 * @param {() => void} reload
 */
function openAddWebhook(reload) {
  const url = /** @type {HTMLInputElement} */ (h('input', { class: 'input wide', name: 'url', placeholder: 'The receiver’s http(s) URL' }));
  const events = /** @type {HTMLInputElement} */ (h('input', { class: 'input wide', name: 'events', value: '*' }));
  const format = /** @type {HTMLSelectElement} */ (h('select', { class: 'select', name: 'format' }, ['json', 'slack', 'discord', 'ntfy'].map((f) => h('option', { value: f }, f))));
  const secret = h('div', { class: 'notice', hidden: true, 'data-new-secret': '' });
  const form = /** @type {HTMLFormElement} */ (h('form', { class: 'form', novalidate: true },
    field('URL', url), field('Events', events, 'Comma-separated (task.failed, task.awaiting_approval, …); * for every one.'), field('Format', format),
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': '*', hidden: true }), secret,
    h('div', { class: 'form-actions' }, h('button', { type: 'submit', class: 'btn primary', 'data-action': 'save-webhook' }, 'Add'))));
  openDialog('Add webhook', form);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form);
    try {
      /** @type {Api.WebhookInfo} */
      const w = await api('/api/webhooks', { method: 'POST', body: { url: url.value.trim(), events: events.value.split(',').map((x) => x.trim()).filter(Boolean), format: format.value } });
      secret.hidden = false;
      secret.replaceChildren(h('p', null, `Added ${w.id}. Its signing secret, shown only now:`), h('code', null, w.secret || ''));
      reload();
    } catch (err) {
      const m = err && /** @type {any} */ (err).message ? String(/** @type {any} */ (err).message) : String(err);
      showFieldError(form, /`url`/.test(m) ? 'URL' : /event/.test(m) ? 'Events' : /format/.test(m) ? 'Format' : null, m);
    }
  });
  url.focus();
}
