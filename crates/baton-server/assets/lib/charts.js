// Bar charts drawn with the page's own SVG (no chart library): hourly buckets and
// a stacked bar per bucket.

import { h, s } from './dom.js';

/**
 * Hourly buckets of the last `hours` hours, oldest first, each with its series' sums.
 * @param {number} hours
 * @returns {{start: number, label: string, parts: Map<string, number>}[]}
 */
export function hourBuckets(hours) {
  const now = Date.now();
  const first = Math.floor(now / 3600e3) * 3600e3 - (hours - 1) * 3600e3;
  return Array.from({ length: hours }, (_, i) => {
    const start = first + i * 3600e3;
    return { start, label: new Date(start).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), parts: new Map() };
  });
}

/**
 * Adds `value` to `series` in the bucket holding the instant `at` (ms), if any.
 * @param {{start: number, parts: Map<string, number>}[]} buckets
 * @param {number | null} at
 * @param {string} series
 * @param {number} value
 */
export function addAt(buckets, at, series, value) {
  if (at == null || !buckets.length) return;
  const i = Math.floor((at - buckets[0].start) / 3600e3);
  if (i < 0 || i >= buckets.length) return;
  buckets[i].parts.set(series, (buckets[i].parts.get(series) || 0) + value);
}

/**
 * A bar chart drawn with the page's own SVG: a bar per bucket, stacked by series,
 * each part with its value on hover, and a legend when there are several series.
 * @param {string} label what it shows, for the caption and screen readers
 * @param {{label: string, parts: Map<string, number>}[]} buckets
 * @param {(n: number) => string} format
 * @param {(series: string, index: number) => string} [colorOf] a class giving a series its color
 */
export function barChart(label, buckets, format, colorOf = (_, i) => `series-${i % 6}`) {
  const W = 600, H = 150, left = 60, bottom = 18, top = 6;
  const series = [...new Set(buckets.flatMap((b) => [...b.parts.keys()]))].sort();
  const totals = buckets.map((b) => [...b.parts.values()].reduce((a, v) => a + v, 0));
  const max = Math.max(0, ...totals);
  const scale = max ? (H - bottom - top) / max : 0;
  const bw = (W - left) / Math.max(1, buckets.length);
  const bars = buckets.map((b, i) => {
    let y = H - bottom;
    return series.filter((k) => b.parts.get(k)).map((k) => {
      const v = b.parts.get(k);
      const height = Math.max(1, v * scale);
      y -= height;
      return s('rect', { x: (left + i * bw + 1).toFixed(1), y: y.toFixed(1), width: Math.max(1, bw - 2).toFixed(1), height: height.toFixed(1), class: `series ${colorOf(k, series.indexOf(k))}` },
        s('title', null, `${b.label} · ${k}: ${format(v)}`));
    });
  });
  const sum = totals.reduce((a, v) => a + v, 0);
  return h('figure', { class: 'chart', 'data-chart': label },
    s('svg', { viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': `${label}: ${format(sum)} in all, at most ${format(max)} in an hour` },
      s('line', { x1: left, y1: H - bottom, x2: W, y2: H - bottom, class: 'axis' }),
      s('text', { x: left - 4, y: top + 8, class: 'tick', 'text-anchor': 'end' }, format(max)),
      s('text', { x: left - 4, y: H - bottom, class: 'tick', 'text-anchor': 'end' }, format(0)),
      buckets.length ? s('text', { x: left, y: H - 4, class: 'tick' }, buckets[0].label) : null,
      buckets.length ? s('text', { x: W, y: H - 4, class: 'tick', 'text-anchor': 'end' }, buckets[buckets.length - 1].label) : null,
      bars),
    h('figcaption', null, label,
      series.length > 1 ? h('span', { class: 'legend' }, series.map((k, i) => h('span', { class: 'legend-item' }, h('span', { class: `swatch ${colorOf(k, i)}`, 'aria-hidden': 'true' }), k))) : null));
}
