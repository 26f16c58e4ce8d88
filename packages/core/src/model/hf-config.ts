/** Read a Hugging Face `config.json` into a ModelShape. */
import { z } from 'zod';
import { ModelShapeError } from '../errors.js';
import { ARCHITECTURES, buildShape, dimOverLimit, MODEL_LIMITS } from './architectures.js';
import type { ModelShape } from './shape.js';

const posInt = z.number().int().positive();

// Field names differ per architecture (GPT-2 uses n_embd/n_layer/n_head, DistilBERT dim/n_layers/…).
const HfConfig = z
  .object({
    model_type: z.string(),
    _name_or_path: z.string().optional(),
    hidden_size: posInt.optional(),
    num_hidden_layers: posInt.optional(),
    num_attention_heads: posInt.optional(),
    num_key_value_heads: posInt.optional(),
    intermediate_size: posInt.optional(),
    // GPT-2
    n_embd: posInt.optional(),
    n_layer: posInt.optional(),
    n_head: posInt.optional(),
    n_inner: posInt.nullable().optional(),
    // DistilBERT
    dim: posInt.optional(),
    n_layers: posInt.optional(),
    n_heads: posInt.optional(),
    hidden_dim: posInt.optional(),
    // Whisper (encoder–decoder)
    d_model: posInt.optional(),
    encoder_layers: posInt.optional(),
    decoder_layers: posInt.optional(),
    encoder_attention_heads: posInt.optional(),
    decoder_attention_heads: posInt.optional(),
    encoder_ffn_dim: posInt.optional(),
    decoder_ffn_dim: posInt.optional(),
  })
  .passthrough();

