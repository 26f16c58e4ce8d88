import { describe, expect, it } from 'vitest';
import { ModelShapeError, TensorPeftError } from '../errors.js';
import { shapeFromHfConfig } from './hf-config.js';
import type { ModelShape } from './shape.js';

// Realistic config.json contents, as published on the Hub (trimmed of nothing that matters: the
// extra fields are kept on purpose, since the parser must ignore them).
const BERT_BASE = {
  _name_or_path: 'google-bert/bert-base-uncased',
  architectures: ['BertForMaskedLM'],
  attention_probs_dropout_prob: 0.1,
  gradient_checkpointing: false,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  hidden_size: 768,
  initializer_range: 0.02,
  intermediate_size: 3072,
  layer_norm_eps: 1e-12,
  max_position_embeddings: 512,
  model_type: 'bert',
  num_attention_heads: 12,
  num_hidden_layers: 12,
  pad_token_id: 0,
  position_embedding_type: 'absolute',
  transformers_version: '4.6.0.dev0',
  type_vocab_size: 2,
  use_cache: true,
  vocab_size: 30522,
};

const ROBERTA_LARGE = {
  architectures: ['RobertaForMaskedLM'],
  attention_probs_dropout_prob: 0.1,
  bos_token_id: 0,
  eos_token_id: 2,
  hidden_act: 'gelu',
  hidden_dropout_prob: 0.1,
  hidden_size: 1024,
  initializer_range: 0.02,
  intermediate_size: 4096,
  layer_norm_eps: 1e-5,
  max_position_embeddings: 514,
  model_type: 'roberta',
  num_attention_heads: 16,
  num_hidden_layers: 24,
  pad_token_id: 1,
  type_vocab_size: 1,
  vocab_size: 50265,
};

const DISTILBERT = {
  activation: 'gelu',
  architectures: ['DistilBertForMaskedLM'],
  attention_dropout: 0.1,
  dim: 768,
  dropout: 0.1,
  hidden_dim: 3072,
  initializer_range: 0.02,
  max_position_embeddings: 512,
  model_type: 'distilbert',
  n_heads: 12,
  n_layers: 6,
  pad_token_id: 0,
  qa_dropout: 0.1,
  seq_classif_dropout: 0.2,
  sinusoidal_pos_embds: false,
  tie_weights_: true,
  transformers_version: '4.10.0.dev0',
  vocab_size: 30522,
};

const GPT2 = {
  activation_function: 'gelu_new',
  architectures: ['GPT2LMHeadModel'],
  attn_pdrop: 0.1,
  bos_token_id: 50256,
  embd_pdrop: 0.1,
  eos_token_id: 50256,
  initializer_range: 0.02,
  layer_norm_epsilon: 1e-5,
  model_type: 'gpt2',
  n_ctx: 1024,
  n_embd: 768,
  n_head: 12,
  n_inner: null,
  n_layer: 12,
  n_positions: 1024,
  resid_pdrop: 0.1,
  summary_activation: null,
  summary_first_dropout: 0.1,
  summary_proj_to_labels: true,
  summary_type: 'cls_index',
  summary_use_proj: true,
  task_specific_params: { 'text-generation': { do_sample: true, max_length: 50 } },
  vocab_size: 50257,
};

// Llama-3-8B: grouped-query attention, 8 KV heads for 32 query heads.
const LLAMA3_8B = {
  architectures: ['LlamaForCausalLM'],
  attention_bias: false,
  attention_dropout: 0.0,
  bos_token_id: 128000,
  eos_token_id: 128001,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 14336,
  max_position_embeddings: 8192,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 500000.0,
  tie_word_embeddings: false,
  torch_dtype: 'bfloat16',
  transformers_version: '4.40.0.dev0',
  use_cache: true,
  vocab_size: 128256,
};

// Llama-2-7b-hf predates num_key_value_heads in some revisions: KV heads default to the heads.
const LLAMA2_7B_OLD = {
  architectures: ['LlamaForCausalLM'],
  bos_token_id: 1,
  eos_token_id: 2,
  hidden_act: 'silu',
  hidden_size: 4096,
  initializer_range: 0.02,
  intermediate_size: 11008,
  max_position_embeddings: 4096,
  model_type: 'llama',
  num_attention_heads: 32,
  num_hidden_layers: 32,
  pad_token_id: 0,
  rms_norm_eps: 1e-5,
  tie_word_embeddings: false,
  torch_dtype: 'float16',
  vocab_size: 32000,
};

const T5_SMALL = {
  architectures: ['T5ForConditionalGeneration'],
  d_ff: 2048,
  d_kv: 64,
  d_model: 512,
  decoder_start_token_id: 0,
  dropout_rate: 0.1,
  eos_token_id: 1,
  feed_forward_proj: 'relu',
  is_encoder_decoder: true,
  model_type: 't5',
  n_positions: 512,
  num_decoder_layers: 6,
  num_heads: 8,
  num_layers: 6,
  vocab_size: 32128,
};

