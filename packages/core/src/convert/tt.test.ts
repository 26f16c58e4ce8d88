import { describe, expect, it } from 'vitest';
import { Prng } from '../util/prng.js';
import { singularValues, svd, symEigJacobi, symEigQL } from './linalg.js';
import { jointTtSvd, tailSq, ttBackward, ttForward, ttSvd } from './tt.js';

function randn(g: Prng, n: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = g.normal();
  return x;
}

function diff2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return s;
}

/** Squared singular values of the k-th unfolding [∏_{j≤k} f_j, rest] of X. */
function unfoldingSpectrum(X: Float64Array, rows: number): Float64Array {
  return singularValues(X, rows, X.length / rows).map((s) => s * s);
}

describe('linear algebra', () => {
  it('SVD reconstructs and is orthonormal (Jacobi and Gram paths)', () => {
    const g = new Prng(1);
    for (const [m, n] of [
      [7, 4],
      [4, 9],
      [60, 30],
      [30, 50],
    ] as const) {
      const A = randn(g, m * n);
      const f = svd(A, m, n);
      const R = new Float64Array(m * n);
      for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let c = 0; c < f.p; c++) R[i * n + j]! += f.U[i * f.p + c]! * f.S[c]! * f.V[j * f.p + c]!;
      expect(Math.sqrt(diff2(A, R) / diff2(A, new Float64Array(A.length)))).toBeLessThan(1e-9);
      for (let c = 1; c < f.p; c++) expect(f.S[c]!).toBeLessThanOrEqual(f.S[c - 1]! + 1e-12);
    }
  });
  it('QL and Jacobi eigensolvers agree', () => {
    const g = new Prng(2);
    const n = 31;
    const A = new Float64Array(n * n);
    for (let i = 0; i < n; i++) for (let j = 0; j <= i; j++) A[i * n + j] = A[j * n + i] = g.normal();
    const a = symEigJacobi(A, n);
    const b = symEigQL(A, n);
    for (let i = 0; i < n; i++) expect(b.values[i]!).toBeCloseTo(a.values[i]!, 10);
  });
});

describe('TT-SVD (TRAC paper, Appendix B.1)', () => {
  const cases = [
    { sizes: [3, 4, 5], cols: 2, inner: [2, 3] },
    { sizes: [4, 3, 6], cols: 3, inner: [3, 5] },
    { sizes: [2, 5, 4], cols: 4, inner: [1, 2] },
  ];
  it.each(cases)('error² = Σ discarded σ² of the sweep, within the bounds of the original unfoldings ($sizes, cols $cols, ranks $inner)', ({ sizes, cols, inner }) => {
    for (let seed = 0; seed < 5; seed++) {
      const g = new Prng(seed, 'tt');
      const N = sizes.reduce((a, b) => a * b, 1) * cols;
      const X = randn(g, N);
      const tt = ttSvd(X, sizes, cols, inner);
      const approx = ttForward(tt.cores, sizes, tt.ranks).out;
      const err2 = diff2(X, approx);
      const norm2 = diff2(X, new Float64Array(N));
      // Exact: the squared error is the sum of the squared singular values discarded at each step.
      expect(Math.abs(err2 - tt.err2) / norm2).toBeLessThan(1e-10);
      // The first step's matrix is the original first unfolding.
      const tau1 = tailSq(unfoldingSpectrum(X, sizes[0]!).map(Math.sqrt), inner[0]!);
      expect(Math.abs(tt.tails[0]! - tau1) / norm2).toBeLessThan(1e-10);
      // With the original unfoldings' tails τ_k: max τ_k ≤ err² ≤ Σ τ_k.
      const tau2 = tailSq(unfoldingSpectrum(X, sizes[0]! * sizes[1]!).map(Math.sqrt), inner[1]!);
      expect(err2).toBeLessThanOrEqual((tau1 + tau2) * (1 + 1e-10));
      expect(err2).toBeGreaterThanOrEqual(Math.max(tau1, tau2) * (1 - 1e-10));
    }
  });
  it('with the first step exact, the error is exactly the tail of the second unfolding', () => {
    const g = new Prng(9);
    const sizes = [3, 4, 5];
    const X = randn(g, 60 * 2);
    const tt = ttSvd(X, sizes, 2, [3, 4]); // r1 = 3 = n1: nothing discarded at step 1
    const err2 = diff2(X, ttForward(tt.cores, sizes, tt.ranks).out);
    const tau2 = tailSq(unfoldingSpectrum(X, 12).map(Math.sqrt), 4);
    expect(tt.tails[0]!).toBeLessThan(1e-20);
    expect(Math.abs(err2 - tau2) / diff2(X, new Float64Array(X.length))).toBeLessThan(1e-10);
  });
  it('joint (shared-core) TT-SVD: error² = Σ discarded σ² of the stacked unfoldings; exact on shared-core data', () => {
    const g = new Prng(4);
    const sizes = [3, 4, 5];
    const cols = 2;
    const Xs = [0, 1, 2].map(() => randn(g, 60 * cols));
    const j = jointTtSvd(Xs, sizes, cols, [2, 3]);
    let err2 = 0;
    Xs.forEach((X, i) => {
      const approx = ttForward([j.first[i]!, ...j.shared], sizes, j.ranks).out;
      err2 += diff2(X, approx);
    });
    const norm2 = Xs.reduce((a, X) => a + diff2(X, new Float64Array(X.length)), 0);
    expect(Math.abs(err2 - j.err2) / norm2).toBeLessThan(1e-10);
    // Data built from shared cores is recovered exactly.
    const ranks = [1, 2, 3, cols];
    const G2 = randn(g, 2 * 4 * 3);
    const G3 = randn(g, 3 * 5 * cols);
    const Ys = [0, 1, 2].map(() => ttForward([randn(g, 3 * 2), G2, G3], sizes, ranks).out);
    const k = jointTtSvd(Ys, sizes, cols, [2, 3]);
    expect(k.err2 / Ys.reduce((a, Y) => a + diff2(Y, new Float64Array(Y.length)), 0)).toBeLessThan(1e-20);
  });
  it('ttBackward matches finite differences', () => {
    const g = new Prng(5);
    const sizes = [2, 3, 2];
    const ranks = [1, 2, 3, 2];
    const cores = [randn(g, 4), randn(g, 18), randn(g, 12)];
    const W = randn(g, 12 * 2);
    const f = (cs: Float64Array[]) => {
      const o = ttForward(cs, sizes, ranks).out;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += W[i]! * o[i]!;
      return s;
    };
    const fw = ttForward(cores, sizes, ranks);
    const grads = ttBackward(cores, sizes, ranks, fw.lefts, W);
    cores.forEach((c, k) => {
      for (let i = 0; i < c.length; i++) {
        const h = 1e-6;
        const plus = cores.map((x) => Float64Array.from(x));
        plus[k]![i]! += h;
        const minus = cores.map((x) => Float64Array.from(x));
        minus[k]![i]! -= h;
        expect(grads[k]![i]!).toBeCloseTo((f(plus) - f(minus)) / (2 * h), 6);
      }
    });
  });
});
