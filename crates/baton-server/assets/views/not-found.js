// The page for an address the dashboard does not have.

import { h } from '../lib/dom.js';

/** @returns {import('../router.js').View} */
export function NotFoundView() {
  return {
    title: 'Not found',
    mount(root, params) {
      root.append(h('div', { class: 'page-head' }, h('h1', null, 'Nothing here')),
        h('p', null, 'The dashboard has no page at ', h('code', null, params.path || ''), '. ', h('a', { href: '#/' }, 'Go to the overview'), '.'));
    },
  };
}
