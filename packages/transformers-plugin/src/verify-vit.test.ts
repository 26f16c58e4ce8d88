/**
 * `verify` on image models: a tiny generated ViT image classifier fed pixel values by its own image
 * processor (three synthetic images of other sizes, so resizing and 1 → 3 channel conversion run).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAdapter, listMethods, type Adapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { syntheticImages, verify } from './verify.js';

// Tensor factorizations for the tiny model's 32-wide modules (the defaults cover published sizes);
// same as verify.test.ts, since the tiny ViT's hidden size is 32 as well.
const TINY_CONFIG: Record<string, Record<string, unknown>> = {
  LORETTA: { tensor_shape_a: { '32': [4, 8, 8] }, tensor_shape_b: { '32': [8, 8, 4] } },
  TRAC: { tensor_shape: { '32': [2, 4, 4] } },
};

let dir: string;
let model: string;
let vit: GeneratedModel;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-verify-vit-'));
  model = path.join(dir, 'vit');
  vit = await writeModel({ arch: 'vit', size: 'tiny', numLabels: 3, seed: 3 }, model);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const adapterFor = (method: string, seed: number): Adapter => createAdapter({ method, shape: vit.shape, nonzero: true, seed, config: TINY_CONFIG[method] ?? {} });

describe('verify on tiny ViT (image classification)', () => {
  test('the synthetic images are deterministic and of different sizes and channel counts', () => {
    const a = syntheticImages();
    const b = syntheticImages();
    expect(a.map((x) => [x.width, x.height, x.channels])).toEqual([
      [48, 40, 3],
      [24, 24, 3],
      [57, 33, 1],
    ]);
    for (const [i, x] of a.entries()) {
      expect(x.data.length).toBe(x.width * x.height * x.channels);
      expect(Array.from(x.data)).toEqual(Array.from(b[i]!.data));
      // Not flat: a constant image would hide patch-position bugs.
      expect(new Set(x.data).size).toBeGreaterThan(1);
    }
  });

  // Default session options (onnxruntime `all`) as well as `'basic'`: the base graph fuses the last
  // layer's output.dense bias Add, residual Add and the final LayerNorm into one
  // SkipLayerNormalization, (x·W + residual) + b; the rewrite leaves that chain as it is (branch in the
  // residual operand), so disabled must equal base exactly at both levels, fp32 and q8.
  for (const method of listMethods().map((m) => m.peftType)) {
    test(`${method}: plugin = offline merge within 1e-4; disabled = base exactly at 'basic' and by default; q8`, async () => {
      const adapter = adapterFor(method, 11);
      const r = await verify({ model, adapter, graphOptimizationLevel: 'basic' });
      expect(r.input_kind).toBe('image');
      expect(r.images).toBe(3);
      expect(r.inputs).toBe(3);
      expect(r.texts).toBe(0);
      expect(r.graph_optimization_level).toBe('basic');
      expect(r.outputs).toEqual(['logits']);
      expect(r.modules).toBe(adapter.plan.modules.length);
      expect(r.modules).toBeGreaterThan(0);
      // fp32 everywhere: branch (x·A′)·B′ᵀ vs x·(W0 + B′A′ᵀ) differ only by float rounding of
      // 32-/64-wide dot products on O(1) activations, ~1e-7; 1e-4 is the text tests' bound and
      // still 10× below the adapter's own effect asserted next (a wrong ΔW would show as ≥ 1e-3).
      expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
      expect(r.base_max_abs_diff).toBe(0);
      expect(r.adapter_effect).toBeGreaterThan(1e-3);
      const d = await verify({ model, adapter });
      expect(d.graph_optimization_level).toBeUndefined();
      expect(d.max_abs_diff).toBeLessThanOrEqual(1e-4);
      expect(d.base_max_abs_diff).toBe(0);
      expect(d.adapter_effect).toBeGreaterThan(1e-3);
      const q = await verify({ model, adapter, dtype: 'q8', graphOptimizationLevel: 'basic' });
      expect(q.dtype).toBe('q8');
      expect(q.base_max_abs_diff).toBe(0);
      expect(q.adapter_effect).toBeGreaterThan(1e-3);
      // The reference stays the fp32 merge, so this is quantization error (the CLI's q8 tolerance).
      expect(q.max_abs_diff).toBeLessThanOrEqual(5e-2);
      const qd = await verify({ model, adapter, dtype: 'q8' });
      expect(qd.base_max_abs_diff).toBe(0);
      expect(qd.max_abs_diff).toBeLessThanOrEqual(5e-2);
      console.log(JSON.stringify({ arch: 'vit', method, basic: pick(r), default: pick(d), q8_basic: pick(q), q8_default: pick(qd) }));
    });
  }

  test('merge mode (fp32 weights fed as inputs) with LoRA + classifier head and TensLoRA', async () => {
    const lora = createAdapter({ method: 'LORA', shape: vit.shape, nonzero: true, seed: 5, config: { modules_to_save: ['classifier'] } });
    lora.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: new Float32Array(96).map((_, i) => Math.sin(i)) });
    lora.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.3, -0.2, 0.1]) });
    for (const adapter of [lora, adapterFor('TENSLORA', 6)]) {
      const r = await verify({ model, adapter, mode: 'merge', graphOptimizationLevel: 'basic' });
      expect(r.mode).toBe('merge');
      expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
      expect(r.base_max_abs_diff).toBe(0);
      expect(r.adapter_effect).toBeGreaterThan(1e-3);
      const b = await verify({ model, adapter, graphOptimizationLevel: 'basic' });
      expect(b.max_abs_diff).toBeLessThanOrEqual(1e-4);
      expect(b.base_max_abs_diff).toBe(0);
      console.log(JSON.stringify({ arch: 'vit', peft_type: r.peft_type, modules_to_save: r.modules_to_save, merge: pick(r), branch: pick(b) }));
    }
    expect((await verify({ model, adapter: lora, graphOptimizationLevel: 'basic' })).modules_to_save).toEqual(['classifier.weight', 'classifier.bias']);
  });

  test('images can be given; texts are refused for an image model (and images for a text model)', async () => {
    const adapter = adapterFor('LORA', 2);
    const one = syntheticImages().slice(0, 1);
    const r = await verify({ model, adapter, images: one, graphOptimizationLevel: 'basic' });
    expect([r.images, r.inputs]).toEqual([1, 1]);
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(r.base_max_abs_diff).toBe(0);
    await expect(verify({ model, adapter, texts: ['a cat'] })).rejects.toThrow(/image model .*not texts/);
    const bert = path.join(dir, 'bert');
    const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 1 }, bert);
    const textAdapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1 });
    await expect(verify({ model: bert, adapter: textAdapter, images: one })).rejects.toThrow(/text model .*not images/);
    // The text path is unchanged and says so in the new fields.
    const t = await verify({ model: bert, adapter: textAdapter });
    expect([t.input_kind, t.texts, t.images, t.inputs]).toEqual(['text', 3, 0, 3]);
    expect(t.base_max_abs_diff).toBe(0);
  });
});

const pick = (r: { max_abs_diff: number; base_max_abs_diff: number; adapter_effect: number }): Record<string, number> => ({
  max_abs_diff: r.max_abs_diff,
  base_max_abs_diff: r.base_max_abs_diff,
  adapter_effect: r.adapter_effect,
});
