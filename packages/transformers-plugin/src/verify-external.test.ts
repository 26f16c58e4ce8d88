/**
 * `verify` and `mergeModel` on models whose weights are ONNX external data (`onnx/model.onnx` +
 * `onnx/model.onnx_data`), against the same models (same seed) written inline.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAdapter, materializeAdapter, type Adapter } from '@tensorpeft/core';
import { makeModel, writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { isExternal, readExternalBytes } from './external-data.js';
import { mergeModel } from './merge.js';
import { verify, type VerifyResult } from './verify.js';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;

const SEED = 5;
const LABELS = 3;
const HIDDEN = 32;
// The tensors PEFT keeps in modules_to_save for each head. DistilBERT's pre_classifier.weight
// ([32, 32], 4 KiB) is stored as external data by model-gen (≥ 1 KiB), so its replacement also goes
// through the external path; the [3, 32] classifiers stay inline.
const HEADS = { bert: ['classifier'], distilbert: ['pre_classifier', 'classifier'] } as const;
type Arch = keyof typeof HEADS;

let root: string;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-verify-external-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** LoRA on every linear plus the head replaced (modules_to_save), as a fine-tuned classifier ships. */
function headLora(arch: Arch, gen: GeneratedModel): Adapter {
  const a = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 3, config: { modules_to_save: [...HEADS[arch]] } });
  for (const head of HEADS[arch]) {
    const out = head === 'classifier' ? LABELS : HIDDEN;
    a.extras.set(`base_model.model.${head}.weight`, { shape: [out, HIDDEN], data: new Float32Array(out * HIDDEN).map((_, i) => 0.2 * Math.sin(i + out)) });
    a.extras.set(`base_model.model.${head}.bias`, { shape: [out], data: new Float32Array(out).map((_, i) => 0.1 * Math.cos(i)) });
  }
  return a;
}

const numbers = (r: VerifyResult): Pick<VerifyResult, 'max_abs_diff' | 'base_max_abs_diff' | 'adapter_effect' | 'outputs' | 'modules' | 'modules_to_save'> => ({
  max_abs_diff: r.max_abs_diff,
  base_max_abs_diff: r.base_max_abs_diff,
  adapter_effect: r.adapter_effect,
  outputs: r.outputs,
  modules: r.modules,
  modules_to_save: r.modules_to_save,
});

for (const arch of ['bert', 'distilbert'] as const) {
  describe(`verify on a tiny external-data ${arch}`, () => {
    let gen: GeneratedModel;
    let ext: string;
    let inline: string;
    beforeAll(async () => {
      ext = path.join(root, `${arch}-ext`);
      inline = path.join(root, `${arch}-inline`);
      // Same seed → same weights: the two folders differ only in where the initializers are stored.
      gen = await writeModel({ arch, size: 'tiny', numLabels: LABELS, seed: SEED, externalData: true }, ext);
      await writeModel({ arch, size: 'tiny', numLabels: LABELS, seed: SEED }, inline);
      expect(gen.files.has('onnx/model.onnx_data')).toBe(true);
    });

    const adapters = (): Array<[string, Adapter]> => [
      ['LORA + modules_to_save', headLora(arch, gen)],
      // A tensor method: its ΔW comes from a factorized tensor, not two matrices.
      ['TENSLORA', createAdapter({ method: 'TENSLORA', shape: gen.shape, nonzero: true, seed: 4 })],
    ];

    test('fp32 and q8: plugin = offline merge, disabled = base exactly; the same numbers as the inline model', async () => {
      for (const [name, adapter] of adapters()) {
        const r = await verify({ model: ext, adapter });
        // 1e-4: the plugin's fp32 bound (x·W0 + s·(x·A)·Bᵀ vs x·(W0 + ΔW) only differ in fp32
        // summation order; measured 6e-8 … 2e-7 on these tiny models, with O(1) logits). The check
        // below that the inline model gives the very same numbers shows the external path adds nothing.
        expect(r.max_abs_diff, name).toBeLessThanOrEqual(1e-4);
        expect(r.base_max_abs_diff, name).toBe(0);
        // A merged reference that silently kept W0 (or zeros) would fail this, or max_abs_diff above.
        expect(r.adapter_effect, name).toBeGreaterThan(1e-3);
        expect(r.modules, name).toBe(adapter.plan.modules.length);
        if (name.startsWith('LORA')) expect([...r.modules_to_save].sort(), name).toEqual(HEADS[arch].flatMap((h) => [`${h}.bias`, `${h}.weight`]).sort());
        const ri = await verify({ model: inline, adapter });
        expect(numbers(r), name).toEqual(numbers(ri));

        // q8: the plugin on model_quantized.onnx (+ its own side file) against the fp32 merge.
        const q = await verify({ model: ext, adapter, dtype: 'q8' });
        expect(q.dtype).toBe('q8');
        expect(q.base_max_abs_diff, name).toBe(0);
        expect(q.max_abs_diff, name).toBeLessThanOrEqual(5e-2); // the CLI's q8 tolerance: quantization error included
        expect(q.adapter_effect, name).toBeGreaterThan(1e-3);
        const qi = await verify({ model: inline, adapter, dtype: 'q8' });
        expect(numbers(q), name).toEqual(numbers(qi));
        console.log(JSON.stringify({ arch, adapter: name, fp32: numbers(r), q8: numbers(q) }));
      }
    });
  });
}

