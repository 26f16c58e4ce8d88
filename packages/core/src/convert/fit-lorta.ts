/**
 * LoRTA fits: one rank-r CP decomposition of the 5-mode update tensor (input d, output within a
 * head d/H, head H, layer L, matrix type M). For module i (layer l, type t) and head h the p × d
 * block (p = d/H) is
 *
 *   F_{i,h} = s · B · diag(c_{i,h}) · Aᵀ,   c_{i,h} = C_H[h] ⊙ C_L[l] ⊙ C_M[t],
 *
 * against the target block T_{i,h} = U_{i,h} V_iᵀ (rows h·p … h·p + p − 1 of U_i).
 *
 * - Init: A = leading left singular vectors of the mode-in unfolding [T_1ᵀ … T_Nᵀ] (computed as
 *   [V_i R_iᵀ] with U_i = Q_i R_i), B likewise from the head blocks; C_H, C_L, C_M = 1 + 0.1·noise
 *   (seeded), then rescaled by the first ALS sweep.
 * - ALS (Gram tricks, every block update exact): with K = BᵀB ⊙ AᵀA and
 *   g_{i,h}[k] = ((BᵀU_{i,h})(V_iᵀA))[k, k],
 *   A ← (s Σ V_i Σ_h (U_{i,h}ᵀB) diag(c_{i,h})) · (s² BᵀB ⊙ Σ c cᵀ)⁺,
 *   B ← (s Σ U_{i,h} (V_iᵀA) diag(c_{i,h})) · (s² AᵀA ⊙ Σ c cᵀ)⁺,
 *   a row x of C_H / C_L / C_M with the other two factors' product e:  x ← (s Σ e ⊙ g) · (s² K ⊙ Σ e eᵀ)⁺.
 *   Columns are rebalanced after each sweep (equal norms across the five factors).
 * - Search: r = the largest rank with (d + d/H + H + L + M)·r ≤ budget (one knob).
 * - Targets must all be square d × d; anything else is a ShapeMismatchError naming the module.
 */
import { ShapeMismatchError } from '../errors.js';
import type { LortaConfig } from '../methods/lorta/config.js';
import { LORTA_KEYS } from '../methods/lorta/plan.js';
import { typesInOrder } from '../methods/common.js';
import type { ParamPlan } from '../methods/types.js';
import { streamFor } from '../util/prng.js';
import { add } from './fit-loretta.js';
import type { FitContext, MethodFitter } from './fitter.js';
import { gramT, leadingLeft, matmul, matmulTN, qr, solveRightSym } from './linalg.js';
import type { FitModel } from './model.js';
import { lortaCoefficients, lortaDifferentiable } from '../methods/lorta/grad.js';
import type { FitUpdate, Target, TargetModule } from './target.js';

interface Geo {
  d: number;
  H: number;
  p: number;
  L: number;
  M: number;
  r: number;
  s: number;
  /** Per planned module: layer, type index, target. */
  mods: { l: number; t: number; target: TargetModule }[];
}

function geometry(ctx: FitContext, c: LortaConfig, plan: ParamPlan): Geo {
  const types = typesInOrder(plan.modules);
  const byPath = new Map(ctx.target.modules.map((t) => [t.path, t]));
  const d = plan.modules[0]!.n;
  const H = plan.numHeads;
  return {
    d,
    H,
    p: d / H,
    L: plan.numLayers,
    M: types.length,
    r: c.r,
    s: c.lora_alpha / c.r,
    mods: plan.modules.map((m) => ({ l: m.layer, t: types.indexOf(m.type), target: byPath.get(m.path)! })),
  };
}

/** Throw ShapeMismatchError naming the first module that is not d × d. */
export function checkSquare(target: Target, d: number): void {
  for (const m of target.modules) {
    if (m.n !== d || m.m !== d) {
      throw new ShapeMismatchError(
        `LoRTA needs every target to be square d × d (d = ${d}); module ${m.path} is ${m.n} → ${m.m}, so this LoRA cannot be converted to LoRTA`,
        { field: m.path, expected: [d, d], found: [m.n, m.m] },
      );
    }
  }
}

