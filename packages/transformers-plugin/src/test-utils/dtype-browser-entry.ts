/**
 * Browser side of dtype-browser.test.ts (an esbuild bundle served from 127.0.0.1): a generated
 * causal LM of one transformers.js dtype (`model_q4f16.onnx`, `model_q4.onnx`, …) through
 * transformers.js on ONNX Runtime Web (WebGPU or wasm EP): the untouched model, then the plugin's
 * with adapters disabled, with the adapter fed from CPU tensors and (WebGPU) from GPU-resident
 * buffers of kernels-wgsl on ORT's own GPUDevice — logits of each text and greedy `generate()` tokens.
 */
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor } from '@huggingface/transformers';
import { createAdapter, type ModelShape } from '@tensorpeft/core';
import { from_pretrained, type GpuMaterializer } from '../index.js';

interface WebGpuBackendLike extends GpuMaterializer {
  device: unknown;
  halfKernel: string;
  destroy(): void;
}
interface KernelsWgsl {
  WebGpuBackend: { create(opts: { device: unknown }): Promise<WebGpuBackendLike> };
}

export interface DtypeRunOptions {
  model: string;
  dtype: string;
  device: 'webgpu' | 'wasm';
  texts: string[];
  prompt: string;
  maxNewTokens: number;
  /** Also load the adapter GPU-fed (WebGPU only). */
  gpu: boolean;
  /**
   * Which states also decode greedily (generate() and the no-cache reference); the others give
   * logits only. SwiftShader compiles a WebGPU pipeline for every new shape, so each decode step costs
   * seconds there: the WebGPU run decodes only the GPU-fed adapter.
   */
  decode: Array<'base' | 'disabled' | 'cpu' | 'gpu'>;
  /**
   * Where ORT-web's wasm files and the kernels-wgsl bundle are (default: served under `origin`).
   * The Dawn run in Node (dtype-dawn.test.ts) gives file: URLs: Node's ESM loader imports no http:.
   */
  wasmPaths?: string | { mjs: string; wasm: string };
  kernelsUrl?: string;
}

/** The adapter, built the same way on both sides (createAdapter is deterministic in its seed). */
export interface AdapterSpec {
  method: string;
  shape: ModelShape;
  seed: number;
  config: Record<string, unknown>;
  /** Every parameter times this (a visible effect on a random tiny model's greedy tokens). */
  gain: number;
}

export function makeAdapter(spec: AdapterSpec): ReturnType<typeof createAdapter> {
  const a = createAdapter({ method: spec.method, shape: spec.shape, nonzero: true, seed: spec.seed, config: spec.config });
  for (const t of a.params.values()) for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! * spec.gain;
  return a;
}

/** Logits (every position of every text, concatenated) and greedy tokens of one model state. */
export interface Outputs {
  logits: number[];
  /** Empty when the state was not decoded (`decode`). */
  tokens: number[];
  /** Greedy tokens without the KV cache: the whole sequence through the model at every step. */
  noCache?: number[];
}

export interface DtypeRunResult {
  base: Outputs;
  disabled: Outputs;
  cpu: Outputs;
  gpu?: Outputs;
  /** `gpu_bytes` of the GPU-fed adapter (binary16 buffers on fp16 graphs: 2 bytes an element). */
  gpuBytes?: number;
  halfKernel?: string;
  /** Milliseconds each stage took (load, runs), for the test's time budget. */
  ms: Record<string, number>;
}

type Model = ((x: unknown) => Promise<{ logits: { data: Float32Array | Uint16Array; type: string } }>) & {
  generate(o: unknown): Promise<{ tolist(): bigint[][] }>;
  dispose(): Promise<unknown>;
};

async function run(origin: string, o: DtypeRunOptions, spec: AdapterSpec): Promise<DtypeRunResult> {
  const adapter = makeAdapter(spec);
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
  const lap = (k: string) => {
    const t = performance.now();
    ms[k] = Math.round(t - t0);
    t0 = t;
  };
  const tok = await AutoTokenizer.from_pretrained(o.model);
  const outputs = async (m: Model, stage: string, state: DtypeRunOptions['decode'][number]): Promise<Outputs> => {
    try {
      const logits: number[] = [];
      for (const t of o.texts) {
        const out = (await m(tok(t))).logits;
        // fp16 graphs' logits are float32 (transformers.js' q4f16/fp16 exports cast at the output).
        if (out.type !== 'float32') throw new Error(`logits are ${out.type}`);
        logits.push(...out.data);
      }
      if (!o.decode.includes(state)) return { logits, tokens: [] };
      const gen = await m.generate({ ...tok(o.prompt), max_new_tokens: o.maxNewTokens, do_sample: false });
      return { logits, tokens: gen.tolist()[0]!.map(Number), noCache: await greedyNoCache(m) };
    } catch (e) {
      throw new Error(`${stage} run failed: ${(e as Error).message}`);
    }
  };
  // The reference of generate()'s KV-cache path on the same model and EP: argmax of the last
  // position's logits with the whole sequence fed at every step.
  const greedyNoCache = async (m: Model): Promise<number[]> => {
    const ids = Array.from((tok(o.prompt) as { input_ids: { data: BigInt64Array } }).input_ids.data, Number);
    for (let k = 0; k < o.maxNewTokens; k++) {
      const L = ids.length;
      const input_ids = new Tensor('int64', BigInt64Array.from(ids, BigInt), [1, L]);
      const attention_mask = new Tensor('int64', new BigInt64Array(L).fill(1n), [1, L]);
      const logits = (await m({ input_ids, attention_mask })).logits as unknown as { data: Float32Array; dims: number[] };
      const V = logits.dims[2]!;
      let best = 0;
      for (let v = 1; v < V; v++) if (logits.data[(L - 1) * V + v]! > logits.data[(L - 1) * V + best]!) best = v;
      ids.push(best);
    }
    return ids;
  };
  const opts = { dtype: o.dtype, device: o.device } as never;
  const plain = (await AutoModelForCausalLM.from_pretrained(o.model, opts)) as unknown as Model;
  lap('load_plain');
  const base = await outputs(plain, 'base', 'base');
  lap('base');
  await plain.dispose();

  const model = await from_pretrained(env as never, AutoModelForCausalLM as never, o.model, { dtype: o.dtype, device: o.device, webgpu: o.device === 'webgpu' } as never);
  const m = model as unknown as Model & typeof model;
  lap('load_plugin');
  const disabled = await outputs(m, 'disabled', 'disabled');
  lap('disabled');
  await model.load_adapter('cpu', adapter);
  model.set_adapter('cpu');
  const cpu = await outputs(m, 'cpu-fed', 'cpu');
  lap('cpu');
  const result: DtypeRunResult = { base, disabled, cpu, ms };
  if (o.gpu) {
    const { WebGpuBackend } = (await import(/* @vite-ignore */ o.kernelsUrl ?? `${origin}/assets/kernels-wgsl.js`)) as KernelsWgsl;
    const backend = await WebGpuBackend.create({ device: await onnx.webgpu.device });
    try {
      result.gpuBytes = (await model.load_adapter('gpu', adapter, { gpu: backend })).gpu_bytes;
      model.set_adapter('gpu');
      result.gpu = await outputs(m, 'GPU-fed', 'gpu');
      result.halfKernel = backend.halfKernel;
      lap('gpu');
      model.disable_adapters();
      model.unload_adapter('gpu');
    } finally {
      backend.destroy();
    }
  }
  await m.dispose();
  return result;
}

Object.assign(globalThis, { tensorpeftDtypeTest: { run } });
