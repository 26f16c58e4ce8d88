/**
 * Merged decoders (model-gen `layout: 'merged-decoder'`, optimum's legacy decoder_model_merged
 * layout): the linears live inside the two subgraphs of an `If` on `use_cache_branch` and read the
 * main graph's weights. The rewrite branches them in both subgraphs on adapter inputs declared once on
 * the main graph; mergeModel merges the shared weight once.
 */
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, listMethods, materializeAdapter } from '@tensorpeft/core';
import { decodeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { mergeModel } from './merge.js';
import { from_pretrained } from './plugin.js';
import { rewriteModel } from './rewrite.js';
import { verify } from './verify.js';

let root: string;
const models = new Map<string, GeneratedModel>();
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-merged-dec-'));
  models.set('gpt2', await writeModel({ arch: 'gpt2', size: 'tiny', seed: 9, layout: 'merged-decoder', dtypes: ['q4f16'], gpt2Conv1d: 'MatMul' }, path.join(root, 'gpt2')));
  models.set('llama', await writeModel({ arch: 'llama', size: 'tiny', seed: 9, layout: 'merged-decoder', dtypes: ['q4f16'] }, path.join(root, 'llama')));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('merged decoders (If on use_cache_branch)', () => {
  test('rewrite: every target branched in both subgraphs, its inputs declared once on the main graph', () => {
    for (const [arch, m] of models) {
      const r = rewriteModel(m.files.get('onnx/model.onnx')!, { targets: m.shape.modules.map((x) => x.path) });
      expect(r.branches.length, arch).toBe(m.shape.modules.length);
      const g = decodeModel(r.bytes).graph!;
      const ours = g.input!.filter((v) => v.name!.startsWith('tensorpeft.'));
      expect(ours.length, arch).toBe(2 * m.shape.modules.length);
      const ifNode = g.node!.find((n) => n.opType === 'If')!;
      for (const a of ifNode.attribute!) {
        const mm = a.g!.node!.filter((n) => n.name!.startsWith('/tensorpeft/') && n.name!.endsWith('/MatMul_A'));
        expect(mm.length, `${arch} ${a.name}`).toBe(m.shape.modules.length);
        // The branch reads the main graph's input: no inputs of the subgraph itself.
        expect(a.g!.input ?? []).toEqual([]);
      }
    }
  });

  for (const method of listMethods().map((x) => x.peftType)) {
    test(`LLaMA ${method}: verify fp32 and q4f16 — disabled = base exactly, adapter within tolerance`, async () => {
      const m = models.get('llama')!;
      // Factorizations for the tiny LLaMA's widths (64 hidden, 32 KV, 128 FFN; rank 8 where the method multiplies by it).
      const config: Record<string, Record<string, unknown>> = {
        TRAC: { tensor_shape: { '64': [4, 4, 4], '32': [2, 4, 4], '128': [4, 4, 8] } },
        LORETTA: { tensor_shape_a: { '64': [8, 8, 8], '128': [8, 8, 16] }, tensor_shape_b: { '64': [8, 8, 8], '32': [4, 8, 8], '128': [8, 8, 16] } },
        // qkv_depth stacks q, k, v, which must share (in, out): the GQA k/v (64 → 32) do not.
        TENSLORA: { target_modules: ['q_proj', 'o_proj'] },
      };
      const adapter = createAdapter({ method, shape: m.shape, nonzero: true, seed: 2, config: config[method] ?? {} });
      for (const dtype of ['fp32', 'q4f16'] as const) {
        const r = await verify({ model: path.join(root, 'llama'), adapter, dtype });
        expect(r.base_max_abs_diff).toBe(0);
        expect(r.max_abs_diff).toBeLessThanOrEqual(r.tolerance);
        // fp32: rounding only, far below what the adapter changes (4-bit error is larger than that).
        if (dtype === 'fp32') expect(r.adapter_effect).toBeGreaterThan(100 * r.max_abs_diff);
      }
    });
  }

  test('generate() with the KV cache (both If branches): adapter tokens = offline-merged model tokens, disabled = base tokens (GPT-2, LLaMA)', async () => {
    env.allowRemoteModels = false;
    env.localModelPath = `${root}/`;
    for (const [arch, m] of models) {
      const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { lora_alpha: 64 } });
      // Large enough to change greedy decoding of a random tiny model.
      for (const t of adapter.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
      const merged = path.join(root, `${arch}-merged`);
      await mkdir(path.join(merged, 'onnx'), { recursive: true });
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) await copyFile(path.join(root, arch, f), path.join(merged, f));
      const fp32 = new Uint8Array(await readFile(path.join(root, arch, 'onnx', 'model.onnx')));
      await writeFile(path.join(merged, 'onnx', 'model.onnx'), mergeModel(fp32, await materializeAdapter(adapter)));
      const tok = await AutoTokenizer.from_pretrained(arch);
      const inputs = tok('the quick brown fox');
      const gen = async (model: unknown): Promise<number[]> => {
        const out = await (model as { generate: (o: unknown) => Promise<{ tolist: () => bigint[][] }> }).generate({ ...inputs, max_new_tokens: 10, do_sample: false });
        return out.tolist()[0]!.map(Number);
      };
      const base = await gen(await AutoModelForCausalLM.from_pretrained(arch, { dtype: 'fp32' }));
      const mergedTokens = await gen(await AutoModelForCausalLM.from_pretrained(`${arch}-merged`, { dtype: 'fp32' }));
      expect(mergedTokens, arch).not.toEqual(base);
      const model = await from_pretrained(env, AutoModelForCausalLM, arch, { dtype: 'fp32', adapters: { a: adapter } });
      expect(await gen(model), arch).toEqual(mergedTokens);
      model.disable_adapters();
      expect(await gen(model), arch).toEqual(base);
    }
  });
});