/** c_{i,h} for all modules and heads: `[N·H, r]` (the model's own, in methods/lorta/grad.ts). */
const coefficients = lortaCoefficients;

export const lortaFitter: MethodFitter = {
  name: 'lorta',
  rankFields: ['r'],

  defaults(ctx) {
    const r = typeof ctx.base.r === 'number' ? ctx.base.r : 8;
    return { r, lora_alpha: typeof ctx.base.lora_alpha === 'number' ? ctx.base.lora_alpha : r };
  },

  candidates(ctx, budget) {
    const d = ctx.shape.hiddenSize;
    checkSquare(ctx.target, d);
    const H = ctx.shape.numHeads;
    const M = new Set(ctx.target.modules.map((m) => m.type)).size;
    const per = d + d / H + H + ctx.shape.numLayers + M;
    const r = Math.floor(budget / per);
    if (r < 1) return [];
    return [{ config: { r, lora_alpha: r }, params: per * r }];
  },

  init(ctx, config, plan) {
    const c = config as unknown as LortaConfig;
    const g = geometry(ctx, c, plan);
    const { d, p, H, r } = g;
    // Mode-in unfolding: columns V_i R_iᵀ (U_i = Q_i R_i).
    const rt = g.mods.map((m) => m.target.r);
    const inCols = rt.reduce((a, b) => a + b, 0);
    const Yin = new Float64Array(d * inCols);
    let off = 0;
    g.mods.forEach((mod) => {
      const t = mod.target;
      const { R } = qr(t.U, t.m, t.r); // [r_t, r_t]
      const VR = matmul(t.V, transposeSq(R, t.r), t.n, t.r, t.r);
      for (let i = 0; i < d; i++) for (let k = 0; k < t.r; k++) Yin[i * inCols + off + k] = VR[i * t.r + k]!;
      off += t.r;
    });
    const A = leadingLeft(Yin, d, inCols, Math.min(r, d)).U;
    // Mode out-within-head: columns U_{i,h} R_{V_i}ᵀ.
    const outCols = inCols * H;
    const Yout = new Float64Array(p * outCols);
    off = 0;
    g.mods.forEach((mod) => {
      const t = mod.target;
      const { R } = qr(t.V, t.n, t.r);
      const UR = matmul(t.U, transposeSq(R, t.r), t.m, t.r, t.r); // [m, r_t]
      for (let h = 0; h < H; h++) {
        for (let j = 0; j < p; j++) for (let k = 0; k < t.r; k++) Yout[j * outCols + off + k] = UR[(h * p + j) * t.r + k]!;
        off += t.r;
      }
    });
    const B = leadingLeft(Yout, p, outCols, Math.min(r, p)).U;
    const pad = (X: Float64Array, rows: number, k: number): Float64Array => {
      if (k === r) return X;
      const out = new Float64Array(rows * r);
      const gen = streamFor(ctx.seed, `convert.lorta.pad.${rows}`);
      for (let i = 0; i < rows; i++) for (let c2 = 0; c2 < r; c2++) out[i * r + c2] = c2 < k ? X[i * k + c2]! : 1e-3 * gen.normal();
      return out;
    };
    const noisy = (rows: number, key: string) => {
      const gen = streamFor(ctx.seed, `convert.lorta.${key}`);
      const out = new Float64Array(rows * r);
      for (let i = 0; i < out.length; i++) out[i] = 1 + 0.1 * gen.normal();
      return out;
    };
    const values = new Map<string, Float64Array>([
      [LORTA_KEYS.A, pad(A, d, Math.min(r, d))],
      [LORTA_KEYS.B, pad(B, p, Math.min(r, p))],
      [LORTA_KEYS.C_H, noisy(H, 'C_H')],
      [LORTA_KEYS.C_L, noisy(g.L, 'C_L')],
      [LORTA_KEYS.C_M, noisy(g.M, 'C_M')],
    ]);
    // One sweep of C updates makes the init scale-correct (the search compares init errors).
    lortaAls(g, values, 1, true);
    return { values };
  },

  fitted(_ctx, plan) {
    return new Set(plan.params.map((p) => p.key));
  },

  als(ctx, config, plan, values, sweeps, onSweep) {
    const g = geometry(ctx, config as unknown as LortaConfig, plan);
    for (let k = 0; k < sweeps; k++) {
      lortaAls(g, values, 1, false);
      onSweep?.(k + 1);
    }
  },

  model(_ctx, config, plan): FitModel {
    return lortaDifferentiable.model(config, plan);
  },
};

