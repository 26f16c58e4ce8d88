/**
 * GPU-resident results: `materializeToGpu` writes A′/B′ into GPUBuffers (no read-back), equal to
 * the CPU path; the plugin's feed layout (s folded into B, B as [ρ, m]); `mergeOnGpu` on a weight
 * that lives on the GPU; and the buffer pool: no growth over 200 materialize/release cycles.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShape, createAdapter, getMethod, JsBackend, type ModuleUpdate } from '@tensorpeft/core';
import type { WebGpuBackend } from './backend.js';
import { absExpr, expectWithin, exprDepth, mulberry32, randF32 } from './test-utils/compare.js';
import { makeBackend } from './test-utils/gpu.js';

let gpu: WebGpuBackend;
const js = new JsBackend();
beforeAll(async () => {
  gpu = await makeBackend();
});
afterAll(() => gpu?.destroy());

const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
const tracJobs = (seed: number) => {
  const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed, nonzero: true });
  return a.method.jobs(a.config, a.plan, a.params);
};

describe('materializeToGpu', () => {
  it('gives GPU buffers holding the same A′, B′ as the CPU path', async () => {
    const jobs = tracJobs(1);
    const [res, ys] = [await gpu.materializeToGpu(jobs), await js.materialize(jobs)];
    const as = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
    expect(res.length).toBe(jobs.length);
    for (const [i, r] of res.entries()) {
      expect(r.bLayout).toBe('m_rho');
      expect(r.s).toBe(jobs[i]!.s);
      expect(r.A.size).toBe(Math.max(4, r.n * r.rho * 4));
      expect(r.A.usage & GPUBufferUsage_STORAGE).toBeTruthy();
      expectWithin(await gpu.readBuffer(r.A, r.n * r.rho), ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a), `${r.path} A′`);
      expectWithin(await gpu.readBuffer(r.B, r.m * r.rho), ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b), `${r.path} B′`);
      r.release();
    }
  });

  it('plugin feed layout: s folded into B, B as [ρ, m]', async () => {
    const jobs = tracJobs(2);
    const res = await gpu.materializeToGpu(jobs, { foldScale: true, transposeB: true });
    const ys = await js.materialize(jobs);
    for (const [i, r] of res.entries()) {
      const y = ys[i]!;
      expect(r.s).toBe(1);
      expect(r.bLayout).toBe('rho_m');
      const bt = new Float32Array(r.m * r.rho);
      const btAbs = new Float32Array(r.m * r.rho);
      for (let a = 0; a < r.m; a++) for (let k = 0; k < r.rho; k++) {
        bt[k * r.m + a] = y.s * y.B[a * r.rho + k]!;
        btAbs[k * r.m + a] = Math.abs(bt[k * r.m + a]!);
      }
      expectWithin(await gpu.readBuffer(r.B, r.m * r.rho), bt, btAbs, exprDepth(jobs[i]!.b) + 1, `${r.path} s·B′ᵀ`);
      r.release();
    }
  });

  it('mergeOnGpu updates a weight buffer in place from GPU-resident A′/B′', async () => {
    const rng = mulberry32(3);
    const jobs = tracJobs(3).slice(0, 2);
    const [res, ys] = [await gpu.materializeToGpu(jobs), await js.materialize(jobs)];
    for (const layout of ['out_in', 'in_out'] as const) {
      const u = ys[0]!;
      const W0 = randF32(u.m * u.n, rng);
      const Wbuf = gpu.device.createBuffer({ size: W0.byteLength, usage: 0x80 | 0x4 | 0x8 });
      gpu.device.queue.writeBuffer(Wbuf, 0, W0.buffer as ArrayBuffer, W0.byteOffset, W0.byteLength);
      await gpu.mergeOnGpu(Wbuf, layout, res[0]!);
      const y = W0.slice();
      await js.merge(y, layout, u);
      const yAbs = W0.map(Math.abs);
      // |y| bound with |A′|, |B′| as computed (their own error is inside the materialize bound).
      await js.merge(yAbs, layout, { ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });
      expectWithin(await gpu.readBuffer(Wbuf, W0.length), y, yAbs, u.rho + 2 + exprDepth(jobs[0]!.a) + exprDepth(jobs[0]!.b), `mergeOnGpu ${layout}`);
      Wbuf.destroy();
    }
    res.forEach((r) => r.release());
  });
});

const GPUBufferUsage_STORAGE = 0x80;

describe('buffer pool', () => {
  it('does not grow over 200 materializations (GPU-resident + read-back) and 100 merges', async () => {
    const jobs = tracJobs(4);
    const u: ModuleUpdate = { path: 'w', n: 18, m: 18, rho: 3, s: 1, A: new Float32Array(54), B: new Float32Array(54) };
    const W = new Float32Array(18 * 18);
    const cycle = async () => {
      const res = await gpu.materializeToGpu(jobs, { foldScale: true, transposeB: true });
      res.forEach((r) => r.release());
      await gpu.materialize(jobs);
      await gpu.merge(W, 'out_in', u);
    };
    for (let i = 0; i < 5; i++) await cycle();
    const before = gpu.poolStats();
    for (let i = 0; i < 100; i++) await cycle(); // 200 materializations (+ 100 merges)
    const after = gpu.poolStats();
    expect(after.created).toBe(before.created);
    expect(after.live).toBe(before.live);
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.idle).toBe(after.live); // nothing held after release
  }, 120_000); // ~6 s alone
});
