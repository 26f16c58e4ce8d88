/**
 * Backend selftest: every kernel on random shapes (odd, non-multiple-of-4 sizes and rank 1
 * included), plus whole adapters of every registered method on a tiny model, against the JS
 * reference backend. Used by `tensorpeft selftest` and by the tests.
 *
 * Tolerance (why it is what it is). The JS reference accumulates in float64 and rounds once; the
 * backend under test accumulates in float32. Every kernel output is a sum of products of inputs,
 * and the classic bound for float32 summation of K terms, each a product of d factors, is
 * |x − exact| ≤ γ·Σ|terms|, γ ≈ (K + d − 1)·2⁻²⁴, whatever the summation order (SIMD lanes,
 * blocking). Σ|terms| is exactly what the JS reference computes on the absolute values of all
 * inputs (`|y|`), so each case must satisfy
 *
 *     ‖x − y‖∞ ≤ (K_eff + 2) · 2⁻²⁴ · ‖|y|‖∞
 *
 * with K_eff the rounding steps along a term's path (summation length K plus the multiplications:
 * TT: Σ_k rLeft_k + 2 for the gate; Tucker: Σ R_k over contracted modes; merge: ρ + 2; apply:
 * n + ρ + 2; dense and CP: 2) and +2 for the reference's own rounding of y and |y|. The bound is
 * linear in K (the worst case); random data typically lands near √K·2⁻²⁴. The reported
 * `max_rel_err` is the norm-wise ‖x − y‖∞ / ‖y‖∞ per case, maximized over cases;
 * `max_err_over_bound` ≤ 1 means every case is inside its bound.
 */
import {
  buildShape,
  createAdapter,
  JsBackend,
  listMethods,
  materializeAdapter,
  Prng,
  type Backend,
  type MatExpr,
  type MaterializeJob,
  type ModuleUpdate,
  type TTCore,
  type TuckerMode,
  type WeightLayout,
} from '@tensorpeft/core';

export const U32 = 2 ** -24;
export const SELFTEST_TOLERANCE = '‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞ per case (K_eff = summation length + multiplications; |y| = JS reference on |inputs|)';

export interface SelftestCase {
  kernel: string;
  shape: string;
  /** ‖x − y‖∞ / ‖y‖∞ (the worst array of the case). */
  rel_err: number;
  /** ‖x − y‖∞ / ((K_eff + 2)·2⁻²⁴·‖|y|‖∞): ≤ 1 passes. */
  err_over_bound: number;
  passed: boolean;
  error?: string;
}

export interface SelftestResult {
  backend: string;
  passed: number;
  failed: number;
  max_rel_err: number;
  max_err_over_bound: number;
  tolerance: string;
  failures: SelftestCase[];
  cases?: SelftestCase[];
}

export interface SelftestOptions {
  seed?: number;
  /** Rounds of random cases (each round: every kernel once). Default 12. */
  rounds?: number;
  /** Include realistic shapes (BERT-base TRAC module, 768×768 merge, 64-row apply). Default true. */
  realistic?: boolean;
  /** Keep every case in the result. */
  keepCases?: boolean;
}

// ---------------------------------------------------------------------------------------------
// Random data

