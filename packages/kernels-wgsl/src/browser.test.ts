/**
 * The WebGPU backend in headless Chromium (`--enable-unsafe-webgpu`; SwiftShader without a GPU).
 * Cases are generated here; the page (an esbuild bundle of browser-entry.ts served from a local
 * node:http server on 127.0.0.1) runs them on navigator.gpu, and the outputs are compared in Node
 * with the JS reference under the selftest tolerance (‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞).
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`; another binary via
 * TENSORPEFT_CHROMIUM), driven by playwright-core; never `npx playwright install`. Without it every
 * test here fails with that instruction (no skips).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, fromFiles, needChromium, useBrowserTest, wire, type ServedFile } from '@tensorpeft/browser-harness';
import { describe, expect, it } from 'vitest';
import { buildShape, createAdapter, evaluateExpr, getMethod, JsBackend, type MatExpr, type ModuleUpdate, type TTCore } from '@tensorpeft/core';
import { encodeModel, type Graph } from '@tensorpeft/model-gen';
import type { BrowserCase } from './browser-entry.js';
import { absExpr, expectWithin, exprDepth, mulberry32, positive, randF32 } from './test-utils/compare.js';
import { expectHalf, type Tally } from './test-utils/half-ref.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');

const browser = useBrowserTest({
  site: async () => {
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft webgpu</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'browser-entry.ts'), root)],
    };
    // ONNX Runtime Web's dist (the WebGPU bundle and its .wasm), for the end-to-end test.
    const ortDist = path.join(path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web')), '.');
    for (const f of readdirSync(ortDist)) {
      if (/^ort\.webgpu\.bundle\.min\.mjs$|^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) {
        files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
      }
    }
    return { lookup: fromFiles(files), headers: { 'cache-control': 'no-store' } };
  },
  launch: { extraArgs: ['--enable-unsafe-webgpu'] },
  pageGlobal: 'tensorpeftTest',
  timeout: 60_000,
});

async function makeCases(): Promise<{ cases: BrowserCase[]; expected: Array<Array<[Float32Array, Float32Array, number]>> }> {
  const rng = mulberry32(2025);
  const js = new JsBackend();
  const cases: BrowserCase[] = [];
  const expected: Array<Array<[Float32Array, Float32Array, number]>> = [];
  const absU = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });
  const core = (a: number, s: number, b: number): TTCore => ({ data: randF32(a * s * b, rng), rLeft: a, size: s, rRight: b });
  const exprs: MatExpr[] = [
    { kind: 'tt', cores: [core(1, 3, 5), core(5, 7, 3)], gate: { rank: positive(5, rng), mode: positive(7, rng) }, rows: 7, cols: 9, transpose: true },
    { kind: 'tucker', core: randF32(3 * 2 * 5, rng), coreDims: [3, 2, 5], modes: [{ op: 'keep' }, { op: 'vector', v: randF32(2, rng) }, { op: 'matrix', U: randF32(9 * 5, rng), rows: 9 }], order: [1, 0], rows: 9, cols: 3 },
  ];
  for (const e of exprs) {
    cases.push({ op: 'evaluate', expr: e });
    expected.push([[evaluateExpr(e), evaluateExpr(absExpr(e)), exprDepth(e)]]);
  }
  {
    const [m, n, rho] = [37, 29, 3];
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: 1.25, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
    const W = randF32(m * n, rng);
    const [y, yAbs] = [W.slice(), W.map(Math.abs)];
    await js.merge(y, 'in_out', u);
    await js.merge(yAbs, 'in_out', absU(u));
    cases.push({ op: 'merge', W, layout: 'in_out', u });
    expected.push([[y, yAbs, rho + 2]]);
    const rows = 5;
    const X = randF32(rows * n, rng);
    const Y = randF32(rows * m, rng);
    const [y2, y2Abs] = [Y.slice(), Y.map(Math.abs)];
    await js.apply(X, y2, rows, u);
    await js.apply(X.map(Math.abs), y2Abs, rows, absU(u));
    cases.push({ op: 'apply', X, Y, rows, u });
    expected.push([[y2, y2Abs, n + rho + 2]]);
  }
  const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
  const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed: 3, nonzero: true });
  const jobs = a.method.jobs(a.config, a.plan, a.params);
  const exp = jobs.flatMap((j) => [
    [evaluateExpr(j.a), evaluateExpr(absExpr(j.a)), exprDepth(j.a)] as [Float32Array, Float32Array, number],
    [evaluateExpr(j.b), evaluateExpr(absExpr(j.b)), exprDepth(j.b)] as [Float32Array, Float32Array, number],
  ]);
  cases.push({ op: 'materialize', jobs }, { op: 'materializeToGpu', jobs });
  expected.push(exp, exp);
  return { cases, expected };
}

describe('WebGPU backend in headless Chromium', () => {
  it('runs kernels on navigator.gpu in the page and matches the JS reference computed in Node', async () => {
    needChromium();
    const { cases, expected } = await makeCases();
    const res = (await browser.page.evaluate((w) => (globalThis as any).tensorpeftTest.runCases(w), wire(cases))) as { backend: string; adapter: string; outputs: number[][][] };
    expect(res.backend).toBe('webgpu');
    expect(res.outputs.length).toBe(expected.length);
    res.outputs.forEach((outs, i) => {
      expect(outs.length, `case ${i} (${cases[i]!.op}) output count`).toBe(expected[i]!.length);
      outs.forEach((x, k) => {
        const [y, yAbs, depth] = expected[i]![k]!;
        expectWithin(Float32Array.from(x), y, yAbs, depth, `case ${i} (${cases[i]!.op}) output ${k}`);
      });
    });
    expect(browser.pageErrors).toEqual([]);
  });

  it('ORT-web WebGPU session: GPU-resident A′/s·B′ᵀ from materializeToGpu give the same output as their CPU copies', async () => {
    needChromium();
    const rng = mulberry32(9);
    const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
    const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed: 4, nonzero: true });
    const jobs = a.method.jobs(a.config, a.plan, a.params);
    const j = jobs[0]!;
    const rows = 5;
    // y = (x·A)·B with A [n, ρ] and B [ρ, m] graph inputs (symbolic ρ), as the plugin's side branch.
    const graph: Graph = {
      name: 'branch',
      nodes: [
        { op: 'MatMul', name: 'xa', inputs: ['x', 'A'], outputs: ['t'], attrs: {} },
        { op: 'MatMul', name: 'tb', inputs: ['t', 'B'], outputs: ['y'], attrs: {} },
      ],
      initializers: new Map(),
      inputs: [
        { name: 'x', dtype: 'float32', dims: ['rows', j.n] },
        { name: 'A', dtype: 'float32', dims: [j.n, 'rho'] },
        { name: 'B', dtype: 'float32', dims: ['rho', j.m] },
      ],
      outputs: [{ name: 'y', dtype: 'float32', dims: ['rows', j.m] }],
      opset: 17,
    };
    const X = randF32(rows * j.n, rng);
    const r = (await browser.page.evaluate(
      ([url, model, w, x, n]) => (globalThis as any).tensorpeftTest.ortCase(url, model, w, x, n),
      [`${browser.origin}/ort/ort.webgpu.bundle.min.mjs`, Array.from(encodeModel(graph)), wire([j]), Array.from(X), rows] as const,
    )) as { sameDevice: boolean; gpu: number[]; cpu: number[] };
    expect(r.sameDevice).toBe(true);
    expect(r.gpu.length).toBe(rows * j.m);
    expect(r.gpu).toEqual(r.cpu); // same inputs, bit for bit: no CPU copy needed
    // And it is the branch output s·(x·A′)·B′ᵀ of the JS reference (loose: ORT's own GEMM order).
    const [ref] = await new JsBackend().materialize([j]);
    const y = new Float32Array(rows * j.m);
    await new JsBackend().apply(X, y, rows, ref!);
    const scale = Math.max(...y.map(Math.abs));
    expect(scale).toBeGreaterThan(0);
    r.gpu.forEach((v, i) => expect(Math.abs(v - y[i]!)).toBeLessThan(1e-5 * scale + 1e-6));
    expect(browser.pageErrors).toEqual([]);
  });

  it('ORT-web WebGPU session: float16 GPU-resident A′/s·B′ᵀ are read by ORT as binary16, each the rounding of its float32 value', async () => {
    needChromium();
    const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
    const a = createAdapter({ method: getMethod('trac'), config: { r: 3, lora_alpha: 6, tensor_shape: [2, 3, 3], tensor_rank_a: [1, 3, 2], tensor_rank_b: [1, 2, 5] }, shape: tiny, seed: 6, nonzero: true });
    const j = a.method.jobs(a.config, a.plan, a.params)[0]!;
    // Identity on float16 inputs: ORT moves the buffers without a shader (its float16 kernels need
    // shader-f16, which SwiftShader lacks), so what comes back is what ORT read from our buffers.
    const graph: Graph = {
      name: 'half-feeds',
      nodes: [
        { op: 'Identity', name: 'ia', inputs: ['A'], outputs: ['a'], attrs: {} },
        { op: 'Identity', name: 'ib', inputs: ['B'], outputs: ['b'], attrs: {} },
      ],
      initializers: new Map(),
      inputs: [
        { name: 'A', dtype: 'float16', dims: [j.n, 'rho'] },
        { name: 'B', dtype: 'float16', dims: ['rho', j.m] },
      ],
      outputs: [
        { name: 'a', dtype: 'float16', dims: [j.n, 'rho'] },
        { name: 'b', dtype: 'float16', dims: ['rho', j.m] },
      ],
      opset: 17,
    };
    const r = (await browser.page.evaluate(
      ([url, model, w]) => (globalThis as any).tensorpeftTest.ortHalfCase(url, model, w),
      [`${browser.origin}/ort/ort.webgpu.bundle.min.mjs`, Array.from(encodeModel(graph)), wire([j])] as const,
    )) as { halfKernel: string; f32: number[][]; viaOrt: number[][] };
    const tally: Tally = { checked: 0, nearest: 0 };
    expectHalf(Uint16Array.from(r.viaOrt[0]!), Float32Array.from(r.f32[0]!), 'A′ via ORT', tally);
    expectHalf(Uint16Array.from(r.viaOrt[1]!), Float32Array.from(r.f32[1]!), 's·B′ᵀ via ORT', tally);
    expect(tally.checked).toBe((j.n + j.m) * j.rho);
    console.log(JSON.stringify({ half_kernel: r.halfKernel, ...tally }));
    expect(browser.pageErrors).toEqual([]);
  });

  it('without WebGPU the page gets a WebGpuUnavailableError', async () => {
    needChromium();
    const r = (await browser.page.evaluate(() => (globalThis as any).tensorpeftTest.missing())) as { name: string; typed: boolean };
    expect(r).toEqual({ name: 'WebGpuUnavailableError', typed: true });
  });
});
