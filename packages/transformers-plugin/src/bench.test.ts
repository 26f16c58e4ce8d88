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
  // Issue 16's serving rows: load ratios, rewrite vs bytes at 4 sizes, per-run overhead, ORT profile.
  for (const p of ['load: plugin, first load (', 'load: plugin, first load into an empty rewrite_cache', 'load: plugin, cached rewrite', 'generate: plugin, no adapter (', 'generate: plugin, one LoRA', 'generate: plugin, no adapter, base_session', 'ORT profile: model_run per token, plugin + one LoRA']) expect(by(p).ratio).toBeGreaterThan(0);
  const sizes = rows.filter((r) => r.bench.startsWith('rewrite alone: spliced (')).map((r) => r.bytes!);
  expect(sizes.length).toBe(4);
  expect([...sizes].sort((a, b) => a - b)).toEqual(sizes);
  expect(sizes[3]!).toBeGreaterThan(16 * 2 ** 20);
  // Each size also has the joined and the full-path row (the full path only up to 64 MB).
  expect(rows.filter((r) => r.bench.startsWith('rewrite alone: spliced + joined')).map((r) => r.bytes)).toEqual(sizes);
  expect(rows.filter((r) => r.bench.startsWith('rewrite alone: full decode')).map((r) => r.bytes)).toEqual(sizes);
  expect(by('plugin wrapper per session run').ratio).toBeLessThan(1);
  // fp16 decode step with fp16 vs fp32 side branches (bench-branch-dtype.ts): GPT-2 and LLaMA tiny.
  expect(rows.filter((r) => r.bench.startsWith('decode step fp16 on CPU: fp32 side branches')).length).toBe(2);
  for (const r of rows) expect(Number.isFinite(r.ms) && r.ms >= 0).toBe(true);
});