class Gen {
  private readonly g: Prng;
  constructor(seed: number) {
    this.g = new Prng(seed >>> 0, 'selftest');
  }
  int(lo: number, hi: number): number {
    return lo + (this.g.next() % (hi - lo + 1));
  }
  bool(p = 0.5): boolean {
    return this.g.uniform() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  /** Values in (−1, 1), some exact zeros. */
  data(len: number): Float32Array {
    const out = new Float32Array(len);
    for (let i = 0; i < len; i++) out[i] = this.g.uniform() < 0.05 ? 0 : 2 * this.g.uniform() - 1;
    return out;
  }
  positive(len: number): Float32Array {
    const out = new Float32Array(len);
    for (let i = 0; i < len; i++) out[i] = 0.25 + 1.5 * this.g.uniform();
    return out;
  }
  /** A size biased to odd and non-multiple-of-4 values, 1 included. */
  size(max: number): number {
    return this.bool(0.15) ? 1 : this.int(1, max);
  }
}

const abs = (a: Float32Array): Float32Array => a.map(Math.abs);

export function absExpr(e: MatExpr): MatExpr {
  switch (e.kind) {
    case 'tt':
      return { ...e, cores: e.cores.map((c) => ({ ...c, data: abs(c.data) })), gate: e.gate && { rank: abs(e.gate.rank), mode: abs(e.gate.mode) } };
    case 'dense':
      return { ...e, src: abs(e.src), rowScale: e.rowScale && abs(e.rowScale), colScale: e.colScale && abs(e.colScale) };
    case 'cp':
      return { ...e, inner: abs(e.inner), outer: abs(e.outer), scale: e.scale && abs(e.scale) };
    case 'tucker':
      return {
        ...e,
        core: abs(e.core),
        modes: e.modes.map((m): TuckerMode => (m.op === 'vector' ? { op: 'vector', v: abs(m.v) } : m.op === 'matrix' ? { ...m, U: abs(m.U) } : m)),
      };
  }
}

/** Rounding steps along one term's path (see the file comment). */
export function exprDepth(e: MatExpr): number {
  switch (e.kind) {
    case 'tt':
      return e.cores.slice(1).reduce((a, c) => a + c.rLeft, 0) + 2;
    case 'dense':
    case 'cp':
      return 2;
    case 'tucker':
      return e.modes.reduce((a, m, i) => a + (m.op === 'keep' ? 0 : e.coreDims[i]!), 0) + 1;
  }
}

const absUpdate = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: abs(u.A), B: abs(u.B) });

function normInf(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** Compare one output array; returns [rel_err, err_over_bound]. */
export function compareArrays(x: Float32Array, y: Float32Array, yAbs: Float32Array, depth: number): [number, number] {
  if (x.length !== y.length) return [Infinity, Infinity];
  let err = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.abs(x[i]! - y[i]!);
    err = d > err || Number.isNaN(d) ? d : err;
  }
  const ny = normInf(y);
  const bound = (depth + 2) * U32 * normInf(yAbs);
  const rel = err === 0 ? 0 : ny === 0 ? Infinity : err / ny;
  const ratio = err === 0 ? 0 : bound === 0 ? Infinity : err / bound;
  return [Number.isNaN(err) ? NaN : rel, Number.isNaN(err) ? NaN : ratio];
}

// ---------------------------------------------------------------------------------------------
// Random expressions

function factorPair(total: number, g: Gen): [number, number] {
  const divs: number[] = [];
  for (let d = 1; d <= total; d++) if (total % d === 0) divs.push(d);
  const r = g.pick(divs);
  return [r, total / r];
}

function randomTT(g: Gen): MatExpr {
  const nCores = g.int(1, 4);
  const cores: TTCore[] = [];
  let r = 1;
  for (let k = 0; k < nCores; k++) {
    const size = g.size(k === nCores - 1 ? 9 : 7);
    const rRight = k === nCores - 1 ? g.size(13) : g.size(9);
    cores.push({ data: g.data(r * size * rRight), rLeft: r, size, rRight });
    r = rRight;
  }
  const total = cores.reduce((a, c) => a * c.size, 1) * r;
  const [rows, cols] = factorPair(total, g);
  const last = cores[cores.length - 1]!;
  const e: MatExpr = { kind: 'tt', cores, rows, cols, transpose: g.bool() };
  if (g.bool(0.6)) e.gate = { rank: g.positive(last.rLeft), mode: g.positive(last.size) };
  return e;
}

function randomDense(g: Gen): MatExpr {
  const rows = g.size(37);
  const cols = g.size(37);
  const takeRows = g.int(1, rows);
  const takeCols = g.int(1, cols);
  const transpose = g.bool();
  const oR = transpose ? takeCols : takeRows;
  const oC = transpose ? takeRows : takeCols;
  const e: MatExpr = { kind: 'dense', src: g.data(rows * cols), rows, cols, takeRows, takeCols, transpose };
  if (g.bool()) e.rowScale = g.data(oR);
  if (g.bool()) e.colScale = g.data(oC);
  return e;
}

