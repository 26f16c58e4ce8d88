import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { loadAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { verify } from './verify.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../../fixtures/peft-real/distilbert-lora-emotion');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test(
  'real PEFT LoRA (distilbert-lora-emotion, q_lin/v_lin + pre_classifier/classifier heads) on a base-size DistilBERT with 6 labels',
  async () => {
    const t0 = performance.now();
    const dir = await mkdtemp(path.join(tmpdir(), 'tp-real-'));
    dirs.push(dir);
    const model = path.join(dir, 'distilbert');
    await writeModel({ arch: 'distilbert', size: 'base', numLabels: 6, seed: 0, quantized: false }, model);
    const t1 = performance.now();
    const adapter = await loadAdapter(FIXTURE);
    const r = await verify({ model, adapter });
    const t2 = performance.now();
    console.log(JSON.stringify({ ...r, make_model_s: (t1 - t0) / 1000, verify_s: (t2 - t1) / 1000 }));
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(r.base_max_abs_diff).toBe(0);
    expect(r.modules).toBe(12);
    expect(r.modules_to_save.sort()).toEqual(['classifier.bias', 'classifier.weight', 'pre_classifier.bias', 'pre_classifier.weight']);
    expect(r.adapter_effect).toBeGreaterThan(1e-3);
  },
  300_000,
);
