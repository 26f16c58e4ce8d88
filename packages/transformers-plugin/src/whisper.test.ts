/**
 * Encoder–decoder models (issue 12): a Whisper folder as optimum exports it — `encoder_model.onnx`
 * and `decoder_model_merged.onnx`, two sessions in transformers.js — with adapters on modules of
 * both stacks (encoder self-attention, decoder self- and cross-attention) in ONE registry, for all six
 * methods, against the same adapter merged offline into both files.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForSpeechSeq2Seq, env, pipeline, Tensor } from '@huggingface/transformers';
import { adapterToFiles, createAdapter, listMethods, materializeAdapter, ShapeMismatchError, type ModelShape, type ModuleUpdate } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { inEncoder } from './encoder-decoder.js';
import { mergeModel } from './merge.js';
import { attachAdapters, enableAdapters, from_pretrained } from './plugin.js';
import { toleranceFor } from './tolerance.js';

// Factorizations for the tiny Whisper's 32- and 64-wide modules (the defaults cover published sizes).
const TINY_CONFIG: Record<string, Record<string, unknown>> = {
  LORETTA: { tensor_shape_a: { '32': [4, 8, 8] }, tensor_shape_b: { '32': [8, 8, 4] } },
  TRAC: { tensor_shape: { '32': [2, 4, 4] } },
};
const MELS = 8;
const FRAMES = 32;

type Seq2Seq = Awaited<ReturnType<typeof AutoModelForSpeechSeq2Seq.from_pretrained>>;
interface Outputs {
  encoder: Float32Array;
  logits: Float32Array;
  tokens: number[];
}

let root: string;
let m: GeneratedModel;
let base: Seq2Seq;
let baseOut: Outputs;
const input_features = new Tensor('float32', Float32Array.from({ length: MELS * FRAMES }, (_, i) => Math.cos(i * 0.29) * Math.sin(i * 0.017 + 1)), [1, MELS, FRAMES]);
const decoderIds = [93, 95, 11, 60, 2, 33];

/** Encoder output (the `model` session run directly), teacher-forced logits, greedy tokens (KV cache). */
async function outputs(model: Seq2Seq): Promise<Outputs> {
  const enc = (await model.sessions['model']!.run({ input_features })) as Record<string, { data: Float32Array }>;
  const fwd = (await model({ input_features, decoder_input_ids: new Tensor('int64', BigInt64Array.from(decoderIds.map(BigInt)), [1, decoderIds.length]) })) as { logits: { data: Float32Array } };
  const seq = (await model.generate({ inputs: input_features, max_new_tokens: 8, do_sample: false } as never)) as Tensor;
  return { encoder: Float32Array.from(enc['last_hidden_state']!.data), logits: Float32Array.from(fwd.logits.data), tokens: (seq.tolist() as bigint[][])[0]!.map(Number) };
}

const maxAbs = (a: ArrayLike<number>): number => {
  let x = 0;
  for (let i = 0; i < a.length; i++) x = Math.max(x, Math.abs(a[i]!));
  return x;
};
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let x = 0;
  for (let i = 0; i < a.length; i++) x = Math.max(x, Math.abs(a[i]! - b[i]!));
  return x;
};

/** The folder with `updates` merged into both files (each file gets its own stack's modules). */
async function mergedFolder(name: string, updates: readonly ModuleUpdate[]): Promise<string> {
  const dir = path.join(root, name);
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'generation_config.json', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(root, 'whisper', f), path.join(dir, f));
  for (const [file, mine] of [['encoder_model.onnx', true], ['decoder_model_merged.onnx', false]] as const) {
    const bytes = new Uint8Array(await readFile(path.join(root, 'whisper', 'onnx', file)));
    await writeFile(path.join(dir, 'onnx', file), mergeModel(bytes, updates.filter((u) => inEncoder(u.path) === mine)));
  }
  return name;
}

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-whisper-plugin-'));
  m = await writeModel({ arch: 'whisper', seed: 5, quantized: false, dtypes: ['q4f16'] }, path.join(root, 'whisper'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  base = await AutoModelForSpeechSeq2Seq.from_pretrained('whisper', { dtype: 'fp32' });
  baseOut = await outputs(base);
});
afterAll(async () => {
  await base?.dispose();
  await rm(root, { recursive: true, force: true });
});

