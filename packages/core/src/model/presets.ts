/** Built-in model presets (dimensions of the published checkpoints). */
import { ModelShapeError } from '../errors.js';
import { buildShape, type ArchDims } from './architectures.js';
import type { ModelShape } from './shape.js';

interface Preset extends ArchDims {
  modelType: string;
  hub: string;
}

const base = { hiddenSize: 768, numLayers: 12, numHeads: 12, numKvHeads: 12, intermediateSize: 3072 };
const large = { hiddenSize: 1024, numLayers: 24, numHeads: 16, numKvHeads: 16, intermediateSize: 4096 };

export const PRESETS: Record<string, Preset> = {
  'bert-base': { modelType: 'bert', hub: 'google-bert/bert-base-uncased', ...base },
  'roberta-base': { modelType: 'roberta', hub: 'FacebookAI/roberta-base', ...base },
  'roberta-large': { modelType: 'roberta', hub: 'FacebookAI/roberta-large', ...large },
  'distilbert-base': { modelType: 'distilbert', hub: 'distilbert/distilbert-base-uncased', ...base, numLayers: 6 },
  gpt2: { modelType: 'gpt2', hub: 'openai-community/gpt2', ...base },
  'gpt2-medium': { modelType: 'gpt2', hub: 'openai-community/gpt2-medium', ...large },
  'vit-base': { modelType: 'vit', hub: 'google/vit-base-patch16-224', ...base },
  'vit-large': { modelType: 'vit', hub: 'google/vit-large-patch16-224', ...large },
  'llama2-7b': {
    modelType: 'llama',
    hub: 'meta-llama/Llama-2-7b-hf',
    hiddenSize: 4096,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 32,
    intermediateSize: 11008,
  },
  'llama2-13b': {
    modelType: 'llama',
    hub: 'meta-llama/Llama-2-13b-hf',
    hiddenSize: 5120,
    numLayers: 40,
    numHeads: 40,
    numKvHeads: 40,
    intermediateSize: 13824,
  },
};

export function presetNames(): string[] {
  return Object.keys(PRESETS);
}

/** The shape of a built-in preset; throws ModelShapeError naming the known presets. */
export function presetShape(name: string): ModelShape {
  const p = Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
  if (!p) {
    throw new ModelShapeError('unknown model preset', { field: 'model', expected: presetNames().join(' | '), found: name });
  }
  const { modelType, hub, ...dims } = p;
  return buildShape(modelType, dims, hub);
}
