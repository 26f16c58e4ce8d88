/**
 * Per-architecture module layouts (paths as in the task models PEFT usually wraps:
 * `BertForSequenceClassification`, `GPT2LMHeadModel`, `LlamaForCausalLM`, …) and PEFT's default
 * LoRA targets (`TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING`).
 */
import { ModelShapeError } from '../errors.js';
import type { LinearModule, ModelShape } from './shape.js';

export interface ArchDims {
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
}

interface ArchLayout {
  /** Prefix of layer `l`'s modules. */
  prefix: (l: number) => string;
  /** (type, in, out) for every linear module of one layer. */
  modules: (d: ArchDims) => Array<[type: string, inF: number, outF: number]>;
  fanInFanOut: boolean;
  defaultTargets: string[];
  /**
   * Encoder–decoder models: the decoder's layer stack, after the encoder's (`prefix`/`modules`).
   * Layer indices count within each stack, as PEFT's `layers_pattern` reads a path
   * (`model.decoder.layers.0.…` is layer 0, like `model.encoder.layers.0.…`).
   */
  decoder?: { prefix: (l: number) => string; modules: (d: ArchDims) => Array<[type: string, inF: number, outF: number]> };
}

/** Whisper's attention projections (`k_proj` has no bias, which does not change its shape). */
const whisperAttn = (name: string, d: ArchDims): Array<[string, number, number]> =>
  ['q_proj', 'k_proj', 'v_proj', 'out_proj'].map((p) => [`${name}.${p}`, d.hiddenSize, d.hiddenSize]);

const bertLike = (root: string): ArchLayout => ({
  prefix: (l) => `${root}.encoder.layer.${l}.`,
  modules: (d) => [
    ['attention.self.query', d.hiddenSize, d.hiddenSize],
    ['attention.self.key', d.hiddenSize, d.hiddenSize],
    ['attention.self.value', d.hiddenSize, d.hiddenSize],
    ['attention.output.dense', d.hiddenSize, d.hiddenSize],
    ['intermediate.dense', d.hiddenSize, d.intermediateSize],
    ['output.dense', d.intermediateSize, d.hiddenSize],
  ],
  fanInFanOut: false,
  defaultTargets: ['query', 'value'],
});

export const ARCHITECTURES: Record<string, ArchLayout> = {
  bert: bertLike('bert'),
  roberta: bertLike('roberta'),
  distilbert: {
    prefix: (l) => `distilbert.transformer.layer.${l}.`,
    modules: (d) => [
      ['attention.q_lin', d.hiddenSize, d.hiddenSize],
      ['attention.k_lin', d.hiddenSize, d.hiddenSize],
      ['attention.v_lin', d.hiddenSize, d.hiddenSize],
      ['attention.out_lin', d.hiddenSize, d.hiddenSize],
      ['ffn.lin1', d.hiddenSize, d.intermediateSize],
      ['ffn.lin2', d.intermediateSize, d.hiddenSize],
    ],
    fanInFanOut: false,
    defaultTargets: ['q_lin', 'v_lin'],
  },
  gpt2: {
    prefix: (l) => `transformer.h.${l}.`,
    modules: (d) => [
      // Fused q,k,v projection: 768 → 2304 for GPT-2 small.
      ['attn.c_attn', d.hiddenSize, 3 * d.hiddenSize],
      ['attn.c_proj', d.hiddenSize, d.hiddenSize],
      ['mlp.c_fc', d.hiddenSize, d.intermediateSize],
      ['mlp.c_proj', d.intermediateSize, d.hiddenSize],
    ],
    fanInFanOut: true,
    defaultTargets: ['c_attn'],
  },
  llama: {
    prefix: (l) => `model.layers.${l}.`,
    modules: (d) => {
      const kv = (d.hiddenSize / d.numHeads) * d.numKvHeads;
      return [
        ['self_attn.q_proj', d.hiddenSize, d.hiddenSize],
        ['self_attn.k_proj', d.hiddenSize, kv],
        ['self_attn.v_proj', d.hiddenSize, kv],
        ['self_attn.o_proj', d.hiddenSize, d.hiddenSize],
        ['mlp.gate_proj', d.hiddenSize, d.intermediateSize],
        ['mlp.up_proj', d.hiddenSize, d.intermediateSize],
        ['mlp.down_proj', d.intermediateSize, d.hiddenSize],
      ];
    },
    fanInFanOut: false,
    defaultTargets: ['q_proj', 'v_proj'],
  },
  vit: {
    prefix: (l) => `vit.encoder.layer.${l}.`,
    modules: (d) => [
      ['attention.attention.query', d.hiddenSize, d.hiddenSize],
      ['attention.attention.key', d.hiddenSize, d.hiddenSize],
      ['attention.attention.value', d.hiddenSize, d.hiddenSize],
      ['attention.output.dense', d.hiddenSize, d.hiddenSize],
      ['intermediate.dense', d.hiddenSize, d.intermediateSize],
      ['output.dense', d.intermediateSize, d.hiddenSize],
    ],
    fanInFanOut: false,
    defaultTargets: ['query', 'value'],
  },
  // WhisperForConditionalGeneration: pre-LN encoder and decoder (self-attention, cross-attention
  // `encoder_attn`, fc1/fc2); PEFT's default LoRA targets for whisper are q_proj, v_proj.
  whisper: {
    prefix: (l) => `model.encoder.layers.${l}.`,
    modules: (d) => [...whisperAttn('self_attn', d), ['fc1', d.hiddenSize, d.intermediateSize], ['fc2', d.intermediateSize, d.hiddenSize]],
    decoder: {
      prefix: (l) => `model.decoder.layers.${l}.`,
      modules: (d) => [...whisperAttn('self_attn', d), ...whisperAttn('encoder_attn', d), ['fc1', d.hiddenSize, d.intermediateSize], ['fc2', d.intermediateSize, d.hiddenSize]],
    },
    fanInFanOut: false,
    defaultTargets: ['q_proj', 'v_proj'],
  },
};

