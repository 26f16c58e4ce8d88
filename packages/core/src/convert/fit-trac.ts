/**
 * TRAC fits. Per module, A′ (`[n, r]`) and B′ (`[m, r]`) are 3-core tensor trains over
 * `tensor_shape` whose last two cores are shared by the modules of a matrix type (variant `trac`:
 * G2 frozen, G3 trainable, the module's controllers gating G3), and whose first core is the
 * module's own. r and lora_alpha are kept from the LoRA.
 *
 * - Factors to approximate: each module's ΔW = s·B Aᵀ in one of two gauges, `svd` (A = Q S^½/√s,
 *   B = P S^½/√s from ΔW = P S Qᵀ, computed factored) or `given` (the LoRA's own lora_Aᵀ and
 *   lora_B, balanced by a scalar).
 * - Init (per side and matrix type): `joint` (default) — right-to-left TT-SVD of the stacked
 *   unfoldings of all the type's modules (shared G3 = leading right singular subspace of
 *   [X_1⁽²⁾; X_2⁽²⁾; …], then shared G2 likewise, then G1 per module by least squares), or
 *   `average` — the per-module TT-SVDs (TRAC paper, Appendix B.1) with the shared cores averaged
 *   over the type and G1 refitted. Averaging cores whose TT gauges differ from module to module
 *   loses almost everything (measured: init error ≈ 0.997 on both real LoRAs at 10×, against
 *   0.68–0.73 for `joint`), so it is an option only. Both gauges are tried and the lower error is
 *   kept. Controllers start at the identity gate.
 * - Search: ranks are keyed by dimension (`tensor_rank_a` by n, `tensor_rank_b` by m). For every
 *   dimension and every (r1, r2) on a rank ladder the joint TT-SVD's error with the other side exact
 *   is known exactly from the discarded singular values; the parameter cost is a formula. A
 *   multiple-choice knapsack over the dimensions' Pareto fronts picks the lowest summed error
 *   within the budget; the best three combinations are initialized for real and the lowest error wins.
 * - Fit: L-BFGS / Adam on every fitted tensor; controllers through their activation.
 * - Budget: trainable parameters plus the frozen cores when they are fitted (`fitFrozen`, the
 *   default — a fitted frozen core carries information from the LoRA, so it is paid for).
 */
import { initParams } from '../methods/generic.js';
import type { TracConfig } from '../methods/trac/config.js';
import { DEFAULT_TRAC_TENSOR_SHAPE } from '../methods/trac/config.js';
import { type Side } from '../methods/trac/plan.js';
import { sideInfo, tracDifferentiable } from '../methods/trac/grad.js';
import type { ParamPlan, PlannedModule } from '../methods/types.js';

// The differentiable model lives with the method (shared with training); re-exported for callers of convert.
export { activate64 } from '../methods/trac/grad.js';
import { add } from './fit-loretta.js';
import { combineChoices, factor3, memo, rankLadder, sourceRank, type Candidate, type Choice, type FitContext, type MethodFitter } from './fitter.js';
import { matmul, matmulNT, singularValues, solveRightSym, svd, type Svd } from './linalg.js';
import { relError2, type FitModel } from './model.js';
import { moduleSvd, type FitUpdate, type TargetModule } from './target.js';
import { jointTtSvd, tailSq } from './tt.js';

type Gauge = 'svd' | 'given';

/** The module's factors (A `[n, r]`, B `[m, r]`) with s·B Aᵀ = ΔW, in a gauge. */
export function gaugeFactors(t: TargetModule, r: number, s: number, gauge: Gauge): { A: Float64Array; B: Float64Array } {
  const A = new Float64Array(t.n * r);
  const B = new Float64Array(t.m * r);
  if (gauge === 'svd') {
    const f = moduleSvd(t);
    for (let j = 0; j < Math.min(r, f.k); j++) {
      const w = Math.sqrt(f.S[j]! / s);
      for (let i = 0; i < t.n; i++) A[i * r + j] = f.Q[i * f.k + j]! * w;
      for (let o = 0; o < t.m; o++) B[o * r + j] = f.P[o * f.k + j]! * w;
    }
    return { A, B };
  }
  let na = 0;
  let nb = 0;
  for (let i = 0; i < t.n; i++) for (let j = 0; j < Math.min(r, t.r); j++) na += t.V[i * t.r + j]! ** 2;
  for (let o = 0; o < t.m; o++) for (let j = 0; j < Math.min(r, t.r); j++) nb += (t.U[o * t.r + j]! / s) ** 2;
  const c = na > 0 && nb > 0 ? Math.sqrt(Math.sqrt(nb / na)) : 1;
  for (let i = 0; i < t.n; i++) for (let j = 0; j < Math.min(r, t.r); j++) A[i * r + j] = t.V[i * t.r + j]! * c;
  for (let o = 0; o < t.m; o++) for (let j = 0; j < Math.min(r, t.r); j++) B[o * r + j] = t.U[o * t.r + j]! / s / c;
  return { A, B };
}

