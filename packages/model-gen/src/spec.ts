/** Architectures, tasks and sizes the generator knows, with their dimensions. */
import { presetShape, type ArchDims } from '@tensorpeft/core';

export const ARCHS = ['bert', 'roberta', 'distilbert', 'gpt2', 'llama', 'vit'] as const;
export type Arch = (typeof ARCHS)[number];

/** Encoder–decoder architectures: two ONNX files, built by whisper-model.ts (not in ARCHS' tables). */
export const ENCODER_DECODER_ARCHS = ['whisper'] as const;
export type EncoderDecoderArch = (typeof ENCODER_DECODER_ARCHS)[number];

export const SIZES = ['tiny', 'base'] as const;
export type Size = (typeof SIZES)[number];

/**
 * `feature-extraction`: the bare model (BertModel, GPT2Model, …) → `last_hidden_state`;
 * `sequence-classification`: *ForSequenceClassification / ViTForImageClassification → `logits`;
 * `causal-lm`: GPT2LMHeadModel / LlamaForCausalLM with a KV cache → `logits`, `present.*`.
 */
export const TASKS = ['feature-extraction', 'sequence-classification', 'causal-lm'] as const;
export type Task = (typeof TASKS)[number];

export const TASK_ALIASES: Record<string, Task> = {
  base: 'feature-extraction',
  'feature-extraction': 'feature-extraction',
  'image-feature-extraction': 'feature-extraction',
  'sequence-classification': 'sequence-classification',
  'seq-cls': 'sequence-classification',
  'text-classification': 'sequence-classification',
  'image-classification': 'sequence-classification',
  'causal-lm': 'causal-lm',
  'text-generation': 'causal-lm',
};

/** Tasks each architecture supports (those transformers.js 4.3 has a model class for). */
export const ARCH_TASKS: Record<Arch, readonly Task[]> = {
  bert: ['feature-extraction', 'sequence-classification'],
  roberta: ['feature-extraction', 'sequence-classification'],
  distilbert: ['feature-extraction', 'sequence-classification'],
  vit: ['feature-extraction', 'sequence-classification'],
  gpt2: ['feature-extraction', 'causal-lm'],
  llama: ['feature-extraction', 'causal-lm'],
};

/** The task whose module paths are core's ModelShape paths (the PEFT task model). */
export const DEFAULT_TASK: Record<Arch, Task> = {
  bert: 'sequence-classification',
  roberta: 'sequence-classification',
  distilbert: 'sequence-classification',
  vit: 'sequence-classification',
  gpt2: 'causal-lm',
  llama: 'causal-lm',
};

/** Class names per task, as in `config.architectures`. */
export const CLASS_NAMES: Record<Arch, Partial<Record<Task, string>>> = {
  bert: { 'feature-extraction': 'BertModel', 'sequence-classification': 'BertForSequenceClassification' },
  roberta: { 'feature-extraction': 'RobertaModel', 'sequence-classification': 'RobertaForSequenceClassification' },
  distilbert: { 'feature-extraction': 'DistilBertModel', 'sequence-classification': 'DistilBertForSequenceClassification' },
  vit: { 'feature-extraction': 'ViTModel', 'sequence-classification': 'ViTForImageClassification' },
  gpt2: { 'feature-extraction': 'GPT2Model', 'causal-lm': 'GPT2LMHeadModel' },
  llama: { 'feature-extraction': 'LlamaModel', 'causal-lm': 'LlamaForCausalLM' },
};

/** Prefix of the base model inside the task model (the root of core's module paths). */
export const TASK_ROOT: Record<Arch, string> = {
  bert: 'bert',
  roberta: 'roberta',
  distilbert: 'distilbert',
  vit: 'vit',
  gpt2: 'transformer',
  llama: 'model',
};

