// A modal dialog (the browser's own <dialog>): focus moves into it and stays
// there, Escape closes it, and focus goes back where it was when it closes.

import { h } from '../lib/dom.js';

/**
 * Opens a modal dialog titled `title` holding `body`; closes it when `close()`
 * is called, on Escape, or on its ✕ button.
 * @param {string} title
 * @param {Node | Node[]} body
 * @param {{wide?: boolean, onClose?: () => void, label?: string}} [options]
 * @returns {{dialog: HTMLDialogElement, close: () => void}}
 */
export function openDialog(title, body, { wide = false, onClose, label } = {}) {
  const before = document.activeElement instanceof HTMLElement ? document.activeElement : null;
  const heading = h('h2', { class: 'dialog-title', id: `dlg-${Date.now()}` }, title);
  const x = h('button', { type: 'button', class: 'btn small dialog-x', 'aria-label': 'Close' }, '✕');
  const dialog = /** @type {HTMLDialogElement} */ (h('dialog', {
    class: `dialog${wide ? ' wide' : ''}`, 'aria-labelledby': heading.id, 'aria-label': label || null,
  }, h('div', { class: 'dialog-head' }, heading, x), h('div', { class: 'dialog-body' }, body)));
  let closed = false;
  const close = () => {
    if (closed) return;
    closed = true;
    if (dialog.open) dialog.close();
    dialog.remove();
    if (onClose) onClose();
    if (before && document.contains(before)) before.focus({ preventScroll: true });
  };
  x.addEventListener('click', close);
  dialog.addEventListener('cancel', (e) => { e.preventDefault(); close(); });
  dialog.addEventListener('keydown', (e) => { if (e.key === 'Escape') { e.preventDefault(); e.stopPropagation(); close(); } });
  document.body.append(dialog);
  dialog.showModal();
  return { dialog, close };
}

/**
 * A labelled form field: its label, the control, a line of help, and a place
 * for the error that concerns it (`data-error-for`).
 * @param {string} label
 * @param {HTMLElement} control
 * @param {string} [help]
 */
export function field(label, control, help) {
  const id = control.id || `f-${label.toLowerCase().replace(/[^a-z0-9]+/g, '-')}-${Math.random().toString(36).slice(2, 7)}`;
  control.id = id;
  const helpEl = help ? h('p', { class: 'field-help', id: `${id}-help` }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div', { class: 'field', 'data-field': label },
    h('label', { for: id }, label), control, helpEl,
    h('p', { class: 'field-error', role: 'alert', 'data-error-for': label, hidden: true }));
}

/**
 * Shows `message` beside the field labelled `label` in `form` (or under the form
 * when no field is named); clears every earlier error first.
 * @param {HTMLElement} form
 * @param {string | null} label
 * @param {string} message
 */
export function showFieldError(form, label, message) {
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (form.querySelectorAll('.field-error'))) { el.hidden = true; el.textContent = ''; }
  const at = /** @type {HTMLElement | null} */ (label && form.querySelector(`[data-error-for="${CSS.escape(label)}"]`))
    || /** @type {HTMLElement | null} */ (form.querySelector('[data-error-for="*"]'));
  if (!at) return;
  at.textContent = message;
  at.hidden = false;
  const control = at.parentElement && at.parentElement.querySelector('input, textarea, select');
  if (control instanceof HTMLElement && label) control.setAttribute('aria-invalid', 'true');
}

/** Clears a form's errors. @param {HTMLElement} form */
export function clearErrors(form) {
  for (const el of /** @type {NodeListOf<HTMLElement>} */ (form.querySelectorAll('.field-error'))) { el.hidden = true; el.textContent = ''; }
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
}
