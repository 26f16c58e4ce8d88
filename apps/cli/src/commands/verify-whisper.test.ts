/** `tensorpeft verify` on an encoder–decoder folder (tiny Whisper: encoder_model + decoder_model_merged). */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter, saveAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { makeModelCommand, makeModelHelp } from './make-model.js';
import { verifyCommand } from './verify.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-verify-whisper-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('tensorpeft make-model / verify (encoder–decoder)', () => {
  it('make-model --arch whisper writes the two files transformers.js loads and says so', async () => {
    expect(makeModelHelp).toMatch(/--arch <[a-z0-9|]*\|whisper>/);
    let out = '';
    const code = await makeModelCommand(['--arch', 'whisper', '--dtype', 'fp16', '--out', path.join(tmp, 'w-cli')], { out: (t) => (out += `${t}\n`), err: () => {} });
    expect(code).toBe(0);
    const j = JSON.parse(out);
    expect(j).toMatchObject({ arch: 'whisper', size: 'tiny', task: 'speech-seq2seq', class: 'WhisperForConditionalGeneration', modules: 2 * 6 + 2 * 10 });
    expect(Object.keys(j.files).filter((f) => f.startsWith('onnx/')).sort()).toEqual([
      'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged_fp16.onnx',
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/encoder_model.onnx',
      'onnx/encoder_model_fp16.onnx',
      'onnx/encoder_model_quantized.onnx',
    ]);
  });


  it('Whisper with a LoRTA adapter on both stacks: audio inputs, exact when disabled, generate() tokens = merged model', async () => {
    const model = path.join(tmp, 'whisper');
    const m = await writeModel({ arch: 'whisper', seed: 2, quantized: false }, model);
    const adapterDir = path.join(tmp, 'adapter');
    await saveAdapter(createAdapter({ method: 'LORTA', shape: m.shape, nonzero: true, seed: 3 }), adapterDir);
    let out = '';
    const code = await verifyCommand(['--model', model, '--adapter', adapterDir], { out: (t) => (out += `${t}\n`), err: () => {} });
    expect(code).toBe(0);
    const j = JSON.parse(out);
    expect(j).toMatchObject({ ok: true, input_kind: 'audio', inputs: 2, base_max_abs_diff: 0, peft_type: 'LORTA', outputs: ['encoder_last_hidden_state', 'logits'] });
    // q_proj and v_proj (PEFT's whisper default) of 2 encoder + 2 decoder layers, cross-attention included.
    expect(j.modules).toBe(2 * 2 + 2 * 4);
    expect(j.max_abs_diff).toBeLessThanOrEqual(j.tolerance);
    expect(j.adapter_effect).toBeGreaterThan(100 * j.tolerance);
    expect(j.generate).toMatchObject({ match: true, disabled_match: true });
  });
});
