import { expect, test } from 'vitest';
import { runStepBench } from './bench-step.js';

// Timing values are not asserted (speed targets live in benchmarks); the rows' structure is: one
// base and one plugin row per (arch, dtype), the plugin row's ratio its paired ratio to the base.
test('runStepBench (tiny, quick): a base and a plugin row per arch × dtype, ratio = paired plugin ÷ base', async () => {
  const rows = await runStepBench({ size: 'tiny', archs: ['llama'], dtypes: ['fp32', 'q4f16'], tokens: 3, rounds: 1 });
  expect(rows.map((r) => [r.bench, r.shape.split(',')[0]])).toEqual([
    ['decode step (base)', 'llama-tiny fp32'],
    ['decode step (plugin + adapter)', 'llama-tiny fp32'],
    ['decode step (base)', 'llama-tiny q4f16'],
    ['decode step (plugin + adapter)', 'llama-tiny q4f16'],
  ]);
  for (let i = 0; i < rows.length; i += 2) {
    expect(rows[i]!.ms).toBeGreaterThan(0);
    // One round: the ratio is exactly that round's plugin ÷ base.
    expect(rows[i + 1]!.ratio).toBeCloseTo(rows[i + 1]!.ms / rows[i]!.ms, 10);
  }
});
