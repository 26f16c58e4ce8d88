/**
 * TensLoRA fits: per aggregated tensor (construction), a Tucker decomposition of the stacked LoRA
 * updates, fitted by HOOI (the alternating least-squares method of Tucker) on a small dense
 * tensor that is exactly equivalent to the full one:
 *
 * - every module's ΔWᵀ has its columns in span(V_all) (the group's A′ factors) and, without `att`,
 *   its rows in span(U_all); with orthonormal bases Q_V (n × K_V) and Q_U (m × K_U) the target
 *   tensor is represented in those coordinates (K ≤ Σ LoRA ranks), so the `in` / `out` modes have
 *   size K instead of n / m and nothing of size m × n is formed. With `att` the output is kept
 *   dense as (d/H, H) per module (d × K_V values per module).
 * - Init: truncated HOSVD, then HOOI sweeps; Uᵢₙ = Q_V Ũᵢₙ, U_out = Q_U Ũ_out, core = projection.
 *   (Module slices a construction has room for but the LoRA does not target, e.g. layers outside
 *   `layers_to_transform`, are zeros in the dense tensor.)
 * - Search: the truncated-HOSVD error bound Σ_k tail_k(R_k) (sum of the squared singular values
 *   each mode discards) is the proxy; for every construction that fits the modules (unless the
 *   config fixes one) the rank tuples on per-mode ladders are enumerated (the last output mode
 *   takes the largest rank that fits), the two best per construction are initialized for real and
 *   the lowest error wins.
 * - Fit: HOOI sweeps, then L-BFGS / Adam on core and factors (factors need not stay orthonormal).
 */
import { ShapeMismatchError } from '../errors.js';
import { parseMethodConfig } from '../methods/generic.js';
import { getMethod } from '../methods/registry.js';
import { CONSTRUCTIONS, type ModeName, type TensloraConfig } from '../methods/tenslora/config.js';
import { coreName, factorName, tensloraLayout, tuckerCount, type TensorGroup } from '../methods/tenslora/plan.js';
import { toPlanned } from '../methods/common.js';
import type { ParamPlan, PlannedModule } from '../methods/types.js';
import { streamFor } from '../util/prng.js';
import { add } from './fit-loretta.js';
import { rankLadder, type Candidate, type FitContext, type MethodFitter } from './fitter.js';
import { leadingLeft, matmul, matmulTN, qr, singularValues, svd } from './linalg.js';
import type { FitModel } from './model.js';
import { outRow, tensloraDifferentiable } from '../methods/tenslora/grad.js';
import type { FitUpdate, TargetModule } from './target.js';

/** Σ_{j ≥ k} x_j (x = squared singular values). */
function tailSum(x: Float64Array, k: number): number {
  let t = 0;
  for (let j = k; j < x.length; j++) t += x[j]!;
  return t;
}

function prod(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Mode-k product: `M [rows, dims[k]]` replaces mode k (size dims[k]) by `rows`. */
function modeProduct(t: Float64Array, dims: readonly number[], k: number, M: ArrayLike<number>, rows: number): Float64Array {
  const before = prod(dims.slice(0, k));
  const dk = dims[k]!;
  const after = prod(dims.slice(k + 1));
  const out = new Float64Array(before * rows * after);
  for (let b = 0; b < before; b++) {
    for (let i = 0; i < rows; i++) {
      const o = (b * rows + i) * after;
      for (let a = 0; a < dk; a++) {
        const u = M[i * dk + a]!;
        if (u === 0) continue;
        const src = (b * dk + a) * after;
        for (let c = 0; c < after; c++) out[o + c]! += u * t[src + c]!;
      }
    }
  }
  return out;
}

/** Mode-k unfolding `[dims[k], ∏ other dims]` (other modes in order). */
function unfold(t: Float64Array, dims: readonly number[], k: number): Float64Array {
  const before = prod(dims.slice(0, k));
  const dk = dims[k]!;
  const after = prod(dims.slice(k + 1));
  const out = new Float64Array(t.length);
  const cols = before * after;
  for (let b = 0; b < before; b++) for (let i = 0; i < dk; i++) for (let c = 0; c < after; c++) out[i * cols + b * after + c] = t[(b * dk + i) * after + c]!;
  return out;
}

function transposeM(A: ArrayLike<number>, m: number, n: number): Float64Array {
  const T = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) T[j * m + i] = A[i * n + j]!;
  return T;
}

