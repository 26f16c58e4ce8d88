import { describe, expect, it } from 'vitest';
import { JsBackend } from '../../backend/js.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import { buildShape } from '../../model/architectures.js';
import { presetShape } from '../../model/presets.js';
import type { ModelShape } from '../../model/shape.js';
import type { TensorMap } from '../../tensor.js';
import { countParams, initParams, materialize, parseMethodConfig } from '../generic.js';
import { getMethod } from '../registry.js';
import '../all.js';
import { lorta } from './index.js';

const tinyLlama = (kv = 3): ModelShape => buildShape('llama', { hiddenSize: 12, numLayers: 3, numHeads: 3, numKvHeads: kv, intermediateSize: 20 });

function get(params: TensorMap, key: string): Float32Array {
  const t = params.get(key);
  if (!t) throw new Error(`missing ${key}`);
  return t.data;
}

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

function catchErr(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected an error');
}

describe('LoRTA', () => {
  it('is registered under LORTA and lorta', () => {
    expect(getMethod('LORTA')).toBe(lorta);
    expect(getMethod('lorta')).toBe(lorta);
  });

  it('fills the reference port defaults', () => {
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA' });
    expect(c.r).toBe(8);
    expect(c.lora_alpha).toBe(8);
    expect(c.init_scale).toBe(0);
    expect(c.target_modules).toEqual(['query', 'value']);
  });

  it('counts: Llama-2-7B q_proj,v_proj r=4 → 17,160 trainable (published check)', () => {
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r: 4, target_modules: ['q_proj', 'v_proj'] });
    const counts = countParams(lorta.plan(c, presetShape('llama2-7b')));
    expect(counts).toEqual({ trainable: 17_160, frozen: 0, stored: 17_160 });
    // (d + d/H + H + L + M)·r
    expect((4096 + 128 + 32 + 32 + 2) * 4).toBe(17_160);
  });

  it('counts: RoBERTa-base, four attention types, r=16', () => {
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r: 16, target_modules: ['query', 'key', 'value', 'attention.output.dense'] });
    expect(countParams(lorta.plan(c, presetShape('roberta-base'))).trainable).toBe((768 + 64 + 12 + 12 + 4) * 16);
  });

  it('plans shared keys and shapes', () => {
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r: 3, target_modules: ['q_proj', 'k_proj', 'v_proj'] });
    const plan = lorta.plan(c, tinyLlama());
    expect(plan.params.map((p) => [p.key, p.shape, p.kind])).toEqual([
      ['base_model.lorta_A', [12, 3], 'trainable'],
      ['base_model.lorta_B', [4, 3], 'trainable'],
      ['base_model.lorta_C_H', [3, 3], 'trainable'],
      ['base_model.lorta_C_L', [3, 3], 'trainable'],
      ['base_model.lorta_C_M', [3, 3], 'trainable'],
    ]);
    expect(plan.rank).toBe(3);
  });

  it('ΔW from materialize equals the naive 5-mode CP reconstruction (head-contiguous rows)', async () => {
    const r = 3;
    const alpha = 6;
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r, lora_alpha: alpha, target_modules: ['q_proj', 'k_proj', 'v_proj'] });
    const shape = tinyLlama();
    const plan = lorta.plan(c, shape);
    const params = initParams(plan, { seed: 11, nonzero: true });
    const A = get(params, 'base_model.lorta_A');
    const B = get(params, 'base_model.lorta_B');
    const CH = get(params, 'base_model.lorta_C_H');
    const CL = get(params, 'base_model.lorta_C_L');
    const CM = get(params, 'base_model.lorta_C_M');
    const d = 12;
    const H = 3;
    const p = d / H;
    const typeIndex: Record<string, number> = { 'self_attn.q_proj': 0, 'self_attn.k_proj': 1, 'self_attn.v_proj': 2 };
    const ups = await materialize(lorta, c, plan, params, new JsBackend());
    expect(ups.length).toBe(9);
    for (const [idx, u] of ups.entries()) {
      const mod = plan.modules[idx]!;
      const t = typeIndex[mod.type]!;
      const l = mod.layer;
      const ref = new Float64Array(d * d);
      for (let h = 0; h < H; h++)
        for (let j = 0; j < p; j++)
          for (let i = 0; i < d; i++) {
            let acc = 0;
            for (let k = 0; k < r; k++) acc += B[j * r + k]! * CH[h * r + k]! * CL[l * r + k]! * CM[t * r + k]! * A[i * r + k]!;
            ref[(h * p + j) * d + i] = (alpha / r) * acc;
          }
      const got = denseFromUpdate(u);
      let scale = 0;
      for (const v of ref) scale = Math.max(scale, Math.abs(v));
      expect(scale).toBeGreaterThan(0);
      for (let q = 0; q < ref.length; q++) expect(Math.abs(got[q]! - ref[q]!)).toBeLessThanOrEqual(1e-5 * scale + 1e-9);
    }
  });

  it('zero init: ΔW == 0 exactly by default', async () => {
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r: 3, target_modules: ['q_proj', 'k_proj', 'v_proj'] });
    const plan = lorta.plan(c, tinyLlama());
    const ups = await materialize(lorta, c, plan, initParams(plan), new JsBackend());
    for (const u of ups) for (const v of denseFromUpdate(u)) expect(v).toBe(0);
  });

  it('init statistics: A ~ U(±1/√r), C ~ U(±√(6/r)), B = 0', () => {
    const r = 16;
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r, target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] });
    const plan = lorta.plan(c, presetShape('llama2-7b'));
    const params = initParams(plan, { seed: 5 });
    const check = (key: string, bound: number): void => {
      const x = get(params, key);
      let sq = 0;
      let maxAbs = 0;
      for (const v of x) {
        sq += v * v;
        maxAbs = Math.max(maxAbs, Math.abs(v));
      }
      const N = x.length;
      expect(maxAbs).toBeLessThanOrEqual(bound);
      // Var U(±b) = b²/3; standard error of mean(x²) is b²·√(4/45/N); allow 6 SE.
      expect(Math.abs(sq / N - bound ** 2 / 3)).toBeLessThan(6 * bound ** 2 * Math.sqrt(4 / 45 / N));
    };
    check('base_model.lorta_A', 1 / Math.sqrt(r));
    for (const k of ['C_H', 'C_L', 'C_M']) check(`base_model.lorta_${k}`, Math.sqrt(6 / r));
    for (const v of get(params, 'base_model.lorta_B')) expect(v).toBe(0);
    // init_scale = 1 is kaiming-uniform a = √5: U(±1/√r)
    const c1 = parseMethodConfig(lorta, { peft_type: 'LORTA', r, init_scale: 1 });
    const p1 = lorta.plan(c1, presetShape('roberta-base'));
    const init = p1.params.find((p) => p.key === 'base_model.lorta_C_H')!.init;
    expect(init.dist).toBe('uniform');
    expect(init.dist === 'uniform' && init.bound).toBeCloseTo(1 / Math.sqrt(r), 12);
  });

  it('rejects non-square targets naming the module, expected [d, d] and found [n, m]', () => {
    const gpt2 = buildShape('gpt2', { hiddenSize: 12, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 20 });
    const e1 = catchErr(() => lorta.plan(parseMethodConfig(lorta, { peft_type: 'LORTA', target_modules: ['c_attn'] }), gpt2));
    expect(e1).toBeInstanceOf(ShapeMismatchError);
    expect((e1 as ShapeMismatchError).details).toMatchObject({ field: 'transformer.h.0.attn.c_attn', expected: [12, 12], found: [12, 36] });

    const e2 = catchErr(() => lorta.plan(parseMethodConfig(lorta, { peft_type: 'LORTA', target_modules: ['q_proj', 'up_proj'] }), tinyLlama()));
    expect((e2 as ShapeMismatchError).details).toMatchObject({ field: 'model.layers.0.mlp.up_proj', expected: [12, 12], found: [12, 20] });

    // GQA with the PEFT port's input-side heads is not defined: refused naming k_proj.
    const e3 = catchErr(() => lorta.plan(parseMethodConfig(lorta, { peft_type: 'LORTA', target_modules: ['q_proj', 'k_proj'], head_side: 'input' }), tinyLlama(1)));
    expect(e3).toBeInstanceOf(ShapeMismatchError);
    expect((e3 as ShapeMismatchError).details).toMatchObject({ field: 'model.layers.0.self_attn.k_proj', found: [12, 4] });
  });

  it('GQA extension: k/v of Hkv heads use the head factor rows of the first query head of each group', async () => {
    // d = 12, H = 6 heads of 2 rows, Hkv = 2 kv heads (k_proj: 12 → 4); kv head g ↔ query head 3g.
    const shape = buildShape('llama', { hiddenSize: 12, numLayers: 2, numHeads: 6, numKvHeads: 2, intermediateSize: 20 });
    const c = parseMethodConfig(lorta, { peft_type: 'LORTA', r: 3, target_modules: ['q_proj', 'k_proj'] });
    const plan = lorta.plan(c, shape);
    const params = initParams(plan, { seed: 4, nonzero: true });
    const ups = await materialize(lorta, c, plan, params, new JsBackend());
    const A = get(params, 'base_model.lorta_A');
    const B = get(params, 'base_model.lorta_B');
    const CH = get(params, 'base_model.lorta_C_H');
    const CL = get(params, 'base_model.lorta_C_L');
    const CM = get(params, 'base_model.lorta_C_M');
    const k = ups.find((u) => u.path === 'model.layers.1.self_attn.k_proj')!;
    expect(k.m).toBe(4);
    // Independent: ΔW[g·2 + j, i] = s Σ_k B[j,k]·C_H[3g,k]·C_L[1,k]·C_M[1,k]·A[i,k].
    for (let g = 0; g < 2; g++)
      for (let j = 0; j < 2; j++)
        for (let i = 0; i < 12; i++) {
          let want = 0;
          for (let q = 0; q < 3; q++) want += B[j * 3 + q]! * CH[3 * g * 3 + q]! * CL[3 + q]! * CM[3 + q]! * A[i * 3 + q]!;
          let got = 0;
          for (let q = 0; q < 3; q++) got += k.B[(g * 2 + j) * 3 + q]! * k.A[i * 3 + q]!;
          expect(k.s * got).toBeCloseTo((8 / 3) * want, 5);
        }
  });

  it('rejects unknown config fields (strict schema)', () => {
    const e = catchErr(() => parseMethodConfig(lorta, { peft_type: 'LORTA', r: 4, use_dora: true }));
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as Error).message).toMatch(/use_dora/);
    // PEFT's common fields are accepted
    expect(() => parseMethodConfig(lorta, { peft_type: 'LORTA', task_type: 'CAUSAL_LM', base_model_name_or_path: 'x' })).not.toThrow();
  });
});
