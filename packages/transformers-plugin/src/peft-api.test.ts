/**
 * PEFT's adapter API on a transformers.js model (a generated tiny BERT classifier): argument order,
 * delete / enable / active_adapters, per-adapter and per-call scale, add_weighted_adapter (ΔW checked
 * against the sum of the sources' ΔW, logits against an offline merge of that sum), sources (Hub id
 * through transformers.js' env, Files), and the load defects D12 (one name, two loads) and D13 (the
 * adapter checked before it is materialized).
 */
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env, pipeline } from '@huggingface/transformers';
import {
  adapterToFiles,
  buildShape,
  createAdapter,
  deltaW,
  JsBackend,
  materializeAdapter,
  ShapeMismatchError,
  type Adapter,
  type Backend,
  type ModuleUpdate,
} from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { AdapterRegistry, attachAdapters, enableAdapters, from_pretrained } from './plugin.js';
import { mergeModel } from './merge.js';
import { PluginError } from './errors.js';

let root: string;
let bert: GeneratedModel;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-peft-api-'));
  bert = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 21 }, path.join(root, 'bert'));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Fn = (...a: unknown[]) => Promise<{ logits: { data: Float32Array } }>;

const lora = (seed: number, r = 4): Adapter => createAdapter({ method: 'LORA', shape: bert.shape, nonzero: true, seed, config: { r } });
const vera = (seed: number): Adapter => createAdapter({ method: 'VERA', shape: bert.shape, nonzero: true, seed });
const tenslora = (seed: number): Adapter => createAdapter({ method: 'TENSLORA', shape: bert.shape, nonzero: true, seed });

async function inputs(): Promise<Record<string, unknown>> {
  const tok = await AutoTokenizer.from_pretrained('bert');
  return tok(['a weighted sum of adapters', 'second text here'], { padding: true }) as Record<string, unknown>;
}

async function logits(model: unknown, inp: Record<string, unknown>, ...args: unknown[]): Promise<number[]> {
  return Array.from((await (model as Fn)({ ...inp }, ...args)).logits.data);
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}

function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number): void {
  expect(got.length).toBe(want.length);
  let worst = 0;
  for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
  expect(worst, `max |Δ| ${worst} > ${tol}`).toBeLessThanOrEqual(tol);
}

/** transformers.js model over a given .onnx (the offline-merged reference): a copy of the model folder. */
async function modelWith(onnx: Uint8Array, name: string): Promise<unknown> {
  const dir = path.join(root, name);
  await cp(path.join(root, 'bert'), dir, { recursive: true });
  await writeFile(path.join(dir, 'onnx', 'model.onnx'), onnx);
  return AutoModelForSequenceClassification.from_pretrained(name, { dtype: 'fp32' });
}

/** The sources' updates with s scaled by their weights: mergeModel adds each one (a second path on a module adds again). */
async function scaledUpdates(parts: Array<[Adapter, number]>): Promise<ModuleUpdate[]> {
  const out: ModuleUpdate[] = [];
  for (const [a, w] of parts) for (const u of await materializeAdapter(a, new JsBackend())) out.push({ ...u, s: u.s * w });
  return out;
}

