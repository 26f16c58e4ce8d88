/**
 * `verify`: the same fixed inputs through
 * 1. the untouched base model (transformers.js as shipped),
 * 2. the plugin with adapters disabled (must equal 1 exactly: `base_max_abs_diff`),
 * 3. the plugin with the adapter active, and
 * 4. an independently built model whose fp32 ONNX initializers were merged offline
 *    (`W0 + ΔW` in each weight's own layout, plus `modules_to_save`): `max_abs_diff` = |3 − 4|.
 * Text models (encoders and decoders); the model is read from a local folder.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadAdapter, materializeAdapter, type Adapter, type Backend } from '@tensorpeft/core';
import { mergeModel } from './merge.js';
import { attachAdapters, enableAdapters } from './plugin.js';

export interface VerifyOptions {
  /** Local model folder (config.json, tokenizer files, onnx/model.onnx[, onnx/model_quantized.onnx]). */
  model: string;
  /** Adapter folder/URL or a loaded Adapter. */
  adapter: string | Adapter;
  /** Model file the plugin runs on (default fp32). The merged reference is always built from fp32. */
  dtype?: 'fp32' | 'q8';
  texts?: string[];
  backend?: Backend;
  /** Plugin mode (default `branch`; `merge` needs fp32). */
  mode?: 'branch' | 'merge';
  /**
   * transformers.js `device` for every model of the check (default: transformers.js' own choice).
   * Pass `'auto'` when onnxruntime-web is the runtime (`globalThis[Symbol.for('onnxruntime')]`).
   */
  device?: string;
}

export interface VerifyResult {
  max_abs_diff: number;
  base_max_abs_diff: number;
  /** |adapter − base|: how much the adapter changes the outputs (0 would make the check vacuous). */
  adapter_effect: number;
  outputs: string[];
  dtype: 'fp32' | 'q8';
  mode: 'branch' | 'merge';
  peft_type: string;
  modules: number;
  modules_to_save: string[];
  texts: number;
}

export const DEFAULT_TEXTS = ['i feel happy today', 'this is a longer sentence that the model reads to check the adapter.', 'no'];

type Outputs = Record<string, { data: ArrayLike<number> | ArrayLike<bigint>; type: string }>;

function maxAbsDiff(a: Outputs, b: Outputs, names: string[]): number {
  let d = 0;
  for (const k of names) {
    const x = a[k]!.data as ArrayLike<number>;
    const y = b[k]!.data as ArrayLike<number>;
    if (x.length !== y.length) return Number.POSITIVE_INFINITY;
    for (let i = 0; i < x.length; i++) {
      const v = Math.abs(x[i]! - y[i]!);
      if (!(v <= d)) d = Number.isNaN(v) ? Number.POSITIVE_INFINITY : v;
    }
  }
  return d;
}

/** Run the four models of the check and return the differences. */
export async function verify(opts: VerifyOptions): Promise<VerifyResult> {
  const tf = await import('@huggingface/transformers');
  const { env } = tf;
  const dtype = opts.dtype ?? 'fp32';
  const dir = path.resolve(opts.model);
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as { architectures?: string[] };
  const arch = config.architectures?.[0] ?? '';
  const Loader = /CausalLM|LMHead/.test(arch) ? tf.AutoModelForCausalLM : /ForSequenceClassification/.test(arch) ? tf.AutoModelForSequenceClassification : tf.AutoModel;

  const saved = { allowRemoteModels: env.allowRemoteModels, localModelPath: env.localModelPath, useCustomCache: env.useCustomCache, customCache: env.customCache };
  env.allowRemoteModels = false;
  env.localModelPath = `${path.dirname(dir)}/`;
  const id = path.basename(dir);
  const adapter = typeof opts.adapter === 'string' ? await loadAdapter(opts.adapter) : opts.adapter;
  try {
    const tokenizer = await tf.AutoTokenizer.from_pretrained(id);
    const texts = opts.texts ?? DEFAULT_TEXTS;
    const inputs = tokenizer(texts, { padding: true, truncation: true }) as Record<string, unknown>;
    const load = (dt: 'fp32' | 'q8'): Promise<{ (x: unknown): Promise<Outputs>; dispose(): Promise<unknown> }> =>
      Loader.from_pretrained(id, {
        dtype: dt,
        // transformers.js validates the device name at run time (its list depends on the runtime).
        ...(opts.device ? { device: opts.device as NonNullable<Parameters<typeof Loader.from_pretrained>[1]>['device'] } : {}),
      }) as never;
    const run = async (m: (x: unknown) => Promise<Outputs>): Promise<Outputs> => m({ ...inputs });

    const base = await load(dtype);
    const baseOut = await run(base);
    await base.dispose();

    const restore = enableAdapters(env, { mode: opts.mode ?? 'branch' });
    let plugged;
    try {
      plugged = attachAdapters(await load(dtype));
    } finally {
      restore();
    }
    const disabledOut = await run(plugged);
    const info = await plugged.load_adapter('verify', adapter, opts.backend ? { backend: opts.backend } : {});
    plugged.set_adapter('verify');
    const adapterOut = await run(plugged);
    await plugged.dispose();

    const fp32 = new Uint8Array(await readFile(path.join(dir, 'onnx', 'model.onnx')));
    const merged = mergeModel(fp32, await materializeAdapter(adapter, opts.backend), adapter.extras);
    env.useCustomCache = true;
    env.customCache = {
      match: async (key: string) => (key.split('?')[0]!.endsWith('.onnx') ? new Response(merged as Uint8Array<ArrayBuffer>) : undefined),
      put: async () => undefined,
    };
    const mergedModel = await load('fp32');
    const mergedOut = await run(mergedModel);
    await mergedModel.dispose();

    const names = Object.keys(baseOut).filter((k) => baseOut[k]!.type === 'float32' && !k.startsWith('present'));
    return {
      max_abs_diff: maxAbsDiff(adapterOut, mergedOut, names),
      base_max_abs_diff: maxAbsDiff(disabledOut, baseOut, names),
      adapter_effect: maxAbsDiff(adapterOut, baseOut, names),
      outputs: names,
      dtype,
      mode: opts.mode ?? 'branch',
      peft_type: info.peft_type,
      modules: info.modules,
      modules_to_save: info.modules_to_save,
      texts: texts.length,
    };
  } finally {
    Object.assign(env, saved);
  }
}
