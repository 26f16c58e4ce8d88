/**
 * Whisper (encoder–decoder): the two files transformers.js loads for AutoModelForSpeechSeq2Seq, laid
 * out as optimum exports them, checked against an independent float64 forward pass
 * (test-utils/whisper-reference.ts) and, through generate() with the KV cache, against greedy
 * decoding by full recomputation.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoModelForSpeechSeq2Seq, AutoTokenizer, env, pipeline, Tensor } from '@huggingface/transformers';
import { decodeModel, makeModel, writeModel, type GeneratedModel } from './index.js';
import { maxAbsDiff } from './test-utils/reference.js';
import { whisperDecoder, whisperEncoder, type WhisperRefDims } from './test-utils/whisper-reference.js';

let root: string;
let m: GeneratedModel;
const FRAMES = 32;
const MELS = 8;
// Deterministic log-mel-like features in [-1, 1].
const feats = Float32Array.from({ length: MELS * FRAMES }, (_, i) => Math.sin(i * 0.37) * Math.cos(i * 0.011));
const dims = (g: GeneratedModel): WhisperRefDims => ({ hidden: 32, layers: 2, heads: 4, inter: 64, mels: MELS, vocab: g.config['vocab_size'] as number, eps: 1e-5 });

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-whisper-'));
  m = await writeModel({ arch: 'whisper', seed: 3 }, path.join(root, 'whisper'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('whisper (optimum encoder_model + decoder_model_merged)', () => {
  it('files, node names relative to each exported module, k_proj without bias, merged decoder', () => {
    expect([...m.files.keys()].sort()).toEqual(
      ['config.json', 'generation_config.json', 'onnx/decoder_model_merged.onnx', 'onnx/decoder_model_merged_quantized.onnx', 'onnx/encoder_model.onnx', 'onnx/encoder_model_quantized.onnx', 'preprocessor_config.json', 'tokenizer.json', 'tokenizer_config.json'].sort(),
    );
    const enc = decodeModel(m.files.get('onnx/encoder_model.onnx')!).graph!;
    const names = new Set(enc.node!.map((n) => n.name!));
    for (const n of ['/conv1/Conv', '/conv2/Conv', '/layers.0/self_attn/q_proj/MatMul', '/layers.0/self_attn/q_proj/Add', '/layers.0/self_attn/k_proj/MatMul', '/layers.1/fc2/MatMul', '/layer_norm/LayerNormalization']) expect(names.has(n), n).toBe(true);
    expect(names.has('/layers.0/self_attn/k_proj/Add')).toBe(false);
    expect(enc.input!.map((v) => v.name)).toEqual(['input_features']);
    expect(enc.output!.map((v) => v.name)).toEqual(['last_hidden_state']);

    const dec = decodeModel(m.files.get('onnx/decoder_model_merged.onnx')!).graph!;
    expect(dec.node!.map((n) => `${n.opType} ${n.name}`)).toEqual(['If optimum::if']);
    const pkv = (l: number): string[] => ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'].map((k) => `past_key_values.${l}.${k}`);
    expect(dec.input!.map((v) => v.name)).toEqual(['input_ids', 'encoder_hidden_states', ...pkv(0), ...pkv(1), 'use_cache_branch']);
    const present = (l: number): string[] => ['decoder.key', 'decoder.value', 'encoder.key', 'encoder.value'].map((k) => `present.${l}.${k}`);
    expect(dec.output!.map((v) => v.name)).toEqual(['logits', ...present(0), ...present(1)]);
    const [thenB, elseB] = ['then_branch', 'else_branch'].map((a) => dec.node![0]!.attribute!.find((x) => x.name === a)!.g!);
    const sub = (g: typeof thenB): Set<string> => new Set(g!.node!.map((n) => n.name!));
    // Cross-attention keys/values are projected only on the first step (no past); later they come from the cache.
    expect(sub(elseB).has('/model/decoder/layers.0/encoder_attn/k_proj/MatMul')).toBe(true);
    expect(sub(thenB).has('/model/decoder/layers.0/encoder_attn/k_proj/MatMul')).toBe(false);
    for (const g of [thenB, elseB]) {
      expect(sub(g).has('/model/decoder/layers.1/encoder_attn/q_proj/MatMul')).toBe(true);
      expect(sub(g).has('/proj_out/MatMul')).toBe(true);
      expect(g!.initializer ?? []).toEqual([]);
    }
    // The with-past export has no cross-attention outputs: empty constants stand in (axis 0 of size 0).
    const fill = thenB!.node!.filter((n) => n.opType === 'Constant' && n.output![0]!.startsWith('present.'));
    expect(fill.map((n) => n.output![0])).toEqual([...present(0), ...present(1)].filter((n) => n.includes('encoder')));
    expect(fill[0]!.attribute![0]!.t!.dims!.map(Number)).toEqual([0, 4, 1, 8]);
    // Weights shared by the two exports are stored once.
    const initNames = dec.initializer!.map((t) => t.name!);
    expect(new Set(initNames).size).toBe(initNames.length);
    expect(initNames.filter((n) => n === 'model.decoder.layers.0.self_attn.q_proj.bias').length).toBe(1);
    expect(initNames.some((n) => n.includes('_merged_'))).toBe(false);
  });

  it('config, generation, tokenizer and feature-extractor files as transformers.js reads them; core shape from config.json', async () => {
    expect(m.config).toMatchObject({ model_type: 'whisper', architectures: ['WhisperForConditionalGeneration'], is_encoder_decoder: true, d_model: 32, encoder_layers: 2, decoder_layers: 2, num_mel_bins: MELS, max_source_positions: FRAMES / 2 });
    const gen = JSON.parse(new TextDecoder().decode(m.files.get('generation_config.json')!)) as Record<string, number>;
    expect(gen['is_multilingual']).toBe(false);
    // The special ids of config and generation config are the tokenizer's; the vocabulary ends at
    // <|notimestamps|> (ids after it would be timestamps for WhisperTokenizer).
    const tok = await AutoTokenizer.from_pretrained('whisper');
    expect(tok.constructor.name).toBe('WhisperTokenizer');
    const id = (t: string): number => Number(tok.convert_tokens_to_ids([t])[0]);
    expect(gen['decoder_start_token_id']).toBe(id('<|startoftranscript|>'));
    expect(m.config['decoder_start_token_id']).toBe(id('<|startoftranscript|>'));
    expect(gen['eos_token_id']).toBe(id('<|endoftext|>'));
    expect(gen['no_timestamps_token_id']).toBe(id('<|notimestamps|>'));
    expect(m.config['vocab_size']).toBe(id('<|notimestamps|>') + 1);
    expect(tok.decode(tok.encode('hello world'), { skip_special_tokens: true }).trim()).toBe('hello world');
    const pre = JSON.parse(new TextDecoder().decode(m.files.get('preprocessor_config.json')!)) as Record<string, unknown>;
    expect(pre).toMatchObject({ feature_extractor_type: 'WhisperFeatureExtractor', feature_size: MELS, nb_max_frames: FRAMES, n_samples: FRAMES * 160, hop_length: 160 });
    expect(m.shape.modules.length).toBe(2 * 6 + 2 * 10);
    // Every target module is a linear of one of the two graphs (encoder paths relative to the encoder).
    const graphPaths = new Set(m.linears.map((l) => l.peftPath));
    for (const mod of m.shape.modules) expect(graphPaths.has(mod.path), mod.path).toBe(true);
  });

  it('encoder output and decoder logits match the float64 reference (transformers.js, onnxruntime-node)', async () => {
    const model = await AutoModelForSpeechSeq2Seq.from_pretrained('whisper', { dtype: 'fp32' });
    const input_features = new Tensor('float32', feats, [1, MELS, FRAMES]);
    const encOut = (await model.sessions['model']!.run({ input_features })) as Record<string, { data: Float32Array }>;
    const ref = whisperEncoder(m.weights, dims(m), feats, FRAMES);
    // fp32 evaluation of a 2-layer, 32-wide network vs float64: a few ulps of values of order 1.
    expect(maxAbsDiff(encOut['last_hidden_state']!.data, ref.hidden)).toBeLessThan(1e-4);
    const ids = [m.config['decoder_start_token_id'] as number, 7, 40, 3];
    const out = (await model({ input_features, decoder_input_ids: new Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]) })) as { logits: { data: Float32Array } };
    expect(maxAbsDiff(out.logits.data, whisperDecoder(m.weights, dims(m), ref, ids))).toBeLessThan(1e-4);
    await model.dispose();
  });

  it('generate() with the KV cache (both If branches) = greedy decoding by full recomputation; q8 loads and runs', async () => {
    const model = await AutoModelForSpeechSeq2Seq.from_pretrained('whisper', { dtype: 'fp32' });
    const input_features = new Tensor('float32', feats, [1, MELS, FRAMES]);
    const steps = 6;
    const seq = (await model.generate({ inputs: input_features, max_new_tokens: steps, do_sample: false } as never)) as Tensor;
    const cached = (seq.tolist() as bigint[][])[0]!.map(Number);
    const ref = whisperEncoder(m.weights, dims(m), feats, FRAMES);
    const V = dims(m).vocab;
    const gen = JSON.parse(new TextDecoder().decode(m.files.get('generation_config.json')!)) as Record<string, number>;
    // decoder_start_token_id, then <|notimestamps|> (return_timestamps false).
    const ids = [gen['decoder_start_token_id']!, gen['no_timestamps_token_id']!];
    for (let s = 0; s < steps; s++) {
      const logits = whisperDecoder(m.weights, dims(m), ref, ids);
      const last = logits.subarray((ids.length - 1) * V, ids.length * V);
      const next = last.indexOf(Math.max(...last));
      ids.push(next);
      if (next === gen['eos_token_id']) break;
    }
    expect(cached).toEqual(ids);
    await model.dispose();
    const q8 = await AutoModelForSpeechSeq2Seq.from_pretrained('whisper', { dtype: 'q8' });
    const q = (await q8.generate({ inputs: input_features, max_new_tokens: 2, do_sample: false } as never)) as Tensor;
    expect((q.tolist() as bigint[][])[0]!.slice(0, 2).map(Number)).toEqual(ids.slice(0, 2));
    await q8.dispose();
  });

  it('the automatic-speech-recognition pipeline runs on it: audio → WhisperFeatureExtractor → generate → WhisperTokenizer', async () => {
    const asr = await pipeline('automatic-speech-recognition', 'whisper', { dtype: 'fp32' });
    const audio = Float32Array.from({ length: FRAMES * 160 }, (_, i) => 0.4 * Math.sin((2 * Math.PI * 440 * i) / 16000));
    const out = (await asr(audio, { max_new_tokens: 6 } as never)) as { text: string };
    // The same text as decoding what generate() gives on the extractor's features (skipping specials).
    const feats = (await asr.processor(audio)) as { input_features: Tensor };
    const seq = (await asr.model.generate({ inputs: feats.input_features, max_new_tokens: 6, do_sample: false } as never)) as Tensor;
    const text = asr.tokenizer.decode((seq.tolist() as bigint[][])[0]!, { skip_special_tokens: true });
    expect(typeof out.text).toBe('string');
    expect(out.text.trim()).toBe(text.trim());
    await asr.dispose();
  });

  it('same options → same bytes; unsupported options are typed errors', () => {
    const a = makeModel({ arch: 'whisper', seed: 3, quantized: false });
    for (const f of ['onnx/encoder_model.onnx', 'onnx/decoder_model_merged.onnx']) expect(Buffer.compare(a.files.get(f)!, m.files.get(f)!), f).toBe(0);
    expect(() => makeModel({ arch: 'whisper', externalData: true })).toThrow(/externalData/);
    expect(() => makeModel({ arch: 'whisper', task: 'causal-lm' })).toThrow(/task not available for whisper/);
  });
});
