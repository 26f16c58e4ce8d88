/**
 * verify on a quantized model with an adapter that replaces heads (`modules_to_save`): the dtype's
 * error is measured with the adapter's heads on both sides (tolerance.ts). Found on the real
 * DistilBERT emotion adapter on base-size q8/q4 models: measured through the base model's heads,
 * the tolerance was 5.7–12.5× too small for a correct plugin.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { verify } from './verify.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-verify-heads-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('q8 with a replaced head: dtype_error is measured through the adapter head, and the plugin passes', async () => {
  const model = path.join(dir, 'bert');
  const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 3 }, model);
  const lora = (): Adapter => createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 5, config: { modules_to_save: ['classifier'] } });
  // A head 40× larger than the generated one (weights ~0.02): it amplifies the q8 error of the pooled
  // features by about that much, which the base model's head does not.
  const withHead = lora();
  withHead.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: new Float32Array(96).map((_, i) => Math.cos(i)) });
  withHead.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.1, -0.2, 0.3]) });
  const plain = lora();

  const h = await verify({ model, adapter: withHead, dtype: 'q8' });
  const p = await verify({ model, adapter: plain, dtype: 'q8' });
  expect(h.modules_to_save.length).toBeGreaterThan(0);
  expect(p.modules_to_save).toEqual([]);
  // Both measured on the same inputs and the same q8 file: only the head differs.
  expect(h.dtype_error).toBeGreaterThan(5 * p.dtype_error);
  expect(h.base_max_abs_diff).toBe(0);
  expect(h.max_abs_diff).toBeLessThanOrEqual(h.tolerance);
  // Not vacuous: the adapter moves the outputs by more than the tolerance.
  expect(h.adapter_effect).toBeGreaterThan(h.tolerance);
  console.log(JSON.stringify({ with_head: { max_abs_diff: h.max_abs_diff, dtype_error: h.dtype_error, tolerance: h.tolerance, effect: h.adapter_effect }, base_head_dtype_error: p.dtype_error }));
});
