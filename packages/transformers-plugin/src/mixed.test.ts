/**
 * Mixed-adapter batches on onnxruntime-node (issue 16): one run over a batch whose rows each name
 * their adapter (`adapter_names`). References are the plugin's ordinary per-call runs
 * (`{ adapter: name }`, themselves checked against offline-merged models in verify.test.ts and
 * generate.test.ts): a row of a mixed batch must equal the same row run alone with its adapter.
 *
 * Tolerances: adapter rows ≤ 1e-5 absolute on logits of magnitude ~1: the mixed graph computes the
 * same products through a batched MatMul on gathered, zero-padded stacks (other kernel blocking,
 * padded columns add exact zeros), i.e. float32 rounding of a sum of ~64 terms, ~1e-6; base rows
 * are compared bit for bit (slot 0 adds exact zeros to the base output).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoModelForSequenceClassification, Tensor, env, pipeline } from '@huggingface/transformers';
import { createAdapter, loadAdapter, type Adapter, type ModelShape } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { attachAdapters, enableAdapters, from_pretrained } from './plugin.js';

const FIXTURE = path.resolve(import.meta.dirname, '../../../fixtures/peft-real/distilbert-lora-emotion');

let root: string;
let bert: GeneratedModel;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-mixed-'));
  bert = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 4, quantized: false }, path.join(root, 'bert'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Out = { logits: Tensor };
type Call = (inputs: Record<string, unknown>, opts?: Record<string, unknown>) => Promise<Out>;

/** A batch of `rows` token rows of length `len` (no padding), ids drawn from a seeded LCG. */
function tokenBatch(rows: number, len: number, vocab: number, seed: number): Record<string, Tensor> {
  let x = seed >>> 0;
  const ids = new BigInt64Array(rows * len);
  for (let i = 0; i < ids.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    ids[i] = BigInt(1 + (x % (vocab - 1)));
  }
  return {
    input_ids: new Tensor('int64', ids, [rows, len]),
    attention_mask: new Tensor('int64', new BigInt64Array(rows * len).fill(1n), [rows, len]),
    token_type_ids: new Tensor('int64', new BigInt64Array(rows * len), [rows, len]),
  };
}

function rowOf(b: Record<string, Tensor>, i: number): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, t] of Object.entries(b)) {
    const len = t.dims[1]!;
    out[k] = new Tensor('int64', (t.data as BigInt64Array).slice(i * len, (i + 1) * len), [1, len]);
  }
  return out;
}

/** Six methods, different ranks. */
function sixAdapters(shape: ModelShape): Array<[string, Adapter]> {
  const cfg: Record<string, Record<string, unknown>> = { LORA: { r: 4 }, VERA: { r: 16 } };
  return ['LORA', 'TRAC', 'VERA', 'LORETTA', 'LORTA', 'TENSLORA'].map((method, i) => {
    const a = createAdapter({ method, shape, nonzero: true, seed: 10 + i, config: cfg[method] ?? {} });
    // Scaled so every method's ΔW moves the logits well above the comparison tolerance.
    for (const t of a.params.values()) for (let j = 0; j < t.data.length; j++) t.data[j] = t.data[j]! * 4;
    return [method.toLowerCase(), a];
  });
}

