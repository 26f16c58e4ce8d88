/**
 * Building blocks of the selftest for the tests of other backends (kernels-wgsl checks its kernels
 * exactly as the wasm backend's tests do): the per-array tolerance check, the |y| reference and
 * K_eff of an expression, the tiny per-method adapter configs, and seeded float32 test data.
 * Exported from the package index as the `selftestHelpers` namespace.
 */
export { absExpr, compareArrays, exprDepth, TINY_CONFIGS } from './selftest.js';

/** A seeded 32-bit PRNG (mulberry32): uniform numbers in [0, 1). */
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

/** Values in [0.25, 1.75) (gates, scales). */
export function positive(len: number, rng: () => number): Float32Array {
  const out = new Float32Array(len);
  for (let i = 0; i < len; i++) out[i] = 0.25 + 1.5 * rng();
  return out;
}
