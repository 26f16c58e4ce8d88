/**
 * `verify` on an encoder–decoder folder (tiny Whisper from model-gen): synthetic audio through the
 * model's WhisperFeatureExtractor, encoder output + teacher-forced logits vs the offline merge of both
 * files, and greedy generate() tokens (KV cache) vs the merged model's.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { verify } from './verify.js';

let dir: string;
let m: GeneratedModel;
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'tp-verify-whisper-'));
  m = await writeModel({ arch: 'whisper', seed: 8, dtypes: ['fp16', 'q4f16'] }, path.join(dir, 'whisper'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** `adapter` with ΔW scaled up (LoRA's B′ by `k`), so that greedy tokens change on a random tiny model. */
function louder(adapter: Adapter, k: number): Adapter {
  for (const [key, t] of adapter.params) if (key.includes('lora_B')) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * k;
  return adapter;
}

describe('verify: Whisper (encoder_model + decoder_model_merged)', () => {
  test('LoRA on every linear of both stacks: fp32 = offline merge within tolerance, disabled = base exactly, generate() tokens = merged', async () => {
    const adapter = louder(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 4, config: { target_modules: 'all-linear', r: 4 } }), 20);
    const r = await verify({ model: path.join(dir, 'whisper'), adapter });
    expect(r.input_kind).toBe('audio');
    expect(r.outputs).toEqual(['encoder_last_hidden_state', 'logits']);
    expect(r.modules).toBe(m.shape.modules.length);
    expect(r.base_max_abs_diff).toBe(0);
    expect(r.max_abs_diff).toBeLessThanOrEqual(r.tolerance);
    expect(r.adapter_effect).toBeGreaterThan(100 * r.tolerance);
    expect(r.generate!.tokens).not.toEqual(r.generate!.base_tokens);
    expect(r.generate!.match).toBe(true);
    expect(r.generate!.disabled_match).toBe(true);
    expect(r.generate!.tokens).toEqual(r.generate!.merged_tokens);

  });

  test('q8, fp16, q4f16 files of both stacks: disabled = that dtype\'s base bit for bit, adapter within the derived tolerance', async () => {
    const adapter = louder(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 4, config: { target_modules: 'all-linear', r: 4 } }), 20);
    for (const dtype of ['q8', 'fp16', 'q4f16'] as const) {
      const q = await verify({ model: path.join(dir, 'whisper'), adapter, dtype });
      expect(q.base_max_abs_diff, dtype).toBe(0);
      expect(q.dtype_error, dtype).toBeGreaterThan(0);
      expect(q.max_abs_diff, dtype).toBeLessThanOrEqual(q.tolerance);
      expect(q.generate!.disabled_match, dtype).toBe(true);
    }
  });

  test('texts are refused for a speech model', async () => {
    const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 4 });
    await expect(verify({ model: path.join(dir, 'whisper'), adapter, texts: ['hello'] })).rejects.toThrow(/takes audio/);
  });
});
