/** The assertions shared by the mixed-batch runtime tests (mixed-web.test.ts, mixed-browser.test.ts). */
import { expect } from 'vitest';
import type { MixedRunResult } from './mixed-entry.js';

/**
 * Adapter rows within 1e-5 of the same row run with only its adapter (float32 rounding of the batched, zero-padded products;
 * logits ~1) and moved by their adapter; null rows equal the base batch bit for bit; a wrong row
 * count is a MixedBatchError.
 */
export function checkMixed(r: MixedRunResult, label: string): void {
  const L = r.labels;
  let worst = 0;
  r.names.forEach((n, i) => {
    const got = r.mixed.slice(i * L, (i + 1) * L);
    const base = r.base.slice(i * L, (i + 1) * L);
    if (n === null) {
      expect(got, `${label} row ${i} (base)`).toEqual(base);
      return;
    }
    const d = Math.max(...got.map((v, j) => Math.abs(v - r.alone[i]![j]!)));
    worst = Math.max(worst, d);
    expect(Math.max(...got.map((v, j) => Math.abs(v - base[j]!))), `${label} row ${i} (${n}) changes the output`).toBeGreaterThan(1e-4);
    expect(d, `${label} row ${i} (${n}) vs its adapter alone`).toBeLessThanOrEqual(1e-5);
  });
  expect(r.error).toEqual({ name: 'MixedBatchError', code: 'MIXED_BATCH' });
  console.log(JSON.stringify({ runtime: label, rows: r.names.length, max_abs_diff_vs_alone: worst }));
}
