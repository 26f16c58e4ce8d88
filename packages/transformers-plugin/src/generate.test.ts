import { readFile, mkdtemp, rm, writeFile, mkdir, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, materializeAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { mergeModel } from './merge.js';
import { from_pretrained } from './plugin.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('generate() with the KV cache: adapter tokens = offline-merged model tokens, disabled = base tokens (tiny GPT-2)', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-gen-'));
  dirs.push(root);
  const m = await writeModel({ arch: 'gpt2', size: 'tiny', seed: 9, quantized: false }, path.join(root, 'gpt2'));
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { target_modules: ['c_attn', 'c_fc'], lora_alpha: 64 } });
  // Large enough to change greedy decoding of a random tiny model.
  for (const t of adapter.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
  // The merged model as its own folder.
  const merged = path.join(root, 'merged');
  await mkdir(path.join(merged, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json']) await copyFile(path.join(root, 'gpt2', f), path.join(merged, f));
  const fp32 = new Uint8Array(await readFile(path.join(root, 'gpt2', 'onnx', 'model.onnx')));
  await writeFile(path.join(merged, 'onnx', 'model.onnx'), mergeModel(fp32, await materializeAdapter(adapter)));

  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('gpt2');
  const inputs = tok('the quick brown fox');
  const gen = async (model: unknown): Promise<number[]> => {
    const out = await (model as { generate: (o: unknown) => Promise<{ tolist: () => bigint[][] }> }).generate({ ...inputs, max_new_tokens: 12, do_sample: false });
    return out.tolist()[0]!.map(Number);
  };
  const base = await gen(await AutoModelForCausalLM.from_pretrained('gpt2', { dtype: 'fp32' }));
  const mergedTokens = await gen(await AutoModelForCausalLM.from_pretrained('merged', { dtype: 'fp32' }));
  expect(mergedTokens).not.toEqual(base);
  const model = await from_pretrained(env, AutoModelForCausalLM, 'gpt2', { dtype: 'fp32', adapters: { a: adapter } });
  expect(await gen(model)).toEqual(mergedTokens);
  model.disable_adapters();
  expect(await gen(model)).toEqual(base);
});
