/**
 * `from_pretrained(…, { base_session: true })` (issue 16): while no adapter is active, runs go to a
 * plainly loaded twin of each session (the original graph): outputs are the plain model's bit for
 * bit and the rewritten session is not run; with an adapter the rewritten session runs as without
 * the option; generate() with no adapter gives plain transformers.js' tokens.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { from_pretrained } from './plugin.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

type Handler = { run: (...a: unknown[]) => Promise<unknown> };
const handlerOf = (model: unknown, name = 'model'): Handler => (model as { sessions: Record<string, { handler: Handler }> }).sessions[name]!.handler;
function counting(h: Handler): { n: number } {
  const c = { n: 0 };
  const inner = h.run.bind(h);
  h.run = (...a) => (c.n++, inner(...a));
  return c;
}

test('BERT: no adapter → the twin (plain logits bit for bit, rewritten session idle); adapter → the rewritten session, same logits as without the option', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-basesess-'));
  dirs.push(root);
  const m = await writeModel({ arch: 'bert', size: 'tiny', quantized: false, seed: 6 }, path.join(root, 'bert'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('bert');
  const inputs = tok('the twin runs the original graph');
  const adapter = createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 3 });
  const plain = await AutoModelForSequenceClassification.from_pretrained('bert', { dtype: 'fp32' });
  const twinned = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', base_session: true, adapters: { a: adapter } });
  const single = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', adapters: { a: adapter } });
  const logits = async (x: unknown, o?: unknown) => ((await (x as (i: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>)(inputs, o)).logits.data);
  const rewritten = counting(handlerOf(twinned));
  const base = await logits(plain);
  expect(await logits(twinned, { adapter: null })).toEqual(base);
  expect(rewritten.n).toBe(0);
  const withA = await logits(twinned, { adapter: 'a' });
  expect(rewritten.n).toBe(1);
  expect(withA).toEqual(await logits(single, { adapter: 'a' }));
  expect(withA).not.toEqual(base);
  twinned.disable_adapters();
  expect(await logits(twinned)).toEqual(base);
  expect(rewritten.n).toBe(1);
  for (const x of [plain, twinned, single]) await (x as unknown as { dispose(): Promise<unknown> }).dispose();
}, 120_000);

test('tiny LLaMA generate(): no adapter gives plain transformers.js tokens through the twin; with an adapter every step runs the rewritten graph', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'tp-basesess-'));
  dirs.push(root);
  const m = await writeModel({ arch: 'llama', size: 'tiny', quantized: false, seed: 4 }, path.join(root, 'llama'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained('llama');
  const inputs = tok('the quick brown fox') as Record<string, unknown>;
  const plain = await AutoModelForCausalLM.from_pretrained('llama', { dtype: 'fp32' });
  const model = await from_pretrained(env, AutoModelForCausalLM, 'llama', { dtype: 'fp32', base_session: true, adapters: { a: createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1, config: { r: 8 } }) } });
  const gen = (x: unknown, extra: Record<string, unknown> = {}) => (x as { generate(o: unknown): Promise<{ tolist(): unknown }> }).generate({ ...inputs, max_new_tokens: 12, min_new_tokens: 12, do_sample: false, ...extra }).then((t) => t.tolist());
  const rewritten = counting(handlerOf(model));
  expect(await gen(model, { adapter: null })).toEqual(await gen(plain));
  expect(rewritten.n).toBe(0);
  await gen(model, { adapter: 'a' });
  expect(rewritten.n).toBe(12);
  for (const x of [plain, model]) await (x as unknown as { dispose(): Promise<unknown> }).dispose();
}, 120_000);
