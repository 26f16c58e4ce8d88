/** makeModel / writeModel: a transformers.js model folder with deterministic random weights. */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { buildShape, ConfigError, type ModelShape } from '@tensorpeft/core';
import { buildBertLike, buildDistilBert } from './build/encoders.js';
import { buildGpt2, buildLlama } from './build/decoders.js';
import { buildVit } from './build/vit.js';
import { Ctx, type GraphLinear, type StateDict } from './build/ctx.js';
import { encodeModel, type Graph, type ValueInfo } from './onnx/graph.js';
import { quantizeDynamic } from './onnx/quantize.js';
import { encodeModelExternal } from './onnx/external.js';
import { dedupeInitializers } from './onnx/dedupe.js';
import { mergedDecoder } from './onnx/merged.js';
import { dtypeGraph, EXTRA_DTYPES, type ExtraDtype } from './onnx/dtypes.js';
import { genaiFiles } from './build/genai-model.js';
import {
  ARCH_TASKS,
  ARCHS,
  CLASS_NAMES,
  DEFAULT_TASK,
  modelDims,
  SIZES,
  TASK_ALIASES,
  TASK_ROOT,
  type Arch,
  type ModelDims,
  type Size,
  type Task,
} from './spec.js';
import { makeTokenizer, type TokenizerFiles } from './tokenizers.js';
import { makeWhisperModel } from './whisper-model.js';
import type { EncoderDecoderArch } from './spec.js';

export interface MakeModelOptions {
  arch: Arch | string;
  /** `tiny` (default; hidden 32–64, 2 layers) or `base` (published checkpoint shapes). */
  size?: Size | string;
  /** Default: the PEFT task model (sequence classification for encoders and ViT, causal LM for GPT-2/LLaMA). */
  task?: Task | string;
  /** Classifier outputs (sequence classification); default 2. */
  numLabels?: number;
  /** PRNG seed (core's `streamFor(seed, parameter name)`); default 0. */
  seed?: number;
  /** Also write `onnx/model_quantized.onnx` (default true). */
  quantized?: boolean;
  /**
   * More transformers.js dtypes to write (default none): `fp16` → `onnx/model_fp16.onnx`, `int8`,
   * `uint8`, `q4`, `q4f16`, `bnb4` → `onnx/model_<dtype>.onnx`, each as transformers.js'
   * quantization script makes it (see the README for the source of each pattern).
   */
  dtypes?: readonly ExtraDtype[];
  /**
   * GPT-2 `Conv1D` as `Gemm` (default: what torch.onnx exports for `addmm`; onnxruntime's dynamic
   * quantization leaves Gemm in fp32) or as `MatMul` + `Add` (weights [in, out] under their own
   * names; quantized to MatMulInteger in model_quantized.onnx).
   */
  gpt2Conv1d?: 'Gemm' | 'MatMul';
  /**
   * Store initializers of ≥ 1 KiB as ONNX external data: `onnx/model.onnx_data` (and
   * `onnx/model_quantized.onnx_data`) next to each `.onnx`, referenced by location/offset/length
   * (default false). config.json then says `transformers.js_config.use_external_data_format: true`,
   * as published repos with external data do, so transformers.js fetches the side files.
   */
  externalData?: boolean;
  /** Folder holding the real tokenizers (default `<repo>/fixtures/peft-real`). */
  fixturesDir?: string;
  /**
   * Initialize as HF's `_init_weights` leaves a model built from its config: biases 0, LayerNorm
   * γ = 1, β = 0 (weights stay random). The bit-identical tensors this gives are de-duplicated as
   * torch.onnx does: one initializer, the other names as `Identity` outputs. Default false.
   */
  freshInit?: boolean;
  /**
   * torch.onnx's `do_constant_folding` (default true). false: nn.Linear weights stay `[out, in]`
   * under their state-dict names and reach MatMul through a `Transpose` node; onnxruntime's q8
   * quantizer (`MatMulConstBOnly`) then leaves those MatMuls fp32.
   */
  constantFolding?: boolean;
  /**
   * `optimum` (default): one flat graph per file. `merged-decoder` (causal LM only): every file is a
   * merged decoder — an `If` on `use_cache_branch` with the decoder in its two subgraphs and the weights
   * on the main graph (optimum's legacy `decoder_model_merged.onnx`, here under the file names
   * transformers.js 4.3 loads for decoders, `model*.onnx`).
   * `genai` (LLaMA causal LM only): onnxruntime-genai's model builder layout — packed `qkv_proj` MatMul
   * into GroupQueryAttention, SkipSimplifiedLayerNormalization, `genai_config.json`; dtypes `fp16`,
   * `q4`, `q4f16` only, no q8 file (see build/genai.ts and the README).
   */
  layout?: 'optimum' | 'merged-decoder' | 'genai';
}

