/**
 * The native float16 kernel (half.ts `half_native`: `f16(v)` into `array<f16>`), which only runs on
 * devices with `shader-f16`: here Dawn on Mesa's lavapipe (test-utils/lavapipe.ts says how that
 * driver is picked although CI exports SwiftShader's ICD). The same checks as half.test.ts, whose
 * device (SwiftShader) lacks shader-f16 and so runs the `pack2x16float` kernel; and, since lavapipe
 * is a second Vulkan driver (its own LLVM shader compiler), the float32 kernels once more against
 * the JS reference.
 *
 * A missing lavapipe (or one without shader-f16) fails the file with install instructions: this
 * test exists to run the native kernel, so it never skips.
 *
 * Tolerances.
 * - float16: exact per element, up to WGSL's latitude. The float32 values the conversion sees are
 *   known (random shapes: the dense sources and one correctly rounded float32 product s·B; whole
 *   adapters: the same program's float32 results, read back from the same device), and WGSL allows
 *   either binary16 neighbour of an inexact value, so each output must be one of the two (see
 *   test-utils/half-cases.ts); agreement with round-to-nearest-even is counted and logged.
 * - float32 vs JS: the selftest bound ‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞ (kernels.test.ts gives the
 *   reasoning: any summation order of K float32 roundings stays within γ_K·Σ|terms|); folding s into
 *   B′ is one more rounding step, so K_eff + 1 there.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildShape, createAdapter, JsBackend, listMethods, materializeAdapter } from '@tensorpeft/core';
import { runSelftest } from '@tensorpeft/kernels-wasm';
import type { WebGpuBackend } from './backend.js';
import { absExpr, exprDepth, expectWithin, TINY_CONFIGS } from './test-utils/compare.js';
import { checkHalfRandomShapes } from './test-utils/half-cases.js';
import { expectHalf, type Tally } from './test-utils/half-ref.js';
import { LAVAPIPE_INSTALL, makeLavapipeBackend } from './test-utils/lavapipe.js';

let gpu: WebGpuBackend;
let instance: GPU | undefined;
const js = new JsBackend();
beforeAll(async () => {
  ({ backend: gpu, instance } = await makeLavapipeBackend());
}, 60_000);
afterAll(() => {
  gpu?.destroy();
  instance = undefined;
});

describe('lavapipe (Dawn, Mesa ≥ 23): shader-f16 and the native float16 kernel', () => {
  it('has shader-f16, and the backend picks the native kernel', () => {
    console.log(JSON.stringify({ adapter: gpu.adapterDescription, features: [...gpu.device.features].sort() }));
    if (!gpu.device.features.has('shader-f16')) throw new Error(`the lavapipe device has no shader-f16 (${gpu.adapterDescription}): ${LAVAPIPE_INSTALL}`);
    expect(gpu.halfKernel).toBe('native');
    expect(instance).toBeDefined();
  });

  it('native kernel: each A′ and s·B′(ᵀ) value rounded once to binary16 (random shapes, fast-check)', async () => {
    expect(gpu.halfKernel).toBe('native');
    // half.test.ts's property and seed, 100 runs instead of 25 (lavapipe is fast: ~2 s under load).
    const tally = await checkHalfRandomShapes(gpu, { numRuns: 100, seed: 12 });
    console.log(JSON.stringify({ kernel: gpu.halfKernel, values_checked: tally.checked, round_to_nearest_even: tally.nearest }));
    expect(tally.checked).toBeGreaterThan(1000);
  }, 120_000);

  it('float32 kernels vs JS (selftest: random and BERT-base shapes, every kernel, tiny adapters of every method)', async () => {
    expect(gpu.gemmKernel).toBe('simple'); // lavapipe is a software adapter: 'auto' picks the simple GEMM
    const r = await runSelftest(gpu, { rounds: 6, seed: 23 });
    console.log(JSON.stringify({ gemm: gpu.gemmKernel, selftest_passed: r.passed, max_err_over_bound: r.max_err_over_bound, max_rel_err: r.max_rel_err }));
    expect(r.failures).toEqual([]);
    expect(r.passed).toBeGreaterThan(80);
    expect(r.max_err_over_bound).toBeLessThanOrEqual(1);
  }, 120_000);

  it('float32 kernels vs JS with the tiled (workgroup shared memory) GEMM', async () => {
    const { backend: tiled } = await makeLavapipeBackend({ gemm: 'tiled' });
    try {
      expect(tiled.gemmKernel).toBe('tiled');
      const r = await runSelftest(tiled, { rounds: 6, seed: 24 });
      console.log(JSON.stringify({ gemm: tiled.gemmKernel, selftest_passed: r.passed, max_err_over_bound: r.max_err_over_bound, max_rel_err: r.max_rel_err }));
      expect(r.failures).toEqual([]);
      expect(r.passed).toBeGreaterThan(80);
      expect(r.max_err_over_bound).toBeLessThanOrEqual(1);
    } finally {
      tiled.destroy();
    }
  }, 120_000);
});

describe('whole adapters of every method on lavapipe: float32 vs JS, float16 = binary16 of those float32 values', () => {
  const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
  const tally: Tally = { checked: 0, nearest: 0 };

  it('has a tiny config for each registered method (six)', () => {
    expect(listMethods().length).toBeGreaterThanOrEqual(6);
    expect(listMethods().map((m) => m.peftType).filter((t) => !TINY_CONFIGS[t])).toEqual([]);
  });

  for (const method of listMethods()) {
    for (const [c, config] of (TINY_CONFIGS[method.peftType] ?? []).entries()) {
      it(`${method.cliName} ${JSON.stringify(config)}`, async () => {
        const a = createAdapter({ method, config, shape: tiny, seed: 31 + c, nonzero: true });
        const jobs = a.method.jobs(a.config, a.plan, a.params);
        // The plugin's options: s folded into B′, B′ transposed to [ρ, m].
        const opts = { foldScale: true, transposeB: true } as const;
        const f32 = await gpu.materializeToGpu(jobs, opts);
        const f16 = await gpu.materializeToGpu(jobs, { ...opts, dtype: 'float16' });
        try {
          const ys = await materializeAdapter(a, js);
          const abs = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
          for (const [i, w] of f32.entries()) {
            const h = f16[i]!;
            const y = ys[i]!;
            expect([h.dtype, w.dtype, h.path, h.n, h.m, h.rho, h.s]).toEqual(['float16', 'float32', y.path, y.n, y.m, y.rho, 1]);
            const A = await gpu.readBuffer(w.A, w.n * w.rho);
            const sBt = await gpu.readBuffer(w.B, w.m * w.rho);
            // References of s·B′ᵀ from the JS result (float64 product, no rounding of its own).
            const [ref, refAbs] = [new Float32Array(w.m * w.rho), new Float32Array(w.m * w.rho)];
            for (let r = 0; r < w.m; r++)
              for (let k = 0; k < w.rho; k++) {
                ref[k * w.m + r] = y.s * y.B[r * w.rho + k]!;
                refAbs[k * w.m + r] = Math.abs(y.s) * abs[i]!.B[r * w.rho + k]!;
              }
            expectWithin(A, y.A, abs[i]!.A, exprDepth(jobs[i]!.a), `${w.path} A′ float32`);
            expectWithin(sBt, ref, refAbs, exprDepth(jobs[i]!.b) + 1, `${w.path} s·B′ᵀ float32`);
            expectHalf(await gpu.readHalfBuffer(h.A, h.n * h.rho), A, `${h.path} A′ float16`, tally);
            expectHalf(await gpu.readHalfBuffer(h.B, h.m * h.rho), sBt, `${h.path} s·B′ᵀ float16`, tally);
          }
        } finally {
          [...f32, ...f16].forEach((u) => u.release());
        }
      });
    }
  }

  it('checked every value of every adapter above', () => {
    console.log(JSON.stringify({ whole_adapter_values_checked: tally.checked, round_to_nearest_even: tally.nearest }));
    expect(tally.checked).toBeGreaterThan(1000);
  });
});
