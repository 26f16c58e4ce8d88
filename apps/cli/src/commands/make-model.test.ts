import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError } from '@tensorpeft/core';
import { UsageError } from '../args.js';
import { makeModelCommand, makeModelHelp } from './make-model.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-make-model-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await makeModelCommand(argv, { out: (t) => (out += `${t}\n`), err: () => {} });
  return { code, out };
}

describe('tensorpeft make-model', () => {
  it('writes a tiny model folder and prints what it wrote', async () => {
    const out = path.join(tmp, 'bert');
    const r = await run('--arch', 'bert', '--num-labels', '4', '--seed', '5', '--out', out);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ arch: 'bert', size: 'tiny', task: 'sequence-classification', class: 'BertForSequenceClassification', modules: 12 });
    expect(Object.keys(j.files).sort()).toEqual(['config.json', 'onnx/model.onnx', 'onnx/model_quantized.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    expect(config.num_labels).toBe(4);
    expect(config.tensorpeft.seed).toBe(5);
    expect((await readFile(path.join(out, 'onnx/model.onnx'))).byteLength).toBe(j.files['onnx/model.onnx']);
  });

  it('takes task aliases and --no-quantized', async () => {
    const r = await run('--arch', 'gpt2', '--task', 'text-generation', '--no-quantized', '--out', path.join(tmp, 'gpt2'));
    const j = JSON.parse(r.out);
    expect(j.task).toBe('causal-lm');
    expect(j.outputs[0]).toBe('logits');
    expect(j.files['onnx/model_quantized.onnx']).toBeUndefined();
  });

  it('--external-data moves the weights into onnx/model.onnx_data', async () => {
    const out = path.join(tmp, 'bert-ext');
    const j = JSON.parse((await run('--arch', 'bert', '--seed', '5', '--external-data', '--out', out)).out);
    expect(Object.keys(j.files).sort()).toEqual(['config.json', 'onnx/model.onnx', 'onnx/model.onnx_data', 'onnx/model_quantized.onnx', 'onnx/model_quantized.onnx_data', 'tokenizer.json', 'tokenizer_config.json']);
    // The same seed inline: the .onnx shrinks by about what the side file holds.
    const inline = JSON.parse((await run('--arch', 'bert', '--seed', '5', '--out', path.join(tmp, 'bert-inline'))).out);
    expect(j.files['onnx/model.onnx']).toBeLessThan(inline.files['onnx/model.onnx'] - j.files['onnx/model.onnx_data'] / 2);
    const config = JSON.parse(await readFile(path.join(out, 'config.json'), 'utf8'));
    expect(config['transformers.js_config'].use_external_data_format).toBe(true);
  });

  it('--dtype writes transformers.js dtype files; --fresh-init and --no-constant-folding change the export layout', async () => {
    const out = path.join(tmp, 'llama-dt');
    const j = JSON.parse((await run('--arch', 'llama', '--dtype', 'fp16,q4', '--dtype', 'bnb4', '--no-quantized', '--out', out)).out);
    expect(Object.keys(j.files).filter((f) => f.startsWith('onnx/')).sort()).toEqual(['onnx/model.onnx', 'onnx/model_bnb4.onnx', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx']);
    const bert = JSON.parse((await run('--arch', 'bert', '--fresh-init', '--no-constant-folding', '--no-quantized', '--out', path.join(tmp, 'bert-fresh'))).out);
    const config = JSON.parse(await readFile(path.join(tmp, 'bert-fresh', 'config.json'), 'utf8'));
    expect(config.tensorpeft).toMatchObject({ fresh_init: true, constant_folding: false });
    expect(bert.modules).toBe(12);
    await expect(run('--arch', 'bert', '--dtype', 'int4', '--out', tmp)).rejects.toThrow(/--dtype must be one of fp16, int8, uint8, q4, q4f16, bnb4/);
    const merged = JSON.parse((await run('--arch', 'llama', '--layout', 'merged-decoder', '--no-quantized', '--out', path.join(tmp, 'llama-merged'))).out);
    expect(merged.inputs).toContain('use_cache_branch');
    const genai = JSON.parse((await run('--arch', 'llama', '--layout', 'genai', '--dtype', 'q4,fp16', '--out', path.join(tmp, 'llama-genai'))).out);
    expect(Object.keys(genai.files).sort()).toEqual(['config.json', 'genai_config.json', 'generation_config.json', 'onnx/model.onnx', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    await expect(run('--arch', 'llama', '--layout', 'genai', '--dtype', 'bnb4', '--out', path.join(tmp, 'llama-genai-bnb4'))).rejects.toThrow(ConfigError);
    await expect(run('--arch', 'llama', '--layout', 'onnx', '--out', tmp)).rejects.toThrow(/--layout must be optimum, merged-decoder or genai/);
    await expect(run('--arch', 'gpt2', '--layout', 'genai', '--out', tmp)).rejects.toThrow(ConfigError);
    await expect(run('--arch', 'vit', '--layout', 'merged-decoder', '--out', tmp)).rejects.toThrow(ConfigError);
  });

  it('refuses bad usage with typed errors', async () => {
    await expect(run('--out', tmp)).rejects.toThrow(UsageError);
    await expect(run('--arch', 'bert')).rejects.toThrow(UsageError);
    await expect(run('--arch', 'bert', '--size', 'large', '--out', tmp)).rejects.toThrow(UsageError);
    await expect(run('--arch', 't5', '--out', tmp)).rejects.toThrow(ConfigError);
    await expect(run('--arch', 'llama', '--task', 'sequence-classification', '--out', tmp)).rejects.toThrow(ConfigError);
    expect(makeModelHelp).toContain('tensorpeft make-model --arch');
  });
});
