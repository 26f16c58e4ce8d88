/**
 * GPU-fed adapters on an fp16 graph (gpu-half.ts), in Node: the registry asks kernels-wgsl's real
 * WebGpuBackend (Dawn; SwiftShader here) for binary16 results and feeds them as
 * `Tensor.fromGpuBuffer(…, { dataType: 'float16' })`. onnxruntime-node cannot read a GPUBuffer, so
 * its session handler is wrapped to do what ORT-web's WebGPU EP does with such an input — read the
 * buffer's bytes as the tensor's data — before running the fp16 BERT on the CPU. (ORT-web's WebGPU
 * EP itself cannot run fp16 graphs on SwiftShader, which lacks `shader-f16`; that ORT reads these
 * buffers as the same binary16 values is kernels-wgsl's browser.test.ts.)
 *
 * GPU-fed vs CPU-fed: both feed binary16 factors, rounded from float32 factors that differ in the
 * last bits (WGSL kernels vs the CPU backend), so an element may land on the adjacent binary16 value:
 * each within one binary16 ulp (2u relative, u = 2⁻¹¹), the branch (x·A′)·(s·B′ᵀ) within 2·2u
 * relative, and to first order the outputs within 4u·effect, effect = max |adapter − base| there.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, materializeAdapter } from '@tensorpeft/core';
import { SWIFTSHADER_ICD, WebGpuBackend } from '@tensorpeft/kernels-wgsl';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { gpuForSessions } from './gpu-half.js';
import type { GpuMaterializer } from './ort-feeds.js';
import { from_pretrained } from './plugin.js';
import { BRANCH_ROUNDOFF } from './tolerance.js';

let root: string;
let gen: GeneratedModel;
let gpu: WebGpuBackend;
const ID = 'bert-tiny-fp16-gpu';

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-gpu-half-'));
  gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 6, quantized: false, dtypes: ['fp16'] }, path.join(root, ID));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
  if (!process.env.VK_ICD_FILENAMES && !process.env.VK_DRIVER_FILES && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
  gpu = await WebGpuBackend.create();
}, 60_000);
afterAll(async () => {
  gpu?.destroy();
  await rm(root, { recursive: true, force: true });
});

interface OrtTensorLike {
  type: string;
  dims: readonly number[];
  location: string;
  gpuBuffer?: GPUBuffer;
  constructor: new (type: 'float16', data: Uint16Array, dims: readonly number[]) => OrtTensorLike;
}

/** Wrap the session handler: GPU-buffer inputs are read back (as the WebGPU EP reads them) and recorded. */
function readGpuFeeds(session: unknown, seen: Array<{ name: string; type: string; dims: readonly number[] }>): void {
  const handler = (session as { handler: { run(feeds: Record<string, OrtTensorLike>, ...rest: unknown[]): Promise<unknown> } }).handler;
  const run = handler.run.bind(handler);
  handler.run = async (feeds, ...rest) => {
    const out: Record<string, OrtTensorLike> = { ...feeds };
    for (const [name, t] of Object.entries(feeds)) {
      if (t.location !== 'gpu-buffer') continue;
      seen.push({ name, type: t.type, dims: [...t.dims] });
      if (t.type !== 'float16') throw new Error(`${name}: a ${t.type} GPU buffer fed to an fp16 graph`);
      const len = t.dims.reduce((a, d) => a * d, 1);
      out[name] = new t.constructor('float16', await gpu.readHalfBuffer(t.gpuBuffer!, len), t.dims);
    }
    return run(out, ...rest);
  };
}

describe('GPU-fed adapters on fp16 graphs', () => {
  test('binary16 GPU buffers from kernels-wgsl: same logits as CPU-fed within 4u·effect; 2 bytes an element', async () => {
    const tok = await AutoTokenizer.from_pretrained(ID);
    const inputs = tok(['i feel happy today', 'another text'], { padding: true }) as Record<string, unknown>;
    // fp16 branch inputs, as a WebGPU session gets them (Node's default device, cpu, gets fp32 branches:
    // branch-dtype.ts); per-module inputs, as `webgpu` gives (GPU-fed adapters cannot feed fused siblings).
    const model = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp16', branch_dtype: 'activation', fuse_siblings: false });
    const seen: Array<{ name: string; type: string; dims: readonly number[] }> = [];
    readGpuFeeds((model as unknown as { sessions: Record<string, unknown> }).sessions['model'], seen);
    const run = async () => Array.from((await (model as unknown as (x: unknown) => Promise<{ logits: { data: Float32Array } }>)({ ...inputs })).logits.data);
    const base = await run();
    const a = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 8 });
    await model.load_adapter('cpu', a);
    const info = await model.load_adapter('gpu', a, { gpu });
    model.set_adapter('cpu');
    const cpu = await run();
    expect(seen).toEqual([]);
    model.set_adapter('gpu');
    const fed = await run();
    const updates = await materializeAdapter(a);
    // Every branch input was a float16 GPU buffer of the module's shape.
    expect(seen.length).toBe(2 * updates.length);
    for (const u of updates) {
      const mine = seen.filter((s) => s.name.startsWith('tensorpeft.') && s.name.includes(u.path.split('.').slice(-3).join('.')));
      expect(mine.map((s) => s.dims)).toEqual(expect.arrayContaining([[u.n, u.rho], [u.rho, u.m]]));
    }
    expect(info.gpu_bytes).toBe(updates.reduce((t, u) => t + Math.max(4, Math.ceil((u.n * u.rho) / 2) * 4) + Math.max(4, Math.ceil((u.m * u.rho) / 2) * 4), 0));
    const diff = (x: number[], y: number[]) => x.reduce((d, v, i) => Math.max(d, Math.abs(v - y[i]!)), 0);
    const effect = diff(cpu, base);
    const bound = 4 * BRANCH_ROUNDOFF.float16 * effect;
    console.log(JSON.stringify({ adapter_effect: effect, gpu_vs_cpu_max_abs_diff: diff(fed, cpu), bound }));
    expect(effect).toBeGreaterThan(1e-3);
    expect(diff(fed, cpu)).toBeLessThanOrEqual(bound);
    model.disable_adapters();
    expect(await run()).toEqual(base);
    model.unload_adapter('gpu');
  }, 60_000);

  test('the materializer is asked for float16 only when every session declares float16 branch inputs', async () => {
    const calls: unknown[] = [];
    const g: GpuMaterializer = {
      materializeToGpu: async (_jobs, opts) => {
        calls.push(opts);
        return [];
      },
    };
    expect(gpuForSessions(g, new Set(['float32']))).toBe(g);
    expect(gpuForSessions(undefined, new Set(['float16']))).toBeUndefined();
    await gpuForSessions(g, new Set(['float16']))!.materializeToGpu([] as never, { foldScale: true, transposeB: true });
    expect(calls).toEqual([{ foldScale: true, transposeB: true, dtype: 'float16' }]);
    expect(() => gpuForSessions(g, new Set(['float16', 'float32']))).toThrow(/float32 and float16/);
  });
});
