/**
 * Models whose weights are ONNX external data (`onnx/model.onnx` + `onnx/model.onnx_data`), loaded
 * by transformers.js with `use_external_data_format: true`, through the plugin in branch and merge mode.
 */
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, type Adapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import onnxProto from 'onnx-proto';
import { attachAdapters, enableAdapters, from_pretrained } from './plugin.js';
import { PluginError } from './errors.js';
import { decodeModel, rewriteModel } from './rewrite.js';
import { mergeModel } from './merge.js';

const { onnx } = onnxProto;

let root: string;
let gen: GeneratedModel;
let inputs: Record<string, unknown>;
const EXT = 'bert-ext';
const INLINE = 'bert-inline';
const SEED = 11;

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-external-'));
  // Same seed → same weights: the two folders differ only in where the initializers are stored.
  gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: SEED, externalData: true }, path.join(root, EXT));
  await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: SEED }, path.join(root, INLINE));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  const tok = await AutoTokenizer.from_pretrained(EXT);
  inputs = tok(['i feel happy today', 'a second, longer text to classify'], { padding: true }) as Record<string, unknown>;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Call = (x: unknown, o?: unknown) => Promise<{ logits: { data: Float32Array } }>;
const out = async (m: unknown, o?: unknown): Promise<number[]> => Array.from((await (m as Call)({ ...inputs }, o)).logits.data);
const maxDiff = (a: number[], b: number[]): number => {
  expect(a.length).toBe(b.length);
  return Math.max(...a.map((x, i) => Math.abs(x - b[i]!)));
};

function adapters(): Record<string, Adapter> {
  const head = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 1, config: { modules_to_save: ['classifier'] } });
  head.extras.set('base_model.model.classifier.weight', { shape: [3, 32], data: new Float32Array(96).map((_, i) => Math.sin(i)) });
  head.extras.set('base_model.model.classifier.bias', { shape: [3], data: Float32Array.from([0.1, -0.2, 0.3]) });
  return { lora: head, tens: createAdapter({ method: 'TENSLORA', shape: gen.shape, nonzero: true, seed: 2 }) };
}

for (const dtype of ['fp32', 'q8'] as const) {
  test(`branch mode, ${dtype}: disabled = untouched base exactly; adapters = same adapters on the inline model`, async () => {
    const opts = { dtype, use_external_data_format: true };
    const plain = await AutoModelForSequenceClassification.from_pretrained(EXT, opts);
    const base = await out(plain);
    const model = await from_pretrained(env, AutoModelForSequenceClassification, EXT, { ...opts, adapters: adapters() });
    const inline = await from_pretrained(env, AutoModelForSequenceClassification, INLINE, { dtype, adapters: adapters() });
    expect(await out(model, { adapter: null })).toEqual(base);
    expect(await out(inline, { adapter: null })).toEqual(base);
    for (const name of ['lora', 'tens']) {
      const a = await out(model, { adapter: name });
      expect(maxDiff(a, base), name).toBeGreaterThan(1e-3);
      expect(maxDiff(a, await out(inline, { adapter: name })), name).toBeLessThanOrEqual(1e-5);
    }
  });
}

test('merge mode, fp32: base weights read from model.onnx_data; adapters = branch mode on the inline model', async () => {
  const opts = { dtype: 'fp32' as const, use_external_data_format: true };
  const base = await out(await AutoModelForSequenceClassification.from_pretrained(EXT, opts));
  const rewrites: number[] = [];
  const restore = enableAdapters(env, { mode: 'merge', onRewrite: (_f, r) => rewrites.push(r.merged.length) });
  let model: Awaited<ReturnType<typeof from_pretrained>>;
  try {
    model = attachAdapters(await AutoModelForSequenceClassification.from_pretrained(EXT, opts));
  } finally {
    restore();
  }
  expect(rewrites).toEqual([gen.shape.modules.length]);
  for (const [k, a] of Object.entries(adapters())) await model.load_adapter(k, a);
  const inline = await from_pretrained(env, AutoModelForSequenceClassification, INLINE, { dtype: 'fp32', adapters: adapters() });
  // W0 is fed as an input in merge mode: another kernel path than the constant-weight base, hence ≤ 1e-5, not 0.
  expect(maxDiff(await out(model, { adapter: null }), base)).toBeLessThanOrEqual(1e-5);
  for (const name of ['lora', 'tens']) {
    const a = await out(model, { adapter: name });
    expect(maxDiff(a, base), name).toBeGreaterThan(1e-3);
    expect(maxDiff(a, await out(inline, { adapter: name })), name).toBeLessThanOrEqual(1e-5);
  }
});

/** `model.onnx` of the external-data model with the reference of its first external tensor changed. */
function tampered(bytes: Uint8Array, change: Record<string, string>): { bytes: Uint8Array; tensor: string } {
  const m = decodeModel(bytes);
  const t = m.graph!.initializer!.find((x) => x.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL && x.name!.startsWith('onnx::MatMul'))!;
  const kv = new Map((t.externalData ?? []).map((e) => [e.key!, e.value!]));
  for (const [k, v] of Object.entries(change)) kv.set(k, v);
  t.externalData = [...kv].map(([key, value]) => onnx.StringStringEntryProto.create({ key, value }));
  return { bytes: onnx.ModelProto.encode(m).finish(), tensor: t.name! };
}