describe('mixed-adapter batches (onnxruntime-node)', () => {
  test('all six methods, different ranks: each row = the row alone with its adapter (≤ 1e-5), null rows = base bit for bit', async () => {
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', mixed_batches: true });
    const adapters = sixAdapters(bert.shape);
    for (const [name, a] of adapters) await model.load_adapter(a, { adapter_name: name });
    const ranks = new Set(model.list_adapters().map((x) => x.rank));
    expect(ranks.size).toBeGreaterThan(2);
    const call = model as unknown as Call;
    const names: Array<string | null> = ['lora', 'trac', null, 'vera', 'loretta', 'lorta', 'tenslora', null, 'lora'];
    const batch = tokenBatch(names.length, 7, bert.config.vocab_size as number, 1);
    const mixed = (await call(batch, { adapter_names: names })).logits;
    const labels = mixed.dims[1]!;
    const base = (await call(batch, { adapter: null })).logits;
    // The untouched model (no rewrite): the base rows must be its output bit for bit.
    const plain = (await ((await AutoModelForSequenceClassification.from_pretrained('bert', { dtype: 'fp32' })) as unknown as Call)(batch)).logits;
    expect(Array.from(base.data as Float32Array)).toEqual(Array.from(plain.data as Float32Array));
    let worst = 0;
    for (let i = 0; i < names.length; i++) {
      const got = Array.from((mixed.data as Float32Array).slice(i * labels, (i + 1) * labels));
      const alone = Array.from((await call(rowOf(batch, i), { adapter: names[i] })).logits.data as Float32Array);
      const batchBase = Array.from((base.data as Float32Array).slice(i * labels, (i + 1) * labels));
      if (names[i] === null) {
        expect(got, `row ${i} (base)`).toEqual(batchBase);
      } else {
        const d = Math.max(...got.map((v, j) => Math.abs(v - alone[j]!)));
        const effect = Math.max(...got.map((v, j) => Math.abs(v - batchBase[j]!)));
        expect(effect, `row ${i} (${names[i]}) changes the output`).toBeGreaterThan(1e-4);
        expect(d, `row ${i} (${names[i]}) vs alone`).toBeLessThanOrEqual(1e-5);
        worst = Math.max(worst, d);
      }
    }
    console.log(JSON.stringify({ runtime: 'onnxruntime-node', methods: 6, rows: names.length, max_abs_diff_vs_alone: worst }));
  });

  test('real PEFT adapter (distilbert-lora-emotion: LoRA + pre_classifier/classifier heads) mixed with a random LoRA and base rows on a base-size DistilBERT', async () => {
    const t0 = performance.now();
    await writeModel({ arch: 'distilbert', size: 'base', numLabels: 6, seed: 0, quantized: false }, path.join(root, 'distilbert'));
    const t1 = performance.now();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'distilbert', { dtype: 'fp32', mixed_batches: true, adapters: { emotion: FIXTURE } });
    const dShape = (await loadAdapter(FIXTURE)).shape!;
    await model.load_adapter(createAdapter({ method: 'LORA', shape: dShape, nonzero: true, seed: 3, config: { r: 2, target_modules: ['q_lin', 'v_lin', 'lin1'] } }), { adapter_name: 'lora' });
    expect(model.list_adapters().find((a) => a.name === 'emotion')!.modules_to_save.length).toBe(4);
    const t2 = performance.now();
    const call = model as unknown as Call;
    const names: Array<string | null> = ['emotion', null, 'lora', 'emotion', null];
    const batch = tokenBatch(names.length, 6, 30522, 2);
    delete batch.token_type_ids;
    const mixed = Array.from((await call(batch, { adapter_names: names })).logits.data as Float32Array);
    const base = Array.from((await call(batch, { adapter: null })).logits.data as Float32Array);
    for (let i = 0; i < names.length; i++) {
      const got = mixed.slice(i * 6, (i + 1) * 6);
      const b = base.slice(i * 6, (i + 1) * 6);
      if (names[i] === null) {
        expect(got, `row ${i} (base)`).toEqual(b);
        continue;
      }
      const alone = Array.from((await call(rowOf(batch, i), { adapter: names[i] })).logits.data as Float32Array);
      expect(Math.max(...got.map((v, j) => Math.abs(v - b[j]!))), `row ${i} (${names[i]}) changes the output`).toBeGreaterThan(1e-3);
      expect(Math.max(...got.map((v, j) => Math.abs(v - alone[j]!))), `row ${i} (${names[i]}) vs alone`).toBeLessThanOrEqual(1e-5);
    }
    console.log(JSON.stringify({ make_model_s: (t1 - t0) / 1000, load_s: (t2 - t1) / 1000, runs_s: (performance.now() - t2) / 1000 }));
  }, 120_000);

  test('generate(): each row keeps its adapter for every token = the row generated alone (tiny GPT-2; tiny LLaMA merged decoder)', async () => {
    for (const [arch, opts] of [['gpt2', {}], ['llama', { layout: 'merged-decoder' }]] as const) {
      const m = await writeModel({ arch, size: 'tiny', seed: 9, quantized: false, ...opts }, path.join(root, `gen-${arch}`));
      const make = (seed: number): Adapter => {
        const a = createAdapter({ method: seed === 1 ? 'LORA' : 'TRAC', shape: m.shape, nonzero: true, seed, config: seed === 1 ? { r: 4 } : {} });
        // Large enough to change greedy decoding of a random tiny model.
        for (const t of a.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
        return a;
      };
      const model = await from_pretrained(env, AutoModelForCausalLM, `gen-${arch}`, { dtype: 'fp32', mixed_batches: true, adapters: { a: make(1), b: make(2) } });
      const names: Array<string | null> = ['a', null, 'b', 'a'];
      const batch = tokenBatch(names.length, 5, m.config.vocab_size as number, 7);
      delete batch.token_type_ids;
      type Gen = { generate(o: Record<string, unknown>): Promise<Tensor> };
      const gen = async (inputs: Record<string, unknown>, extra: Record<string, unknown>): Promise<number[][]> =>
        ((await (model as unknown as Gen).generate({ ...inputs, max_new_tokens: 8, min_new_tokens: 8, do_sample: false, ...extra })).tolist() as bigint[][]).map((r) => r.map(Number));
      const mixed = await gen(batch, { adapter_names: names });
      const alone = await Promise.all(names.map(async (n, i) => (await gen(rowOf(batch, i), { adapter: n }))[0]!));
      expect(mixed, arch).toEqual(alone);
      // The adapters act: a, b and the base generate different tokens from the same prompt.
      const same = rowOf(batch, 0);
      const per = await Promise.all(['a', 'b', null].map(async (n) => JSON.stringify((await gen(same, { adapter: n }))[0])));
      expect(new Set(per).size, arch).toBe(3);
    }
  }, 120_000);

  test('fp16 and q4f16 graphs (branches in fp16): generate() rows = each row alone; an fp16 head is replaced for whole batches only', async () => {
    const m = await writeModel({ arch: 'llama', size: 'tiny', seed: 9, quantized: false, dtypes: ['fp16', 'q4f16'] }, path.join(root, 'llama16'));
    for (const dtype of ['fp16', 'q4f16']) {
      const model = await from_pretrained(env, AutoModelForCausalLM, 'llama16', { dtype, mixed_batches: true });
      for (const [n, seed] of [['a', 1], ['b', 2]] as const) {
        const a = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed });
        for (const t of a.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
        await model.load_adapter(a, { adapter_name: n });
      }
      const names: Array<string | null> = ['a', null, 'b'];
      const batch = tokenBatch(names.length, 3, m.config.vocab_size as number, 5);
      delete batch.token_type_ids;
      type Gen = { generate(o: Record<string, unknown>): Promise<Tensor> };
      const gen = async (x: Record<string, unknown>, o: Record<string, unknown>): Promise<number[][]> =>
        ((await (model as unknown as Gen).generate({ ...x, max_new_tokens: 6, min_new_tokens: 6, do_sample: false, ...o })).tolist() as bigint[][]).map((r) => r.map(Number));
      const alone = await Promise.all(names.map(async (n, i) => (await gen(rowOf(batch, i), { adapter: n }))[0]!));
      expect(await gen(batch, { adapter_names: names }), dtype).toEqual(alone);
    }
    // fp16 BERT: its classifier override is the fp16 correction form, left whole-batch; branches are per row.
    const b = await writeModel({ arch: 'bert', size: 'tiny', seed: 9, numLabels: 2, quantized: false, dtypes: ['fp16'] }, path.join(root, 'bert16'));
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert16', { dtype: 'fp16', mixed_batches: true });
    const lora = createAdapter({ method: 'LORA', shape: b.shape, nonzero: true, seed: 4 });
    for (const t of lora.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 4;
    await model.load_adapter(lora, { adapter_name: 'a' });
    const head = createAdapter({ method: 'LORA', shape: b.shape, nonzero: true, seed: 5 });
    head.extras.set('base_model.model.classifier.modules_to_save.default.weight', { data: new Float32Array(2 * 32).fill(0.01), shape: [2, 32] });
    head.extras.set('base_model.model.classifier.modules_to_save.default.bias', { data: new Float32Array([0.5, -0.5]), shape: [2] });
    await model.load_adapter(head, { adapter_name: 'head' });
    const call = model as unknown as Call;
    const batch = tokenBatch(2, 5, b.config.vocab_size as number, 6);
    const mixed = Array.from((await call(batch, { adapter_names: ['a', null] })).logits.data as Float32Array);
    const alone = Array.from((await call(rowOf(batch, 0), { adapter: 'a' })).logits.data as Float32Array);
    const base = Array.from((await call(batch, { adapter: null })).logits.data as Float32Array);
    expect(mixed.slice(2)).toEqual(base.slice(2));
    // fp16 logits: the batched and single products may round differently by an fp16 ulp (~1e-3 at 1).
    expect(Math.max(...mixed.slice(0, 2).map((v, j) => Math.abs(v - alone[j]!)))).toBeLessThanOrEqual(2e-3);
    expect(Math.max(...mixed.slice(0, 2).map((v, j) => Math.abs(v - base[j]!)))).toBeGreaterThan(2e-3);
    await expect(call(batch, { adapter_names: ['head', null] })).rejects.toMatchObject({ name: 'MixedBatchError', message: expect.stringMatching(/classifier\.weight.*whole batch/) });
    // Whole-batch use of that head still works on the mixed rewrite.
    const withHead = Array.from((await call(batch, { adapter: 'head' })).logits.data as Float32Array);
    expect(Math.max(...withHead.map((v, j) => Math.abs(v - base[j]!)))).toBeGreaterThan(0.1);
  });

  test('typed errors: unknown name, rows ≠ batch, more adapters than max_adapters, adapter + adapter_names, model without mixed batches; pipelines pass adapter_names through', async () => {
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', mixed_batches: { max_adapters: 2 } });
    const [a1, a2, a3] = sixAdapters(bert.shape).map(([, a]) => a);
    await model.load_adapter(a1!, { adapter_name: 'x' });
    await model.load_adapter(a2!, { adapter_name: 'y' });
    await model.load_adapter(a3!, { adapter_name: 'z' });
    const call = model as unknown as Call;
    const batch = tokenBatch(3, 5, bert.config.vocab_size as number, 3);
    await expect(call(batch, { adapter_names: ['x', 'nope', null] })).rejects.toMatchObject({ name: 'PluginError', message: expect.stringMatching(/no adapter named "nope"/) });
    await expect(call(batch, { adapter_names: ['x', null] })).rejects.toMatchObject({ name: 'MixedBatchError', code: 'MIXED_BATCH', message: expect.stringMatching(/2 entries but the batch has 3 rows/) });
    await expect(call(batch, { adapter_names: ['x', 'y', 'z'] })).rejects.toMatchObject({ name: 'MixedBatchError', message: expect.stringMatching(/3 distinct adapters .*max_adapters = 2/) });
    await expect(call(batch, { adapter_names: ['x', 'y', null], adapter: 'x' })).rejects.toMatchObject({ name: 'MixedBatchError' });
    await expect(call(batch, { adapter_names: [] })).rejects.toMatchObject({ name: 'MixedBatchError' });
    await expect(call(batch, { adapter_names: ['x', 3, null] })).rejects.toMatchObject({ name: 'MixedBatchError', message: expect.stringMatching(/adapter_names\[1\]/) });
    // Two distinct adapters is within the limit; the ordinary paths still work on the mixed rewrite.
    const ok = Array.from((await call(batch, { adapter_names: ['x', 'y', null] })).logits.data as Float32Array);
    const xs = Array.from((await call(batch, { adapter: 'x' })).logits.data as Float32Array);
    model.set_adapter('y');
    const ys = Array.from((await call(batch)).logits.data as Float32Array);
    expect(Math.max(...ok.slice(0, 3).map((v, j) => Math.abs(v - xs[j]!)))).toBeLessThanOrEqual(1e-5);
    expect(Math.max(...ok.slice(3, 6).map((v, j) => Math.abs(v - ys[3 + j]!)))).toBeLessThanOrEqual(1e-5);

    const plain = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', adapters: { x: a1! } });
    await expect((plain as unknown as Call)(batch, { adapter_names: ['x', null, null] })).rejects.toMatchObject({ name: 'MixedBatchError', message: expect.stringMatching(/mixed_batches/) });

    // Pipelines: the texts are the batch rows (padded to one length; scores within 1e-5 of each alone).
    const restore = enableAdapters(env, { mixedBatches: true });
    const classify = attachAdapters(await pipeline('text-classification', 'bert', { dtype: 'fp32' }));
    restore();
    await classify.load_adapter(a1!, { adapter_name: 'x' });
    await classify.load_adapter(a2!, { adapter_name: 'y' });
    const texts = ['i feel happy today', 'a b c', 'another text'];
    type Scores = Array<Array<{ label: string; score: number }>>;
    const mixedScores = (await classify(texts, { top_k: null, adapter_names: ['y', null, 'x'] } as never)) as unknown as Scores;
    for (const [i, n] of (['y', null, 'x'] as const).entries()) {
      const alone = (await classify([texts[i]!], { top_k: null, adapter: n } as never)) as unknown as Scores;
      const byLabel = new Map(alone[0]!.map((s) => [s.label, s.score]));
      for (const s of mixedScores[i]!) expect(Math.abs(s.score - byLabel.get(s.label)!), `${texts[i]} (${n})`).toBeLessThanOrEqual(1e-5);
    }
  });
});
