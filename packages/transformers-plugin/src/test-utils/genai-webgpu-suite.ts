/**
 * The plugin on the genai layout on ORT-web's WebGPU EP: the tiny LLaMA in onnxruntime-genai's layout
 * (`layout: 'genai'`: packed qkv_proj MatMul → GroupQueryAttention with in-op rotary,
 * SkipSimplifiedLayerNormalization), each adapter fed from CPU tensors and from kernels-wgsl's
 * GPU-resident buffers.
 * - runner 'chromium': headless Chromium (SwiftShader here), `model.onnx` (fp32) and `model_q4.onnx`
 *   (MatMulNBits), float32 activations and GPU buffers. fp16 and q4f16 cannot run there: SwiftShader
 *   has no `shader-f16`.
 * - runner 'dawn': the same page code in a Node child on Dawn over Mesa's lavapipe, which has
 *   `shader-f16` (dawn-child.ts, dawn-page.mjs): `model_fp16.onnx` and `model_q4f16.onnx` (float16
 *   activations and I/O, the plugin's fp16 branches, binary16 GPU buffers).
 * Shared by genai-webgpu.test.ts (CI: fp32, LoRA, logits only), genai-webgpu-dawn.test.ts (CI:
 * q4f16, LoRA, logits only), genai-webgpu.slow.ts and genai-webgpu-dawn.slow.ts (by hand: fp32 + q4
 * resp. fp16 + q4f16, all six methods, greedy decoding), since both SwiftShader and lavapipe compile
 * a WebGPU pipeline for every new shape and the whole check takes minutes.
 *
 * References are computed in Node (onnxruntime-node) on the standard (optimum) layout of the same
 * weights, so they share no code with the packed graph or its per-slice branches:
 * - disabled = the untouched model bit for bit on the same EP (logits and greedy tokens);
 * - each adapter, CPU-fed and GPU-fed, vs the fp32 offline merge within `toleranceFor(dtype, …)`
 *   (tolerance.ts; q = |untouched model on this EP − fp32 base in Node|), its effect above the
 *   tolerance (GAINS below);
 * - GPU-fed vs CPU-fed, float32 graphs: ≤ 1e-4, the same float32 factors, materialized by the WGSL
 *   kernels vs the JS backend (last-bit differences through two layers on logits of scale ≤ 10);
 *   float16 graphs: both feed binary16 factors rounded from float32 values that differ in the last
 *   float32 bits, so an element may land on the adjacent binary16 value (≤ 2u relative, u = 2⁻¹¹):
 *   the branch moves by ≤ 2·2u relative, the logits to first order by ≤ 4u·effect, and a moved
 *   activation can flip one fp16 rounding downstream, one binary16 ulp of the logits (≤ 2u·max|logits|)
 *   — the bound of dtype-browser-suite.ts;
 * - GPU-fed `gpu_bytes`: 4 bytes an element of A′ and s·B′ᵀ on float32 graphs, 2 (binary16) on
 *   float16 ones, made by kernels-wgsl's native f16 kernel (`halfKernel: 'native'`);
 * - greedy `generate()` (KV cache) = greedy decoding without the cache on the same model and EP, for
 *   the untouched model, the disabled plugin model and the GPU-fed LoRA adapter (when `decode`).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { AutoTokenizer, env } from '@huggingface/transformers';
import { materializeAdapter } from '@tensorpeft/core';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeModel } from '../merge.js';
import { toleranceFor } from '../tolerance.js';
import { dawnSite, runDawnPage, type DawnSite } from './dawn-child.js';
import { makeAdapter, type AdapterSpec } from './dtype-browser-entry.js';
import type { GenaiRunOptions, GenaiRunResult } from './genai-webgpu-entry.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const PROMPT = 'once upon a time';
const NEW_TOKENS = 4;
const SEED = 5;
// Factorizations for the tiny LLaMA's widths (64 hidden, 32 KV, 128 FFN), as in genai-layout.test.ts.
const CONFIG: Record<string, Record<string, unknown>> = {
  TRAC: { tensor_shape: { '64': [4, 4, 4], '32': [2, 4, 4], '128': [4, 4, 8] } },
  LORETTA: { tensor_shape_a: { '64': [8, 8, 8], '128': [8, 8, 16] }, tensor_shape_b: { '64': [8, 8, 8], '32': [4, 8, 8], '128': [8, 8, 16] } },
  TENSLORA: { target_modules: ['q_proj', 'o_proj'] },
};
/**
 * Every adapter parameter times this, per method: an effect on the logits above the q4 tolerance
 * (≈ 1.1 here, 3 × the 4-bit error 0.37), so a missing or misplaced branch fails on q4 too, while the
 * adapted point stays in the range tolerance.ts is calibrated for. Chosen from `verify` on the same
 * q4 file in onnxruntime-node (effect / max_abs_diff at these gains: TRAC 2.9 / 0.47, LoRA 2.2 / 0.28,
 * VeRA 1.8 / 0.34, LoRETTA 2.2 / 0.32, LoRTA 1.3 / 0.47, TensLoRA 1.8 / 0.40). Much stronger adapters
 * saturate this random tiny model (every method's effect levels off at ≈ 3.4, the logits' own range)
 * and there the 4-bit error at the adapted point grows past 3× the base's (LoRA × 20: 1.17 vs 0.37):
 * that is the tolerance's calibration ending, on the CPU EP as well, not a WebGPU effect.
 */
