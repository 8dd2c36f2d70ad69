// The coordinator's API: one call, its JSON answer or an ApiError with the
// error's stable code and message.

/** An answer that is not a success: its HTTP status, stable code, message and details. */
export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   * @param {any} [details]
   */
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

/**
 * Calls the coordinator's API; the parsed JSON answer, or an ApiError. With
 * `key`, the request carries it as its `Idempotency-Key`: sent again with the
 * same key (a retry, a second click), it changes nothing more. With `raw`, the
 * body is sent as it is, with `type` as its content type.
 * @param {string} path
 * @param {{method?: string, body?: unknown, key?: string, raw?: string, type?: string}} [options]
 * @returns {Promise<any>}
 */
export async function api(path, { method = 'GET', body, key, raw, type } = {}) {
  /** @type {RequestInit & {headers: Record<string, string>}} */
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json' } };
  if (method !== 'GET' && method !== 'HEAD') {
    init.headers['content-type'] = type || 'application/json';
    init.body = raw != null ? raw : JSON.stringify(body ?? {});
  }
  if (key) init.headers['idempotency-key'] = key;
  let res;
  try {
    res = await fetch(path, init);
  } catch (e) {
    throw new ApiError(0, 'network', 'Baton could not be reached (is `baton up` still running?)');
  }
  if (res.status === 401) {
    for (const f of unauthorized) f();
    throw new ApiError(401, 'unauthorized', 'Not logged in.');
  }
  if (res.status === 204) return null;
  const text = await res.text();
  let json = null;
  if (text) {
    try { json = JSON.parse(text); } catch { json = null; }
  }
  if (!res.ok) {
    const e = json && typeof json === 'object' ? json.error : null;
    const message = (e && e.message) || `the server answered ${res.status} ${res.statusText}`.trim();
    throw new ApiError(res.status, (e && e.code) || `http_${res.status}`, message, e ? e.details : undefined);
  }
  return json;
}

/**
 * A page of a list: its items, and the key of the next page (`null` at the end).
 * @param {string} path
 * @returns {Promise<{items: any[], next: string | null}>}
 */
export async function apiPage(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (res.status === 401) {
    for (const f of unauthorized) f();
    throw new ApiError(401, 'unauthorized', 'Not logged in.');
  }
  if (!res.ok) return { items: await api(path), next: null };
  return { items: await res.json(), next: res.headers.get('baton-next-before') };
}

/** A fresh idempotency key: one per thing a person submits. */
export function newKey() {
  return crypto.randomUUID ? crypto.randomUUID() : `k-${Date.now()}-${Math.random().toString(16).slice(2)}`;
}

/** @type {(() => void)[]} */
const unauthorized = [];
/**
 * Calls `f` when an answer says the browser is not logged in (any call, any time).
 * @param {() => void} f
 */
export function onUnauthorized(f) {
  unauthorized.push(f);
}

/** Whether an error is the browser not being logged in (shown once, by the page). @param {unknown} err */
export function isUnauthorized(err) {
  return err instanceof ApiError && err.status === 401;
}

/** What went wrong, in one line. @param {any} err */
export function errorMessage(err) {
  if (err instanceof ApiError) return err.message;
  if (err && err.message) return err.message;
  return String(err);
}

/**
 * The particulars of an error worth listing (conflicting files, candidates, a cycle).
 * @param {any} err
 * @returns {{label: string, items: string[]} | null}
 */
export function errorList(err) {
  const d = err && err.details;
  if (!d || typeof d !== 'object') return null;
  const pick = (/** @type {unknown} */ arr, /** @type {string} */ label) => (Array.isArray(arr) && arr.length ? { label, items: arr.map(String) } : null);
  return pick(d.files, err.code === 'merge_conflict' ? 'Conflicting files:' : 'Files:')
    || pick(d.candidates, 'It matches more than one:')
    || pick(d.cycle, 'The dependency cycle:')
    || pick(d.uncommitted, 'Uncommitted files:')
    || pick(d.unmerged_commits, 'Unmerged commits:');
}

