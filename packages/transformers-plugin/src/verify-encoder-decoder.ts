/**
 * `verify` for encoder–decoder folders (optimum's `onnx/encoder_model*.onnx` +
 * `onnx/decoder_model_merged*.onnx`; Whisper): the four models of verify.ts — base, plugin disabled,
 * plugin with the adapter, offline merge (each fp32 file merged with its own stack's modules) — on
 * speech inputs: deterministic synthetic waveforms through the model's own feature extractor, and
 * fixed decoder tokens after the decoder start token. Compared: the encoder's `last_hidden_state`
 * (the `model` session run directly) and the teacher-forced `logits` (both sessions); then greedy
 * `generate()` with the KV cache (both If branches of the merged decoder) from the same features,
 * whose tokens must equal the merged model's with the adapter and the base model's when disabled.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { loadAdapter, materializeAdapter } from '@tensorpeft/core';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { externalLocations } from './external-data.js';
import { inEncoder } from './encoder-decoder.js';
import { mergeModel } from './merge.js';
import { toleranceFor, type VerifyDtype } from './tolerance.js';
import type { VerifyOptions, VerifyResult } from './verify.js';
import { fileExists, loadPlugged, runOnce, serveFromBytes, useLocalFolder } from './verify-models.js';

const ENCODER = 'encoder_model.onnx';
const DECODER = 'decoder_model_merged.onnx';

/** A folder transformers.js loads as an encoder–decoder (both optimum files present). */
export async function isEncoderDecoderFolder(dir: string): Promise<boolean> {
  const exists = (f: string): Promise<boolean> => fileExists(path.join(dir, 'onnx', f));
  const [e, d] = await Promise.all([exists(ENCODER), exists(DECODER)]);
  return e && d;
}

/**
 * Two deterministic waveforms the length of the extractor's window (`n_samples`): a chirp with a
 * harmonic, and amplitude-modulated noise from a fixed LCG — different spectra, so every mel bin and
 * frame takes part.
 */
export function syntheticAudio(samples: number, rate: number): Float32Array[] {
  const chirp = new Float32Array(samples);
  for (let i = 0; i < samples; i++) {
    const t = i / rate;
    chirp[i] = 0.5 * Math.sin(2 * Math.PI * (220 + 900 * t) * t) + 0.2 * Math.sin(2 * Math.PI * 1320 * t);
  }
  const noise = new Float32Array(samples);
  let s = 12345;
  for (let i = 0; i < samples; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    noise[i] = ((s / 2 ** 32) * 2 - 1) * 0.3 * (1 + Math.sin((2 * Math.PI * i) / samples));
  }
  return [chirp, noise];
}

type Out = { data: ArrayLike<number>; dims: readonly number[] };

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Number.POSITIVE_INFINITY;
  let d = 0;
  for (let i = 0; i < a.length; i++) {
    const v = Math.abs(a[i]! - b[i]!);
    if (!(v <= d)) d = Number.isNaN(v) ? Number.POSITIVE_INFINITY : v;
  }
  return d;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

