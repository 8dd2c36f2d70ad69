// The task page's review tab: the acceptance checks with their output, the
// reviewers' verdicts, the branch's diff against its base (with the reviewers'
// comments on each file), and the runs of the current session.

import { ApiError, api, errorMessage } from '../../api/client.js';
import { debounce } from '../../lib/debounce.js';
import { h, rerender } from '../../lib/dom.js';
import { capText, duration, fmtCost, plural, shortSha } from '../../lib/format.js';
import { enc } from '../../lib/links.js';
import { rel, since } from '../../lib/time.js';
import { errorBox } from '../../ui/errors.js';
import { LIVE, empty, loading, sectionHead } from '../shared.js';
import { ReviewDraft } from './comments.js';
import { fileComments, reviewItem } from './loops.js';

/**
 * @param {import('./view.js').TaskPage} page
 */
export function Review(page) {
  const diffBox = h('div', { class: 'review-diff' });
  const checksBox = h('div', { class: 'review-checks' });
  const runsBox = h('div', { class: 'review-runs' });
  const reviewsBox = h('section', { class: 'block', 'data-reviews': '', hidden: true });
  const draft = ReviewDraft(page, () => { diffState.loaded = false; ensureDiff(true); });
  diffBox.addEventListener('click', (e) => {
    const el = e.target instanceof Element ? e.target.closest('[data-line]') : null;
    if (el) draft.pick(diffBox, el.getAttribute('data-file'), Number(el.getAttribute('data-line')));
  });
  const panel = h('div', { class: 'panel', id: 'panel-review', role: 'tabpanel', 'aria-labelledby': 'tab-review', 'data-panel': 'review' },
    h('section', { class: 'block' }, sectionHead('Acceptance checks'), checksBox),
    reviewsBox,
    draft.element,
    h('section', { class: 'block' }, sectionHead('Changes'), diffBox),
    h('section', { class: 'block' }, sectionHead('Runs of the current session'), runsBox));
  /** @type {{loaded: boolean, head: string | null | undefined, loading: boolean, again: boolean}} */
  const diffState = { loaded: false, head: undefined, loading: false, again: false };

  /** Reads the diff (again when the branch moved or an agent is at work). @param {boolean} [force] */
  async function ensureDiff(force) {
    const t = page.task();
    if (!t) return;
    const headNow = (t.git && t.git.head) || null;
    if (!force && diffState.loaded && diffState.head === headNow && !LIVE.has(t.status)) return;
    if (diffState.loading) { diffState.again = true; return; }
    diffState.loading = true;
    if (!diffState.loaded) diffBox.replaceChildren(loading('Loading the diff…'));
    try {
      const diff = await api(`/api/tasks/${enc(t.id)}/diff`);
      if (page.alive) rerender(diffBox, () => diffView(diff, reviewsOf(page.task()), draft.fileTools, repositoriesOf(page.task())));
    } catch (err) {
      if (page.alive) diffBox.replaceChildren(diffError(err));
    } finally {
      diffState.loading = false;
      diffState.loaded = true;
      diffState.head = headNow;
      if (diffState.again && page.alive) { diffState.again = false; ensureDiff(true); }
    }
  }
  const refreshDiffSoon = debounce(() => { if (page.alive && page.tab === 'review') ensureDiff(true); else diffState.loaded = false; }, 2000, 6000);

  return {
    panel,
    ensureDiff,
    /** Draws the checks and the runs again. */
    render() {
      const t = page.task();
      if (!t) return;
      rerender(checksBox, () => checksTable(t));
      rerender(runsBox, () => runsTable((page.detail && page.detail.runs) || []));
      const reviews = reviewsOf(t);
      reviewsBox.hidden = !reviews.length;
      rerender(reviewsBox, () => [sectionHead('Reviews'), h('ol', { class: 'reviews' }, reviews.map(reviewItem))]);
    },
    /**
     * The task changed: its checks and runs are drawn again, its diff read again when its branch moved.
     * @param {Api.Task} t
     * @param {Api.Task | undefined} old
     */
    onTask(t, old) {
      this.render();
      const oh = old && old.git && old.git.head, nh = t.git && t.git.head;
      if (oh !== nh || (old && old.status !== t.status) || (old && old.git && t.git && old.git.merge !== t.git.merge)) refreshDiffSoon();
    },
    /** The branch was merged here: the diff is read again. */
    changed() {
      diffState.loaded = false;
      if (page.tab === 'review') ensureDiff();
    },
    stop() { refreshDiffSoon.cancel(); },
  };
}

