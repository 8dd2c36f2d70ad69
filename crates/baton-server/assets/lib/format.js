// Plain values made readable: times, durations, money, tokens, bytes, text.

/**
 * An instant in milliseconds since the epoch, from an RFC 3339 string or a number.
 * @param {string | number | null | undefined} ts
 * @returns {number | null}
 */
export function ms(ts) {
  if (ts == null) return null;
  const n = typeof ts === 'number' ? ts : Date.parse(ts);
  return Number.isFinite(n) ? n : null;
}

/**
 * "3 min ago", "in 2 h", "just now"; a date after a month.
 * @param {string | number | null | undefined} ts
 */
export function relTime(ts) {
  const t = ms(ts);
  if (t == null) return '—';
  const d = (Date.now() - t) / 1000;
  if (d < -5) return 'in ' + duration(-d * 1000);
  if (d < 10) return 'just now';
  if (d < 60) return `${Math.floor(d)} s ago`;
  if (d < 3600) return `${Math.floor(d / 60)} min ago`;
  if (d < 86400) return `${Math.floor(d / 3600)} h ago`;
  if (d < 86400 * 30) return `${Math.floor(d / 86400)} d ago`;
  return new Date(t).toLocaleDateString();
}

/**
 * "42s", "3m 5s", "2h 10m", "1d 3h".
 * @param {number | null | undefined} msec
 */
export function duration(msec) {
  if (msec == null || !Number.isFinite(msec)) return '—';
  let sec = Math.max(0, Math.floor(msec / 1000));
  if (sec < 60) return `${sec}s`;
  const d = Math.floor(sec / 86400); sec -= d * 86400;
  const hr = Math.floor(sec / 3600); sec -= hr * 3600;
  const m = Math.floor(sec / 60); sec -= m * 60;
  if (d) return `${d}d ${hr}h`;
  if (hr) return `${hr}h ${m}m`;
  return `${m}m ${sec}s`;
}

/**
 * The local time of day, "14:03:07".
 * @param {string | number | null | undefined} ts
 */
export function clock(ts) {
  const t = ms(ts);
  if (t == null) return '';
  const d = new Date(t);
  const p = (/** @type {number} */ n) => String(n).padStart(2, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

/**
 * US dollars: four decimals under a dollar, two above.
 * @param {number | null | undefined} n
 */
export function fmtCost(n) {
  if (n == null || !Number.isFinite(Number(n))) return '—';
  const v = Number(n);
  return '$' + (Math.abs(v) < 1 ? v.toFixed(4) : v.toFixed(2));
}

/**
 * A token count: "950", "12k", "1.25M".
 * @param {number | null | undefined} n
 */
export function fmtTokens(n) {
  n = Number(n) || 0;
  if (n < 1000) return String(n);
  if (n < 1e6) return (n / 1e3).toFixed(n < 1e4 ? 1 : 0) + 'k';
  return (n / 1e6).toFixed(n < 1e7 ? 2 : 1) + 'M';
}

/**
 * A size: bytes, KiB, MiB, GiB.
 * @param {number | null | undefined} n
 */
export function fmtBytes(n) {
  n = Number(n) || 0;
  if (n < 1024) return `${n} bytes`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

/** A commit's first 7 characters. @param {string | null | undefined} sha */
export const shortSha = (sha) => (sha ? String(sha).slice(0, 7) : '');
/** "1 task", "3 tasks". @param {number} n @param {string} one @param {string} [many] */
export const plural = (n, one, many = one + 's') => `${n} ${n === 1 ? one : many}`;

/**
 * At most `n` characters, with an ellipsis when cut.
 * @param {unknown} text
 * @param {number} n
 */
export function truncate(text, n) {
  const t = String(text ?? '');
  return t.length > n ? t.slice(0, n - 1) + '…' : t;
}

/**
 * Any value (JSON for objects) on one line of at most `n` characters.
 * @param {unknown} v
 * @param {number} [n]
 */
export function oneLine(v, n = 140) {
  let t;
  if (v == null) t = '';
  else if (typeof v === 'string') t = v;
  else { try { t = JSON.stringify(v); } catch { t = String(v); } }
  return truncate(t.replace(/\s+/g, ' ').trim(), n);
}

/**
 * A tool output (string, content blocks or any JSON) as readable text.
 * @param {any} v
 * @returns {string}
 */
export function textOf(v) {
  if (v == null) return '';
  if (typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((b) => b && typeof b === 'object' && typeof b.text === 'string')) {
    return v.map((b) => b.text).join('\n');
  }
  if (typeof v === 'object' && typeof v.content === 'string' && Object.keys(v).length <= 3) return v.content;
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

/**
 * A string as it is; anything else as indented JSON.
 * @param {unknown} v
 */
export function pretty(v) {
  if (typeof v === 'string') return v;
  try { return JSON.stringify(v, null, 2); } catch { return String(v); }
}

const MAX_TEXT = 200000;
/**
 * Text cut at 200,000 characters, saying how much more there was (the page stays fast).
 * @param {unknown} t
 */
export function capText(t) {
  const text = String(t ?? '');
  return text.length > MAX_TEXT ? text.slice(0, MAX_TEXT) + `\n… (${text.length - MAX_TEXT} more characters)` : text;
}
