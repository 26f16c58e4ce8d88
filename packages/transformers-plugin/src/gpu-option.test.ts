/**
 * The GPU-fed adapter option in Node (the end-to-end run on ORT-web's WebGPU EP is webgpu.test.ts):
 * the jobs handed to `materializeToGpu` are exactly core's, buffers are released on unload /
 * replace, and the `webgpu` attach mode (ρ = 1 zero feeds instead of empty ones) keeps the base
 * output bit for bit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter } from '@tensorpeft/core';
import { writeModel, type GeneratedModel } from '@tensorpeft/model-gen';
import { from_pretrained, type GpuMaterializer, type GpuModuleUpdateLike } from './plugin.js';

let root: string;
let gen: GeneratedModel;
const ID = 'bert-tiny-gpu';

beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'tp-gpu-'));
  gen = await writeModel({ arch: 'bert', size: 'tiny', numLabels: 3, seed: 5 }, path.join(root, ID));
  env.allowRemoteModels = false;
  env.localModelPath = `${root}/`;
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/** A stand-in for kernels-wgsl's WebGpuBackend: records the calls, hands out fake buffers. */
function fakeGpu(): GpuMaterializer & { calls: Array<{ jobs: unknown; opts: unknown }>; released: number; made: number } {
  const g = {
    calls: [] as Array<{ jobs: unknown; opts: unknown }>,
    released: 0,
    made: 0,
    async materializeToGpu(jobs: never, opts: { foldScale: boolean; transposeB: boolean }): Promise<GpuModuleUpdateLike[]> {
      g.calls.push({ jobs, opts });
      return (jobs as Array<{ path: string; n: number; m: number; rho: number }>).map((j) => {
        g.made++;
        return { path: j.path, n: j.n, m: j.m, rho: j.rho, A: { fake: 'A' }, B: { fake: 'B' }, release: () => void g.released++ };
      });
    },
  };
  return g;
}

describe('GPU-fed adapters ({ gpu }, { webgpu })', () => {
  test('materializeToGpu gets core’s jobs with foldScale/transposeB; buffers released on replace and unload', async () => {
    const model = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32' });
    const gpu = fakeGpu();
    const a = createAdapter({ method: 'TENSLORA', shape: gen.shape, nonzero: true, seed: 2 });
    const info = await model.load_adapter('g', a, { gpu });
    expect(gpu.calls.length).toBe(1);
    expect(gpu.calls[0]!.opts).toEqual({ foldScale: true, transposeB: true });
    expect(gpu.calls[0]!.jobs).toEqual(a.method.jobs(a.config, a.plan, a.params));
    expect(info.modules).toBe(gpu.made);
    expect(info.bytes).toBe(0); // nothing held on the CPU
    await model.load_adapter('g', a, { gpu, replace: true });
    expect(gpu.released).toBe(info.modules);
    model.unload_adapter('g');
    expect(gpu.released).toBe(2 * info.modules);
  });

  test('webgpu mode: ρ = 1 zero feeds give the base output bit for bit; adapters unchanged', async () => {
    const tok = await AutoTokenizer.from_pretrained(ID);
    const inputs = tok(['i feel happy today', 'another text'], { padding: true }) as Record<string, unknown>;
    const run = async (m: unknown) => Float32Array.from((await (m as (x: unknown) => Promise<{ logits: { data: Float32Array } }>)({ ...inputs })).logits.data);
    const plain = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32' });
    const padded = await from_pretrained(env, AutoModelForSequenceClassification, ID, { dtype: 'fp32', webgpu: true });
    expect(await run(padded)).toEqual(await run(plain));
    const a = createAdapter({ method: 'LORA', shape: gen.shape, nonzero: true, seed: 4, config: { target_modules: ['query'] } });
    await plain.load_adapter('a', a);
    await padded.load_adapter('a', a);
    plain.set_adapter('a');
    padded.set_adapter('a');
    expect(await run(padded)).toEqual(await run(plain));
  });
});
