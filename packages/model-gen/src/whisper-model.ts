/**
 * `makeModel({ arch: 'whisper' })`: a WhisperForConditionalGeneration folder as transformers.js loads
 * it (`AutoModelForSpeechSeq2Seq`, the `automatic-speech-recognition` pipeline's model):
 * config.json, generation_config.json, preprocessor_config.json (WhisperFeatureExtractor),
 * tokenizer.json + tokenizer_config.json (WhisperTokenizer, whisper-tokenizer.ts),
 * `onnx/encoder_model*.onnx` and `onnx/decoder_model_merged*.onnx` (see build/whisper.ts).
 */
import { ConfigError, shapeFromHfConfig } from '@tensorpeft/core';
import { buildWhisperDecoder, buildWhisperEncoder, mergeDecoders, whisperDims, whisperState, type WhisperDims } from './build/whisper.js';
import { dedupeInitializers } from './onnx/dedupe.js';
import { dtypeGraph, EXTRA_DTYPES } from './onnx/dtypes.js';
import { encodeModel, type Graph } from './onnx/graph.js';
import { quantizeDynamic } from './onnx/quantize.js';
import type { GeneratedModel, MakeModelOptions } from './make-model.js';
import { makeTokenizer } from './tokenizers.js';
import { whisperTokenizer } from './whisper-tokenizer.js';

/** Special-token ids of the English-only checkpoints (openai/whisper-*.en), in WHISPER_SPECIALS' order. */
const EN_SPECIAL_IDS = [50257, 50357, 50358, 50359, 50360, 50361, 50362];

const json = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

function whisperConfig(d: WhisperDims, meta: Record<string, unknown>): Record<string, unknown> {
  // The keys of openai/whisper-*'s config.json that transformers.js and core read.
  return {
    _name_or_path: meta['name'],
    activation_dropout: 0,
    activation_function: 'gelu',
    architectures: ['WhisperForConditionalGeneration'],
    attention_dropout: 0,
    begin_suppress_tokens: null,
    bos_token_id: d.endOfText,
    d_model: d.hiddenSize,
    decoder_attention_heads: d.numHeads,
    decoder_ffn_dim: d.intermediateSize,
    decoder_layerdrop: 0,
    decoder_layers: d.numLayers,
    decoder_start_token_id: d.startOfTranscript,
    dropout: 0,
    encoder_attention_heads: d.numHeads,
    encoder_ffn_dim: d.intermediateSize,
    encoder_layerdrop: 0,
    encoder_layers: d.numLayers,
    eos_token_id: d.endOfText,
    init_std: 0.02,
    is_encoder_decoder: true,
    max_source_positions: d.maxSourcePositions,
    max_target_positions: d.maxTargetPositions,
    model_type: 'whisper',
    num_hidden_layers: d.numLayers,
    num_mel_bins: d.numMelBins,
    pad_token_id: d.endOfText,
    scale_embedding: false,
    torch_dtype: 'float32',
    transformers_version: '4.46.3',
    use_cache: true,
    vocab_size: d.vocabSize,
    tensorpeft: meta,
  };
}

/** WhisperFeatureExtractor's fields; 2 × max_source_positions frames of 10 ms (hop 160 at 16 kHz). */
function whisperPreprocessor(d: WhisperDims): Record<string, unknown> {
  const frames = 2 * d.maxSourcePositions;
  return {
    chunk_length: (frames * 160) / 16000,
    feature_extractor_type: 'WhisperFeatureExtractor',
    feature_size: d.numMelBins,
    hop_length: 160,
    n_fft: 400,
    n_samples: frames * 160,
    nb_max_frames: frames,
    padding_side: 'right',
    padding_value: 0,
    processor_class: 'WhisperProcessor',
    return_attention_mask: false,
    sampling_rate: 16000,
  };
}