function mod(s: ModelShape, path: string): [number, number] {
  const m = s.modules.find((x) => x.path === path);
  if (!m) throw new Error(`no module ${path}`);
  return [m.in, m.out];
}

function shapeErr(json: unknown, source?: string): ModelShapeError {
  try {
    shapeFromHfConfig(json, source);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelShapeError);
    expect(e).toBeInstanceOf(TensorPeftError);
    return e as ModelShapeError;
  }
  throw new Error('expected a ModelShapeError, nothing was thrown');
}

describe('shapeFromHfConfig: real configs', () => {
  it('bert-base-uncased', () => {
    const s = shapeFromHfConfig(BERT_BASE);
    expect(s).toMatchObject({ modelType: 'bert', hiddenSize: 768, numLayers: 12, numHeads: 12, numKvHeads: 12, intermediateSize: 3072 });
    expect(s.nameOrPath).toBe('google-bert/bert-base-uncased');
    expect(s.modules).toHaveLength(72);
    expect(mod(s, 'bert.encoder.layer.11.intermediate.dense')).toEqual([768, 3072]);
    expect(s.defaultTargets).toEqual(['query', 'value']);
  });

  it('roberta-large (no _name_or_path → none recorded)', () => {
    const s = shapeFromHfConfig(ROBERTA_LARGE);
    expect(s).toMatchObject({ modelType: 'roberta', hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096 });
    expect(s.nameOrPath).toBeUndefined();
    expect(mod(s, 'roberta.encoder.layer.23.output.dense')).toEqual([4096, 1024]);
  });

  it('distilbert (dim / n_layers / n_heads / hidden_dim)', () => {
    const s = shapeFromHfConfig(DISTILBERT);
    expect(s).toMatchObject({ modelType: 'distilbert', hiddenSize: 768, numLayers: 6, numHeads: 12, intermediateSize: 3072 });
    expect(s.modules).toHaveLength(36);
    expect(mod(s, 'distilbert.transformer.layer.5.ffn.lin1')).toEqual([768, 3072]);
    expect(mod(s, 'distilbert.transformer.layer.0.attention.v_lin')).toEqual([768, 768]);
  });

  it('gpt2 (n_embd / n_layer / n_head, n_inner null → 4·n_embd)', () => {
    const s = shapeFromHfConfig(GPT2);
    expect(s).toMatchObject({ modelType: 'gpt2', hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072 });
    expect(mod(s, 'transformer.h.0.attn.c_attn')).toEqual([768, 2304]);
    expect(mod(s, 'transformer.h.11.mlp.c_proj')).toEqual([3072, 768]);
    expect(s.modules.every((m) => m.fanInFanOut)).toBe(true);
    // An explicit n_inner wins; a missing n_inner behaves like null.
    expect(mod(shapeFromHfConfig({ ...GPT2, n_inner: 1000 }), 'transformer.h.0.mlp.c_fc')).toEqual([768, 1000]);
    const { n_inner: _drop, ...noInner } = GPT2;
    expect(shapeFromHfConfig(noInner).intermediateSize).toBe(3072);
    // gpt2-medium dims.
    const med = shapeFromHfConfig({ ...GPT2, n_embd: 1024, n_layer: 24, n_head: 16 });
    expect(mod(med, 'transformer.h.23.attn.c_attn')).toEqual([1024, 3072]);
  });

  it('llama with GQA: 8 KV heads of 32 → k_proj / v_proj output 1024', () => {
    const s = shapeFromHfConfig(LLAMA3_8B);
    expect(s).toMatchObject({ modelType: 'llama', hiddenSize: 4096, numLayers: 32, numHeads: 32, numKvHeads: 8, intermediateSize: 14336 });
    expect(mod(s, 'model.layers.0.self_attn.q_proj')).toEqual([4096, 4096]);
    expect(mod(s, 'model.layers.0.self_attn.k_proj')).toEqual([4096, 1024]);
    expect(mod(s, 'model.layers.31.self_attn.v_proj')).toEqual([4096, 1024]);
    expect(mod(s, 'model.layers.0.self_attn.o_proj')).toEqual([4096, 4096]);
    expect(mod(s, 'model.layers.0.mlp.down_proj')).toEqual([14336, 4096]);
    expect(s.modules).toHaveLength(32 * 7);
  });

  it('llama without num_key_value_heads: KV heads = heads', () => {
    const s = shapeFromHfConfig(LLAMA2_7B_OLD);
    expect(s.numKvHeads).toBe(32);
    expect(mod(s, 'model.layers.0.self_attn.k_proj')).toEqual([4096, 4096]);
    expect(mod(s, 'model.layers.0.mlp.gate_proj')).toEqual([4096, 11008]);
  });

  it('vit-base', () => {
    const s = shapeFromHfConfig({
      architectures: ['ViTForImageClassification'],
      hidden_size: 768,
      image_size: 224,
      intermediate_size: 3072,
      model_type: 'vit',
      num_attention_heads: 12,
      num_channels: 3,
      num_hidden_layers: 12,
      patch_size: 16,
      qkv_bias: true,
    });
    expect(mod(s, 'vit.encoder.layer.0.attention.attention.query')).toEqual([768, 768]);
  });
});

