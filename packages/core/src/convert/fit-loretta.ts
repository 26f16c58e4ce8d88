/**
 * LoRETTA-rep fits. Per module, A′ (`[n, r]`) and B′ᵀ (`[r, m]`) are tensor trains over
 * `tensor_shape_a = [n1, n2, n3, r]` and `tensor_shape_b = [r, m1, m2, m3]` with ranks
 * `[1, t, t, t, 1]`. Putting the rank index in a core of its own makes the TT ranks independent of
 * the LoRA gauge (A′M, B′M⁻ᵀ only change that core), so any factorization of ΔW can be used.
 *
 * - Init: the module's truncated SVD ΔW ≈ P_r S_r Q_rᵀ, balanced as A′ = Q_r S_r^{½}/√s and
 *   B′ = P_r S_r^{½}/√s, then a TT-SVD of each factor.
 * - Search: for every r ≤ the LoRA rank, the largest t that fits the budget (t = tensor_rank is
 *   one value for the whole adapter); the caller keeps the candidate with the lowest init error.
 * - Fit: L-BFGS / Adam on all cores (everything is per module and trainable).
 */
import type { LorettaConfig } from '../methods/loretta/config.js';
import { lorettaCoreKey, lorettaFactors } from '../methods/loretta/plan.js';
import type { ParamPlan } from '../methods/types.js';
import { factor3, dims, sourceRank, type Candidate, type MethodFitter } from './fitter.js';
import type { FitModel } from './model.js';
import { moduleSvd } from './target.js';
import { ttSvd } from './tt.js';
import { lorettaDifferentiable, ranksOf } from '../methods/loretta/grad.js';

function ttCount(sizes: readonly number[], t: number): number {
  let c = 0;
  for (let k = 0; k < sizes.length; k++) c += (k === 0 ? 1 : t) * sizes[k]! * (k === sizes.length - 1 ? 1 : t);
  return c;
}

function shapesFor(ins: number[], outs: number[], r: number): { a: Record<string, number[]>; b: Record<string, number[]> } {
  const a: Record<string, number[]> = {};
  const b: Record<string, number[]> = {};
  for (const n of ins) a[String(n)] = [...factor3(n), r];
  for (const m of outs) b[String(m)] = [r, ...factor3(m)];
  return { a, b };
}

export const lorettaFitter: MethodFitter = {
  name: 'loretta',
  rankFields: ['r', 'tensor_rank', 'tensor_shape_a', 'tensor_shape_b'],

  defaults(ctx) {
    const { r, s } = sourceRank(ctx.target);
    const user = ctx.base;
    const rr = typeof user.r === 'number' ? user.r : r;
    const { ins, outs } = dims(ctx.target);
    const sh = shapesFor(ins, outs, rr);
    return { r: rr, lora_alpha: s * rr, tensor_shape_a: sh.a, tensor_shape_b: sh.b };
  },

  candidates(ctx, budget) {
    const { r: rSrc, s } = sourceRank(ctx.target);
    const { ins, outs } = dims(ctx.target);
    const out: Candidate[] = [];
    for (let r = 1; r <= rSrc; r++) {
      const sh = shapesFor(ins, outs, r);
      const cost = (t: number) => ctx.target.modules.reduce((acc, m) => acc + ttCount(sh.a[String(m.n)]!, t) + ttCount(sh.b[String(m.m)]!, t), 0);
      let t = 0;
      while (cost(t + 1) <= budget && t < 512) t++;
      if (t === 0) continue;
      out.push({ config: { r, lora_alpha: s * r, tensor_rank: t, tensor_shape_a: sh.a, tensor_shape_b: sh.b }, params: cost(t) });
    }
    return out;
  },

  init(ctx, config, plan) {
    const c = config as unknown as LorettaConfig;
    const s = c.lora_alpha / c.r;
    const values = new Map<string, Float64Array>();
    const byPath = new Map(ctx.target.modules.map((t) => [t.path, t]));
    for (const mod of plan.modules) {
      const t = byPath.get(mod.path)!;
      const f = moduleSvd(t);
      const r = c.r;
      const A = new Float64Array(mod.n * r);
      const Bt = new Float64Array(r * mod.m); // B′ᵀ as [r, m]
      for (let j = 0; j < Math.min(r, f.k); j++) {
        const w = Math.sqrt(f.S[j]! / s);
        for (let i = 0; i < mod.n; i++) A[i * r + j] = f.Q[i * f.k + j]! * w;
        for (let o = 0; o < mod.m; o++) Bt[j * mod.m + o] = f.P[o * f.k + j]! * w;
      }
      for (const [side, X] of [
        ['A', A],
        ['B', Bt],
      ] as const) {
        const sizes = lorettaFactors(c, side, mod);
        const tt = ttSvd(X, sizes, 1, ranksOf(sizes.length, c.tensor_rank).slice(1, -1));
        tt.cores.forEach((core, k) => values.set(lorettaCoreKey(mod.path, side, k), core));
      }
    }
    return { values };
  },

  fitted(_ctx, plan) {
    return new Set(plan.params.map((p) => p.key));
  },

  model(_ctx, config, plan: ParamPlan): FitModel {
    return lorettaDifferentiable.model(config, plan);
  },
};

export function add(dst: Float64Array | undefined, src: ArrayLike<number>): void {
  if (!dst) return;
  for (let i = 0; i < dst.length; i++) dst[i]! += src[i]!;
}