/** Orthonormal basis of the columns of [X_1 … X_N] (`[rows, Σ k_i]`), at least `minCols` wide (seeded completion). */
function basis(Xs: { X: Float64Array; k: number }[], rows: number, minCols: number, seed: number, key: string): { Q: Float64Array; K: number } {
  const total = Xs.reduce((a, x) => a + x.k, 0);
  const extra = Math.max(0, Math.min(rows, minCols) - total);
  const cols = total + extra;
  const M = new Float64Array(rows * cols);
  let off = 0;
  for (const { X, k } of Xs) {
    for (let i = 0; i < rows; i++) for (let c = 0; c < k; c++) M[i * cols + off + c] = X[i * k + c]!;
    off += k;
  }
  if (extra > 0) {
    const g = streamFor(seed, key);
    for (let i = 0; i < rows; i++) for (let c = 0; c < extra; c++) M[i * cols + total + c] = g.normal();
  }
  // Rank-revealing via SVD: keep the directions with non-negligible singular values, then pad.
  const f = svd(M, rows, cols);
  const tol = (f.S[0] ?? 0) * 1e-12;
  let K = 0;
  while (K < f.p && f.S[K]! > tol) K++;
  K = Math.max(K, Math.min(rows, minCols));
  const Q = new Float64Array(rows * K);
  for (let i = 0; i < rows; i++) for (let c = 0; c < K; c++) Q[i * K + c] = f.U[i * f.p + c]!;
  return { Q, K };
}

/** The group's target as a dense tensor in reduced coordinates (plan mode order). */
interface GroupTensor {
  g: TensorGroup;
  dims: number[];
  data: Float64Array;
  QV: Float64Array;
  KV: number;
  QU?: Float64Array;
  KU?: number;
  norm2: number;
}


function groupTensor(
  c: TensloraConfig,
  g: TensorGroup,
  types: string[],
  byPath: Map<string, TargetModule>,
  numHeads: number,
  seed: number,
): GroupTensor {
  const mods = g.modules.map((m) => ({ m, t: byPath.get(m.path)! }));
  const rIn = g.ranks[0]!;
  const { Q: QV, K: KV } = basis(
    mods.map(({ t }) => ({ X: t.V, k: t.r })),
    g.n,
    rIn,
    seed,
    `convert.tenslora.${g.id}.in`,
  );
  const att = g.modes.includes('out_head');
  let QU: Float64Array | undefined;
  let KU: number | undefined;
  if (!att) {
    const rOut = g.ranks[g.modes.indexOf('out')]!;
    const b = basis(
      mods.map(({ t }) => ({ X: t.U, k: t.r })),
      g.m,
      rOut,
      seed,
      `convert.tenslora.${g.id}.out`,
    );
    QU = b.Q;
    KU = b.K;
  }
  const dims = g.modes.map((mode, i) => (mode === 'in' ? KV : mode === 'out' ? KU! : g.dims[i]!));
  const data = new Float64Array(prod(dims));
  const qi = g.modes.indexOf('qkv');
  const di = g.modes.indexOf('depth');
  const H = numHeads;
  const p = g.m / H;
  const strides = dims.map((_, i) => prod(dims.slice(i + 1)));
  for (const { m, t } of mods) {
    const VtQ = matmulTN(t.V, QV, t.n, t.r, KV); // [r, KV]
    let base = 0;
    if (qi >= 0) base += types.indexOf(m.type) * strides[qi]!;
    if (di >= 0) base += m.layer * strides[di]!;
    if (!att) {
      const UtQ = matmulTN(t.U, QU!, t.m, t.r, KU!); // [r, KU]
      // T̃ᵀ[κv, κu] = Σ_q VtQ[q, κv] UtQ[q, κu]
      const S = matmulTN(VtQ, UtQ, t.r, KV, KU!);
      for (let a = 0; a < KV; a++) for (let o = 0; o < KU!; o++) data[base + a * strides[0]! + o * strides[1]!]! += S[a * KU! + o]!;
    } else {
      const X = matmul(t.U, VtQ, t.m, t.r, KV); // [m, KV]
      for (let a = 0; a < KV; a++) {
        for (let h = 0; h < H; h++) {
          for (let j = 0; j < p; j++) {
            data[base + a * strides[0]! + j * strides[1]! + h * strides[2]!]! += X[outRow(c.head_layout, j, h, p, H) * KV + a]!;
          }
        }
      }
    }
  }
  let norm2 = 0;
  for (const x of data) norm2 += x * x;
  const out: GroupTensor = { g, dims, data, QV, KV, norm2 };
  if (QU) {
    out.QU = QU;
    out.KU = KU!;
  }
  return out;
}

/** Squared singular values of every mode unfolding (descending). */
function modeSpectra(gt: GroupTensor): Float64Array[] {
  return gt.dims.map((d, k) => {
    const U = unfold(gt.data, gt.dims, k);
    const S = singularValues(U, d, gt.data.length / d);
    return S.map((x) => x * x);
  });
}