/** @param {Api.Task | null} t */
const reviewsOf = (t) => (t && t.loops && t.loops.reviews) || [];

/** Why there is no diff to show: no branch yet (409), or the error. @param {unknown} err */
function diffError(err) {
  if (err instanceof ApiError && err.status === 409) {
    return h('div', { class: 'notice', 'data-diff-empty': '' },
      h('p', null, 'This task has no branch yet, so there is nothing to compare.'), h('p', { class: 'muted small' }, errorMessage(err)));
  }
  return errorBox('load the diff', err);
}

/**
 * The acceptance checks: each command, passed or failed, its exit code, time and output
 * (open when it failed); or which checks have not run yet.
 * @param {Api.Task} t
 */
function checksTable(t) {
  const checks = t.check_results || [];
  if (!checks.length) return empty((t.checks || []).length ? `Not run yet: ${t.checks.join(', ')}.` : 'This task has no acceptance checks.');
  return h('table', { tabindex: '0', class: 'table checks' },
    h('thead', null, h('tr', null, ['Check', 'Result', 'Exit code', 'Took', 'Output'].map((c) => h('th', null, c)))),
    h('tbody', null, checks.map((c, i) => h('tr', { class: c.passed ? 'pass' : 'fail', 'data-check': c.passed ? 'passed' : 'failed' },
      h('td', null, h('code', null, c.command)),
      h('td', null, h('span', { class: `badge ${c.passed ? 'st-succeeded' : 'st-failed'}` }, c.passed ? 'passed' : 'failed')),
      h('td', { class: 'num' }, c.exit_code == null ? '—' : String(c.exit_code)),
      h('td', { class: 'num' }, c.duration_ms != null ? duration(c.duration_ms) : '—'),
      h('td', null, c.output_tail
        ? h('details', { 'data-key': `check-${i}`, open: !c.passed || undefined }, h('summary', null, 'output'), h('pre', { class: 'pre' }, capText(c.output_tail)))
        : h('span', { class: 'muted' }, 'none'))))));
}

/**
 * The runs of the current session: kind, status, exit, when, how long, cost, why it ended.
 * @param {Api.Run[]} runs
 */
function runsTable(runs) {
  if (!runs.length) return empty('No runs yet.');
  return h('table', { tabindex: '0', class: 'table' },
    h('thead', null, h('tr', null, ['Run', 'Kind', 'Status', 'Exit', 'Started', 'Took', 'Cost', 'Error'].map((c) => h('th', null, c)))),
    h('tbody', null, runs.map((r) => h('tr', { 'data-run-id': r.id },
      h('td', { class: 'mono small' }, r.id),
      h('td', null, r.kind),
      h('td', null, h('span', { class: `badge run-${r.status}` }, r.status)),
      h('td', { class: 'num' }, r.exit_code == null ? (r.signal != null ? `signal ${r.signal}` : '—') : String(r.exit_code)),
      h('td', null, r.started_at ? rel(r.started_at) : '—'),
      h('td', null, r.started_at ? since(r.started_at, r.finished_at) : '—'),
      h('td', { class: 'num' }, fmtCost(r.usage && r.usage.cost_usd)),
      h('td', { class: 'small' }, r.error || r.stop_reason || '')))));
}

/**
 * A workset task's repositories (their names, each the first segment of its
 * files' paths in the diff); none for a task of one project.
 * @param {Api.Task | undefined} t
 * @returns {string[]}
 */
function repositoriesOf(t) {
  return t && t.workset ? t.workset.parts.map((p) => p.name) : [];
}

/**
 * The branch's changes: the stat, untracked files, and the patch by file (each
 * folded once the patch is long), with the reviewers' comments on each file; a
 * workset task's under a heading per repository.
 * @param {Api.Diff} diff
 * @param {Api.Review[]} reviews
 * @param {(file: string) => Node} tools what goes under each file (a comment, revert)
 * @param {string[]} repositories a workset task's repositories, in order
 */
