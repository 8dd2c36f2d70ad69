// The documents (key 5, `#/docs`, `#/docs/NAME`): the context store's documents,
// searched as you type (`/` to focus), each with its versions, metadata and relations.

import { api } from '../api/client.js';
import { h, rerender } from '../lib/dom.js';
import { debounce } from '../lib/debounce.js';
import { capText, fmtBytes, plural } from '../lib/format.js';
import { docHref, docPath, enc } from '../lib/links.js';
import { rel } from '../lib/time.js';
import { errorBox } from '../ui/errors.js';
import { empty, loading, projectName } from './shared.js';

const docPrefs = { q: '' };

/** @returns {import('../router.js').View} */
export function DocsView() {
  /** @type {HTMLInputElement} */
  let input;
  /** @type {HTMLElement} */
  let list;
  /** @type {HTMLElement} */
  let pane;
  let alive = true;
  /** @type {string | null} the document shown */
  let selected = null;
  /** @type {number | null} the version shown (null: the latest) */
  let version = null;
  let seq = 0, dseq = 0;
  /** @type {Api.DocEntry[]} */
  let results = [];

  async function search() {
    const my = ++seq;
    const q = input.value.trim();
    docPrefs.q = input.value;
    const url = q ? `/api/docs/search?q=${enc(q)}&limit=100` : '/api/docs?limit=100';
    list.setAttribute('aria-busy', 'true');
    try {
      const res = await api(url);
      if (!alive || my !== seq) return;
      /** @type {Api.DocSearch | null} */
      const found = q ? res : null;
      results = (found ? found.hits : res) || [];
      rerender(list, () => resultList(results, q, selected, found));
    } catch (err) {
      if (!alive || my !== seq) return;
      list.replaceChildren(errorBox('search the documents', err));
    } finally {
      if (my === seq) list.removeAttribute('aria-busy');
    }
  }
  const searchSoon = debounce(search, 250);

  async function showDoc() {
    const my = ++dseq;
    if (!selected) {
      pane.replaceChildren(empty('Choose a document to read it.'));
      return;
    }
    pane.replaceChildren(loading());
    try {
      const d = await api(`/api/docs/${docPath(selected)}${version ? `?version=${version}` : ''}`);
      if (!alive || my !== dseq) return;
      pane.replaceChildren(docArticle(d, version, (v) => { version = v; showDoc(); }));
    } catch (err) {
      if (!alive || my !== dseq) return;
      pane.replaceChildren(errorBox(`read ${selected}${version ? ` (version ${version})` : ''}`, err));
    }
  }

  return {
    title: 'Documents',
    mount(root, params) {
      input = h('input', { type: 'search', class: 'input wide', 'data-input': 'doc-search', placeholder: 'Search documents (press / to focus)', 'aria-label': 'Search documents', value: docPrefs.q });
      input.addEventListener('input', () => searchSoon());
      input.addEventListener('keydown', (e) => {
        if (e.key === 'Enter') { e.preventDefault(); searchSoon.cancel(); search(); }
      });
      list = h('div', { class: 'doc-results', 'aria-label': 'Search results' }, loading());
      pane = h('div', { class: 'doc-pane' });
      root.append(
        h('div', { class: 'page-head row' }, h('h1', null, 'Documents'), h('div', { class: 'toolbar grow' }, input)),
        h('div', { class: 'doc-layout' }, list, pane));
      selected = params.doc;
      search();
      showDoc();
    },
    update(params) {
      if (params.doc !== selected) {
        selected = params.doc;
        version = null;
        for (const a of list.querySelectorAll('[data-doc-name]')) {
          const on = a.getAttribute('data-doc-name') === selected;
          a.classList.toggle('selected', on);
          if (on) a.setAttribute('aria-current', 'true'); else a.removeAttribute('aria-current');
        }
        showDoc();
      }
      return true;
    },
    focusSearch() { input.focus(); input.select(); },
    onChange(change) {
      if (change.kind !== 'document') return;
      searchSoon();
      if (change.data && change.data.name === selected && !version) showDoc();
    },
    unmount() { alive = false; searchSoon.cancel(); },
  };
}

/** What a search found by, as its mark says it. */
const MATCHED = { words: 'words', meaning: 'meaning', both: 'words + meaning' };

/**
 * How a search went: its mode, and what limited it.
 * @param {Api.DocEntry[]} results
 * @param {string} q
 * @param {Api.DocSearch | null} found
 */
function searchLine(results, q, found) {
  if (!found) return `${plural(results.length, 'document')}, newest first`;
  const parts = [`${plural(results.length, 'match', 'matches')} for “${q}” (${found.mode})`];
  if (found.partial && found.pending) parts.push(`${plural(found.pending, 'document')} still being embedded`);
  if (found.note) parts.push(found.note);
  return parts.join(' · ');
}

/**
 * The documents found (or the newest), each with its version, size, age, tags,
 * what it matched by and the matching passage; the one shown marked.
 * @param {Api.DocEntry[]} results
 * @param {string} q
 * @param {string | null} selected
 * @param {Api.DocSearch | null} found
 */
