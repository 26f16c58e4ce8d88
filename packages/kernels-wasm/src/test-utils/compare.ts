/**
 * Test helpers: random float32 data from a seed, and the comparison with the JS reference under
 * the selftest's tolerance (see selftest.ts): ‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞, where |y| is the
 * JS reference evaluated on the absolute values of every input and K_eff the number of float32
 * rounding steps along one term (summation length + multiplications).
 */
import { expect } from 'vitest';
import { compareArrays } from '../selftest.js';

export { mulberry32, positive, randF32 } from '../selftest-helpers.js';

/** Assert x is within the tolerance of the reference y (|y| = reference on |inputs|). */
export function expectWithin(x: Float32Array, y: Float32Array, yAbs: Float32Array, depth: number, what = ''): void {
  expect(x.length, `${what} length`).toBe(y.length);
  const [rel, ratio] = compareArrays(x, y, yAbs, depth);
  if (!(ratio <= 1)) throw new Error(`${what}: ‖x − y‖∞ is ${ratio}× the bound (K_eff = ${depth}), relative error ${rel}`);
}