function diffView(diff, reviews, tools, repositories) {
  const files = diff.files || [];
  const untracked = diff.untracked || [];
  const sections = splitPatch(diff.patch || '');
  const totalLines = sections.reduce((n, x) => n + x.lines.length, 0);
  /** @type {(sec: {file: string, lines: {cls: string, text: string, line?: number}[]}, i: number) => Node} */
  const fileView = (sec, i) => diffFile(sec, i, totalLines, reviews, tools);
  const body = !repositories.length ? sections.map(fileView) : repositories.map((name) => {
    const mine = sections.filter((sec) => sec.file.startsWith(name + '/'));
    return h('section', { class: 'diff-repo', 'data-repository': name, 'aria-label': `Changes in ${name}` },
      h('h3', null, name, h('span', { class: 'muted small' }, ` · ${plural(mine.length, 'file')}`)),
      mine.length ? mine.map(fileView) : h('p', { class: 'muted small' }, 'No changes here.'));
  });
  return [
    h('p', { class: 'muted small' }, 'Branch ', h('code', null, diff.branch), ' against ', h('code', { title: diff.base }, shortSha(diff.base)),
      ` · ${plural(files.length, 'file')} changed`, repositories.length ? ` in ${plural(repositories.length, 'repository', 'repositories')}` : ''),
    diff.stat ? h('pre', { class: 'pre stat' }, diff.stat) : null,
    untracked.length ? h('div', { class: 'notice small' }, h('strong', null, 'Untracked (not in the patch): '),
      untracked.map((f, i) => [i ? ', ' : '', h('code', null, f)])) : null,
    sections.length ? h('div', { class: 'diff' }, body) : empty('The patch is empty: no committed or uncommitted changes against the base.'),
  ];
}

/**
 * One file of a patch, folded once the patch is long, with its comments and tools.
 * @param {{file: string, lines: {cls: string, text: string, line?: number}[]}} sec
 * @param {number} i
 * @param {number} totalLines
 * @param {Api.Review[]} reviews
 * @param {(file: string) => Node} tools
 */
function diffFile(sec, i, totalLines, reviews, tools) {
  let adds = 0, dels = 0;
  for (const l of sec.lines) {
    if (l.cls === 'd-add') adds++;
    else if (l.cls === 'd-del') dels++;
  }
  return h('details', { class: 'diff-file', 'data-key': `diff:${sec.file}`, open: totalLines < 6000 || i < 5 || undefined },
    h('summary', null, h('code', null, sec.file), ' ', h('span', { class: 'plus' }, `+${adds}`), ' ', h('span', { class: 'minus' }, `−${dels}`)),
    fileComments(reviews, sec.file),
    h('pre', { class: 'diff-body', tabindex: 0 }, sec.lines.map((l) => h('span', {
      class: `dl ${l.cls}`, 'data-line': l.line || null, 'data-file': l.line ? sec.file : null, title: l.line ? `line ${l.line}: click to comment` : null,
    }, l.text + '\n'))),
    tools(sec.file));
}

/**
 * A patch cut into files, each line with its class (added, removed, hunk, header).
 * @param {string} patch
 * @returns {{file: string, lines: {cls: string, text: string, line?: number}[]}[]}
 */
function splitPatch(patch) {
  const out = [];
  /** @type {{file: string, lines: {cls: string, text: string, line?: number}[]} | null} */
  let sec = null;
  let inHeader = false;
  let next = 0;
  const MAX = 40000;
  let count = 0;
  for (const line of patch.split('\n')) {
    if (line.startsWith('diff --git ')) {
      const m = /^diff --git a\/(.*) b\/(.*)$/.exec(line);
      sec = { file: m ? m[2] : line.slice(11), lines: [] };
      out.push(sec);
      inHeader = true;
    }
    if (!sec) { sec = { file: '(patch)', lines: [] }; out.push(sec); }
    if (count++ > MAX) {
      if (count === MAX + 2) sec.lines.push({ cls: 'd-meta', text: '… (the rest of the patch is too long to show here; use `baton diff`)' });
      continue;
    }
    let cls = 'd-ctx';
    /** @type {number | undefined} the line's number in the new file */
    let at;
    if (line.startsWith('@@')) {
      cls = 'd-hunk';
      inHeader = false;
      const m = /\+(\d+)/.exec(line);
      next = m ? Number(m[1]) : 0;
    }
    else if (inHeader) {
      cls = 'd-meta';
      const m = /^\+\+\+ b\/(.*)$/.exec(line);
      if (m) sec.file = m[1];
    } else if (line.startsWith('+')) { cls = 'd-add'; at = next++; }
    else if (line.startsWith('-')) cls = 'd-del';
    else if (line.startsWith('\\')) cls = 'd-meta';
    else if (next) at = next++;
    sec.lines.push({ cls, text: line, line: at });
  }
  for (const x of out) while (x.lines.length && x.lines[x.lines.length - 1].text === '') x.lines.pop();
  return out.filter((x) => x.lines.length);
}
