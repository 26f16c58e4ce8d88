/**
 * LoRTA's differentiable model, exactly materialize.ts: one CP decomposition over (d, d/H, H, L, M)
 * shared by the whole adapter; module (layer l, type t) gets the dense side lorta_A and the
 * head-block side rows (h, j) = lorta_B[j] ⊙ C_H[h] ⊙ C_L[l] ⊙ C_M[t] (B′ with head_side `output`,
 * A′ with `input`; GQA k/v blocks take the first query head's C_H row of their group);
 * s = lora_alpha / r (/ √r with rsLoRA). Every factor is trainable.
 */
import { typesInOrder } from '../common.js';
import { addInto, type DifferentiableMethod, type DifferentiableModel, type UniversalUpdate } from '../differentiable.js';
import type { ParamPlan } from '../types.js';
import type { LortaConfig } from './config.js';
import { lortaScale } from './materialize.js';
import { LORTA_KEYS } from './plan.js';

export interface LortaGeometry {
  d: number;
  H: number;
  p: number;
  r: number;
  s: number;
  /** Per planned module: layer and matrix-type index. */
  mods: { l: number; t: number }[];
}

export function lortaGeometry(c: LortaConfig, plan: ParamPlan): LortaGeometry {
  const types = typesInOrder(plan.modules);
  const d = plan.modules[0]!.n;
  const H = plan.numHeads;
  return { d, H, p: d / H, r: c.r, s: c.lora_alpha / c.r, mods: plan.modules.map((m) => ({ l: m.layer, t: types.indexOf(m.type) })) };
}

/** c_{i,h} for all modules and heads: `[N·H, r]`. */
export function lortaCoefficients(g: LortaGeometry, CH: Float64Array, CL: Float64Array, CM: Float64Array): Float64Array {
  const { r, H } = g;
  const out = new Float64Array(g.mods.length * H * r);
  g.mods.forEach((mod, i) => {
    for (let h = 0; h < H; h++) {
      const o = (i * H + h) * r;
      for (let k = 0; k < r; k++) out[o + k] = CH[h * r + k]! * CL[mod.l * r + k]! * CM[mod.t * r + k]!;
    }
  });
  return out;
}

function lortaModel(c: LortaConfig, plan: ParamPlan): DifferentiableModel {
  const r = c.r;
  const H = plan.numHeads;
  const s = lortaScale(c);
  const types = typesInOrder(plan.modules);
  const input = c.head_side === 'input';
  // Per module: the head-block side has `heads` blocks of p rows; GQA k/v (heads < H) use the
  // head-factor row of the first query head of their group, exactly as materialize.ts.
  const mods = plan.modules.map((m) => {
    const p = m.n / H;
    const heads = (input ? m.n : m.m) / p;
    return { l: m.layer, t: types.indexOf(m.type), p, heads, row: (g: number) => g * (H / heads) };
  });
  /** The head-block matrix [heads·p, r] of module i: outer[g, k]·B[j, k]·C_L[l, k]·C_M[t, k]. */
  const blocks = (i: number, B: Float64Array, CH: Float64Array, CL: Float64Array, CM: Float64Array): Float64Array => {
    const { l, t, p, heads, row } = mods[i]!;
    const out = new Float64Array(heads * p * r);
    for (let g = 0; g < heads; g++) {
      const h = row(g);
      for (let j = 0; j < p; j++) {
        const o = (g * p + j) * r;
        for (let k = 0; k < r; k++) out[o + k] = CH[h * r + k]! * B[j * r + k]! * CL[l * r + k]! * CM[t * r + k]!;
      }
    }
    return out;
  };
  return {
    plan,
    forward(get) {
      const A = get(LORTA_KEYS.A);
      const B = get(LORTA_KEYS.B);
      const CH = get(LORTA_KEYS.C_H);
      const CL = get(LORTA_KEYS.C_L);
      const CM = get(LORTA_KEYS.C_M);
      const updates: UniversalUpdate[] = mods.map((_, i) => {
        const cp = blocks(i, B, CH, CL, CM);
        const dense = Float64Array.from(A);
        return input ? { A: cp, B: dense, s, rho: r } : { A: dense, B: cp, s, rho: r };
      });
      return { updates, cache: undefined };
    },
    backward(get, _cache, dA, dB, grad) {
      const B = get(LORTA_KEYS.B);
      const CH = get(LORTA_KEYS.C_H);
      const CL = get(LORTA_KEYS.C_L);
      const CM = get(LORTA_KEYS.C_M);
      const gA = grad(LORTA_KEYS.A);
      const gB = grad(LORTA_KEYS.B);
      const gH = grad(LORTA_KEYS.C_H);
      const gL = grad(LORTA_KEYS.C_L);
      const gM = grad(LORTA_KEYS.C_M);
      mods.forEach(({ l, t, p, heads, row }, i) => {
        const dDense = input ? dB[i]! : dA[i]!;
        const dCp = input ? dA[i]! : dB[i]!;
        addInto(gA, dDense);
        const w = new Float64Array(r); // Σ_{g,j} d · C_H · B per k: the gradient of the C_L·C_M product
        for (let g = 0; g < heads; g++) {
          const h = row(g);
          for (let j = 0; j < p; j++) {
            const o = (g * p + j) * r;
            for (let k = 0; k < r; k++) {
              const d = dCp[o + k]!;
              if (d === 0) continue;
              const lm = CL[l * r + k]! * CM[t * r + k]!;
              if (gB) gB[j * r + k]! += d * CH[h * r + k]! * lm;
              if (gH) gH[h * r + k]! += d * B[j * r + k]! * lm;
              w[k]! += d * CH[h * r + k]! * B[j * r + k]!;
            }
          }
        }
        for (let k = 0; k < r; k++) {
          if (gL) gL[l * r + k]! += w[k]! * CM[t * r + k]!;
          if (gM) gM[t * r + k]! += w[k]! * CL[l * r + k]!;
        }
      });
    },
  };
}

export const lortaDifferentiable: DifferentiableMethod = {
  peftType: 'LORTA',
  model: (config, plan) => lortaModel(config as unknown as LortaConfig, plan),
};
