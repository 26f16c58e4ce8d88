/**
 * Test helpers shared with the wasm backend's tests: random float32 data from a seed, and the
 * selftest tolerance (‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞, |y| = JS reference on |inputs|).
 */
import { expect } from 'vitest';
import { selftestHelpers } from '@tensorpeft/kernels-wasm';

// From @tensorpeft/kernels-wasm's selftest (its runSelftest is used as is).
export const { absExpr, compareArrays, exprDepth, mulberry32, positive, randF32, TINY_CONFIGS } = selftestHelpers;

/** Assert x is within the tolerance of the reference y. */
export function expectWithin(x: Float32Array, y: Float32Array, yAbs: Float32Array, depth: number, what = ''): void {
  expect(x.length, `${what} length`).toBe(y.length);
  const [rel, ratio] = compareArrays(x, y, yAbs, depth);
  if (!(ratio <= 1)) throw new Error(`${what}: ‖x − y‖∞ is ${ratio}× the bound (K_eff = ${depth}), relative error ${rel}`);
}
