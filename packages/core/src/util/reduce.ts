/**
 * Reductions over lists that may be as long as an untrusted file makes them: `Math.max(...xs)`
 * passes every element as an argument and throws RangeError past the engine's argument limit
 * (~10⁵ in V8), so these loop instead.
 */

/** Largest of `xs` (−Infinity when empty). */
export function maxOf(xs: Iterable<number>): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  return m;
}

/** Smallest of `xs` (+Infinity when empty). */
export function minOf(xs: Iterable<number>): number {
  let m = Infinity;
  for (const x of xs) if (x < m) m = x;
  return m;
}
