/**
 * `from_pretrained(…, { target_modules })`: only the named linears get branches (PEFT's list form),
 * the others stay as in the base graph (no branch, not an overridable head). Checked on tiny LLaMA
 * fp32 and q4: the graph's adapter inputs are those of q/v only; a q/v adapter gives the logits of
 * the default load (every linear branched; the extra branches add rank-0 zeros), disabled = plain
 * transformers.js bit for bit; an adapter on another module and target_modules naming no linear are
 * typed errors.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, ShapeMismatchError, type ModelShape } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { PluginError } from './errors.js';
import { from_pretrained } from './plugin.js';
import { isTargeted, selectTargets } from './target-modules.js';

let root: string;
let shape: ModelShape;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-targets-'));
  shape = (await writeModel({ arch: 'llama', size: 'tiny', quantized: false, seed: 4, dtypes: ['q4'] }, path.join(root, 'llama'))).shape;
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

test('PEFT list matching: equal, or ending with "." + name; none matched is a typed error naming the leaves', () => {
  expect(isTargeted('model.layers.0.self_attn.q_proj', ['q_proj'])).toBe(true);
  expect(isTargeted('model.layers.0.self_attn.q_proj', ['model.layers.0.self_attn.q_proj'])).toBe(true);
  expect(isTargeted('model.layers.0.self_attn.qq_proj', ['q_proj'])).toBe(false);
  expect(isTargeted('model.layers.0.self_attn.q_proj', ['proj'])).toBe(false);
  expect(selectTargets(['a.q_proj', 'a.k_proj', 'b.q_proj'], ['q_proj'], 'config.json')).toEqual(['a.q_proj', 'b.q_proj']);
  expect(() => selectTargets(['a.q_proj', 'a.k_proj'], ['query'], 'llama/config.json')).toThrow(/target_modules \["query"\] match no linear of the model \(llama\/config\.json\); its linears end in: q_proj, k_proj/);
});

type Model = ((x: unknown) => Promise<{ logits: { data: Float32Array } }>) & { dispose(): Promise<unknown>; sessions: Record<string, { inputNames?: string[]; handler?: { inputNames?: string[] } }> };
const adapterInputs = (m: Model): string[] => {
  const s = m.sessions['model']!;
  return (s.handler?.inputNames ?? s.inputNames ?? []).filter((n) => n.startsWith('tensorpeft.'));
};

describe.each(['fp32', 'q4'] as const)('tiny LLaMA %s', (dtype) => {
  test('target_modules ["q_proj", "v_proj"]: branches on q/v only; a q/v adapter = the default load; disabled = plain bit for bit; other modules refused', async () => {
    const tok = await AutoTokenizer.from_pretrained('llama');
    const inputs = tok('only the modules named get a branch');
    const qv = { ...shape, modules: shape.modules.filter((m) => /\.(q_proj|v_proj)$/.test(m.path)) };
    expect(qv.modules.length).toBe(2 * shape.numLayers);
    const adapter = createAdapter({ method: 'LORA', shape: qv, nonzero: true, seed: 5 });
    const plain = (await AutoModelForCausalLM.from_pretrained('llama', { dtype })) as unknown as Model;
    const narrow = (await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype, target_modules: ['q_proj', 'v_proj'] })) as unknown as Model & Awaited<ReturnType<typeof from_pretrained>>;
    const wide = (await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype })) as unknown as Model & Awaited<ReturnType<typeof from_pretrained>>;
    // q/v: one A and one B input each; the default load has every linear's.
    const names = adapterInputs(narrow);
    expect(names.length).toBe(2 * qv.modules.length);
    expect(names.every((n) => /\.(q_proj|v_proj)\.[AB]$/.test(n))).toBe(true);
    expect(adapterInputs(wide).length).toBe(2 * shape.modules.length);
    const logits = async (m: Model) => Array.from((await m(inputs)).logits.data);
    const base = await logits(plain);
    expect(await logits(narrow)).toEqual(base);
    for (const m of [narrow, wide]) {
      await m.load_adapter(adapter, { adapter_name: 'qv' });
      m.set_adapter('qv');
    }
    const a = await logits(narrow);
    const b = await logits(wide);
    // Same q/v products; the default load adds exact zeros on the other linears, and ORT may order
    // the q4 graph's sums differently around them: fp32 rounding of logits of scale ~1–3.
    const diff = a.reduce((d, v, i) => Math.max(d, Math.abs(v - b[i]!)), 0);
    expect(diff).toBeLessThanOrEqual(1e-5);
    expect(a.reduce((d, v, i) => Math.max(d, Math.abs(v - base[i]!)), 0)).toBeGreaterThan(1e-2);
    narrow.disable_adapters();
    expect(await logits(narrow)).toEqual(base);
    const wider = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 6, config: { target_modules: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] } });
    const err = await narrow.load_adapter(wider, { adapter_name: 'qkvo' }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ShapeMismatchError);
    expect((err as Error).message).toMatch(/k_proj .* has no branch: from_pretrained's target_modules left it out/);
    for (const m of [plain, narrow, wide]) await m.dispose();
  }, 120_000);
});

test('target_modules that name no linear, or not a list of names, are typed errors', async () => {
  await expect(from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32', target_modules: ['query', 'value'] })).rejects.toThrow(/match no linear of the model .*its linears end in: q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj/);
  for (const bad of ['q_proj', [], ['q_proj', ''], [3]]) {
    const err = await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32', target_modules: bad as never }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PluginError);
    expect((err as Error).message).toMatch(/target_modules must be a non-empty list of module names/);
  }
}, 120_000);

test('BERT classifier with target_modules ["query", "value"]: the classifier head stays overridable (modules_to_save), the other linears get no branch', async () => {
  const bert = await writeModel({ arch: 'bert', size: 'tiny', quantized: false, seed: 7, numLabels: 3 }, path.join(root, 'bert'));
  const { AutoModelForSequenceClassification } = await import('@huggingface/transformers');
  const tok = await AutoTokenizer.from_pretrained('bert');
  const inputs = tok('heads stay overridable');
  const m = (await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', target_modules: ['query', 'value'] })) as unknown as Model & Awaited<ReturnType<typeof from_pretrained>>;
  const names = adapterInputs(m);
  const branches = names.filter((n) => /\.[AB]$/.test(n));
  expect(branches.length).toBe(2 * 2 * bert.shape.numLayers);
  expect(branches.every((n) => /\.(query|value)\.[AB]$/.test(n))).toBe(true);
  expect(names.some((n) => n.startsWith('tensorpeft.param.') && n.includes('classifier'))).toBe(true);
  const base = Array.from((await m(inputs)).logits.data);
  const a = createAdapter({ method: 'LORA', shape: bert.shape, nonzero: true, seed: 2, config: { modules_to_save: ['classifier'] } });
  const hidden = bert.shape.hiddenSize;
  a.extras.set('base_model.model.classifier.weight', { shape: [3, hidden], data: new Float32Array(3 * hidden).map((_, i) => Math.sin(i)) });
  a.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([1, -1, 0.5]) });
  const info = await m.load_adapter(a, { adapter_name: 'head' });
  expect(info.modules_to_save.length).toBeGreaterThan(0);
  m.set_adapter('head');
  expect(Array.from((await m(inputs)).logits.data)).not.toEqual(base);
  await m.dispose();
}, 120_000);