/** Truncated HOSVD then `sweeps` HOOI sweeps; returns factors (reduced coordinates) and core. */
function hooi(gt: GroupTensor, ranks: readonly number[], sweeps: number, start?: Float64Array[]): { factors: Float64Array[]; core: Float64Array; err2: number } {
  const { dims, data } = gt;
  const N = dims.length;
  const factors: Float64Array[] =
    start ??
    dims.map((d, k) => {
      const U = unfold(data, dims, k);
      return leadingLeft(U, d, data.length / d, ranks[k]!).U;
    });
  const project = (skip: number): { t: Float64Array; dd: number[] } => {
    let t = data;
    const dd = [...dims];
    for (let j = 0; j < N; j++) {
      if (j === skip) continue;
      t = modeProduct(t, dd, j, transposeM(factors[j]!, dims[j]!, ranks[j]!), ranks[j]!);
      dd[j] = ranks[j]!;
    }
    return { t, dd };
  };
  for (let s = 0; s < sweeps; s++) {
    for (let k = 0; k < N; k++) {
      const { t, dd } = project(k);
      const U = unfold(t, dd, k);
      factors[k] = leadingLeft(U, dims[k]!, t.length / dims[k]!, ranks[k]!).U;
    }
  }
  let core = data;
  const dd = [...dims];
  for (let j = 0; j < N; j++) {
    core = modeProduct(core, dd, j, transposeM(factors[j]!, dims[j]!, ranks[j]!), ranks[j]!);
    dd[j] = ranks[j]!;
  }
  let c2 = 0;
  for (const x of core) c2 += x * x;
  return { factors, core, err2: Math.max(gt.norm2 - c2, 0) };
}

function parseTens(raw: Record<string, unknown>): TensloraConfig {
  return parseMethodConfig(getMethod('TENSLORA'), { peft_type: 'TENSLORA', ...raw }) as TensloraConfig;
}

/** Write a group's HOOI result into plan values (full coordinates). */
function storeGroup(gt: GroupTensor, res: { factors: Float64Array[]; core: Float64Array }, values: Map<string, Float64Array>, scaling: number): void {
  const g = gt.g;
  values.set(g.key(coreName), res.core.map((x) => x / scaling));
  g.modes.forEach((mode, k) => {
    const R = g.ranks[k]!;
    let U = res.factors[k]!;
    if (mode === 'in') U = matmul(gt.QV, U, g.n, gt.KV, R);
    else if (mode === 'out') U = matmul(gt.QU!, U, g.m, gt.KU!, R);
    values.set(g.key(factorName(mode)), U);
  });
}

/** Reduced-coordinate factors of the current values (for continuing HOOI). */
function reducedFactors(gt: GroupTensor, values: Map<string, Float64Array>): Float64Array[] {
  const g = gt.g;
  return g.modes.map((mode, k) => {
    const R = g.ranks[k]!;
    const U = values.get(g.key(factorName(mode)))!;
    let X = U;
    if (mode === 'in') X = matmulTN(gt.QV, U, g.n, gt.KV, R);
    else if (mode === 'out') X = matmulTN(gt.QU!, U, g.m, gt.KU!, R);
    // HOOI needs orthonormal columns: re-orthonormalize.
    const rows = mode === 'in' ? gt.KV : mode === 'out' ? gt.KU! : g.dims[k]!;
    return qr(X, rows, R).Q;
  });
}

interface Ctx2 {
  c: TensloraConfig;
  groups: GroupTensor[];
  types: string[];
}

function prepare(ctx: FitContext, c: TensloraConfig, plan: ParamPlan): Ctx2 {
  const layout = tensloraLayout(c, plan.modules, plan.numHeads, plan.numLayers);
  const byPath = new Map(ctx.target.modules.map((t) => [t.path, t]));
  return { c, types: layout.types, groups: layout.groups.map((g) => groupTensor(c, g, layout.types, byPath, plan.numHeads, ctx.seed)) };
}

