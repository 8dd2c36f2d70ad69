// Building the page: elements from plain values (text never parsed as HTML), and
// re-rendering a part of the page without losing the reader's focus or open details.

/** Creates an element. Children that are not nodes become text nodes. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

// The SVG namespace, spelled so that the asset contains no absolute URL (it loads nothing from elsewhere).
const SVG_NS = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');
/** Creates an SVG element. */
export function s(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

export function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'style') el.style.cssText = v; // through the CSSOM: allowed by the page's CSP
    else if (k === 'value') el.value = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

export function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === '') continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/** Re-renders `root` with `build()`, keeping focus and open <details>. */
export function rerender(root, build) {
  const active = document.activeElement;
  const focusEl = active && root.contains(active) ? active.closest('[data-focus-key]') : null;
  const focusKey = focusEl && focusEl.getAttribute('data-focus-key');
  const open = new Set([...root.querySelectorAll('details[data-key]')].map((d) => `${d.getAttribute('data-key')}|${d.open ? 1 : 0}`));
  root.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const d of root.querySelectorAll('details[data-key]')) {
    const k = d.getAttribute('data-key');
    if (open.has(`${k}|1`)) d.open = true;
    else if (open.has(`${k}|0`)) d.open = false;
  }
  if (focusKey) {
    const el = root.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (el) el.focus({ preventScroll: true });
  }
}
