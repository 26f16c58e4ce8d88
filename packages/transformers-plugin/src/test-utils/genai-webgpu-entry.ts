/**
 * Page side of genai-webgpu-suite.ts (an esbuild bundle served from 127.0.0.1, run in headless
 * Chromium or, for the fp16 graphs, by dawn-page.mjs on Dawn in Node): the tiny LLaMA in
 * onnxruntime-genai's layout (packed qkv_proj → GroupQueryAttention) through transformers.js on ORT
 * Web's WebGPU EP, one dtype a call. The untouched model once, then the plugin's model once with every
 * adapter in turn, fed from CPU tensors and from kernels-wgsl's GPU-resident buffers on ORT's own
 * GPUDevice. One model load for all adapters: SwiftShader compiles a pipeline for every new shape, and
 * the shapes of a load are shared by the adapters that follow.
 */
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { from_pretrained, type GpuMaterializer } from '../index.js';
import { makeAdapter, type AdapterSpec, type Outputs } from './dtype-browser-entry.js';

interface WebGpuBackendLike extends GpuMaterializer {
  device: unknown;
  halfKernel: string;
  destroy(): void;
}
interface KernelsWgsl {
  WebGpuBackend: { create(opts: { device: unknown }): Promise<WebGpuBackendLike> };
}

export interface GenaiRunOptions {
  model: string;
  dtype: 'fp32' | 'q4' | 'fp16' | 'q4f16';
  prompt: string;
  maxNewTokens: number;
  /** Adapters by name; those named in `decode` also decode greedily (GPU-fed), the others give logits only. */
  adapters: Record<string, AdapterSpec>;
  decode: string[];
  /** Also decode the untouched and the disabled plugin model (default true). */
  decodeBase?: boolean;
  /** Also run the untouched model in a second session (cheap on Dawn; ≈ 20 s of recompiling on SwiftShader). */
  repeatSession?: boolean;
  /**
   * Where ORT-web's wasm files and the kernels-wgsl bundle are (default: served under `origin`); the
   * Dawn child gives file: URLs for what it imports (dawn-child.ts).
   */
  wasmPaths?: string | { mjs: string; wasm: string };
  kernelsUrl?: string;
}

export interface GenaiRunResult {
  base: Outputs;
  disabled: Outputs;
  /** Per adapter: CPU-fed and GPU-fed outputs, and the GPU-fed adapter's `gpu_bytes`. */
  adapters: Record<string, { cpu: Outputs; gpu: Outputs; gpuBytes: number }>;
  ms: Record<string, number>;
  /** kernels-wgsl's float16 path on this device ('native' where the adapter has `shader-f16`). */
  halfKernel: string;
  /** The untouched model's prompt logits again: same session, and a fresh session of the same file. */
  baseAgain: number[];
  baseOtherSession?: number[];
}

interface Logits {
  data: Float32Array | Uint16Array;
  dims: number[];
  type: string;
  to(type: 'float32'): Logits;
}
type Model = ((x: unknown) => Promise<{ logits: Logits }>) & {
  generate(o: unknown): Promise<{ tolist(): bigint[][] }>;
  dispose(): Promise<unknown>;
};