function randomCp(g: Gen): MatExpr {
  const p = g.size(23);
  const q = g.size(9);
  const r = g.size(19);
  const e: MatExpr = { kind: 'cp', inner: g.data(p * r), p, outer: g.data(q * r), q, r };
  if (g.bool()) e.scale = g.data(r);
  return e;
}

function randomTucker(g: Gen): MatExpr {
  const nModes = g.int(1, 4);
  const coreDims = Array.from({ length: nModes }, () => g.size(6));
  const modes: TuckerMode[] = coreDims.map((R) => {
    const kind = g.int(0, 2);
    if (kind === 0) return { op: 'vector', v: g.data(R) };
    if (kind === 1) {
      const rows = g.size(21);
      return { op: 'matrix', U: g.data(rows * R), rows };
    }
    return { op: 'keep' };
  });
  const surviving = modes.map((m, i) => (m.op === 'vector' ? 0 : m.op === 'matrix' ? m.rows : coreDims[i]!)).filter((_, i) => modes[i]!.op !== 'vector');
  const order = surviving.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = g.int(0, i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const total = surviving.reduce((a, b) => a * b, 1);
  const [rows, cols] = factorPair(total, g);
  return { kind: 'tucker', core: g.data(coreDims.reduce((a, b) => a * b, 1)), coreDims, modes, order, rows, cols };
}

function shapeOf(e: MatExpr): string {
  switch (e.kind) {
    case 'tt':
      return `cores ${e.cores.map((c) => `${c.rLeft}x${c.size}x${c.rRight}`).join(',')} -> ${e.rows}x${e.cols}${e.transpose ? 'ᵀ' : ''}${e.gate ? ' gated' : ''}`;
    case 'dense':
      return `${e.rows}x${e.cols} take ${e.takeRows}x${e.takeCols}${e.transpose ? 'ᵀ' : ''}${e.rowScale ? ' rs' : ''}${e.colScale ? ' cs' : ''}`;
    case 'cp':
      return `p${e.p} q${e.q} r${e.r}${e.scale ? ' scaled' : ''}`;
    case 'tucker':
      return `core ${e.coreDims.join('x')} ops ${e.modes.map((m) => (m.op === 'matrix' ? `U${m.rows}` : m.op[0])).join(',')} order ${e.order.join(',')}`;
  }
}

/** A module job whose A′ [n, ρ] and B′ [m, ρ] are random expressions of each kind. */
function randomJob(g: Gen, i: number, shared: Float32Array): MaterializeJob {
  const rho = g.size(7);
  const n = g.size(29);
  const m = g.size(29);
  const a: MatExpr = g.bool()
    ? { kind: 'tt', cores: [{ data: g.data(n * 2), rLeft: 1, size: n, rRight: 2 }, { data: g.data(2 * rho), rLeft: 2, size: 1, rRight: rho }], rows: n, cols: rho }
    : { kind: 'dense', src: g.data(n * rho), rows: n, cols: rho, takeRows: n, takeCols: rho };
  const b: MatExpr = g.bool()
    ? { kind: 'dense', src: shared, rows: 29, cols: 7, takeRows: m, takeCols: rho, rowScale: g.data(m) }
    : { kind: 'cp', inner: g.data(m * rho), p: m, outer: g.data(rho), q: 1, r: rho };
  return { path: `m${i}`, n, m, rho, s: 2 * g.data(1)[0]!, a, b };
}

// ---------------------------------------------------------------------------------------------
// Tiny adapters of every method (hidden 18 = 2·3·3, 3 heads, odd sizes everywhere).

const tinyShape = () => buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');

export const TINY_CONFIGS: Record<string, Record<string, unknown>[]> = {
  LORA: [{ r: 3, lora_alpha: 6 }, { r: 1, lora_alpha: 1 }],
  VERA: [{ r: 5 }],
  TRAC: [
    { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] },
    { r: 1, lora_alpha: 2, tensor_shape: [3, 2, 3], tensor_rank_a: [1, 1, 1], tensor_rank_b: [1, 3, 3], controller_activation: 'exp' },
  ],
  LORETTA: [{ r: 2, lora_alpha: 4, tensor_rank: 3, tensor_shape_a: [3, 3, 4], tensor_shape_b: [2, 3, 6] }],
  LORTA: [{ r: 3, lora_alpha: 3 }, { r: 1, lora_alpha: 1 }],
  TENSLORA: [
    { construction: 'att_qkv_depth', ranks: [5, 3, 2, 2, 2], head_layout: 'interleaved' },
    { construction: 'qkv_depth', ranks: 3 },
    { construction: 'att', ranks: [4, 5, 3], target_modules: ['query', 'value'] },
  ],
};

