import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../backend/js.js';
import { ConfigError } from '../../errors.js';
import { buildShape } from '../../model/architectures.js';
import { presetShape } from '../../model/presets.js';
import type { ModelShape } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import { getMethod } from '../registry.js';
import '../all.js';
import { vera } from './index.js';

const tinyLlama = (): ModelShape => buildShape('llama', { hiddenSize: 12, numLayers: 3, numHeads: 3, numKvHeads: 3, intermediateSize: 20 });
const tinyGpt2 = (): ModelShape => buildShape('gpt2', { hiddenSize: 12, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 20 });

function get(params: TensorMap, key: string): Float32Array {
  const t = params.get(key);
  if (!t) throw new Error(`missing ${key}`);
  return t.data;
}

/** ΔW = s · B′ A′ᵀ from a module update, by plain loops (the universal form). */
function denseFromUpdate(u: { n: number; m: number; rho: number; s: number; A: Float32Array; B: Float32Array }): Float64Array {
  const W = new Float64Array(u.m * u.n);
  for (let i = 0; i < u.m; i++)
    for (let j = 0; j < u.n; j++) {
      let acc = 0;
      for (let k = 0; k < u.rho; k++) acc += u.B[i * u.rho + k]! * u.A[j * u.rho + k]!;
      W[i * u.n + j] = u.s * acc;
    }
  return W;
}

/** VeRA's ΔW straight from its definition: λ_b[i] · Σ_k vera_B[i, k] · λ_d[k] · vera_A[k, j]. */
function veraReference(params: TensorMap, path: string, n: number, m: number, r: number): Float64Array {
  const A = params.get('base_model.vera_A')!;
  const B = params.get('base_model.vera_B')!;
  const nMax = A.shape[1]!;
  const lb = get(params, `base_model.model.${path}.vera_lambda_b`);
  const ld = get(params, `base_model.model.${path}.vera_lambda_d`);
  const W = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += B.data[i * r + k]! * ld[k]! * A.data[k * nMax + j]!;
      W[i * n + j] = lb[i]! * acc;
    }
  return W;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

