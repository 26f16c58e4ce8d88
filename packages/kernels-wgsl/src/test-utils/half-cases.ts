/**
 * The random-shape float16 check of `materializeToGpu(…, { dtype: 'float16' })`, shared by the
 * SwiftShader test (half.test.ts: the `pack2x16float` kernel) and the lavapipe test
 * (half-native.test.ts: the native `f16` kernel): one property, one reference, two drivers.
 *
 * Criterion (see half-ref.ts). The float32 values entering the conversion are known exactly (dense
 * leaf expressions copy their source; folding s is one float32 product, which WGSL rounds
 * correctly, reproduced with Math.fround), so each binary16 output is checked element by element
 * against an independent binary16 rounding written from the format's definition: the output must
 * be one of the two adjacent binary16 values (WGSL's latitude for an inexact conversion; exact when
 * representable; beyond ±65504 the kernels pin round-to-nearest-even's ±65504 / ±∞ themselves).
 * Agreement with round-to-nearest-even is counted in the returned tally.
 */
import fc from 'fast-check';
import { expect } from 'vitest';
import type { MaterializeJob } from '@tensorpeft/core';
import type { WebGpuBackend } from '../backend.js';
import { halfBufferBytes } from '../half.js';
import { mulberry32 } from './compare.js';
import { expectHalf, type Tally } from './half-ref.js';

/** Random float32 values over binary16's whole range: subnormal, normal, ties, beyond ±65504. */
export function halfRangeValues(len: number, rng: () => number): Float32Array {
  const out = new Float32Array(len);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < len; i++) {
    const kind = Math.floor(rng() * 8);
    const exp = kind === 0 ? -27 + Math.floor(rng() * 14) : kind === 1 ? 15 + Math.floor(rng() * 2) : -14 + Math.floor(rng() * 29);
    out[i] = (rng() < 0.5 ? -1 : 1) * 2 ** exp * (1 + rng());
    // Every fourth value a tie of binary16 rounding at its exponent (mantissa bit 12 set, 0–11 clear).
    if (kind === 2 || kind === 3) bits[i] = (bits[i]! & ~0x1fff) | 0x1000 | ((rng() < 0.5 ? 1 : 0) << 13);
  }
  return out;
}

export const denseExpr = (src: Float32Array, rows: number, cols: number): MaterializeJob['a'] => ({ kind: 'dense', src, rows, cols, takeRows: rows, takeCols: cols });

/**
 * fast-check property: 1–3 modules of random n, m ∈ [1, 70], ρ ∈ [1, 6], random s and B layout,
 * values from `halfRangeValues`; every A′ and s·B′(ᵀ) value checked. Returns the tally.
 */
export async function checkHalfRandomShapes(gpu: WebGpuBackend, opts: { numRuns: number; seed: number }): Promise<Tally> {
  const tally: Tally = { checked: 0, nearest: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.record({ n: fc.integer({ min: 1, max: 70 }), m: fc.integer({ min: 1, max: 70 }), rho: fc.integer({ min: 1, max: 6 }) }), { minLength: 1, maxLength: 3 }),
      fc.double({ min: -4, max: 4, noNaN: true }),
      fc.boolean(),
      fc.integer({ min: 1, max: 2 ** 31 - 1 }),
      async (shapes, s, transposeB, seed) => {
        const rng = mulberry32(seed);
        const jobs: MaterializeJob[] = shapes.map(({ n, m, rho }, i) => ({ path: `m${i}`, n, m, rho, s, a: denseExpr(halfRangeValues(n * rho, rng), n, rho), b: denseExpr(halfRangeValues(m * rho, rng), m, rho) }));
        const res = await gpu.materializeToGpu(jobs, { foldScale: true, transposeB, dtype: 'float16' });
        try {
          for (const [i, r] of res.entries()) {
            const j = jobs[i]!;
            expect(r.dtype).toBe('float16');
            expect(r.A.size).toBe(halfBufferBytes(j.n * j.rho));
            expect(r.B.size).toBe(halfBufferBytes(j.m * j.rho));
            const A = (j.a as { src: Float32Array }).src;
            const B = (j.b as { src: Float32Array }).src;
            // s·B′ (ᵀ): one float32 product per element.
            const sB = new Float32Array(j.m * j.rho);
            for (let a = 0; a < j.m; a++) for (let k = 0; k < j.rho; k++) sB[transposeB ? k * j.m + a : a * j.rho + k] = Math.fround(Math.fround(s) * B[a * j.rho + k]!);
            expectHalf(await gpu.readHalfBuffer(r.A, j.n * j.rho), A, `${r.path} A′`, tally);
            expectHalf(await gpu.readHalfBuffer(r.B, j.m * j.rho), sB, `${r.path} s·B′${transposeB ? 'ᵀ' : ''}`, tally);
          }
        } finally {
          res.forEach((r) => r.release());
        }
      },
    ),
    { numRuns: opts.numRuns, seed: opts.seed },
  );
  return tally;
}
