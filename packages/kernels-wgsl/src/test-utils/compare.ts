/**
 * Test helpers shared with the wasm backend's tests: random float32 data from a seed, and the
 * selftest tolerance (‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞, |y| = JS reference on |inputs|).
 */
import { expect } from 'vitest';
import type { MatExpr, TuckerMode } from '@tensorpeft/core';

// absExpr, exprDepth, compareArrays and TINY_CONFIGS: the same as @tensorpeft/kernels-wasm's
// selftest.ts (which does not export them from its index); its runSelftest is used as is.
const U32 = 2 ** -24;

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

/** Assert x is within the tolerance of the reference y. */
export function expectWithin(x: Float32Array, y: Float32Array, yAbs: Float32Array, depth: number, what = ''): void {
  expect(x.length, `${what} length`).toBe(y.length);
  const [rel, ratio] = compareArrays(x, y, yAbs, depth);
  if (!(ratio <= 1)) throw new Error(`${what}: ‖x − y‖∞ is ${ratio}× the bound (K_eff = ${depth}), relative error ${rel}`);
}
