import { mkdtemp, mkdir, readFile, rm, writeFile, copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { JsBackend, deltaW } from '../backend/js.js';
import { AdapterFormatError, ConfigError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import '../methods/all.js';
import { loraConfigSchema } from '../methods/lora/config.js';
import { lora } from '../methods/lora/index.js';
import { getMethod, listMethods, registerMethod } from '../methods/registry.js';
import type { AdapterMethod } from '../methods/types.js';
import { buildShape } from '../model/architectures.js';
import { presetNames, presetShape } from '../model/presets.js';
import type { ModelShape } from '../model/shape.js';
import type { Tensor } from '../tensor.js';
import { adapterFromBytes, adapterStats, adapterToFiles, createAdapter, materializeAdapter, type Adapter } from './adapter.js';
import { diffAdapters } from './diff.js';
import { exportToLora } from './export.js';
import { loadAdapter, saveAdapter } from './load.js';
import { MANIFEST_MODULES } from './manifest.js';
import { parseSafetensors, writeSafetensors } from './safetensors.js';

const fixture = (d: string): string => fileURLToPath(new URL(`../../../../fixtures/peft-real/${d}`, import.meta.url));
const DISTIL = fixture('distilbert-lora-emotion');
const GPT2 = fixture('gpt2-lora-tigrinya');

function expectError(fn: () => unknown, cls: new (...a: any[]) => Error, ...parts: string[]): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err, 'expected an error').toBeInstanceOf(cls);
  for (const p of parts) expect((err as Error).message).toContain(p);
  return err as Error;
}
async function expectRejects(p: Promise<unknown>, cls: new (...a: any[]) => Error, ...parts: string[]): Promise<Error> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, 'expected a rejection').toBeInstanceOf(cls);
  for (const q of parts) expect((err as Error).message).toContain(q);
  return err as Error;
}

/** Bitwise equality of two float arrays (fast; vitest's deep equality is slow on big arrays). */
function sameData(x: Float32Array, y: Float32Array | undefined): boolean {
  return y !== undefined && x.length === y.length && Buffer.compare(Buffer.from(x.buffer, x.byteOffset, x.byteLength), Buffer.from(y.buffer, y.byteOffset, y.byteLength)) === 0;
}

function metadataOf(bytes: Uint8Array): Record<string, string> {
  return parseSafetensors(bytes).metadata;
}

/** A LoRA clone that cannot infer its shape from tensors, to exercise manifest and preset lookup. */
const noInfer: AdapterMethod<any> = {
  ...lora,
  peftType: 'XLORA_TEST',
  cliName: 'xlora-test',
  description: 'test-only LoRA without inferShape',
  schema: loraConfigSchema.extend({ peft_type: z.literal('XLORA_TEST') }) as any,
  inferShape: undefined,
};
registerMethod(noInfer);

const tinyBert = (): ModelShape => buildShape('bert', { hiddenSize: 16, numLayers: 2, numHeads: 2, numKvHeads: 2, intermediateSize: 24 }, 'tiny-bert');