/** Keys fitted: every trainable tensor, plus the frozen ones when ctx.fitFrozen. */
function fittedKeys(ctx: FitContext, plan: ParamPlan): Set<string> {
  return new Set(plan.params.filter((p) => p.kind === 'trainable' || ctx.fitFrozen).map((p) => p.key));
}

/** Least squares X ≈ Y·G with G `[q, w]` given: Y = X Gᵀ (G Gᵀ)⁺ (`X [rows, w]` → `[rows, q]`). */
function lsRight(X: Float64Array, G: Float64Array, rows: number, q: number, w: number): Float64Array {
  return solveRightSym(matmulNT(X, G, rows, w, q), matmulNT(G, G, q, w, q), rows, q);
}

/**
 * Init one side of a sharing group (modules `Xs`, each `[∏sizes, r]`): shared G3 and G2 (unless
 * given = fixed), then G1 per module by least squares.
 */
function initGroupSide(
  Xs: Float64Array[],
  sizes: readonly number[],
  ranks: readonly number[],
  mode: 'joint' | 'average',
  fixed: { G2?: Float64Array; G3?: Float64Array },
  step1: (make: () => Svd) => Svd,
): { G1s: Float64Array[]; G2: Float64Array; G3: Float64Array } {
  const [d1, d2, d3] = sizes as [number, number, number];
  const [, q1, q2, r] = ranks as [number, number, number, number];
  let G3 = fixed.G3;
  let G2 = fixed.G2;
  if (mode === 'average' && (!G3 || !G2)) {
    const per = Xs.map((X) => jointTtSvd([X], sizes, r, [q1, q2]));
    const avg = (k: number) => {
      const out = new Float64Array(per[0]!.shared[k]!.length);
      for (const p of per) for (let i = 0; i < out.length; i++) out[i]! += p.shared[k]![i]! / per.length;
      return out;
    };
    G2 ??= avg(0);
    G3 ??= avg(1);
  }
  if (!G3) {
    const width = d3 * r;
    const rows = d1 * d2;
    const f = step1(() => {
      const Y = new Float64Array(Xs.length * rows * width);
      Xs.forEach((X, i) => Y.set(X, i * rows * width));
      return svd(Y, Xs.length * rows, width, { u: false });
    });
    G3 = new Float64Array(q2 * width);
    for (let c = 0; c < Math.min(q2, f.p); c++) for (let j = 0; j < width; j++) G3[c * width + j] = f.V[j * f.p + c]!;
  }
  // M_i ≈ X_i⁽≤2⁾ projected on G3: [d1·d2, q2].
  const Ms = Xs.map((X) => lsRight(X, G3!, d1 * d2, q2, d3 * r));
  if (!G2) {
    const width = d2 * q2;
    const Z = new Float64Array(Ms.length * d1 * width);
    Ms.forEach((M, i) => Z.set(M, i * d1 * width));
    const f = svd(Z, Ms.length * d1, width);
    G2 = new Float64Array(q1 * width);
    for (let c = 0; c < Math.min(q1, f.p); c++) for (let j = 0; j < width; j++) G2[c * width + j] = f.V[j * f.p + c]!;
  }
  const G1s = Ms.map((M) => lsRight(M, G2!, d1, q1, d2 * q2));
  return { G1s, G2, G3 };
}