describe('Whisper: one registry over the encoder and decoder sessions', () => {
  test('both sessions rewritten; a module in one session only is fine, a module in no session is an error', async () => {
    const model = await from_pretrained(env, AutoModelForSpeechSeq2Seq, 'whisper', { dtype: 'fp32' });
    // Encoder-only and decoder-only adapters: the other session simply has none of their modules.
    const encOnly = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { target_modules: 'model\\.encoder\\..*_proj' } });
    const decOnly = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 2, config: { target_modules: '.*encoder_attn\\.(q|v)_proj' } });
    expect((await model.load_adapter(encOnly, { adapter_name: 'enc' })).modules).toBe(2 * 4);
    expect((await model.load_adapter(decOnly, { adapter_name: 'dec' })).modules).toBe(2 * 2);
    // A module of neither file (layer 7 of a 2-layer decoder) is refused, naming it.
    const extra: ModelShape = { ...m.shape, modules: [...m.shape.modules, { path: 'model.decoder.layers.7.fc1', type: 'fc1', layer: 1, in: 32, out: 64, fanInFanOut: false }] };
    const stray = createAdapter({ method: 'LORA', shape: extra, nonzero: true, seed: 3, config: { target_modules: ['fc1'] } });
    const err = await model.load_adapter(stray, { adapter_name: 'stray' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect((err as Error).message).toMatch(/module model\.decoder\.layers\.7\.fc1 .* is not a linear of the model/);
    // The encoder-only adapter changes the encoder output; the decoder-only one leaves it bit for bit.
    model.set_adapter('enc');
    const enc = await outputs(model);
    expect(maxDiff(enc.encoder, baseOut.encoder)).toBeGreaterThan(1e-3);
    model.set_adapter('dec');
    const dec = await outputs(model);
    expect(dec.encoder).toEqual(baseOut.encoder);
    expect(maxDiff(dec.logits, baseOut.logits)).toBeGreaterThan(1e-3);
    await model.dispose();
  });

  test('merge mode: encoder weights fed merged, decoder subgraph targets keep branches; = branch mode, disabled = base', async () => {
    const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 6, config: { target_modules: 'all-linear' } });
    const branch = await from_pretrained(env, AutoModelForSpeechSeq2Seq, 'whisper', { dtype: 'fp32', adapters: { a: adapter } });
    const merge = await from_pretrained(env, AutoModelForSpeechSeq2Seq, 'whisper', { dtype: 'fp32', mode: 'merge', adapters: { a: adapter } });
    const [b, mm] = [await outputs(branch), await outputs(merge)];
    // Two fp32 evaluations of the same ΔW (x·W′ vs x·W0 + (x·A′)·s·B′ᵀ): rounding only.
    expect(maxDiff(mm.encoder, b.encoder)).toBeLessThanOrEqual(toleranceFor('fp32', 0, maxAbs(b.encoder), 0));
    expect(maxDiff(mm.logits, b.logits)).toBeLessThanOrEqual(toleranceFor('fp32', 0, maxAbs(b.logits), 0));
    expect(maxDiff(b.logits, baseOut.logits)).toBeGreaterThan(1e-2);
    expect(mm.tokens).toEqual(b.tokens);
    merge.disable_adapters();
    const off = await outputs(merge);
    expect(off.encoder).toEqual(baseOut.encoder);
    expect(off.logits).toEqual(baseOut.logits);
    await branch.dispose();
    await merge.dispose();
  });

  test('automatic-speech-recognition pipeline: attachAdapters on the pipeline; tokens with the adapter = merged model\'s, per-call { adapter: null } = base', async () => {
    const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 21, config: { target_modules: 'all-linear' } });
    // Scaled up (s on every module) so that the greedy tokens change.
    const scale = 30;
    const updates = (await materializeAdapter(adapter)).map((u) => ({ ...u, s: u.s * scale }));
    const audio = Float32Array.from({ length: FRAMES * 160 }, (_, i) => 0.3 * Math.sin((2 * Math.PI * 300 * i) / 16000) + 0.2 * Math.sin((2 * Math.PI * 1700 * i) / 16000));
    type Asr = ((a: Float32Array, o: never) => Promise<unknown>) & { tokenizer: { _decode_asr: (chunks: Array<{ tokens: bigint[] }>, o: unknown) => unknown } };
    // The pipeline returns text only, and a random tiny model's tokens are mostly lone bytes that
    // decode to U+FFFD alike: the tokens it generated are read where it hands them to the tokenizer.
    const run = async (p: Asr, o: Record<string, unknown> = {}): Promise<{ text: string; tokens: number[] }> => {
      const tok = p.tokenizer;
      const orig = tok._decode_asr.bind(tok);
      let tokens: number[] = [];
      tok._decode_asr = (chunks, opts) => {
        tokens = chunks.flatMap((c) => c.tokens.map(Number));
        return orig(chunks, opts);
      };
      const out = (await p(audio, { max_new_tokens: 8, ...o } as never)) as { text: string };
      tok._decode_asr = orig;
      return { text: out.text, tokens };
    };
    const basePipe = await pipeline('automatic-speech-recognition', 'whisper', { dtype: 'fp32' });
    const baseRun = await run(basePipe as unknown as Asr);
    await basePipe.dispose();
    const mergedPipe = await pipeline('automatic-speech-recognition', await mergedFolder('merged-asr', updates), { dtype: 'fp32' });
    const mergedRun = await run(mergedPipe as unknown as Asr);
    await mergedPipe.dispose();
    expect(mergedRun.tokens.length).toBeGreaterThan(2);
    expect(mergedRun.tokens).not.toEqual(baseRun.tokens);
    const restore = enableAdapters(env);
    let asr;
    try {
      asr = attachAdapters(await pipeline('automatic-speech-recognition', 'whisper', { dtype: 'fp32' }));
    } finally {
      restore();
    }
    await asr.load_adapter(adapter, { adapter_name: 'a', scale });
    asr.set_adapter('a');
    expect(await run(asr as unknown as Asr)).toEqual(mergedRun);
    expect(await run(asr as unknown as Asr, { adapter: null })).toEqual(baseRun);
    asr.disable_adapters();
    expect(await run(asr as unknown as Asr)).toEqual(baseRun);
    await asr.dispose();
  });

  test('a dtype per session (fp32 encoder, q4f16 decoder, as WebGPU apps load Whisper): disabled = that base exactly, adapter within the derived tolerance of the fp32 merge', async () => {
    const dtype = { encoder_model: 'fp32', decoder_model_merged: 'q4f16' } as never;
    const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 9, config: { target_modules: 'all-linear' } });
    const ref = await AutoModelForSpeechSeq2Seq.from_pretrained(await mergedFolder('merged-mixed', await materializeAdapter(adapter)), { dtype: 'fp32' });
    const refOut = await outputs(ref);
    await ref.dispose();
    const mixedBase = await AutoModelForSpeechSeq2Seq.from_pretrained('whisper', { dtype });
    const mixedBaseOut = await outputs(mixedBase);
    await mixedBase.dispose();
    const model = await from_pretrained(env, AutoModelForSpeechSeq2Seq, 'whisper', { dtype, adapters: { a: adapter } });
    const out = await outputs(model);
    // The 4-bit decoder's own error at the base weights (verify's dtype_error), then tolerance.ts' bound.
    const q = maxDiff(mixedBaseOut.logits, baseOut.logits);
    const effect = maxDiff(out.logits, mixedBaseOut.logits);
    expect(q).toBeGreaterThan(0);
    expect(maxDiff(out.logits, refOut.logits)).toBeLessThanOrEqual(toleranceFor('q4f16', q, maxAbs(refOut.logits), effect));
    // The encoder is fp32: exactly as in the all-fp32 comparison.
    expect(maxDiff(out.encoder, refOut.encoder)).toBeLessThanOrEqual(toleranceFor('fp32', 0, maxAbs(refOut.encoder), maxDiff(refOut.encoder, baseOut.encoder)));
    model.disable_adapters();
    const off = await outputs(model);
    expect(off).toEqual(mixedBaseOut);
    await model.dispose();
  });

  const methods = listMethods().map((x) => x.peftType);
  test('six methods', () => expect(methods.length).toBe(6));
  for (const method of methods) {
    test(`${method} on q_proj/v_proj of both stacks (incl. cross-attention): = offline merge of both files; disabled = base bit for bit`, async () => {
      const adapter = createAdapter({ method, shape: m.shape, nonzero: true, seed: 11, config: TINY_CONFIG[method] ?? {} });
      const paths = adapter.plan.modules.map((x) => x.path);
      expect(paths.some((p) => p.startsWith('model.encoder.'))).toBe(true);
      expect(paths.some((p) => p.includes('.encoder_attn.'))).toBe(true);
      expect(paths.some((p) => p.startsWith('model.decoder.') && p.includes('.self_attn.'))).toBe(true);
      // Scaled so that ΔW's largest entry is 0.5 (the weights are U(±0.18)): greedy tokens change.
      let big = 0;
      for (const u of await materializeAdapter(adapter)) {
        for (let o = 0; o < u.m; o++) {
          for (let i = 0; i < u.n; i++) {
            let acc = 0;
            for (let r = 0; r < u.rho; r++) acc += u.B[o * u.rho + r]! * u.A[i * u.rho + r]!;
            big = Math.max(big, Math.abs(u.s * acc));
          }
        }
      }
      const scale = 0.5 / big;
      const updates = (await materializeAdapter(adapter)).map((u) => ({ ...u, s: u.s * scale }));
      const ref = await AutoModelForSpeechSeq2Seq.from_pretrained(await mergedFolder(`merged-${method}`, updates), { dtype: 'fp32' });
      const refOut = await outputs(ref);
      await ref.dispose();

      // Loaded from its files (the safetensors manifest carries the plan), as a user does.
      const files = adapterToFiles(adapter);
      const model = await from_pretrained(env, AutoModelForSpeechSeq2Seq, 'whisper', { dtype: 'fp32', adapters: { a: { source: { config: files.configJson, safetensors: files.safetensors }, scale } } });
      const out = await outputs(model);
      for (const k of ['encoder', 'logits'] as const) {
        const effect = maxDiff(refOut[k], baseOut[k]);
        const tol = toleranceFor('fp32', 0, maxAbs(refOut[k]), effect);
        expect(maxDiff(out[k], refOut[k]), k).toBeLessThanOrEqual(tol);
        // The adapter acts far beyond the tolerance (a branch on the wrong module would show).
        expect(effect, k).toBeGreaterThan(100 * tol);
      }
      expect(refOut.tokens).not.toEqual(baseOut.tokens);
      expect(out.tokens).toEqual(refOut.tokens);
      model.disable_adapters();
      const off = await outputs(model);
      expect(off.encoder).toEqual(baseOut.encoder);
      expect(off.logits).toEqual(baseOut.logits);
      expect(off.tokens).toEqual(baseOut.tokens);
      model.enable_adapters();
      expect((await outputs(model)).tokens).toEqual(refOut.tokens);
      // Unloaded: both sessions back to the base.
      model.delete_adapter('a');
      expect((await outputs(model)).logits).toEqual(baseOut.logits);
      await model.dispose();
    });
  }
});