export interface ModelDims extends ArchDims {
  /** Vocabulary rows of the embedding (text models); tiny sizes take the generated tokenizer's size. */
  vocabSize: number;
  maxPositions: number;
  /** BERT token types (2), RoBERTa (1). */
  typeVocabSize: number;
  layerNormEps: number;
  /** ViT */
  imageSize: number;
  patchSize: number;
  numChannels: number;
  /** LLaMA */
  ropeTheta: number;
  /** Published checkpoint whose shape `base` reproduces. */
  shapeOf?: string;
}

const none = { imageSize: 0, patchSize: 0, numChannels: 0, ropeTheta: 0, typeVocabSize: 0 };

function fromPreset(name: string): ArchDims & { shapeOf: string } {
  const s = presetShape(name);
  return {
    hiddenSize: s.hiddenSize,
    numLayers: s.numLayers,
    numHeads: s.numHeads,
    numKvHeads: s.numKvHeads,
    intermediateSize: s.intermediateSize,
    shapeOf: s.nameOrPath ?? name,
  };
}

const tinyDims = { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64 };

/** Dimensions of `arch` at `size`. For tiny text models, vocabSize is set from the tokenizer later. */
export function modelDims(arch: Arch, size: Size): ModelDims {
  if (size === 'tiny') {
    switch (arch) {
      case 'bert':
        return { ...tinyDims, ...none, vocabSize: 0, maxPositions: 64, typeVocabSize: 2, layerNormEps: 1e-12 };
      case 'roberta':
        return { ...tinyDims, ...none, vocabSize: 0, maxPositions: 66, typeVocabSize: 1, layerNormEps: 1e-5 };
      case 'distilbert':
        return { ...tinyDims, ...none, vocabSize: 0, maxPositions: 64, layerNormEps: 1e-12 };
      case 'gpt2':
        return { ...tinyDims, intermediateSize: 128, ...none, vocabSize: 0, maxPositions: 64, layerNormEps: 1e-5 };
      case 'llama':
        return { hiddenSize: 64, numLayers: 2, numHeads: 4, numKvHeads: 2, intermediateSize: 128, ...none, vocabSize: 0, maxPositions: 128, layerNormEps: 1e-6, ropeTheta: 10000 };
      case 'vit':
        return { ...tinyDims, ...none, vocabSize: 0, maxPositions: 0, layerNormEps: 1e-12, imageSize: 32, patchSize: 8, numChannels: 3 };
    }
  }
  switch (arch) {
    case 'bert':
      return { ...fromPreset('bert-base'), ...none, vocabSize: 30522, maxPositions: 512, typeVocabSize: 2, layerNormEps: 1e-12 };
    case 'roberta':
      return { ...fromPreset('roberta-base'), ...none, vocabSize: 50265, maxPositions: 514, typeVocabSize: 1, layerNormEps: 1e-5 };
    case 'distilbert':
      return { ...fromPreset('distilbert-base'), ...none, vocabSize: 30522, maxPositions: 512, layerNormEps: 1e-12 };
    case 'gpt2':
      return { ...fromPreset('gpt2'), ...none, vocabSize: 50257, maxPositions: 1024, layerNormEps: 1e-5 };
    case 'vit':
      return { ...fromPreset('vit-base'), ...none, vocabSize: 0, maxPositions: 0, layerNormEps: 1e-12, imageSize: 224, patchSize: 16, numChannels: 3 };
    case 'llama':
      // No LLaMA-7B on the fly: the shape of HuggingFaceTB/SmolLM-135M (a published LlamaForCausalLM
      // with grouped-query attention), 135 M parameters.
      return {
        hiddenSize: 576,
        numLayers: 30,
        numHeads: 9,
        numKvHeads: 3,
        intermediateSize: 1536,
        ...none,
        vocabSize: 49152,
        maxPositions: 2048,
        layerNormEps: 1e-5,
        ropeTheta: 10000,
        shapeOf: 'HuggingFaceTB/SmolLM-135M',
      };
  }
}
