/** Merge mode: targeted fp32 weights fed as inputs, W0 + s·B′A′ᵀ merged by the backend per adapter. */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { makeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained } from './plugin.js';
import { rewriteModel } from './rewrite.js';
import { verify } from './verify.js';

let root: string;
let bert: GeneratedModel;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-merge-mode-'));
  bert = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 5 }, path.join(root, 'bert'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

test('rewrite in merge mode: targeted fp32 weights become inputs (initializers dropped), q8 targets keep branches', () => {
  const m = makeModel({ arch: 'bert', size: 'tiny', numLabels: 3 });
  const targets = m.shape.modules.map((x) => x.path);
  const fp32 = rewriteModel(m.files.get('onnx/model.onnx')!, { targets, mode: 'merge' });
  expect(fp32.branches).toEqual([]);
  expect(fp32.merged.length).toBe(targets.length);
  expect(fp32.merged[0]).toMatchObject({ layout: 'in_out', n: 32, m: 32, dims: [32, 32] });
  expect(fp32.bytes.length).toBeLessThan(m.files.get('onnx/model.onnx')!.length);
  const q8 = rewriteModel(m.files.get('onnx/model_quantized.onnx')!, { targets, mode: 'merge' });
  expect(q8.merged).toEqual([]);
  expect(q8.branches.length).toBe(targets.length);
});

test('merge mode: plugin = offline merge, disabled ≈ base; swaps and per-call adapters', async () => {
  const heads = (a: Adapter): Adapter => {
    a.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: new Float32Array(96).map((_, i) => Math.cos(i)) });
    a.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.1, 0.2, 0.3]) });
    return a;
  };
  const lora = heads(createAdapter({ method: 'LORA', shape: bert.shape, nonzero: true, seed: 1, config: { modules_to_save: ['classifier'] } }));
  // q, v only (TensLoRA's own default is q, k, v): the byte budgets below count 4 modules.
  const tens = createAdapter({ method: 'TENSLORA', shape: bert.shape, nonzero: true, seed: 2, config: { target_modules: ['query', 'value'] } });
  for (const a of [lora, tens]) {
    const r = await verify({ model: path.join(root, 'bert'), adapter: a, mode: 'merge' });
    expect(r.mode).toBe('merge');
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-5);
    expect(r.base_max_abs_diff).toBeLessThanOrEqual(1e-5);
    expect(r.adapter_effect).toBeGreaterThan(1e-4);
  }
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('bert');
  const inputs = tok(['i feel happy today', 'two'], { padding: true }) as Record<string, unknown>;
  const branch = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', adapters: { lora, tens } });
  const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', mode: 'merge', adapters: { lora, tens } });
  type Fn = (x: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>;
  const out = async (m: unknown, o?: unknown): Promise<number[]> => Array.from((await (m as Fn)({ ...inputs }, o)).logits.data);
  const close = (a: number[], b: number[]): void => {
    expect(a.length).toBe(b.length);
    expect(Math.max(...a.map((x, i) => Math.abs(x - b[i]!)))).toBeLessThanOrEqual(1e-5);
  };
  // Merged weights held: one [32, 32] copy per module per adapter (+ the head tensors).
  expect(model.list_adapters().map((a) => a.bytes)).toEqual([4 * 32 * 32 * 4 + (96 + 3) * 4, 4 * 32 * 32 * 4]);
  close(await out(model), await out(branch));
  close(await out(model, { adapter: 'tens' }), await out(branch, { adapter: 'tens' }));
  model.set_adapter('tens');
  const tensOut = await out(model);
  model.disable_adapters();
  close(await out(model), await out(branch, { adapter: null }));
  const runs = await Promise.all(Array.from({ length: 40 }, (_, i) => out(model, { adapter: i % 2 ? 'tens' : null })));
  runs.forEach((r, i) => (i % 2 ? expect(r).toEqual(tensOut) : close(r, runs[0]!)));
  // LRU budget with merged weights.
  model.set_max_adapter_bytes(4 * 32 * 32 * 4);
  expect(model.list_adapters().map((a) => a.materialized)).toEqual([false, true]);
  close(await out(model, { adapter: 'lora' }), await out(branch, { adapter: 'lora' }));
});

test('merge mode on GPT-2 (Conv1D as Gemm, fused c_attn): generate() tokens = branch mode tokens', async () => {
  const g = await writeModel({ arch: 'gpt2', size: 'tiny', seed: 9, quantized: false }, path.join(root, 'gpt2'));
  const a = createAdapter({ method: 'LORA', shape: g.shape, nonzero: true, seed: 1, config: { target_modules: ['c_attn', 'c_fc'], lora_alpha: 64 } });
  for (const t of a.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('gpt2');
  const inputs = tok('the quick brown fox');
  type Gen = { generate: (o: unknown) => Promise<{ tolist: () => bigint[][] }> };
  const gen = async (m: unknown, extra: Record<string, unknown> = {}): Promise<number[]> =>
    (await (m as Gen).generate({ ...inputs, max_new_tokens: 10, do_sample: false, ...extra })).tolist()[0]!.map(Number);
  const branch = await from_pretrained(env, AutoModelForCausalLM, 'gpt2', { dtype: 'fp32', adapters: { a } });
  const merged = await from_pretrained(env, AutoModelForCausalLM, 'gpt2', { dtype: 'fp32', mode: 'merge', adapters: { a } });
  const want = await gen(branch);
  expect(await gen(merged)).toEqual(want);
  expect(await gen(merged, { adapter: null })).toEqual(await gen(branch, { adapter: null }));
  expect(want).not.toEqual(await gen(branch, { adapter: null }));
});

test('adapters covering only some branched modules (other modules at ρ = 0 in the same run): tiny LLaMA, both modes', async () => {
  const l = await writeModel({ arch: 'llama', size: 'tiny', seed: 2 }, path.join(root, 'llama'));
  // Default LoRA targets (q_proj, v_proj) while every linear of the model has a branch.
  const a = createAdapter({ method: 'LORA', shape: l.shape, nonzero: true, seed: 1 });
  expect(a.plan.modules.length).toBeLessThan(l.shape.modules.length);
  for (const mode of ['branch', 'merge'] as const) {
    const r = await verify({ model: path.join(root, 'llama'), adapter: a, mode });
    expect(r.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(r.base_max_abs_diff).toBe(0);
  }
  const q8 = await verify({ model: path.join(root, 'llama'), adapter: a, dtype: 'q8' });
  expect(q8.base_max_abs_diff).toBe(0);
});