function transposeSq(R: Float64Array, k: number): Float64Array {
  const T = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) T[j * k + i] = R[i * k + j]!;
  return T;
}

/** One ALS sweep (C_H, C_L, C_M, then A and B unless `cOnly`), in place. */
function lortaAls(g: Geo, values: Map<string, Float64Array>, sweeps: number, cOnly: boolean): void {
  const { r, H, p, d, s } = g;
  const N = g.mods.length;
  for (let sw = 0; sw < sweeps; sw++) {
    let A = values.get(LORTA_KEYS.A)!;
    let B = values.get(LORTA_KEYS.B)!;
    const CH = values.get(LORTA_KEYS.C_H)!;
    const CL = values.get(LORTA_KEYS.C_L)!;
    const CM = values.get(LORTA_KEYS.C_M)!;
    // g_{i,h}[k] and K depend on A and B only.
    const gvec = () => {
      const out = new Float64Array(N * H * r);
      g.mods.forEach((mod, i) => {
        const t = mod.target;
        const VtA = matmulTN(t.V, A, t.n, t.r, r); // [r_t, r]
        for (let h = 0; h < H; h++) {
          const Uh = t.U.subarray(h * p * t.r, (h + 1) * p * t.r);
          const BtU = matmulTN(B, Uh, p, r, t.r); // [r, r_t]
          for (let k = 0; k < r; k++) {
            let acc = 0;
            for (let q = 0; q < t.r; q++) acc += BtU[k * t.r + q]! * VtA[q * r + k]!;
            out[(i * H + h) * r + k] = acc;
          }
        }
      });
      return out;
    };
    const gv = gvec();
    const GA = gramT(A, d, r);
    const GB = gramT(B, p, r);
    const K = new Float64Array(r * r);
    for (let i = 0; i < K.length; i++) K[i] = s * s * GA[i]! * GB[i]!;
    // Row update of a C factor: rows `x` with, per (module, head) term, e = product of the other two.
    const updateRows = (C: Float64Array, rows: number, rowOf: (i: number, h: number) => number, other: (i: number, h: number, k: number) => number) => {
      const lhs = Array.from({ length: rows }, () => new Float64Array(r * r));
      const rhs = Array.from({ length: rows }, () => new Float64Array(r));
      const e = new Float64Array(r);
      for (let i = 0; i < N; i++) {
        for (let h = 0; h < H; h++) {
          const row = rowOf(i, h);
          for (let k = 0; k < r; k++) e[k] = other(i, h, k);
          const L = lhs[row]!;
          const R = rhs[row]!;
          const go = (i * H + h) * r;
          for (let a = 0; a < r; a++) {
            R[a]! += s * e[a]! * gv[go + a]!;
            for (let b = 0; b < r; b++) L[a * r + b]! += e[a]! * e[b]!;
          }
        }
      }
      for (let row = 0; row < rows; row++) {
        const L = lhs[row]!;
        let any = false;
        for (let i = 0; i < L.length; i++) {
          L[i] = L[i]! * K[i]!;
          if (L[i] !== 0) any = true;
        }
        if (!any) continue;
        const x = solveRightSym(rhs[row]!, L, 1, r);
        C.set(x, row * r);
      }
    };
    updateRows(CH, H, (_i, h) => h, (i, _h, k) => CL[g.mods[i]!.l * r + k]! * CM[g.mods[i]!.t * r + k]!);
    updateRows(CL, g.L, (i) => g.mods[i]!.l, (i, h, k) => CH[h * r + k]! * CM[g.mods[i]!.t * r + k]!);
    updateRows(CM, g.M, (i) => g.mods[i]!.t, (i, h, k) => CH[h * r + k]! * CL[g.mods[i]!.l * r + k]!);
    if (cOnly) continue;
    // Σ c cᵀ over (module, head).
    const coef = coefficients(g, CH, CL, CM);
    const CC = new Float64Array(r * r);
    for (let q = 0; q < N * H; q++) {
      for (let a = 0; a < r; a++) {
        const ca = coef[q * r + a]!;
        for (let b = 0; b < r; b++) CC[a * r + b]! += ca * coef[q * r + b]!;
      }
    }
    // A update.
    {
      const GBn = gramT(B, p, r);
      const G = new Float64Array(r * r);
      for (let i = 0; i < G.length; i++) G[i] = s * s * GBn[i]! * CC[i]!;
      const R = new Float64Array(d * r);
      g.mods.forEach((mod, i) => {
        const t = mod.target;
        const W = new Float64Array(t.r * r);
        for (let h = 0; h < H; h++) {
          const Uh = t.U.subarray(h * p * t.r, (h + 1) * p * t.r);
          const UtB = matmulTN(Uh, B, p, t.r, r); // [r_t, r]
          const co = (i * H + h) * r;
          for (let q = 0; q < t.r; q++) for (let k = 0; k < r; k++) W[q * r + k]! += UtB[q * r + k]! * coef[co + k]!;
        }
        const VW = matmul(t.V, W, t.n, t.r, r);
        for (let x = 0; x < R.length; x++) R[x]! += s * VW[x]!;
      });
      A = solveRightSym(R, G, d, r);
      values.set(LORTA_KEYS.A, A);
    }
    // B update.
    {
      const GAn = gramT(A, d, r);
      const G = new Float64Array(r * r);
      for (let i = 0; i < G.length; i++) G[i] = s * s * GAn[i]! * CC[i]!;
      const R = new Float64Array(p * r);
      g.mods.forEach((mod, i) => {
        const t = mod.target;
        const X = matmulTN(t.V, A, t.n, t.r, r); // [r_t, r]
        for (let h = 0; h < H; h++) {
          const Uh = t.U.subarray(h * p * t.r, (h + 1) * p * t.r);
          const UX = matmul(Uh, X, p, t.r, r);
          const co = (i * H + h) * r;
          for (let j = 0; j < p; j++) for (let k = 0; k < r; k++) R[j * r + k]! += s * UX[j * r + k]! * coef[co + k]!;
        }
      });
      B = solveRightSym(R, G, p, r);
      values.set(LORTA_KEYS.B, B);
    }
    rebalance(values, g);
  }
}

/** Give column k of A, B, C_H, C_L, C_M equal norms (their product is unchanged). */
function rebalance(values: Map<string, Float64Array>, g: Geo): void {
  const { r } = g;
  const facs: [Float64Array, number][] = [
    [values.get(LORTA_KEYS.A)!, g.d],
    [values.get(LORTA_KEYS.B)!, g.p],
    [values.get(LORTA_KEYS.C_H)!, g.H],
    [values.get(LORTA_KEYS.C_L)!, g.L],
    [values.get(LORTA_KEYS.C_M)!, g.M],
  ];
  for (let k = 0; k < r; k++) {
    const norms = facs.map(([X, rows]) => {
      let s = 0;
      for (let i = 0; i < rows; i++) s += X[i * r + k]! ** 2;
      return Math.sqrt(s);
    });
    if (norms.some((x) => x === 0)) continue;
    const gm = Math.exp(norms.reduce((a, x) => a + Math.log(x), 0) / norms.length);
    facs.forEach(([X, rows], f) => {
      const sc = gm / norms[f]!;
      for (let i = 0; i < rows; i++) X[i * r + k]! *= sc;
    });
  }
}
