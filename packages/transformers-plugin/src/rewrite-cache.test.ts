import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { attachAdapters, enableAdapters } from './plugin.js';
import { rewriteKey, type RewriteMeta } from './rewrite-cache.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('rewriteKey: same model + targets (any order) → same key; another mode, target set or model byte → another key', async () => {
  const a = new Uint8Array([1, 2, 3, 4]);
  const k = await rewriteKey(a, ['x.q', 'x.v'], 'branch');
  expect(await rewriteKey(a, ['x.v', 'x.q'], 'branch')).toBe(k);
  expect(await rewriteKey(a, ['x.q'], 'branch')).not.toBe(k);
  expect(await rewriteKey(a, ['x.q', 'x.v'], 'merge')).not.toBe(k);
  expect(await rewriteKey(new Uint8Array([1, 2, 3, 5]), ['x.q', 'x.v'], 'branch')).not.toBe(k);
  // fp32 branches (CPU sessions) and fp16 ones (WebGPU) of one fp16 model are different entries.
  expect(await rewriteKey(a, ['x.q', 'x.v'], 'branch', 'float32')).not.toBe(k);
  expect(await rewriteKey(a, ['x.q', 'x.v'], 'branch', 'activation')).toBe(k);
  // The model part is the SHA-256 of the bytes (FIPS 180-2 test vector for "abc").
  expect(await rewriteKey(new TextEncoder().encode('abc'), [], 'branch')).toMatch(/^ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad-[0-9a-f]{16}$/);
});

test('rewrite cache (Node folder): 2nd load is a verified hit with identical logits; a corrupted entry is rewritten again', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-rwcache-'));
  const cacheDir = path.join(root, 'cache');
  dirs.push(root);
  const m = await writeModel({ arch: 'distilbert', size: 'tiny', numLabels: 2, quantized: false, seed: 3 }, path.join(root, 'db'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('db');
  const inputs = tok('a cached rewrite reads the same');
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 5 });
  const load = async (): Promise<{ logits: { base: Float32Array; lora: Float32Array }; events: Array<RewriteMeta & { cached?: boolean }> }> => {
    const events: Array<RewriteMeta & { cached?: boolean }> = [];
    const restore = enableAdapters(env, { rewriteCache: cacheDir, onRewrite: (_f, r) => events.push(r) });
    try {
      const model = attachAdapters(await AutoModelForSequenceClassification.from_pretrained('db', { dtype: 'fp32' }));
      await model.load_adapter(adapter, { adapter_name: 'a' });
      const run = async (name: string | null) => ((await (model as unknown as (x: unknown, o: unknown) => Promise<{ logits: { data: Float32Array } }>)(inputs, { adapter: name })).logits.data);
      const out = { base: await run(null), lora: await run('a') };
      await (model as unknown as { dispose(): Promise<unknown> }).dispose();
      return { logits: out, events };
    } finally {
      restore();
    }
  };
  const first = await load();
  expect(first.events.map((e) => e.cached)).toEqual([false]);
  expect(first.events[0]!.branches.length).toBe(m.shape.modules.length);
  const files = (await readdir(cacheDir)).sort();
  expect(files.filter((f) => f.endsWith('.onnx')).length).toBe(1);
  expect(files.filter((f) => f.endsWith('.json')).length).toBe(1);

  const second = await load();
  expect(second.events.map((e) => e.cached)).toEqual([true]);
  expect(second.events[0]!.branches).toEqual(first.events[0]!.branches);
  // Bit for bit: the same rewritten bytes reach ORT.
  expect(second.logits.base).toEqual(first.logits.base);
  expect(second.logits.lora).toEqual(first.logits.lora);
  expect(second.logits.lora).not.toEqual(second.logits.base);

  // A torn entry (the stored model cut short, and one with its last byte changed): the check refuses
  // it and the rewrite runs again.
  const onnxFile = path.join(cacheDir, files.find((f) => f.endsWith('.onnx'))!);
  const bytes = new Uint8Array(await readFile(onnxFile));
  await writeFile(onnxFile, bytes.subarray(0, bytes.length - 100));
  expect((await load()).events.map((e) => e.cached)).toEqual([false]);
  const edited = new Uint8Array(await readFile(onnxFile));
  edited[edited.length - 1]! ^= 0xff;
  await writeFile(onnxFile, edited);
  const third = await load();
  expect(third.events.map((e) => e.cached)).toEqual([false]);
  expect(third.logits.lora).toEqual(first.logits.lora);
  // …and the entry was written again, whole.
  expect((await load()).events.map((e) => e.cached)).toEqual([true]);
}, 120_000);
