/**
 * Every kernel of the WebGPU backend against the JS reference, on random small shapes (odd,
 * non-multiple-of-4 sizes and rank 1 included): the selftest of @tensorpeft/kernels-wasm (same
 * case generator, same tolerance), plus hand-picked edge cases.
 *
 * Tolerance: ‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞ per case, K_eff the number of float32 rounding
 * steps along one term (summation length + multiplications) and |y| the reference on |inputs|.
 * Justification: the JS reference accumulates in float64 and rounds once; the GPU accumulates in
 * float32 in its own order (tiles of 16, fused multiply-adds where the driver contracts them), and
 * the standard a-priori bound for any order of a K-term float32 dot product is γ_K·Σ|terms| with
 * γ_K ≈ K·2⁻²⁴ — exactly this. FMA only removes rounding steps, so it stays inside the bound.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { JsBackend, ShapeMismatchError, type MatExpr, type ModuleUpdate } from '@tensorpeft/core';
import { runSelftest } from '@tensorpeft/kernels-wasm';
import type { WebGpuBackend } from './backend.js';
import { makeBackend } from './test-utils/gpu.js';

let gpu: WebGpuBackend;
/** The shared-memory GEMM, forced (on SwiftShader the default 'auto' picks the simple one). */
let tiled: WebGpuBackend;
const js = new JsBackend();
beforeAll(async () => {
  gpu = await makeBackend();
  tiled = await makeBackend({ gemm: 'tiled' });
});
afterAll(() => {
  gpu?.destroy();
  tiled?.destroy();
});

describe('selftest (every kernel vs JS)', () => {
  it('passes on random shapes, realistic BERT-base shapes and tiny adapters of every method', async () => {
    const r = await runSelftest(gpu, { rounds: 6, seed: 11 });
    expect(r.failures).toEqual([]);
    expect(r.backend).toBe('webgpu');
    expect(gpu.gemmKernel).toBe(gpu.software ? 'simple' : 'tiled');
    expect(r.passed).toBeGreaterThan(80);
    expect(r.max_err_over_bound).toBeLessThanOrEqual(1);
    expect(r.max_rel_err).toBeLessThan(1e-5);
  }, 120_000); // ~5 s alone; SwiftShader shares 2 cores with the rest of the suite

  it('passes with the tiled (workgroup shared memory) GEMM too', async () => {
    expect(tiled.gemmKernel).toBe('tiled');
    // Small shapes only: SwiftShader runs workgroup barriers ~20× slower than the simple kernel.
    const r = await runSelftest(tiled, { rounds: 4, seed: 12, realistic: false });
    expect(r.failures).toEqual([]);
    expect(r.passed).toBeGreaterThan(50);
    expect(r.max_err_over_bound).toBeLessThanOrEqual(1);
  }, 120_000);
});

// ---------------------------------------------------------------------------------------------

import { buildShape, createAdapter, listMethods, materializeAdapter, evaluateExpr } from '@tensorpeft/core';
import { mulberry32, randF32, positive, expectWithin, absExpr, exprDepth, TINY_CONFIGS } from './test-utils/compare.js';

const rng = mulberry32(77);
const absU = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });
const upd = (m: number, n: number, rho: number, s = 0.75): ModuleUpdate => ({ path: 'w', n, m, rho, s, A: randF32(n * rho, rng), B: randF32(m * rho, rng) });

/** The default backend (simple GEMM on SwiftShader). */
const simple = () => gpu;

