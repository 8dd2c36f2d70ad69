// `@` in a prompt completes file paths: the project's files at the chosen base
// branch whose path contains what follows the `@`, in a list under the box;
// ↑ ↓ choose, Enter or Tab takes one, Escape closes the list.

import { api } from '../api/client.js';
import { debounce } from '../lib/debounce.js';
import { h } from '../lib/dom.js';
import { enc } from '../lib/links.js';

/**
 * Completes `@path` in `box`, asking `where()` for the project and branch.
 * @param {HTMLTextAreaElement} box
 * @param {() => {project: string, base: string}} where
 */
export function Completer(box, where) {
  const list = h('ul', { class: 'completions', role: 'listbox', id: `completions-${Math.random().toString(36).slice(2, 7)}`, hidden: true });
  box.setAttribute('aria-autocomplete', 'list');
  box.setAttribute('aria-controls', list.id);
  /** @type {string[]} */
  let items = [];
  let active = 0;
  /** @type {{start: number, end: number} | null} */
  let span = null;

  /** The `@word` the caret is in, if any. */
  function wordAtCaret() {
    const end = box.selectionStart;
    const before = box.value.slice(0, end);
    const m = /(^|\s)@([^\s@]*)$/.exec(before);
    return m ? { start: end - m[2].length - 1, end, text: m[2] } : null;
  }

  const look = debounce(async () => {
    const w = wordAtCaret();
    if (!w) return close();
    const { project, base } = where();
    try {
      const q = `q=${enc(w.text)}&limit=8${base ? `&ref=${enc(base)}` : ''}`;
      items = await api(`/api/projects/${enc(project)}/files?${q}`);
    } catch {
      items = [];
    }
    span = { start: w.start, end: w.end };
    active = 0;
    draw();
  }, 120, 400);

  function draw() {
    list.hidden = !items.length;
    list.replaceChildren(...items.map((path, i) => h('li', {
      role: 'option', id: `${list.id}-${i}`, 'aria-selected': i === active ? 'true' : 'false', class: i === active ? 'active' : null,
      onmousedown: (/** @type {MouseEvent} */ e) => { e.preventDefault(); take(i); },
    }, path)));
    if (items.length) box.setAttribute('aria-activedescendant', `${list.id}-${active}`);
    else box.removeAttribute('aria-activedescendant');
  }

  function close() {
    items = [];
    span = null;
    draw();
  }

  /** Puts item `i` in place of the `@word`. @param {number} i */
  function take(i) {
    if (!span || !items[i]) return;
    const text = `@${items[i]} `;
    box.value = box.value.slice(0, span.start) + text + box.value.slice(span.end);
    const caret = span.start + text.length;
    box.setSelectionRange(caret, caret);
    close();
    box.focus();
  }

  box.addEventListener('input', () => look());
  box.addEventListener('blur', () => setTimeout(close, 150));
  box.addEventListener('keydown', (e) => {
    if (list.hidden) return;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      e.preventDefault();
      active = (active + (e.key === 'ArrowDown' ? 1 : items.length - 1)) % items.length;
      draw();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      e.preventDefault();
      take(active);
    } else if (e.key === 'Escape') {
      e.preventDefault();
      e.stopPropagation();
      close();
    }
  });
  return { element: list };
}
