/**
 * What the registry feeds ONNX Runtime: CPU tensors through transformers.js' own ORT build, GPU
 * buffers (`Tensor.fromGpuBuffer`), and the materialization of an adapter on either side.
 */
import { materializeAdapter, checkParams, type Adapter, type Backend, type ModuleUpdate, type WeightLayout } from '@tensorpeft/core';
import { Tensor } from '@huggingface/transformers';
import { PluginError } from './errors.js';

/** An ORT tensor as transformers.js' sessions take it. */
export type OrtTensor = unknown;
export type Feeds = Record<string, OrtTensor>;

export interface SessionLike {
  inputNames: readonly string[];
  inputMetadata?: ReadonlyArray<{ name: string; shape?: ReadonlyArray<number | string> }>;
  run(feeds: Feeds, ...rest: unknown[]): Promise<Record<string, unknown>>;
}

export function ortTensor(data: Float32Array, dims: number[]): OrtTensor {
  return (new Tensor('float32', data, dims) as unknown as { ort_tensor: OrtTensor }).ort_tensor;
}

/** An ORT tensor on a GPUBuffer (float32, or float16 for fp16 graphs), from the ORT build transformers.js runs on (`Tensor.fromGpuBuffer`). */
export function ortGpuTensor(buffer: unknown, dims: number[], dataType: 'float32' | 'float16' = 'float32'): OrtTensor {
  const ctor = (ortTensor(new Float32Array(0), [0]) as { constructor: unknown }).constructor as {
    fromGpuBuffer?: (b: unknown, o: { dataType: 'float32' | 'float16'; dims: readonly number[] }) => OrtTensor;
  };
  if (typeof ctor.fromGpuBuffer !== 'function') throw new PluginError('the ONNX Runtime transformers.js uses has no Tensor.fromGpuBuffer (GPU-fed adapters need onnxruntime-web with WebGPU)');
  return ctor.fromGpuBuffer(buffer, { dataType, dims });
}

/**
 * One GPU-resident module of an adapter (structurally `GpuModuleUpdate` of @tensorpeft/kernels-wgsl):
 * with `{ foldScale: true, transposeB: true }`, `A` is A′ [n, ρ] and `B` is s·B′ᵀ [ρ, m], both `GPUBuffer`s.
 */
export interface GpuModuleUpdateLike {
  path: string;
  n: number;
  m: number;
  rho: number;
  A: unknown;
  B: unknown;
  /** Element type of A and B (absent: float32, as backends without float16 results give). */
  dtype?: 'float32' | 'float16';
  release(): void;
}

/** What the plugin needs of a WebGPU backend (structurally @tensorpeft/kernels-wgsl's `WebGpuBackend`). */
export interface GpuMaterializer {
  materializeToGpu(jobs: never, opts: { foldScale: boolean; transposeB: boolean; dtype?: 'float32' | 'float16' }): Promise<GpuModuleUpdateLike[]>;
}

/** The adapter's materialization jobs, exactly as core's `materialize` builds them (method-agnostic). */
export function jobsOf(adapter: Adapter): unknown {
  checkParams(adapter.plan, adapter.params);
  const method = adapter.method as unknown as { jobs(config: unknown, plan: unknown, params: unknown): unknown };
  return method.jobs(adapter.config, adapter.plan, adapter.params);
}

export type AnyUpdate = ModuleUpdate | GpuModuleUpdateLike;

/** Materialize `adapter`: on the CPU-side backend (ModuleUpdate), or GPU-resident with `gpu`. */
export async function materializeAny(adapter: Adapter, backend: Backend | undefined, gpu: GpuMaterializer | undefined): Promise<AnyUpdate[]> {
  if (!gpu) return materializeAdapter(adapter, backend);
  return gpu.materializeToGpu(jobsOf(adapter) as never, { foldScale: true, transposeB: true });
}

export function releaseAll(updates: AnyUpdate[] | undefined): void {
  for (const u of updates ?? []) if ('release' in u && typeof u.release === 'function') u.release();
}

/**
 * Device memory behind one GPU-resident buffer: its `size` when it is a GPUBuffer (what the device
 * really allocated, e.g. rounded up by a pool), else the bytes of the float32 tensor it holds.
 */
export function gpuBufferBytes(buf: unknown, floats: number): number {
  const size = buf !== null && typeof buf === 'object' ? (buf as { size?: unknown }).size : undefined;
  return typeof size === 'number' && Number.isFinite(size) && size >= 0 ? size : floats * 4;
}

export interface SessionModule {
  path: string;
  /** Branch mode: the A / B inputs. */
  inputA?: string;
  inputB?: string;
  /** Merge mode: the weight input, its layout and W0. */
  inputW?: string;
  layout?: WeightLayout;
  w0?: Float32Array;
  wDims?: number[];
  n: number;
  m: number;
}

export interface SessionParam {
  name: string;
  input: string;
  dims: number[];
}

export interface HookedSession {
  session: SessionLike;
  modules: SessionModule[];
  params: SessionParam[];
  /** ρ = 0 / no-override feeds: the exact base model. */
  baseFeeds: Feeds;
  /** The session's own `run`. */
  run: (feeds: Feeds, ...rest: unknown[]) => Promise<Record<string, unknown>>;
}