describe('real PEFT LoRA fixtures', () => {
  it('distilbert-lora-emotion: modules, counts, modules_to_save', async () => {
    const a = await loadAdapter(DISTIL);
    const s = adapterStats(a);
    expect(a.method.peftType).toBe('LORA');
    expect(s.modules).toBe(12); // 6 layers × q_lin, v_lin
    expect(a.plan.modules.map((m) => m.path)).toContain('distilbert.transformer.layer.5.attention.v_lin');
    expect(s.rank).toBe(8);
    expect(s.trainable).toBe(12 * 8 * (768 + 768));
    expect(s.trainable).toBe(147_456);
    expect(s.frozen).toBe(0);
    expect(s.stored).toBe(s.trainable);
    expect(s.modules_to_save).toEqual([
      { name: 'pre_classifier', params: 768 * 768 + 768 },
      { name: 'classifier', params: 6 * 768 + 6 },
    ]);
    expect([...a.extras.keys()].sort()).toEqual([
      'base_model.model.classifier.bias',
      'base_model.model.classifier.weight',
      'base_model.model.pre_classifier.bias',
      'base_model.model.pre_classifier.weight',
    ]);
    expect(s.base_model_name_or_path).toBe('distilbert-base-uncased');
    expect(s.dtype).toBe('fp32');
    expect(s.bytes).toBe((await readFile(join(DISTIL, 'adapter_model.safetensors'))).length);
    expect(a.config.fan_in_fan_out).toBe(false);
    expect(a.config.task_type).toBe('SEQ_CLS');
    expect(a.source).toBe(DISTIL);
  });

  it('gpt2-lora-tigrinya: modules, counts, fan_in_fan_out', async () => {
    const a = await loadAdapter(GPT2);
    const s = adapterStats(a);
    expect(s.modules).toBe(36); // 12 × {attn.c_attn, attn.c_proj, mlp.c_proj}
    const types = new Set(a.plan.modules.map((m) => m.type));
    expect([...types].sort()).toEqual(['attn.c_attn', 'attn.c_proj', 'mlp.c_proj']);
    expect(s.trainable).toBe(12 * 8 * (768 + 2304) + 12 * 8 * (768 + 768) + 12 * 8 * (3072 + 768));
    expect(s.modules_to_save).toEqual([]);
    expect(a.config.fan_in_fan_out).toBe(true);
    expect(a.plan.modules.every((m) => m.fanInFanOut)).toBe(true);
    expect(a.config.task_type).toBe('CAUSAL_LM');
  });

  for (const dir of [DISTIL, GPT2]) {
    it(`re-saves ${dir.split('/').pop()} byte-identically and keeps every config field`, async () => {
      const a = await loadAdapter(dir);
      const orig = new Uint8Array(await readFile(join(dir, 'adapter_model.safetensors')));
      const { configJson, safetensors } = adapterToFiles(a);
      // LoRA is self-describing: no manifest, PEFT's exact layout and metadata.
      expect(metadataOf(safetensors)).toEqual({ format: 'pt' });
      expect(Buffer.compare(Buffer.from(safetensors), Buffer.from(orig))).toBe(0);
      const origCfg = JSON.parse(await readFile(join(dir, 'adapter_config.json'), 'utf8')) as Record<string, unknown>;
      const cfg = JSON.parse(configJson) as Record<string, unknown>;
      for (const [k, v] of Object.entries(origCfg)) expect(cfg[k], k).toEqual(v);
      const b = adapterFromBytes({ config: configJson, safetensors });
      for (const [k, t] of a.params) expect(sameData(t.data, b.params.get(k)?.data), k).toBe(true);
      for (const [k, t] of a.extras) expect(sameData(t.data, b.extras.get(k)?.data), k).toBe(true);
    });
  }
});

