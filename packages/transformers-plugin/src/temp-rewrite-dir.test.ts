/**
 * from_pretrained without rewrite_cache (Node) loads through a temporary rewrite cache (file to
 * file, path to ONNX Runtime) removed after the load: same outputs as the in-memory path, and no
 * folder left behind.
 */
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { attachAdapters, enableAdapters, from_pretrained } from './plugin.js';
import { TEMP_PREFIX, withTempRewriteDir } from './temp-rewrite-dir.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});
const temps = async () => (await readdir(tmpdir())).filter((f) => f.startsWith(TEMP_PREFIX)).sort();

test('withTempRewriteDir: a fresh folder for the call, removed after it (also when it throws)', async () => {
  const before = await temps();
  let seen: string | undefined;
  await withTempRewriteDir(async (d) => {
    seen = d;
    expect((await temps()).length).toBe(before.length + 1);
  });
  expect(path.basename(seen!)).toMatch(new RegExp(`^${TEMP_PREFIX}`));
  await expect(withTempRewriteDir(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
  expect(await temps()).toEqual(before);
});

test('from_pretrained (no rewrite_cache): same logits as the in-memory rewrite, disabled = plain exactly, no temporary folder left', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-tmprw-'));
  dirs.push(root);
  const m = await writeModel({ arch: 'distilbert', size: 'tiny', quantized: false, seed: 8 }, path.join(root, 'db'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('db');
  const inputs = tok('through a temporary rewrite cache');
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 2 });
  const before = await temps();
  const viaTemp = await from_pretrained(env, AutoModelForSequenceClassification, 'db', { dtype: 'fp32', adapters: { a: adapter } });
  expect(await temps()).toEqual(before);
  const restore = enableAdapters(env, {});
  let inMemory;
  try {
    inMemory = attachAdapters(await AutoModelForSequenceClassification.from_pretrained('db', { dtype: 'fp32' }));
  } finally {
    restore();
  }
  await inMemory.load_adapter(adapter, { adapter_name: 'a' });
  const plain = await AutoModelForSequenceClassification.from_pretrained('db', { dtype: 'fp32' });
  const logits = async (x: unknown, o?: unknown) => ((await (x as (i: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>)(inputs, o)).logits.data);
  expect(await logits(viaTemp, { adapter: 'a' })).toEqual(await logits(inMemory, { adapter: 'a' }));
  expect(await logits(viaTemp, { adapter: null })).toEqual(await logits(plain));
  for (const x of [viaTemp, inMemory, plain]) await (x as unknown as { dispose(): Promise<unknown> }).dispose();
}, 120_000);