function tracInit(ctx: FitContext, c: TracConfig, plan: ParamPlan, gauge: Gauge, mode: 'joint' | 'average'): Map<string, Float64Array> {
  const r = c.r;
  const s = c.lora_alpha / c.r;
  const fitted = fittedKeys(ctx, plan);
  const values = new Map<string, Float64Array>();
  const seeded = initParams(plan, { seed: ctx.seed });
  for (const p of plan.params) values.set(p.key, Float64Array.from(seeded.get(p.key)!.data));
  const byPath = new Map(ctx.target.modules.map((t) => [t.path, t]));
  const factors = new Map(plan.modules.map((m) => [m.path, memo(ctx, `gauge|${gauge}|${r}|${s}|${m.path}`, () => gaugeFactors(byPath.get(m.path)!, r, s, gauge))]));
  // Sharing groups: per type, or per module for all_trainable.
  const groups = new Map<string, PlannedModule[]>();
  for (const m of plan.modules) {
    const k = c.variant === 'all_trainable' ? m.path : m.type;
    if (!groups.has(k)) groups.set(k, []);
    groups.get(k)!.push(m);
  }
  for (const mods of groups.values()) {
    for (const side of ['A', 'B'] as const) {
      const info = sideInfo(c, mods[0]!, side);
      const Xs = mods.map((m) => factors.get(m.path)![side]);
      const fixed: { G2?: Float64Array; G3?: Float64Array } = {};
      if (!fitted.has(info.keys[1])) fixed.G2 = values.get(info.keys[1]);
      if (!fitted.has(info.keys[2])) fixed.G3 = values.get(info.keys[2]);
      const key = `step1|${gauge}|${side}|${info.sizes.join('x')}|${mods.map((m) => m.path).join(',')}`;
      const res = initGroupSide(Xs, info.sizes, info.ranks, mode, fixed, (make) => memo(ctx, key, make));
      values.set(info.keys[1], res.G2);
      values.set(info.keys[2], res.G3);
      mods.forEach((m, i) => {
        const k1 = sideInfo(c, m, side).keys[0];
        if (fitted.has(k1)) values.set(k1, res.G1s[i]!);
      });
    }
  }
  return values;
}

/**
 * Search tables of one sharing group (modules `Xs`, each `[∏sizes, r]`): for every q2 on the rank
 * ladder, the squared error of the joint right-to-left TT-SVD is tail1 (step 1, stacked
 * `[·, d3·r]` unfoldings) + tail2[q1] (step 2, stacked `[·, d2·q2]` unfoldings), exactly.
 */
export function rankLadderTails(
  Xs: Float64Array[],
  sizes: readonly number[],
  r: number,
  q2max: number,
  step1: (make: () => Svd) => Svd = (make) => make(),
): Map<number, { tail1: number; tail2: Float64Array }> {
  const [d1, d2, d3] = sizes as [number, number, number];
  const rows = d1 * d2;
  const width = d3 * r;
  const f = step1(() => {
    const Y = new Float64Array(Xs.length * rows * width);
    Xs.forEach((X, i) => Y.set(X, i * rows * width));
    return svd(Y, Xs.length * rows, width, { u: false });
  });
  const out = new Map<number, { tail1: number; tail2: Float64Array }>();
  for (const q2 of rankLadder(q2max)) {
    const W = new Float64Array(width * q2);
    for (let j = 0; j < width; j++) for (let c = 0; c < Math.min(q2, f.p); c++) W[j * q2 + c] = f.V[j * f.p + c]!;
    const w2 = d2 * q2;
    const Z = new Float64Array(Xs.length * d1 * w2);
    Xs.forEach((X, i) => Z.set(matmul(X, W, rows, width, q2), i * d1 * w2));
    const S2 = singularValues(Z, Xs.length * d1, w2);
    const tail2 = new Float64Array(S2.length + 2);
    for (let q1 = 0; q1 < tail2.length; q1++) tail2[q1] = tailSq(S2, q1);
    out.set(q2, { tail1: tailSq(f.S, q2), tail2 });
  }
  return out;
}

/** Default tensor_shape map for the dimensions present. */
function shapeMap(dimsList: number[]): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const d of dimsList) out[String(d)] = DEFAULT_TRAC_TENSOR_SHAPE[String(d)] ?? factor3(d);
  return out;
}

