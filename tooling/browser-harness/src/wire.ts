/**
 * Float32Arrays between Node and the page: `wire` (Node side, before page.evaluate) turns each into
 * `{$f32: number[]}`, `revive` (page side) turns them back. Exact: float32 → double → float32.
 * No Node imports here: browser entries bundle this file (through ./page).
 */

/** Float32Arrays → {$f32: number[]} for page.evaluate. */
export function wire(v: unknown): unknown {
  if (v instanceof Float32Array) return { $f32: Array.from(v) };
  if (Array.isArray(v)) return v.map(wire);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, wire(x)]));
  return v;
}

/** {$f32: number[]} → Float32Arrays, the inverse of `wire`. */
export function revive(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(revive);
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (o.$f32) return Float32Array.from(o.$f32 as number[]);
    return Object.fromEntries(Object.entries(o).map(([k, x]) => [k, revive(x)]));
  }
  return v;
}
