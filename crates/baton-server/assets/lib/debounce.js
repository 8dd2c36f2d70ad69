// Calling later, once.

/** Calls `fn` once calls stop for `wait` ms — or, under a steady flood of calls, at
 * least every `maxWait` ms, so a busy stream never starves it. `cancel()` drops a pending call.
 * @template {(...args: any[]) => any} F
 * @param {F} fn
 * @param {number} wait
 * @param {number} [maxWait]
 * @returns {((...args: Parameters<F>) => void) & {cancel: () => void}}
 */
export function debounce(fn, wait, maxWait = Infinity) {
  /** @type {ReturnType<typeof setTimeout> | null} */
  let timer = null;
  let first = 0;
  const d = (/** @type {any[]} */ ...args) => {
    const now = Date.now();
    if (!first) first = now;
    clearTimeout(timer);
    const delay = Math.min(wait, Math.max(0, first + maxWait - now));
    timer = setTimeout(() => { timer = null; first = 0; fn(...args); }, delay);
  };
  d.cancel = () => { clearTimeout(timer); timer = null; first = 0; };
  return d;
}