export const tracFitter: MethodFitter = {
  name: 'trac',
  rankFields: ['tensor_rank_a', 'tensor_rank_b'],

  defaults(ctx) {
    const { r, s } = sourceRank(ctx.target);
    const rr = typeof ctx.base.r === 'number' ? ctx.base.r : r;
    const out: Record<string, unknown> = { r: rr, lora_alpha: s * rr };
    if (ctx.base.tensor_shape === undefined) {
      out.tensor_shape = shapeMap([...new Set(ctx.target.modules.flatMap((m) => [m.n, m.m]))]);
    }
    return out;
  },

  candidates(ctx, budget) {
    const def = this.defaults(ctx);
    const r = def.r as number;
    const variant = (ctx.base.variant as string | undefined) ?? 'trac';
    const tensorShape = (ctx.base.tensor_shape ?? def.tensor_shape) as Record<string, number[]> | number[];
    const sizesFor = (d: number): [number, number, number] => {
      const v = Array.isArray(tensorShape) ? tensorShape : tensorShape[String(d)];
      return (v ?? factor3(d)) as [number, number, number];
    };
    const s = (def.lora_alpha as number) / r;
    const perModule = variant === 'all_trainable';
    const withCtl = variant === 'trac' || variant === 'frozen';
    const ff = ctx.fitFrozen;
    // Side groups by dimension: for each, the sharing groups (types or modules) and their factors.
    const groupChoices: Choice<{ side: Side; dim: number; q1: number; q2: number }>[][] = [];
    for (const side of ['A', 'B'] as const) {
      const byDim = new Map<number, TargetModule[]>();
      for (const t of ctx.target.modules) {
        const d = side === 'A' ? t.n : t.m;
        if (!byDim.has(d)) byDim.set(d, []);
        byDim.get(d)!.push(t);
      }
      for (const [dim, mods] of byDim) {
        const sizes = sizesFor(dim);
        const [d1, d2, d3] = sizes;
        const sharing = new Map<string, TargetModule[]>();
        for (const t of mods) {
          const k = perModule ? t.path : t.type;
          if (!sharing.has(k)) sharing.set(k, []);
          sharing.get(k)!.push(t);
        }
        const Xsets = [...sharing.values()].map((g) => g.map((t) => memo(ctx, `gauge|svd|${r}|${s}|${t.path}`, () => gaugeFactors(t, r, s, 'svd'))[side]));
        const maxRows = Math.min(...Xsets.map((x) => x.length));
        const q2max = Math.min(d3 * r, maxRows * d1 * d2);
        const groupsList = [...sharing.values()];
        const tables = Xsets.map((Xs, gi) =>
          rankLadderTails(Xs, sizes, r, q2max, (make) => memo(ctx, `step1|svd|${side}|${sizes.join('x')}|${groupsList[gi]!.map((t) => t.path).join(',')}`, make)),
        );
        const nMods = mods.length;
        const nShare = sharing.size;
        const choices: Choice<{ side: Side; dim: number; q1: number; q2: number }>[] = [];
        for (const q2 of tables[0]!.keys()) {
          const q1max = Math.min(maxRows * d1, d2 * q2);
          for (let q1 = 1; q1 <= q1max; q1++) {
            let err = 0;
            for (const tab of tables) {
              const row = tab.get(q2)!;
              err += row.tail1 + (row.tail2[q1] ?? 0);
            }
            let cost: number;
            if (perModule) cost = nMods * (d1 * q1 + q1 * d2 * q2 + q2 * d3 * r);
            else {
              cost = nMods * (d1 * q1 + (withCtl ? q2 + d3 : 0));
              const g2 = q1 * d2 * q2;
              const g3 = q2 * d3 * r;
              if (variant === 'frozen') cost += ff ? nShare * (g2 + g3) : 0;
              else cost += nShare * (g3 + (ff ? g2 : 0));
            }
            choices.push({ cost, err, pick: { side, dim, q1, q2 } });
          }
        }
        groupChoices.push(choices);
      }
    }
    const front = combineChoices(groupChoices, budget);
    const denom = ctx.target.norm2 > 0 ? ctx.target.norm2 : 1;
    return front
      .slice(-3)
      .reverse()
      .map((ch): Candidate => {
        const a: Record<string, number[]> = {};
        const b: Record<string, number[]> = {};
        for (const p of ch.pick) (p.side === 'A' ? a : b)[String(p.dim)] = [1, p.q1, p.q2];
        const config: Record<string, unknown> = { tensor_rank_a: a, tensor_rank_b: b };
        return { config, params: ch.cost, proxy: ch.err / denom };
      });
  },

  init(ctx, config, plan) {
    const c = config as unknown as TracConfig;
    const model = tracDifferentiable.model(config, plan);
    let best: Map<string, Float64Array> | undefined;
    let bestErr = Infinity;
    for (const gauge of ['svd', 'given'] as const) {
      const values = tracInit(ctx, c, plan, gauge, ctx.tracInit ?? 'joint');
      const e = relError2(model, ctx.target, values);
      if (e < bestErr) {
        bestErr = e;
        best = values;
      }
    }
    return { values: best! };
  },

  fitted: fittedKeys,

  model(_ctx, config, plan) {
    return tracDifferentiable.model(config, plan);
  },
};