export interface GeneratedModel {
  /** Relative path → bytes: config.json, tokenizer files or preprocessor_config.json, onnx/*.onnx. */
  files: Map<string, Uint8Array>;
  /** Core's shape of the model (what `shapeFromHfConfig(config.json)` returns): PEFT module paths. */
  shape: ModelShape;
  arch: Arch | EncoderDecoderArch;
  size: Size;
  /** `speech-seq2seq`: WhisperForConditionalGeneration. */
  task: Task | 'speech-seq2seq';
  /** The config.json object. */
  config: Record<string, unknown>;
  /** Where each linear module lives in the graph (targets and heads), in model order. */
  linears: GraphLinear[];
  /** Graph inputs and outputs of model.onnx (and model_quantized.onnx); a merged decoder adds `use_cache_branch`. */
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Encoder–decoder models: inputs and outputs of each file (`encoder_model`, `decoder_model_merged`). */
  parts?: Record<string, { inputs: ValueInfo[]; outputs: ValueInfo[] }>;
  /** Every parameter in torch layout ([out, in] for Linear, [in, out] for Conv1D), by state-dict name. */
  weights: StateDict;
  /** Where the tokenizer came from (`undefined` for ViT). */
  tokenizerSource?: TokenizerFiles['source'];
}

function check<T extends string>(value: string, allowed: readonly T[], field: string): T {
  if (!(allowed as readonly string[]).includes(value)) throw new ConfigError(`unknown ${field}`, { field, expected: allowed.join(' | '), found: value });
  return value as T;
}

function resolveTask(arch: Arch, task: string | undefined): Task {
  if (task === undefined) return DEFAULT_TASK[arch];
  const t = Object.hasOwn(TASK_ALIASES, task) ? TASK_ALIASES[task]! : undefined;
  if (!t) throw new ConfigError('unknown task', { field: 'task', expected: Object.keys(TASK_ALIASES).join(' | '), found: task });
  if (!ARCH_TASKS[arch].includes(t)) {
    throw new ConfigError(`task not available for ${arch} (transformers.js has no such model class)`, { field: 'task', expected: ARCH_TASKS[arch].join(' | '), found: task });
  }
  return t;
}

function labels(n: number): { id2label: Record<string, string>; label2id: Record<string, number> } {
  const id2label: Record<string, string> = {};
  const label2id: Record<string, number> = {};
  for (let i = 0; i < n; i++) {
    id2label[String(i)] = `LABEL_${i}`;
    label2id[`LABEL_${i}`] = i;
  }
  return { id2label, label2id };
}

