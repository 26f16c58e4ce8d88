/**
 * Aliased initializers: torch.onnx de-duplicates bit-identical tensors (the other names become
 * `Identity` outputs) and, without constant folding, reads nn.Linear weights through a `Transpose`.
 * Generated on tiny BERTs (`freshInit`: biases 0 and LayerNorm γ = 1 make many tensors identical,
 * `bert.pooler.dense.bias` among them; `constantFolding: false`), then rewritten and merged.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { decodeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { findLinears, rewriteModel } from './rewrite.js';
import { verify } from './verify.js';

let dir: string;
let fresh: GeneratedModel;
let unfolded: GeneratedModel;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-aliased-'));
  fresh = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 2, freshInit: true }, path.join(dir, 'fresh'));
  unfolded = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 2, constantFolding: false }, path.join(dir, 'unfolded'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** LoRA on q/v plus the pooler and classifier as modules_to_save, with values other than the base's. */
function loraWithHeads(m: GeneratedModel): Adapter {
  const a = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 5, config: { target_modules: ['query', 'value'], modules_to_save: ['pooler', 'classifier'] } });
  const H = m.shape.hiddenSize;
  const fill = (n: number, f: (i: number) => number): Float32Array => Float32Array.from({ length: n }, (_, i) => f(i));
  a.extras.set('base_model.model.bert.pooler.modules_to_save.default.dense.weight', { shape: [H, H], data: fill(H * H, (i) => 0.2 * Math.sin(i)) });
  a.extras.set('base_model.model.bert.pooler.modules_to_save.default.dense.bias', { shape: [H], data: fill(H, (i) => 0.05 * Math.cos(i)) });
  a.extras.set('base_model.model.classifier.modules_to_save.default.weight', { shape: [3, H], data: fill(3 * H, (i) => 0.3 * Math.cos(0.7 * i)) });
  a.extras.set('base_model.model.classifier.modules_to_save.default.bias', { shape: [3], data: Float32Array.from([0.1, -0.2, 0.3]) });
  return a;
}

describe('aliased initializers (Identity) and Transpose-fed weights', () => {
  test('model-gen: fresh init de-duplicates into Identity aliases; no constant folding reads weights through Transpose', () => {
    const g = decodeModel(fresh.files.get('onnx/model.onnx')!).graph!;
    const ids = (g.node ?? []).filter((n) => n.opType === 'Identity');
    const inits = new Set((g.initializer ?? []).map((t) => t.name));
    // The pooler bias is zero, like every other bias: an alias of the first zero [32] tensor.
    const pool = ids.find((n) => n.output![0] === 'bert.pooler.dense.bias');
    expect(pool).toBeDefined();
    expect(inits.has('bert.pooler.dense.bias')).toBe(false);
    expect(inits.has(pool!.input![0]!)).toBe(true);
    const u = decodeModel(unfolded.files.get('onnx/model.onnx')!).graph!;
    const tr = (u.node ?? []).find((n) => n.name === '/bert/encoder/layer.0/attention/self/query/Transpose');
    expect(tr?.input).toEqual(['bert.encoder.layer.0.attention.self.query.weight']);
  });

  test('findLinears follows the aliases back to the initializer (layout from the Transpose)', () => {
    const lin = findLinears(decodeModel(fresh.files.get('onnx/model.onnx')!));
    const pooler = lin.find((l) => l.graphPath === 'bert.pooler.dense')!;
    expect(pooler.biasAlias).toBe('bert.pooler.dense.bias');
    expect(pooler.bias).not.toBe('bert.pooler.dense.bias');
    const ul = findLinears(decodeModel(unfolded.files.get('onnx/model.onnx')!));
    const q = ul.find((l) => l.graphPath === 'bert.encoder.layer.0.attention.self.query')!;
    expect([q.weight, q.weightLayout, q.n, q.m]).toEqual(['bert.encoder.layer.0.attention.self.query.weight', 'out_in', 32, 32]);
    // Every target of the shape is found (12 per layer · 2 layers = 12 linears + 2 heads).
    expect(ul.length).toBe(fresh.shape.modules.length + 2);
  });

  test('the rewrite makes the aliased pooler bias overridable under its state-dict name', () => {
    const r = rewriteModel(fresh.files.get('onnx/model.onnx')!, { targets: fresh.shape.modules.map((m) => m.path) });
    expect(r.params.map((p) => p.name).sort()).toEqual(['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
    expect(r.branches.length).toBe(fresh.shape.modules.length);
  });

  for (const [label, which] of [
    ['fresh init (Identity aliases)', 'fresh'],
    ['no constant folding (Transpose)', 'unfolded'],
  ] as const) {
    test(`${label}: plugin = offline merge (LoRA + modules_to_save on aliased heads), disabled = base exactly, branch and merge mode`, async () => {
      const m = which === 'fresh' ? fresh : unfolded;
      const adapter = loraWithHeads(m);
      for (const mode of ['branch', 'merge'] as const) {
        const r = await verify({ model: path.join(dir, which), adapter, mode });
        // fp32 on both sides: rounding of 32-wide dot products only (as verify.test.ts).
        expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
        expect(r.base_max_abs_diff).toBe(0);
        // The heads are replaced: logits move by O(0.1), far above rounding.
        expect(r.adapter_effect).toBeGreaterThan(1e-2);
        expect(r.modules_to_save.sort()).toEqual(['bert.pooler.dense.bias', 'bert.pooler.dense.weight', 'classifier.bias', 'classifier.weight']);
      }
    });
  }
});
