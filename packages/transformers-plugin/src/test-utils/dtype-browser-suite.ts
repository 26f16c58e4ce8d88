/**
 * The plugin on transformers.js' LLM dtypes in headless Chromium (issue 12), shared by
 * dtype-browser.test.ts (wasm EP: `model_q4.onnx` and `model_q4f16.onnx`, whose branches run in fp32
 * with float32 adapter inputs on this CPU EP: branch-dtype.ts) and dtype-webgpu.slow.ts (WebGPU EP, SwiftShader here: `model_q4.onnx` with the
 * adapter fed from CPU tensors and from kernels-wgsl's GPU-resident buffers). `model_q4f16.onnx`
 * cannot run on ORT-web's WebGPU EP here: its float16 kernels need the device feature `shader-f16`,
 * which SwiftShader lacks ("Program Gather requires f16 but the device does not support it"). On a
 * GPU with `shader-f16`, the GPU-fed buffers of an fp16 graph are binary16 (gpu-half.ts).
 *
 * Checked, per run, against references computed here in Node (onnxruntime-node) from the fp32 file:
 * - disabled = the untouched model bit for bit, on the same EP (logits and greedy tokens);
 * - the adapter's logits vs the fp32 offline merge within `toleranceFor(dtype, …)` (tolerance.ts:
 *   3·q + 1e-4·max(1, |reference|) + 4·u·effect, q the dtype's own error at the base weights,
 *   measured here as |untouched model on this EP − fp32 base in Node|);
 * - GPU-fed vs CPU-fed (q4f16): both feed binary16 factors; the CPU path rounds the float32 factors
 *   of the wasm/JS backend, the GPU path those of the WGSL kernels, which differ in the last float32
 *   bits, so an element may round to the adjacent binary16 value: each factor element within one
 *   binary16 ulp (2u relative, u = 2⁻¹¹), the branch (x·A′)·(s·B′ᵀ) within 2·2u relative, and (to
 *   first order) the outputs within 4u·effect, effect = max |adapter − base| at the outputs;
 * - greedy `generate()` (KV cache): GPU-fed tokens = CPU-fed tokens, and the adapter's tokens = the
 *   fp32 merged model's tokens (the adapter is scaled so that its effect on the logits dwarfs the
 *   dtype's error, and the tokens differ from the base's).
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { materializeAdapter } from '@tensorpeft/core';
import { bundleEntry, needChromium, useBrowserTest, type ServedFile } from '@tensorpeft/browser-harness';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeModel } from '../merge.js';
import { toleranceFor } from '../tolerance.js';
import { dawnSite as startDawnSite, runDawnPage, type DawnAdapterInfo, type DawnSite } from './dawn-child.js';
import { makeAdapter, type AdapterSpec, type DtypeRunOptions, type DtypeRunResult, type Outputs } from './dtype-browser-entry.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '../../../..');
const PROMPT = 'once upon a time';
// The prompt first: the WebGPU run feeds it alone, compared with the first text's logits.
const TEXTS = [PROMPT, 'the quick brown fox jumps'];
const NEW_TOKENS = 8;
const tfDir = path.dirname(createRequire(import.meta.url).resolve('@huggingface/transformers'));
const ortDist = path.dirname(createRequire(path.join(tfDir, 'x.js')).resolve('onnxruntime-web'));

export type DtypeBrowserCase = 'q4-wasm' | 'q4f16-wasm' | 'q4-webgpu' | 'q4f16-webgpu-dawn';

/** The suite, with the runs `cases` names (each run costs a page load of its model files). */
export function dtypeBrowserSuite(cases: readonly DtypeBrowserCase[]): void {
  let dir: string;
  let made: GeneratedModel;
  const ready = (async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'tp-dtype-browser-'));
    made = await writeModel({ arch: 'llama', size: 'tiny', seed: 4, quantized: false, dtypes: ['q4', 'q4f16'] }, path.join(dir, 'llama'));
  })();
  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** What the page (or the Dawn child) fetches: the model folder, ORT-web's wasm files, the bundles. */
  const siteFiles = async (): Promise<Record<string, ServedFile>> => {
    await ready;
    const files: Record<string, ServedFile> = {
      '/': ['text/html', '<!doctype html><meta charset="utf-8"><title>tensorpeft dtypes</title><script type="module" src="/assets/entry.js"></script>'],
      '/assets/entry.js': ['text/javascript', await bundleEntry(path.join(here, 'dtype-browser-entry.ts'), root)],
      '/assets/kernels-wgsl.js': ['text/javascript', await bundleEntry(path.join(root, 'packages/kernels-wgsl/src/index.ts'), root)],
    };
    for (const [rel, bytes] of made.files) files[`/models/llama/${rel}`] = [rel.endsWith('.json') ? 'application/json' : 'application/octet-stream', bytes];
    for (const f of readdirSync(ortDist)) {
      if (/^ort-wasm-simd-threaded\.(asyncify|jsep)\.(wasm|mjs)$/.test(f)) {
        files[`/ort/${f}`] = [f.endsWith('.wasm') ? 'application/wasm' : 'text/javascript', readFileSync(path.join(ortDist, f))];
      }
    }
    return files;
  };

  const inChromium = cases.some((c) => c !== 'q4f16-webgpu-dawn');
  const browser = inChromium
    ? useBrowserTest({
        site: async () => {
          const files = await siteFiles();
          return { lookup: (p) => files[p], headers: { 'cache-control': 'no-store' } };
        },
        launch: { extraArgs: ['--enable-unsafe-webgpu'] },
        pageGlobal: 'tensorpeftDtypeTest',
        timeout: 120_000,
      })
    : undefined;

  // The Dawn child (dawn-page.mjs) fetches the same site from a local server (dawn-child.ts).
  let dawnSite: DawnSite | undefined;
  if (cases.includes('q4f16-webgpu-dawn')) {
    beforeAll(async () => {
      dawnSite = await startDawnSite(await siteFiles(), dir);
    }, 120_000);
    afterAll(() => dawnSite?.close());
  }

  /** fp32 references in Node (onnxruntime-node): the base model and the offline merge of `spec`. */
  interface Reference {
    base: Outputs;
    merged: Outputs;
  }

  async function reference(spec: AdapterSpec): Promise<Reference> {
    const adapter = makeAdapter(spec);
    const merged = path.join(dir, 'merged');
    await mkdir(path.join(merged, 'onnx'), { recursive: true });
    for (const f of ['config.json', 'generation_config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(dir, 'llama', f), path.join(merged, f)).catch(() => undefined);
    const fp32 = new Uint8Array(await readFile(path.join(dir, 'llama', 'onnx', 'model.onnx')));
    await writeFile(path.join(merged, 'onnx', 'model.onnx'), mergeModel(fp32, await materializeAdapter(adapter), adapter.extras));
    env.allowRemoteModels = false;
    env.localModelPath = `${dir}/`;
    const tok = await AutoTokenizer.from_pretrained('llama');
    const outputs = async (id: string): Promise<Outputs> => {
      const m = (await AutoModelForCausalLM.from_pretrained(id, { dtype: 'fp32' })) as unknown as ((x: unknown) => Promise<{ logits: { data: Float32Array } }>) & {
        generate(o: unknown): Promise<{ tolist(): bigint[][] }>;
        dispose(): Promise<unknown>;
      };
      const logits: number[] = [];
      for (const t of TEXTS) logits.push(...(await m(tok(t))).logits.data);
      const tokens = (await m.generate({ ...tok(PROMPT), max_new_tokens: NEW_TOKENS, do_sample: false })).tolist()[0]!.map(Number);
      await m.dispose();
      return { logits, tokens };
    };
    return { base: await outputs('llama'), merged: await outputs('merged') };
  }

  const maxAbsDiff = (a: number[], b: number[]): number => {
    expect(a.length).toBe(b.length);
    return a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i]!)), 0);
  };
  const maxAbs = (a: number[]): number => a.reduce((d, v) => Math.max(d, Math.abs(v)), 0);

  describe(`plugin on tiny LLaMA ${inChromium ? 'in headless Chromium' : 'in a page run by Node on Dawn'}: ${cases.join(', ')}`, () => {
    let spec: AdapterSpec;
    let ref: Reference;
    beforeAll(async () => {
      await ready;
      // gain 5: an effect on the logits well above the tolerance (a missing branch fails) while the
      // adapted point stays close enough to the base for the tolerance's calibration (tolerance.ts).
      spec = { method: 'LORA', shape: JSON.parse(JSON.stringify(made.shape)), seed: 1, config: {}, gain: 5 };
      ref = await reference(spec);
      // The adapter changes the fp32 greedy tokens (otherwise the token checks would be vacuous).
      expect(ref.merged.tokens).not.toEqual(ref.base.tokens);
    }, 120_000);

    const runPage = (o: DtypeRunOptions): Promise<DtypeRunResult> =>
      browser!.page.evaluate(([origin, opts, s]: [string, DtypeRunOptions, AdapterSpec]) => (globalThis as any).tensorpeftDtypeTest.run(origin, opts, s), [browser!.origin, o, spec] as [string, DtypeRunOptions, AdapterSpec]) as Promise<DtypeRunResult>;

    /** The same run in the Dawn child (dawn-page.mjs), on the Vulkan driver `VK_ICD_FILENAMES` names. */
    const runDawn = (o: DtypeRunOptions): Promise<DtypeRunResult & { adapter: DawnAdapterInfo }> =>
      runDawnPage<DtypeRunResult>(dawnSite!, 'tensorpeftDtypeTest', [{ ...o, wasmPaths: dawnSite!.wasmPaths, kernelsUrl: dawnSite!.kernels }, spec], dir);

    /** Length of the common prefix of two token lists. */
    const agree = (a: number[], b: number[]): number => {
      let i = 0;
      while (i < a.length && i < b.length && a[i] === b[i]) i++;
      return i;
    };

    /** Logits checks of every run; returns the tolerance applied. */
    const check = (dtype: 'q4f16' | 'q4', device: string, r: DtypeRunResult, adapter: Outputs): number => {
      expect(r.disabled.logits).toEqual(r.base.logits);
      // The run's texts are TEXTS or its first few: the references' logits of those.
      const [refBase, refMerged] = [ref.base.logits, ref.merged.logits].map((l) => l.slice(0, r.base.logits.length)) as [number[], number[]];
      const q = maxAbsDiff(r.base.logits, refBase);
      const effect = maxAbsDiff(adapter.logits, r.base.logits);
      const tolerance = toleranceFor(dtype, q, maxAbs(refMerged), effect);
      const diff = maxAbsDiff(adapter.logits, refMerged);
      const prompt = ref.base.tokens.length - NEW_TOKENS;
      console.log(
        JSON.stringify({
          dtype,
          device,
          ms: r.ms,
          dtype_error: q,
          adapter_effect: effect,
          max_abs_diff: diff,
          tolerance,
          new_tokens_equal_to_fp32_merged: agree(adapter.tokens, ref.merged.tokens) - prompt,
          new_tokens_equal_to_fp32_base: agree(adapter.tokens, ref.base.tokens) - prompt,
        }),
      );
      // The adapter's effect exceeds the tolerance: a missing or wrong branch fails the check below.
      expect(effect).toBeGreaterThan(tolerance);
      expect(diff).toBeLessThanOrEqual(tolerance);
      return tolerance;
    };

    /**
     * Greedy decoding: generate() with the KV cache = the no-cache greedy decode of the same model on
     * the same EP (the branch acts on the decode steps too). Exact token equality with the fp32 merge
     * is not a criterion on these models: the q4 error (dtype_error ≈ 0.4 on logits of scale ≈ 2)
     * reorders near-tied logits of a random tiny model; the agreement is logged.
     */
    const checkDecode = (o: Outputs): void => {
      expect(o.tokens.length).toBe(ref.base.tokens.length);
      expect(o.tokens).toEqual(o.noCache);
    };

    if (cases.includes('q4-wasm')) {
      it('q4 on the wasm EP: disabled = base bit for bit, adapter vs the fp32 merge, greedy generate()', async () => {
        needChromium();
        const r = await runPage({ model: 'llama', dtype: 'q4', device: 'wasm', texts: TEXTS, prompt: PROMPT, maxNewTokens: NEW_TOKENS, gpu: false, decode: ['base', 'disabled', 'cpu'] });
        check('q4', 'wasm', r, r.cpu);
        expect(r.disabled.tokens).toEqual(r.base.tokens);
        [r.base, r.cpu].forEach(checkDecode);
        expect(r.cpu.tokens).not.toEqual(r.base.tokens);
        expect(browser!.pageErrors).toEqual([]);
      }, 240_000);
    }

    if (cases.includes('q4f16-wasm')) {
      it('q4f16 on the wasm EP (fp32 branch on a CPU EP, float32 adapter inputs): disabled = base bit for bit, adapter vs the fp32 merge, greedy generate()', async () => {
        needChromium();
        const r = await runPage({ model: 'llama', dtype: 'q4f16', device: 'wasm', texts: TEXTS, prompt: PROMPT, maxNewTokens: NEW_TOKENS, gpu: false, decode: ['base', 'disabled', 'cpu'] });
        check('q4f16', 'wasm', r, r.cpu);
        expect(r.disabled.tokens).toEqual(r.base.tokens);
        [r.base, r.cpu].forEach(checkDecode);
        expect(r.cpu.tokens).not.toEqual(r.base.tokens);
        expect(browser!.pageErrors).toEqual([]);
      }, 240_000);
    }

    if (cases.includes('q4-webgpu')) {
      it('q4 on the WebGPU EP with GPU-fed adapters: disabled = base bit for bit, CPU-fed and GPU-fed vs the fp32 merge, greedy generate()', async () => {
        needChromium();
        // One text, the prompt (the prefill shape generate() compiles anyway), and only the GPU-fed state decoded: see `decode`.
        const r = await runPage({ model: 'llama', dtype: 'q4', device: 'webgpu', texts: [PROMPT], prompt: PROMPT, maxNewTokens: NEW_TOKENS, gpu: true, decode: ['gpu'] });
        const tolerance = check('q4', 'webgpu', r, r.cpu);
        check('q4', 'webgpu (GPU-fed)', r, r.gpu!);
        // float32 buffers on a float32-activation graph: 4 bytes an element.
        const updates = await materializeAdapter(makeAdapter(spec));
        expect(r.gpuBytes).toBe(updates.reduce((t, u) => t + 4 * (u.n + u.m) * u.rho, 0));
        // GPU-fed vs CPU-fed: the same float32 factors up to the kernels' rounding (≤ 1e-5 at these sizes).
        const gpuVsCpu = maxAbsDiff(r.gpu!.logits, r.cpu.logits);
        console.log(JSON.stringify({ gpu_vs_cpu_max_abs_diff: gpuVsCpu, tolerance }));
        expect(gpuVsCpu).toBeLessThanOrEqual(1e-4);
        checkDecode(r.gpu!);
        expect(browser!.pageErrors).toEqual([]);
      }, 240_000);
    }

    if (cases.includes('q4f16-webgpu-dawn')) {
      it('q4f16 on the WebGPU EP with shader-f16 (Dawn on lavapipe, in Node) with GPU-fed binary16 adapters: disabled = base bit for bit, CPU-fed and GPU-fed vs the fp32 merge, greedy generate()', async () => {
        const r = await runDawn({ model: 'llama', dtype: 'q4f16', device: 'webgpu', texts: [PROMPT], prompt: PROMPT, maxNewTokens: NEW_TOKENS, gpu: true, decode: ['gpu'] });
        console.log(JSON.stringify({ adapter: r.adapter, ms: r.ms, halfKernel: r.halfKernel }));
        // The point of this run: ORT's float16 WebGPU kernels and kernels-wgsl's native f16 path.
        expect(r.adapter.shaderF16, `adapter ${r.adapter.description} has no shader-f16`).toBe(true);
        const tolerance = check('q4f16', 'webgpu (Dawn, lavapipe)', r, r.cpu);
        check('q4f16', 'webgpu (Dawn, lavapipe, GPU-fed)', r, r.gpu!);
        expect(r.halfKernel).toBe('native');
        // binary16 buffers on a float16-activation graph: 2 bytes an element.
        const updates = await materializeAdapter(makeAdapter(spec));
        expect(r.gpuBytes).toBe(updates.reduce((t, u) => t + 2 * (u.n + u.m) * u.rho, 0));
        // GPU-fed vs CPU-fed: both binary16 factors, rounded from float32 values that differ in the
        // last float32 bits (WGSL kernels vs the JS/wasm backend), so an element may land on the
        // adjacent binary16 value (≤ 2u relative, u = 2⁻¹¹): the branch moves by ≤ 2·2u relative and,
        // to first order, the logits by ≤ 4u·effect; a moved activation can also flip one fp16 rounding
        // downstream, one binary16 ulp of the logits (≤ 2u·max|logits|).
        const u = 2 ** -11;
        const effect = maxAbsDiff(r.cpu.logits, r.base.logits);
        const bound = 4 * u * effect + 2 * u * maxAbs(r.cpu.logits);
        const gpuVsCpu = maxAbsDiff(r.gpu!.logits, r.cpu.logits);
        console.log(JSON.stringify({ gpu_vs_cpu_max_abs_diff: gpuVsCpu, bound, tolerance }));
        expect(gpuVsCpu).toBeLessThanOrEqual(bound);
        checkDecode(r.gpu!);
      }, 600_000);
    }
  });
}