/** config.json with the keys the published checkpoints (and transformers.js) use. */
function hfConfig(arch: Arch, task: Task, d: ModelDims, numLabels: number, tok: TokenizerFiles | undefined, meta: Record<string, unknown>): Record<string, unknown> {
  const head = task === 'sequence-classification' ? { ...labels(numLabels), num_labels: numLabels } : {};
  const common = { architectures: [CLASS_NAMES[arch][task]!], model_type: arch, torch_dtype: 'float32', transformers_version: '4.46.3' };
  switch (arch) {
    case 'bert':
    case 'roberta':
      return {
        _name_or_path: meta['name'],
        ...common,
        attention_probs_dropout_prob: 0.1,
        ...(arch === 'roberta' ? { bos_token_id: 0, eos_token_id: 2 } : {}),
        classifier_dropout: null,
        hidden_act: 'gelu',
        hidden_dropout_prob: 0.1,
        hidden_size: d.hiddenSize,
        initializer_range: 0.02,
        intermediate_size: d.intermediateSize,
        layer_norm_eps: d.layerNormEps,
        max_position_embeddings: d.maxPositions,
        num_attention_heads: d.numHeads,
        num_hidden_layers: d.numLayers,
        pad_token_id: arch === 'roberta' ? 1 : 0,
        position_embedding_type: 'absolute',
        type_vocab_size: d.typeVocabSize,
        use_cache: true,
        vocab_size: d.vocabSize,
        ...head,
        tensorpeft: meta,
      };
    case 'distilbert':
      return {
        _name_or_path: meta['name'],
        ...common,
        activation: 'gelu',
        attention_dropout: 0.1,
        dim: d.hiddenSize,
        dropout: 0.1,
        hidden_dim: d.intermediateSize,
        initializer_range: 0.02,
        max_position_embeddings: d.maxPositions,
        n_heads: d.numHeads,
        n_layers: d.numLayers,
        pad_token_id: 0,
        qa_dropout: 0.1,
        seq_classif_dropout: 0.2,
        sinusoidal_pos_embds: false,
        tie_weights_: true,
        vocab_size: d.vocabSize,
        ...head,
        tensorpeft: meta,
      };
    case 'gpt2':
      return {
        _name_or_path: meta['name'],
        ...common,
        activation_function: 'gelu_new',
        attn_pdrop: 0.1,
        bos_token_id: tok?.bosTokenId ?? d.vocabSize - 1,
        embd_pdrop: 0.1,
        eos_token_id: tok?.eosTokenId ?? d.vocabSize - 1,
        initializer_range: 0.02,
        layer_norm_epsilon: d.layerNormEps,
        n_ctx: d.maxPositions,
        n_embd: d.hiddenSize,
        n_head: d.numHeads,
        n_inner: d.intermediateSize === 4 * d.hiddenSize ? null : d.intermediateSize,
        n_layer: d.numLayers,
        n_positions: d.maxPositions,
        reorder_and_upcast_attn: false,
        resid_pdrop: 0.1,
        scale_attn_by_inverse_layer_idx: false,
        scale_attn_weights: true,
        use_cache: true,
        vocab_size: d.vocabSize,
        tensorpeft: meta,
      };
    case 'llama':
      return {
        _name_or_path: meta['name'],
        ...common,
        attention_bias: false,
        attention_dropout: 0,
        bos_token_id: tok?.bosTokenId ?? 1,
        eos_token_id: tok?.eosTokenId ?? 2,
        head_dim: d.hiddenSize / d.numHeads,
        hidden_act: 'silu',
        hidden_size: d.hiddenSize,
        initializer_range: 0.02,
        intermediate_size: d.intermediateSize,
        max_position_embeddings: d.maxPositions,
        mlp_bias: false,
        num_attention_heads: d.numHeads,
        num_hidden_layers: d.numLayers,
        num_key_value_heads: d.numKvHeads,
        pretraining_tp: 1,
        rms_norm_eps: d.layerNormEps,
        rope_scaling: null,
        rope_theta: d.ropeTheta,
        tie_word_embeddings: false,
        use_cache: true,
        vocab_size: d.vocabSize,
        tensorpeft: meta,
      };
    case 'vit':
      return {
        _name_or_path: meta['name'],
        ...common,
        attention_probs_dropout_prob: 0,
        encoder_stride: d.patchSize,
        hidden_act: 'gelu',
        hidden_dropout_prob: 0,
        hidden_size: d.hiddenSize,
        image_size: d.imageSize,
        initializer_range: 0.02,
        intermediate_size: d.intermediateSize,
        layer_norm_eps: d.layerNormEps,
        num_attention_heads: d.numHeads,
        num_channels: d.numChannels,
        num_hidden_layers: d.numLayers,
        patch_size: d.patchSize,
        qkv_bias: true,
        ...head,
        tensorpeft: meta,
      };
  }
}

