/**
 * transformers.js integration: the load-time rewrite through `env.customCache`, and the adapter
 * registry attached to a model (or pipeline) whose sessions get a `run` wrapper that adds the
 * adapter inputs (hidden from transformers.js' `inputNames`).
 *
 * The registry is method-agnostic: an adapter is materialized by core into (A′, B′, s) per module
 * path; the plugin folds s into B′ᵀ and feeds `A: [n, ρ]`, `B: [ρ, m]`.
 */
import {
  adapterFromBytes,
  CONFIG_FILE,
  WEIGHTS_FILE,
  loadAdapter,
  materializeAdapter,
  shapeFromHfConfig,
  type Adapter,
  type AdapterFromBytesInput,
  type Backend,
  type ModuleUpdate,
  type WeightLayout,
  getBackend,
  checkParams,
  DEFAULT_MAX_BYTES,
  FetchError,
  ShapeMismatchError,
} from '@tensorpeft/core';
import { PluginError } from './errors.js';
import { Tensor } from '@huggingface/transformers';
import { INPUT_PREFIX, MERGE_PREFIX, PARAM_PREFIX, baseWeightOf, decodeModel, pathsMatch, rewriteModel, type RewriteResult } from './rewrite.js';
import { DATA_FILE_RE, externalLocations, siblingKey } from './external-data.js';

/** The part of transformers.js' `env` the plugin uses. */
export interface CacheEnv {
  useCustomCache: boolean;
  customCache: unknown;
  allowRemoteModels?: boolean;
}

interface CacheLike {
  match(key: string): Promise<Response | undefined>;
  put(key: string, res: Response): Promise<void>;
}

export interface EnableOptions {
  /**
   * `branch` (default): side branches `y += (x·A)·B`, any rank, same session. `merge` (fp32 models):
   * the targeted weights are fed per run and an adapter's are `W0 + s·B′A′ᵀ`, merged by the backend
   * when it is loaded: no extra FLOPs per token, one full weight copy per module per adapter.
   */
  mode?: 'branch' | 'merge';
  /** Called with each rewritten file and what was rewritten. */
  onRewrite?: (file: string, result: Omit<RewriteResult, 'bytes'>) => void;
}

const OURS = Symbol.for('tensorpeft.customCache');

/** Load-time rewrite failures (most recent last, a few kept): transformers.js hides them (see `match`). */
const FAILURES: Array<{ key: string; error: unknown }> = [];
let failureCount = 0;

function recordFailure(key: string, error: unknown): void {
  failureCount++;
  FAILURES.push({ key, error });
  while (FAILURES.length > 8) FAILURES.shift();
}

/** Failures recorded after the `since`-th one (by `failureCount`). */
function failuresSince(since: number): unknown[] {
  const n = Math.min(failureCount - since, FAILURES.length);
  return FAILURES.slice(FAILURES.length - n).map((f) => f.error);
}

/** Node (where transformers.js asks the cache twice for a file: see `enableAdapters`). */
const IS_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

function isUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

async function readSource(key: string, env: CacheEnv, prev: CacheLike | null): Promise<Uint8Array | undefined> {
  if (prev) {
    const r = await prev.match(key);
    if (r) return new Uint8Array(await r.arrayBuffer());
  }
  if (isUrl(key)) {
    if (env.allowRemoteModels === false) return undefined;
    const res = await fetch(key);
    return res.ok ? new Uint8Array(await res.arrayBuffer()) : undefined;
  }
  try {
    const fs = await import('node:fs/promises');
    const b = await fs.readFile(key);
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  } catch {
    return undefined;
  }
}

/**
 * A Response for rewritten bytes, with Content-Length: without it transformers.js' `readResponse`
 * grows its buffer by reallocating and copying it for every stream chunk.
 */
function bytesResponse(bytes: Uint8Array): Response {
  return new Response(bytes as Uint8Array<ArrayBuffer>, { headers: { 'Content-Length': String(bytes.byteLength) } });
}

