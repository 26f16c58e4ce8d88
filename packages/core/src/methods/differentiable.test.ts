import { describe, expect, it } from 'vitest';
import { buildShape } from '../model/architectures.js';
import { Prng } from '../util/prng.js';
import { differentiableModel } from './grads.js';
import { initParams, materialize, parseMethodConfig } from './generic.js';
import { JsBackend } from '../backend/js.js';
import { getMethod } from './registry.js';
import './all.js';

/**
 * Each method's differentiable model against central differences in float64: a random linear
 * functional L = Σ_modules ⟨R_A, A′⟩ + s·⟨R_B, B′⟩ of the universal form (s multiplies B′ as in
 * ΔW = s·B′A′ᵀ), differentiated along one random direction over every trainable tensor. float64
 * with h = 1e-5: rounding ≈ 1e-16·|L|/h ≈ 1e-10 relative, truncation h²·|L‴| ≈ 1e-10 — so 1e-6
 * relative is loose, and a wrong index or a missing term is off by O(1).
 */
const CASES: Array<[string, Record<string, unknown>]> = [
  ['trac', { r: 4, lora_alpha: 8, target_modules: ['query', 'value'], tensor_shape: [4, 4, 4], tensor_rank_a: [1, 2, 2], tensor_rank_b: [1, 2, 2] }],
  ['lora', { r: 4, lora_alpha: 8, target_modules: ['query', 'value'] }],
  ['vera', { r: 8, target_modules: ['query', 'value'] }],
  ['loretta', { r: 4, lora_alpha: 8, tensor_rank: 2, target_modules: ['query', 'value'], tensor_shape_a: { '64': [4, 4, 4, 4] }, tensor_shape_b: { '64': [4, 4, 4, 4] } }],
  ['lorta', { r: 4, lora_alpha: 8, target_modules: ['query', 'value'] }],
  ['tenslora', { target_modules: ['query', 'value'] }],
  ['lorta', { r: 4, lora_alpha: 8, target_modules: ['query', 'value'], head_side: 'input', use_rslora: true }],
];

/** LLaMA-like shape with grouped-query attention (k/v out = 32 < d = 64): LoRTA's GQA extension. */
const GQA: [string, Record<string, unknown>] = ['lorta', { r: 4, lora_alpha: 8, target_modules: ['q_proj', 'v_proj'] }];

describe('method differentiable models match central differences (float64)', () => {
  for (const [name, raw] of CASES) {
    it(name, () => {
      const method = getMethod(name);
      const small = buildShape('bert', { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 128 });
      const config = parseMethodConfig(method, { peft_type: method.peftType, ...raw }) as Record<string, unknown>;
      const plan = method.plan(config as never, small);
      const model = differentiableModel(config, plan);
      const rng = new Prng(7, name);
      const values = new Map(plan.params.map((p) => [p.key, Float64Array.from({ length: p.shape.reduce((a, b) => a * b, 1) }, () => rng.normal() * 0.5)]));
      const trainable = plan.params.filter((p) => p.kind === 'trainable').map((p) => p.key);
      const { updates } = model.forward((k) => values.get(k)!);
      const RA = updates.map((u) => Float64Array.from(u.A, () => rng.normal()));
      const RB = updates.map((u) => Float64Array.from(u.B, () => rng.normal()));
      const L = (vals: Map<string, Float64Array>): number => {
        const us = model.forward((k) => vals.get(k)!).updates;
        let l = 0;
        us.forEach((u, i) => {
          for (let j = 0; j < u.A.length; j++) l += RA[i]![j]! * u.A[j]!;
          for (let j = 0; j < u.B.length; j++) l += u.s * RB[i]![j]! * u.B[j]!;
        });
        return l;
      };
      const grads = new Map(trainable.map((k) => [k, new Float64Array(values.get(k)!.length)]));
      const { cache } = model.forward((k) => values.get(k)!);
      model.backward((k) => values.get(k)!, cache, RA, RB.map((r, i) => r.map((x) => x * updates[i]!.s)), (k) => grads.get(k));
      const dir = new Map(trainable.map((k) => [k, Float64Array.from(values.get(k)!, () => rng.normal())]));
      let analytic = 0;
      for (const k of trainable) dir.get(k)!.forEach((v, i) => (analytic += v * grads.get(k)![i]!));
      const h = 1e-5;
      const shifted = (sign: number) => new Map([...values].map(([k, v]) => [k, dir.has(k) ? v.map((x, i) => x + sign * h * dir.get(k)![i]!) : v]));
      const fd = (L(shifted(1)) - L(shifted(-1))) / (2 * h);
      expect(Math.abs(fd)).toBeGreaterThan(1e-3);
      expect(Math.abs(analytic - fd)).toBeLessThan(1e-6 * Math.abs(fd));
      // Frozen tensors get no gradient buffer, so they stay fixed (TRAC's G2, VeRA's projections).
      const frozen = plan.params.filter((p) => p.kind === 'frozen').map((p) => p.key);
      if (name === 'vera') expect(frozen.length).toBe(2);
      for (const k of frozen) expect(grads.has(k)).toBe(false);
    });
  }
});

describe('method differentiable models reproduce the materialization (float64 vs the JS backend)', () => {
  const cases: Array<[string, Record<string, unknown>, 'bert' | 'llama']> = [...CASES.map(([n, c]) => [n, c, 'bert'] as [string, Record<string, unknown>, 'bert']), [GQA[0], GQA[1], 'llama']];
  for (const [name, raw, arch] of cases) {
    it(`${name} ${arch} ${JSON.stringify(raw).slice(0, 60)}`, async () => {
      const method = getMethod(name);
      const shape = buildShape(arch, { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: arch === 'llama' ? 2 : 4, intermediateSize: 128 });
      const config = parseMethodConfig(method, { peft_type: method.peftType, ...raw });
      const plan = method.plan(config as never, shape);
      const params = initParams(plan, { seed: 5, nonzero: true });
      const ups = await materialize(method, config, plan, params, new JsBackend());
      const values = new Map([...params].map(([k, t]) => [k, Float64Array.from(t.data)]));
      const { updates } = differentiableModel(config as Record<string, unknown>, plan).forward((k) => values.get(k)!);
      expect(updates.length).toBe(ups.length);
      updates.forEach((u, i) => {
        const m = ups[i]!;
        // float32 materialization vs float64: products of ≤ 4 factors, relative ~1e-7.
        expect(u.s).toBeCloseTo(m.s, 6);
        expect(u.rho).toBe(m.rho);
        expect(u.A.length).toBe(m.A.length);
        expect(u.B.length).toBe(m.B.length);
        const scale = Math.max(1e-12, ...Array.from(m.A, Math.abs), ...Array.from(m.B, Math.abs));
        u.A.forEach((v, j) => expect(Math.abs(v - m.A[j]!)).toBeLessThan(1e-5 * scale));
        u.B.forEach((v, j) => expect(Math.abs(v - m.B[j]!)).toBeLessThan(1e-5 * scale));
      });
    });
  }
});
