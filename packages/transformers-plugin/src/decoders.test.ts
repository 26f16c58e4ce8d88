import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { createAdapter, loadAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { verify } from './verify.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../../fixtures/peft-real/gpt2-lora-tigrinya');
const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

for (const conv of ['Gemm', 'MatMul'] as const) {
  test(`tiny GPT-2 causal LM, Conv1D as ${conv}: LoRA on c_attn, c_proj, c_fc, mlp.c_proj (fp32 exact base, merge within 1e-4)`, async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tp-gpt2-'));
    dirs.push(dir);
    const model = path.join(dir, `gpt2-${conv}`);
    const m = await writeModel({ arch: 'gpt2', size: 'tiny', gpt2Conv1d: conv, seed: 2 }, model);
    const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 3, config: { target_modules: ['c_attn', 'c_proj', 'c_fc'] } });
    const r = await verify({ model, adapter });
    expect(r.outputs).toEqual(['logits']);
    expect(r.modules).toBe(8);
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(r.base_max_abs_diff).toBe(0);
    expect(r.adapter_effect).toBeGreaterThan(1e-4);
    const q = await verify({ model, adapter, dtype: 'q8' });
    expect(q.base_max_abs_diff).toBe(0);
  });
}

test('tiny LLaMA causal LM (GQA, no biases): LoRA on all linears, fp32 and q8', async () => {
  const dir = await mkdtemp(path.join(tmpdir(), 'tp-llama-'));
  dirs.push(dir);
  const model = path.join(dir, 'llama');
  const m = await writeModel({ arch: 'llama', size: 'tiny', seed: 4 }, model);
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 5, config: { target_modules: 'all-linear' } });
  const r = await verify({ model, adapter });
  expect(r.modules).toBe(m.shape.modules.length);
  expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
  expect(r.base_max_abs_diff).toBe(0);
  expect(r.adapter_effect).toBeGreaterThan(1e-4);
  expect((await verify({ model, adapter, dtype: 'q8' })).base_max_abs_diff).toBe(0);
});

test(
  'real PEFT LoRA (gpt2-lora-tigrinya: fused c_attn, attn.c_proj, mlp.c_proj, fan_in_fan_out) on a base-size GPT-2 causal LM',
  async () => {
    const t0 = performance.now();
    const dir = await mkdtemp(path.join(tmpdir(), 'tp-gpt2-real-'));
    dirs.push(dir);
    const model = path.join(dir, 'gpt2');
    await writeModel({ arch: 'gpt2', size: 'base', quantized: false }, model);
    const t1 = performance.now();
    const r = await verify({ model, adapter: await loadAdapter(FIXTURE) });
    console.log(JSON.stringify({ ...r, make_model_s: (t1 - t0) / 1000, verify_s: (performance.now() - t1) / 1000 }));
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(r.base_max_abs_diff).toBe(0);
    expect(r.modules).toBe(36);
  },
  600_000,
);