describe('VeRA', () => {
  it('is registered under VERA and vera', () => {
    expect(getMethod('VERA')).toBe(vera);
    expect(getMethod('vera')).toBe(vera);
  });

  it('fills PEFT defaults', () => {
    const c = parseMethodConfig(vera, { peft_type: 'VERA' });
    expect(c.r).toBe(256);
    expect(c.d_initial).toBe(0.1);
    expect(c.projection_prng_key).toBe(0);
    expect(c.save_projection).toBe(true);
    expect(c.vera_dropout).toBe(0);
    // passthrough keeps PEFT's extra fields
    const c2 = parseMethodConfig(vera, { peft_type: 'VERA', init_weights: true, some_future_field: 3 });
    expect((c2 as Record<string, unknown>).some_future_field).toBe(3);
  });

  it('counts: RoBERTa-base query+value r=1024 → 43,008 trainable (published check)', () => {
    const c = parseMethodConfig(vera, { peft_type: 'VERA', r: 1024, target_modules: ['query', 'value'] });
    const counts = countParams(vera.plan(c, presetShape('roberta-base')));
    expect(counts.trainable).toBe(43_008);
    expect(counts.frozen).toBe(1024 * 768 + 768 * 1024);
    expect(counts.stored).toBe(43_008 + 2 * 1024 * 768);
  });

  it('plans PEFT keys and shapes (projections sized by the largest module)', () => {
    const c = parseMethodConfig(vera, { peft_type: 'VERA', r: 5, target_modules: ['q_proj', 'up_proj', 'down_proj'] });
    const plan = vera.plan(c, tinyLlama());
    const byKey = new Map(plan.params.map((p) => [p.key, p]));
    expect(byKey.get('base_model.vera_A')).toMatchObject({ shape: [5, 20], kind: 'frozen', shared: 'adapter' });
    expect(byKey.get('base_model.vera_B')).toMatchObject({ shape: [20, 5], kind: 'frozen', shared: 'adapter' });
    expect(byKey.get('base_model.model.model.layers.1.mlp.down_proj.vera_lambda_b')).toMatchObject({ shape: [12], kind: 'trainable' });
    expect(byKey.get('base_model.model.model.layers.1.mlp.up_proj.vera_lambda_b')).toMatchObject({ shape: [20], kind: 'trainable', zeroInit: true });
    expect(byKey.get('base_model.model.model.layers.2.self_attn.q_proj.vera_lambda_d')).toMatchObject({ shape: [5], init: { dist: 'const', value: 0.1 } });
    expect(plan.rank).toBe(5);
    expect(plan.params.length).toBe(2 + 3 * 3 * 2);
  });

  const cases: Array<[string, () => ModelShape, string[]]> = [
    ['tiny llama, square attention', tinyLlama, ['q_proj', 'k_proj', 'v_proj']],
    ['tiny llama, non-square FFN', tinyLlama, ['q_proj', 'gate_proj', 'up_proj', 'down_proj']],
    ['tiny GPT-2 (Conv1D, fused c_attn 12→36)', tinyGpt2, ['c_attn', 'attn.c_proj', 'c_fc', 'mlp.c_proj']],
  ];
  for (const [name, shapeFn, targets] of cases) {
    it(`ΔW from materialize equals the naive VeRA reconstruction: ${name}`, async () => {
      const r = 5;
      const c = parseMethodConfig(vera, { peft_type: 'VERA', r, target_modules: targets });
      const plan = vera.plan(c, shapeFn());
      const params = initParams(plan, { seed: 7, nonzero: true });
      const ups = await materialize(vera, c, plan, params, new JsBackend());
      expect(ups.length).toBe(plan.modules.length);
      for (const [idx, u] of ups.entries()) {
        const mod = plan.modules[idx]!;
        expect([u.n, u.m, u.rho, u.s]).toEqual([mod.n, mod.m, r, 1]);
        const ref = veraReference(params, mod.path, mod.n, mod.m, r);
        const got = denseFromUpdate(u);
        let scale = 0;
        for (const v of ref) scale = Math.max(scale, Math.abs(v));
        expect(scale).toBeGreaterThan(0);
        expect(maxAbsDiff(got, ref)).toBeLessThanOrEqual(1e-5 * scale + 1e-9);
      }
    });
  }

  it('zero init: ΔW == 0 exactly by default', async () => {
    const c = parseMethodConfig(vera, { peft_type: 'VERA', r: 4, target_modules: ['q_proj', 'up_proj', 'down_proj'] });
    const plan = vera.plan(c, tinyLlama());
    const ups = await materialize(vera, c, plan, initParams(plan), new JsBackend());
    for (const u of ups) for (const v of denseFromUpdate(u)) expect(v).toBe(0);
  });

  it('init statistics: projections U(±√(6/fan_in)), λ_d = d_initial, λ_b = 0', () => {
    const r = 256;
    const c = parseMethodConfig(vera, { peft_type: 'VERA', r, target_modules: ['query', 'value'], d_initial: 0.05 });
    const plan = vera.plan(c, presetShape('roberta-base'));
    const params = initParams(plan, { seed: 3 });
    // fan_in = the second dimension: n_max = 768 for vera_A [r, 768], r for vera_B [768, r].
    for (const [key, fanIn] of [
      ['base_model.vera_A', 768],
      ['base_model.vera_B', r],
    ] as const) {
      const x = get(params, key);
      const bound = Math.sqrt(6 / fanIn);
      let sum = 0;
      let sq = 0;
      let maxAbs = 0;
      for (const v of x) {
        sum += v;
        sq += v * v;
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      const N = x.length;
      expect(maxAbs).toBeLessThanOrEqual(bound);
      expect(maxAbs).toBeGreaterThan(0.99 * bound);
      // Var U(±b) = b²/3; the sample mean of x² has standard error b²·√(4/45/N). Allow 6 SE.
      const variance = sq / N;
      expect(Math.abs(variance - bound ** 2 / 3)).toBeLessThan(6 * bound ** 2 * Math.sqrt(4 / 45 / N));
      // mean: SE = b/√(3N); allow 6 SE.
      expect(Math.abs(sum / N)).toBeLessThan((6 * bound) / Math.sqrt(3 * N));
    }
    for (const p of plan.params) {
      if (p.key.endsWith('vera_lambda_d')) for (const v of get(params, p.key)) expect(v).toBe(Math.fround(0.05));
      if (p.key.endsWith('vera_lambda_b')) for (const v of get(params, p.key)) expect(v).toBe(0);
    }
  });

  it('rejects save_projection: false with a ConfigError naming the field, expected and found', () => {
    let err: unknown;
    try {
      parseMethodConfig(vera, { peft_type: 'VERA', save_projection: false });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const ce = err as ConfigError;
    expect(ce.details.field).toBe('save_projection');
    expect(ce.details.found).toBe(false);
    expect(ce.message).toMatch(/expected true/);
    expect(ce.message).toMatch(/torch/);
  });

  it('rejects a target list that matches nothing', () => {
    const c = parseMethodConfig(vera, { peft_type: 'VERA', target_modules: ['nope'] });
    expect(() => vera.plan(c, tinyLlama())).toThrow(ConfigError);
  });
});
