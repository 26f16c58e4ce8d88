/**
 * config.json is untrusted: its dimensions are checked against sane limits before any module
 * list is built from them (issue 15, D9).
 */
import { describe, expect, it } from 'vitest';
import { ModelShapeError } from '../errors.js';
import { MODEL_LIMITS } from './architectures.js';
import { shapeFromHfConfig } from './hf-config.js';

const BERT = { model_type: 'bert', hidden_size: 768, num_hidden_layers: 12, num_attention_heads: 12, intermediate_size: 3072 };

function shapeError(json: unknown): ModelShapeError {
  try {
    shapeFromHfConfig(json, 'm/config.json');
  } catch (e) {
    if (e instanceof ModelShapeError) return e;
    throw e;
  }
  throw new Error('accepted');
}

describe('config.json limits', () => {
  it.each([
    [{ ...BERT, num_hidden_layers: 1e7 }, 'num_hidden_layers'],
    [{ ...BERT, num_hidden_layers: 100_000 }, 'num_hidden_layers'],
    [{ ...BERT, hidden_size: 768 * 4096, num_attention_heads: 12 }, 'hidden_size'],
    [{ ...BERT, intermediate_size: 2 ** 40 }, 'intermediate_size'],
    [{ model_type: 'gpt2', n_embd: 768, n_layer: 1e6, n_head: 12 }, 'n_layer'],
    [{ model_type: 'distilbert', dim: 768, n_layers: 6, n_heads: 12, hidden_dim: 1e9 }, 'hidden_dim'],
    [{ model_type: 'llama', hidden_size: 4096, num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, intermediate_size: 11008 * 1e4 }, 'intermediate_size'],
  ])('D9: %j is a ModelShapeError on %s, before any allocation', (json, field) => {
    const e = shapeError(json);
    expect(e.details.field).toBe(field);
    expect(e.details.file).toBe('m/config.json');
    expect(String(e.details.expected)).toMatch(/^≤ \d+/);
  });

  it('accepts the largest real configurations', () => {
    // Llama-3.1-405B: 126 layers, d = 16384, FFN 53248, 128 heads, 8 KV heads.
    const s = shapeFromHfConfig({ model_type: 'llama', hidden_size: 16384, num_hidden_layers: 126, num_attention_heads: 128, num_key_value_heads: 8, intermediate_size: 53248 });
    expect(s.modules).toHaveLength(126 * 7);
    expect(MODEL_LIMITS.numLayers).toBeGreaterThanOrEqual(126);
  });
});