describe("PEFT's adapter API", () => {
  test('load_adapter(source, { adapter_name }) in PEFT order; the old (name, source) form works and warns once', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => undefined);
    try {
      const a = lora(1);
      expect((await model.load_adapter(a, { adapter_name: 'a' })).name).toBe('a');
      expect((await model.load_adapter(lora(2))).name).toBe('default');
      expect(warn).not.toHaveBeenCalled();
      // Old order: a name, then a source object (bytes) or a string.
      const files = adapterToFiles(a);
      await model.load_adapter('old1', { config: files.configJson, safetensors: files.safetensors });
      await model.load_adapter('old2', a, {});
      expect(warn).toHaveBeenCalledTimes(1);
      expect(String(warn.mock.calls[0]![0])).toMatch(/deprecated.*adapter_name/);
    } finally {
      warn.mockRestore();
    }
    model.set_adapter('a');
    const ref = await logits(model, inp);
    for (const n of ['old1', 'old2']) expect(await logits(model, inp, { adapter: n })).toEqual(ref);
    expect(model.list_adapters().map((x) => x.name)).toEqual(['a', 'default', 'old1', 'old2']);
    await expect(model.load_adapter(lora(3), 'not options' as never)).rejects.toBeInstanceOf(PluginError);
  });

  test('set_adapter / disable_adapters / enable_adapters / active_adapters / delete_adapter', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const base = await logits(model, inp);
    expect(model.active_adapters()).toEqual([]);
    expect(() => model.enable_adapters()).toThrow(PluginError);
    await model.load_adapter(lora(4), { adapter_name: 'a' });
    await model.load_adapter(vera(5), { adapter_name: 'b' });
    model.set_adapter(['a']);
    const refA = await logits(model, inp);
    expect(refA).not.toEqual(base);
    model.disable_adapters();
    expect(await logits(model, inp)).toEqual(base);
    // PEFT keeps the active adapter's name while adapters are disabled.
    expect(model.active_adapters()).toEqual(['a']);
    expect(model.active_adapter).toBeNull();
    model.enable_adapters();
    expect(await logits(model, inp)).toEqual(refA);
    expect(() => model.set_adapter(['a', 'b'] as never)).toThrow(/add_weighted_adapter/);
    model.delete_adapter('a');
    expect(model.active_adapters()).toEqual([]);
    expect(await logits(model, inp)).toEqual(base);
    expect(() => model.delete_adapter(['b', 'nope'])).toThrow(/no adapter named "nope"/);
    expect(model.list_adapters().map((x) => x.name)).toEqual(['b']);
    model.delete_adapter(['b']);
    expect(model.list_adapters()).toEqual([]);
  });

  test('per-adapter scale and per-call scale: ΔW scaled, heads not; scale 0 is the base model', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const base = await logits(model, inp);
    const a = lora(6, 8);
    await model.load_adapter(a, { adapter_name: 'a' });
    await model.load_adapter(a, { adapter_name: 'half', scale: 0.5 });
    expect(model.list_adapters().map((x) => x.scale)).toEqual([1, 0.5]);
    // Reference: the offline merge of 0.5·ΔW (core's JS materialization, the plugin not involved).
    const onnx = new Uint8Array(await readFile(path.join(root, 'bert', 'onnx', 'model.onnx')));
    const halfRef = await logits(await modelWith(mergeModel(onnx, await scaledUpdates([[a, 0.5]])), 'merged-half'), inp);
    // fp32: branch (x·A′)·(s·B′ᵀ) vs merged W0 + s·B′A′ᵀ differ by rounding only (float32 sums of
    // a few dozen products, ~1e-7 relative): 1e-5 of the logits' size is well above that and 100×
    // below the adapter's effect (checked next).
    const tol = 1e-5 * Math.max(1, maxAbs(halfRef));
    expectClose(await logits(model, inp, { adapter: 'half' }), halfRef, tol);
    expect(maxAbs(halfRef.map((v, i) => v - base[i]!))).toBeGreaterThan(100 * tol);
    // Per call: adapter a at 0.5 is the same feeds as 'half' (×0.5 and ×1 are exact here up to rounding).
    expectClose(await logits(model, inp, { adapter: 'a', scale: 0.5 }), halfRef, tol);
    expect(await logits(model, inp, { adapter: 'a', scale: 0 })).toEqual(base);
    // set_adapter_scale rebuilds the feeds.
    await model.set_adapter_scale('a', 0.5);
    expectClose(await logits(model, inp, { adapter: 'a' }), halfRef, tol);
    await model.set_adapter_scale('a', 0);
    expect(await logits(model, inp, { adapter: 'a' })).toEqual(base);
    await expect(model.set_adapter_scale('a', Number.NaN)).rejects.toBeInstanceOf(PluginError);
    // Pipelines take `scale` next to `adapter`.
    const restore = enableAdapters(env);
    const classify = attachAdapters(await pipeline('text-classification', 'bert', { dtype: 'fp32' }));
    restore();
    await classify.load_adapter(a, { adapter_name: 'a' });
    const text = 'a weighted sum of adapters';
    const plain = await classify(text, { top_k: null, adapter: null });
    expect(await classify(text, { top_k: null, adapter: 'a', scale: 0 })).toEqual(plain);
    expect(await classify(text, { top_k: null, adapter: 'a' })).not.toEqual(plain);
  });

  test('add_weighted_adapter: logits = offline merge of Σ wᵢ·ΔWᵢ over adapters of different methods', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const a = lora(7);
    const b = vera(8);
    const c = tenslora(9);
    await model.load_adapter(a, { adapter_name: 'a' });
    await model.load_adapter(b, { adapter_name: 'b', scale: 2 });
    await model.load_adapter(c, { adapter_name: 'c' });
    const info = await model.add_weighted_adapter(['a', 'b', 'c'], [0.7, -0.4, 1.5], 'mix');
    expect(info.rank).toBe(a.plan.rank + b.plan.rank + c.plan.rank);
    // Source b carries its own scale 2 (PEFT folds target.scaling into the weights too).
    const onnx = new Uint8Array(await readFile(path.join(root, 'bert', 'onnx', 'model.onnx')));
    const ref = await logits(
      await modelWith(
        mergeModel(
          onnx,
          await scaledUpdates([
            [a, 0.7],
            [b, -0.8],
            [c, 1.5],
          ]),
        ),
        'merged-mix',
      ),
      inp,
    );
    // Rounding-only difference, as in the scale test (1e-5 of the logits, 100× below the effect).
    const tol = 1e-5 * Math.max(1, maxAbs(ref));
    expectClose(await logits(model, inp, { adapter: 'mix' }), ref, tol);
    const base = await logits(model, inp, { adapter: null });
    expect(maxAbs(ref.map((v, i) => v - base[i]!))).toBeGreaterThan(100 * tol);
    await expect(model.add_weighted_adapter(['a'], [1], 'mix')).rejects.toThrow(/already loaded/);
    await expect(model.add_weighted_adapter(['a', 'b'], [1], 'x')).rejects.toBeInstanceOf(PluginError);
    await expect(model.add_weighted_adapter(['a'], [1], 'x', 'svd' as never)).rejects.toThrow(/combination_type "svd"/);
    await expect(model.add_weighted_adapter(['a', 'nope'], [1, 1], 'x')).rejects.toThrow(/no adapter named "nope"/);
  });

  test('add_weighted_adapter: heads refused unless { modules_to_save: "base" } (PEFT: the new adapter has the base heads)', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const withHead = createAdapter({ method: 'LORA', shape: bert.shape, nonzero: true, seed: 10, config: { r: 2, modules_to_save: ['classifier'] } });
    // A trained head (PEFT modules_to_save): the tiny BERT's classifier is [3, 32].
    withHead.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: new Float32Array(96).map((_, i) => Math.sin(i)) });
    withHead.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.5, -0.25, 1]) });
    const a = lora(11);
    await model.load_adapter(withHead, { adapter_name: 'h' });
    await model.load_adapter(a, { adapter_name: 'a' });
    await expect(model.add_weighted_adapter(['h', 'a'], [1, 1], 'mix')).rejects.toThrow(/modules_to_save/);
    await model.add_weighted_adapter(['h', 'a'], [1, 1], 'mix', 'cat', { modules_to_save: 'base' });
    expect(model.list_adapters().find((x) => x.name === 'mix')!.modules_to_save).toEqual([]);
    const onnx = new Uint8Array(await readFile(path.join(root, 'bert', 'onnx', 'model.onnx')));
    const ref = await logits(
      await modelWith(
        mergeModel(
          onnx,
          await scaledUpdates([
            [withHead, 1],
            [a, 1],
          ]),
        ),
        'merged-nohead',
      ),
      inp,
    );
    expectClose(await logits(model, inp, { adapter: 'mix' }), ref, 1e-5 * Math.max(1, maxAbs(ref)));
  });

  test('D12: two concurrent load_adapter calls with one name: the second is refused, the first is kept', async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    const first = lora(12);
    const second = lora(13);
    const [r1, r2] = await Promise.allSettled([model.load_adapter(first, { adapter_name: 'x' }), model.load_adapter(second, { adapter_name: 'x' })]);
    expect(r1.status).toBe('fulfilled');
    expect(r2.status).toBe('rejected');
    expect((r2 as PromiseRejectedResult).reason).toBeInstanceOf(PluginError);
    expect(String((r2 as PromiseRejectedResult).reason)).toMatch(/already being loaded/);
    await model.load_adapter(first, { adapter_name: 'ref' });
    expect(await logits(model, inp, { adapter: 'x' })).toEqual(await logits(model, inp, { adapter: 'ref' }));
    // Once the first load is done, { replace: true } replaces.
    await model.load_adapter(second, { adapter_name: 'x', replace: true });
    await model.load_adapter(second, { adapter_name: 'ref2' });
    expect(await logits(model, inp, { adapter: 'x' })).toEqual(await logits(model, inp, { adapter: 'ref2' }));
  });

  test('D13: an adapter that does not fit (or is over the budget) is refused before anything is materialized', async () => {
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    let calls = 0;
    const js = new JsBackend();
    const spy: Backend = {
      name: 'spy',
      evaluate: (e) => (calls++, js.evaluate(e)),
      materialize: (j) => (calls++, js.materialize(j)),
      merge: (W, l, u) => (calls++, js.merge(W, l, u)),
      apply: (X, Y, r, u) => (calls++, js.apply(X, Y, r, u)),
    } as Backend;
    // A LoRTA adapter for a much wider model: small file, large materialized factors.
    const wide = buildShape('bert', { hiddenSize: 256, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 512 });
    const big = createAdapter({ method: 'LORTA', shape: wide, nonzero: true, seed: 14 });
    const e = await model.load_adapter(big, { adapter_name: 'big', backend: spy }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ShapeMismatchError);
    expect(String(e)).toMatch(/does not fit this model.*\[256, 256\] in the adapter/);
    expect(calls).toBe(0);
    // Fits, but its planned size is over the budget: refused from the plan, before materializing.
    const a = lora(15, 8);
    model.set_max_adapter_bytes(1000);
    const over = await model.load_adapter(a, { adapter_name: 'a', backend: spy }).catch((x: unknown) => x);
    expect(over).toBeInstanceOf(PluginError);
    expect(String(over)).toMatch(/more than max_adapter_bytes = 1000/);
    expect(calls).toBe(0);
    model.set_max_adapter_bytes(Number.POSITIVE_INFINITY);
    const info = await model.load_adapter(a, { adapter_name: 'a', backend: spy });
    expect(calls).toBeGreaterThan(0);
    // The plan-based size is the size held.
    let planned = 0;
    for (const m of a.plan.modules) planned += (m.n + m.m) * a.plan.rank * 4;
    expect(info.bytes).toBe(planned);
    expect(model.list_adapters().map((x) => x.name)).toEqual(['a']);
  });
});

