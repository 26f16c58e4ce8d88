/** Which modules each file of an encoder–decoder folder is rewritten for (encoder-decoder.ts). */
import { describe, expect, it } from 'vitest';
import { presetShape, shapeFromHfConfig } from '@tensorpeft/core';
import { fileStack, inEncoder, shapeForFile } from './encoder-decoder.js';

const whisper = shapeFromHfConfig({ model_type: 'whisper', d_model: 64, encoder_layers: 2, decoder_layers: 1, encoder_attention_heads: 4, decoder_attention_heads: 4, encoder_ffn_dim: 128, decoder_ffn_dim: 128 });

describe('encoder-decoder files', () => {
  it('classifies transformers.js / optimum file names (every dtype suffix, local paths and Hub URLs)', () => {
    for (const f of ['onnx/encoder_model.onnx', '/m/onnx/encoder_model_quantized.onnx', 'https://huggingface.co/x/y/resolve/main/onnx/encoder_model_q4f16.onnx?download=1']) expect(fileStack(f), f).toBe('encoder');
    for (const f of ['onnx/decoder_model_merged.onnx', 'onnx/decoder_model_merged_fp16.onnx', 'onnx/decoder_model.onnx', 'onnx/decoder_with_past_model_int8.onnx']) expect(fileStack(f), f).toBe('decoder');
    for (const f of ['onnx/model.onnx', 'onnx/model_quantized.onnx', 'onnx/vision_encoder.onnx', 'onnx/my_encoder_model.onnx']) expect(fileStack(f), f).toBeUndefined();
  });

  it('an encoder file gets the encoder stack, a decoder file the rest (cross-attention included)', () => {
    const enc = shapeForFile('onnx/encoder_model.onnx', whisper).modules.map((m) => m.path);
    const dec = shapeForFile('onnx/decoder_model_merged.onnx', whisper).modules.map((m) => m.path);
    expect(enc.length).toBe(2 * 6);
    expect(dec.length).toBe(1 * 10);
    expect(enc.every((p) => p.startsWith('model.encoder.'))).toBe(true);
    expect(dec.every((p) => p.startsWith('model.decoder.'))).toBe(true);
    expect(dec).toContain('model.decoder.layers.0.encoder_attn.k_proj');
    expect(new Set([...enc, ...dec]).size).toBe(whisper.modules.length);
    expect(inEncoder('model.decoder.layers.0.encoder_attn.q_proj')).toBe(false);
    expect(inEncoder('encoder.layers.3.fc1')).toBe(true);
  });

  it('single-stack models are untouched whatever the file is called (BERT paths all contain `encoder`; GPT-2 none)', () => {
    const bert = presetShape('bert-base');
    const gpt2 = presetShape('gpt2');
    expect(shapeForFile('onnx/encoder_model.onnx', bert)).toBe(bert);
    expect(shapeForFile('onnx/decoder_model_merged.onnx', gpt2)).toBe(gpt2);
    expect(shapeForFile('onnx/model.onnx', whisper)).toBe(whisper);
  });
});
