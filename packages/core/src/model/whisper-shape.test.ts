/** Whisper (encoder–decoder): one module list over both stacks, from the checkpoint's config.json. */
import { describe, expect, it } from 'vitest';
import { ModelShapeError } from '../errors.js';
import { shapeFromHfConfig } from './hf-config.js';

// The dimension fields of openai/whisper-tiny's config.json.
const WHISPER_TINY = {
  model_type: 'whisper',
  d_model: 384,
  encoder_layers: 4,
  decoder_layers: 4,
  encoder_attention_heads: 6,
  decoder_attention_heads: 6,
  encoder_ffn_dim: 1536,
  decoder_ffn_dim: 1536,
};

describe('shapeFromHfConfig: whisper', () => {
  it('encoder (6 linears per layer) then decoder (10: self-attention, cross-attention, fc1, fc2), layers counted per stack', () => {
    const s = shapeFromHfConfig(WHISPER_TINY);
    expect(s.modules.length).toBe(4 * 6 + 4 * 10);
    expect(s.modules[0]).toEqual({ path: 'model.encoder.layers.0.self_attn.q_proj', type: 'self_attn.q_proj', layer: 0, in: 384, out: 384, fanInFanOut: false });
    expect(s.modules[5]).toMatchObject({ path: 'model.encoder.layers.0.fc2', in: 1536, out: 384 });
    expect(s.modules[24]).toMatchObject({ path: 'model.decoder.layers.0.self_attn.q_proj', layer: 0 });
    expect(s.modules[24 + 5]).toMatchObject({ path: 'model.decoder.layers.0.encoder_attn.k_proj', type: 'encoder_attn.k_proj', in: 384, out: 384 });
    expect(s.modules.at(-1)).toMatchObject({ path: 'model.decoder.layers.3.fc2', layer: 3 });
    expect(s.numLayers).toBe(4);
    expect(s.defaultTargets).toEqual(['q_proj', 'v_proj']);
  });

  it('a shallower decoder (distil-whisper: 2 decoder layers) and its own FFN width', () => {
    const s = shapeFromHfConfig({ ...WHISPER_TINY, encoder_layers: 32, decoder_layers: 2, decoder_ffn_dim: 512 });
    expect(s.modules.length).toBe(32 * 6 + 2 * 10);
    expect(s.numLayers).toBe(32);
    expect(s.modules.find((m) => m.path === 'model.decoder.layers.1.fc1')).toMatchObject({ in: 384, out: 512 });
    expect(s.modules.some((m) => m.path.startsWith('model.decoder.layers.2.'))).toBe(false);
  });

  it('missing and oversized decoder fields are typed errors naming the field', () => {
    const { decoder_layers: _d, ...noDec } = WHISPER_TINY;
    const e1 = (() => {
      try {
        shapeFromHfConfig(noDec, 'w/config.json');
      } catch (e) {
        return e as ModelShapeError;
      }
      throw new Error('no error');
    })();
    expect(e1).toBeInstanceOf(ModelShapeError);
    expect(e1.details).toMatchObject({ file: 'w/config.json', field: 'decoder_layers' });
    expect(() => shapeFromHfConfig({ ...WHISPER_TINY, decoder_layers: 5000 })).toThrow(/decoder_layers/);
  });
});
