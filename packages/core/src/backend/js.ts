/**
 * Pure-JS reference backend. Straightforward loops with float64 accumulation (JS numbers), so it
 * is the most accurate backend and the oracle the others are tested against; rounding to float32
 * happens once, when a result is stored.
 */
import { ShapeMismatchError } from '../errors.js';
import type { Backend, MatExpr, MaterializeJob, ModuleUpdate, TTCore, TTGate, TuckerMode, WeightLayout } from './types.js';

function fail(what: string, expected: unknown, found: unknown): never {
  throw new ShapeMismatchError(what, { expected, found });
}

/** Contract a TT chain into a `[∏ size_k, rRight_last]` float64 matrix. */
export function ttChain(cores: readonly TTCore[], gate?: TTGate): Float64Array {
  if (cores.length === 0) fail('TT chain needs at least one core', '≥ 1 core', 0);
  const first = cores[0]!;
  if (first.rLeft !== 1) fail('first TT core must have left rank 1', 1, first.rLeft);
  let P = 1;
  let r = 1;
  let acc: Float64Array = new Float64Array([1]);
  cores.forEach((core, idx) => {
    if (core.rLeft !== r) fail(`TT core ${idx} left rank does not match previous right rank`, r, core.rLeft);
    if (core.data.length !== core.rLeft * core.size * core.rRight) {
      fail(`TT core ${idx} data length`, core.rLeft * core.size * core.rRight, core.data.length);
    }
    const last = idx === cores.length - 1;
    const g = last ? gate : undefined;
    if (g && (g.rank.length !== core.rLeft || g.mode.length !== core.size)) {
      fail('TT gate lengths', [core.rLeft, core.size], [g.rank.length, g.mode.length]);
    }
    const { size, rRight } = core;
    const next = new Float64Array(P * size * rRight);
    for (let p = 0; p < P; p++) {
      for (let i = 0; i < size; i++) {
        const o = (p * size + i) * rRight;
        const gm = g ? g.mode[i]! : 1;
        for (let a = 0; a < r; a++) {
          const av = acc[p * r + a]! * (g ? g.rank[a]! * gm : 1);
          const c = (a * size + i) * rRight;
          for (let j = 0; j < rRight; j++) next[o + j]! += av * core.data[c + j]!;
        }
      }
    }
    acc = next;
    P *= size;
    r = rRight;
  });
  return acc;
}

/** Mode-k product of a tensor with a matrix `U: [rows, dims[k]]` (rows = 1 and drop for a vector). */
function modeProduct(t: Float64Array, dims: number[], k: number, U: ArrayLike<number>, rows: number): Float64Array {
  const before = dims.slice(0, k).reduce((a, b) => a * b, 1);
  const Rk = dims[k]!;
  const after = dims.slice(k + 1).reduce((a, b) => a * b, 1);
  const out = new Float64Array(before * rows * after);
  for (let b = 0; b < before; b++) {
    for (let i = 0; i < rows; i++) {
      const o = (b * rows + i) * after;
      for (let a = 0; a < Rk; a++) {
        const u = U[i * Rk + a]!;
        const src = (b * Rk + a) * after;
        for (let c = 0; c < after; c++) out[o + c]! += u * t[src + c]!;
      }
    }
  }
  return out;
}

/** Tucker reconstruction per mode op, then permutation of the surviving modes. */
export function tucker(core: Float32Array, coreDims: number[], modes: readonly TuckerMode[], order: readonly number[]): Float64Array {
  if (modes.length !== coreDims.length) fail('Tucker: one mode op per core mode', coreDims.length, modes.length);
  const total = coreDims.reduce((a, b) => a * b, 1);
  if (core.length !== total) fail('Tucker core length', total, core.length);
  let t: Float64Array = Float64Array.from(core);
  let dims = [...coreDims];
  // Track which original modes survive, to apply ops in any order and drop contracted ones.
  let alive = modes.map((_, i) => i);
  // Vectors first: they shrink the tensor before any expansion.
  const sequence = [...modes.keys()].sort((x, y) => Number(modes[y]!.op === 'vector') - Number(modes[x]!.op === 'vector'));
  for (const mi of sequence) {
    const op = modes[mi]!;
    const k = alive.indexOf(mi);
    if (op.op === 'keep') continue;
    if (op.op === 'vector') {
      if (op.v.length !== dims[k]) fail(`Tucker mode ${mi} vector length`, dims[k], op.v.length);
      t = modeProduct(t, dims, k, op.v, 1);
      dims.splice(k, 1);
      alive = alive.filter((x) => x !== mi);
    } else {
      if (op.U.length !== op.rows * dims[k]!) fail(`Tucker mode ${mi} factor size`, op.rows * dims[k]!, op.U.length);
      t = modeProduct(t, dims, k, op.U, op.rows);
      dims[k] = op.rows;
    }
  }
  if (order.length !== dims.length || [...order].sort((a, b) => a - b).some((v, i) => v !== i)) {
    fail('Tucker output order must be a permutation of the surviving modes', dims.length, order);
  }
  if (order.every((v, i) => v === i)) return t;
  const outDims = order.map((o) => dims[o]!);
  const strides = dims.map((_, i) => dims.slice(i + 1).reduce((a, b) => a * b, 1));
  const out = new Float64Array(t.length);
  const idx = new Array<number>(outDims.length).fill(0);
  for (let lin = 0; lin < out.length; lin++) {
    let src = 0;
    for (let d = 0; d < outDims.length; d++) src += idx[d]! * strides[order[d]!]!;
    out[lin] = t[src]!;
    for (let d = outDims.length - 1; d >= 0; d--) {
      if (++idx[d]! < outDims[d]!) break;
      idx[d] = 0;
    }
  }
  return out;
}