function vitPreprocessor(d: ModelDims): Record<string, unknown> {
  return {
    do_normalize: true,
    do_rescale: true,
    do_resize: true,
    image_mean: [0.5, 0.5, 0.5],
    image_processor_type: 'ViTImageProcessor',
    image_std: [0.5, 0.5, 0.5],
    resample: 2,
    rescale_factor: 0.00392156862745098,
    size: { height: d.imageSize, width: d.imageSize },
  };
}

const json = (v: unknown): Uint8Array => new TextEncoder().encode(`${JSON.stringify(v, null, 2)}\n`);

/** Build the graph of a model (exposed for tools and tests that want the graph before encoding). */
export function buildGraph(
  arch: Arch,
  task: Task,
  d: ModelDims,
  numLabels: number,
  seed: number,
  conv1dAs: 'Gemm' | 'MatMul' = 'Gemm',
  export_: { freshInit?: boolean; constantFolding?: boolean } = {},
): { graph: Graph; ctx: Ctx } {
  const taskRoot = TASK_ROOT[arch];
  const ctx = new Ctx(`main_graph`, { seed, root: task === 'feature-extraction' ? '' : taskRoot, taskRoot, conv1dAs, ...export_ });
  switch (arch) {
    case 'bert':
    case 'roberta':
      buildBertLike(ctx, arch, d, task, numLabels);
      break;
    case 'distilbert':
      buildDistilBert(ctx, d, task, numLabels);
      break;
    case 'gpt2':
      buildGpt2(ctx, d, task);
      break;
    case 'llama':
      buildLlama(ctx, d, task);
      break;
    case 'vit':
      buildVit(ctx, d, task, numLabels);
      break;
  }
  // torch.onnx stores bit-identical parameters once (a no-op for random weights).
  return { graph: dedupeInitializers(ctx.b.graph), ctx };
}

