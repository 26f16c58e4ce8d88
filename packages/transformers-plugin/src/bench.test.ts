import { expect, test } from 'vitest';
import { runPluginBench } from './bench.js';

test('runPluginBench (tiny, quick): swap, re-creation, forward and load rows', async () => {
  const rows = await runPluginBench({ size: 'tiny', quick: true, archs: ['distilbert'], seq: 16, methodConfigs: {
    LORETTA: { tensor_shape_a: { '32': [4, 8, 8] }, tensor_shape_b: { '32': [8, 8, 4] } },
    TRAC: { tensor_shape: { '32': [2, 4, 4] } },
  } });
  const by = (p: string) => rows.find((r) => r.bench.startsWith(p))!;
  expect(by('swap').ratio).toBeGreaterThan(10);
  expect(by('forward: plugin, branch').ratio).toBeGreaterThan(0);
  expect(rows.filter((r) => r.bench.endsWith('(folder → ready)')).length).toBe(6);
  expect(by('forward: plugin, merge mode').ratio).toBeGreaterThan(0);
  for (const r of rows) expect(Number.isFinite(r.ms) && r.ms >= 0).toBe(true);
});
