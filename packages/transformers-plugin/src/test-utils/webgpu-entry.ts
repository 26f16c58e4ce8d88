/**
 * Browser side of webgpu.test.ts (an esbuild bundle served from 127.0.0.1): a tiny BERT through
 * transformers.js on ONNX Runtime Web's WebGPU EP, one adapter fed from the CPU and the same adapter
 * fed from GPU-resident buffers (kernels-wgsl's materializeToGpu on ORT's own GPUDevice); then two
 * GPU-fed adapters alternated under an LRU budget that fits one of them.
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, type ModelShape } from '@tensorpeft/core';
import { from_pretrained, type GpuMaterializer } from '../index.js';

/** What the page uses of @tensorpeft/kernels-wgsl (served as its own bundle at /assets/kernels-wgsl.js). */
interface PoolStats {
  created: number;
  live: number;
  idle: number;
}
interface WebGpuBackendLike extends GpuMaterializer {
  device: unknown;
  poolStats(): PoolStats;
  destroy(): void;
}
interface KernelsWgsl {
  WebGpuBackend: { create(opts: { device: unknown }): Promise<WebGpuBackendLike> };
}

interface Result {
  sameDevice: boolean;
  base: number[];
  cpu: number[];
  gpu: number[];
  disabled: number[];
  /** Buffer pool with the GPU-fed adapter loaded, then after unloading it. */
  pool: [PoolStats, PoolStats];
  /** CPU-fed logits of the second adapter (seed 4; the first is `cpu`, seed 3). */
  cpu2: number[];
  /** `gpu_bytes` of one GPU-fed adapter: the budget of the alternation. */
  per: number;
  /** Pool and memory with both GPU-fed adapters loaded under the budget, before alternating. */
  before: { pool: PoolStats; mem: AdapterMemory };
  /** Each swap of the alternation: adapter, its logits, memory and pool after the run. */
  alternation: Array<{ name: 'g3' | 'g4'; logits: number[]; mem: AdapterMemory; pool: PoolStats }>;
  /** Pool after unloading both. */
  end: PoolStats;
}

interface AdapterMemory {
  materialized_bytes: number;
  gpu_bytes: number;
  evictions: number;
  rematerializations: number;
}

async function run(origin: string, shape: ModelShape, method: string, texts: string[]): Promise<Result> {
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.useBrowserCache = false;
  env.remoteHost = `${origin}/models/`;
  env.remotePathTemplate = '{model}/';
  const onnx = env.backends.onnx as unknown as { wasm: { wasmPaths: string; numThreads: number }; webgpu: { device: Promise<unknown> } };
  const { WebGpuBackend } = (await import(/* @vite-ignore */ `${origin}/assets/kernels-wgsl.js`)) as KernelsWgsl;
  onnx.wasm.wasmPaths = `${origin}/ort/`;
  onnx.wasm.numThreads = 1;
  const tok = await AutoTokenizer.from_pretrained('bert');
  const model = await from_pretrained(env as never, AutoModelForSequenceClassification as never, 'bert', { dtype: 'fp32', device: 'webgpu', webgpu: true } as never);
  const device = await onnx.webgpu.device; // the GPUDevice of ORT's WebGPU EP
  const backend = await WebGpuBackend.create({ device });
  const m = model as unknown as ((x: unknown) => Promise<{ logits: { data: Float32Array } }>) & typeof model;
  const logits = async (stage: string): Promise<number[]> => {
    const out: number[] = [];
    try {
      for (const t of texts) out.push(...(await m(tok(t))).logits.data);
    } catch (e) {
      throw new Error(`${stage} run failed: ${(e as Error).message}`);
    }
    return out;
  };
  try {
    const base = await logits('base');
    const make = () => createAdapter({ method, shape, nonzero: true, seed: 3 });
    await model.load_adapter('cpu', make());
    await model.load_adapter('gpu', make(), { gpu: backend });
    model.set_adapter('cpu');
    const cpu = await logits('cpu');
    const withGpuAdapter = backend.poolStats();
    model.set_adapter('gpu');
    const gpu = await logits('gpu');
    model.disable_adapters();
    const disabled = await logits('disabled');
    model.unload_adapter('gpu');
    const pool: [PoolStats, PoolStats] = [withGpuAdapter, backend.poolStats()];

    // LRU budget on GPU memory: two GPU-fed adapters (seeds 3 and 4), a budget fitting one.
    await model.load_adapter('cpu2', createAdapter({ method, shape, nonzero: true, seed: 4 }));
    model.set_adapter('cpu2');
    const cpu2 = await logits('cpu2');
    model.disable_adapters();
    model.unload_adapter('cpu');
    model.unload_adapter('cpu2');
    const g3 = await model.load_adapter('g3', make(), { gpu: backend });
    await model.load_adapter('g4', createAdapter({ method, shape, nonzero: true, seed: 4 }), { gpu: backend });
    model.set_max_adapter_bytes(g3.gpu_bytes);
    const before = { pool: backend.poolStats(), mem: model.adapter_memory() };
    const alternation: Result['alternation'] = [];
    for (let round = 0; round < 2; round++) {
      for (const name of ['g3', 'g4'] as const) {
        model.set_adapter(name);
        alternation.push({ name, logits: await logits(`${name} (round ${round})`), mem: model.adapter_memory(), pool: backend.poolStats() });
      }
    }
    model.disable_adapters();
    model.unload_adapter('g3');
    model.unload_adapter('g4');
    return { sameDevice: backend.device === device, base, cpu, gpu, disabled, pool, cpu2, per: g3.gpu_bytes, before, alternation, end: backend.poolStats() };
  } finally {
    backend.destroy();
  }
}

Object.assign(globalThis, { tensorpeftPluginTest: { run } });
