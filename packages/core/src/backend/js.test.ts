/**
 * The JS backend is the oracle for every other backend, so it is checked here against naive
 * formulas written straight from the definitions in types.ts (explicit index sums, no shared
 * helpers), in float64.
 *
 * Tolerance. The backend accumulates in float64 and rounds to float32 once; the naive references
 * below are float64 too, summed in another order. So |got − ref| ≤ ½ ulp₃₂(ref) from the single
 * float32 rounding (≤ 2⁻²⁴·|ref|) plus the float64 reordering error (≤ k·2⁻⁵³·Σ|terms|, k ≤ a few
 * hundred here). We allow 2⁻²³·|ref| + 1e-13·Σ|terms|: a factor of 2 on the float32 rounding
 * (double rounding of a product of three float32 values may land one float32 ulp off) and
 * plenty of room on the float64 part, while any indexing or formula error shows up as O(1).
 * The 2⁻¹⁴⁹ floor is float32's subnormal spacing (a tiny s can underflow to float32 0).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShapeMismatchError } from '../errors.js';
import { JsBackend, deltaW, evaluateExpr, materializeJob, mergeInto, applyBranch, ttChain, tucker } from './js.js';
import type { MatExpr, MaterializeJob, ModuleUpdate, TTCore, TuckerMode } from './types.js';

// ---------------------------------------------------------------------------------------------
// Test data: a small independent generator (mulberry32), float32 values in (−2, 2) with some
// exact zeros (the backend has zero-skipping fast paths that must not change results).
// ---------------------------------------------------------------------------------------------
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function randF32(len: number, rng: () => number, zeroFrac = 0.1): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = rng() < zeroFrac ? 0 : rng() * 4 - 2;
  return out;
}
type ValueOf<A> = A extends fc.Arbitrary<infer T> ? T : never;
const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
function divisors(n: number): number[] {
  const d: number[] = [];
  for (let i = 1; i <= n; i++) if (n % i === 0) d.push(i);
  return d;
}

/** Assert a float32 result against a float64 reference with the tolerance stated at the top. */
function expectClose(got: Float32Array, ref: readonly number[], absSum: readonly number[]): void {
  expect(got.length).toBe(ref.length);
  for (let i = 0; i < ref.length; i++) {
    const tol = 2 ** -23 * Math.abs(ref[i]!) + 1e-13 * absSum[i]! + 2 ** -149;
    const d = Math.abs(got[i]! - ref[i]!);
    if (!(d <= tol)) {
      throw new Error(`element ${i}: got ${got[i]}, reference ${ref[i]}, |d| = ${d} > tol ${tol}`);
    }
  }
}

/** Iterate a mixed-radix multi-index (last digit fastest). */
function* multiIndex(dims: readonly number[]): Generator<number[]> {
  const total = prod(dims);
  for (let lin = 0; lin < total; lin++) {
    const idx = new Array<number>(dims.length);
    let rem = lin;
    for (let d = dims.length - 1; d >= 0; d--) {
      idx[d] = rem % dims[d]!;
      rem = Math.floor(rem / dims[d]!);
    }
    yield idx;
  }
}

/** The error thrown by fn, which must be a ShapeMismatchError. */
function shapeError(fn: () => unknown): ShapeMismatchError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(ShapeMismatchError);
    return e as ShapeMismatchError;
  }
  throw new Error('expected a ShapeMismatchError, nothing was thrown');
}

// ---------------------------------------------------------------------------------------------
// Naive references, straight from the definitions.
// ---------------------------------------------------------------------------------------------

/**
 * TT: full[(i_0 … i_{d−1}), j] = Σ_{a_1 … a_{d−1}} Π_k G_k[a_k, i_k, a_{k+1}] with a_0 = 0,
 * a_d = j (mode 0 slowest), gated: the last core's entry times rank[a_{d−1}] · mode[i_{d−1}].
 * Returns the [∏ size, R] matrix flattened row-major.
 */
