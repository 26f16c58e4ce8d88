/**
 * Per-call adapter override, whole-call / whole-generate() pinning, the LRU byte budget and
 * progress callbacks.
 */
import { copyFile, mkdir, mkdtemp, rm, stat, truncate } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import { AdapterFormatError, createAdapter, DEFAULT_MAX_BYTES, saveAdapter, type Adapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { attachAdapters, enableAdapters, from_pretrained, type AdapterProgressInfo } from './plugin.js';

let root: string;
let bert: GeneratedModel;
let gpt2: GeneratedModel;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-features-'));
  bert = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 4 }, path.join(root, 'bert'));
  gpt2 = await writeModel({ arch: 'gpt2', size: 'tiny', seed: 9, quantized: false }, path.join(root, 'gpt2'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Fn = (...a: unknown[]) => Promise<{ logits: { data: Float32Array } }>;

async function bertInputs(): Promise<Record<string, unknown>> {
  const tok = await AutoTokenizer.from_pretrained('bert');
  return tok(['i feel happy today', 'another text'], { padding: true }) as Record<string, unknown>;
}

const lora = (seed: number, r = 8): Adapter => createAdapter({ method: 'LORA', shape: bert.shape, nonzero: true, seed, config: { r } });

describe('per-call adapter and pinning', () => {
  test('model(inputs, { adapter }), with_adapter(name), pipeline option; the active adapter is unchanged', async () => {
    const inputs = await bertInputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', adapters: { a: lora(1), b: lora(2) } });
    const call = model as unknown as Fn;
    const out = async (...args: unknown[]): Promise<number[]> => Array.from((await call({ ...inputs }, ...args)).logits.data);
    const refA = await out();
    model.set_adapter('b');
    const refB = await out();
    model.disable_adapters();
    const base = await out();
    model.set_adapter('a');
    expect(refA).not.toEqual(refB);
    expect(await out({ adapter: 'b' })).toEqual(refB);
    expect(await out({ adapter: null })).toEqual(base);
    expect(await out({ adapter: 'a' })).toEqual(refA);
    expect(await out()).toEqual(refA);
    expect(model.active_adapter).toBe('a');
    const pinnedB = model.with_adapter('b') as unknown as Fn;
    expect(Array.from((await pinnedB({ ...inputs })).logits.data)).toEqual(refB);
    expect(Array.from((await (model.with_adapter(null) as unknown as Fn)({ ...inputs })).logits.data)).toEqual(base);
    await expect(out({ adapter: 'nope' })).rejects.toThrow(/no adapter named "nope"/);
    expect(() => model.with_adapter('nope')).toThrow(/no adapter named "nope"/);
    // Per-call overrides interleaved with swaps: each call keeps its own adapter.
    const runs: Array<Promise<[number[], number[]]>> = [];
    for (let i = 0; i < 60; i++) {
      if (i % 3 === 0) model.set_adapter(i % 2 ? 'a' : 'b');
      const pick = i % 4 === 0 ? null : i % 4 === 1 ? 'a' : i % 4 === 2 ? 'b' : undefined;
      const want = pick === null ? base : pick === 'a' ? refA : pick === 'b' ? refB : model.active_adapter === 'a' ? refA : refB;
      runs.push((pick === undefined ? out() : out({ adapter: pick })).then((o) => [o, want]));
    }
    for (const [o, want] of await Promise.all(runs)) expect(o).toEqual(want);

    // Pipelines: `{ adapter }` in the call options, or a pinned view.
    const restore = enableAdapters(env);
    const classify = attachAdapters(await pipeline('text-classification', 'bert', { dtype: 'fp32' }));
    restore();
    await classify.load_adapter('a', lora(1));
    await classify.load_adapter('b', lora(2));
    classify.set_adapter('b');
    const pRefB = await classify('i feel happy today', { top_k: null });
    classify.set_adapter('a');
    const pRefA = await classify('i feel happy today', { top_k: null });
    expect(pRefA).not.toEqual(pRefB);
    expect(await classify('i feel happy today', { top_k: null, adapter: 'b' })).toEqual(pRefB);
    expect(await (classify.with_adapter('b') as unknown as typeof classify)('i feel happy today', { top_k: null })).toEqual(pRefB);
    expect(await classify('i feel happy today', { top_k: null })).toEqual(pRefA);
    expect(classify.active_adapter).toBe('a');
  });

  test('generate() keeps the adapter it started with for every token; generate({ adapter }) and text-generation pipelines', async () => {
    const tok = await AutoTokenizer.from_pretrained('gpt2');
    const inputs = tok('the quick brown fox');
    const mk = (seed: number): Adapter => {
      const a = createAdapter({ method: 'LORA', shape: gpt2.shape, nonzero: true, seed, config: { target_modules: ['c_attn', 'c_fc'], lora_alpha: 64 } });
      for (const t of a.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * 30;
      return a;
    };
    const model = await from_pretrained(env, AutoModelForCausalLM, 'gpt2', { dtype: 'fp32', adapters: { a: mk(1), b: mk(2) } });
    type Gen = { generate: (o: unknown) => Promise<{ tolist: () => bigint[][] }> };
    const gen = async (extra: Record<string, unknown> = {}, m: unknown = model): Promise<number[]> =>
      (await (m as Gen).generate({ ...inputs, max_new_tokens: 10, do_sample: false, ...extra })).tolist()[0]!.map(Number);
    const refA = await gen();
    model.set_adapter('b');
    const refB = await gen();
    model.disable_adapters();
    const base = await gen();
    expect(new Set([refA, refB, base].map((x) => x.join())).size).toBe(3);
    // Swap on every streamed token: the running generate() is not affected.
    model.set_adapter('a');
    let puts = 0;
    const streamer = {
      put() {
        puts++;
        if (puts % 2) model.set_adapter('b');
        else model.disable_adapters();
      },
      end() {},
    };
    expect(await gen({ streamer })).toEqual(refA);
    expect(puts).toBeGreaterThan(5);
    model.set_adapter('a');
    expect(await gen({ adapter: 'b' })).toEqual(refB);
    expect(await gen({ adapter: null })).toEqual(base);
    expect(await gen({}, model.with_adapter('b'))).toEqual(refB);
    expect(model.active_adapter).toBe('a');
    // Two generate() calls in flight on different adapters.
    const [x, y] = await Promise.all([gen({ adapter: 'b' }), gen()]);
    expect(x).toEqual(refB);
    expect(y).toEqual(refA);

    const restore = enableAdapters(env);
    const generator = attachAdapters(await pipeline('text-generation', 'gpt2', { dtype: 'fp32' }));
    restore();
    await generator.load_adapter('b', mk(2));
    const opts = { max_new_tokens: 10, do_sample: false };
    const plain = await generator('the quick brown fox', opts);
    const withB = await generator('the quick brown fox', { ...opts, adapter: 'b' });
    expect(withB).not.toEqual(plain);
    generator.set_adapter('b');
    expect(await generator('the quick brown fox', opts)).toEqual(withB);
    expect(await generator('the quick brown fox', { ...opts, adapter: null })).toEqual(plain);
  });
});

describe('LRU byte budget', () => {
  test('least recently used adapters are evicted and re-materialized on use, outputs unchanged', async () => {
    const inputs = await bertInputs();
    const names = ['a', 'b', 'c', 'd'];
    const sources = names.map((_, i) => lora(10 + i));
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const call = model as unknown as Fn;
    const out = async (opts?: unknown): Promise<number[]> => Array.from((await call({ ...inputs }, ...(opts ? [opts] : []))).logits.data);
    const ref = new Map<string, number[]>();
    for (let i = 0; i < names.length; i++) {
      await model.load_adapter(names[i]!, sources[i]!);
      model.set_adapter(names[i]!);
      ref.set(names[i]!, await out());
    }
    const per = model.list_adapters()[0]!.bytes;
    expect(per).toBeGreaterThan(0);
    expect(model.adapter_memory()).toMatchObject({ materialized_bytes: 4 * per, evictions: 0 });
    // Budget of two adapters: the two least recently used (a, b) go; d (active) and c stay.
    model.set_max_adapter_bytes(2 * per);
    expect(model.list_adapters().map((x) => [x.name, x.materialized])).toEqual([
      ['a', false],
      ['b', false],
      ['c', true],
      ['d', true],
    ]);
    expect(model.adapter_memory()).toMatchObject({ materialized_bytes: 2 * per, max_adapter_bytes: 2 * per, evictions: 2 });
    // Using an evicted adapter re-materializes it (and evicts the LRU one, c).
    model.set_adapter('a');
    expect(await out()).toEqual(ref.get('a'));
    expect(model.list_adapters().filter((x) => x.materialized).map((x) => x.name).sort()).toEqual(['a', 'd']);
    expect(await out({ adapter: 'b' })).toEqual(ref.get('b'));
    expect(model.adapter_memory().materialized_bytes).toBeLessThanOrEqual(2 * per);
    // Budget of one adapter, many concurrent runs and swaps: every output is its adapter's.
    model.set_max_adapter_bytes(per);
    const runs: Array<Promise<boolean>> = [];
    for (let i = 0; i < 200; i++) {
      const pick = names[(i * 7 + (i >> 3)) % names.length]!;
      if (i % 5 === 0) {
        model.set_adapter(pick);
        runs.push(out().then((o) => JSON.stringify(o) === JSON.stringify(ref.get(pick))));
      } else runs.push(out({ adapter: pick }).then((o) => JSON.stringify(o) === JSON.stringify(ref.get(pick))));
    }
    expect((await Promise.all(runs)).every(Boolean)).toBe(true);
    const mem = model.adapter_memory();
    expect(mem.rematerializations).toBeGreaterThan(3);
    expect(mem.materialized_bytes).toBeLessThanOrEqual(per);
    // Loading over the budget evicts too; from_pretrained takes the budget as an option.
    const m2 = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', max_adapter_bytes: per, adapters: { a: sources[0]!, b: sources[1]! } });
    expect(m2.list_adapters().map((x) => x.materialized)).toEqual([true, false]);
    expect(Array.from((await (m2 as unknown as Fn)({ ...inputs }, { adapter: 'b' })).logits.data)).toEqual(ref.get('b'));
    expect(() => m2.set_max_adapter_bytes(-1)).toThrow(/non-negative/);
  });
});

describe('progress callbacks', () => {
  test('load_adapter(…, { progress_callback }) and from_pretrained: transformers.js-style events', async () => {
    const dir = path.join(root, 'adapter-lora');
    await saveAdapter(lora(3), dir);
    const events: AdapterProgressInfo[] = [];
    const modelEvents: Array<{ status: string; file?: string }> = [];
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', {
      dtype: 'fp32',
      adapters: { disk: dir },
      progress_callback: (e: { status: string; name?: string; file?: string }) => {
        if (e.name === 'disk') events.push(e as AdapterProgressInfo);
        else modelEvents.push(e);
      },
    });
    expect(modelEvents.some((e) => e.status === 'ready' || e.status === 'done')).toBe(true);
    expect(events[0]).toMatchObject({ status: 'initiate', name: 'disk', file: path.join(dir, 'adapter_config.json') });
    expect(events.at(-1)).toEqual({ status: 'ready', name: 'disk' });
    const weights = path.join(dir, 'adapter_model.safetensors');
    const size = (await stat(weights)).size;
    const wp = events.filter((e) => e.file === weights);
    expect(wp.map((e) => e.status)).toEqual(['initiate', 'download', ...wp.slice(2, -1).map(() => 'progress'), 'done']);
    expect(wp.at(-2)).toMatchObject({ loaded: size, total: size, progress: 100 });
    const mat = events.filter((e) => e.file === 'materialize' && e.status === 'progress');
    expect(mat[0]).toMatchObject({ loaded: 0, progress: 0 });
    expect(mat.at(-1)).toMatchObject({ loaded: 4, total: 4, progress: 100 });
    const all = events.filter((e) => e.status === 'progress').map((e) => e.progress!);
    expect(all.every((p) => p >= 0 && p <= 100)).toBe(true);
    expect(model.list_adapters()[0]).toMatchObject({ name: 'disk', materialized: true });
    // Without a callback, the same folder loads through the same path (PEFT's argument order).
    await model.load_adapter(dir, { adapter_name: 'again' });
    // One loader with or without a callback: the same typed errors.
    await expect(model.load_adapter(path.join(root, 'nope'), { adapter_name: 'missing', progress_callback: () => undefined })).rejects.toBeInstanceOf(AdapterFormatError);
    // An oversized weights file (sparse: no disk used) is refused from its size, before any allocation.
    const huge = path.join(root, 'adapter-huge');
    await mkdir(huge, { recursive: true });
    await copyFile(path.join(dir, 'adapter_config.json'), path.join(huge, 'adapter_config.json'));
    await copyFile(weights, path.join(huge, 'adapter_model.safetensors'));
    await truncate(path.join(huge, 'adapter_model.safetensors'), DEFAULT_MAX_BYTES + 1);
    const err = await model.load_adapter('huge', huge, { progress_callback: () => undefined }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AdapterFormatError);
    expect((err as Error).message).toMatch(new RegExp(`larger than the size limit \\(file .*adapter_model\\.safetensors\\): expected ≤ ${DEFAULT_MAX_BYTES} bytes, found ${DEFAULT_MAX_BYTES + 1} bytes`));
    expect(model.list_adapters().map((a) => a.name)).toEqual(['disk', 'again']);
  });
});