/** Build the full module list of an architecture. */
/**
 * Sane upper limits of model dimensions, checked before a module list is built from them: a
 * config.json is untrusted, and `num_hidden_layers: 1e7` would otherwise allocate gigabytes of
 * module records. The largest published models are far inside (Llama-3.1-405B: 126 layers,
 * hidden 16384, FFN 53248, 128 heads).
 */
export const MODEL_LIMITS: Readonly<Record<keyof ArchDims, number>> = {
  hiddenSize: 1 << 17,
  numLayers: 1024,
  numHeads: 4096,
  numKvHeads: 4096,
  intermediateSize: 1 << 20,
};

/** The first dimension of `dims` above MODEL_LIMITS, if any. */
export function dimOverLimit(dims: ArchDims): keyof ArchDims | undefined {
  return (Object.keys(MODEL_LIMITS) as (keyof ArchDims)[]).find((k) => dims[k] > MODEL_LIMITS[k]);
}

/**
 * `decoderDims` (encoder–decoder architectures): the decoder stack's dimensions when they differ
 * from the encoder's `dims` (distil-whisper keeps 2 of 32 decoder layers); default `dims`.
 */
export function buildShape(modelType: string, dims: ArchDims, nameOrPath?: string, decoderDims?: ArchDims): ModelShape {
  // hasOwn: names of Object.prototype members ('constructor', 'toString') are not architectures.
  const arch = Object.hasOwn(ARCHITECTURES, modelType) ? ARCHITECTURES[modelType] : undefined;
  if (!arch) {
    throw new ModelShapeError('unsupported model_type', {
      field: 'model_type',
      expected: Object.keys(ARCHITECTURES).join(' | '),
      found: modelType,
    });
  }
  for (const [k, v] of Object.entries(dims)) {
    if (!Number.isInteger(v) || v <= 0) {
      throw new ModelShapeError('model dimension must be a positive integer', { field: k, found: v });
    }
  }
  const over = dimOverLimit(dims);
  if (over) throw new ModelShapeError('model dimension is beyond any supported model', { field: over, expected: `≤ ${MODEL_LIMITS[over]}`, found: dims[over] });
  if (dims.hiddenSize % dims.numHeads !== 0) {
    throw new ModelShapeError('hidden size must be divisible by the number of heads', {
      field: 'num_attention_heads',
      expected: `a divisor of ${dims.hiddenSize}`,
      found: dims.numHeads,
    });
  }
  if (dims.numHeads % dims.numKvHeads !== 0) {
    throw new ModelShapeError('num_key_value_heads must divide num_attention_heads', {
      field: 'num_key_value_heads',
      expected: `a divisor of ${dims.numHeads}`,
      found: dims.numKvHeads,
    });
  }
  const modules: LinearModule[] = [];
  for (let l = 0; l < dims.numLayers; l++) {
    for (const [type, inF, outF] of arch.modules(dims)) {
      modules.push({ path: arch.prefix(l) + type, type, layer: l, in: inF, out: outF, fanInFanOut: arch.fanInFanOut });
    }
  }
  const dec = decoderDims ?? dims;
  if (arch.decoder) {
    const over = dimOverLimit(dec);
    if (over) throw new ModelShapeError('model dimension is beyond any supported model', { field: `decoder ${over}`, expected: `≤ ${MODEL_LIMITS[over]}`, found: dec[over] });
    for (let l = 0; l < dec.numLayers; l++) {
      for (const [type, inF, outF] of arch.decoder.modules(dec)) {
        modules.push({ path: arch.decoder.prefix(l) + type, type, layer: l, in: inF, out: outF, fanInFanOut: arch.fanInFanOut });
      }
    }
  }
  // numLayers: the deeper stack (layer indices count within each stack).
  const shape: ModelShape = { modelType, ...dims, numLayers: Math.max(dims.numLayers, arch.decoder ? dec.numLayers : 0), modules, defaultTargets: [...arch.defaultTargets] };
  if (nameOrPath !== undefined) shape.nameOrPath = nameOrPath;
  return shape;
}
