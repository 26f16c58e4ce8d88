/** Public types of the adapter registry (what `attachAdapters` adds and what it returns). */
import type { Adapter, AdapterFromBytesInput, Backend } from '@tensorpeft/core';
import type { GpuMaterializer } from './ort-feeds.js';

export interface LoadedAdapterInfo {
  name: string;
  peft_type: string;
  modules: number;
  rank: number;
  modules_to_save: string[];
  /**
   * Bytes of the materialized tensors held in CPU memory for this adapter when materialized (ORT
   * CPU tensors: branch A′ / s·B′ᵀ, merged weights, modules_to_save heads).
   */
  bytes: number;
  /**
   * Bytes of the GPU buffers (A′ [n, ρ] and s·B′ᵀ [ρ, m] per module) held for this adapter when it
   * is GPU-fed and materialized; 0 for CPU-fed adapters.
   */
  gpu_bytes: number;
  /** False after the LRU budget evicted its tensors (re-materialized on the next use). */
  materialized: boolean;
}

/** transformers.js-style progress event of `load_adapter`. */
export interface AdapterProgressInfo {
  /** `initiate` / `download` / `progress` / `done` per file, then `progress` of materialization, then `ready`. */
  status: 'initiate' | 'download' | 'progress' | 'done' | 'ready';
  /** The adapter's name in the registry. */
  name: string;
  /** File (path or URL), or `materialize` for the materialization step. */
  file?: string;
  /** Percent, 0–100. */
  progress?: number;
  /** Bytes read so far (files) or modules materialized (`materialize`). */
  loaded?: number;
  total?: number;
}
export type AdapterProgressCallback = (info: AdapterProgressInfo) => void;

export interface LoadAdapterOptions {
  /** Backend for materialization (default: core's best registered one). */
  backend?: Backend;
  /** Replace an adapter already loaded under this name (default false: an error). */
  replace?: boolean;
  /** transformers.js-style progress events for the file reads and the materialization. */
  progress_callback?: AdapterProgressCallback;
  /**
   * GPU-resident feeds (branch mode): a WebGPU backend of @tensorpeft/kernels-wgsl
   * (`WebGpuBackend.create({ device: await ort.env.webgpu.device })`) on the GPUDevice of the
   * model's ORT-web WebGPU session. The adapter's jobs are materialized by `materializeToGpu` into
   * A′ [n, ρ] and s·B′ᵀ [ρ, m] GPUBuffers fed with `Tensor.fromGpuBuffer`: nothing is read back to
   * the CPU. The buffers are released when the adapter is unloaded, replaced or evicted (once no run
   * reads them), and count as its `gpu_bytes` in the LRU budget.
   */
  gpu?: GpuMaterializer | null;
}

export type AdapterSource = string | Adapter | AdapterFromBytesInput;

/** Memory held by the registry. */
export interface AdapterMemoryInfo {
  /** Bytes of the materialized adapter tensors held in CPU memory now (sum of `bytes` of the materialized adapters). */
  materialized_bytes: number;
  /** Bytes of the GPU buffers held by GPU-fed adapters now (sum of `gpu_bytes` of the materialized adapters). */
  gpu_bytes: number;
  /** The LRU budget (Infinity: none), applied to `materialized_bytes` and to `gpu_bytes` each. */
  max_adapter_bytes: number;
  /** Adapters whose tensors were dropped by the budget so far. */
  evictions: number;
  /** Re-materializations of evicted adapters so far. */
  rematerializations: number;
}

/** Methods added to a model (or pipeline) by `attachAdapters`, named like PEFT's. */
export interface AdapterMethods {
  load_adapter(name: string, source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  set_adapter(name: string): void;
  disable_adapters(): void;
  unload_adapter(name: string): void;
  list_adapters(): LoadedAdapterInfo[];
  readonly active_adapter: string | null;
  /**
   * A view of the model (or pipeline) pinned to adapter `name` (`null`: the base model): call it
   * like the model/pipeline, or call its `generate`. The active adapter is not changed.
   */
  with_adapter(name: string | null): this;
  /** Change the LRU byte budget (Infinity: none; CPU and GPU pools each); evicts at once if over. */
  set_max_adapter_bytes(bytes: number): void;
  adapter_memory(): AdapterMemoryInfo;
}

export interface AttachOptions {
  /**
   * LRU byte budget for materialized adapter tensors (default: none). When loading or re-materializing
   * goes over it, the least recently used adapters (not the active one, not one a run in progress
   * uses) drop their tensors; they are re-materialized from their parameters on their next use.
   * The budget applies to two pools separately: CPU-held tensors (`adapter_memory().materialized_bytes`)
   * and the GPU buffers of GPU-fed adapters (`adapter_memory().gpu_bytes`); evicting a GPU-fed
   * adapter releases its buffers and its next use re-materializes it on the same WebGPU backend.
   */
  max_adapter_bytes?: number;
  /**
   * The model's sessions run on ONNX Runtime Web's WebGPU EP. Its kernels cannot bind empty tensors,
   * so the disabled state (and modules an adapter does not cover) feed ρ = 1 zero tensors instead of
   * ρ = 0 ones (`y + (x·0)·0 = y`). With a WebGPU backend of @tensorpeft/kernels-wgsl on the
   * session's GPUDevice (`await ort.env.webgpu.device`), adapters are GPU-fed by default
   * (`load_adapter`'s `gpu`; `{ gpu: null }` for CPU feeds).
   */
  webgpu?: GpuMaterializer | true;
}