function naiveTT(cores: readonly TTCore[], gate?: { rank: Float32Array; mode: Float32Array }): { ref: number[]; abs: number[] } {
  const sizes = cores.map((c) => c.size);
  const R = cores[cores.length - 1]!.rRight;
  const inner = cores.slice(0, -1).map((c) => c.rRight); // a_1 … a_{d−1}
  const ref: number[] = [];
  const abs: number[] = [];
  for (const i of multiIndex(sizes)) {
    for (let j = 0; j < R; j++) {
      let sum = 0;
      let sAbs = 0;
      for (const a of multiIndex(inner)) {
        const ranks = [0, ...a, j];
        let term = 1;
        cores.forEach((c, k) => {
          term *= c.data[(ranks[k]! * c.size + i[k]!) * c.rRight + ranks[k + 1]!]!;
        });
        if (gate) term *= gate.rank[ranks[cores.length - 1]!]! * gate.mode[i[cores.length - 1]!]!;
        sum += term;
        sAbs += Math.abs(term);
      }
      ref.push(sum);
      abs.push(sAbs);
    }
  }
  return { ref, abs };
}

function transposeList(xs: readonly number[], rows: number, cols: number): number[] {
  const out = new Array<number>(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = xs[r * cols + c]!;
  return out;
}

/**
 * Tucker: T[x] = Σ_{r ∈ core index space} G[r] · Π_{vector k} v_k[r_k] · Π_{matrix k} U_k[x_k, r_k]
 * with r_k = x_k on kept modes; x ranges over the surviving modes (keep / matrix) in original
 * order; then out[y] = T[x] with x[order[d]] = y[d].
 */
function naiveTucker(
  core: Float32Array,
  coreDims: readonly number[],
  modes: readonly TuckerMode[],
  order: readonly number[],
): { ref: number[]; abs: number[] } {
  const surviving = modes.map((m, k) => ({ m, k })).filter(({ m }) => m.op !== 'vector');
  const survDims = surviving.map(({ m, k }) => (m.op === 'matrix' ? m.rows : coreDims[k]!));
  const outDims = order.map((o) => survDims[o]!);
  const ref: number[] = [];
  const abs: number[] = [];
  for (const y of multiIndex(outDims)) {
    const x = new Array<number>(survDims.length);
    order.forEach((o, d) => (x[o] = y[d]!));
    let sum = 0;
    let sAbs = 0;
    for (const r of multiIndex(coreDims)) {
      let term = core[r.reduce((lin, rk, k) => lin * coreDims[k]! + rk, 0)]!;
      let ok = true;
      let si = 0;
      modes.forEach((m, k) => {
        if (m.op === 'vector') {
          term *= m.v[r[k]!]!;
        } else {
          const xk = x[si++]!;
          if (m.op === 'keep') {
            if (r[k] !== xk) ok = false;
          } else {
            term *= m.U[xk * coreDims[k]! + r[k]!]!;
          }
        }
      });
      if (!ok) continue;
      sum += term;
      sAbs += Math.abs(term);
    }
    ref.push(sum);
    abs.push(sAbs);
  }
  return { ref, abs };
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------
const seedArb = fc.integer({ min: 0, max: 0xffffffff });

const ttArb = fc.record({
  seed: seedArb,
  sizes: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }),
  innerRanks: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 3, maxLength: 3 }),
  lastRank: fc.integer({ min: 1, max: 4 }),
  gate: fc.boolean(),
  transpose: fc.boolean(),
  viewPick: fc.nat(),
});

function buildTT(p: ValueOf<typeof ttArb>) {
  const rng = mulberry32(p.seed);
  const d = p.sizes.length;
  const ranks = [1, ...p.innerRanks.slice(0, d - 1), p.lastRank];
  const cores: TTCore[] = p.sizes.map((size, k) => ({
    rLeft: ranks[k]!,
    size,
    rRight: ranks[k + 1]!,
    data: randF32(ranks[k]! * size * ranks[k + 1]!, rng),
  }));
  const last = cores[d - 1]!;
  const gate = p.gate ? { rank: randF32(last.rLeft, rng), mode: randF32(last.size, rng) } : undefined;
  const total = prod(p.sizes) * p.lastRank;
  const ds = divisors(total);
  const rows = ds[p.viewPick % ds.length]!;
  return { cores, gate, rows, cols: total / rows };
}

const tuckerArb = fc.record({
  seed: seedArb,
  coreDims: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 4 }),
  ops: fc.array(fc.constantFrom('vector', 'matrix', 'keep'), { minLength: 4, maxLength: 4 }),
  matRows: fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 4, maxLength: 4 }),
  permKeys: fc.array(fc.nat(), { minLength: 4, maxLength: 4 }),
  viewPick: fc.nat(),
});

