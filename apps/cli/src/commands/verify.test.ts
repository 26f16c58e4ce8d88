import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAdapter, saveAdapter } from '@tensorpeft/core';
import { writeModel } from '@tensorpeft/model-gen';
import { UsageError } from '../args.js';
import { verifyCommand } from './verify.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'tensorpeft-verify-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

async function run(...argv: string[]): Promise<{ code: number; out: string }> {
  let out = '';
  const code = await verifyCommand(argv, { out: (t) => (out += `${t}\n`), err: () => {} });
  return { code, out };
}

describe('tensorpeft verify', () => {
  it('prints max_abs_diff and base_max_abs_diff for an adapter folder on a model folder', async () => {
    const model = path.join(tmp, 'distilbert');
    const m = await writeModel({ arch: 'distilbert', size: 'tiny', numLabels: 4 }, model);
    const adapterDir = path.join(tmp, 'adapter');
    await saveAdapter(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, config: { target_modules: 'all-linear' } }), adapterDir);
    const r = await run('--model', model, '--adapter', adapterDir);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.ok).toBe(true);
    expect(j.base_max_abs_diff).toBe(0);
    expect(j.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(j.modules).toBe(12);
    const q = JSON.parse((await run('--model', model, '--adapter', adapterDir, '--dtype', 'q8')).out);
    expect(q.base_max_abs_diff).toBe(0);
    // The derived tolerance (plugin's tolerance.ts): three times the q8 model's own error plus the fp32 bound.
    expect(q.dtype_error).toBeGreaterThan(0);
    expect(q.tolerance).toBeGreaterThanOrEqual(3 * q.dtype_error + 1e-4);
    expect(q.ok).toBe(true);
    // Merge mode: merged fp32 weights fed as graph inputs give the offline merge's outputs too.
    const mm = JSON.parse((await run('--model', model, '--adapter', adapterDir, '--mode', 'merge')).out);
    expect(mm.base_max_abs_diff).toBe(0);
    expect(mm.max_abs_diff).toBeLessThanOrEqual(1e-4);
  });

  it('ViT image classifier: synthetic images through its image processor; exact at --graph-optimization basic and by default', async () => {
    const model = path.join(tmp, 'vit');
    const m = await writeModel({ arch: 'vit', size: 'tiny', numLabels: 3, seed: 2 }, model);
    const adapterDir = path.join(tmp, 'vit-adapter');
    // TRAC needs a factorization of the tiny model's 32-wide modules (its defaults cover published sizes).
    await saveAdapter(createAdapter({ method: 'TRAC', shape: m.shape, nonzero: true, seed: 4, config: { tensor_shape: { '32': [2, 4, 4] } } }), adapterDir);
    const r = await run('--model', model, '--adapter', adapterDir, '--graph-optimization', 'basic');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ok: true, input_kind: 'image', images: 3, inputs: 3, texts: 0, base_max_abs_diff: 0, peft_type: 'TRAC', graph_optimization_level: 'basic' });
    expect(j.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(j.adapter_effect).toBeGreaterThan(1e-3);
    // onnxruntime's default level: both graphs fold the last bias Add into SkipLayerNormalization, so
    // still exact with the default --base-tolerance 0; --base-tolerance is passed through.
    const d0 = await run('--model', model, '--adapter', adapterDir);
    expect(d0.code).toBe(0);
    expect(JSON.parse(d0.out)).toMatchObject({ ok: true, base_max_abs_diff: 0, base_tolerance: 0 });
    const d = JSON.parse((await run('--model', model, '--adapter', adapterDir, '--base-tolerance', '1e-6')).out);
    expect(d.ok).toBe(true);
    expect(d.base_tolerance).toBe(1e-6);
    expect(d.base_max_abs_diff).toBe(0);
    const q = JSON.parse((await run('--model', model, '--adapter', adapterDir, '--dtype', 'q8', '--graph-optimization', 'basic')).out);
    expect(q).toMatchObject({ ok: true, dtype: 'q8', base_max_abs_diff: 0 });
    expect(q.tolerance).toBeGreaterThanOrEqual(3 * q.dtype_error);
    await expect(run('--model', model, '--adapter', adapterDir, '--text', 'a cat')).rejects.toThrow(/image model/);
  });

  it('model with ONNX external data (onnx/model.onnx + model.onnx_data): fp32 and q8 pass', async () => {
    const model = path.join(tmp, 'bert-ext');
    const m = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 6, externalData: true }, model);
    expect(m.files.has('onnx/model.onnx_data')).toBe(true);
    const adapterDir = path.join(tmp, 'bert-ext-adapter');
    await saveAdapter(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 2, config: { target_modules: 'all-linear' } }), adapterDir);
    const r = await run('--model', model, '--adapter', adapterDir);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ok: true, base_max_abs_diff: 0, dtype_error: 0 });
    // fp32: 1e-4 · max(1, |reference|) (+ a 2⁻²² · effect rounding term, below 1e-6 here).
    expect(j.tolerance).toBeCloseTo(1e-4 * Math.max(1, j.reference_max_abs), 6);
    expect(j.max_abs_diff).toBeLessThanOrEqual(1e-4);
    expect(j.adapter_effect).toBeGreaterThan(1e-3);
    const q = await run('--model', model, '--adapter', adapterDir, '--dtype', 'q8');
    expect(q.code).toBe(0);
    expect(JSON.parse(q.out)).toMatchObject({ ok: true, dtype: 'q8', base_max_abs_diff: 0 });
  });

  it('q4f16 LLaMA (make-model --dtype): disabled = base exactly, --json reports the derived tolerance; --tolerance overrides it', async () => {
    const model = path.join(tmp, 'llama-q4f16');
    const m = await writeModel({ arch: 'llama', size: 'tiny', seed: 5, quantized: false, dtypes: ['q4f16'] }, model);
    const adapterDir = path.join(tmp, 'llama-adapter');
    await saveAdapter(createAdapter({ method: 'LORA', shape: m.shape, nonzero: true, seed: 1 }), adapterDir);
    const r = await run('--model', model, '--adapter', adapterDir, '--dtype', 'q4f16', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ ok: true, dtype: 'q4f16', base_max_abs_diff: 0 });
    expect(j.dtype_error).toBeGreaterThan(0);
    expect(j.max_abs_diff).toBeLessThanOrEqual(j.tolerance);
    const strict = await run('--model', model, '--adapter', adapterDir, '--dtype', 'q4f16', '--tolerance', '1e-6');
    expect(strict.code).toBe(1);
    expect(JSON.parse(strict.out)).toMatchObject({ ok: false, tolerance: 1e-6, derived_tolerance: j.tolerance });
  });

  it('checks its arguments', async () => {
    await expect(run('--adapter', 'x')).rejects.toThrow(UsageError);
    await expect(run('--model', 'x')).rejects.toThrow(UsageError);
    await expect(run('--model', 'x', '--adapter', 'y', '--dtype', 'fp8')).rejects.toThrow(/--dtype must be one of fp32, fp16, q8, int8, uint8, q4, q4f16, bnb4/);
    await expect(run('--model', 'x', '--adapter', 'y', '--tolerance=-1')).rejects.toThrow(/--tolerance must be/);
    await expect(run('--model', 'x', '--adapter', 'y', '--mode', 'fused')).rejects.toThrow(/--mode must be branch or merge/);
    await expect(run('--model', 'x', '--adapter', 'y', '--graph-optimization', 'max')).rejects.toThrow(/--graph-optimization must be/);
    await expect(run('--model', 'x', '--adapter', 'y', '--base-tolerance', 'tiny')).rejects.toThrow(/--base-tolerance must be/);
  });
});
