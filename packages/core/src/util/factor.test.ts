import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { balancedFactors } from './factor.js';

describe('balancedFactors', () => {
  it('reproduces the official TRAC table where it has entries, and the documented examples', () => {
    expect(balancedFactors(768, 3)).toEqual([8, 8, 12]);
    expect(balancedFactors(1024, 3)).toEqual([8, 8, 16]);
    expect(balancedFactors(4096, 3)).toEqual([16, 16, 16]);
    expect(balancedFactors(5120, 3)).toEqual([16, 16, 20]);
    expect(balancedFactors(576, 3)).toEqual([8, 8, 9]);
    expect(balancedFactors(896, 3)).toEqual([8, 8, 14]);
    expect(balancedFactors(32, 3)).toEqual([2, 4, 4]);
    expect(balancedFactors(7, 3)).toEqual([1, 1, 7]);
  });

  it('multiplies back, ascending, and no other ascending factorization has a smaller largest factor', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.integer({ min: 1, max: 4 }), (d, k) => {
        const f = balancedFactors(d, k);
        expect(f).toHaveLength(k);
        expect(f.reduce((a, b) => a * b, 1)).toBe(d);
        for (let i = 1; i < k; i++) expect(f[i]!).toBeGreaterThanOrEqual(f[i - 1]!);
        // Brute force over the largest factor: any divisor m < max(f) with d/m splittable into k−1 factors ≤ m would beat it.
        const max = f[k - 1]!;
        const splittable = (rest: number, parts: number, cap: number): boolean =>
          parts === 0 ? rest === 1 : Array.from({ length: cap }, (_, i) => i + 1).some((x) => rest % x === 0 && splittable(rest / x, parts - 1, x));
        for (let m = 1; m < max; m++) if (d % m === 0) expect(splittable(d / m, k - 1, m)).toBe(false);
      }),
      { numRuns: 150 },
    );
  });
});
