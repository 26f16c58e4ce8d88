/**
 * float16 results of `materializeToGpu` (half.ts), in Node on Dawn (SwiftShader here, which has no
 * `shader-f16`: the `pack2x16float` kernel; half-native.test.ts runs the same checks on lavapipe,
 * which has it: the native kernel). Reference: an independent binary16 rounding written from the
 * format's definition (spacing 2^(e−10) in binade e ≥ −14, 2⁻²⁴ below), in float64 (half-ref.ts).
 *
 * Criterion. The float32 values entering the conversion are known exactly (dense leaf expressions
 * copy their source; folding s is one float32 product, which WGSL rounds correctly, reproduced with
 * Math.fround), so each binary16 output is checked element by element. WGSL lets the implementation
 * pick either adjacent binary16 value for an inexact conversion, so the assertion is that the output
 * is one of the two neighbours (exact when the value is representable; beyond ±65504 the kernel pins
 * round-to-nearest-even's ±65504 / ±∞ itself); agreement with round-to-nearest-even is logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShape, createAdapter, getMethod, type MaterializeJob } from '@tensorpeft/core';
import type { WebGpuBackend } from './backend.js';
import { checkHalfRandomShapes, denseExpr } from './test-utils/half-cases.js';
import { expectHalf, type Tally } from './test-utils/half-ref.js';
import { makeBackend } from './test-utils/gpu.js';

let gpu: WebGpuBackend;
beforeAll(async () => {
  gpu = await makeBackend();
});
afterAll(() => gpu?.destroy());

const dense = denseExpr;

describe("materializeToGpu({ dtype: 'float16' })", () => {
  it('writes each A′ and s·B′ᵀ value rounded once to binary16 (random shapes, fast-check)', async () => {
    expect(gpu.halfKernel).toBe(gpu.device.features.has('shader-f16') ? 'native' : 'pack');
    const tally = await checkHalfRandomShapes(gpu, { numRuns: 25, seed: 12 });
    console.log(JSON.stringify({ kernel: gpu.halfKernel, values_checked: tally.checked, round_to_nearest_even: tally.nearest }));
    expect(tally.checked).toBeGreaterThan(1000);
  }, 120_000);

  it('a whole adapter: binary16 of the float32 results of the same materialization (TRAC, tiny BERT)', async () => {
    const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
    const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed: 5, nonzero: true });
    const jobs = a.method.jobs(a.config, a.plan, a.params);
    const f32 = await gpu.materializeToGpu(jobs, { foldScale: true, transposeB: true });
    const f16 = await gpu.materializeToGpu(jobs, { foldScale: true, transposeB: true, dtype: 'float16' });
    const tally: Tally = { checked: 0, nearest: 0 };
    for (const [i, h] of f16.entries()) {
      const w = f32[i]!;
      expect(w.dtype).toBe('float32');
      // The same program on the same device: the float32 values the conversion saw.
      expectHalf(await gpu.readHalfBuffer(h.A, h.n * h.rho), await gpu.readBuffer(w.A, w.n * w.rho), `${h.path} A′`, tally);
      expectHalf(await gpu.readHalfBuffer(h.B, h.m * h.rho), await gpu.readBuffer(w.B, w.m * w.rho), `${h.path} s·B′ᵀ`, tally);
    }
    expect(tally.checked).toBe(jobs.reduce((t, j) => t + (j.n + j.m) * j.rho, 0));
    [...f32, ...f16].forEach((u) => u.release());
  });

  it('rejects a float16 update in a float32 merge, and native float16 without shader-f16', async () => {
    const job: MaterializeJob = { path: 'w', n: 3, m: 2, rho: 1, s: 1, a: dense(new Float32Array(3), 3, 1), b: dense(new Float32Array(2), 2, 1) };
    const [u] = await gpu.materializeToGpu([job], { dtype: 'float16' });
    const W = gpu.device.createBuffer({ size: 24, usage: 0x80 | 0x4 | 0x8 });
    await expect(gpu.mergeOnGpu(W, 'out_in', u!)).rejects.toMatchObject({ name: 'ShapeMismatchError' });
    W.destroy();
    u!.release();
    if (!gpu.device.features.has('shader-f16')) await expect(makeBackend({ half: 'native' })).rejects.toMatchObject({ name: 'WebGpuKernelError' });
    else {
      const native = await makeBackend({ half: 'native' });
      expect(native.halfKernel).toBe('native');
      native.destroy();
    }
  });
});
