/**
 * Test helpers: random float32 data from a seed, and the comparison with the JS reference under
 * the selftest's tolerance (see selftest.ts): ‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞, where |y| is the
 * JS reference evaluated on the absolute values of every input and K_eff the number of float32
 * rounding steps along one term (summation length + multiplications).
 */
import { expect } from 'vitest';
import { compareArrays } from '../selftest.js';

export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Values in (−2, 2) with ~10 % exact zeros. */
export function randF32(len: number, rng: () => number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = rng() < 0.1 ? 0 : rng() * 4 - 2;
  return out;
}

export function positive(len: number, rng: () => number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = 0.25 + 1.5 * rng();
  return out;
}

/** Assert x is within the tolerance of the reference y (|y| = reference on |inputs|). */
export function expectWithin(x: Float32Array, y: Float32Array, yAbs: Float32Array, depth: number, what = ''): void {
  expect(x.length, `${what} length`).toBe(y.length);
  const [rel, ratio] = compareArrays(x, y, yAbs, depth);
  if (!(ratio <= 1)) throw new Error(`${what}: ‖x − y‖∞ is ${ratio}× the bound (K_eff = ${depth}), relative error ${rel}`);
}
