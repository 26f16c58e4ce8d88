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
import { AutoModelForCausalLM, AutoModelForSequenceClassification, Tensor, env } from '@huggingface/transformers';
import { createAdapter, type Adapter, type ModelShape } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained } from './plugin.js';

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
  return ['LORA', 'TRAC', 'VERA', 'LORETTA', 'LORTA', 'TENSLORA'].map((method, i) => [method.toLowerCase(), createAdapter({ method, shape, nonzero: true, seed: 10 + i, config: cfg[method] ?? {} })]);
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
      }
    }
  });
});
