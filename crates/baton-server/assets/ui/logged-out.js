// The page shown once the coordinator says this browser is not logged in.

import { h } from '../lib/dom.js';

/** Replaces the page with how to log in again. */
export function showLoggedOut() {
  document.body.replaceChildren(
    h('div', { class: 'logged-out', 'data-logged-out': '', role: 'alert' },
      h('p', { class: 'brand' }, h('span', { class: 'brand-mark', 'aria-hidden': 'true' }, '◆'), ' Baton'),
      h('p', { class: 'logged-out-msg' }, 'Not logged in. Run ', h('code', null, '`baton dashboard`'), ' in the repository for a login link.'),
      h('p', { class: 'muted small' }, 'The link logs this browser in once; then reload this page.')));
}