export function makeWhisperModel(opts: MakeModelOptions): GeneratedModel {
  const size = opts.size ?? 'tiny';
  if (size !== 'tiny' && size !== 'base') throw new ConfigError('unknown size', { field: 'size', expected: 'tiny | base', found: size });
  if (opts.task !== undefined && opts.task !== 'speech-seq2seq' && opts.task !== 'automatic-speech-recognition') {
    throw new ConfigError('task not available for whisper', { field: 'task', expected: 'speech-seq2seq', found: opts.task });
  }
  // Not built for this layout yet: refused rather than silently ignored.
  for (const [field, set] of [['externalData', opts.externalData === true], ['layout', opts.layout !== undefined && opts.layout !== 'optimum'], ['freshInit', opts.freshInit === true], ['constantFolding', opts.constantFolding === false]] as const) {
    if (set) throw new ConfigError(`whisper: ${field} is not supported`, { field, found: String(opts[field]) });
  }
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ConfigError('seed must be an integer in [0, 2^32)', { field: 'seed', found: seed });
  const d = whisperDims(size);
  // GPT-2's byte-level BPE plus Whisper's specials: the generated one at tiny size (the vocabulary
  // ends at <|notimestamps|>), the real GPT-2 vocabulary (fixtures) with the .en ids at base size.
  const tok = size === 'tiny' ? whisperTokenizer(makeTokenizer('gpt2', 'tiny')!) : whisperTokenizer(makeTokenizer('gpt2', 'base', opts.fixturesDir)!, EN_SPECIAL_IDS);
  if (size === 'tiny') d.vocabSize = tok.noTimestamps + 1;
  d.endOfText = tok.endOfText;
  d.startOfTranscript = tok.startOfTranscript;
  d.noTimestamps = tok.noTimestamps;
  const enc = buildWhisperEncoder(seed, d);
  const noPast = buildWhisperDecoder(seed, d, false);
  const withPast = buildWhisperDecoder(seed, d, true);
  const meta = { name: `tensorpeft/random-whisper-${size}`, generator: '@tensorpeft/model-gen', seed, size, task: 'speech-seq2seq', ...(d.shapeOf ? { shape_of: d.shapeOf } : {}) };
  const config = whisperConfig(d, meta);
  const files = new Map<string, Uint8Array>();
  files.set('config.json', json(config));
  files.set(
    'generation_config.json',
    json({
      bos_token_id: d.endOfText,
      decoder_start_token_id: d.startOfTranscript,
      eos_token_id: d.endOfText,
      is_multilingual: false,
      max_length: d.maxTargetPositions,
      no_timestamps_token_id: d.noTimestamps,
      pad_token_id: d.endOfText,
      return_timestamps: false,
      transformers_version: '4.46.3',
    }),
  );
  files.set('preprocessor_config.json', json(whisperPreprocessor(d)));
  files.set('tokenizer.json', json(tok.tokenizer));
  files.set('tokenizer_config.json', json(tok.config));
  // Each dtype is made from the flat exports (the quantizers see plain graphs), then the decoder is merged.
  const encG = dedupeInitializers(enc.graph);
  const noPastG = dedupeInitializers(noPast.graph);
  const withPastG = dedupeInitializers(withPast.graph);
  const write = (suffix: string, f: (g: Graph) => Graph): void => {
    files.set(`onnx/encoder_model${suffix}.onnx`, encodeModel(f(encG)));
    files.set(`onnx/decoder_model_merged${suffix}.onnx`, encodeModel(mergeDecoders(f(noPastG), f(withPastG))));
  };
  write('', (g) => g);
  if (opts.quantized !== false) write('_quantized', (g) => quantizeDynamic(g));
  for (const dt of opts.dtypes ?? []) {
    if (!(EXTRA_DTYPES as readonly string[]).includes(dt)) throw new ConfigError('unknown dtype', { field: 'dtype', expected: EXTRA_DTYPES.join(' | '), found: dt });
    write(`_${dt}`, (g) => dtypeGraph(g, dt));
  }
  const merged = mergeDecoders(noPastG, withPastG);
  return {
    files,
    shape: shapeFromHfConfig(config),
    arch: 'whisper',
    size,
    task: 'speech-seq2seq',
    config,
    // Encoder linears (paths relative to the exported WhisperEncoder), then the decoder's as its first step runs them.
    linears: [...enc.ctx.linears, ...noPast.ctx.linears],
    inputs: merged.inputs,
    outputs: merged.outputs,
    parts: {
      encoder_model: { inputs: encG.inputs, outputs: encG.outputs },
      decoder_model_merged: { inputs: merged.inputs, outputs: merged.outputs },
    },
    weights: whisperState(enc.ctx, noPast.ctx),
    tokenizerSource: tok.source,
  };
}