describe('shapeFromHfConfig: errors name file, field, expected, found', () => {
  it('unknown model_type (even when the usual fields are absent, as in T5)', () => {
    const e = shapeErr(T5_SMALL, 'models/t5-small/config.json');
    expect(e.message).toContain('unsupported model_type');
    expect(e.message).toContain('file models/t5-small/config.json');
    expect(e.message).toContain('field model_type');
    expect(e.message).toMatch(/expected [^:]*bert[^:]*gpt2[^:]*llama/);
    expect(e.message).toContain('found t5');
    expect(e.details).toMatchObject({ file: 'models/t5-small/config.json', field: 'model_type', found: 't5' });
    // With BERT-like fields present too.
    expect(shapeErr({ ...BERT_BASE, model_type: 'electra' }).message).toMatch(/unsupported model_type.*found electra/);
    // Names of Object.prototype members are not architectures.
    expect(shapeErr({ ...BERT_BASE, model_type: 'constructor' }).message).toMatch(/unsupported model_type.*found constructor/);
  });

  it('missing fields, named as the architecture spells them', () => {
    const { num_hidden_layers: _a, ...bertNoLayers } = BERT_BASE;
    let e = shapeErr(bertNoLayers, 'bert/config.json');
    expect(e.message).toMatch(/missing model dimension \(file bert\/config\.json, field num_hidden_layers\): expected a positive integer, found nothing/);
    const { n_layer: _b, ...gptNoLayer } = GPT2;
    e = shapeErr(gptNoLayer);
    expect(e.message).toMatch(/file config\.json, field n_layer/);
    const { hidden_dim: _c, ...distNoFfn } = DISTILBERT;
    e = shapeErr(distNoFfn);
    expect(e.message).toMatch(/field hidden_dim/);
    const { intermediate_size: _d, ...llamaNoFfn } = LLAMA3_8B;
    expect(shapeErr(llamaNoFfn).message).toMatch(/field intermediate_size/);
    const { model_type: _e, ...noType } = BERT_BASE;
    e = shapeErr(noType, 'x.json');
    expect(e.message).toMatch(/invalid HF config.*file x\.json, field model_type.*expected a string, found nothing/);
  });

  it('heads not dividing hidden: named with the config’s own field name', () => {
    let e = shapeErr({ ...BERT_BASE, num_attention_heads: 10 }, 'c.json');
    expect(e.message).toMatch(/divisible.*file c\.json, field num_attention_heads.*expected a divisor of 768, found 10/);
    e = shapeErr({ ...GPT2, n_head: 10 });
    expect(e.message).toMatch(/field n_head\b.*expected a divisor of 768, found 10/);
    e = shapeErr({ ...DISTILBERT, n_heads: 7 });
    expect(e.message).toMatch(/field n_heads\b.*expected a divisor of 768, found 7/);
    e = shapeErr({ ...LLAMA3_8B, num_key_value_heads: 5 });
    expect(e.message).toMatch(/field num_key_value_heads.*expected a divisor of 32, found 5/);
  });

  it('wrongly typed or non-positive values', () => {
    let e = shapeErr({ ...BERT_BASE, hidden_size: '768' }, 'cfg.json');
    expect(e.message).toMatch(/invalid HF config.*file cfg\.json, field hidden_size.*expected a positive integer, found "?768"?/);
    e = shapeErr({ ...BERT_BASE, num_hidden_layers: 0 });
    expect(e.message).toMatch(/field num_hidden_layers.*found 0/);
    e = shapeErr({ ...LLAMA3_8B, num_key_value_heads: 2.5 });
    expect(e.message).toMatch(/field num_key_value_heads.*found 2\.5/);
    e = shapeErr({ ...GPT2, n_inner: -1 });
    expect(e.message).toMatch(/field n_inner.*expected a positive integer or null, found -1/);
  });

  it('not a JSON object', () => {
    for (const bad of [null, 42, 'bert', [BERT_BASE]]) {
      const e = shapeErr(bad, 'weird.json');
      expect(e.message).toMatch(/invalid HF config.*file weird\.json.*expected a JSON object/);
    }
  });
});
