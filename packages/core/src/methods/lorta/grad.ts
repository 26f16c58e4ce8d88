/**
 * LoRTA's differentiable model: one CP decomposition over (d, d/H, H, L, M) shared by the whole
 * adapter; module (layer l, type t) gets A′ = lorta_A and B′ rows (h, j) = lorta_B[j] ⊙ C_H[h] ⊙
 * C_L[l] ⊙ C_M[t]; s = lora_alpha / r. Every factor is trainable.
 */
import { typesInOrder } from '../common.js';
import { addInto, type DifferentiableMethod, type DifferentiableModel, type UniversalUpdate } from '../differentiable.js';
import type { ParamPlan } from '../types.js';
import type { LortaConfig } from './config.js';
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
  const g = lortaGeometry(c, plan);
  const { r, H, p, d } = g;
  return {
    plan,
    forward(get) {
      const A = get(LORTA_KEYS.A);
      const B = get(LORTA_KEYS.B);
      const coef = lortaCoefficients(g, get(LORTA_KEYS.C_H), get(LORTA_KEYS.C_L), get(LORTA_KEYS.C_M));
      const updates: UniversalUpdate[] = g.mods.map((_, i) => {
        const Bp = new Float64Array(d * r);
        for (let h = 0; h < H; h++) {
          const co = (i * H + h) * r;
          for (let j = 0; j < p; j++) {
            const o = (h * p + j) * r;
            for (let k = 0; k < r; k++) Bp[o + k] = B[j * r + k]! * coef[co + k]!;
          }
        }
        return { A, B: Bp, s: g.s, rho: r };
      });
      return { updates, cache: coef };
    },
    backward(get, cache, dA, dB, grad) {
      const coef = cache as Float64Array;
      const B = get(LORTA_KEYS.B);
      const CH = get(LORTA_KEYS.C_H);
      const CL = get(LORTA_KEYS.C_L);
      const CM = get(LORTA_KEYS.C_M);
      const gA = grad(LORTA_KEYS.A);
      const gB = grad(LORTA_KEYS.B);
      const gH = grad(LORTA_KEYS.C_H);
      const gL = grad(LORTA_KEYS.C_L);
      const gM = grad(LORTA_KEYS.C_M);
      g.mods.forEach((mod, i) => {
        addInto(gA, dA[i]!);
        const d2 = dB[i]!;
        const w = new Float64Array(r); // Σ_{h,j} dB′ B C_H per k
        for (let h = 0; h < H; h++) {
          const co = (i * H + h) * r;
          for (let j = 0; j < p; j++) {
            const o = (h * p + j) * r;
            for (let k = 0; k < r; k++) {
              const db = d2[o + k]!;
              if (db === 0) continue;
              if (gB) gB[j * r + k]! += db * coef[co + k]!;
              const t = db * B[j * r + k]!;
              if (gH) gH[h * r + k]! += t * CL[mod.l * r + k]! * CM[mod.t * r + k]!;
              w[k]! += t * CH[h * r + k]!;
            }
          }
        }
        for (let k = 0; k < r; k++) {
          if (gL) gL[mod.l * r + k]! += w[k]! * CM[mod.t * r + k]!;
          if (gM) gM[mod.t * r + k]! += w[k]! * CL[mod.l * r + k]!;
        }
      });
    },
  };
}

export const lortaDifferentiable: DifferentiableMethod = {
  peftType: 'LORTA',
  model: (config, plan) => lortaModel(config as unknown as LortaConfig, plan),
};
