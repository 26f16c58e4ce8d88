/**
 * Browser side of webgpu.test.ts (an esbuild bundle served from 127.0.0.1): a tiny BERT through
 * transformers.js on ONNX Runtime Web's WebGPU EP, one adapter fed from the CPU and the same adapter
 * fed from GPU-resident buffers (kernels-wgsl's materializeToGpu on ORT's own GPUDevice).
 */
import { AutoModelForSequenceClassification, AutoTokenizer, env } from '@huggingface/transformers';
import { createAdapter, type ModelShape } from '@tensorpeft/core';
import { from_pretrained, type GpuMaterializer } from '../index.js';

/** What the page uses of @tensorpeft/kernels-wgsl (served as its own bundle at /assets/kernels-wgsl.js). */
interface PoolStats {
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
    return { sameDevice: backend.device === device, base, cpu, gpu, disabled, pool: [withGpuAdapter, backend.poolStats()] };
  } finally {
    backend.destroy();
  }
}

Object.assign(globalThis, { tensorpeftPluginTest: { run } });