/** The bytes of an initializer, wherever they are stored. */
function bytesOf(t: TensorProto, files: ReadonlyMap<string, Uint8Array>): Uint8Array {
  if (isExternal(t)) return readExternalBytes(t, files);
  if (t.rawData && t.rawData.length > 0) return Uint8Array.from(t.rawData);
  return new Uint8Array(Float32Array.from(t.floatData ?? []).buffer);
}

describe('mergeModel on external data', () => {
  test('merged weights equal the inline merge byte for byte; merged ones inline, untouched ones still references', async () => {
    const ext = makeModel({ arch: 'distilbert', size: 'tiny', numLabels: LABELS, seed: SEED, externalData: true });
    const inl = makeModel({ arch: 'distilbert', size: 'tiny', numLabels: LABELS, seed: SEED });
    const adapter = headLora('distilbert', ext);
    const updates = await materializeAdapter(adapter);
    const files = new Map([['model.onnx_data', ext.files.get('onnx/model.onnx_data')!]]);
    const extIn = onnx.ModelProto.decode(ext.files.get('onnx/model.onnx')!);
    const mergedExt = onnx.ModelProto.decode(mergeModel(ext.files.get('onnx/model.onnx')!, updates, adapter.extras, { external: files }));
    const mergedInl = onnx.ModelProto.decode(mergeModel(inl.files.get('onnx/model.onnx')!, updates, adapter.extras));
    const before = new Map(extIn.graph!.initializer!.map((t) => [t.name!, t]));
    const want = new Map(mergedInl.graph!.initializer!.map((t) => [t.name!, t]));
    const got = mergedExt.graph!.initializer!;
    expect(got.map((t) => t.name)).toEqual([...want.keys()]);
    let inlined = 0;
    let kept = 0;
    for (const t of got) {
      const name = t.name!;
      const b = bytesOf(t, files);
      expect(b.length, name).toBeGreaterThan(0);
      expect(Buffer.from(b).equals(Buffer.from(bytesOf(want.get(name)!, new Map()))), name).toBe(true);
      const old = before.get(name)!;
      const changed = !Buffer.from(b).equals(Buffer.from(bytesOf(old, files)));
      if (!isExternal(old)) continue;
      if (changed) {
        // The merged values are inline and no reference is left that ORT could load W0 through.
        expect(t.dataLocation ?? 0, name).toBe(onnx.TensorProto.DataLocation.DEFAULT);
        expect(t.externalData ?? [], name).toEqual([]);
        inlined++;
      } else {
        // Untouched: still the same reference into the unchanged side file.
        expect(isExternal(t), name).toBe(true);
        expect(t.externalData, name).toEqual(old.externalData);
        kept++;
      }
    }
    // Every LoRA target and pre_classifier.weight (modules_to_save) was external and is now inline;
    // the rest (embeddings, the untargeted linears) stay references.
    const external = extIn.graph!.initializer!.filter((t) => isExternal(t)).length;
    expect(inlined).toBe(updates.length + 1);
    expect(kept).toBe(external - inlined);
    expect(kept).toBeGreaterThanOrEqual(2);
  });

  test('external weights need their side files, checked by the same reader as the plugin', async () => {
    const ext = makeModel({ arch: 'bert', size: 'tiny', numLabels: LABELS, seed: SEED, externalData: true });
    const updates = await materializeAdapter(createAdapter({ method: 'LORA', shape: ext.shape, nonzero: true, seed: 1 }));
    const bytes = ext.files.get('onnx/model.onnx')!;
    expect(() => mergeModel(bytes, updates)).toThrow(/offline merge: weight onnx::MatMul_\d+ is ONNX external data; pass its side files/);
    expect(() => mergeModel(bytes, updates, new Map(), { external: new Map() })).toThrow(PluginError);
    expect(() => mergeModel(bytes, updates, new Map(), { external: new Map() })).toThrow(/file model.onnx_data was not provided/);
    const short = ext.files.get('onnx/model.onnx_data')!.subarray(0, 100);
    expect(() => mergeModel(bytes, updates, new Map(), { external: new Map([['model.onnx_data', short]]) })).toThrow(/lie beyond the end of model.onnx_data/);
  });
});

test('verify refuses an external data location outside the model folder before running any model', async () => {
  const model = path.join(root, 'bert-escape');
  const gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: LABELS, seed: SEED, externalData: true }, model);
  const m = onnx.ModelProto.decode(gen.files.get('onnx/model.onnx')!);
  const t = m.graph!.initializer!.find((x) => isExternal(x))!;
  t.externalData = (t.externalData ?? []).map((e) => (e.key === 'location' ? onnx.StringStringEntryProto.create({ key: 'location', value: '../../bert-inline/onnx/model.onnx_data' }) : e));
  await writeFile(path.join(model, 'onnx', 'model.onnx'), onnx.ModelProto.encode(m).finish());
  const adapter = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 1 });
  await expect(verify({ model, adapter })).rejects.toThrow(PluginError);
  await expect(verify({ model, adapter })).rejects.toThrow(/location "\.\.\/\.\.\/bert-inline\/onnx\/model\.onnx_data" leaves the model folder/);
});