describe('edge shapes', () => {
  it('evaluate: rank-1 TT, single core, tile-boundary sizes, all-vector Tucker, 5-mode permutation', async () => {
    const core = (a: number, s: number, b: number) => ({ data: randF32(a * s * b, rng), rLeft: a, size: s, rRight: b });
    const exprs: MatExpr[] = [
      { kind: 'tt', cores: [core(1, 17, 1), core(1, 1, 1)], rows: 17, cols: 1 },
      { kind: 'tt', cores: [core(1, 33, 1)], gate: { rank: positive(1, rng), mode: positive(33, rng) }, rows: 1, cols: 33, transpose: true },
      { kind: 'tt', cores: [core(1, 16, 17), core(17, 16, 33)], gate: { rank: positive(17, rng), mode: positive(16, rng) }, rows: 256, cols: 33 },
      { kind: 'dense', src: randF32(1, rng), rows: 1, cols: 1, takeRows: 1, takeCols: 1, transpose: true },
      { kind: 'cp', inner: randF32(1, rng), p: 1, outer: randF32(1, rng), q: 1, r: 1 },
      { kind: 'tucker', core: randF32(6, rng), coreDims: [2, 3], modes: [{ op: 'vector', v: randF32(2, rng) }, { op: 'vector', v: randF32(3, rng) }], order: [], rows: 1, cols: 1 },
      {
        kind: 'tucker',
        core: randF32(2 * 3 * 2 * 1 * 3, rng),
        coreDims: [2, 3, 2, 1, 3],
        modes: [{ op: 'keep' }, { op: 'matrix', U: randF32(5 * 3, rng), rows: 5 }, { op: 'keep' }, { op: 'matrix', U: randF32(3, rng), rows: 3 }, { op: 'keep' }],
        order: [4, 2, 0, 3, 1],
        rows: 20,
        cols: 9,
      },
    ];
    for (const b of [gpu, tiled]) for (const e of exprs) expectWithin(await b.evaluate(e), evaluateExpr(e), evaluateExpr(absExpr(e)), exprDepth(e), `${e.kind} ${b.gemmKernel}`);
  });

  it('merge in both layouts and apply at tile boundaries and rank 1 (tiled and simple GEMM)', async () => {
    for (const [m, n, rho] of [[1, 1, 1], [16, 16, 16], [17, 33, 1], [31, 47, 17]] as const) for (const gpu of [tiled, simple()]) {
      for (const layout of ['out_in', 'in_out'] as const) {
        const u = upd(m, n, rho, -1.25);
        const W = randF32(m * n, rng);
        const [x, y, yAbs] = [W.slice(), W.slice(), W.map(Math.abs)];
        await gpu.merge(x, layout, u);
        await js.merge(y, layout, u);
        await js.merge(yAbs, layout, absU(u));
        expectWithin(x, y, yAbs, rho + 2, `merge ${layout} ${m}x${n}x${rho}`);
      }
      const rows = (m % 5) + 1;
      const u = upd(m, n, rho);
      const X = randF32(rows * n, rng);
      const Y = randF32(rows * m, rng);
      const [x, y, yAbs] = [Y.slice(), Y.slice(), Y.map(Math.abs)];
      await gpu.apply(X, x, rows, u);
      await js.apply(X, y, rows, u);
      await js.apply(X.map(Math.abs), yAbs, rows, absU(u));
      expectWithin(x, y, yAbs, n + rho + 2, `apply ${rows} rows ${n}->${m} ρ${rho} ${gpu.gemmKernel}`);
    }
  });

  it('rejects bad shapes with ShapeMismatchError before submitting anything', async () => {
    await expect(gpu.evaluate({ kind: 'cp', inner: new Float32Array(5), p: 2, outer: new Float32Array(2), q: 1, r: 2 })).rejects.toBeInstanceOf(ShapeMismatchError);
    await expect(gpu.merge(new Float32Array(5), 'out_in', upd(2, 3, 1))).rejects.toBeInstanceOf(ShapeMismatchError);
    await expect(gpu.apply(new Float32Array(3), new Float32Array(4), 2, upd(2, 3, 1))).rejects.toBeInstanceOf(ShapeMismatchError);
  });
});

describe('whole-adapter materialize', () => {
  const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');

  it('has a tiny config for each registered method', () => {
    expect(listMethods().map((m) => m.peftType).filter((t) => !TINY_CONFIGS[t])).toEqual([]);
  });

  for (const method of listMethods()) {
    for (const config of TINY_CONFIGS[method.peftType] ?? []) {
      it(`${method.cliName} ${JSON.stringify(config)} in one submission`, async () => {
        const a = createAdapter({ method, config, shape: tiny, seed: 5, nonzero: true });
        const jobs = a.method.jobs(a.config, a.plan, a.params);
        const q = gpu.device.queue;
        const submit = q.submit.bind(q);
        let submits = 0;
        q.submit = (bufs: Iterable<GPUCommandBuffer>) => {
          submits++;
          return submit(bufs);
        };
        let xs: ModuleUpdate[];
        try {
          xs = await materializeAdapter(a, gpu);
        } finally {
          q.submit = submit;
        }
        expect(submits).toBe(1);
        const ys = await materializeAdapter(a, js);
        const as = await js.materialize(jobs.map((j) => ({ ...j, a: absExpr(j.a), b: absExpr(j.b) })));
        expect(xs.map(({ path, n, m, rho, s }) => ({ path, n, m, rho, s }))).toEqual(ys.map(({ path, n, m, rho, s }) => ({ path, n, m, rho, s })));
        xs.forEach((x, i) => {
          expectWithin(x.A, ys[i]!.A, as[i]!.A, exprDepth(jobs[i]!.a), `${x.path} A′`);
          expectWithin(x.B, ys[i]!.B, as[i]!.B, exprDepth(jobs[i]!.b), `${x.path} B′`);
        });
      });
    }
  }
});
