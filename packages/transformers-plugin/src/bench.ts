/**
 * Plugin benchmarks (`tensorpeft bench plugin`): on generated BERT / DistilBERT sequence classifiers
 * (`@tensorpeft/model-gen`, fp32, onnxruntime through transformers.js):
 * - swap: `set_adapter` (after which a run can start at once) vs re-creating the ORT session with
 *   merged weights (`from_pretrained` of a folder whose initializers hold W0 + ΔW; the offline merge
 *   itself is a separate row);
 * - forward at batch 1 × `seq` tokens: base model vs plugin with adapters disabled vs a LoRA of rank
 *   `rank` on the default target modules, in branch mode and in merge mode (ratios paired per
 *   round, the four configurations in rotating blocks);
 * - session creation (base, through the rewrite in both modes);
 * - `load_adapter` from a folder (read + parse + materialize + feeds) per method, with its file and
 *   materialized bytes.
 * Needs `@tensorpeft/model-gen` (imported on use) and a Node runtime.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createAdapter, listMethods, materializeAdapter, saveAdapter, type Backend, type ModelShape } from '@tensorpeft/core';
import { mergeModel } from './merge.js';
import { from_pretrained } from './plugin.js';
import { loadRatioRows, rewriteScalingRows } from './bench-load.js';
import { runOverheadBench } from './bench-overhead.js';
import { runMixedBench } from './bench-mixed.js';
import { runDtypeBench } from './bench-dtype.js';
import { runBranchDtypeBench } from './bench-branch-dtype.js';
import { runProfileRows } from './bench-profile.js';

export interface PluginBenchRow {
  bench: string;
  /** Model and input / adapter shape. */
  shape: string;
  /** Median milliseconds. */
  ms: number;
  /** Speed-up (swap: re-creation ÷ swap) or slowdown (forward: ÷ base forward). */
  ratio?: number;
  /** Bytes (adapter file / materialized tensors), where it applies. */
  bytes?: number;
  note?: string;
}

export interface PluginBenchOptions {
  /** `base` (BERT-base / DistilBERT-base shapes) or `tiny` (seconds; for tests). Default `base`. */
  size?: 'base' | 'tiny';
  /** Fewer repetitions. */
  quick?: boolean;
  archs?: Array<'bert' | 'distilbert'>;
  /** Tokens per forward (default 128). */
  seq?: number;
  /** LoRA rank of the forward / swap adapters (default 16). */
  rank?: number;
  /** Adapter config overrides per `peft_type` for the load rows (e.g. tensor factorizations of tiny dims). */
  methodConfigs?: Record<string, Record<string, unknown>>;
  /** Backend for materialization (default: core's best registered one). */
  backend?: Backend;
  /** Progress lines. */
  log?: (line: string) => void;
  /**
   * Issue 16's serving rows (default true): load ratio first / cached vs plain per arch, rewrite time
   * vs model bytes, per-run overhead on tiny LLaMA generation (bench-load.ts, bench-overhead.ts),
   * mixed-adapter batch throughput (bench-mixed.ts).
   */
  serving?: boolean;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  return n % 2 ? s[(n - 1) / 2]! : (s[n / 2 - 1]! + s[n / 2]!) / 2;
}

async function time<T>(fn: () => Promise<T> | T): Promise<[number, T]> {
  const t0 = performance.now();
  const r = await fn();
  return [performance.now() - t0, r];
}

type Outputs = Record<string, unknown>;
type Callable = (inputs: Record<string, unknown>) => Promise<Outputs>;