async function run(origin: string, o: GenaiRunOptions): Promise<GenaiRunResult> {
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.useBrowserCache = false;
  env.remoteHost = `${origin}/models/`;
  env.remotePathTemplate = '{model}/';
  const onnx = env.backends.onnx as unknown as { wasm: { wasmPaths: string | { mjs: string; wasm: string }; numThreads: number }; webgpu: { device: Promise<unknown> } };
  onnx.wasm.wasmPaths = o.wasmPaths ?? `${origin}/ort/`;
  onnx.wasm.numThreads = 1;
  const ms: Record<string, number> = {};
  let t0 = performance.now();
  const lap = (k: string): void => {
    const t = performance.now();
    ms[k] = Math.round(t - t0);
    t0 = t;
  };
  const tok = await AutoTokenizer.from_pretrained(o.model);
  const promptIds = Array.from((tok(o.prompt) as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
  const forward = async (m: Model, ids: number[]): Promise<{ data: Float32Array; V: number }> => {
    const L = ids.length;
    let out = (await m({ input_ids: new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]), attention_mask: new Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]) })).logits;
    // The builder's fp16/q4f16 graphs have float16 I/O (logits included): widened exactly.
    if (out.type === 'float16') out = out.to('float32');
    if (out.type !== 'float32') throw new Error(`logits are ${out.type}`);
    return { data: out.data as Float32Array, V: out.dims[2]! };
  };
  // generate()'s reference on the same model and EP: the whole sequence through the model at every
  // step (no KV cache), argmax of the last position.
  const greedyNoCache = async (m: Model): Promise<number[]> => {
    const ids = [...promptIds];
    for (let k = 0; k < o.maxNewTokens; k++) {
      const { data, V } = await forward(m, ids);
      const L = ids.length;
      let best = 0;
      for (let v = 1; v < V; v++) if (data[(L - 1) * V + v]! > data[(L - 1) * V + best]!) best = v;
      ids.push(best);
    }
    return ids;
  };
  const outputs = async (m: Model, stage: string, decode: boolean): Promise<Outputs> => {
    try {
      const logits = Array.from((await forward(m, promptIds)).data);
      if (!decode) return { logits, tokens: [] };
      const gen = await m.generate({ input_ids: new Tensor('int64', BigInt64Array.from(promptIds, BigInt), [1, promptIds.length]), attention_mask: new Tensor('int64', new BigInt64Array(promptIds.length).fill(1n), [1, promptIds.length]), max_new_tokens: o.maxNewTokens, do_sample: false });
      return { logits, tokens: gen.tolist()[0]!.map(Number), noCache: await greedyNoCache(m) };
    } catch (e) {
      throw new Error(`${stage} run failed: ${(e as Error).message}`);
    }
  };

  const opts = { dtype: o.dtype, device: 'webgpu' } as never;
  const plain = (await AutoModelForCausalLM.from_pretrained(o.model, opts)) as unknown as Model;
  lap('load_plain');
  const base = await outputs(plain, 'base', o.decodeBase !== false);
  lap('base');
  // The EP's own repeatability, for reading a disabled ≠ base failure: the same session again, and
  // (`repeatSession`) a second session of the same file.
  const baseAgain = Array.from((await forward(plain, promptIds)).data);
  await plain.dispose();
  let baseOtherSession: number[] | undefined;
  if (o.repeatSession) {
    const plain2 = (await AutoModelForCausalLM.from_pretrained(o.model, opts)) as unknown as Model;
    baseOtherSession = Array.from((await forward(plain2, promptIds)).data);
    await plain2.dispose();
  }
  lap('base_repeat');

  const model = await from_pretrained(env as never, AutoModelForCausalLM as never, o.model, { dtype: o.dtype, device: 'webgpu', webgpu: true } as never);
  const m = model as unknown as Model & typeof model;
  lap('load_plugin');
  const disabled = await outputs(m, 'disabled', o.decodeBase !== false);
  lap('disabled');
  const { WebGpuBackend } = (await import(/* @vite-ignore */ o.kernelsUrl ?? `${origin}/assets/kernels-wgsl.js`)) as KernelsWgsl;
  const backend = await WebGpuBackend.create({ device: await onnx.webgpu.device });
  const adapters: GenaiRunResult['adapters'] = {};
  const halfKernel = backend.halfKernel;
  try {
    for (const [name, spec] of Object.entries(o.adapters)) {
      const adapter = makeAdapter(spec);
      await model.load_adapter(`${name}-cpu`, adapter);
      model.set_adapter(`${name}-cpu`);
      const cpu = await outputs(m, `${name} CPU-fed`, false);
      model.unload_adapter(`${name}-cpu`);
      const gpuBytes = (await model.load_adapter(`${name}-gpu`, adapter, { gpu: backend })).gpu_bytes;
      model.set_adapter(`${name}-gpu`);
      const gpu = await outputs(m, `${name} GPU-fed`, o.decode.includes(name));
      model.disable_adapters();
      model.unload_adapter(`${name}-gpu`);
      adapters[name] = { cpu, gpu, gpuBytes };
      lap(name);
    }
  } finally {
    backend.destroy();
  }
  await m.dispose();
  return { base, disabled, adapters, ms, halfKernel, baseAgain, baseOtherSession };
}

Object.assign(globalThis, { tensorpeftGenaiWebgpuTest: { run } });