// ---------------------------------------------------------------------------------------------

export async function runSelftest(backend: Backend, opts: SelftestOptions = {}): Promise<SelftestResult> {
  const ref = new JsBackend();
  const g = new Gen(opts.seed ?? 1);
  const cases: SelftestCase[] = [];

  const record = async (kernel: string, shape: string, fn: () => Promise<Array<[Float32Array, Float32Array, Float32Array, number]>>) => {
    try {
      const outs = await fn();
      let rel = 0;
      let ratio = 0;
      for (const [x, y, yAbs, depth] of outs) {
        const [r, q] = compareArrays(x, y, yAbs, depth);
        rel = Number.isNaN(r) || r > rel ? r : rel;
        ratio = Number.isNaN(q) || q > ratio ? q : ratio;
      }
      cases.push({ kernel, shape, rel_err: rel, err_over_bound: ratio, passed: ratio <= 1 });
    } catch (e) {
      cases.push({ kernel, shape, rel_err: NaN, err_over_bound: NaN, passed: false, error: (e as Error).message });
    }
  };

  const evalCase = (e: MatExpr) =>
    record(`evaluate:${e.kind}`, shapeOf(e), async () => [[await backend.evaluate(e), await ref.evaluate(e), await ref.evaluate(absExpr(e)), exprDepth(e)]]);

  const mergeCase = (m: number, n: number, rho: number, layout: WeightLayout) => {
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: 0.5 + g.data(1)[0]!, A: g.data(n * rho), B: g.data(m * rho) };
    const W0 = g.data(m * n);
    return record(`merge:${layout}`, `${m}x${n}x${rho}`, async () => {
      const x = W0.slice();
      const y = W0.slice();
      const yAbs = abs(W0);
      await backend.merge(x, layout, u);
      await ref.merge(y, layout, u);
      await ref.merge(yAbs, layout, absUpdate(u));
      return [[x, y, yAbs, rho + 2]];
    });
  };

  const applyCase = (rows: number, n: number, m: number, rho: number) => {
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: g.data(1)[0]! - 1.5, A: g.data(n * rho), B: g.data(m * rho) };
    const X = g.data(rows * n);
    const Y0 = g.data(rows * m);
    return record('apply', `${rows} rows, n${n} m${m} ρ${rho}`, async () => {
      const x = Y0.slice();
      const y = Y0.slice();
      const yAbs = abs(Y0);
      await backend.apply(X, x, rows, u);
      await ref.apply(X, y, rows, u);
      await ref.apply(abs(X), yAbs, rows, absUpdate(u));
      return [[x, y, yAbs, n + rho + 2]];
    });
  };

  const jobsCase = (kernel: string, shape: string, jobs: MaterializeJob[]) =>
    record(kernel, shape, async () => {
      const xs = await backend.materialize(jobs);
      const ys = await ref.materialize(jobs);
      const as = await ref.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
      if (xs.length !== ys.length) throw new Error(`${xs.length} updates, reference has ${ys.length}`);
      const out: Array<[Float32Array, Float32Array, Float32Array, number]> = [];
      xs.forEach((x, i) => {
        const y = ys[i]!;
        if (x.path !== y.path || x.n !== y.n || x.m !== y.m || x.rho !== y.rho || x.s !== y.s) {
          throw new Error(`module ${i}: (path, n, m, ρ, s) = ${JSON.stringify([x.path, x.n, x.m, x.rho, x.s])}, reference ${JSON.stringify([y.path, y.n, y.m, y.rho, y.s])}`);
        }
        out.push([x.A, y.A, as[i]!.A, exprDepth(jobs[i]!.a)], [x.B, y.B, as[i]!.B, exprDepth(jobs[i]!.b)]);
      });
      return out;
    });

  const rounds = opts.rounds ?? 12;
  for (let round = 0; round < rounds; round++) {
    await evalCase(randomTT(g));
    await evalCase(randomTT(g));
    await evalCase(randomDense(g));
    await evalCase(randomCp(g));
    await evalCase(randomTucker(g));
    await evalCase(randomTucker(g));
    await mergeCase(g.size(43), g.size(43), g.size(19), 'out_in');
    await mergeCase(g.size(43), g.size(43), g.size(19), 'in_out');
    await applyCase(g.size(9), g.size(45), g.size(45), g.size(19));
    const shared = g.data(29 * 7);
    const jobs = Array.from({ length: g.int(1, 5) }, (_, i) => randomJob(g, i, shared));
    await jobsCase('materialize:batch', `${jobs.length} jobs`, jobs);
  }

  if (opts.realistic ?? true) {
    // BERT-base shapes: a TRAC module (768 = 8·8·12, ranks A [1,8,12], B [1,24,36], r = 16), a
    // 768×768×16 merge in both layouts, and a 64-row branch apply.
    const core = (rLeft: number, size: number, rRight: number): TTCore => ({ data: g.data(rLeft * size * rRight), rLeft, size, rRight });
    await evalCase({ kind: 'tt', cores: [core(1, 8, 8), core(8, 8, 12), core(12, 12, 16)], gate: { rank: g.positive(12), mode: g.positive(12) }, rows: 768, cols: 16 });
    await evalCase({ kind: 'tt', cores: [core(1, 8, 24), core(24, 8, 36), core(36, 12, 16)], gate: { rank: g.positive(36), mode: g.positive(12) }, rows: 768, cols: 16 });
    await mergeCase(768, 768, 16, 'out_in');
    await mergeCase(768, 2304, 16, 'in_out');
    await applyCase(64, 768, 768, 16);
  }

  // Whole adapters of every registered method on a tiny model.
  const shape = tinyShape();
  for (const method of listMethods()) {
    for (const config of TINY_CONFIGS[method.peftType] ?? [{}]) {
      let adapter;
      try {
        adapter = createAdapter({ method, config, shape, seed: g.int(0, 1000), nonzero: true });
      } catch {
        continue; // a method registered by someone else, with no tiny config that fits
      }
      const jobs = adapter.method.jobs(adapter.config, adapter.plan, adapter.params);
      await jobsCase(`materialize:${method.cliName}`, `tiny-bert ${JSON.stringify(config)}`, jobs);
      // And through core's own entry point, which must pick this backend's batched call.
      await record(`materializeAdapter:${method.cliName}`, `tiny-bert ${JSON.stringify(config)}`, async () => {
        const xs = await materializeAdapter(adapter, backend);
        const ys = await materializeAdapter(adapter, ref);
        const as = await ref.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
        return xs.flatMap((x, i) => [
          [x.A, ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a)],
          [x.B, ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b)],
        ]) as Array<[Float32Array, Float32Array, Float32Array, number]>;
      });
    }
  }

  const failures = cases.filter((c) => !c.passed);
  const finite = (v: number) => (Number.isFinite(v) ? v : 0);
  const result: SelftestResult = {
    backend: backend.name,
    passed: cases.length - failures.length,
    failed: failures.length,
    // Non-finite errors only occur in failed cases, which are listed in `failures`.
    max_rel_err: Math.max(0, ...cases.map((c) => finite(c.rel_err))),
    max_err_over_bound: Math.max(0, ...cases.map((c) => finite(c.err_over_bound))),
    tolerance: SELFTEST_TOLERANCE,
    failures,
  };
  if (opts.keepCases) result.cases = cases;
  return result;
}