function transposeInto(src: ArrayLike<number>, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = src[i * cols + j]!;
  return out;
}

/** Evaluate a MatExpr to a float32 `[rows, cols]` (after any transpose) array. */
export function evaluateExpr(e: MatExpr): Float32Array {
  switch (e.kind) {
    case 'tt': {
      const full = ttChain(e.cores, e.gate);
      if (full.length !== e.rows * e.cols) fail('TT result size vs requested view', e.rows * e.cols, full.length);
      return e.transpose ? transposeInto(full, e.rows, e.cols) : Float32Array.from(full);
    }
    case 'dense': {
      if (e.src.length !== e.rows * e.cols) fail('dense source size', e.rows * e.cols, e.src.length);
      if (e.takeRows > e.rows || e.takeCols > e.cols) fail('dense block larger than source', [e.rows, e.cols], [e.takeRows, e.takeCols]);
      const oR = e.transpose ? e.takeCols : e.takeRows;
      const oC = e.transpose ? e.takeRows : e.takeCols;
      if (e.rowScale && e.rowScale.length !== oR) fail('dense rowScale length', oR, e.rowScale.length);
      if (e.colScale && e.colScale.length !== oC) fail('dense colScale length', oC, e.colScale.length);
      const out = new Float32Array(oR * oC);
      for (let i = 0; i < oR; i++) {
        const rs = e.rowScale ? e.rowScale[i]! : 1;
        for (let j = 0; j < oC; j++) {
          const v = e.transpose ? e.src[j * e.cols + i]! : e.src[i * e.cols + j]!;
          out[i * oC + j] = v * rs * (e.colScale ? e.colScale[j]! : 1);
        }
      }
      return out;
    }
    case 'cp': {
      const { p, q, r } = e;
      if (e.inner.length !== p * r) fail('cp inner size', p * r, e.inner.length);
      if (e.outer.length !== q * r) fail('cp outer size', q * r, e.outer.length);
      if (e.scale && e.scale.length !== r) fail('cp scale length', r, e.scale.length);
      const out = new Float32Array(q * p * r);
      for (let h = 0; h < q; h++)
        for (let j = 0; j < p; j++)
          for (let k = 0; k < r; k++) out[(h * p + j) * r + k] = e.outer[h * r + k]! * e.inner[j * r + k]! * (e.scale ? e.scale[k]! : 1);
      return out;
    }
    case 'tucker': {
      const t = tucker(e.core, e.coreDims, e.modes, e.order);
      if (t.length !== e.rows * e.cols) fail('Tucker result size vs requested view', e.rows * e.cols, t.length);
      return Float32Array.from(t);
    }
  }
}

export function checkUpdate(u: ModuleUpdate): void {
  if (u.A.length !== u.n * u.rho) fail(`A′ of ${u.path} must be [n, ρ]`, [u.n, u.rho], u.A.length);
  if (u.B.length !== u.m * u.rho) fail(`B′ of ${u.path} must be [m, ρ]`, [u.m, u.rho], u.B.length);
}

export function materializeJob(j: MaterializeJob): ModuleUpdate {
  const u: ModuleUpdate = { path: j.path, n: j.n, m: j.m, rho: j.rho, s: j.s, A: evaluateExpr(j.a), B: evaluateExpr(j.b) };
  checkUpdate(u);
  return u;
}

export function mergeInto(W: Float32Array, layout: WeightLayout, u: ModuleUpdate): void {
  checkUpdate(u);
  const { n, m, rho, s, A, B } = u;
  if (W.length !== n * m) fail(`weight of ${u.path}`, [m, n], W.length);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let acc = 0;
      for (let k = 0; k < rho; k++) acc += B[i * rho + k]! * A[j * rho + k]!;
      const idx = layout === 'out_in' ? i * n + j : j * m + i;
      W[idx] = W[idx]! + s * acc;
    }
  }
}

export function applyBranch(X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): void {
  checkUpdate(u);
  const { n, m, rho, s, A, B } = u;
  if (X.length !== rows * n) fail('branch input X', [rows, n], X.length);
  if (Y.length !== rows * m) fail('branch output Y', [rows, m], Y.length);
  const t = new Float64Array(rho);
  for (let r = 0; r < rows; r++) {
    t.fill(0);
    for (let j = 0; j < n; j++) {
      const x = X[r * n + j]!;
      for (let k = 0; k < rho; k++) t[k]! += x * A[j * rho + k]!;
    }
    for (let i = 0; i < m; i++) {
      let acc = 0;
      for (let k = 0; k < rho; k++) acc += t[k]! * B[i * rho + k]!;
      Y[r * m + i] = Y[r * m + i]! + s * acc;
    }
  }
}

export class JsBackend implements Backend {
  readonly name = 'js';
  async evaluate(expr: MatExpr): Promise<Float32Array> {
    return evaluateExpr(expr);
  }
  async materialize(jobs: readonly MaterializeJob[]): Promise<ModuleUpdate[]> {
    return jobs.map(materializeJob);
  }
  async merge(W: Float32Array, layout: WeightLayout, u: ModuleUpdate): Promise<void> {
    mergeInto(W, layout, u);
  }
  async apply(X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): Promise<void> {
    applyBranch(X, Y, rows, u);
  }
}

/** Dense ΔW = s · B′ A′ᵀ as `[m, n]` (tests, diff, export checks). */
export function deltaW(u: ModuleUpdate): Float32Array {
  const W = new Float32Array(u.m * u.n);
  mergeInto(W, 'out_in', u);
  return W;
}
