/**
 * GPU-fed adapters in headless Chromium (`--enable-unsafe-webgpu`; SwiftShader without a GPU): a
 * tiny BERT (model-gen) served from 127.0.0.1 runs through transformers.js on ONNX Runtime Web's
 * WebGPU EP; the same adapter loaded with `{ gpu: WebGpuBackend }` (feeds from materializeToGpu on
 * ORT's GPUDevice) and without (CPU feeds) gives the same logits, and disabled gives the base exactly.
 * Under an LRU budget fitting one GPU-fed adapter, alternating two of them evicts and re-materializes
 * on every swap, each output still equal to its CPU-fed one, and the evicted buffers go back to the
 * kernels-wgsl pool (the re-materializations reuse them: no buffer created while alternating).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { makeModel } from '@tensorpeft/model-gen';
import { describe, expect, it } from 'vitest';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../..');
const made = makeModel({ arch: 'bert', size: 'tiny', numLabels: 3, quantized: false });

interface Pool {
  created: number;
  live: number;
  idle: number;
}
interface Mem {
  materialized_bytes: number;
  gpu_bytes: number;
  evictions: number;
  rematerializations: number;
}

const browser = useBrowserTest({
  site: async () => {
    const m = await made;
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft plugin webgpu</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'test-utils/webgpu-entry.ts'), root)],
      '/assets/kernels-wgsl.js': ['text/javascript', await bundleEntry(path.join(root, 'packages/kernels-wgsl/src/index.ts'), root)],
    };
    for (const [rel, bytes] of m.files) files[`/models/bert/${rel}`] = [rel.endsWith('.json') ? 'application/json' : 'application/octet-stream', bytes];
    // The wasm of the onnxruntime-web transformers.js bundles (its WebGPU build).
    const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
    const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) {
        files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
      }
    }
    return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
  },
  launch: { extraArgs: ['--enable-unsafe-webgpu'] },
  pageGlobal: 'tensorpeftPluginTest',
  timeout: 120_000,
});

describe('plugin on ORT-web WebGPU with GPU-resident adapter feeds (headless Chromium)', () => {
  it('GPU-fed adapter = CPU-fed adapter (≤ 1e-5), disabled = base exactly, buffers released on unload', async () => {
    needChromium();
    const m = await made;
    const texts = ['i feel happy today', 'a b c'];
    for (const method of ['LORA', 'TENSLORA']) {
      const r = (await browser.page.evaluate(
        ([origin, shape, meth, t]: readonly [string, unknown, string, string[]]) => (globalThis as any).tensorpeftPluginTest.run(origin, shape, meth, t),
        [browser.origin, JSON.parse(JSON.stringify(m.shape)), method, texts] as const,
      )) as {
        sameDevice: boolean;
        base: number[];
        cpu: number[];
        gpu: number[];
        disabled: number[];
        pool: Array<{ live: number; idle: number }>;
        cpu2: number[];
        per: number;
        before: { pool: Pool; mem: Mem };
        alternation: Array<{ name: 'g3' | 'g4'; logits: number[]; mem: Mem; pool: Pool }>;
        end: Pool;
      };
      expect(r.sameDevice).toBe(true);
      expect(r.base.length).toBe(3 * texts.length);
      expect(r.gpu.length).toBe(r.base.length);
      const effect = Math.max(...r.cpu.map((v, i) => Math.abs(v - r.base[i]!)));
      expect(effect, `${method} changes the output`).toBeGreaterThan(1e-4);
      const diff = Math.max(...r.gpu.map((v, i) => Math.abs(v - r.cpu[i]!)));
      console.log(JSON.stringify({ method, adapter_effect: effect, gpu_vs_cpu_max_abs_diff: diff, disabled_vs_base_max_abs_diff: Math.max(...r.disabled.map((v, i) => Math.abs(v - r.base[i]!))) }));
      expect(diff, `${method} GPU-fed vs CPU-fed`).toBeLessThanOrEqual(1e-5);
      expect(r.disabled).toEqual(r.base);
      expect(r.pool[0]!.live).toBeGreaterThan(0); // the GPU-fed adapter's A′ / s·B′ᵀ buffers
      expect(r.pool[1]!.idle).toBeGreaterThan(r.pool[0]!.idle); // back to the pool on unload_adapter

      // Budget of one GPU-fed adapter: loading the second evicted the first; GPU bytes are counted.
      expect(r.per).toBeGreaterThan(0);
      expect(Math.max(...r.cpu2.map((v, i) => Math.abs(v - r.cpu[i]!))), `${method} seeds 3 and 4 differ`).toBeGreaterThan(1e-4);
      expect(r.before.mem).toMatchObject({ materialized_bytes: 0, gpu_bytes: r.per, evictions: 1, rematerializations: 0 });
      const refs = { g3: r.cpu, g4: r.cpu2 };
      const altDiff = Math.max(...r.alternation.flatMap((s) => s.logits.map((v, j) => Math.abs(v - refs[s.name][j]!))));
      console.log(JSON.stringify({ method, gpu_bytes_per_adapter: r.per, alternation_vs_cpu_max_abs_diff: altDiff, pool: r.alternation.map((s) => s.pool) }));
      r.alternation.forEach((step, i) => {
        const d = Math.max(...step.logits.map((v, j) => Math.abs(v - refs[step.name][j]!)));
        expect(d, `${method} ${step.name} swap ${i}: GPU-fed re-materialized vs CPU-fed`).toBeLessThanOrEqual(1e-5);
        // Every swap evicted the other adapter and re-materialized this one, within the budget.
        expect(step.mem).toMatchObject({ gpu_bytes: r.per, evictions: 2 + i, rematerializations: 1 + i });
        // The evicted adapter's buffers went back to the pool and were reused: nothing new created.
        expect(step.pool.created).toBe(r.before.pool.created);
        expect(step.pool.live).toBe(r.before.pool.live);
      });
      expect(r.alternation.length).toBe(4);
      // Unloading both gives the last one's buffers back too.
      expect(r.end.idle).toBeGreaterThan(r.alternation[3]!.pool.idle);
    }
    expect(browser.pageErrors).toEqual([]);
  }, 240_000);
});
