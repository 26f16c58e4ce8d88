/** Public types of the adapter registry (what `attachAdapters` adds and what it returns). */
import type { Adapter, AdapterFileInputs, AdapterFromBytesInput, Backend, RedirectPolicy } from '@tensorpeft/core';
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
  /** The adapter's scale on ΔW (`load_adapter`'s `scale`, `set_adapter_scale`; 1 by default). */
  scale: number;
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
  /** The adapter's name in the registry (PEFT's `adapter_name`; default `default`). */
  adapter_name?: string;
  /** Hub revision (branch, tag or commit) of a Hub id source (default `main`). */
  revision?: string;
  /** Scale on the adapter's ΔW (heads are not scaled), like PEFT's `set_scale`. Default 1. */
  scale?: number;
  /** Largest size of each adapter file, checked on declared and read lengths (default 256 MiB). */
  max_file_bytes?: number;
  /** Milliseconds until a server's response headers (default 30 000). */
  connect_timeout_ms?: number;
  /** Longest pause between received chunks, in milliseconds (default 30 000). */
  idle_timeout_ms?: number;
  /** Limit on each file's whole download, in milliseconds (default 600 000: core's `DEFAULT_TIMEOUT_MS`). */
  timeout_ms?: number;
  /**
   * Redirects: `same-origin` (default for URLs), `follow` (default for Hub ids: the Hub serves
   * files from CDN hosts) or `error`. `allowed_origins` are followed under `same-origin` too.
   */
  redirect?: RedirectPolicy;
  allowed_origins?: readonly string[];
  /** Cancels the download. */
  signal?: AbortSignal;
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

/**
 * Where `load_adapter` reads an adapter from: a Hub id (`user/repo`, at `revision`), an http(s) URL,
 * a relative URL (browser: against the page), a local folder (Node), a `URL`, a `FileList` or array
 * of `File`s / `Blob`s named `adapter_config.json` and `adapter_model.safetensors` (drag and drop),
 * the two files as `{ config, safetensors }` (bytes or Blobs), or a core `Adapter`.
 */
export type AdapterSource = string | URL | ArrayLike<Blob> | Iterable<Blob> | AdapterFileInputs | AdapterFromBytesInput | Adapter;

/** Options of `add_weighted_adapter`. */
export interface WeightedAdapterOptions {
  /** Replace an adapter already registered under the new name (default false: an error). */
  replace?: boolean;
  /**
   * Sources with modules_to_save heads: `refuse` (default, a PluginError) or `base`, PEFT's outcome
   * (the new adapter keeps the base model's heads).
   */
  modules_to_save?: 'refuse' | 'base';
  backend?: Backend;
  progress_callback?: AdapterProgressCallback;
}

/**
 * A model or pipeline after `attachAdapters`: the adapter methods, and a call signature that also
 * takes `{ adapter, scale }` next to the pipeline's own options (transformers.js types some
 * pipelines' options exactly, so `pipe(x, { adapter })` would not type-check on `T` alone).
 */
export type WithAdapters<T> = T &
  AdapterMethods &
  (T extends (input: infer I, options?: infer O, ...rest: infer Rest) => infer R ? (input: I, options?: (O extends object ? O : Record<string, unknown>) & AdapterCallOptions, ...rest: Rest) => R : unknown);

/** Per-call options the hooked model, pipeline and `generate` accept next to their own. */
export interface AdapterCallOptions {
  /** Adapter for this call only (`null`: the base model). */
  adapter?: string | null;
  /** Scale on the adapter's ΔW for this call only (times its own scale). */
  scale?: number;
  /**
   * One adapter name (or `null`: the base model) per batch row, PEFT's `adapter_names`: one run in
   * which each row uses its own adapter (models loaded with `mixed_batches`; not with `adapter` or `scale`).
   */
  adapter_names?: ReadonlyArray<string | null>;
}

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
  /** PEFT's order: `load_adapter(source, { adapter_name })` (`adapter_name` defaults to `default`). */
  load_adapter(source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  /** @deprecated `load_adapter(source, { adapter_name: name, ... })` (PEFT's order). */
  load_adapter(name: string, source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  /** Make `name` the active adapter (and enable adapters). */
  set_adapter(name: string | readonly [string]): void;
  /** Run the exact base model until `enable_adapters()` / `set_adapter()`. */
  disable_adapters(): void;
  /** Run the active adapter again after `disable_adapters()`. */
  enable_adapters(): void;
  /** The adapter `set_adapter` chose, as PEFT lists it (kept while disabled); `[]` when none. */
  active_adapters(): string[];
  /** Remove one adapter or a list; memory is released once runs using it finish. */
  delete_adapter(name: string | readonly string[]): void;
  /** @deprecated `delete_adapter`. */
  unload_adapter(name: string): void;
  /**
   * A new adapter `adapter_name` with ΔW = Σ weights[i]·ΔW(adapters[i]), exact (PEFT's `cat`:
   * ranks concatenated), for adapters of any methods.
   */
  add_weighted_adapter(adapters: readonly string[], weights: readonly number[], adapter_name: string, combination_type?: 'cat', opts?: WeightedAdapterOptions): Promise<LoadedAdapterInfo>;
  /** Change an adapter's scale on ΔW (PEFT's `set_scale`). */
  set_adapter_scale(name: string, scale: number): Promise<void>;
  list_adapters(): LoadedAdapterInfo[];
  /** The adapter runs starting now use (`null`: adapters disabled or none set). */
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
  /**
   * Models rewritten for mixed batches (`from_pretrained`'s `mixed_batches`): the most distinct
   * adapters one `adapter_names` call may use (default 8; each set's stacked tensors are kept).
   */
  mixed_batches?: { max_adapters?: number };
  /**
   * Sessions of the same model loaded without the rewrite, by session name (`model.sessions`'
   * keys): while no adapter is active, runs go to these instead, so a disabled model runs the
   * original graph (no zero-rank branches, no adapter inputs: issue 16's per-run overhead). Costs a
   * second copy of the weights in memory. `from_pretrained`'s `base_session: true` loads them.
   */
  base_sessions?: Record<string, { run(feeds: Record<string, unknown>, ...rest: unknown[]): Promise<Record<string, unknown>> }>;
}