describe('adapter round trips', () => {
  const shape = presetShape('distilbert-base');

  it('createAdapter fills defaults from the shape', () => {
    const a = createAdapter({ method: 'lora', shape, nonzero: true, seed: 3 });
    expect(a.config.target_modules).toEqual(['q_lin', 'v_lin']);
    expect(a.config.base_model_name_or_path).toBe('distilbert/distilbert-base-uncased');
    expect(a.plan.modules.length).toBe(12);
    expect([...a.params.keys()]).toEqual(a.plan.params.map((p) => p.key));
    const B = a.params.get('base_model.model.distilbert.transformer.layer.0.attention.q_lin.lora_B.weight')!;
    expect(B.data.some((v) => v !== 0)).toBe(true); // nonzero
    const z = createAdapter({ method: lora, shape, config: { r: 4, target_modules: ['k_lin'] } });
    expect(z.plan.rank).toBe(4);
    expect(z.plan.modules.every((m) => m.path.endsWith('k_lin'))).toBe(true);
    expect(z.params.get(z.plan.params[1]!.key)!.data.every((v) => v === 0)).toBe(true);
    expect(z.config.fan_in_fan_out).toBeUndefined();
    // GPT-2 Conv1D targets: fan_in_fan_out recorded as PEFT does, and the LoRA file stays PEFT-plain.
    const g = createAdapter({ method: 'lora', shape: presetShape('gpt2'), config: { target_modules: ['c_attn'] } });
    expect(g.config.fan_in_fan_out).toBe(true);
    expect(metadataOf(adapterToFiles(g).safetensors)).toEqual({ format: 'pt' });
  });

  it('fp32 is exact, fp16/bf16 within their rounding, stats bytes = file size', () => {
    const a = createAdapter({ method: 'lora', shape, nonzero: true, seed: 1 });
    for (const [dtype, tol] of [['fp32', 0], ['fp16', 2 ** -11], ['bf16', 2 ** -8]] as const) {
      const files = adapterToFiles(a, { dtype });
      expect(metadataOf(files.safetensors)).toEqual({ format: 'pt' });
      const b = adapterFromBytes({ config: files.configJson, safetensors: files.safetensors });
      expect(b.dtype).toBe(dtype);
      expect(adapterStats(b).bytes).toBe(files.safetensors.length);
      expect(b.plan.params.map((p) => p.key)).toEqual(a.plan.params.map((p) => p.key));
      for (const [k, t] of a.params) {
        const u = b.params.get(k)!;
        expect(u.shape).toEqual(t.shape);
        if (tol === 0) expect(sameData(t.data, u.data)).toBe(true);
        else {
          let worst = 0; // error beyond the rounding bound (0 when every element is within it)
          for (let i = 0; i < t.data.length; i++) worst = Math.max(worst, Math.abs(u.data[i]! - t.data[i]!) - (Math.abs(t.data[i]!) * tol + 2 ** -24));
          expect(worst, k).toBeLessThanOrEqual(0);
        }
      }
    }
    const s16 = adapterStats({ ...a, dtype: 'fp16' });
    expect(s16.bytes).toBe(adapterToFiles(a, { dtype: 'fp16' }).safetensors.length);
  });

  it('saveAdapter + loadAdapter on disk', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tpeft-io-'));
    try {
      const a = createAdapter({ method: 'lora', shape, nonzero: true, dtype: 'bf16' });
      await saveAdapter(a, join(dir, 'out'));
      const b = await loadAdapter(join(dir, 'out'));
      expect(b.dtype).toBe('bf16');
      expect(adapterStats(b)).toEqual({ ...adapterStats(a) });
      // A path to one of the files works too.
      const c = await loadAdapter(join(dir, 'out', 'adapter_config.json'));
      expect(c.plan.modules.length).toBe(12);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a method without inferShape gets a manifest; shape comes back from it', async () => {
    const a = createAdapter({ method: 'XLORA_TEST', shape: presetShape('gpt2'), config: { target_modules: ['c_attn', 'c_proj'] }, nonzero: true });
    const files = adapterToFiles(a);
    const meta = metadataOf(files.safetensors);
    expect(meta.format).toBe('pt');
    const mods = JSON.parse(meta[MANIFEST_MODULES]!) as Record<string, number[]>;
    expect(Object.keys(mods).length).toBe(36);
    expect(mods['transformer.h.0.attn.c_attn']).toEqual([768, 2304, 1]);
    expect(JSON.parse(meta['tensorpeft.model']!)).toEqual({ model_type: 'gpt2', hidden_size: 768, num_layers: 12, num_heads: 12, num_kv_heads: 12, intermediate_size: 3072 });
    const b = adapterFromBytes({ config: files.configJson, safetensors: files.safetensors });
    expect(b.shape.modelType).toBe('gpt2');
    expect(b.shape.numHeads).toBe(12);
    expect(b.plan.modules).toEqual(a.plan.modules);
    for (const [k, t] of a.params) expect(sameData(t.data, b.params.get(k)?.data), k).toBe(true);
    expect(b.plan.numLayers).toBe(12);
  });

  it('without a manifest the shape comes from a preset matching base_model_name_or_path', () => {
    const a = createAdapter({ method: 'XLORA_TEST', shape, nonzero: true });
    const bare = writeSafetensors(a.params, { metadata: { format: 'pt' } });
    const cfg = { ...a.config, base_model_name_or_path: 'distilbert-base-uncased' };
    const b = adapterFromBytes({ config: cfg, safetensors: bare });
    expect(b.shape.modelType).toBe('distilbert');
    expect(b.plan.modules.length).toBe(12);
    const none = { ...a.config, base_model_name_or_path: 'someone/unknown-model' };
    expectError(
      () => adapterFromBytes({ config: none, safetensors: bare, source: 'dir' }),
      AdapterFormatError,
      'cannot tell the model shape',
      'dir/adapter_model.safetensors',
      'someone/unknown-model',
    );
    // An explicit shape always wins.
    expect(adapterFromBytes({ config: none, safetensors: bare, shape }).plan.modules.length).toBe(12);
  });

  it('every registered method round-trips through the files (method-generic)', async () => {
    const tried: string[] = [];
    for (const m of listMethods()) {
      for (const preset of ['roberta-base', 'gpt2', 'llama2-7b']) {
        let a: Adapter;
        try {
          a = createAdapter({ method: m, shape: presetShape(preset), nonzero: true, seed: 5 });
        } catch {
          continue; // this method's defaults do not fit this model
        }
        const files = adapterToFiles(a);
        const b = adapterFromBytes({ config: files.configJson, safetensors: files.safetensors });
        // Same tensors; the order may differ when the shape is inferred from the file's (sorted) keys.
        const keyed = (x: Adapter): string[] => x.plan.params.map((p) => `${p.key} ${p.kind} [${p.shape}]`).sort();
        expect(keyed(b), `${m.peftType} on ${preset}`).toEqual(keyed(a));
        if (metadataOf(files.safetensors)[MANIFEST_MODULES] !== undefined) {
          // Shape from the manifest: the model facts come back too.
          expect(b.plan.numHeads).toBe(a.plan.numHeads);
          expect(b.plan.numLayers).toBe(a.plan.numLayers);
        }
        for (const [k, t] of a.params) expect(sameData(t.data, b.params.get(k)?.data), k).toBe(true);
        if (a.plan.rank <= 32 && preset !== 'llama2-7b') {
          // Export to plain LoRA preserves ΔW (factored comparison keeps this cheap).
          const e = await exportToLora(b);
          expect(e.config.peft_type).toBe('LORA');
          expect((await diffAdapters(a, e, undefined, { dense: false })).rel_fro, m.peftType).toBeLessThan(1e-6);
        }
        tried.push(`${m.peftType}/${preset}`);
        break;
      }
    }
    expect(tried).toContain('LORA/roberta-base');
    expect(presetNames().length).toBeGreaterThan(0);
  });
});