describe('typed pipeline options', () => {
  test('feature-extraction (options typed exactly by transformers.js) takes { adapter, scale }; outputs follow', async () => {
    const fx = await writeModel({ arch: 'bert', size: 'tiny', task: 'feature-extraction', seed: 22 }, path.join(root, 'bert-fx'));
    const restore = enableAdapters(env);
    const fe = attachAdapters(await pipeline('feature-extraction', 'bert-fx', { dtype: 'fp32' }));
    restore();
    await fe.load_adapter(createAdapter({ method: 'LORA', shape: fx.shape, nonzero: true, seed: 23 }), { adapter_name: 'a' });
    // These calls are what TypeScript checks (pnpm typecheck covers the tests): the pipeline's own
    // option `pooling` next to ours. Without WithAdapters<T> they were TS2353.
    const base = await fe('typed options', { pooling: 'mean', adapter: null });
    const withA = await fe('typed options', { pooling: 'mean', adapter: 'a' });
    const zero = await fe('typed options', { pooling: 'mean', adapter: 'a', scale: 0 });
    expect(Array.from(zero.data as Float32Array)).toEqual(Array.from(base.data as Float32Array));
    expect(maxAbs((withA.data as Float32Array).map((v, i) => v - (base.data as Float32Array)[i]!))).toBeGreaterThan(0);
    // @ts-expect-error `adapter` is a loaded name or null
    const bad = (): unknown => fe('x', { adapter: 3 });
    expect(typeof bad).toBe('function');
  });
});

