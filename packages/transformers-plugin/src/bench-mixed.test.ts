import { expect, test } from 'vitest';
import { runMixedBench } from './bench-mixed.js';

test('runMixedBench (tiny, quick): forward and generate rows with throughput ratios of the mixed batch to one adapter', async () => {
  const rows = await runMixedBench({ size: 'tiny', quick: true, seq: 16 });
  for (const what of ['forward', 'generate']) {
    const r = rows.filter((x) => x.bench.startsWith(`mixed batches, ${what}`));
    expect(r.map((x) => x.bench.split(': ')[1])).toEqual(['one adapter for the batch (branch rewrite)', 'mixed-batch rewrite, one adapter', 'mixed batch, 8 rows × 4 adapters']);
    for (const x of r.slice(1)) expect(x.ratio!).toBeGreaterThan(0);
  }
  for (const r of rows) expect(Number.isFinite(r.ms) && r.ms > 0).toBe(true);
}, 120_000);
