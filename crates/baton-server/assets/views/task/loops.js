// A task's feedback loops: its pull request, its fix attempts (checks, conflicts,
// CI and PR reviews), and its reviewers' verdicts with their comments — in the
// task's header, and beside the diff in the review tab.

import { h } from '../../lib/dom.js';
import { taskHref } from '../../lib/links.js';
import { rel } from '../../lib/time.js';

/**
 * A task's feedback loops: its pull request, its fix attempts, its reviews with their comments.
 * @param {Api.Task} t
 */
export function loopsBox(t) {
  const l = t.loops || {};
  const reviews = l.reviews || [];
  /** @type {[string, number][]} */
  const attempts = [['checks', l.check_fixes], ['conflicts', l.conflict_fixes], ['CI and PR reviews', l.forge_fixes]];
  const fixes = attempts.filter(([, n]) => n > 0);
  if (!t.pr && !reviews.length && !fixes.length) return null;
  const pr = t.pr;
  const prLink = pr && /^https?:\/\//.test(pr.url) ? h('a', { href: pr.url, rel: 'noopener noreferrer', target: '_blank' }, `#${pr.number}`) : pr ? `#${pr.number}` : null;
  return h('div', { class: 'rel', 'data-loops': '' },
    h('h3', null, 'Feedback loops'),
    pr ? h('p', { 'data-pr': pr.state }, 'Pull request ', prLink, ' ', h('span', { class: `tag ${pr.state === 'merged' ? 'ok' : ''}` }, pr.state),
      pr.last_feedback ? h('span', { class: 'muted small' }, ` · last: ${pr.last_feedback}`) : null) : null,
    fixes.length ? h('p', { 'data-fixes': '' }, 'Fix attempts: ', fixes.map(([what, n], i) => [i ? ' · ' : '', `${what} ${n} of ${l.fix_attempts}`])) : null,
    reviews.length ? h('ol', { class: 'reviews' }, reviews.map(reviewItem)) : null);
}

/**
 * A review: its verdict, the reviewer (a link to its task), when, and its comments.
 * @param {Api.Review} r
 */
export function reviewItem(r) {
  const person = !r.task_id;
  const verdict = r.verdict ? r.verdict.replace('_', ' ') : r.error ? 'failed' : person ? 'comments' : 'in progress';
  const cls = r.verdict === 'approve' ? 'st-succeeded' : (r.verdict || r.error) ? 'st-failed' : 'st-reviewing';
  return h('li', { 'data-verdict': r.verdict || (r.error ? 'failed' : 'pending') },
    h('span', { class: `badge ${cls}` }, verdict), ' by ', person ? h('strong', null, 'a person') : h('a', { href: taskHref(r.task_id) }, r.reviewer), ' ',
    h('span', { class: 'muted small' }, rel(r.at)),
    r.error ? h('div', { class: 'warn-text small' }, r.error) : null,
    (r.comments || []).length ? h('ul', null, r.comments.map((c) => h('li', null,
      c.file ? h('code', null, c.line ? `${c.file}:${c.line}` : c.file) : null, c.file ? ' — ' : null, c.body))) : null);
}

/**
 * The reviewers' comments on one file, by line, for the diff.
 * @param {Api.Review[]} reviews
 * @param {string} file
 */
export function fileComments(reviews, file) {
  const here = reviews.flatMap((r) => (r.comments || []).filter((c) => c.file === file).map((c) => ({ ...c, reviewer: r.reviewer, verdict: r.verdict })));
  if (!here.length) return null;
  here.sort((a, b) => (a.line || 0) - (b.line || 0));
  return h('ul', { class: 'file-comments', 'data-file-comments': file }, here.map((c) => h('li', null,
    h('strong', null, c.reviewer), c.line ? h('code', { class: 'muted' }, ` line ${c.line}`) : null, ': ', c.body)));
}