const GAINS: Record<string, number> = { TRAC: 2, LORA: 5, VERA: 3, LORETTA: 1, LORTA: 2, TENSLORA: 2 };

type GenaiDtype = 'fp32' | 'q4' | 'fp16' | 'q4f16';
const HALF: ReadonlySet<GenaiDtype> = new Set(['fp16', 'q4f16']);

export interface GenaiWebgpuSuiteOptions {
  /** 'chromium': fp32/q4 (no shader-f16 on SwiftShader); 'dawn': fp16/q4f16 too (default 'chromium'). */
  runner?: 'chromium' | 'dawn';
  dtypes: readonly GenaiDtype[];
  /** PEFT types to run (each CPU-fed and GPU-fed). */
  methods: readonly string[];
  /** Also check greedy decoding (base, disabled, GPU-fed LoRA): seconds a step on SwiftShader. */
  decode: boolean;
}

export function genaiWebgpuSuite(o: GenaiWebgpuSuiteOptions): void {
  const runner = o.runner ?? 'chromium';
  let dir: string;
  let genai: GeneratedModel;
  let standard: GeneratedModel;
  const ready = (async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tp-genai-webgpu-'));
    genai = await writeModel({ arch: 'llama', size: 'tiny', seed: SEED, layout: 'genai', dtypes: o.dtypes.filter((d) => d !== 'fp32') }, path.join(dir, 'genai'));
    standard = await writeModel({ arch: 'llama', size: 'tiny', seed: SEED, quantized: false }, path.join(dir, 'standard'));
  })();
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const siteFiles = async (): Promise<Record<string, ServedFile>> => {
    await ready;
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft genai webgpu</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'genai-webgpu-entry.ts'), root)],
      '/assets/kernels-wgsl.js': ['text/javascript', await bundleEntry(path.join(root, 'packages/kernels-wgsl/src/index.ts'), root)],
    };
    for (const [rel, bytes] of genai.files) files[`/models/genai/${rel}`] = [rel.endsWith('.json') ? 'application/json' : 'application/octet-stream', bytes];
    const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
    const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
    }
    return files;
  };

  const browser =
    runner === 'chromium'
      ? useBrowserTest({
          site: async () => {
            const files = await siteFiles();
            return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
          },
          launch: { extraArgs: ['--enable-unsafe-webgpu'] },
          pageGlobal: 'tensorpeftGenaiWebgpuTest',
          timeout: 120_000,
        })
      : undefined;
  let dawn: DawnSite | undefined;
  if (runner === 'dawn') {
    beforeAll(async () => {
      dawn = await dawnSite(await siteFiles(), dir);
    }, 120_000);
    afterAll(() => dawn?.close());
  }

  /** One dtype's page run, in Chromium or in the Dawn child. */
  const runPage = async (opts: GenaiRunOptions): Promise<GenaiRunResult> => {
    if (browser) {
      needChromium();
      return (await browser.page.evaluate(([origin, o]: [string, GenaiRunOptions]) => (globalThis as any).tensorpeftGenaiWebgpuTest.run(origin, o), [browser.origin, opts] as [string, GenaiRunOptions])) as GenaiRunResult;
    }
    const r = await runDawnPage<GenaiRunResult>(dawn!, 'tensorpeftGenaiWebgpuTest', [{ ...opts, wasmPaths: dawn!.wasmPaths, kernelsUrl: dawn!.kernels }], dir, 1_500_000);
    console.log(JSON.stringify({ dtype: opts.dtype, adapter: r.adapter, halfKernel: r.halfKernel }));
    // The point of the Dawn runner: ORT's float16 kernels and kernels-wgsl's native f16 path.
    expect(r.adapter.shaderF16, `adapter ${r.adapter.description} has no shader-f16`).toBe(true);
    return r;
  };

  /** Logits of the prompt through an fp32 file in onnxruntime-node (the standard layout takes position_ids). */
  async function nodeLogits(bytes: Uint8Array, ids: number[], positions: boolean): Promise<number[]> {
    const s = await ort.InferenceSession.create(bytes);
    const L = ids.length;
    const f: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]),
    };
    if (positions) f['position_ids'] = new ort.Tensor('int64', BigInt64Array.from(ids.map((_, i) => BigInt(i))), [1, L]);
    for (let l = 0; l < 2; l++) for (const k of ['key', 'value']) f[`past_key_values.${l}.${k}`] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
    const out = Array.from((await s.run(f))['logits']!.data as Float32Array);
    await s.release();
    return out;
  }

  const maxAbsDiff = (a: number[], b: number[]): number => {
    expect(a.length).toBe(b.length);
    return a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i]!)), 0);
  };
  const maxAbs = (a: number[]): number => a.reduce((d, v) => Math.max(d, Math.abs(v)), 0);

  const where = runner === 'chromium' ? 'SwiftShader, headless Chromium' : 'Dawn on lavapipe, page code in Node';
  describe(`plugin on the genai layout, ORT-web WebGPU EP (${where}): ${o.dtypes.join(', ')} × ${o.methods.length} methods`, () => {
    const specs: Record<string, AdapterSpec> = {};
    const merged: Record<string, number[]> = {};
    let refBase: number[];
    beforeAll(async () => {
      await ready;
      env.allowRemoteModels = false;
      env.localModelPath = `${dir}/`;
      const tok = await AutoTokenizer.from_pretrained('genai');
      const ids = Array.from((tok(PROMPT) as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
      const fp32 = standard.files.get('onnx/model.onnx')!;
      refBase = await nodeLogits(fp32, ids, true);
      // The genai fp32 file is the same model as the standard one (model-gen's genai.test.ts).
      expect(maxAbsDiff(await nodeLogits(genai.files.get('onnx/model.onnx')!, ids, false), refBase)).toBeLessThan(1e-4);
      for (const method of o.methods) {
        const spec: AdapterSpec = { method, shape: JSON.parse(JSON.stringify(genai.shape)), seed: 2, config: CONFIG[method] ?? {}, gain: GAINS[method]! };
        const a = makeAdapter(spec);
        specs[method] = spec;
        merged[method] = await nodeLogits(mergeModel(fp32, await materializeAdapter(a), a.extras), ids, true);
        console.log(JSON.stringify({ method, gain: spec.gain, fp32_effect: maxAbsDiff(merged[method]!, refBase) }));
      }
    }, 300_000);

    for (const dtype of o.dtypes) {
      it(`${dtype}: ${o.methods.join(', ')} CPU-fed and GPU-fed vs the fp32 merge, disabled = base bit for bit${o.decode ? ', generate() = uncached greedy' : ''}`, async () => {
        const opts: GenaiRunOptions = { model: 'genai', dtype, prompt: PROMPT, maxNewTokens: NEW_TOKENS, adapters: specs, decode: o.decode ? ['LORA'] : [], decodeBase: o.decode, repeatSession: runner === 'dawn' };
        const r = await runPage(opts);
        const half = HALF.has(dtype);
        if (half) expect(r.halfKernel).toBe('native');
        // The EP repeats itself bit for bit (else "disabled = base" could not be asked of the plugin).
        const firstDiff = (a: number[], b: number[]): number => a.findIndex((v, i) => v !== b[i]);
        console.log(JSON.stringify({ dtype, base_again_diff: maxAbsDiff(r.baseAgain, r.base.logits), base_other_session_diff: r.baseOtherSession && maxAbsDiff(r.baseOtherSession, r.base.logits), disabled_diff: maxAbsDiff(r.disabled.logits, r.base.logits), disabled_first_diff_index: firstDiff(r.disabled.logits, r.base.logits), vocab: r.base.logits.length }));
        expect(r.baseAgain).toEqual(r.base.logits);
        if (runner === 'dawn') expect(r.baseOtherSession).toEqual(r.base.logits);
        // Soft: a failure here still lets the adapters' checks below report their numbers.
        expect.soft(r.disabled.logits, `${dtype}: disabled = base bit for bit`).toEqual(r.base.logits);
        if (o.decode) {
          expect.soft(r.disabled.tokens).toEqual(r.base.tokens);
          expect(r.base.tokens).toEqual(r.base.noCache);
          expect(r.disabled.tokens).toEqual(r.disabled.noCache);
          expect(r.base.tokens.length).toBeGreaterThan(NEW_TOKENS);
        }
        const q = maxAbsDiff(r.base.logits, refBase);
        // fp32 on WebGPU: the same fp32 model, other kernels: rounding only.
        if (dtype === 'fp32') expect(q).toBeLessThan(1e-3);
        for (const [method, a] of Object.entries(r.adapters)) {
          const updates = await materializeAdapter(makeAdapter(specs[method]!));
          const row: Record<string, unknown> = { dtype, method, dtype_error: q, ms: r.ms[method] };
          for (const [feed, out] of [['cpu', a.cpu], ['gpu', a.gpu]] as const) {
            const effect = maxAbsDiff(out.logits, r.base.logits);
            const tolerance = toleranceFor(dtype, q, maxAbs(merged[method]!), effect);
            const diff = maxAbsDiff(out.logits, merged[method]!);
            Object.assign(row, { [`${feed}_max_abs_diff`]: diff, [`${feed}_effect`]: effect, tolerance });
            expect(effect, `${dtype} ${method} ${feed}-fed changes the output`).toBeGreaterThan(tolerance);
            expect(diff, `${dtype} ${method} ${feed}-fed vs the fp32 merge`).toBeLessThanOrEqual(tolerance);
          }
          const gpuVsCpu = maxAbsDiff(a.gpu.logits, a.cpu.logits);
          // See the module comment: float32 factors both sides, or binary16 ones an ulp apart.
          const u = 2 ** -11;
          const bound = half ? 4 * u * maxAbsDiff(a.cpu.logits, r.base.logits) + 2 * u * maxAbs(a.cpu.logits) : 1e-4;
          Object.assign(row, { gpu_vs_cpu: gpuVsCpu, gpu_vs_cpu_bound: bound });
          console.log(JSON.stringify(row));
          expect(gpuVsCpu, `${dtype} ${method} GPU-fed vs CPU-fed`).toBeLessThanOrEqual(bound);
          // float32 buffers on a float32-activation graph, binary16 on a float16 one: 4 resp. 2 bytes an element of A′ and s·B′ᵀ.
          expect(a.gpuBytes).toBe(updates.reduce((t, u) => t + (half ? 2 : 4) * (u.n + u.m) * u.rho, 0));
          if (o.decode && method === 'LORA') {
            expect(a.gpu.tokens.length).toBe(r.base.tokens.length);
            expect(a.gpu.tokens).toEqual(a.gpu.noCache);
            console.log(JSON.stringify({ dtype, base_tokens: r.base.tokens, lora_gpu_tokens: a.gpu.tokens }));
          }
        }
        expect(Object.keys(r.adapters).sort()).toEqual([...o.methods].sort());
        console.log(JSON.stringify({ dtype, ms: r.ms }));
        if (browser) expect(browser.pageErrors).toEqual([]);
      }, 900_000);
    }
  });
}
