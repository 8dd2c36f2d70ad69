// Errors shown in the page, in plain words, with what they concern.

import { h } from '../lib/dom.js';
import { errorList, errorMessage } from '../api/client.js';

/**
 * A box saying what could not be done, and why.
 * @param {string} verb what was tried ("load the diff")
 * @param {unknown} err
 */
export function errorBox(verb, err) {
  return h('div', { class: 'error-box', 'data-error': '' }, errorNodes(verb, err));
}

/**
 * Nodes that say what went wrong, in plain words, with the files or ids it concerns.
 * @param {string | null} verb
 * @param {unknown} err
 */
export function errorNodes(verb, err) {
  const msg = errorMessage(err);
  const text = verb ? `Could not ${verb}: ${msg}` : msg;
  const list = errorList(err);
  return [
    h('p', { class: 'err-text' }, text),
    list && h('p', { class: 'err-label' }, list.label),
    list && h('ul', { class: 'err-files' }, list.items.map((f) => h('li', null, h('code', null, f)))),
  ];
}