/** verify.ts' check on an encoder–decoder folder (called by `verify` when both files are there). */
export async function verifyEncoderDecoder(opts: VerifyOptions): Promise<VerifyResult> {
  const tf = await import('@huggingface/transformers');
  const { env, Tensor } = tf;
  const dtype: VerifyDtype = opts.dtype ?? 'fp32';
  const dir = path.resolve(opts.model);
  if (opts.texts || opts.images) throw new PluginError(`verify: ${dir} is a speech encoder–decoder model; it takes audio (synthetic waveforms), not texts or images`);
  if ((opts.mode ?? 'branch') !== 'branch') throw new PluginError('verify: merge mode is not supported for encoder–decoder models yet (branch mode only)');
  const config = JSON.parse(await readFile(path.join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
  const genCfg = (await readFile(path.join(dir, 'generation_config.json'), 'utf8').then(JSON.parse, () => ({}))) as Record<string, unknown>;
  const start = Number(genCfg['decoder_start_token_id'] ?? config['decoder_start_token_id']);
  const vocab = Number(config['vocab_size']);
  if (!Number.isInteger(start) || !Number.isInteger(vocab) || vocab < 8) throw new PluginError(`verify: ${dir}/config.json needs decoder_start_token_id and vocab_size`);
  const encBytes = new Uint8Array(await readFile(path.join(dir, 'onnx', ENCODER)));
  const decBytes = new Uint8Array(await readFile(path.join(dir, 'onnx', DECODER)));
  for (const [f, b] of [[ENCODER, encBytes], [DECODER, decBytes]] as const) {
    if (externalLocations(onnxProto.onnx.ModelProto.decode(b).graph ?? {}).length > 0) throw new PluginError(`verify: ${f} has ONNX external data, not supported for encoder–decoder models yet`);
  }

  const { id, restore: restoreEnv } = useLocalFolder(env, dir);
  const Loader = tf.AutoModelForSpeechSeq2Seq;
  type Model = Awaited<ReturnType<typeof Loader.from_pretrained>>;
  try {
    const adapter = typeof opts.adapter === 'string' ? await loadAdapter(opts.adapter) : opts.adapter;
    // The model's own feature extractor on two synthetic waveforms, stacked into one batch.
    const fe = (await tf.AutoFeatureExtractor.from_pretrained(id)) as unknown as ((a: Float32Array) => Promise<{ input_features: Out }>) & { config: Record<string, unknown> };
    const waves = syntheticAudio(Number(fe.config['n_samples'] ?? 480000), Number(fe.config['sampling_rate'] ?? 16000));
    const feats = await Promise.all(waves.map((w) => fe(w)));
    const per = feats[0]!.input_features.data.length;
    const all = new Float32Array(per * feats.length);
    feats.forEach((f, i) => all.set(f.input_features.data, i * per));
    const input_features = new Tensor('float32', all, [feats.length, ...feats[0]!.input_features.dims.slice(1)]);
    // The start token, then fixed ids spread over the vocabulary, in every row.
    const ids = [start, ...[3, 17, 101, 1009].map((x) => x % vocab)];
    const decoder_input_ids = new Tensor('int64', BigInt64Array.from(Array.from({ length: feats.length }, () => ids.map(BigInt)).flat()), [feats.length, ids.length]);
    const row0 = new Tensor('float32', all.slice(0, per), [1, ...feats[0]!.input_features.dims.slice(1)]);

    const load = (dt: VerifyDtype): Promise<Model> =>
      Loader.from_pretrained(id, {
        dtype: dt,
        ...(opts.device ? { device: opts.device as never } : {}),
        ...(opts.graphOptimizationLevel ? { session_options: { graphOptimizationLevel: opts.graphOptimizationLevel } } : {}),
      });
    const run = async (m: Model): Promise<{ enc: Float32Array; logits: Float32Array; tokens: number[] }> => {
      const e = (await m.sessions['model']!.run({ input_features })) as Record<string, Out>;
      const f = (await m({ input_features, decoder_input_ids })) as { logits: Out };
      const g = (await m.generate({ inputs: row0, max_new_tokens: 8, do_sample: false } as never)) as { tolist(): bigint[][] };
      return { enc: Float32Array.from(e['last_hidden_state']!.data), logits: Float32Array.from(f.logits.data), tokens: g.tolist()[0]!.map(Number) };
    };

    const baseOut = await runOnce(() => load(dtype), run);
    const base32Out = dtype !== 'fp32' ? await runOnce(() => load('fp32'), run) : baseOut;
    const plugged = await loadPlugged(env, { mode: 'branch', ...(opts.device ? { device: opts.device } : {}), ...(opts.branchDtype ? { branchDtype: opts.branchDtype } : {}) }, () => load(dtype));
    const disabledOut = await run(plugged);
    const name = typeof opts.adapter === 'string' ? opts.adapter : (adapter.source ?? 'adapter');
    const info = await plugged.load_adapter(adapter, { adapter_name: name, ...(opts.backend ? { backend: opts.backend } : {}) });
    plugged.set_adapter(name);
    const adapterOut = await run(plugged);
    await plugged.dispose();

    // The reference: each fp32 file merged with the modules of its own stack (heads live in the decoder).
    const updates = await materializeAdapter(adapter, opts.backend);
    const mergedEnc = mergeModel(encBytes, updates.filter((u) => inEncoder(u.path)));
    const mergedDec = mergeModel(decBytes, updates.filter((u) => !inEncoder(u.path)), adapter.extras);
    serveFromBytes(env, (p) => (p.endsWith(`/onnx/${ENCODER}`) ? mergedEnc : p.endsWith(`/onnx/${DECODER}`) ? mergedDec : undefined));
    const mergedOut = await runOnce(() => load('fp32'), run);

    const both = (o: { enc: Float32Array; logits: Float32Array }): Float32Array => {
      const x = new Float32Array(o.enc.length + o.logits.length);
      x.set(o.enc);
      x.set(o.logits, o.enc.length);
      return x;
    };
    const [b, b32, dis, ad, mg] = [baseOut, base32Out, disabledOut, adapterOut, mergedOut].map(both) as [Float32Array, Float32Array, Float32Array, Float32Array, Float32Array];
    const refMax = maxAbs(mg);
    const dtypeError = maxAbsDiff(b, b32);
    const effect = maxAbsDiff(ad, b);
    return {
      max_abs_diff: maxAbsDiff(ad, mg),
      tolerance: toleranceFor(dtype, dtypeError, refMax, effect),
      dtype_error: dtypeError,
      reference_max_abs: refMax,
      base_max_abs_diff: maxAbsDiff(dis, b),
      adapter_effect: effect,
      outputs: ['encoder_last_hidden_state', 'logits'],
      dtype,
      mode: 'branch',
      ...(opts.graphOptimizationLevel ? { graph_optimization_level: opts.graphOptimizationLevel } : {}),
      peft_type: info.peft_type,
      modules: info.modules,
      modules_to_save: info.modules_to_save,
      input_kind: 'audio',
      inputs: feats.length,
      texts: 0,
      images: 0,
      generate: {
        tokens: adapterOut.tokens,
        merged_tokens: mergedOut.tokens,
        base_tokens: baseOut.tokens,
        disabled_tokens: disabledOut.tokens,
        match: adapterOut.tokens.length === mergedOut.tokens.length && adapterOut.tokens.every((t, i) => t === mergedOut.tokens[i]),
        disabled_match: disabledOut.tokens.length === baseOut.tokens.length && disabledOut.tokens.every((t, i) => t === baseOut.tokens[i]),
      },
    };
  } finally {
    restoreEnv();
  }
}