test('external data references are checked before any read: typed errors naming the tensor', () => {
  const fp32 = gen.files.get('onnx/model.onnx')!;
  const data = gen.files.get('onnx/model.onnx_data')!;
  const targets = gen.shape.modules.map((x) => x.path);
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ location: '../../etc/passwd' }, /leaves the model folder/],
    [{ location: 'sub/../../x' }, /leaves the model folder/],
    [{ location: '/etc/passwd' }, /absolute/],
    [{ location: 'C:\\data.bin' }, /absolute/],
    [{ location: 'x%2e%2e' }, /characters/],
    [{ offset: '-4' }, /offset "-4" is not a non-negative integer/],
    [{ offset: '1e3' }, /not a non-negative integer/],
    [{ length: '12' }, /length 12 but its type and dims \[32, 32\] need 4096 bytes/],
  ];
  for (const [change, why] of cases) {
    const { bytes, tensor } = tampered(fp32, change);
    for (const mode of ['branch', 'merge'] as const) {
      const err = (() => {
        try {
          rewriteModel(bytes, { targets, mode, external: new Map([['model.onnx_data', data]]) });
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(err, JSON.stringify(change)).toBeInstanceOf(PluginError);
      expect((err as Error).message).toContain(tensor);
      expect((err as Error).message).toMatch(why);
    }
  }
  // Well-formed but past the end of the file: refused before the slice is taken (merge mode reads W0).
  const past = tampered(fp32, { offset: String(data.length - 100) });
  expect(() => rewriteModel(past.bytes, { targets, mode: 'merge', external: new Map([['model.onnx_data', data]]) })).toThrow(
    new RegExp(`${past.tensor.replace(/[.:]/g, '\\$&')}: bytes \\[\\d+, \\d+\\) lie beyond the end of model.onnx_data \\(${data.length} bytes\\)`),
  );
  const huge = tampered(fp32, { offset: '9007199254740991' });
  expect(() => rewriteModel(huge.bytes, { targets, mode: 'merge', external: new Map([['model.onnx_data', data]]) })).toThrow(PluginError);
  // Merge mode without the side file: the reason, not a zero-length weight.
  expect(() => rewriteModel(fp32, { targets, mode: 'merge' })).toThrow(/merge mode needs the base weight .* ONNX external data/);
  // Branch mode needs no weight bytes.
  expect(rewriteModel(fp32, { targets }).branches.length).toBe(targets.length);
});

test('a model whose external data location leaves its folder is refused at load, the outside file unread', async () => {
  const dir = path.join(root, 'evil');
  await mkdir(path.join(dir, 'onnx'), { recursive: true });
  for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx_data']) await writeFile(path.join(dir, f), gen.files.get(f)!);
  // A real data file one level up: a reader that followed the location would find it.
  await writeFile(path.join(root, 'secret.onnx_data'), gen.files.get('onnx/model.onnx_data')!);
  const { bytes, tensor } = tampered(gen.files.get('onnx/model.onnx')!, { location: '../../secret.onnx_data' });
  await writeFile(path.join(dir, 'onnx/model.onnx'), bytes);
  for (const mode of ['branch', 'merge'] as const) {
    const p = from_pretrained(env, AutoModelForSequenceClassification, 'evil', { dtype: 'fp32', use_external_data_format: true, mode });
    await expect(p).rejects.toThrow(PluginError);
    await expect(p).rejects.toThrow(new RegExp(`${tensor.replace(/[.:]/g, '\\$&')}: location "\\.\\./\\.\\./secret\\.onnx_data" leaves the model folder`));
  }
});

test('the offline merge (mergeModel) refuses external-data weights instead of merging into zeros', () => {
  const updates = gen.shape.modules.map((mod) => ({ path: mod.path, n: mod.in, m: mod.out, rho: 1, s: 1, A: new Float32Array(mod.in), B: new Float32Array(mod.out) }));
  expect(() => mergeModel(gen.files.get('onnx/model.onnx')!, updates)).toThrow(/offline merge: weight onnx::MatMul_\d+ is ONNX external data/);
});

test('each side file is read once per load (Node asks twice; merge mode shares its read), then not held', async () => {
  const reads: string[] = [];
  const counting = {
    async match(key: string) {
      if (!key.endsWith('.onnx_data') || /^https?:/.test(key)) return undefined;
      reads.push(path.basename(key));
      return new Response(await readFile(key));
    },
    async put() {},
  };
  const saved = { use: env.useCustomCache, cache: env.customCache };
  try {
    for (const [mode, dtype] of [['branch', 'fp32'], ['branch', 'q8'], ['merge', 'fp32']] as const) {
      env.useCustomCache = true;
      env.customCache = counting;
      reads.length = 0;
      // A long-lived installation (enableAdapters, not from_pretrained): its cache outlives the load.
      const restore = enableAdapters(env, { mode });
      try {
        const m = attachAdapters(await AutoModelForSequenceClassification.from_pretrained(EXT, { dtype, use_external_data_format: true }));
        for (const [k, a] of Object.entries(adapters())) await m.load_adapter(k, a);
        const file = dtype === 'q8' ? 'model_quantized.onnx_data' : 'model.onnx_data';
        expect(reads, `${mode} ${dtype}`).toEqual([file]);
        expect(maxDiff(await out(m, { adapter: 'tens' }), await out(m, { adapter: null }))).toBeGreaterThan(1e-3);
        // Nothing held after the load: asking the installed cache again reads the file again.
        const res = await (env.customCache as typeof counting).match(path.join(root, EXT, 'onnx', file));
        expect((await res!.arrayBuffer()).byteLength).toBe(gen.files.get(`onnx/${file}`)!.length);
        expect(reads).toEqual([file, file]);
      } finally {
        restore();
      }
    }
  } finally {
    env.useCustomCache = saved.use;
    env.customCache = saved.cache;
  }
});