function buildTucker(p: ValueOf<typeof tuckerArb>) {
  const rng = mulberry32(p.seed);
  const core = randF32(prod(p.coreDims), rng);
  const modes: TuckerMode[] = p.coreDims.map((Rk, k) => {
    const op = p.ops[k]!;
    if (op === 'vector') return { op, v: randF32(Rk, rng) };
    if (op === 'matrix') return { op, U: randF32(p.matRows[k]! * Rk, rng), rows: p.matRows[k]! };
    return { op: 'keep' };
  });
  const nSurv = modes.filter((m) => m.op !== 'vector').length;
  const keys = p.permKeys.slice(0, nSurv);
  const order = keys.map((_, i) => i).sort((a, b) => keys[a]! - keys[b]! || a - b);
  const survDims = modes.flatMap((m, k) => (m.op === 'vector' ? [] : [m.op === 'matrix' ? m.rows : p.coreDims[k]!]));
  const total = prod(survDims);
  const ds = divisors(total);
  const rows = ds[p.viewPick % ds.length]!;
  return { core, modes, order, rows, cols: total / rows };
}

// ---------------------------------------------------------------------------------------------
describe('evaluateExpr: tt', () => {
  it('matches the explicit TT sum (any order, gate, view, transpose; incl. rank-1 and single-core chains)', () => {
    fc.assert(
      fc.property(ttArb, (p) => {
        const { cores, gate, rows, cols } = buildTT(p);
        const expr: MatExpr = { kind: 'tt', cores, rows, cols, transpose: p.transpose, ...(gate ? { gate } : {}) };
        const { ref, abs } = naiveTT(cores, gate);
        const got = evaluateExpr(expr);
        // The view is the same element order; transpose turns [rows, cols] into [cols, rows].
        if (p.transpose) expectClose(got, transposeList(ref, rows, cols), transposeList(abs, rows, cols));
        else expectClose(got, ref, abs);
        // ttChain itself is the [∏ size, R] float64 matrix.
        const chain = ttChain(cores, gate);
        expect(chain).toBeInstanceOf(Float64Array);
        chain.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThanOrEqual(1e-13 * abs[i]!));
      }),
      { numRuns: 300 },
    );
  });

  it('small hand-checked case: two cores with a gate, transposed', () => {
    // G1 [1, 2, 2] = [[1, 2], [3, 4]] (rows i1, cols a); G2 [2, 1, 2] = [[5, 6], [7, 8]] (rows a, cols j).
    // full[i1, j] = Σ_a G1[i1, a] · rank[a] · mode[0] · G2[a, j]; rank = [1, 10], mode = [0.5].
    // i1 = 0: [0.5·(1·5 + 2·10·7), 0.5·(1·6 + 2·10·8)] = [72.5, 83]
    // i1 = 1: [0.5·(3·5 + 4·10·7), 0.5·(3·6 + 4·10·8)] = [147.5, 169]
    const cores: TTCore[] = [
      { rLeft: 1, size: 2, rRight: 2, data: new Float32Array([1, 2, 3, 4]) },
      { rLeft: 2, size: 1, rRight: 2, data: new Float32Array([5, 6, 7, 8]) },
    ];
    const gate = { rank: new Float32Array([1, 10]), mode: new Float32Array([0.5]) };
    expect([...evaluateExpr({ kind: 'tt', cores, gate, rows: 2, cols: 2 })]).toEqual([72.5, 83, 147.5, 169]);
    expect([...evaluateExpr({ kind: 'tt', cores, gate, rows: 2, cols: 2, transpose: true })]).toEqual([72.5, 147.5, 83, 169]);
    expect([...evaluateExpr({ kind: 'tt', cores, gate, rows: 1, cols: 4 })]).toEqual([72.5, 83, 147.5, 169]);
  });

  it('rejects malformed chains with ShapeMismatchError naming expected and found', () => {
    const c = (rLeft: number, size: number, rRight: number, len = rLeft * size * rRight): TTCore => ({
      rLeft,
      size,
      rRight,
      data: new Float32Array(len),
    });
    let e = shapeError(() => evaluateExpr({ kind: 'tt', cores: [], rows: 1, cols: 1 }));
    expect(e.message).toContain('at least one core');
    e = shapeError(() => evaluateExpr({ kind: 'tt', cores: [c(2, 3, 1)], rows: 3, cols: 1 }));
    expect(e.message).toMatch(/left rank 1.*expected 1, found 2/);
    e = shapeError(() => evaluateExpr({ kind: 'tt', cores: [c(1, 2, 3), c(4, 2, 1)], rows: 4, cols: 1 }));
    expect(e.message).toMatch(/core 1 left rank.*expected 3, found 4/);
    e = shapeError(() => evaluateExpr({ kind: 'tt', cores: [c(1, 2, 3), c(3, 2, 1, 5)], rows: 4, cols: 1 }));
    expect(e.message).toMatch(/core 1 data length.*expected 6, found 5/);
    e = shapeError(() =>
      evaluateExpr({
        kind: 'tt',
        cores: [c(1, 2, 3), c(3, 4, 1)],
        gate: { rank: new Float32Array(3), mode: new Float32Array(2) },
        rows: 8,
        cols: 1,
      }),
    );
    expect(e.message).toMatch(/gate.*expected \[3,4\], found \[3,2\]/);
    e = shapeError(() => evaluateExpr({ kind: 'tt', cores: [c(1, 2, 3)], rows: 2, cols: 2 }));
    expect(e.message).toMatch(/expected 4, found 6/);
    expect(e.details).toMatchObject({ expected: 4, found: 6 });
  });
});