describe('export to LoRA and diff', () => {
  it('exportToLora of a LoRA adapter has the same ΔW (rsLoRA scale folded into B)', async () => {
    const shape = presetShape('distilbert-base');
    const a = createAdapter({ method: 'lora', shape, nonzero: true, config: { r: 4, lora_alpha: 12, use_rslora: true } });
    const e = await exportToLora(a);
    expect(e.config.peft_type).toBe('LORA');
    expect(e.config.r).toBe(4);
    expect(e.config.lora_alpha).toBe(4);
    expect(e.config.use_rslora).toBe(false);
    // Module names as a PEFT user writes them, selecting exactly the same modules.
    expect(e.config.target_modules).toEqual(['q_lin', 'v_lin']);
    expect(e.plan.modules.map((m) => m.path)).toEqual(a.plan.modules.map((m) => m.path));
    const d = await diffAdapters(a, e);
    expect(d.modules).toBe(12);
    expect(d.rel_fro).toBeLessThan(1e-6);
    expect(d.max_abs).toBeLessThan(1e-6);
    const self = await diffAdapters(a, a);
    expect(self.rel_fro).toBe(0);
    expect(self.max_abs).toBe(0);
    // The factored form agrees without forming ΔW (QR, no cancellation: far below float32 rounding).
    const f = await diffAdapters(a, e, undefined, { dense: false });
    expect(f.rel_fro).toBeLessThan(1e-6);
    expect((await diffAdapters(a, a, undefined, { dense: false })).rel_fro).toBeLessThan(1e-13);
  });

  it('exports the real gpt2 and distilbert adapters, keeping fan_in_fan_out, task_type, heads', async () => {
    for (const dir of [GPT2, DISTIL]) {
      const a = await loadAdapter(dir);
      const e = await exportToLora(a, new JsBackend());
      expect(e.config.fan_in_fan_out).toBe(a.config.fan_in_fan_out);
      expect(e.config.task_type).toBe(a.config.task_type);
      expect(e.config.base_model_name_or_path).toBe(a.config.base_model_name_or_path);
      expect(e.config.modules_to_save).toEqual(a.config.modules_to_save);
      expect([...e.extras.keys()]).toEqual([...a.extras.keys()]);
      const files = adapterToFiles(e);
      expect(metadataOf(files.safetensors)).toEqual({ format: 'pt' });
      const back = adapterFromBytes({ config: files.configJson, safetensors: files.safetensors });
      expect(adapterStats(back).modules_to_save).toEqual(adapterStats(a).modules_to_save);
      const d = await diffAdapters(a, back);
      expect(d.rel_fro).toBeLessThan(1e-6);
      expect(adapterStats(back).trainable).toBe(adapterStats(a).trainable);
    }
  });

  it('exports a non-LoRA method to a LORA adapter', async () => {
    const a = createAdapter({ method: 'XLORA_TEST', shape: tinyBert(), nonzero: true, config: { r: 3, lora_alpha: 6 } });
    const e = await exportToLora(a);
    expect(e.method).toBe(getMethod('LORA'));
    expect((await diffAdapters(a, e)).rel_fro).toBeLessThan(1e-6);
  });

  it('diff matches a dense computation', async () => {
    const shape = tinyBert();
    const a = createAdapter({ method: 'lora', shape, nonzero: true, seed: 1, config: { r: 3 } });
    const b = createAdapter({ method: 'lora', shape, nonzero: true, seed: 2, config: { r: 5, lora_alpha: 2 } });
    const ua = await materializeAdapter(a);
    const ub = await materializeAdapter(b);
    let d2 = 0;
    let a2 = 0;
    let maxAbs = 0;
    ua.forEach((u, i) => {
      const wa = deltaW(u);
      const wb = deltaW(ub[i]!);
      for (let j = 0; j < wa.length; j++) {
        d2 += (wa[j]! - wb[j]!) ** 2;
        a2 += wa[j]! ** 2;
        maxAbs = Math.max(maxAbs, Math.abs(wa[j]! - wb[j]!));
      }
    });
    const d = await diffAdapters(a, b);
    expect(d.modules).toBe(4);
    expect(d.rel_fro).toBeGreaterThan(0.1);
    expect(Math.abs(d.rel_fro - Math.sqrt(d2 / a2))).toBeLessThan(1e-6 * d.rel_fro);
    expect(d.max_abs).toBe(maxAbs);
    // Factored form: same rel_fro from the factors only, no max_abs.
    const f = await diffAdapters(a, b, undefined, { dense: false });
    expect(Math.abs(f.rel_fro - d.rel_fro)).toBeLessThan(1e-6 * d.rel_fro);
    expect(f.max_abs).toBeNaN();
    expect((await diffAdapters(a, a, undefined, { dense: false })).rel_fro).toBeLessThan(1e-13);
  });

  it('modules must match by path', async () => {
    const shape = tinyBert();
    const a = createAdapter({ method: 'lora', shape, nonzero: true });
    const b = createAdapter({ method: 'lora', shape, nonzero: true, config: { target_modules: ['query', 'key'] } });
    await expectRejects(diffAdapters(a, b), ShapeMismatchError, 'bert.encoder.layer.0.attention.self.value');
  });
});

