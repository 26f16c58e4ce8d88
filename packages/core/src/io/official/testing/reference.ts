/**
 * Test helpers for importer tests: random tensors, and ΔW computed the way the official modules
 * compute it, written out with plain float64 loops (independent of core's backends and plans).
 * Not exported from the package.
 */
import { Prng } from '../../../util/prng.js';

export interface T {
  shape: number[];
  data: Float32Array;
}

export function randn(shape: number[], g: Prng, scale = 1): T {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = g.normal() * scale;
  return { shape, data };
}

/**
 * A tensor train [1,n1,r1]·[r1,n2,r2]·…·[r_{k-1},n_k,r_k] contracted like `torch.tensordot(out, U, [[-1],[0]])`
 * in sequence and reshaped to [n1·…·n_k, r_k] (row-major, first mode slowest).
 */
export function ttMatrix(cores: T[]): { rows: number; cols: number; data: Float64Array } {
  let rows = 1;
  let cur = new Float64Array([1]); // [rows, rLeft] with rLeft = 1
  let rl = 1;
  for (const c of cores) {
    const [r0, n, r1] = c.shape as [number, number, number];
    if (r0 !== rl) throw new Error('cores do not chain');
    const next = new Float64Array(rows * n * r1);
    for (let i = 0; i < rows; i++)
      for (let a = 0; a < r0; a++) {
        const v = cur[i * r0 + a]!;
        if (v === 0) continue;
        for (let j = 0; j < n; j++) for (let b = 0; b < r1; b++) next[(i * n + j) * r1 + b]! += v * c.data[(a * n + j) * r1 + b]!;
      }
    cur = next;
    rows *= n;
    rl = r1;
  }
  return { rows, cols: rl, data: cur };
}

/** ΔW [m, n] = s · Bm · Amᵀ for Am [n, r], Bm [m, r]. */
export function loraDelta(Am: { rows: number; cols: number; data: ArrayLike<number> }, Bm: { rows: number; cols: number; data: ArrayLike<number> }, s: number): Float64Array {
  const n = Am.rows;
  const m = Bm.rows;
  const r = Am.cols;
  const out = new Float64Array(m * n);
  for (let o = 0; o < m; o++)
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let k = 0; k < r; k++) acc += Bm.data[o * r + k]! * Am.data[i * r + k]!;
      out[o * n + i] = s * acc;
    }
  return out;
}

/** ‖x − ref‖_F / ‖ref‖_F. */
export function relErr(x: ArrayLike<number>, ref: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (x[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

export function json(v: unknown): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(v));
}