export const tensloraFitter: MethodFitter = {
  name: 'tenslora',
  rankFields: ['ranks'],

  defaults() {
    return {};
  },

  candidates(ctx, budget) {
    const mods: PlannedModule[] = ctx.target.modules.map((t) => {
      const lm = ctx.shape.modules.find((m) => m.path === t.path);
      return lm ? toPlanned(lm) : { path: t.path, type: t.type, layer: t.layer, n: t.n, m: t.m, fanInFanOut: false };
    });
    const given = ctx.base.construction as string | undefined;
    const constructions = given !== undefined ? [given] : [...CONSTRUCTIONS];
    const byPath = new Map(ctx.target.modules.map((t) => [t.path, t]));
    const out: Candidate[] = [];
    let firstError: unknown;
    let anyLayout = false;
    const denom = ctx.target.norm2 > 0 ? ctx.target.norm2 : 1;
    for (const construction of constructions) {
      let c: TensloraConfig;
      let layout;
      try {
        c = parseTens({ ...ctx.base, construction, ranks: 1 });
        if (c.construction.includes('att')) {
          for (const m of mods) {
            if (m.m !== ctx.shape.hiddenSize || ctx.shape.hiddenSize % ctx.shape.numHeads !== 0) {
              throw new ShapeMismatchError(`TensLoRA construction ${construction} splits the output into heads, so targets need out = d; module ${m.path} does not`, {
                field: m.path,
                expected: `out = ${ctx.shape.hiddenSize}`,
                found: m.m,
              });
            }
          }
        }
        layout = tensloraLayout(c, mods, ctx.shape.numHeads, ctx.shape.numLayers);
      } catch (e) {
        firstError ??= e;
        continue;
      }
      anyLayout = true;
      // Full-rank tensors (ranks = the reduced mode sizes) to read the mode spectra.
      const spectra: { dims: number[]; realDims: number[]; spec: Float64Array[] }[] = layout.groups.map((g) => {
        const full = { ...g, ranks: g.modes.map((mode, i) => (mode === 'in' || mode === 'out' ? 1 : g.dims[i]!)) };
        const gt = groupTensor(c, full, layout.types, byPath, ctx.shape.numHeads, ctx.seed);
        return { dims: gt.dims, realDims: g.dims, spec: modeSpectra(gt) };
      });
      const N = layout.groups[0]!.modes.length;
      // Upper limits per mode: the smallest reduced size over groups.
      const maxR = Array.from({ length: N }, (_, k) => Math.min(...spectra.map((s) => s.dims[k]!)));
      const last = N > 1 ? 1 : 0; // the first output mode takes the largest rank that fits
      const ladders = maxR.map((mx, k) => (k === last ? [0] : rankLadder(mx)));
      const best: { ranks: number[]; proxy: number; cost: number }[] = [];
      const ranks = new Array<number>(N).fill(1);
      const rec = (k: number) => {
        if (k === N) {
          // Solve for the rank of mode `last`: cost = Σ_g (∏R + Σ dim·R) is linear in it.
          let fixedCost = 0;
          let slope = 0;
          const prodOthers = prod(ranks.filter((_, i) => i !== last));
          for (const s of spectra) {
            fixedCost += s.realDims.reduce((a, d, i) => (i === last ? a : a + d * ranks[i]!), 0);
            slope += prodOthers + s.realDims[last]!;
          }
          const rl = Math.min(maxR[last]!, Math.floor((budget - fixedCost) / slope));
          if (rl < 1) return;
          const rr = [...ranks];
          rr[last] = rl;
          let proxy = 0;
          for (const s of spectra) for (let i = 0; i < N; i++) proxy += tailSum(s.spec[i]!, rr[i]!);
          const cost = spectra.reduce((a, s) => a + tuckerCount(s.realDims, rr), 0);
          best.push({ ranks: rr, proxy, cost });
          return;
        }
        for (const q of ladders[k]!) {
          ranks[k] = k === last ? 1 : q;
          rec(k + 1);
        }
      };
      rec(0);
      best.sort((a, b) => a.proxy - b.proxy || b.cost - a.cost);
      for (const b of best.slice(0, 2)) out.push({ config: { construction, ranks: b.ranks }, params: b.cost, proxy: b.proxy / denom });
    }
    // No construction can aggregate these modules at all: say why (the first construction's error,
    // naming the module). Otherwise an empty list means the budget is too small.
    if (!anyLayout && firstError) throw firstError;
    return out;
  },

  init(ctx, config, plan) {
    const c = config as unknown as TensloraConfig;
    const p = prepare(ctx, c, plan);
    const values = new Map<string, Float64Array>();
    for (const gt of p.groups) storeGroup(gt, hooi(gt, gt.g.ranks, 3), values, c.scaling);
    return { values };
  },

  als(ctx, config, plan, values, sweeps, onSweep) {
    const c = config as unknown as TensloraConfig;
    const p = prepare(ctx, c, plan);
    for (let s = 0; s < sweeps; s++) {
      for (const gt of p.groups) storeGroup(gt, hooi(gt, gt.g.ranks, 1, reducedFactors(gt, values)), values, c.scaling);
      onSweep?.(s + 1);
    }
  },

  fitted(_ctx, plan) {
    return new Set(plan.params.map((q) => q.key));
  },

  model(_ctx, config, plan): FitModel {
    return tensloraDifferentiable.model(config, plan);
  },
};
