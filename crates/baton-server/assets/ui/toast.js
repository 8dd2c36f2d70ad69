// Short notices in the corner: what was done, or what could not be.

import { h } from '../lib/dom.js';
import { isUnauthorized } from '../api/client.js';
import { errorNodes } from './errors.js';

/**
 * @param {'ok' | 'error'} kind
 * @param {any[]} nodes
 * @param {number} [timeout] ms before it goes by itself
 */
function toast(kind, nodes, timeout) {
  const box = document.getElementById('toasts');
  if (!box) return;
  const close = h('button', { class: 'toast-close', type: 'button', 'aria-label': 'Dismiss' }, '×');
  const t = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', 'data-error': kind === 'error' ? '' : null },
    h('div', { class: 'toast-body' }, nodes), close);
  close.addEventListener('click', () => t.remove());
  box.append(t);
  while (box.children.length > 5) box.firstElementChild.remove();
  if (timeout) setTimeout(() => t.remove(), timeout);
}

/**
 * Says what could not be done and why (not for a lost login: the page says that).
 * @param {string} verb
 * @param {unknown} err
 */
export function toastError(verb, err) {
  if (isUnauthorized(err)) return;
  toast('error', errorNodes(verb, err), 20000);
}

/** Says that something was done. @param {string} text */
export function toastOk(text) {
  toast('ok', [h('p', null, text)], 5000);
}