describe('bad adapter input', () => {
  let distilCfg: string;
  let distilSt: Uint8Array;
  beforeAll(async () => {
    distilCfg = await readFile(join(DISTIL, 'adapter_config.json'), 'utf8');
    distilSt = new Uint8Array(await readFile(join(DISTIL, 'adapter_model.safetensors')));
  });
  const SRC = 'my/adapter';
  const CFG = 'my/adapter/adapter_config.json';
  const ST = 'my/adapter/adapter_model.safetensors';

  function withTensors(edit: (t: Map<string, Tensor>) => void): Uint8Array {
    const p = parseSafetensors(distilSt);
    const m = new Map<string, Tensor>([...p.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
    edit(m);
    return writeSafetensors(m, { metadata: p.metadata, allowNonFinite: true });
  }

  it('malformed JSON', () => {
    const e = expectError(() => adapterFromBytes({ config: distilCfg.slice(0, 200), safetensors: distilSt, source: SRC }), ConfigError, CFG, 'malformed JSON');
    expect((e as ConfigError).details.file).toBe(CFG);
    expectError(() => adapterFromBytes({ config: new Uint8Array([0x7b, 0xff]), safetensors: distilSt, source: SRC }), ConfigError, CFG, 'UTF-8');
    expectError(() => adapterFromBytes({ config: '[1]', safetensors: distilSt, source: SRC }), ConfigError, CFG, 'expected object', 'found array');
  });

  it('missing and unknown peft_type', () => {
    const cfg = JSON.parse(distilCfg) as Record<string, unknown>;
    expectError(() => adapterFromBytes({ config: { ...cfg, peft_type: undefined }, safetensors: distilSt, source: SRC }), ConfigError, CFG, 'no peft_type', 'field peft_type', 'LORA');
    expectError(() => adapterFromBytes({ config: { ...cfg, peft_type: 'FOO' }, safetensors: distilSt, source: SRC }), ConfigError, CFG, 'unknown peft_type', 'field peft_type', 'found FOO', 'LORA');
  });

  it('schema errors name the file and field', () => {
    const cfg = JSON.parse(distilCfg) as Record<string, unknown>;
    expectError(() => adapterFromBytes({ config: { ...cfg, r: -8 }, safetensors: distilSt, source: SRC }), ConfigError, CFG, 'field r', 'found -8');
  });

  it('truncated safetensors', () => {
    expectError(() => adapterFromBytes({ config: distilCfg, safetensors: distilSt.slice(0, distilSt.length >> 1), source: SRC }), AdapterFormatError, ST, 'past the end');
  });

  it('NaN in a tensor', () => {
    const key = 'base_model.model.distilbert.transformer.layer.2.attention.v_lin.lora_B.weight';
    const st = withTensors((m) => {
      m.get(key)!.data[17] = NaN;
    });
    expectError(() => adapterFromBytes({ config: distilCfg, safetensors: st, source: SRC }), NonFiniteError, ST, `tensor ${key}`, 'index 17');
    expect(adapterFromBytes({ config: distilCfg, safetensors: st, allowNonFinite: true }).params.get(key)!.data[17]).toBeNaN();
  });

  it('wrong tensor shape vs plan', () => {
    const key = 'base_model.model.distilbert.transformer.layer.1.attention.q_lin.lora_B.weight';
    const st = withTensors((m) => m.set(key, { shape: [768, 4], data: new Float32Array(768 * 4) }));
    expectError(() => adapterFromBytes({ config: distilCfg, safetensors: st, source: SRC }), ShapeMismatchError, ST, `tensor ${key}`, 'expected [768,8]', 'found [768,4]');
    // Against an explicit model shape.
    const keyA = 'base_model.model.distilbert.transformer.layer.0.attention.v_lin.lora_A.weight';
    const st2 = withTensors((m) => m.set(keyA, { shape: [8, 700], data: new Float32Array(8 * 700) }));
    expectError(
      () => adapterFromBytes({ config: distilCfg, safetensors: st2, source: SRC, shape: presetShape('distilbert-base') }),
      ShapeMismatchError,
      ST,
      `tensor ${keyA}`,
      'expected [8,768]',
      'found [8,700]',
    );
  });

  it('missing tensor and unknown tensor', () => {
    const key = 'base_model.model.distilbert.transformer.layer.3.attention.q_lin.lora_A.weight';
    const st = withTensors((m) => m.delete(key));
    // Shape inferred from the tensors: the module is gone, so its lora_B is an orphan.
    expectError(() => adapterFromBytes({ config: distilCfg, safetensors: st, source: SRC }), AdapterFormatError, ST, `tensor ${key.replace('lora_A', 'lora_B')}`, 'neither part of the LORA plan');
    const st2 = withTensors((m) => m.set('base_model.model.mystery.weight', { shape: [2], data: new Float32Array(2) }));
    expectError(() => adapterFromBytes({ config: distilCfg, safetensors: st2, source: SRC }), AdapterFormatError, ST, 'tensor base_model.model.mystery.weight', 'modules_to_save', 'found [2]');
    const st3 = withTensors((m) => m.delete(key));
    expectError(
      () => adapterFromBytes({ config: distilCfg, safetensors: st3, source: SRC, shape: presetShape('distilbert-base') }),
      ShapeMismatchError,
      ST,
      `tensor ${key}`,
      'found nothing',
    );
  });

  describe('files on disk', () => {
    let dir: string;
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), 'tpeft-bad-'));
    });
    afterAll(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('missing files are named', async () => {
      await mkdir(join(dir, 'only-config'));
      await copyFile(join(DISTIL, 'adapter_config.json'), join(dir, 'only-config', 'adapter_config.json'));
      await expectRejects(loadAdapter(join(dir, 'only-config')), AdapterFormatError, 'not found', join(dir, 'only-config', 'adapter_model.safetensors'));
      await expectRejects(loadAdapter(join(dir, 'nope')), AdapterFormatError, 'not found', join(dir, 'nope'));
    });

    it('malformed config on disk names the file', async () => {
      await mkdir(join(dir, 'badjson'));
      await writeFile(join(dir, 'badjson', 'adapter_config.json'), '{"peft_type": "LORA",');
      await copyFile(join(DISTIL, 'adapter_model.safetensors'), join(dir, 'badjson', 'adapter_model.safetensors'));
      await expectRejects(loadAdapter(join(dir, 'badjson')), ConfigError, join(dir, 'badjson', 'adapter_config.json'), 'malformed JSON');
    });

    it('maxBytes applies to local files', async () => {
      await expectRejects(loadAdapter(DISTIL, { maxBytes: 100_000 }), AdapterFormatError, 'size limit', 'adapter_model.safetensors');
    });
  });
});
