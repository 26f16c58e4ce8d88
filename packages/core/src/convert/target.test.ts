import { describe, expect, it } from 'vitest';
import { Prng } from '../util/prng.js';
import { svd } from './linalg.js';
import { svdTruncation } from './svd-baseline.js';
import { factoredNorm2, moduleError, moduleSingularValues, type Target, type TargetModule } from './target.js';

function randn(g: Prng, n: number): Float64Array {
  const x = new Float64Array(n);
  for (let i = 0; i < n; i++) x[i] = g.normal();
  return x;
}

/** Dense m × n of s·B Aᵀ (tests only). */
function dense(B: Float64Array, A: Float64Array, m: number, n: number, r: number, s = 1): Float64Array {
  const W = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) for (let k = 0; k < r; k++) W[i * n + j]! += s * B[i * r + k]! * A[j * r + k]!;
  return W;
}

function targetModule(g: Prng, m: number, n: number, r: number, path = 'x'): TargetModule {
  const U = randn(g, m * r);
  const V = randn(g, n * r);
  return { path, type: 'x', layer: 0, n, m, r, U, V, norm2: factoredNorm2(U, V, m, n, r), s: 1 };
}

describe('factored error', () => {
  it('equals the dense Frobenius error, and its gradients match finite differences', () => {
    const g = new Prng(11);
    for (const [m, n, r, rho] of [
      [5, 7, 3, 4],
      [9, 4, 2, 2],
      [6, 6, 1, 5],
    ] as const) {
      const t = targetModule(g, m, n, r);
      const A = randn(g, n * rho);
      const B = randn(g, m * rho);
      const s = 0.7;
      const T = dense(t.U, t.V, m, n, r);
      const F = dense(B, A, m, n, rho, s);
      let d2 = 0;
      let t2 = 0;
      for (let i = 0; i < T.length; i++) {
        d2 += (T[i]! - F[i]!) ** 2;
        t2 += T[i]! ** 2;
      }
      expect(t.norm2).toBeCloseTo(t2, 9);
      const res = moduleError(t, { A, B, s, rho }, true);
      expect(Math.abs(res.err2 - d2) / t2).toBeLessThan(1e-12);
      const h = 1e-6;
      const f = (AA: Float64Array, BB: Float64Array) => moduleError(t, { A: AA, B: BB, s, rho }, false).err2;
      for (let i = 0; i < A.length; i++) {
        const p = Float64Array.from(A);
        p[i]! += h;
        const q = Float64Array.from(A);
        q[i]! -= h;
        expect(res.dA![i]!).toBeCloseTo((f(p, B) - f(q, B)) / (2 * h), 4);
      }
      for (let i = 0; i < B.length; i++) {
        const p = Float64Array.from(B);
        p[i]! += h;
        const q = Float64Array.from(B);
        q[i]! -= h;
        expect(res.dB![i]!).toBeCloseTo((f(A, p) - f(A, q)) / (2 * h), 4);
      }
    }
  });
  it('singular values through QR of the factors equal those of the dense matrix', () => {
    const g = new Prng(12);
    const t = targetModule(g, 11, 8, 3);
    const S = moduleSingularValues(t);
    const D = svd(dense(t.U, t.V, 11, 8, 3), 11, 8).S;
    for (let i = 0; i < 3; i++) expect(S[i]!).toBeCloseTo(D[i]!, 10);
    expect(D[3]!).toBeLessThan(1e-10);
  });
});

describe('SVD truncation baseline', () => {
  const g = new Prng(13);
  const mods = [targetModule(g, 10, 6, 3, 'a'), targetModule(g, 8, 8, 3, 'b'), targetModule(g, 4, 12, 2, 'c')];
  const target: Target = { modules: mods, norm2: mods.reduce((a, m) => a + m.norm2, 0), params: mods.reduce((a, m) => a + m.r * (m.n + m.m), 0) };
  it('never exceeds the budget, and its error is the dense error of the kept ranks', () => {
    for (const budget of [0, 15, 16, 40, 63, 100, target.params, target.params + 5]) {
      const b = svdTruncation(target, budget);
      expect(b.params).toBeLessThanOrEqual(budget);
      // Dense check: truncate each module's dense matrix to its rank.
      let err2 = 0;
      for (const m of mods) {
        const S = svd(dense(m.U, m.V, m.m, m.n, m.r), m.m, m.n).S;
        for (let k = b.ranks[m.path]!; k < S.length; k++) err2 += S[k]! ** 2;
      }
      expect(b.rel_error).toBeCloseTo(Math.sqrt(err2 / target.norm2), 9);
      if (budget >= target.params) expect(b.rel_error).toBeLessThan(1e-6);
    }
  });
  it('is optimal on these small cases (exhaustive check)', () => {
    const spectra = mods.map((m) => svd(dense(m.U, m.V, m.m, m.n, m.r), m.m, m.n).S.slice(0, m.r));
    for (const budget of [16, 30, 50, 70, 90]) {
      let best = Infinity;
      for (let a = 0; a <= 3; a++) for (let b = 0; b <= 3; b++) for (let c = 0; c <= 2; c++) {
        const cost = a * 16 + b * 16 + c * 16;
        if (cost > budget) continue;
        const ks = [a, b, c];
        let e = 0;
        spectra.forEach((S, i) => S.forEach((x, k) => (e += k >= ks[i]! ? x * x : 0)));
        best = Math.min(best, e);
      }
      expect(svdTruncation(target, budget).rel_error).toBeCloseTo(Math.sqrt(best / target.norm2), 9);
    }
  });
});