/** `https://huggingface.co/<id>/resolve/<rev>/onnx/model.onnx` → `<id>/onnx/model.onnx`. */
function hubRelative(key: string): string | undefined {
  if (!isUrl(key)) return undefined;
  const u = new URL(key);
  return decodeURIComponent(u.pathname.replace(/^\/+/, '').replace(/\/resolve\/[^/]+\//, '/'));
}

/** `…/onnx/model_quantized.onnx` → `…/config.json` (local path or Hub URL). */
export function configKeyFor(onnxKey: string): string {
  const i = onnxKey.lastIndexOf('/onnx/');
  if (i >= 0) return `${onnxKey.slice(0, i)}/config.json`;
  const j = onnxKey.lastIndexOf('/');
  return `${onnxKey.slice(0, j + 1)}config.json`;
}

/**
 * Install the load-time rewrite: every `.onnx` file transformers.js loads afterwards (local path or
 * Hub URL) gets the adapter side branches for the modules of its `config.json`. A previous custom
 * cache is kept and consulted first for the original bytes. Returns a function that restores the
 * previous cache settings.
 */
export function enableAdapters(env: CacheEnv, opts: EnableOptions = {}): () => void {
  const prevUse = env.useCustomCache;
  const prevCache = env.customCache as CacheLike | null;
  // Already enabled: keep the installed cache (rewriting a rewritten graph would duplicate inputs).
  if (prevUse && prevCache && (prevCache as unknown as Record<symbol, unknown>)[OURS]) return () => undefined;
  const prev = prevUse && prevCache ? prevCache : null;
  // transformers.js asks `match` for the local path, then (in Node, to get the bytes of a
  // non-file Response) again for the cache key, which may be the Hub URL: answer both from a small
  // memo of rewritten files (the two most recent), with a fresh Response each time.
  const memo = new Map<string, Uint8Array>();
  const lookup = (key: string): Uint8Array | undefined => {
    const hit = memo.get(key);
    if (hit) return hit;
    const rel = hubRelative(key);
    if (rel === undefined) return undefined;
    for (const [k, v] of memo) if (k === rel || k.endsWith(`/${rel}`)) return v;
    return undefined;
  };
  // External data side files (`.onnx_data`). Once the rewritten `.onnx` reaches ORT as bytes, ORT
  // can no longer find its side files next to it on disk: transformers.js must pass them as
  // `externalData` buffers, which it does only for files the cache answers with a Response. In Node
  // transformers.js takes each file from the cache twice (first answer, then `match(cacheKey)` for
  // the bytes), elsewhere once; in merge mode the rewrite reads the same file too (before, while
  // or after transformers.js: they run concurrently). So a read (even in flight) is shared until it
  // was taken that many times, then dropped: side files can be gigabytes.
  const TAKES = (IS_NODE ? 2 : 1) + (opts.mode === 'merge' ? 1 : 0);
  const dataMemo = new Map<string, { bytes: Promise<Uint8Array | undefined>; left: number }>();
  const sideFile = (key: string): Promise<Uint8Array | undefined> => {
    const rel = hubRelative(key);
    for (const [k, e] of dataMemo) {
      if (k === key || (rel !== undefined && (k === rel || k.endsWith(`/${rel}`)))) {
        if (--e.left <= 0) dataMemo.delete(k);
        return e.bytes;
      }
    }
    const bytes = readSource(key, env, prev);
    const left = TAKES - 1;
    if (left > 0) {
      const entry = { bytes, left };
      dataMemo.set(key, entry);
      while (dataMemo.size > 2) dataMemo.delete(dataMemo.keys().next().value!);
      const forget = (): void => {
        if (dataMemo.get(key) === entry) dataMemo.delete(key);
      };
      bytes.then((b) => (b ? undefined : forget()), forget);
    }
    return bytes;
  };
  const cache: CacheLike = {
    async match(key: string) {
      try {
        return await answer(key);
      } catch (e) {
        // transformers.js swallows errors of `match` and loads the file itself (unrewritten):
        // keep the reason for `from_pretrained` / `attachAdapters` to report.
        recordFailure(key, e);
        throw e;
      }
    },
    async put(key: string, res: Response) {
      if (prev) await prev.put(key, res);
    },
  };
  const answer = async (key: string): Promise<Response | undefined> => {
    const path = key.split('?')[0]!;
    if (DATA_FILE_RE.test(path)) {
      const bytes = await sideFile(key);
      return bytes ? bytesResponse(bytes) : undefined;
    }
    if (!path.endsWith('.onnx')) return prev ? prev.match(key) : undefined;
    const known = lookup(key);
    if (known) return bytesResponse(known);
    const cfgBytes = await readSource(configKeyFor(key), env, prev);
    const bytes = await readSource(key, env, prev);
    if (!bytes || !cfgBytes) return undefined;
    const shape = shapeFromHfConfig(JSON.parse(new TextDecoder().decode(cfgBytes)));
    const mode = opts.mode ?? 'branch';
    const model = decodeModel(bytes);
    // Merge mode feeds W0 (+ ΔW) from JS, so it needs the base weights' bytes: for external data
    // they are in the side files, read through the same path as the .onnx (locations checked first).
    let external: Map<string, Uint8Array> | undefined;
    if (mode === 'merge') {
      external = new Map();
      for (const location of externalLocations(model.graph?.initializer ?? [])) {
        const dataKey = siblingKey(key, location);
        const data = await sideFile(dataKey);
        if (!data) throw new PluginError(`merge mode: cannot read ${dataKey}, the ONNX external data file (${location}) holding base weights of ${key}`);
        external.set(location, data);
      }
    }
    const r = rewriteModel(model, { targets: shape.modules.map((m) => m.path), mode, ...(external ? { external } : {}) });
    opts.onRewrite?.(key, { branches: r.branches, params: r.params, merged: r.merged });
    memo.set(key, r.bytes);
    while (memo.size > 2) memo.delete(memo.keys().next().value!);
    return bytesResponse(r.bytes);
  };
  (cache as unknown as Record<symbol, unknown>)[OURS] = true;
  env.useCustomCache = true;
  env.customCache = cache;
  return () => {
    env.useCustomCache = prevUse;
    env.customCache = prevCache;
  };
}

/** An ORT tensor as transformers.js' sessions take it. */
type OrtTensor = unknown;
type Feeds = Record<string, OrtTensor>;

interface SessionLike {
  inputNames: readonly string[];
  inputMetadata?: ReadonlyArray<{ name: string; shape?: ReadonlyArray<number | string> }>;
  run(feeds: Feeds, ...rest: unknown[]): Promise<Record<string, unknown>>;
}

function ortTensor(data: Float32Array, dims: number[]): OrtTensor {
  return (new Tensor('float32', data, dims) as unknown as { ort_tensor: OrtTensor }).ort_tensor;
}

/** A float32 ORT tensor on a GPUBuffer, from the ORT build transformers.js runs on (`Tensor.fromGpuBuffer`). */
function ortGpuTensor(buffer: unknown, dims: number[]): OrtTensor {
  const ctor = (ortTensor(new Float32Array(0), [0]) as { constructor: unknown }).constructor as {
    fromGpuBuffer?: (b: unknown, o: { dataType: 'float32'; dims: readonly number[] }) => OrtTensor;
  };
  if (typeof ctor.fromGpuBuffer !== 'function') throw new PluginError('the ONNX Runtime transformers.js uses has no Tensor.fromGpuBuffer (GPU-fed adapters need onnxruntime-web with WebGPU)');
  return ctor.fromGpuBuffer(buffer, { dataType: 'float32', dims });
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
  release(): void;
}

/** What the plugin needs of a WebGPU backend (structurally @tensorpeft/kernels-wgsl's `WebGpuBackend`). */
export interface GpuMaterializer {
  materializeToGpu(jobs: never, opts: { foldScale: boolean; transposeB: boolean }): Promise<GpuModuleUpdateLike[]>;
}

/** The adapter's materialization jobs, exactly as core's `materialize` builds them (method-agnostic). */
function jobsOf(adapter: Adapter): unknown {
  checkParams(adapter.plan, adapter.params);
  const method = adapter.method as unknown as { jobs(config: unknown, plan: unknown, params: unknown): unknown };
  return method.jobs(adapter.config, adapter.plan, adapter.params);
}

type AnyUpdate = ModuleUpdate | GpuModuleUpdateLike;

/** Materialize `adapter`: on the CPU-side backend (ModuleUpdate), or GPU-resident with `gpu`. */
async function materializeAny(adapter: Adapter, backend: Backend | undefined, gpu: GpuMaterializer | undefined): Promise<AnyUpdate[]> {
  if (!gpu) return materializeAdapter(adapter, backend);
  return gpu.materializeToGpu(jobsOf(adapter) as never, { foldScale: true, transposeB: true });
}

function releaseAll(updates: AnyUpdate[] | undefined): void {
  for (const u of updates ?? []) if ('release' in u && typeof u.release === 'function') u.release();
}

/**
 * Device memory behind one GPU-resident buffer: its `size` when it is a GPUBuffer (what the device
 * really allocated, e.g. rounded up by a pool), else the bytes of the float32 tensor it holds.
 */
function gpuBufferBytes(buf: unknown, floats: number): number {
  const size = buf !== null && typeof buf === 'object' ? (buf as { size?: unknown }).size : undefined;
  return typeof size === 'number' && Number.isFinite(size) && size >= 0 ? size : floats * 4;
}

interface SessionModule {
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

interface SessionParam {
  name: string;
  input: string;
  dims: number[];
}

interface HookedSession {
  session: SessionLike;
  modules: SessionModule[];
  params: SessionParam[];
  /** ρ = 0 / no-override feeds: the exact base model. */
  baseFeeds: Feeds;
  /** The session's own `run`. */
  run: (feeds: Feeds, ...rest: unknown[]) => Promise<Record<string, unknown>>;
}

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

function fmt(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function stripPeftKey(key: string): string {
  let k = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  k = k.replace('.modules_to_save.default.', '.');
  return k;
}

/** One registry entry: an adapter (or the base model, `name` null) and its feeds per hooked session. */
interface Entry {
  name: string | null;
  adapter: Adapter | null;
  backend?: Backend;
  gpu?: GpuMaterializer;
  /** GPU-resident updates behind the feeds (released with them). */
  gpuHeld?: GpuModuleUpdateLike[];
  /** Unloaded / replaced while pinned: release `gpuHeld` when the last call ends. */
  releaseWhenIdle?: boolean;
  /** Unloaded / replaced: no longer in the registry (a `with_adapter` view may still run it). */
  removed?: boolean;
  info: LoadedAdapterInfo | null;
  /** null: evicted by the LRU budget. */
  feeds: Feeds[] | null;
  loading: Promise<Feeds[]> | null;
  lastUse: number;
  /** Calls / generate() runs and session runs in progress pinned to this entry (not evicted while > 0). */
  pins: number;
}

/** Bytes held per pool (the budget applies to each). */
interface PoolBytes {
  cpu: number;
  gpu: number;
}

function joinLocation(base: string, name: string): string {
  return base.endsWith('/') ? `${base}${name}` : `${base}/${name}`;
}

function isUrl2(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

/** Read one adapter file with progress events (local path in Node, or http(s) URL). */
async function readWithProgress(file: string, name: string, cb: AdapterProgressCallback): Promise<Uint8Array> {
  cb({ status: 'initiate', name, file });
  let out: Uint8Array;
  if (isUrl2(file)) {
    const res = await fetch(file);
    if (!res.ok) throw new FetchError(`cannot load adapter "${name}": ${file}: HTTP ${res.status} ${res.statusText}`.trim());
    cb({ status: 'download', name, file });
    const total = Number(res.headers.get('content-length') ?? 0);
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    if (res.body) {
      const reader = res.body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.length;
        if (loaded > DEFAULT_MAX_BYTES) {
          await reader.cancel();
          throw new FetchError(`cannot load adapter "${name}": ${file} is larger than ${DEFAULT_MAX_BYTES} bytes`, { file, expected: `≤ ${DEFAULT_MAX_BYTES} bytes`, found: `> ${DEFAULT_MAX_BYTES} bytes` });
        }
        cb({ status: 'progress', name, file, loaded, total: total || loaded, progress: total ? (loaded / total) * 100 : 0 });
      }
    } else {
      chunks.push(new Uint8Array(await res.arrayBuffer()));
      loaded = chunks[0]!.length;
    }
    out = new Uint8Array(loaded);
    let off = 0;
    for (const c of chunks) {
      out.set(c, off);
      off += c.length;
    }
  } else {
    const fs = await import('node:fs/promises');
    const fh = await fs.open(file, 'r').catch((e: Error) => {
      throw new FetchError(`cannot load adapter "${name}": ${file}: ${e.message}`);
    });
    try {
      const total = (await fh.stat()).size;
      // Sized by the file system, still checked before the allocation.
      if (total > DEFAULT_MAX_BYTES) throw new FetchError(`cannot load adapter "${name}": ${file} is larger than ${DEFAULT_MAX_BYTES} bytes`, { file, expected: `≤ ${DEFAULT_MAX_BYTES} bytes`, found: `${total} bytes` });
      cb({ status: 'download', name, file });
      out = new Uint8Array(total);
      const CHUNK = 1 << 20;
      let loaded = 0;
      while (loaded < total) {
        const { bytesRead } = await fh.read(out, loaded, Math.min(CHUNK, total - loaded), loaded);
        if (bytesRead === 0) break;
        loaded += bytesRead;
        cb({ status: 'progress', name, file, loaded, total, progress: (loaded / total) * 100 });
      }
      if (total === 0) cb({ status: 'progress', name, file, loaded: 0, total: 0, progress: 100 });
    } finally {
      await fh.close();
    }
  }
  cb({ status: 'done', name, file });
  return out;
}

async function loadSourceWithProgress(source: string, name: string, cb: AdapterProgressCallback): Promise<Adapter> {
  const strip = (s: string): string => {
    for (const f of [CONFIG_FILE, WEIGHTS_FILE]) if (s.endsWith(`/${f}`)) return s.slice(0, -f.length - 1);
    return s;
  };
  let base: string;
  let q = '';
  if (isUrl2(source)) {
    const u = new URL(source);
    u.pathname = strip(u.pathname);
    q = u.search;
    u.search = '';
    base = u.toString().replace(/\/+$/, '');
  } else {
    base = strip(source.replace(/\/+$/, '') || '/');
  }
  const config = await readWithProgress(`${joinLocation(base, CONFIG_FILE)}${q}`, name, cb);
  const safetensors = await readWithProgress(`${joinLocation(base, WEIGHTS_FILE)}${q}`, name, cb);
  return adapterFromBytes({ config, safetensors, source: base });
}

const VIEW = Symbol.for('tensorpeft.view');

/** The adapter registry for one transformers.js model's sessions. */
export class AdapterRegistry {
  private readonly sessions: HookedSession[] = [];
  private readonly index = new Map<SessionLike, number>();
  private readonly adapters = new Map<string, Entry>();
  private readonly base: Entry;
  /** The entry used by runs starting now (swapped atomically). */
  private current: Entry;
  private clock = 0;
  private maxBytes: number;
  private evictions = 0;
  private rematerializations = 0;

  private readonly webgpu: GpuMaterializer | true | undefined;

  constructor(sessions: SessionLike[], opts: AttachOptions = {}) {
    this.webgpu = opts.webgpu;
    for (const s of sessions) this.hook(s);
    if (this.sessions.length === 0) {
      const last = FAILURES[FAILURES.length - 1];
      const why = last ? ` (the last load-time rewrite failed, on ${last.key}: ${last.error instanceof Error ? last.error.message : String(last.error)})` : '';
      throw new PluginError(`no session of this model has adapter inputs: call enableAdapters(env) before loading the model${why}`);
    }
    this.maxBytes = opts.max_adapter_bytes ?? Number.POSITIVE_INFINITY;
    this.base = { name: null, adapter: null, info: null, feeds: this.sessions.map((h) => h.baseFeeds), loading: null, lastUse: 0, pins: 0 };
    this.current = this.base;
  }

  private hook(session: SessionLike): void {
    const all = [...session.inputNames];
    const ours = all.filter((n) => n.startsWith(INPUT_PREFIX));
    if (ours.length === 0) return;
    const meta = new Map((session.inputMetadata ?? []).map((m) => [m.name, m.shape ?? []]));
    const dimsOf = (name: string): ReadonlyArray<number | string> => {
      const d = meta.get(name);
      if (!d) throw new PluginError(`session has no input metadata for ${name} (onnxruntime ≥ 1.22 needed)`);
      return d;
    };
    const modules: SessionModule[] = [];
    const params: SessionParam[] = [];
    const baseFeeds: Feeds = {};
    for (const name of ours) {
      if (name.startsWith(MERGE_PREFIX)) {
        const rest = name.slice(MERGE_PREFIX.length);
        const path = rest.slice(rest.indexOf('.') + 1);
        const base = baseWeightOf(name);
        if (!base) throw new PluginError(`merge-mode input ${name} has no base weight in this process (the model must be rewritten by enableAdapters in this process)`);
        const w0 = base.data;
        const wDims = dimsOf(name).map(Number);
        // [in, out] for MatMul / Conv1D Gemm, [out, in] for Gemm transB=1.
        const lay: WeightLayout = base.layout;
        const n = lay === 'in_out' ? wDims[0]! : wDims[1]!;
        const m = lay === 'in_out' ? wDims[1]! : wDims[0]!;
        modules.push({ path, inputW: name, layout: lay, w0, wDims, n, m });
        baseFeeds[name] = ortTensor(w0, wDims);
      } else if (name.startsWith(PARAM_PREFIX)) {
        const d = dimsOf(name);
        const dims = d.slice(1).map(Number);
        params.push({ name: name.slice(PARAM_PREFIX.length), input: name, dims });
        baseFeeds[name] = ortTensor(new Float32Array(0), [0, ...dims]);
      } else if (name.endsWith('.A')) {
        const path = name.slice(INPUT_PREFIX.length, -2);
        const inputB = `${INPUT_PREFIX}${path}.B`;
        const n = Number(dimsOf(name)[0]);
        const m = Number(dimsOf(inputB)[1]);
        modules.push({ path, inputA: name, inputB, n, m });
        // ρ = 0 (exact base); on WebGPU, which cannot bind empty tensors, ρ = 1 zeros.
        const r0 = this.webgpu ? 1 : 0;
        baseFeeds[name] = ortTensor(new Float32Array(n * r0), [n, r0]);
        baseFeeds[inputB] = ortTensor(new Float32Array(r0 * m), [r0, m]);
      }
    }
    const run = session.run.bind(session);
    const hooked: HookedSession = { session, modules, params, baseFeeds, run };
    const idx = this.sessions.length;
    this.sessions.push(hooked);
    this.index.set(session, idx);
    const visible = all.filter((n) => !n.startsWith(INPUT_PREFIX));
    Object.defineProperty(session, 'inputNames', { value: visible, configurable: true });
    if (session.inputMetadata) {
      const vm = session.inputMetadata.filter((m) => !m.name.startsWith(INPUT_PREFIX));
      Object.defineProperty(session, 'inputMetadata', { value: vm, configurable: true });
    }
    const self = this;
    Object.defineProperty(session, 'run', {
      configurable: true,
      value(feeds: Feeds, ...rest: unknown[]) {
        // Captured synchronously at run start: a later swap does not affect this run.
        return self.runWith(idx, self.current, feeds, rest);
      },
    });
  }

  /** Run hooked session `idx` with `entry`'s feeds (re-materializing them first if evicted). */
  private runWith(idx: number, entry: Entry, feeds: Feeds, rest: unknown[]): Promise<Record<string, unknown>> {
    const h = this.sessions[idx]!;
    // Pinned for the run itself too (a direct `session.run` has no call around it): its feeds may be
    // GPU buffers, which an eviction would hand back to the pool — and to the next materialization —
    // while the run still reads them.
    return this.pinned(entry, () => {
      const f = entry.feeds;
      if (f) return h.run({ ...feeds, ...f[idx]! }, ...rest);
      return this.ensure(entry).then((fs) => h.run({ ...feeds, ...fs[idx]! }, ...rest));
    });
  }

  private ensure(entry: Entry): Promise<Feeds[]> {
    if (entry.feeds) return Promise.resolve(entry.feeds);
    if (entry.loading) return entry.loading;
    // Make room first, with the sizes this adapter had: the evicted adapters' GPU buffers go back
    // to the pool before materializeToGpu asks it for buffers, so an adapter of the same shapes
    // reuses them instead of the device holding budget + one adapter at the peak.
    if (entry.info && !entry.removed) this.enforceBudget(entry, { cpu: entry.info.bytes, gpu: entry.info.gpu_bytes });
    const p = materializeAny(entry.adapter!, entry.backend, entry.gpu)
      .then((updates) =>
        this.build(entry.name!, entry.adapter!, updates, entry.backend).then(
          (built) => ({ built, updates }),
          (e: unknown) => {
            releaseAll(updates);
            throw e;
          },
        ),
      )
      .then(
        ({ built, updates }) => {
          entry.feeds = built.feeds;
          if (entry.gpu) entry.gpuHeld = updates as GpuModuleUpdateLike[];
          entry.loading = null;
          entry.lastUse = ++this.clock;
          this.rematerializations++;
          // Unloaded / replaced meanwhile (run through a `with_adapter` view): the waiting runs get
          // the feeds, then the buffers go back (nobody else would ever release them).
          if (entry.removed) this.releaseGpu(entry);
          else this.enforceBudget(entry);
          return built.feeds;
        },
        (e: unknown) => {
          entry.loading = null;
          throw e;
        },
      );
    entry.loading = p;
    return p;
  }

  /** Bytes held now by the materialized adapters, per pool. */
  private held(): PoolBytes {
    const total = { cpu: 0, gpu: 0 };
    for (const e of this.adapters.values()) {
      if (!e.feeds) continue;
      total.cpu += e.info!.bytes;
      total.gpu += e.info!.gpu_bytes;
    }
    return total;
  }

  /**
   * Evict least recently used adapters' feeds while a pool is over the budget (never `keep`, the
   * active one, or pinned ones), counting `incoming` bytes about to be materialized. Only adapters
   * holding bytes in a pool that is over are candidates: dropping the others would free nothing there.
   */
  private enforceBudget(keep?: Entry, incoming: PoolBytes = { cpu: 0, gpu: 0 }): void {
    if (!Number.isFinite(this.maxBytes)) return;
    const total = this.held();
    total.cpu += incoming.cpu;
    total.gpu += incoming.gpu;
    for (;;) {
      const cpuOver = total.cpu > this.maxBytes;
      const gpuOver = total.gpu > this.maxBytes;
      if (!cpuOver && !gpuOver) break;
      let victim: Entry | undefined;
      for (const e of this.adapters.values()) {
        if (!e.feeds || e === keep || e === this.current || e.pins > 0) continue;
        if (!((cpuOver && e.info!.bytes > 0) || (gpuOver && e.info!.gpu_bytes > 0))) continue;
        if (!victim || e.lastUse < victim.lastUse) victim = e;
      }
      if (!victim) break;
      // Not pinned: no run reads these feeds, so the GPU buffers can go back to the pool now.
      victim.feeds = null;
      releaseAll(victim.gpuHeld);
      victim.gpuHeld = undefined;
      total.cpu -= victim.info!.bytes;
      total.gpu -= victim.info!.gpu_bytes;
      this.evictions++;
    }
  }

  get active_adapter(): string | null {
    return this.current.name;
  }

  /** Materialize an adapter (any method), check it against the model, keep its feeds under `name`. */
  async load_adapter(name: string, source: AdapterSource, opts: LoadAdapterOptions = {}): Promise<LoadedAdapterInfo> {
    if (this.adapters.has(name) && !opts.replace) throw new PluginError(`an adapter named "${name}" is already loaded (unload it first, or pass { replace: true })`);
    const cb = opts.progress_callback;
    let adapter: Adapter;
    if (typeof source === 'string') adapter = cb ? await loadSourceWithProgress(source, name, cb) : await loadAdapter(source);
    else adapter = 'method' in source && 'plan' in source ? source : adapterFromBytes(source as AdapterFromBytesInput);
    const total = adapter.plan.modules.length;
    cb?.({ status: 'initiate', name, file: 'materialize' });
    cb?.({ status: 'progress', name, file: 'materialize', loaded: 0, total, progress: 0 });
    const gpu = opts.gpu === null ? undefined : (opts.gpu ?? (typeof this.webgpu === 'object' ? this.webgpu : undefined));
    const updates = await materializeAny(adapter, opts.backend, gpu);
    let built: Awaited<ReturnType<AdapterRegistry['build']>>;
    try {
      built = await this.build(name, adapter, updates, opts.backend, cb);
    } catch (e) {
      releaseAll(gpu ? updates : undefined);
      throw e;
    }
    cb?.({ status: 'done', name, file: 'materialize' });
    const entry: Entry = {
      name,
      adapter,
      ...(opts.backend ? { backend: opts.backend } : {}),
      ...(gpu ? { gpu, gpuHeld: updates as GpuModuleUpdateLike[] } : {}),
      info: built.info,
      feeds: built.feeds,
      loading: null,
      lastUse: ++this.clock,
      pins: 0,
    };
    const old = this.adapters.get(name);
    this.adapters.set(name, entry);
    if (old && this.current === old) this.current = entry;
    if (old) this.releaseGpu(old);
    // Over the budget, even the adapter just loaded may go (it was checked; it re-materializes on use).
    this.enforceBudget();
    cb?.({ status: 'ready', name });
    return this.infoOf(entry);
  }

  private async build(name: string, adapter: Adapter, updates: AnyUpdate[], backend: Backend | undefined, cb?: AdapterProgressCallback): Promise<{ feeds: Feeds[]; info: LoadedAdapterInfo }> {
    let bytes = 0;
    let gpuBytes = 0;
    const feeds: Feeds[] = this.sessions.map((h) => ({ ...h.baseFeeds }));
    // Check every module against every hooked session before keeping anything.
    const prepared: Array<{ u: AnyUpdate; A: () => OrtTensor; Bt: () => OrtTensor; bytes: number }> = [];
    for (const u of updates) {
      let found = false;
      for (const h of this.sessions) {
        const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
        if (!mod) continue;
        found = true;
        if (mod.n !== u.n || mod.m !== u.m) {
          throw new ShapeMismatchError(`adapter "${name}" does not fit this model: module ${u.path} has weight [out, in] = ${fmt([u.m, u.n])} in the adapter but ${fmt([mod.m, mod.n])} in the model`);
        }
      }
      if (!found) {
        throw new ShapeMismatchError(`adapter "${name}" does not fit this model: module ${u.path} (weight [out, in] = ${fmt([u.m, u.n])}) is not a linear of the model`);
      }
      if ('release' in u) {
        // GPU-resident: A′ [n, ρ] and s·B′ᵀ [ρ, m] already (materializeToGpu with foldScale, transposeB).
        // Held whatever the sessions feed (released with the adapter), so counted in full.
        gpuBytes += gpuBufferBytes(u.A, u.n * u.rho) + gpuBufferBytes(u.B, u.rho * u.m);
        prepared.push({ u, A: () => ortGpuTensor(u.A, [u.n, u.rho]), Bt: () => ortGpuTensor(u.B, [u.rho, u.m]), bytes: 0 });
        continue;
      }
      const cu = u as ModuleUpdate;
      // B′ [m, ρ] → s·B′ᵀ [ρ, m].
      const Bt = new Float32Array(cu.rho * cu.m);
      for (let i = 0; i < cu.m; i++) for (let r = 0; r < cu.rho; r++) Bt[r * cu.m + i] = cu.s * cu.B[i * cu.rho + r]!;
      const A = cu.A;
      prepared.push({ u, A: () => ortTensor(A, [cu.n, cu.rho]), Bt: () => ortTensor(Bt, [cu.rho, cu.m]), bytes: (A.length + Bt.length) * 4 });
    }
    const heads: string[] = [];
    for (const [key, t] of adapter.extras) {
      const pname = stripPeftKey(key);
      let found = false;
      for (let si = 0; si < this.sessions.length; si++) {
        const h = this.sessions[si]!;
        const p = h.params.find((x) => x.name === pname) ?? h.params.find((x) => pathsMatch(pname, x.name));
        if (!p) continue;
        found = true;
        const same = p.dims.length === t.shape.length && p.dims.every((d, i) => d === t.shape[i]);
        if (!same) throw new ShapeMismatchError(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} is ${fmt(t.shape)} in the adapter but ${fmt(p.dims)} in the model`);
        feeds[si]![p.input] = ortTensor(Float32Array.from(t.data), [1, ...p.dims]);
      }
      if (!found) throw new ShapeMismatchError(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} (${fmt(t.shape)}) has no overridable parameter in the model`);
      heads.push(pname);
      bytes += t.data.length * 4;
    }
    // A head's weight and bias are replaced together (PEFT saves whole modules).
    this.sessions.forEach((h, si) => {
      const fed = new Set(h.params.filter((p) => feeds[si]![p.input] !== h.baseFeeds[p.input]).map((p) => p.name));
      for (const p of h.params) {
        if (fed.has(p.name)) continue;
        const sib = p.name.endsWith('.bias') ? `${p.name.slice(0, -5)}.weight` : p.name.endsWith('.weight') ? `${p.name.slice(0, -7)}.bias` : undefined;
        if (sib !== undefined && fed.has(sib)) {
          throw new ShapeMismatchError(`adapter "${name}" does not fit this model: modules_to_save gives ${sib} but not ${p.name} (${fmt(p.dims)} in the model)`);
        }
      }
    });
    const merges = this.sessions.some((h) => h.modules.some((x) => x.inputW !== undefined));
    const be = merges ? (backend ?? (await getBackend())) : undefined;
    let done = 0;
    for (const { u, A, Bt, bytes: branchBytes } of prepared) {
      let branch = false;
      for (let si = 0; si < this.sessions.length; si++) {
        const h = this.sessions[si]!;
        const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
        if (!mod) continue;
        if (mod.inputW !== undefined) {
          // Merge mode: W0 + s·B′A′ᵀ in the weight's own layout, by the backend.
          if ('release' in u) throw new PluginError(`adapter "${name}": GPU-fed adapters ({ gpu }) need branch mode, not merge mode`);
          const W = mod.w0!.slice();
          await be!.merge(W, mod.layout!, u as ModuleUpdate);
          feeds[si]![mod.inputW] = ortTensor(W, mod.wDims!);
          bytes += W.byteLength;
        } else {
          feeds[si]![mod.inputA!] = A();
          feeds[si]![mod.inputB!] = Bt();
          branch = true;
        }
      }
      if (branch) bytes += branchBytes;
      done++;
      cb?.({ status: 'progress', name, file: 'materialize', loaded: done, total: prepared.length, progress: (done / Math.max(1, prepared.length)) * 100 });
    }
    return {
      feeds,
      info: { name, peft_type: adapter.config.peft_type, modules: updates.length, rank: adapter.plan.rank, modules_to_save: heads, bytes, gpu_bytes: gpuBytes, materialized: true },
    };
  }

  private infoOf(e: Entry): LoadedAdapterInfo {
    return { ...e.info!, modules_to_save: [...e.info!.modules_to_save], materialized: e.feeds !== null };
  }

  /** The entry of adapter `name` (`null`: the base model). */
  entryFor(name: string | null): Entry {
    if (name === null) return this.base;
    const a = this.adapters.get(name);
    if (!a) throw new PluginError(`no adapter named "${name}" is loaded (loaded: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    return a;
  }

  /** The entry runs starting now use. */
  currentEntry(): Entry {
    return this.current;
  }

  set_adapter(name: string): void {
    if (typeof name !== 'string') throw new PluginError('set_adapter needs a name (disable_adapters() for the base model)');
    const a = this.entryFor(name);
    a.lastUse = ++this.clock;
    this.current = a;
    // Warm an evicted adapter now (runs starting before it is ready wait for it).
    if (!a.feeds) this.ensure(a).catch(() => undefined);
  }

  /** Exact base model from the next run on. */
  disable_adapters(): void {
    this.current = this.base;
  }

  unload_adapter(name: string): void {
    const e = this.adapters.get(name);
    if (!e) throw new PluginError(`no adapter named "${name}" is loaded`);
    this.adapters.delete(name);
    if (this.current === e) this.disable_adapters();
    this.releaseGpu(e);
  }

  /** Give a removed entry's GPU buffers back (after the calls pinned to it, if any, end). */
  private releaseGpu(e: Entry): void {
    e.removed = true;
    if (!e.gpuHeld) return;
    if (e.pins > 0) {
      e.releaseWhenIdle = true;
      return;
    }
    this.dropRemovedGpu(e);
  }

  /**
   * Release a removed entry's GPU buffers. Its feeds go too: they point at buffers the pool may hand
   * to another adapter, so a stale `with_adapter` view re-materializes instead of reading them.
   */
  private dropRemovedGpu(e: Entry): void {
    releaseAll(e.gpuHeld);
    e.gpuHeld = undefined;
    e.feeds = null;
  }

  list_adapters(): LoadedAdapterInfo[] {
    return [...this.adapters.values()].map((e) => this.infoOf(e));
  }

  set_max_adapter_bytes(bytes: number): void {
    if (!(bytes >= 0)) throw new PluginError(`max_adapter_bytes must be a non-negative number, got ${bytes}`);
    this.maxBytes = bytes;
    this.enforceBudget();
  }

  adapter_memory(): AdapterMemoryInfo {
    const held = this.held();
    return { materialized_bytes: held.cpu, gpu_bytes: held.gpu, max_adapter_bytes: this.maxBytes, evictions: this.evictions, rematerializations: this.rematerializations };
  }

  /** Run `fn` with `entry` pinned (not evicted) until the promise it returns settles. */
  pinned<R>(entry: Entry, fn: () => R): Promise<Awaited<R>> {
    entry.pins++;
    entry.lastUse = ++this.clock;
    let p: Promise<Awaited<R>>;
    try {
      p = Promise.resolve(fn());
    } catch (e) {
      p = Promise.reject(e);
    }
    return p.finally(() => {
      // Adapters in use are never evicted: the budget is re-applied when the last user is done.
      if (--entry.pins === 0) {
        // A GPU-fed adapter unloaded / replaced while calls used it: its buffers go back now.
        if (entry.releaseWhenIdle) {
          entry.releaseWhenIdle = false;
          this.dropRemovedGpu(entry);
        }
        this.enforceBudget();
      }
    });
  }

  /** `sessions` of a view pinned to `entry`: each hooked session runs with `entry`'s feeds. */
  pinnedSessions(sessions: Record<string, SessionLike>, entry: Entry): Record<string, SessionLike> {
    const out: Record<string, SessionLike> = {};
    for (const [k, s] of Object.entries(sessions)) {
      const idx = this.index.get(s);
      if (idx === undefined) {
        out[k] = s;
        continue;
      }
      const view = Object.create(s) as SessionLike;
      Object.defineProperty(view, 'run', {
        configurable: true,
        value: (feeds: Feeds, ...rest: unknown[]) => this.runWith(idx, entry, feeds, rest),
      });
      out[k] = view;
    }
    return out;
  }
}

interface ModelLike {
  sessions: Record<string, SessionLike>;
  _call(...args: unknown[]): unknown;
  generate?(opts?: Record<string, unknown>): Promise<unknown>;
}

interface PipelineLike {
  model: ModelLike;
  _call(...args: unknown[]): unknown;
}

const REGISTRY = Symbol.for('tensorpeft.registry');
const HOOKED = Symbol.for('tensorpeft.hookedCall');

function isPlainObject(x: unknown): x is Record<string, unknown> {
  if (x === null || typeof x !== 'object') return false;
  const p = Object.getPrototypeOf(x) as unknown;
  return p === Object.prototype || p === null;
}

type Callish = ((...args: unknown[]) => unknown) & Record<PropertyKey, unknown>;

/** A callable view of `target` (a Callable whose `closure._call` is looked up on the view). */
function callableView<T extends object>(target: T, own: Record<PropertyKey, unknown>): T {
  const view = ((...args: unknown[]) => (view as unknown as { _call: (...a: unknown[]) => unknown })._call(...args)) as unknown as Callish;
  Object.setPrototypeOf(view, target);
  for (const k of Reflect.ownKeys(own)) Object.defineProperty(view, k, { value: own[k], configurable: true, writable: true });
  return view as unknown as T;
}

/**
 * Hook a model's `_call` and `generate`: every call / `generate()` runs pinned to one adapter for its
 * whole duration (all sessions, all tokens): the one active when it started, or the per-call
 * `{ adapter: name | null }` (2nd argument of `model(inputs, { adapter })`, or a key of `generate`'s options).
 */
function hookModel(model: ModelLike, reg: AdapterRegistry): (entry: Entry) => ModelLike {
  const makeView = (entry: Entry): ModelLike => callableView(model, { sessions: reg.pinnedSessions(model.sessions, entry), [VIEW]: entry });
  const holder = model as unknown as Record<symbol, unknown>;
  if (holder[HOOKED]) return makeView;
  holder[HOOKED] = true;
  const origCall = model._call;
  Object.defineProperty(model, '_call', {
    configurable: true,
    writable: true,
    value(this: ModelLike & Record<symbol, unknown>, inputs: unknown, opts?: unknown, ...rest: unknown[]) {
      if (isPlainObject(opts) && 'adapter' in opts) {
        let entry: Entry;
        try {
          entry = reg.entryFor((opts.adapter ?? null) as string | null);
        } catch (e) {
          return Promise.reject(e);
        }
        return reg.pinned(entry, () => origCall.call(makeView(entry), inputs, ...rest));
      }
      if (this[VIEW]) return origCall.call(this, inputs, opts, ...rest);
      const entry = reg.currentEntry();
      return reg.pinned(entry, () => origCall.call(makeView(entry), inputs, opts, ...rest));
    },
  });
  const origGenerate = model.generate;
  if (typeof origGenerate === 'function') {
    Object.defineProperty(model, 'generate', {
      configurable: true,
      writable: true,
      value(this: ModelLike & Record<symbol, unknown>, opts: Record<string, unknown> = {}) {
        if (isPlainObject(opts) && 'adapter' in opts) {
          const { adapter, ...rest } = opts;
          let entry: Entry;
          try {
            entry = reg.entryFor((adapter ?? null) as string | null);
          } catch (e) {
            return Promise.reject(e);
          }
          return reg.pinned(entry, () => origGenerate.call(makeView(entry), rest));
        }
        if (this[VIEW]) return origGenerate.call(this, opts);
        const entry = reg.currentEntry();
        return reg.pinned(entry, () => origGenerate.call(makeView(entry), opts));
      },
    });
  }
  return makeView;
}

/** Hook a pipeline's `_call`: its last argument may carry `adapter`; the whole call is pinned. */
function hookPipeline(pipe: PipelineLike, reg: AdapterRegistry, modelView: (e: Entry) => ModelLike): (entry: Entry) => PipelineLike {
  const holder = pipe as unknown as Record<symbol, unknown>;
  const origCall = (holder[HOOKED] as PipelineLike['_call'] | undefined) ?? pipe._call;
  const runPinned = (self: PipelineLike, entry: Entry, args: unknown[]): Promise<unknown> =>
    reg.pinned(entry, () => origCall.apply(Object.create(self, { model: { value: modelView(entry), configurable: true, writable: true } }), args));
  const makeView = (entry: Entry): PipelineLike =>
    callableView(pipe, {
      [VIEW]: entry,
      _call: function (this: PipelineLike, ...args: unknown[]) {
        return runPinned(this, entry, args);
      },
    });
  if (holder[HOOKED]) return makeView;
  holder[HOOKED] = origCall;
  Object.defineProperty(pipe, '_call', {
    configurable: true,
    writable: true,
    value(this: PipelineLike, ...args: unknown[]) {
      const last = args[args.length - 1];
      if (args.length >= 2 && isPlainObject(last) && 'adapter' in last) {
        const { adapter, ...restOpts } = last;
        let entry: Entry;
        try {
          entry = reg.entryFor((adapter ?? null) as string | null);
        } catch (e) {
          return Promise.reject(e);
        }
        return runPinned(this, entry, [...args.slice(0, -1), restOpts]);
      }
      return runPinned(this, reg.currentEntry(), args);
    },
  });
  return makeView;
}

/**
 * Attach the adapter registry to a transformers.js model (from `AutoModel*.from_pretrained`, loaded
 * after `enableAdapters(env)`) or a pipeline (its `.model`). Adds `load_adapter`, `set_adapter`,
 * `disable_adapters`, `unload_adapter`, `list_adapters`, `active_adapter`, `with_adapter`,
 * `set_max_adapter_bytes`, `adapter_memory` to the object and returns it. Calls and `generate()`
 * keep one adapter from start to end; `model(inputs, { adapter })`, `model.generate({ …, adapter })`
 * and `pipe(input, { …, adapter })` pick one per call (`null`: the base model).
 */
export function attachAdapters<T extends object>(target: T, opts: AttachOptions = {}): T & AdapterMethods {
  const isModel = 'sessions' in target;
  const model = (isModel ? target : (target as { model?: unknown }).model) as ModelLike | undefined;
  if (!model || (typeof model !== 'object' && typeof model !== 'function') || !('sessions' in model)) throw new PluginError('attachAdapters expects a transformers.js model or pipeline');
  const holder = model as unknown as Record<symbol, AdapterRegistry | undefined>;
  const reg = holder[REGISTRY] ?? new AdapterRegistry(Object.values(model.sessions), opts);
  holder[REGISTRY] = reg;
  if (opts.max_adapter_bytes !== undefined) reg.set_max_adapter_bytes(opts.max_adapter_bytes);
  const modelView = hookModel(model, reg);
  const view = isModel ? (modelView as unknown as (e: Entry) => T) : (hookPipeline(target as unknown as PipelineLike, reg, modelView) as unknown as (e: Entry) => T);
  const t = target as T & AdapterMethods;
  Object.defineProperties(t, {
    load_adapter: { value: reg.load_adapter.bind(reg), configurable: true },
    set_adapter: { value: reg.set_adapter.bind(reg), configurable: true },
    disable_adapters: { value: reg.disable_adapters.bind(reg), configurable: true },
    unload_adapter: { value: reg.unload_adapter.bind(reg), configurable: true },
    list_adapters: { value: reg.list_adapters.bind(reg), configurable: true },
    active_adapter: { get: () => reg.active_adapter, configurable: true },
    with_adapter: { value: (name: string | null) => view(reg.entryFor(name)), configurable: true },
    set_max_adapter_bytes: { value: reg.set_max_adapter_bytes.bind(reg), configurable: true },
    adapter_memory: { value: reg.adapter_memory.bind(reg), configurable: true },
  });
  return t;
}

/** Loader with a static `from_pretrained` (AutoModelForSequenceClassification, …). */
export interface PretrainedLoader<M> {
  from_pretrained(id: string, options?: Record<string, unknown>): Promise<M>;
}

export interface FromPretrainedOptions extends Record<string, unknown> {
  /** Adapters to load: name → folder/URL, Adapter, or bytes. The first becomes active. */
  adapters?: Record<string, AdapterSource>;
  /** `branch` (default) or `merge` (fp32 models; see `EnableOptions.mode`). */
  mode?: 'branch' | 'merge';
  /** LRU byte budget for materialized adapters (see `AttachOptions`). */
  max_adapter_bytes?: number;
  /** Sessions on ORT-web's WebGPU EP; a backend GPU-feeds the adapters (see `AttachOptions.webgpu`). */
  webgpu?: GpuMaterializer | true;
  /** transformers.js' progress callback: gets the model files' events, then each adapter's (`AdapterProgressInfo`). */
  progress_callback?: (info: never) => void;
}

/**
 * `TensorPeft.from_pretrained(AutoModelForSequenceClassification, 'distilbert', { dtype: 'q8', adapters: { emotion: 'path/to/adapter' } })`:
 * enables the rewrite for this load (restoring the previous cache settings after), loads the
 * model, attaches the registry and loads the given adapters.
 */
export async function from_pretrained<M extends object>(
  env: CacheEnv,
  loader: PretrainedLoader<M>,
  id: string,
  options: FromPretrainedOptions = {},
): Promise<M & AdapterMethods> {
  const { adapters, max_adapter_bytes, mode, webgpu, ...rest } = options;
  const restore = enableAdapters(env, mode ? { mode } : {});
  const since = failureCount;
  let model: M;
  try {
    model = await loader.from_pretrained(id, rest);
  } catch (e) {
    // The rewrite's typed error (e.g. a bad external data reference) rather than what ORT then
    // says about the file transformers.js fell back to.
    throw failuresSince(since).find((f) => f instanceof PluginError) ?? e;
  } finally {
    restore();
  }
  // transformers.js fell back to the unrewritten file: the model would run without adapter inputs.
  const failed = failuresSince(since);
  if (failed.length > 0) throw failed[0];
  const m = attachAdapters(model, { ...(max_adapter_bytes === undefined ? {} : { max_adapter_bytes }), ...(webgpu === undefined ? {} : { webgpu }) });
  const cb = options.progress_callback as AdapterProgressCallback | undefined;
  let first = true;
  for (const [name, src] of Object.entries(adapters ?? {})) {
    await m.load_adapter(name, src, cb ? { progress_callback: cb } : {});
    if (first) m.set_adapter(name);
    first = false;
  }
  return m;
}
