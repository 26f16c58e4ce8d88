/**
 * The wasm backend in headless Chromium. Cases are generated here, the page (an esbuild bundle of
 * browser-entry.ts served from a local node:http server on 127.0.0.1) runs them on the wasm
 * backend — loading `kernels.wasm` by fetching `new URL('./kernels.wasm', import.meta.url)` — and
 * the outputs are compared in Node with the JS reference under the selftest tolerance
 * (‖x − y‖∞ ≤ (K_eff + 2)·2⁻²⁴·‖|y|‖∞, see selftest.ts). A corrupted `.wasm` must fail in the
 * page with a WasmLoadError.
 *
 * Needs Debian's Chromium at /usr/bin/chromium (`apt-get install -y chromium`; another binary via
 * TENSORPEFT_CHROMIUM), driven by playwright-core; never `npx playwright install`. Without it every
 * test here fails with that instruction (no skips).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, fromFiles, needChromium, useBrowserTest, wire } from '@tensorpeft/browser-harness';
import { describe, expect, it } from 'vitest';
import { buildShape, createAdapter, evaluateExpr, JsBackend, listMethods, type MatExpr, type ModuleUpdate, type TTCore } from '@tensorpeft/core';
import type { BrowserCase } from './browser-entry.js';
import { absExpr, exprDepth, TINY_CONFIGS } from './selftest.js';
import { expectWithin, mulberry32, positive, randF32 } from './test-utils/compare.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');

const browser = useBrowserTest({
  site: async () => {
    const js = await bundleEntry(path.join(here, 'browser-entry.ts'), root);
    const wasm = readFileSync(path.join(here, 'kernels.wasm'));
    const corrupt = Uint8Array.from(wasm);
    for (let i = 64; i < corrupt.length; i += 89) corrupt[i] = corrupt[i]! ^ 0xa5;
    const lookup = fromFiles({
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft wasm</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', js],
      '/assets/kernels.wasm': ['application/wasm', wasm],
      '/assets/corrupt.wasm': ['application/wasm', corrupt],
    });
    return { lookup, headers: { 'cache-control': 'no-store' } };
  },
  pageGlobal: 'tensorpeftTest',
  timeout: 60_000,
});

async function makeCases(): Promise<{ cases: BrowserCase[]; expected: Array<Array<[Float32Array, Float32Array, number]>> }> {
  const rng = mulberry32(2024);
  const js = new JsBackend();
  const cases: BrowserCase[] = [];
  const expected: Array<Array<[Float32Array, Float32Array, number]>> = [];
  const absU = (u: ModuleUpdate): ModuleUpdate => ({ ...u, s: Math.abs(u.s), A: u.A.map(Math.abs), B: u.B.map(Math.abs) });
  const core = (a: number, s: number, b: number): TTCore => ({ data: randF32(a * s * b, rng), rLeft: a, size: s, rRight: b });
  const exprs: MatExpr[] = [
    { kind: 'tt', cores: [core(1, 8, 24), core(24, 8, 36), core(36, 12, 16)], gate: { rank: positive(36, rng), mode: positive(12, rng) }, rows: 768, cols: 16 },
    { kind: 'tt', cores: [core(1, 3, 5), core(5, 7, 1)], rows: 3, cols: 7, transpose: true },
    { kind: 'dense', src: randF32(13 * 11, rng), rows: 13, cols: 11, takeRows: 9, takeCols: 7, transpose: true, rowScale: randF32(7, rng), colScale: randF32(9, rng) },
    { kind: 'cp', inner: randF32(5 * 7, rng), p: 5, outer: randF32(3 * 7, rng), q: 3, r: 7, scale: randF32(7, rng) },
    { kind: 'tucker', core: randF32(3 * 2 * 5, rng), coreDims: [3, 2, 5], modes: [{ op: 'keep' }, { op: 'vector', v: randF32(2, rng) }, { op: 'matrix', U: randF32(9 * 5, rng), rows: 9 }], order: [1, 0], rows: 9, cols: 3 },
  ];
  for (const e of exprs) {
    cases.push({ op: 'evaluate', expr: e });
    expected.push([[evaluateExpr(e), evaluateExpr(absExpr(e)), exprDepth(e)]]);
  }
  for (const [m, n, rho, layout] of [[37, 29, 1, 'out_in'], [96, 130, 16, 'in_out']] as const) {
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: 1.25, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
    const W = randF32(m * n, rng);
    const [y, yAbs] = [W.slice(), W.map(Math.abs)];
    await js.merge(y, layout, u);
    await js.merge(yAbs, layout, absU(u));
    cases.push({ op: 'merge', W, layout, u });
    expected.push([[y, yAbs, rho + 2]]);
  }
  {
    const [rows, n, m, rho] = [5, 33, 21, 3];
    const u: ModuleUpdate = { path: 'w', n, m, rho, s: -0.5, A: randF32(n * rho, rng), B: randF32(m * rho, rng) };
    const X = randF32(rows * n, rng);
    const Y = randF32(rows * m, rng);
    const [y, yAbs] = [Y.slice(), Y.map(Math.abs)];
    await js.apply(X, y, rows, u);
    await js.apply(X.map(Math.abs), yAbs, rows, absU(u));
    cases.push({ op: 'apply', X, Y, rows, u });
    expected.push([[y, yAbs, n + rho + 2]]);
  }
  const tiny = buildShape('bert', { hiddenSize: 18, numLayers: 2, numHeads: 3, numKvHeads: 3, intermediateSize: 30 }, 'tiny-bert');
  for (const method of listMethods()) {
    const config = TINY_CONFIGS[method.peftType]?.[0];
    if (!config) continue;
    const a = createAdapter({ method, config, shape: tiny, seed: 3, nonzero: true });
    const jobs = a.method.jobs(a.config, a.plan, a.params);
    cases.push({ op: 'materialize', jobs });
    expected.push(
      jobs.flatMap((j) => [
        [evaluateExpr(j.a), evaluateExpr(absExpr(j.a)), exprDepth(j.a)] as [Float32Array, Float32Array, number],
        [evaluateExpr(j.b), evaluateExpr(absExpr(j.b)), exprDepth(j.b)] as [Float32Array, Float32Array, number],
      ]),
    );
  }
  return { cases, expected };
}

describe('wasm backend in headless Chromium', () => {
  it('runs every kernel in the page and matches the JS reference computed in Node', async () => {
    needChromium();
    const { cases, expected } = await makeCases();
    const res = (await browser.page.evaluate(([w, src]) => (globalThis as any).tensorpeftTest.runCases(w, src), [wire(cases), undefined] as const)) as {
      backend: string;
      outputs: number[][][];
    };
    expect(res.backend).toBe('wasm');
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

  it('loads the binary from a URL given to the loader', async () => {
    needChromium();
    const res = (await browser.page.evaluate((src) => (globalThis as any).tensorpeftTest.runCases([], src), `${browser.origin}/assets/kernels.wasm`)) as { backend: string };
    expect(res.backend).toBe('wasm');
  });

  it('a corrupted or missing .wasm fails in the page with a WasmLoadError', async () => {
    needChromium();
    for (const [file, why] of [
      ['/assets/corrupt.wasm', /failed to compile/],
      ['/assets/missing.wasm', /could not be fetched.*HTTP 404/],
    ] as const) {
      const r = (await browser.page.evaluate((src) => (globalThis as any).tensorpeftTest.loadBroken(src), `${browser.origin}${file}`)) as { name: string; typed: boolean; message: string };
      expect(r.typed, r.message).toBe(true);
      expect(r.name).toBe('WasmLoadError');
      expect(r.message).toMatch(why);
    }
  });
});
