import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import { createAdapter, presetShape, ShapeMismatchError, type Adapter } from '@tensorpeft/core';
import { makeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { attachAdapters, enableAdapters, from_pretrained } from './plugin.js';
import { PluginError } from './errors.js';

let root: string;
let gen: GeneratedModel;
const ID = 'bert-tiny';

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-plugin-'));
  gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 3 }, path.join(root, ID));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Model = Awaited<ReturnType<typeof from_pretrained<Awaited<ReturnType<typeof AutoModelForSequenceClassification.from_pretrained>>>>>;

async function inputsFor(): Promise<Record<string, unknown>> {
  const tok = await AutoTokenizer.from_pretrained(ID);
  return tok(['i feel happy today', 'a second, longer text to classify'], { padding: true }) as Record<string, unknown>;
}

async function logits(model: Model, inputs: Record<string, unknown>): Promise<Float32Array> {
  const out = (await (model as unknown as (x: unknown) => Promise<{ logits: { data: Float32Array } }>)({ ...inputs })).logits.data;
  return Float32Array.from(out);
}

function headAdapter(seed: number): Adapter {
  // A LoRA adapter that also replaces the classifier head (PEFT modules_to_save).
  const a = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed, config: { modules_to_save: ['classifier'] } });
  const w = new Float32Array(3 * 32).map((_, i) => Math.sin(i + seed));
  a.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: w });
  a.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.5, -0.25, seed / 10]) });
  return a;
}