describe('evaluateExpr: dense', () => {
  const denseArb = fc.record({
    seed: seedArb,
    rows: fc.integer({ min: 1, max: 7 }),
    cols: fc.integer({ min: 1, max: 7 }),
    tr: fc.nat(),
    tc: fc.nat(),
    transpose: fc.boolean(),
    rowScale: fc.boolean(),
    colScale: fc.boolean(),
  });

  it('matches out[i, j] = (Tᵀ?)src[i, j] · rowScale[i] · colScale[j] on the top-left block', () => {
    fc.assert(
      fc.property(denseArb, (p) => {
        const rng = mulberry32(p.seed);
        const takeRows = 1 + (p.tr % p.rows);
        const takeCols = 1 + (p.tc % p.cols);
        const src = randF32(p.rows * p.cols, rng);
        const oR = p.transpose ? takeCols : takeRows;
        const oC = p.transpose ? takeRows : takeCols;
        const rowScale = p.rowScale ? randF32(oR, rng) : undefined;
        const colScale = p.colScale ? randF32(oC, rng) : undefined;
        const expr: MatExpr = {
          kind: 'dense',
          src,
          rows: p.rows,
          cols: p.cols,
          takeRows,
          takeCols,
          transpose: p.transpose,
          ...(rowScale ? { rowScale } : {}),
          ...(colScale ? { colScale } : {}),
        };
        const ref: number[] = [];
        for (let i = 0; i < oR; i++) {
          for (let j = 0; j < oC; j++) {
            const v = p.transpose ? src[j * p.cols + i]! : src[i * p.cols + j]!;
            ref.push(v * (rowScale ? rowScale[i]! : 1) * (colScale ? colScale[j]! : 1));
          }
        }
        expectClose(evaluateExpr(expr), ref, ref.map(Math.abs));
      }),
      { numRuns: 300 },
    );
  });

  it('hand-checked block, transpose and scales; returns a fresh array', () => {
    // src [2, 3] = [[1, 2, 3], [4, 5, 6]]; block [2, 2] = [[1, 2], [4, 5]]; transposed [[1, 4], [2, 5]].
    const src = new Float32Array([1, 2, 3, 4, 5, 6]);
    const base = { kind: 'dense' as const, src, rows: 2, cols: 3, takeRows: 2, takeCols: 2 };
    expect([...evaluateExpr(base)]).toEqual([1, 2, 4, 5]);
    expect([...evaluateExpr({ ...base, transpose: true })]).toEqual([1, 4, 2, 5]);
    expect([...evaluateExpr({ ...base, transpose: true, rowScale: new Float32Array([10, 100]) })]).toEqual([10, 40, 200, 500]);
    expect([...evaluateExpr({ ...base, colScale: new Float32Array([2, 3]) })]).toEqual([2, 6, 8, 15]);
    const whole = evaluateExpr({ ...base, takeCols: 3 });
    whole[0] = 99;
    expect(src[0]).toBe(1);
  });

  it('rejects bad sizes with ShapeMismatchError', () => {
    const src = new Float32Array(6);
    const base = { kind: 'dense' as const, src, rows: 2, cols: 3, takeRows: 2, takeCols: 3 };
    expect(shapeError(() => evaluateExpr({ ...base, rows: 3 })).message).toMatch(/source size.*expected 9, found 6/);
    expect(shapeError(() => evaluateExpr({ ...base, takeRows: 3 })).message).toMatch(/larger than source.*expected \[2,3\], found \[3,3\]/);
    // rowScale has the length of the *output* rows (3 when transposed).
    expect(shapeError(() => evaluateExpr({ ...base, transpose: true, rowScale: new Float32Array(2) })).message).toMatch(
      /rowScale.*expected 3, found 2/,
    );
    expect(shapeError(() => evaluateExpr({ ...base, colScale: new Float32Array(2) })).message).toMatch(/colScale.*expected 3, found 2/);
  });
});

