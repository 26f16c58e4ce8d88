import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAdapter, listMethods } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { verify } from './verify.js';

// Tensor factorizations for the tiny model's 32-wide modules (the defaults cover published sizes).
const TINY_CONFIG: Record<string, Record<string, unknown>> = {
  LORETTA: { tensor_shape_a: { '32': [4, 8, 8] }, tensor_shape_b: { '32': [8, 8, 4] } },
  TRAC: { tensor_shape: { '32': [2, 4, 4] } },
};

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-verify-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verify on tiny BERT (sequence classification)', () => {
  const methods = listMethods().map((m) => m.peftType);
  test('six methods are registered', () => {
    expect(methods.length).toBe(6);
  });
  for (const method of listMethods().map((m) => m.peftType)) {
    test(`${method}: plugin = offline merge within 1e-4, disabled = base exactly (fp32 and q8)`, async () => {
      const model = path.join(dir, `bert-${method}`);
      const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 1 }, model);
      const adapter = createAdapter({ method, shape: m.shape, nonzero: true, seed: 7, config: TINY_CONFIG[method] ?? {} });
      const r = await verify({ model, adapter });
      expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
      expect(r.base_max_abs_diff).toBe(0);
      expect(r.adapter_effect).toBeGreaterThan(1e-4);
      expect(r.modules).toBe(adapter.plan.modules.length);
      const q = await verify({ model, adapter, dtype: 'q8' });
      expect(q.base_max_abs_diff).toBe(0);
      console.log(JSON.stringify({ method, fp32: r, q8: { max_abs_diff_vs_fp32_merge: q.max_abs_diff, base_max_abs_diff: q.base_max_abs_diff } }));
    });
  }
});