/** Parse the JSON value of a config.json. `source` names the file in errors. */
export function shapeFromHfConfig(json: unknown, source = 'config.json'): ModelShape {
  const r = HfConfig.safeParse(json);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = issue.path.join('.');
    const top = issue.path[0];
    const expected =
      field === ''
        ? 'a JSON object'
        : top === 'model_type' || top === '_name_or_path'
          ? 'a string'
          : top === 'n_inner'
            ? 'a positive integer or null'
            : 'a positive integer';
    let found: unknown = json;
    for (const k of issue.path) found = found !== null && typeof found === 'object' ? (found as Record<string | number, unknown>)[k] : undefined;
    throw new ModelShapeError(`invalid HF config: ${issue.message}`, {
      file: source,
      ...(field ? { field } : {}),
      expected,
      found: found === undefined ? 'nothing' : found === null ? 'null' : Array.isArray(found) ? 'an array' : found,
    });
  }
  const c = r.data;
  // Check the architecture first: an unsupported model (t5, bloom, …) usually also lacks the
  // fields read below, and "unsupported model_type" is the error that explains it.
  if (!Object.hasOwn(ARCHITECTURES, c.model_type)) {
    throw new ModelShapeError('unsupported model_type', {
      file: source,
      field: 'model_type',
      expected: Object.keys(ARCHITECTURES).join(' | '),
      found: c.model_type,
    });
  }
  const need = (v: number | undefined | null, field: string): number => {
    if (v === undefined || v === null) {
      throw new ModelShapeError('missing model dimension', { file: source, field, expected: 'a positive integer', found: 'nothing' });
    }
    return v;
  };
  let hidden: number, layers: number, heads: number, inter: number, kv: number;
  // Encoder–decoder models: the decoder stack's own dimensions.
  let decoder: { numLayers: number; numHeads: number; intermediateSize: number } | undefined;
  // The config's own name of the heads field, for errors raised by buildShape.
  let headsField = 'num_attention_heads';
  switch (c.model_type) {
    case 'gpt2':
      hidden = need(c.n_embd ?? c.hidden_size, 'n_embd');
      layers = need(c.n_layer ?? c.num_hidden_layers, 'n_layer');
      heads = need(c.n_head ?? c.num_attention_heads, 'n_head');
      if (c.n_head !== undefined) headsField = 'n_head';
      inter = c.n_inner ?? 4 * hidden;
      kv = heads;
      break;
    case 'distilbert':
      hidden = need(c.dim ?? c.hidden_size, 'dim');
      layers = need(c.n_layers ?? c.num_hidden_layers, 'n_layers');
      heads = need(c.n_heads ?? c.num_attention_heads, 'n_heads');
      if (c.n_heads !== undefined) headsField = 'n_heads';
      inter = need(c.hidden_dim ?? c.intermediate_size, 'hidden_dim');
      kv = heads;
      break;
    case 'whisper':
      hidden = need(c.d_model, 'd_model');
      layers = need(c.encoder_layers, 'encoder_layers');
      heads = need(c.encoder_attention_heads, 'encoder_attention_heads');
      headsField = 'encoder_attention_heads';
      inter = need(c.encoder_ffn_dim, 'encoder_ffn_dim');
      kv = heads;
      decoder = { numLayers: need(c.decoder_layers, 'decoder_layers'), numHeads: need(c.decoder_attention_heads, 'decoder_attention_heads'), intermediateSize: need(c.decoder_ffn_dim, 'decoder_ffn_dim') };
      break;
    default:
      hidden = need(c.hidden_size, 'hidden_size');
      layers = need(c.num_hidden_layers, 'num_hidden_layers');
      heads = need(c.num_attention_heads, 'num_attention_heads');
      inter = need(c.intermediate_size, 'intermediate_size');
      kv = c.num_key_value_heads ?? heads;
  }
  // Limits before buildShape allocates a record per module, named by the config's own field.
  const dims = { hiddenSize: hidden, numLayers: layers, numHeads: heads, numKvHeads: kv, intermediateSize: inter };
  const decoderDims = decoder ? { ...dims, ...decoder, numKvHeads: decoder.numHeads } : undefined;
  const decoderOver = decoderDims ? dimOverLimit(decoderDims) : undefined;
  if (decoderDims && decoderOver) {
    const field = { hiddenSize: 'd_model', numLayers: 'decoder_layers', numHeads: 'decoder_attention_heads', numKvHeads: 'decoder_attention_heads', intermediateSize: 'decoder_ffn_dim' }[decoderOver];
    throw new ModelShapeError('model dimension is beyond any supported model', { file: source, field, expected: `≤ ${MODEL_LIMITS[decoderOver]}`, found: decoderDims[decoderOver] });
  }
  const over = dimOverLimit(dims);
  if (over) {
    const names: Record<string, Record<keyof typeof dims, string>> = {
      gpt2: { hiddenSize: 'n_embd', numLayers: 'n_layer', numHeads: headsField, numKvHeads: headsField, intermediateSize: 'n_inner' },
      distilbert: { hiddenSize: 'dim', numLayers: 'n_layers', numHeads: headsField, numKvHeads: headsField, intermediateSize: 'hidden_dim' },
      whisper: { hiddenSize: 'd_model', numLayers: 'encoder_layers', numHeads: headsField, numKvHeads: headsField, intermediateSize: 'encoder_ffn_dim' },
    };
    const field = (names[c.model_type] ?? { hiddenSize: 'hidden_size', numLayers: 'num_hidden_layers', numHeads: 'num_attention_heads', numKvHeads: 'num_key_value_heads', intermediateSize: 'intermediate_size' })[over];
    throw new ModelShapeError('model dimension is beyond any supported model', { file: source, field, expected: `≤ ${MODEL_LIMITS[over]}`, found: dims[over] });
  }
  try {
    return buildShape(
      c.model_type,
      { hiddenSize: hidden, numLayers: layers, numHeads: heads, numKvHeads: kv, intermediateSize: inter },
      c._name_or_path || undefined,
      decoderDims,
    );
  } catch (e) {
    if (e instanceof ModelShapeError) {
      throw e.withDetails(e.details.field === 'num_attention_heads' ? { file: source, field: headsField } : { file: source });
    }
    throw e;
  }
}