describe('evaluateExpr: cp', () => {
  it('matches out[q·p + j, k] = outer[q, k] · inner[j, k] · scale[k]', () => {
    fc.assert(
      fc.property(
        seedArb,
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.boolean(),
        (seed, p, q, r, withScale) => {
          const rng = mulberry32(seed);
          const inner = randF32(p * r, rng);
          const outer = randF32(q * r, rng);
          const scale = withScale ? randF32(r, rng) : undefined;
          const got = evaluateExpr({ kind: 'cp', inner, p, outer, q, r, ...(scale ? { scale } : {}) });
          const ref: number[] = [];
          for (let h = 0; h < q; h++)
            for (let j = 0; j < p; j++)
              for (let k = 0; k < r; k++) ref.push(outer[h * r + k]! * inner[j * r + k]! * (scale ? scale[k]! : 1));
          expectClose(got, ref, ref.map(Math.abs));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hand-checked: head-contiguous blocks', () => {
    // inner [2, 1] = [1, 2], outer [2, 1] = [10, 100], scale [3]: [30, 60, 300, 600].
    const got = evaluateExpr({ kind: 'cp', inner: new Float32Array([1, 2]), p: 2, outer: new Float32Array([10, 100]), q: 2, r: 1, scale: new Float32Array([3]) });
    expect([...got]).toEqual([30, 60, 300, 600]);
  });

  it('rejects bad sizes', () => {
    const ok = { kind: 'cp' as const, inner: new Float32Array(6), p: 3, outer: new Float32Array(4), q: 2, r: 2 };
    expect(shapeError(() => evaluateExpr({ ...ok, p: 4 })).message).toMatch(/inner.*expected 8, found 6/);
    expect(shapeError(() => evaluateExpr({ ...ok, q: 3 })).message).toMatch(/outer.*expected 6, found 4/);
    expect(shapeError(() => evaluateExpr({ ...ok, scale: new Float32Array(3) })).message).toMatch(/scale.*expected 2, found 3/);
  });
});

describe('evaluateExpr: tucker', () => {
  it('matches the explicit Tucker sum for vector / matrix / keep modes and any permutation', () => {
    fc.assert(
      fc.property(tuckerArb, (p) => {
        const { core, modes, order, rows, cols } = buildTucker(p);
        const { ref, abs } = naiveTucker(core, p.coreDims, modes, order);
        expectClose(evaluateExpr({ kind: 'tucker', core, coreDims: p.coreDims, modes, order, rows, cols }), ref, abs);
        const t = tucker(core, p.coreDims, modes, order);
        t.forEach((v, i) => expect(Math.abs(v - ref[i]!)).toBeLessThanOrEqual(1e-13 * abs[i]!));
      }),
      { numRuns: 400 },
    );
  });

  it('hand-checked: vector on mode 0, matrix on mode 2, keep mode 1, transposed output', () => {
    // core [2, 2, 1]: G[a, b, 0] = [[1, 2], [3, 4]]; v = [1, 10] contracts a → K[b] = [31, 42];
    // U [3, 1] = [1, 2, 3] replaces mode 2 → T[b, x] = K[b]·U[x] = [[31, 62, 93], [42, 84, 126]];
    // order [1, 0] → out[x, b].
    const got = evaluateExpr({
      kind: 'tucker',
      core: new Float32Array([1, 2, 3, 4]),
      coreDims: [2, 2, 1],
      modes: [{ op: 'vector', v: new Float32Array([1, 10]) }, { op: 'keep' }, { op: 'matrix', U: new Float32Array([1, 2, 3]), rows: 3 }],
      order: [1, 0],
      rows: 3,
      cols: 2,
    });
    expect([...got]).toEqual([31, 42, 62, 84, 93, 126]);
  });

  it('rejects bad sizes and non-permutations', () => {
    const core = new Float32Array(6);
    const base = {
      kind: 'tucker' as const,
      core,
      coreDims: [2, 3],
      modes: [{ op: 'keep' }, { op: 'keep' }] as TuckerMode[],
      order: [0, 1],
      rows: 2,
      cols: 3,
    };
    expect(() => evaluateExpr(base)).not.toThrow();
    expect(shapeError(() => evaluateExpr({ ...base, modes: [{ op: 'keep' }] })).message).toMatch(/one mode op per core mode.*expected 2, found 1/);
    expect(shapeError(() => evaluateExpr({ ...base, coreDims: [2, 4] })).message).toMatch(/core length.*expected 8, found 6/);
    expect(
      shapeError(() => evaluateExpr({ ...base, modes: [{ op: 'vector', v: new Float32Array(3) }, { op: 'keep' }], order: [0] })).message,
    ).toMatch(/mode 0 vector length.*expected 2, found 3/);
    expect(
      shapeError(() => evaluateExpr({ ...base, modes: [{ op: 'keep' }, { op: 'matrix', U: new Float32Array(10), rows: 4 }] })).message,
    ).toMatch(/mode 1 factor size.*expected 12, found 10/);
    expect(shapeError(() => evaluateExpr({ ...base, order: [0, 0] })).message).toMatch(/permutation/);
    expect(shapeError(() => evaluateExpr({ ...base, order: [0] })).message).toMatch(/permutation/);
    expect(shapeError(() => evaluateExpr({ ...base, rows: 3, cols: 3 })).message).toMatch(/expected 9, found 6/);
  });
});

// ---------------------------------------------------------------------------------------------
// merge / apply / materialize
// ---------------------------------------------------------------------------------------------
const updArb = fc.record({
  seed: seedArb,
  n: fc.integer({ min: 1, max: 9 }),
  m: fc.integer({ min: 1, max: 9 }),
  rho: fc.integer({ min: 1, max: 5 }),
  s: fc.double({ min: -3, max: 3, noNaN: true }),
  rows: fc.integer({ min: 1, max: 5 }),
});

function makeUpdate(p: ValueOf<typeof updArb>, rng: () => number): ModuleUpdate {
  return { path: 'x.layer.0.q', n: p.n, m: p.m, rho: p.rho, s: p.s, A: randF32(p.n * p.rho, rng), B: randF32(p.m * p.rho, rng) };
}

/** D[i][j] = Σ_k B′[i, k] A′[j, k] and Σ|…|, in float64. */
function naiveBAt(u: ModuleUpdate): { D: number[][]; Dabs: number[][] } {
  const D: number[][] = [];
  const Dabs: number[][] = [];
  for (let i = 0; i < u.m; i++) {
    D.push([]);
    Dabs.push([]);
    for (let j = 0; j < u.n; j++) {
      let sum = 0;
      let sAbs = 0;
      for (let k = 0; k < u.rho; k++) {
        const t = u.B[i * u.rho + k]! * u.A[j * u.rho + k]!;
        sum += t;
        sAbs += Math.abs(t);
      }
      D[i]!.push(sum);
      Dabs[i]!.push(sAbs);
    }
  }
  return { D, Dabs };
}

describe('merge', () => {
  it('W += s·B′A′ᵀ for both layouts (out_in [m, n] and in_out [n, m]), via the Backend too', async () => {
    const backend = new JsBackend();
    await fc.assert(
      fc.asyncProperty(updArb, async (p) => {
        const rng = mulberry32(p.seed);
        const u = makeUpdate(p, rng);
        const { D, Dabs } = naiveBAt(u);
        for (const layout of ['out_in', 'in_out'] as const) {
          const W0 = randF32(p.m * p.n, rng);
          const W = Float32Array.from(W0);
          await backend.merge(W, layout, u);
          const ref: number[] = new Array(p.m * p.n);
          const abs: number[] = new Array(p.m * p.n);
          for (let i = 0; i < p.m; i++) {
            for (let j = 0; j < p.n; j++) {
              const idx = layout === 'out_in' ? i * p.n + j : j * p.m + i;
              ref[idx] = W0[idx]! + p.s * D[i]![j]!;
              abs[idx] = Math.abs(W0[idx]!) + Math.abs(p.s) * Dabs[i]![j]!;
            }
          }
          expectClose(W, ref, abs);
        }
        // deltaW is the dense [m, n] update alone.
        const ref = D.flat().map((v) => p.s * v);
        expectClose(deltaW(u), ref, Dabs.flat().map((v) => Math.abs(p.s) * v));
      }),
      { numRuns: 200 },
    );
  });

  it('hand-checked in_out layout (GPT-2 Conv1D)', () => {
    // n = 2, m = 3, ρ = 1: A′ = [1, 2]ᵀ, B′ = [1, 10, 100]ᵀ, s = 2 → ΔW [3, 2] = [[2, 4], [20, 40], [200, 400]];
    // stored [in, out] = [[2, 20, 200], [4, 40, 400]].
    const u: ModuleUpdate = { path: 'h.0.attn.c_attn', n: 2, m: 3, rho: 1, s: 2, A: new Float32Array([1, 2]), B: new Float32Array([1, 10, 100]) };
    const W = new Float32Array([1, 1, 1, 1, 1, 1]);
    mergeInto(W, 'in_out', u);
    expect([...W]).toEqual([3, 21, 201, 5, 41, 401]);
    const W2 = new Float32Array(6);
    mergeInto(W2, 'out_in', u);
    expect([...W2]).toEqual([2, 4, 20, 40, 200, 400]);
  });

  it('rejects a weight or factors of the wrong size', async () => {
    const u: ModuleUpdate = { path: 'm.q', n: 4, m: 3, rho: 2, s: 1, A: new Float32Array(8), B: new Float32Array(6) };
    let e = shapeError(() => mergeInto(new Float32Array(11), 'out_in', u));
    expect(e.message).toMatch(/weight of m\.q.*expected \[3,4\], found 11/);
    e = shapeError(() => mergeInto(new Float32Array(12), 'in_out', { ...u, A: new Float32Array(7) }));
    expect(e.message).toMatch(/A′ of m\.q.*expected \[4,2\], found 7/);
    e = shapeError(() => mergeInto(new Float32Array(12), 'out_in', { ...u, B: new Float32Array(7) }));
    expect(e.message).toMatch(/B′ of m\.q.*expected \[3,2\], found 7/);
    await expect(new JsBackend().merge(new Float32Array(5), 'out_in', u)).rejects.toBeInstanceOf(ShapeMismatchError);
  });
});

describe('apply (branch)', () => {
  it('Y += s·X·(B′A′ᵀ)ᵀ against an independently built dense ΔW', async () => {
    const backend = new JsBackend();
    await fc.assert(
      fc.asyncProperty(updArb, async (p) => {
        const rng = mulberry32(p.seed);
        const u = makeUpdate(p, rng);
        const { D, Dabs } = naiveBAt(u);
        const X = randF32(p.rows * p.n, rng);
        const X0 = Float32Array.from(X);
        const Y0 = randF32(p.rows * p.m, rng);
        const Y = Float32Array.from(Y0);
        await backend.apply(X, Y, p.rows, u);
        const ref: number[] = [];
        const abs: number[] = [];
        for (let r = 0; r < p.rows; r++) {
          for (let i = 0; i < p.m; i++) {
            let sum = 0;
            let sAbs = 0;
            for (let j = 0; j < p.n; j++) {
              sum += X[r * p.n + j]! * D[i]![j]!;
              sAbs += Math.abs(X[r * p.n + j]!) * Dabs[i]![j]!;
            }
            ref.push(Y0[r * p.m + i]! + p.s * sum);
            abs.push(Math.abs(Y0[r * p.m + i]!) + Math.abs(p.s) * sAbs);
          }
        }
        expectClose(Y, ref, abs);
        // X is not modified.
        expect(X).toEqual(X0);
      }),
      { numRuns: 200 },
    );
  });

  it('hand-checked and zero rows is a no-op', () => {
    // n = 2, m = 2, ρ = 1, A′ = [1, 1]ᵀ, B′ = [1, −1]ᵀ, s = 0.5; x = [2, 4] → A′ᵀx = 6 → Δy = [3, −3].
    const u: ModuleUpdate = { path: 'p', n: 2, m: 2, rho: 1, s: 0.5, A: new Float32Array([1, 1]), B: new Float32Array([1, -1]) };
    const Y = new Float32Array([10, 10]);
    applyBranch(new Float32Array([2, 4]), Y, 1, u);
    expect([...Y]).toEqual([13, 7]);
    const empty = new Float32Array(0);
    expect(() => applyBranch(empty, empty, 0, u)).not.toThrow();
  });

  it('rejects X / Y of the wrong size', () => {
    const u: ModuleUpdate = { path: 'p', n: 3, m: 2, rho: 1, s: 1, A: new Float32Array(3), B: new Float32Array(2) };
    expect(shapeError(() => applyBranch(new Float32Array(5), new Float32Array(4), 2, u)).message).toMatch(/branch input X.*expected \[2,3\], found 5/);
    expect(shapeError(() => applyBranch(new Float32Array(6), new Float32Array(5), 2, u)).message).toMatch(/branch output Y.*expected \[2,2\], found 5/);
  });
});

describe('materialize', () => {
  it('evaluates A′ and B′ of every job and carries path, n, m, ρ, s', async () => {
    const rng = mulberry32(7);
    // Job 1: A′ = a dense [3, 2] block, B′ = a CP [2·2, 2]. Job 2: A′ from a TT, B′ transposed dense.
    const srcA = randF32(4 * 3, rng);
    const inner = randF32(2 * 2, rng);
    const outer = randF32(2 * 2, rng);
    const tt: TTCore[] = [
      { rLeft: 1, size: 2, rRight: 2, data: randF32(4, rng) },
      { rLeft: 2, size: 3, rRight: 1, data: randF32(6, rng) },
    ];
    const srcB = randF32(1 * 5, rng);
    const jobs: MaterializeJob[] = [
      {
        path: 'a.layer.0.q',
        n: 3,
        m: 4,
        rho: 2,
        s: 0.25,
        a: { kind: 'dense', src: srcA, rows: 4, cols: 3, takeRows: 3, takeCols: 2 },
        b: { kind: 'cp', inner, p: 2, outer, q: 2, r: 2 },
      },
      {
        path: 'a.layer.1.v',
        n: 6,
        m: 5,
        rho: 1,
        s: 2,
        a: { kind: 'tt', cores: tt, rows: 6, cols: 1 },
        b: { kind: 'dense', src: srcB, rows: 1, cols: 5, takeRows: 1, takeCols: 5, transpose: true },
      },
    ];
    const [u1, u2] = await new JsBackend().materialize(jobs);
    expect(u1).toMatchObject({ path: 'a.layer.0.q', n: 3, m: 4, rho: 2, s: 0.25 });
    expect(u2).toMatchObject({ path: 'a.layer.1.v', n: 6, m: 5, rho: 1, s: 2 });
    const refA1: number[] = [];
    for (let i = 0; i < 3; i++) for (let j = 0; j < 2; j++) refA1.push(srcA[i * 3 + j]!);
    expect([...u1!.A]).toEqual(refA1.map(Math.fround));
    const refB1: number[] = [];
    for (let h = 0; h < 2; h++) for (let j = 0; j < 2; j++) for (let k = 0; k < 2; k++) refB1.push(outer[h * 2 + k]! * inner[j * 2 + k]!);
    expectClose(u1!.B, refB1, refB1.map(Math.abs));
    const { ref: refA2, abs: absA2 } = naiveTT(tt);
    expectClose(u2!.A, refA2, absA2);
    expect([...u2!.B]).toEqual([...srcB]);
  });

  it('checks that A′ evaluates to [n, ρ] and B′ to [m, ρ], naming the module', async () => {
    const a: MatExpr = { kind: 'dense', src: new Float32Array(6), rows: 3, cols: 2, takeRows: 3, takeCols: 2 };
    const job: MaterializeJob = { path: 'enc.layer.3.value', n: 4, m: 3, rho: 2, s: 1, a, b: a };
    let e = shapeError(() => materializeJob(job));
    expect(e.message).toMatch(/A′ of enc\.layer\.3\.value must be \[n, ρ\].*expected \[4,2\], found 6/);
    e = shapeError(() => materializeJob({ ...job, n: 3, m: 5 }));
    expect(e.message).toMatch(/B′ of enc\.layer\.3\.value must be \[m, ρ\].*expected \[5,2\], found 6/);
    await expect(new JsBackend().materialize([job])).rejects.toBeInstanceOf(ShapeMismatchError);
    // ρ is checked too, not only the element count of the block.
    expect(() => materializeJob({ ...job, n: 3, m: 3 })).not.toThrow();
    expect(() => materializeJob({ ...job, n: 3, m: 3, rho: 3 })).toThrow(ShapeMismatchError);
  });
});