/** Run the plugin benchmarks; returns one row per measurement. */
export async function runPluginBench(opts: PluginBenchOptions = {}): Promise<PluginBenchRow[]> {
  const size = opts.size ?? 'base';
  const quick = opts.quick ?? false;
  const seq = opts.seq ?? 128;
  const rank = opts.rank ?? 16;
  const log = opts.log ?? (() => undefined);
  const archs = opts.archs ?? ['distilbert', 'bert'];
  const tf = await import('@huggingface/transformers');
  const { env, AutoModelForSequenceClassification, AutoTokenizer } = tf;
  const gen = (await import('@tensorpeft/model-gen')) as typeof import('@tensorpeft/model-gen');
  const rows: PluginBenchRow[] = [];
  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath, useCustomCache: env.useCustomCache, customCache: env.customCache };
  const root = await mkdtemp(path.join(tmpdir(), 'tp-bench-plugin-'));
  try {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    for (const arch of archs) {
      const id = `${arch}-${size}`;
      const dir = path.join(root, id);
      log(`${id}: generating the model`);
      const m = await gen.writeModel({ arch, size, numLabels: 2, quantized: false, seed: 1 }, dir);
      const shape: ModelShape = m.shape;
      const dims = `${arch}-${size} (hidden ${shape.hiddenSize}, ${shape.numLayers} layers)`;

      // Inputs: batch 1 × seq tokens.
      const tok = await AutoTokenizer.from_pretrained(id);
      const words = Array.from({ length: seq * 2 }, (_, i) => ['the', 'happy', 'model', 'reads', 'long', 'text', 'today', 'and'][i % 8]).join(' ');
      const cfg = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { max_position_embeddings?: number };
      const enc = tok(words, { truncation: true, max_length: Math.min(seq, cfg.max_position_embeddings ?? seq) }) as Record<string, { dims: number[] }>;
      const n = enc.input_ids!.dims[1]!;
      const inputs: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(enc)) inputs[k] = v;
      const run = (model: unknown): Promise<Outputs> => (model as Callable)({ ...inputs });


      // Base model (session creation timed once per load below).
      log(`${id}: base session`);
      const [baseCreate, base] = await time(() => AutoModelForSequenceClassification.from_pretrained(id, { dtype: 'fp32' }));

      // Adapters of rank `rank` (LoRA, default targets) and the merged model.
      const a1 = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 1, config: { r: rank } });
      const a2 = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 2, config: { r: rank } });
      const fp32 = new Uint8Array(await readFile(path.join(dir, 'onnx', 'model.onnx')));
      const updates = await materializeAdapter(a1, opts.backend);
      const [mergeMs, mergedBytes] = await time(() => mergeModel(fp32, updates));
      const mid = `${id}-merged`;
      await mkdir(path.join(root, mid, 'onnx'), { recursive: true });
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(dir, f), path.join(root, mid, f));
      await writeFile(path.join(root, mid, 'onnx', 'model.onnx'), mergedBytes);
      log(`${id}: merged session`);
      const recreate: number[] = [];
      let merged: unknown;
      for (let i = 0; i < (quick ? 1 : 3); i++) {
        if (merged) await (merged as { dispose(): Promise<unknown> }).dispose();
        const [ms, mm] = await time(() => AutoModelForSequenceClassification.from_pretrained(mid, { dtype: 'fp32' }));
        recreate.push(ms);
        merged = mm;
      }
      await (merged as { dispose(): Promise<unknown> }).dispose();

      log(`${id}: plugin`);
      const [pluginCreate, model] = await time(() => from_pretrained(env, AutoModelForSequenceClassification, id, { dtype: 'fp32' }));
      await model.load_adapter(a1, { adapter_name: 'a' });
      await model.load_adapter(a2, { adapter_name: 'b' });
      model.set_adapter('a');

      // Swap.
      const N = quick ? 2000 : 20000;
      for (let i = 0; i < 100; i++) model.set_adapter(i % 2 ? 'a' : 'b');
      const swaps: number[] = [];
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        for (let i = 0; i < N; i++) model.set_adapter(i % 2 ? 'a' : 'b');
        swaps.push((performance.now() - t0) / N);
      }
      model.set_adapter('a');
      const swapMs = median(swaps);
      const recreateMs = median(recreate);
      rows.push({ bench: 'swap: set_adapter (ready to run)', shape: `${dims}, LoRA r=${rank}`, ms: swapMs, ratio: recreateMs / swapMs, note: 'ratio: session re-creation with merged weights ÷ swap' });
      rows.push({ bench: 'session re-creation with merged weights (from_pretrained)', shape: dims, ms: recreateMs });
      rows.push({ bench: 'offline merge W0 + ΔW (protobuf decode/encode)', shape: `${dims}, LoRA r=${rank}`, ms: mergeMs });
      rows.push({ bench: 'session creation: base model', shape: dims, ms: baseCreate });
      rows.push({ bench: 'session creation: plugin, branch mode (rewrite + create)', shape: dims, ms: pluginCreate, ratio: pluginCreate / baseCreate });
      if (opts.serving !== false) {
        log(`${id}: load ratios (plain, plugin first load, cached rewrite)`);
        rows.push(...(await loadRatioRows(env, AutoModelForSequenceClassification, id, dims, quick ? 2 : 5)));
      }

      // Merge mode: the same adapter merged into fed weights by the backend.
      log(`${id}: plugin, merge mode`);
      const [mergeCreate, mm] = await time(() => from_pretrained(env, AutoModelForSequenceClassification, id, { dtype: 'fp32', mode: 'merge' }));
      const mergeLoads: number[] = [];
      let mergeHeld = 0;
      for (let i = 0; i < (quick ? 1 : 3); i++) {
        const [ms, info] = await time(() => mm.load_adapter(a1, { adapter_name: 'a', replace: true, ...(opts.backend ? { backend: opts.backend } : {}) }));
        mergeLoads.push(ms);
        mergeHeld = info.bytes;
      }
      mm.set_adapter('a');

      // Forward: base, plugin disabled, branch mode, merge mode; interleaved, ratios paired per repetition.
      const runs: Array<[keyof typeof t, () => Promise<Outputs>]> = [];
      const t = { base: [] as number[], off: [] as number[], on: [] as number[], merge: [] as number[] };
      runs.push(['base', () => run(base)]);
      runs.push(['off', () => (model as unknown as (x: unknown, o: unknown) => Promise<Outputs>)({ ...inputs }, { adapter: null })]);
      runs.push(['on', () => (model as unknown as (x: unknown, o: unknown) => Promise<Outputs>)({ ...inputs }, { adapter: 'a' })]);
      runs.push(['merge', () => run(mm)]);
      // Blocks of consecutive runs per configuration (each block's first run is a warm-up, so every
      // configuration starts with its session's threads awake), rotated over rounds; a ratio is the
      // median over rounds of (block median ÷ the base block median of the same round).
      const rounds = quick ? 2 : 6;
      const block = quick ? 3 : 6;
      const perRound = { base: [] as number[], off: [] as number[], on: [] as number[], merge: [] as number[] };
      for (let r = 0; r < rounds; r++) {
        for (const [k, f] of runs) {
          await f();
          const b: number[] = [];
          for (let i = 0; i < block; i++) b.push((await time(f))[0]);
          t[k].push(...b);
          perRound[k].push(median(b));
        }
      }
      const fb = median(t.base);
      const paired = (k: keyof typeof t): number => median(perRound[k].map((x, i) => x / perRound.base[i]!));
      const fshape = `${dims}, batch 1 × ${n} tokens`;
      rows.push({ bench: 'forward: base model', shape: fshape, ms: fb });
      rows.push({ bench: 'forward: plugin, adapters disabled', shape: fshape, ms: median(t.off), ratio: paired('off') });
      rows.push({ bench: `forward: plugin, branch mode (LoRA ρ = ${rank}, ${updates.length} modules)`, shape: fshape, ms: median(t.on), ratio: paired('on') });
      rows.push({ bench: `forward: plugin, merge mode (LoRA ρ = ${rank} merged)`, shape: fshape, ms: median(t.merge), ratio: paired('merge') });
      rows.push({ bench: 'session creation: plugin, merge mode', shape: dims, ms: mergeCreate, ratio: mergeCreate / baseCreate });
      rows.push({ bench: `load_adapter LORA ρ = ${rank}, merge mode (materialize + backend merge)`, shape: dims, ms: median(mergeLoads), note: `${mergeHeld} bytes materialized` });
      await (mm as unknown as { dispose(): Promise<unknown> }).dispose();

      // load_adapter from a folder, per method.
      for (const method of listMethods()) {
        const type = method.peftType as string;
        const adir = path.join(root, `${id}-${type}`);
        let ad: ReturnType<typeof createAdapter>;
        try {
          ad = createAdapter({ method: type, shape, nonzero: true, seed: 3, config: { ...(type === 'LORA' ? { r: rank } : {}), ...(opts.methodConfigs?.[type] ?? {}) } });
        } catch (e) {
          // A method whose default config has no entry for these dims (TRAC's tensor_shape on tiny models).
          log(`${id}: ${type} skipped: ${(e as Error).message}`);
          continue;
        }
        await saveAdapter(ad, adir);
        const fileBytes = (await stat(path.join(adir, 'adapter_model.safetensors'))).size + (await stat(path.join(adir, 'adapter_config.json'))).size;
        const loads: number[] = [];
        let held = 0;
        for (let i = 0; i < (quick ? 1 : 5); i++) {
          const [ms, info] = await time(() => model.load_adapter(adir, { adapter_name: `load-${type}`, replace: true, ...(opts.backend ? { backend: opts.backend } : {}) }));
          loads.push(ms);
          held = info.bytes;
        }
        model.delete_adapter(`load-${type}`);
        rows.push({ bench: `load_adapter ${type} (folder → ready)`, shape: `${dims}, rank ${ad.plan.rank}`, ms: median(loads), bytes: fileBytes, note: `${held} bytes materialized` });
      }
      await (model as unknown as { dispose(): Promise<unknown> }).dispose();
      await (base as unknown as { dispose(): Promise<unknown> }).dispose();
    }
    if (opts.serving !== false) {
      log('rewrite time vs model bytes (one tiny BERT graph, weights padded)');
      const tiny = await gen.writeModel({ arch: 'bert', size: 'tiny', numLabels: 2, quantized: false, seed: 1 }, path.join(root, 'rewrite-scaling'));
      const tinyBytes = new Uint8Array(await readFile(path.join(root, 'rewrite-scaling', 'onnx', 'model.onnx')));
      const MB = 2 ** 20;
      rows.push(...(await rewriteScalingRows(tinyBytes, tiny.shape.modules.map((x) => x.path), quick ? [MB, 4 * MB, 8 * MB, 16 * MB] : [MB, 16 * MB, 64 * MB, 256 * MB, 1300 * MB], quick ? 2 : 3)));
      log('per-run overhead: tiny LLaMA generation');
      rows.push(...(await runOverheadBench({ quick, log })));
      rows.push(...(await runMixedBench({ size, quick, log })));
      rows.push(...(await runDtypeBench({ sizes: size === 'tiny' ? ['tiny'] : ['tiny', 'base'], quick, log })));
      rows.push(...(await runBranchDtypeBench({ sizes: size === 'tiny' ? ['tiny'] : ['tiny', 'base'], quick, log })));
      rows.push(...(await runProfileRows({ log })));
    }
  } finally {
    Object.assign(env, saved);
    await rm(root, { recursive: true, force: true });
  }
  return rows;
}
