// Building the page: elements from plain values (text never parsed as HTML), and
// re-rendering a part of the page without losing the reader's focus or open details.

/**
 * Creates an element. Attributes that are null or false are left out, `on…`
 * functions become listeners; children that are not nodes become text nodes, and
 * null, false and '' are skipped (arrays are flattened).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

// The SVG namespace, spelled so that the asset contains no absolute URL (it loads nothing from elsewhere).
const SVG_NS = ['http:', '', 'www.w3.org', '2000', 'svg'].join('/');
/**
 * Creates an SVG element, as `h` does.
 * @param {string} tag
 * @param {Record<string, any> | null} [attrs]
 * @param {...any} children
 * @returns {SVGElement}
 */
export function s(tag, attrs, ...children) {
  const el = /** @type {SVGElement} */ (document.createElementNS(SVG_NS, tag));
  setAttrs(el, attrs);
  add(el, children);
  return el;
}

/**
 * @param {HTMLElement | SVGElement} el
 * @param {Record<string, any> | null | undefined} attrs
 */
export function setAttrs(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'style') el.style.cssText = v; // through the CSSOM: allowed by the page's CSP
    else if (k === 'value') /** @type {HTMLInputElement} */ (el).value = v;
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
}

/**
 * @param {Element} el
 * @param {any[]} children
 */
export function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false || c === '') continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** Sets an element's text, when it differs (no needless layout). @param {Element} el @param {string} text */
export function setText(el, text) {
  if (el.textContent !== text) el.textContent = text;
}

/**
 * Re-renders `root` with `build()`, keeping the focus (by `data-focus-key`) and
 * which `<details data-key>` are open.
 * @param {Element} root
 * @param {() => any} build
 */
export function rerender(root, build) {
  const active = document.activeElement;
  const focusEl = active && root.contains(active) ? active.closest('[data-focus-key]') : null;
  const focusKey = focusEl && focusEl.getAttribute('data-focus-key');
  /** @type {HTMLDetailsElement[]} */
  const details = /** @type {any} */ ([...root.querySelectorAll('details[data-key]')]);
  const open = new Set(details.map((d) => `${d.getAttribute('data-key')}|${d.open ? 1 : 0}`));
  root.replaceChildren(...[build()].flat(Infinity).filter(Boolean));
  for (const d of /** @type {NodeListOf<HTMLDetailsElement>} */ (root.querySelectorAll('details[data-key]'))) {
    const k = d.getAttribute('data-key');
    if (open.has(`${k}|1`)) d.open = true;
    else if (open.has(`${k}|0`)) d.open = false;
  }
  if (focusKey) {
    const el = /** @type {HTMLElement | null} */ (root.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`));
    if (el) el.focus({ preventScroll: true });
  }
}