describe('adapter registry on a transformers.js model', () => {
  test('from_pretrained + load/set/disable/unload/list; disabled output = untouched base exactly', async () => {
    const inputs = await inputsFor();
    const plain = await AutoModelForSequenceClassification.from_pretrained(ID, { dtype: 'fp32' });
    const base = Float32Array.from((await plain({ ...inputs })).logits.data as Float32Array);
    const lora = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 1 });
    const model = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32', adapters: { a: lora } });
    expect(env.useCustomCache).toBe(false);
    expect(model.active_adapter).toBe('a');
    const withA = await logits(model, inputs);
    expect(Array.from(withA)).not.toEqual(Array.from(base));
    await model.load_adapter('head', headAdapter(2));
    expect(model.list_adapters().map((x) => [x.name, x.peft_type, x.modules, x.modules_to_save.length])).toEqual([
      ['a', 'LORA', 4, 0],
      ['head', 'LORA', 4, 2],
    ]);
    model.set_adapter('head');
    const withHead = await logits(model, inputs);
    expect(Array.from(withHead)).not.toEqual(Array.from(withA));
    model.disable_adapters();
    expect(model.active_adapter).toBeNull();
    expect(Array.from(await logits(model, inputs))).toEqual(Array.from(base));
    model.set_adapter('a');
    expect(Array.from(await logits(model, inputs))).toEqual(Array.from(withA));
    model.unload_adapter('a');
    expect(model.active_adapter).toBeNull();
    expect(Array.from(await logits(model, inputs))).toEqual(Array.from(base));
    expect(() => model.set_adapter('a')).toThrow(/no adapter named "a"/);
    await expect(model.load_adapter('head', lora)).rejects.toThrow(/already loaded/);
    expect(() => model.set_adapter('a')).toThrow(PluginError);
    await expect(model.load_adapter('head', lora)).rejects.toBeInstanceOf(PluginError);
  });

  test('hot swap: thousands of concurrent runs interleaved with swaps; each output equals its adapter\'s reference', async () => {
    const inputs = await inputsFor();
    const restore = enableAdapters(env);
    const again = enableAdapters(env); // idempotent: no second rewrite
    const model = attachAdapters(await AutoModelForSequenceClassification.from_pretrained(ID, { dtype: 'fp32' })) as unknown as Model;
    again();
    expect(env.useCustomCache).toBe(true);
    restore();
    expect(env.useCustomCache).toBe(false);
    const names = ['lora1', 'lora2', 'vera', 'tenslora', 'head'];
    await model.load_adapter('lora1', createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 11 }));
    await model.load_adapter('lora2', createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 12, config: { r: 4 } }));
    await model.load_adapter('vera', createAdapter({ method: 'VERA', shape: gen.shape, nonzero: true, seed: 13 }));
    await model.load_adapter('tenslora', createAdapter({ method: 'TENSLORA', shape: gen.shape, nonzero: true, seed: 14 }));
    await model.load_adapter('head', headAdapter(5));
    const ref = new Map<string | null, number[]>();
    model.disable_adapters();
    ref.set(null, Array.from(await logits(model, inputs)));
    for (const n of names) {
      model.set_adapter(n);
      ref.set(n, Array.from(await logits(model, inputs)));
    }
    expect(new Set([...ref.values()].map((v) => v.join(','))).size).toBe(names.length + 1);
    let state = 12345;
    const rand = (k: number): number => {
      state = (state * 1103515245 + 12345) % 2147483648;
      return state % k;
    };
    const runs: Array<Promise<[string | null, Float32Array]>> = [];
    for (let i = 0; i < 2000; i++) {
      if (rand(3) === 0) {
        const pick = rand(names.length + 1);
        if (pick === names.length) model.disable_adapters();
        else model.set_adapter(names[pick]!);
      }
      const active = model.active_adapter;
      runs.push(logits(model, inputs).then((o) => [active, o]));
    }
    const done = await Promise.all(runs);
    let mismatches = 0;
    for (const [name, out] of done) if (Array.from(out).join(',') !== ref.get(name)!.join(',')) mismatches++;
    expect(mismatches).toBe(0);
    expect(new Set(done.map(([n]) => n)).size).toBe(names.length + 1);
  });

  test('wrong adapters are refused at load with the module and both shapes; the model stays usable', async () => {
    const inputs = await inputsFor();
    const restore = enableAdapters(env);
    const model = attachAdapters(await AutoModelForSequenceClassification.from_pretrained(ID, { dtype: 'q8' })) as unknown as Model;
    restore();
    await model.load_adapter('ok', createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 1 }));
    model.set_adapter('ok');
    const before = Array.from(await logits(model, inputs));
    // Different base dims (an adapter for BERT-base on a 32-wide BERT).
    await expect(model.load_adapter('big', createAdapter({ method: 'LORA', shape: presetShape('bert-base'), nonzero: true }))).rejects.toThrow(
      'module bert.encoder.layer.0.attention.self.query has weight [out, in] = [768, 768] in the adapter but [32, 32] in the model',
    );
    // Missing module (a GPT-2 adapter).
    const gpt2 = makeModel({ arch: 'gpt2', size: 'tiny' }).shape;
    await expect(model.load_adapter('gpt2', createAdapter({ method: 'LORA', shape: gpt2, nonzero: true }))).rejects.toThrow(
      'module transformer.h.0.attn.c_attn (weight [out, in] = [96, 32]) is not a linear of the model',
    );
    // Head of the wrong size.
    const bad = headAdapter(3);
    bad.extras.set('base_model.model.classifier.weight', { shape: [6, 32], data: new Float32Array(6 * 32) });
    await expect(model.load_adapter('bad', bad)).rejects.toThrow('modules_to_save tensor classifier.weight is [6, 32] in the adapter but [3, 32] in the model');
    // Weight without bias.
    const half = headAdapter(3);
    half.extras.delete('base_model.model.classifier.bias');
    await expect(model.load_adapter('half', half)).rejects.toThrow('modules_to_save gives classifier.weight but not classifier.bias ([3] in the model)');
    // All of them typed: core's ShapeMismatchError.
    for (const a of [bad, half, createAdapter({ method: 'LORA', shape: gpt2, nonzero: true })]) await expect(model.load_adapter('x', a)).rejects.toBeInstanceOf(ShapeMismatchError);
    expect(model.list_adapters().map((a) => a.name)).toEqual(['ok']);
    expect(model.active_adapter).toBe('ok');
    expect(Array.from(await logits(model, inputs))).toEqual(before);
  });

  test('pipeline(): attachAdapters on a text-classification pipeline (q8 base)', async () => {
    const restore = enableAdapters(env);
    const classify = attachAdapters(await pipeline('text-classification', ID, { dtype: 'q8' }));
    restore();
    const base = await classify('i feel happy today', { top_k: null });
    await classify.load_adapter('head', headAdapter(7));
    classify.set_adapter('head');
    const adapted = await classify('i feel happy today', { top_k: null });
    expect(JSON.stringify(adapted)).not.toBe(JSON.stringify(base));
    classify.disable_adapters();
    expect(await classify('i feel happy today', { top_k: null })).toEqual(base);
  });
});