/** Generate a model folder in memory. Deterministic: the same options give the same bytes. */
export function makeModel(opts: MakeModelOptions): GeneratedModel {
  if (opts.arch === 'whisper') return makeWhisperModel(opts);
  const arch = check(opts.arch, ARCHS, 'arch');
  const size = check(opts.size ?? 'tiny', SIZES, 'size');
  const task = resolveTask(arch, opts.task);
  const numLabels = opts.numLabels ?? 2;
  if (!Number.isInteger(numLabels) || numLabels < 1) throw new ConfigError('num_labels must be a positive integer', { field: 'numLabels', found: numLabels });
  const seed = opts.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) throw new ConfigError('seed must be an integer in [0, 2^32)', { field: 'seed', found: seed });

  const d = modelDims(arch, size);
  const tok = makeTokenizer(arch, size, opts.fixturesDir);
  if (tok && d.vocabSize < tok.vocabSize) d.vocabSize = tok.vocabSize;

  if (opts.layout === 'genai') return genaiFiles(opts, { arch, size, task, d, seed, json, ...(tok ? { tok } : {}), config: (meta) => hfConfig(arch, task, d, numLabels, tok, meta) });

  const conv1d = opts.gpt2Conv1d ?? 'Gemm';
  if (conv1d !== 'Gemm' && conv1d !== 'MatMul') throw new ConfigError('unknown gpt2Conv1d', { field: 'gpt2Conv1d', expected: 'Gemm | MatMul', found: conv1d });
  const { graph, ctx } = buildGraph(arch, task, d, numLabels, seed, conv1d, {
    ...(opts.freshInit !== undefined ? { freshInit: opts.freshInit } : {}),
    ...(opts.constantFolding !== undefined ? { constantFolding: opts.constantFolding } : {}),
  });
  const files = new Map<string, Uint8Array>();
  const meta = {
    name: `tensorpeft/random-${arch}-${size}`,
    generator: '@tensorpeft/model-gen',
    seed,
    size,
    task,
    ...(arch === 'gpt2' ? { conv1d } : {}),
    ...(opts.freshInit ? { fresh_init: true } : {}),
    ...(opts.constantFolding === false ? { constant_folding: false } : {}),
    ...(opts.layout === 'merged-decoder' ? { layout: 'merged-decoder' } : {}),
    ...(d.shapeOf ? { shape_of: d.shapeOf } : {}),
  };
  const config = hfConfig(arch, task, d, numLabels, tok, meta);
  if (opts.externalData === true) config['transformers.js_config'] = { use_external_data_format: true };
  files.set('config.json', json(config));
  if (tok) {
    files.set('tokenizer.json', json(tok.tokenizer));
    files.set('tokenizer_config.json', json(tok.config));
  } else {
    files.set('preprocessor_config.json', json(vitPreprocessor(d)));
  }
  if (task === 'causal-lm') {
    files.set('generation_config.json', json({ bos_token_id: config['bos_token_id'], eos_token_id: config['eos_token_id'], transformers_version: '4.46.3' }));
  }
  const layout = opts.layout ?? 'optimum';
  if (layout !== 'optimum' && layout !== 'merged-decoder') throw new ConfigError('unknown layout', { field: 'layout', expected: 'optimum | merged-decoder | genai', found: layout });
  if (layout === 'merged-decoder' && task !== 'causal-lm') throw new ConfigError('the merged-decoder layout needs a decoder with past (task causal-lm)', { field: 'layout', expected: 'causal-lm', found: task });
  const onnxFile = (name: string, flat: Graph): void => {
    // Each dtype is made from the flat graph, then wrapped (the quantizers see the plain decoder).
    const g = layout === 'merged-decoder' ? mergedDecoder(flat) : flat;
    if (!opts.externalData) {
      files.set(`onnx/${name}`, encodeModel(g));
      return;
    }
    const e = encodeModelExternal(g, { location: `${name}_data` });
    files.set(`onnx/${name}`, e.model);
    files.set(`onnx/${name}_data`, e.data);
  };
  onnxFile('model.onnx', graph);
  if (opts.quantized !== false) onnxFile('model_quantized.onnx', quantizeDynamic(graph));
  for (const dt of opts.dtypes ?? []) onnxFile(`model_${check(dt, EXTRA_DTYPES, 'dtype')}.onnx`, dtypeGraph(graph, dt));

  const shape = buildShape(arch, { hiddenSize: d.hiddenSize, numLayers: d.numLayers, numHeads: d.numHeads, numKvHeads: d.numKvHeads, intermediateSize: d.intermediateSize }, meta.name);
  const out: GeneratedModel = {
    files,
    shape,
    arch,
    size,
    task,
    config,
    linears: ctx.linears,
    inputs: layout === 'merged-decoder' ? [...graph.inputs, { name: 'use_cache_branch', dtype: 'bool', dims: [1] }] : graph.inputs,
    outputs: graph.outputs,
    weights: ctx.state,
  };
  if (tok) out.tokenizerSource = tok.source;
  return out;
}

/** Generate a model and write its files under `dir` (created if needed). */
export async function writeModel(opts: MakeModelOptions, dir: string): Promise<GeneratedModel> {
  const m = makeModel(opts);
  for (const [rel, bytes] of m.files) {
    const file = path.join(dir, rel);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, bytes);
  }
  return m;
}