describe('adapter sources through the plugin', () => {
  let server: Server;
  let base: string;
  const served = new Map<string, Uint8Array>();
  const requests: string[] = [];

  beforeAll(async () => {
    const files = adapterToFiles(lora(16));
    served.set('/hub/alice/bert-lora/resolve/v2/adapter_config.json', new TextEncoder().encode(files.configJson));
    served.set('/hub/alice/bert-lora/resolve/v2/adapter_model.safetensors', files.safetensors);
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      const body = served.get(req.url ?? '');
      if (body) res.writeHead(200, { 'content-length': String(body.length) }).end(body);
      else res.writeHead(404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  test("a Hub id at a revision, resolved with transformers.js' env (remoteHost); Files (drag and drop)", async () => {
    const inp = await inputs();
    const model = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32' });
    await model.load_adapter(lora(16), { adapter_name: 'ref' });
    const saved = { allow: env.allowRemoteModels, host: env.remoteHost };
    try {
      env.allowRemoteModels = true;
      env.remoteHost = `${base}/hub/`;
      await model.load_adapter('alice/bert-lora', { adapter_name: 'hub', revision: 'v2' });
      // One step: from_pretrained's adapters take load options (a Hub revision, a scale) per entry.
      const m2 = await from_pretrained(env, AutoModelForSequenceClassification, 'bert', { dtype: 'fp32', adapters: { hub: { source: 'alice/bert-lora', revision: 'v2', scale: 0.5 } } });
      expect(m2.list_adapters()).toMatchObject([{ name: 'hub', scale: 0.5 }]);
      expect(m2.active_adapters()).toEqual(['hub']);
      expect(await logits(m2, inp)).toEqual(await logits(model, inp, { adapter: 'hub', scale: 0.5 }));
      // env.allowRemoteModels = false turns Hub ids off, as for models.
      env.allowRemoteModels = false;
      await expect(model.load_adapter('alice/bert-lora', { adapter_name: 'off', revision: 'v2' })).rejects.toThrow(/not found/);
    } finally {
      env.allowRemoteModels = saved.allow;
      env.remoteHost = saved.host;
    }
    expect(requests).toEqual(Array(2).fill(['/hub/alice/bert-lora/resolve/v2/adapter_config.json', '/hub/alice/bert-lora/resolve/v2/adapter_model.safetensors']).flat());
    const ref = await logits(model, inp, { adapter: 'ref' });
    expect(await logits(model, inp, { adapter: 'hub' })).toEqual(ref);
    const dropped = [
      new File([served.get('/hub/alice/bert-lora/resolve/v2/adapter_model.safetensors')! as Uint8Array<ArrayBuffer>], 'adapter_model.safetensors'),
      new File([served.get('/hub/alice/bert-lora/resolve/v2/adapter_config.json')! as Uint8Array<ArrayBuffer>], 'adapter_config.json'),
    ];
    await model.load_adapter(dropped, { adapter_name: 'files' });
    expect(await logits(model, inp, { adapter: 'files' })).toEqual(ref);
  });

  test('an evicted adapter keeps its file bytes, not its parsed parameters (re-materialized from the bytes)', async () => {
    // A registry over a fake session: the feeds of each run are recorded.
    const shape = buildShape('bert', { hiddenSize: 8, numLayers: 1, numHeads: 2, numKvHeads: 2, intermediateSize: 16 });
    const inputNames = ['input_ids'];
    const inputMetadata: Array<{ name: string; shape: Array<number | string> }> = [{ name: 'input_ids', shape: ['b', 's'] }];
    for (const mod of shape.modules) {
      inputNames.push(`tensorpeft.${mod.path}.A`, `tensorpeft.${mod.path}.B`);
      inputMetadata.push({ name: `tensorpeft.${mod.path}.A`, shape: [mod.in, 'r'] }, { name: `tensorpeft.${mod.path}.B`, shape: ['r', mod.out] });
    }
    const fed: Array<Record<string, unknown>> = [];
    const session = { inputNames, inputMetadata, run: async (feeds: Record<string, unknown>) => (fed.push(feeds), {}) };
    const reg = new AdapterRegistry([session]);
    const a = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 17, config: { r: 2 } });
    const files = adapterToFiles(a);
    await reg.load_adapter({ config: files.configJson, safetensors: files.safetensors }, { adapter_name: 'a' });
    await reg.load_adapter(createAdapter({ method: 'LORA', shape, nonzero: true, seed: 18, config: { r: 2 } }), { adapter_name: 'b' });
    // Evict a, then overwrite the bytes it was given with another adapter's file of the same
    // layout: what a re-materializes from shows what it kept (held parsed parameters would still be a's).
    reg.set_max_adapter_bytes(reg.list_adapters()[1]!.bytes);
    reg.set_adapter('b');
    expect(reg.list_adapters().map((x) => x.materialized)).toEqual([false, true]);
    const c = createAdapter({ method: 'LORA', shape, nonzero: true, seed: 19, config: { r: 2 } });
    const cBytes = adapterToFiles(c).safetensors;
    expect(cBytes.length).toBe(files.safetensors.length);
    files.safetensors.set(cBytes);
    reg.set_adapter('a');
    await session.run({ input_ids: 0 });
    const again = fed.at(-1)!;
    const data = (t: unknown): number[] => Array.from((t as { data: Float32Array }).data);
    // The re-materialized feeds are c's: A·(s·B′ᵀ) = ΔWᵀ of core's reference ΔW of c (fp32 sums of ρ = 2 products).
    const us = await materializeAdapter(c, new JsBackend());
    for (const u of us) {
      const A = data(again[`tensorpeft.${u.path}.A`]);
      const Bt = data(again[`tensorpeft.${u.path}.B`]);
      const dw = deltaW(u);
      for (let o = 0; o < u.m; o++)
        for (let i = 0; i < u.n; i++) {
          let acc = 0;
          for (let r = 0; r < u.rho; r++) acc += A[i * u.rho + r]! * Bt[r * u.m + o]!;
          expect(Math.abs(acc - dw[o * u.n + i]!)).toBeLessThanOrEqual(1e-6 * Math.max(1, maxAbs(dw)));
        }
    }
  });
});