function resultList(results, q, selected, found) {
  return [
    h('p', { class: 'muted small', 'data-search-state': found ? found.mode : 'list' }, searchLine(results, q, found)),
    results.length ? h('ul', { class: 'doc-list' }, results.map((e) => h('li', null,
      h('a', { href: docHref(e.name), class: `doc-item${e.name === selected ? ' selected' : ''}`, 'data-doc-name': e.name, 'data-focus-key': 'doc:' + e.name,
        'data-matched': e.matched || null, 'aria-current': e.name === selected ? 'true' : null },
      h('span', { class: 'doc-name' }, e.name),
      e.matched ? h('span', { class: `badge match-${e.matched}`, title: `found by ${MATCHED[e.matched]}` }, MATCHED[e.matched]) : null,
      h('span', { class: 'doc-meta' }, `v${e.version} · ${fmtBytes(e.size)} · `, rel(e.updated_at)),
      (e.tags || []).length ? h('span', { class: 'tags' }, e.tags.map((t) => h('span', { class: 'tag' }, t))) : null,
      e.snippet ? h('span', { class: 'snippet' }, highlight(e.snippet)) : null)))) : empty(q ? 'Nothing matches.' : 'The context store is empty.'),
  ];
}

/** A search snippet with its `[matches]` marked. @param {string} snippet */
function highlight(snippet) {
  /** @type {(string | HTMLElement)[]} */
  const out = [];
  const re = /\[([^\[\]]*)\]/g;
  let last = 0, m;
  while ((m = re.exec(snippet))) {
    if (m.index > last) out.push(snippet.slice(last, m.index));
    out.push(h('mark', null, m[1]));
    last = re.lastIndex;
  }
  if (last < snippet.length) out.push(snippet.slice(last));
  return out;
}

/**
 * A document: its version, type, size and author, tags, metadata, relations, the
 * documents that name it, its versions (a button each) and its content.
 * @param {Api.DocDetail} d
 * @param {number | null} version the version asked for (null: the latest)
 * @param {(v: number | null) => void} showVersion
 */
function docArticle(d, version, showVersion) {
  const versions = d.versions || [];
  const latest = versions.length ? versions[0].version : d.version;
  const meta = Object.entries(d.metadata || {});
  return h('article', { class: 'doc', 'data-doc': d.name },
    h('h2', null, d.name),
    h('p', { class: 'muted small' },
      `version ${d.version}${d.version !== latest ? ` (latest is ${latest})` : ''} · ${d.content_type} · ${fmtBytes(d.size)} · updated `, rel(d.updated_at),
      d.written_by ? [' by session ', h('code', null, d.written_by)] : null,
      d.project_id ? ` · project ${projectName(d.project_id)}` : null),
    (d.tags || []).length ? h('ul', { class: 'tags' }, d.tags.map((t) => h('li', { class: 'tag' }, t))) : null,
    meta.length ? h('div', { class: 'doc-section' }, h('h3', null, 'Metadata'),
      h('table', { tabindex: '0', class: 'table kv' }, h('tbody', null, meta.map(([k, v]) => h('tr', null, h('th', null, k), h('td', { class: 'mono small' }, typeof v === 'string' ? v : JSON.stringify(v))))))) : null,
    (d.relations || []).length ? h('div', { class: 'doc-section' }, h('h3', null, 'Relations'),
      h('ul', null, d.relations.map((r) => h('li', null, h('span', { class: 'muted' }, r.kind, ': '), h('a', { href: docHref(r.target) }, r.target))))) : null,
    (d.referenced_by || []).length ? h('div', { class: 'doc-section' }, h('h3', null, 'Referenced by'),
      h('ul', null, d.referenced_by.map((n) => h('li', null, h('a', { href: docHref(n) }, n))))) : null,
    versions.length > 1 ? h('div', { class: 'doc-section' }, h('h3', null, 'Versions'),
      h('ul', { class: 'versions' }, versions.map((v) => h('li', null,
        h('button', { type: 'button', class: `btn small${v.version === d.version ? ' current' : ''}`, 'aria-pressed': v.version === d.version ? 'true' : 'false',
          onclick: () => showVersion(v.version === latest ? null : v.version) }, `v${v.version}`),
        h('span', { class: 'muted small' }, ` ${fmtBytes(v.size)} · `, rel(v.updated_at), v.written_by ? ` · ${v.written_by}` : ''))))) : null,
    h('div', { class: 'doc-section' }, h('h3', null, 'Content'),
      d.content != null
        ? h('pre', { class: 'pre doc-content' }, capText(d.content))
        : h('p', { class: 'notice' }, `binary, ${d.size} bytes `,
          h('a', { href: `/api/raw/docs/${docPath(d.name)}${version ? `?version=${version}` : ''}`, download: d.name.split('/').pop() }, 'download'))));
}
