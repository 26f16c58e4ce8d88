/**
 * The adapter registry of one transformers.js model: hooks its sessions' `run`, keeps each loaded
 * adapter's feeds (re-materialized after an LRU eviction), and swaps them atomically per run.
 */
import { adapterFromBytes, getBackend, loadOfficialIfAny, ShapeMismatchError, type Adapter, type AdapterFromBytesInput, type Backend, type ModuleUpdate, type TensorMap, type WeightLayout } from '@tensorpeft/core';
import { PluginError } from './errors.js';
import { INPUT_PREFIX, MERGE_PREFIX, PARAM_PREFIX, baseWeightOf, pathsMatch } from './rewrite.js';
import { FAILURES } from './cache.js';
import { gpuBufferBytes, ortGpuTensor, ortTensor, releaseAll, type AnyUpdate, type Feeds, type GpuMaterializer, type GpuModuleUpdateLike, type HookedSession, type OrtTensor, type SessionLike, type SessionModule, type SessionParam } from './ort-feeds.js';
import { readAdapter } from './adapter-source.js';
import { adapterPayload, filesPayload, weightedPayload, type Payload } from './payload.js';
import { normalizeLoadArgs } from './load-args.js';
import { withHalfFeeds } from './half-feeds.js';
import { adapterInputDtype, gpuElementBytes, gpuForSessions, type AdapterDtype } from './gpu-half.js';
import { runMerged } from './feed-pool.js';
import { siblingView, withSiblingFeeds } from './sibling-feeds.js';
import { adaptMixedFeeds, initMixedSession } from './mixed-feeds.js';
import type { AdapterMemoryInfo, AdapterProgressCallback, AdapterSource, AttachOptions, LoadAdapterOptions, LoadedAdapterInfo, WeightedAdapterOptions } from './types.js';

function fmt(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function stripPeftKey(key: string): string {
  let k = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  k = k.replace('.modules_to_save.default.', '.');
  return k;
}

/** One registry entry: an adapter (or the base model, `name` null) and its feeds per hooked session. */
export interface Entry {
  name: string | null;
  /** What the feeds are (re-)materialized from; null for the base model. */
  payload: Payload | null;
  /** Per-adapter scale on ΔW (heads are not scaled), folded into the feeds. */
  scale: number;
  /**
   * Feeds a per-call scale rescales, with their unscaled-by-the-call data: branch `s·B′ᵀ` inputs
   * (`w0` absent) and merged weights (`w0` present: the scaled weight is `W0 + f·(W − W0)`).
   */
  scalable?: Array<{ si: number; input: string; data: Float32Array; dims: number[]; w0?: Float32Array }>;
  /** A per-call scaled view of this entry (not in the registry; feeds derived from it). */
  derivedFrom?: { entry: Entry; factor: number };
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
  /** Checks each session run's inputs before it starts (mixed batches: one row per adapter name). */
  checkRun?: (feeds: Feeds) => void;
}

/** `{ config, safetensors }` already in memory (not Blobs): parsed as given (its `shape` kept). */
function isBytesInput(x: unknown): x is AdapterFromBytesInput {
  if (typeof x !== 'object' || x === null || !('safetensors' in x) || !('config' in x)) return false;
  const { config } = x as { config: unknown };
  return (x as { safetensors: unknown }).safetensors instanceof Uint8Array && !(typeof Blob !== 'undefined' && config instanceof Blob);
}

/** Bytes held per pool (the budget applies to each). */
interface PoolBytes {
  cpu: number;
  gpu: number;
}

export const VIEW = Symbol.for('tensorpeft.view');

/** The adapter registry for one transformers.js model's sessions. */
export class AdapterRegistry {
  private readonly sessions: HookedSession[] = [];
  private readonly index = new Map<SessionLike, number>();
  private readonly adapters = new Map<string, Entry>();
  private readonly base: Entry;
  /** The entry used by runs starting now (swapped atomically). */
  private current: Entry;
  /** The adapter `set_adapter` chose (kept by `disable_adapters`, run again by `enable_adapters`). */
  private selected: Entry | null = null;
  /** Names reserved by loads in flight. */
  private readonly pending = new Set<string>();
  private clock = 0;
  private maxBytes: number;
  private evictions = 0;
  private rematerializations = 0;

  private readonly webgpu: GpuMaterializer | true | undefined;
  /** Element types the hooked sessions declare for branch inputs: GPU-fed buffers follow them (gpu-half.ts). */
  private readonly adapterDtypes = new Set<AdapterDtype>();

  /** Run functions of unrewritten twin sessions, by hooked session index (AttachOptions.base_sessions). */
  private readonly twinRuns = new Map<number, (feeds: Feeds, ...rest: unknown[]) => Promise<Record<string, unknown>>>();

  constructor(sessions: SessionLike[], opts: AttachOptions = {}, twins?: ReadonlyMap<object, NonNullable<AttachOptions['base_sessions']>[string]>) {
    this.webgpu = opts.webgpu;
    for (const s of sessions) {
      this.hook(s);
      const twin = twins?.get(s);
      const idx = this.index.get(s);
      if (twin && idx !== undefined) this.twinRuns.set(idx, twin.run.bind(twin));
    }
    if (this.sessions.length === 0) {
      const last = FAILURES[FAILURES.length - 1];
      const why = last ? ` (the last load-time rewrite failed, on ${last.key}: ${last.error instanceof Error ? last.error.message : String(last.error)})` : '';
      throw new PluginError(`no session of this model has adapter inputs: call enableAdapters(env) before loading the model${why}`);
    }
    this.maxBytes = opts.max_adapter_bytes ?? Number.POSITIVE_INFINITY;
    this.base = { name: null, payload: null, scale: 1, info: null, feeds: this.sessions.map((h) => h.baseFeeds), loading: null, lastUse: 0, pins: 0 };
    this.current = this.base;
  }

  private hook(session: SessionLike): void {
    // Fused sibling inputs (rewrite-siblings.ts) are seen as the per-module inputs they are fed from.
    const sib = siblingView(session);
    const all = sib ? sib.names : [...session.inputNames];
    const ours = all.filter((n) => n.startsWith(INPUT_PREFIX));
    if (ours.length === 0) return;
    const meta = new Map((sib ? sib.meta : (session.inputMetadata ?? [])).map((m) => [m.name, m.shape ?? []]));
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
        // The last two dims ([slots, n, rho] / [slots, rho, m] in a mixed-batch rewrite).
        const n = Number(dimsOf(name).at(-2));
        const m = Number(dimsOf(inputB).at(-1));
        modules.push({ path, inputA: name, inputB, n, m });
        // ρ = 0 (exact base); on WebGPU, which cannot bind empty tensors, ρ = 1 zeros.
        const r0 = this.webgpu ? 1 : 0;
        baseFeeds[name] = ortTensor(new Float32Array(n * r0), [n, r0]);
        baseFeeds[inputB] = ortTensor(new Float32Array(r0 * m), [r0, m]);
      }
    }
    // fp16 graphs declare the adapter inputs float16; float32 feeds are converted (half-feeds.ts, issue 12).
    // Outermost: the fused sibling feeds are assembled before the fp16 conversion (sibling-feeds.ts).
    const run = withSiblingFeeds(sib, withHalfFeeds(session, session.run.bind(session)));
    const adt = adapterInputDtype(session);
    if (adt) this.adapterDtypes.add(adt);
    const hooked: HookedSession = { session, modules, params, baseFeeds, run };
    initMixedSession(hooked, ours);
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
    // No adapter and an unrewritten twin: the original graph, fed as the caller fed it.
    const twin = entry === this.base ? this.twinRuns.get(idx) : undefined;
    if (twin) return twin(feeds, ...rest);
    return this.pinned(entry, () => {
      entry.checkRun?.(feeds);
      const f = entry.feeds;
      // The merged feeds object is reused across runs (feed-pool.ts): no per-run copy of the adapter feeds.
      if (f) return runMerged(h.run, f[idx]!, feeds, rest);
      return this.ensure(entry).then((fs) => runMerged(h.run, fs[idx]!, feeds, rest));
    });
  }

  private ensure(entry: Entry): Promise<Feeds[]> {
    if (entry.feeds) return Promise.resolve(entry.feeds);
    if (entry.loading) return entry.loading;
    const derived = entry.derivedFrom;
    if (derived) {
      // The parent pinned for the derivation only: the view keeps its own (rescaled) tensors.
      const p = this.pinned(derived.entry, () => this.ensure(derived.entry)).then((fs) => {
        entry.feeds = this.rescaled(derived.entry, fs, derived.factor);
        entry.loading = null;
        return entry.feeds;
      });
      entry.loading = p;
      p.catch(() => (entry.loading = null));
      return p;
    }
    // Make room first, with the sizes this adapter had: the evicted adapters' GPU buffers go back
    // to the pool before materializeToGpu asks it for buffers, so an adapter of the same shapes
    // reuses them instead of the device holding budget + one adapter at the peak.
    if (entry.info && !entry.removed) this.enforceBudget(entry, { cpu: entry.info.bytes, gpu: entry.info.gpu_bytes });
    const p = entry.payload!.materialize(entry.backend, gpuForSessions(entry.gpu, this.adapterDtypes))
      .then(({ updates, extras }) =>
        this.build(entry.name!, entry.payload!, updates, extras, entry.backend, entry.scale).then(
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
          entry.scalable = built.scalable;
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
      victim.scalable = undefined;
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

  /**
   * Read an adapter (any method, any source), check it against the model, materialize it and keep
   * its feeds under `adapter_name` (default `default`). PEFT's order: `load_adapter(source,
   * { adapter_name })`; the older `load_adapter(name, source, opts)` still works (deprecated).
   */
  load_adapter(source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  /** @deprecated `load_adapter(source, { adapter_name: name, … })` (PEFT's order). */
  load_adapter(name: string, source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  async load_adapter(...args: unknown[]): Promise<LoadedAdapterInfo> {
    const { name, source, opts } = normalizeLoadArgs(args);
    return this.reserved(name, opts.replace === true, async () => {
      const cb = opts.progress_callback;
      let payload: Payload;
      if (typeof source === 'object' && source !== null && 'method' in source && 'plan' in source) payload = adapterPayload(source as Adapter);
      else if (isBytesInput(source)) payload = filesPayload(adapterFromBytes(source), source);
      else {
        // A local folder saved by a method's official code (TRAC, LoRETTA, LoRTA port, TensLoRA) is
        // imported by core on the fly (Node only; undefined for native folders, URLs and browsers).
        const official = typeof source === 'string' ? await loadOfficialIfAny(source, opts.max_file_bytes !== undefined ? { maxBytes: opts.max_file_bytes } : {}) : undefined;
        if (official) payload = adapterPayload(official.adapter);
        else {
          const files = await readAdapter(source, name, opts);
          payload = filesPayload(adapterFromBytes(files), files);
        }
      }
      const gpu = opts.gpu === null ? undefined : (opts.gpu ?? (typeof this.webgpu === 'object' ? this.webgpu : undefined));
      const scale = opts.scale ?? 1;
      this.checkScale(name, scale, gpu);
      return this.install(name, payload, { scale, ...(opts.backend ? { backend: opts.backend } : {}), ...(gpu ? { gpu } : {}), ...(cb ? { cb } : {}) });
    });
  }

  /**
   * Run `fn` with `name` reserved: taken before the first await, so a second load under the same
   * name while one is in flight is refused instead of silently overwriting it.
   */
  private async reserved<R>(name: string, replace: boolean, fn: () => Promise<R>): Promise<R> {
    if (typeof name !== 'string' || name === '') throw new PluginError(`adapter_name must be a non-empty string, got ${JSON.stringify(name)}`);
    if (this.pending.has(name)) throw new PluginError(`an adapter named "${name}" is already being loaded (wait for that call to finish)`);
    if (this.adapters.has(name) && !replace) throw new PluginError(`an adapter named "${name}" is already loaded (delete_adapter it first, or pass { replace: true })`);
    this.pending.add(name);
    try {
      return await fn();
    } finally {
      this.pending.delete(name);
    }
  }

  private checkScale(name: string, scale: number, gpu: GpuMaterializer | undefined): void {
    if (typeof scale !== 'number' || !Number.isFinite(scale)) throw new PluginError(`adapter "${name}": scale must be a finite number, got ${String(scale)}`);
    if (gpu && scale !== 1) throw new PluginError(`adapter "${name}": a scale other than 1 needs CPU feeds (GPU-fed adapters fold s into their buffers): pass { gpu: null }`);
  }

  /**
   * Check `payload` against the model and the budget, materialize it and register it. Nothing is
   * materialized for an adapter that does not fit (its size comes from the plan: a small file can
   * describe huge factors).
   */
  private async install(name: string, payload: Payload, o: { scale: number; backend?: Backend; gpu?: GpuMaterializer; cb?: AdapterProgressCallback }): Promise<LoadedAdapterInfo> {
    const { cb, gpu } = o;
    this.checkFits(name, payload);
    const need = this.plannedBytes(payload, gpu !== undefined);
    if (need.cpu > this.maxBytes || need.gpu > this.maxBytes) {
      throw new PluginError(`adapter "${name}" needs ${Math.max(need.cpu, need.gpu)} bytes materialized, more than max_adapter_bytes = ${this.maxBytes}`);
    }
    // Room first: evicted adapters' memory goes back before this one is materialized.
    this.enforceBudget(undefined, need);
    const total = payload.modules.length;
    cb?.({ status: 'initiate', name, file: 'materialize' });
    cb?.({ status: 'progress', name, file: 'materialize', loaded: 0, total, progress: 0 });
    const { updates, extras } = await payload.materialize(o.backend, gpuForSessions(gpu, this.adapterDtypes));
    let built: Awaited<ReturnType<AdapterRegistry['build']>>;
    try {
      built = await this.build(name, payload, updates, extras, o.backend, o.scale, cb);
    } catch (e) {
      releaseAll(gpu ? updates : undefined);
      throw e;
    }
    cb?.({ status: 'done', name, file: 'materialize' });
    const entry: Entry = {
      name,
      payload,
      scale: o.scale,
      scalable: built.scalable,
      ...(o.backend ? { backend: o.backend } : {}),
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
    if (old && this.selected === old) this.selected = entry;
    if (old) this.releaseGpu(old);
    // Over the budget, even the adapter just loaded may go (it was checked; it re-materializes on use).
    this.enforceBudget();
    cb?.({ status: 'ready', name });
    return this.infoOf(entry);
  }

  /** Module paths and shapes, head shapes, against the model's sessions (before materializing). */
  private checkFits(name: string, payload: Payload): void {
    for (const u of payload.modules) this.checkModule(name, u);
    for (const { key, shape } of payload.heads) this.headParams(name, stripPeftKey(key), shape);
  }

  /** A module update's path and [out, in] against every hooked session: a ShapeMismatchError if it does not fit. */
  private checkModule(name: string, u: { path: string; n: number; m: number }): void {
    let found = false;
    for (const h of this.sessions) {
      const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
      if (!mod) continue;
      found = true;
      if (mod.n !== u.n || mod.m !== u.m) {
        throw new ShapeMismatchError(`adapter "${name}" does not fit this model: module ${u.path} has weight [out, in] = ${fmt([u.m, u.n])} in the adapter but ${fmt([mod.m, mod.n])} in the model`);
      }
    }
    if (!found) throw new ShapeMismatchError(`adapter "${name}" does not fit this model: module ${u.path} (weight [out, in] = ${fmt([u.m, u.n])}) is not a linear of the model (or has no branch: from_pretrained's target_modules left it out)`);
  }

  /** The overridable parameters (per session index) a modules_to_save tensor replaces; a ShapeMismatchError if none or a shape differs. */
  private headParams(name: string, pname: string, shape: readonly number[]): Array<{ si: number; p: SessionParam }> {
    const out: Array<{ si: number; p: SessionParam }> = [];
    this.sessions.forEach((h, si) => {
      const p = h.params.find((x) => x.name === pname) ?? h.params.find((x) => pathsMatch(pname, x.name));
      if (!p) return;
      const same = p.dims.length === shape.length && p.dims.every((d, i) => d === shape[i]);
      if (!same) throw new ShapeMismatchError(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} is ${fmt(shape)} in the adapter but ${fmt(p.dims)} in the model`);
      out.push({ si, p });
    });
    if (out.length === 0) throw new ShapeMismatchError(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} (${fmt(shape)}) has no overridable parameter in the model`);
    return out;
  }

  /** The bytes `build` will hold for `payload`, from its plan (the same accounting as `build`). */
  private plannedBytes(payload: Payload, gpu: boolean): PoolBytes {
    let cpu = 0;
    let gpuBytes = 0;
    for (const u of payload.modules) {
      let branch = false;
      for (const h of this.sessions) {
        const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
        if (!mod) continue;
        if (mod.inputW !== undefined) cpu += u.n * u.m * 4;
        else branch = true;
      }
      if (branch) {
        if (gpu) gpuBytes += (u.n + u.m) * u.rho * gpuElementBytes(this.adapterDtypes);
        else cpu += (u.n + u.m) * u.rho * 4;
      }
    }
    for (const { shape } of payload.heads) cpu += shape.reduce((a, d) => a * d, 1) * 4;
    return { cpu, gpu: gpuBytes };
  }

  /**
   * PEFT's `add_weighted_adapter(adapters, weights, adapter_name, combination_type)`: a new adapter
   * with ΔW = Σᵢ wᵢ·ΔWᵢ (each source's own scale included), exact for adapters of any methods by
   * rank concatenation (PEFT's `cat`; the only combination supported: the others approximate).
   * Heads (modules_to_save) cannot be summed: sources with heads are refused unless
   * `{ modules_to_save: 'base' }`, PEFT's outcome (the new adapter keeps the base model's heads).
   */
  async add_weighted_adapter(adapters: readonly string[], weights: readonly number[], adapter_name: string, combination_type: 'cat' = 'cat', opts: WeightedAdapterOptions = {}): Promise<LoadedAdapterInfo> {
    if (combination_type !== 'cat') throw new PluginError(`add_weighted_adapter: combination_type "${String(combination_type)}" is not supported (only "cat", exact in the universal form)`);
    if (!Array.isArray(adapters) || adapters.length === 0) throw new PluginError('add_weighted_adapter needs a non-empty list of adapter names');
    if (!Array.isArray(weights) || weights.length !== adapters.length) throw new PluginError(`add_weighted_adapter: ${adapters.length} adapters but ${Array.isArray(weights) ? weights.length : 'no'} weights`);
    const sources = adapters.map((n, i) => {
      const e = this.entryFor(n);
      const w = weights[i]!;
      if (typeof w !== 'number' || !Number.isFinite(w)) throw new PluginError(`add_weighted_adapter: weight ${i} must be a finite number, got ${String(w)}`);
      if (e.payload!.heads.length > 0 && opts.modules_to_save !== 'base') {
        throw new PluginError(`add_weighted_adapter: adapter "${n}" has modules_to_save heads, which a weighted sum cannot combine; pass { modules_to_save: 'base' } to give "${adapter_name}" the base model's heads (as PEFT does)`);
      }
      return { payload: e.payload!, factor: w * e.scale };
    });
    return this.reserved(adapter_name, opts.replace === true, () =>
      this.install(adapter_name, weightedPayload(sources), { scale: 1, ...(opts.backend ? { backend: opts.backend } : {}), ...(opts.progress_callback ? { cb: opts.progress_callback } : {}) }),
    );
  }

  /** Change adapter `name`'s scale on ΔW (PEFT's `set_scale`); its feeds are rebuilt at once. */
  async set_adapter_scale(name: string, scale: number): Promise<void> {
    const e = this.entryFor(name);
    this.checkScale(name, scale, e.gpu);
    if (scale === e.scale) return;
    e.scale = scale;
    // Rebuilt from the payload (exact), not by rescaling the held feeds; an evicted adapter gets
    // the new scale when it is materialized again.
    if (e.feeds) {
      const { updates, extras } = await e.payload!.materialize(e.backend, undefined);
      const built = await this.build(name, e.payload!, updates, extras, e.backend, scale);
      e.feeds = built.feeds;
      e.scalable = built.scalable;
      e.info = built.info;
    } else if (e.info) e.info = { ...e.info, scale };
  }

  /**
   * An unregistered view of `entry` whose ΔW is scaled by `factor` for one call (heads unchanged):
   * branch inputs s·B′ᵀ times `factor`, merged weights W0 + factor·(W − W0).
   */
  scaledEntry(entry: Entry, factor: number): Entry {
    if (typeof factor !== 'number' || !Number.isFinite(factor)) throw new PluginError(`scale must be a finite number, got ${String(factor)}`);
    if (factor === 1 || entry.payload === null) return entry;
    if (entry.gpu) throw new PluginError(`adapter "${entry.name}": a per-call scale needs CPU feeds (load it with { gpu: null })`);
    return { name: entry.name, payload: entry.payload, scale: entry.scale * factor, derivedFrom: { entry, factor }, info: entry.info, feeds: null, loading: null, lastUse: 0, pins: 0, removed: true };
  }

  private rescaled(entry: Entry, feeds: Feeds[], factor: number): Feeds[] {
    const out = feeds.map((f) => ({ ...f }));
    for (const { si, input, data, dims, w0 } of entry.scalable ?? []) {
      const d = new Float32Array(data.length);
      if (w0) for (let i = 0; i < d.length; i++) d[i] = w0[i]! + factor * (data[i]! - w0[i]!);
      else for (let i = 0; i < d.length; i++) d[i] = factor * data[i]!;
      out[si]![input] = ortTensor(d, dims);
    }
    out.forEach((f, si) => adaptMixedFeeds(this.sessions[si]!, f));
    return out;
  }

  private async build(
    name: string,
    payload: Payload,
    updates: AnyUpdate[],
    extras: TensorMap,
    backend: Backend | undefined,
    scale: number,
    cb?: AdapterProgressCallback,
  ): Promise<{ feeds: Feeds[]; info: LoadedAdapterInfo; scalable: NonNullable<Entry['scalable']> }> {
    const scalable: NonNullable<Entry['scalable']> = [];
    let bytes = 0;
    let gpuBytes = 0;
    const feeds: Feeds[] = this.sessions.map((h) => ({ ...h.baseFeeds }));
    // Check every module against every hooked session before keeping anything.
    const btData = new Map<AnyUpdate, Float32Array>();
    const prepared: Array<{ u: AnyUpdate; A: () => OrtTensor; Bt: () => OrtTensor; bytes: number }> = [];
    for (const u of updates) {
      this.checkModule(name, u);
      if ('release' in u) {
        // GPU-resident: A′ [n, ρ] and s·B′ᵀ [ρ, m] already (materializeToGpu with foldScale, transposeB).
        // Held whatever the sessions feed (released with the adapter), so counted in full.
        gpuBytes += gpuBufferBytes(u.A, u.n * u.rho) + gpuBufferBytes(u.B, u.rho * u.m);
        prepared.push({ u, A: () => ortGpuTensor(u.A, [u.n, u.rho], u.dtype), Bt: () => ortGpuTensor(u.B, [u.rho, u.m], u.dtype), bytes: 0 });
        continue;
      }
      const cu = u as ModuleUpdate;
      // B′ [m, ρ] → s·B′ᵀ [ρ, m] (times the adapter's scale).
      const Bt = new Float32Array(cu.rho * cu.m);
      const k = cu.s * scale;
      for (let i = 0; i < cu.m; i++) for (let r = 0; r < cu.rho; r++) Bt[r * cu.m + i] = k * cu.B[i * cu.rho + r]!;
      const A = cu.A;
      btData.set(u, Bt);
      prepared.push({ u, A: () => ortTensor(A, [cu.n, cu.rho]), Bt: () => ortTensor(Bt, [cu.rho, cu.m]), bytes: (A.length + Bt.length) * 4 });
    }
    const heads: string[] = [];
    for (const [key, t] of extras) {
      const pname = stripPeftKey(key);
      for (const { si, p } of this.headParams(name, pname, t.shape)) feeds[si]![p.input] = ortTensor(Float32Array.from(t.data), [1, ...p.dims]);
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
          const cu = u as ModuleUpdate;
          await be!.merge(W, mod.layout!, scale === 1 ? cu : { ...cu, s: cu.s * scale });
          feeds[si]![mod.inputW] = ortTensor(W, mod.wDims!);
          scalable.push({ si, input: mod.inputW, data: W, dims: mod.wDims!, w0: mod.w0! });
          bytes += W.byteLength;
        } else {
          feeds[si]![mod.inputA!] = A();
          feeds[si]![mod.inputB!] = Bt();
          const bt = btData.get(u);
          if (bt) scalable.push({ si, input: mod.inputB!, data: bt, dims: [u.rho, u.m] });
          branch = true;
        }
      }
      if (branch) bytes += branchBytes;
      done++;
      cb?.({ status: 'progress', name, file: 'materialize', loaded: done, total: prepared.length, progress: (done / Math.max(1, prepared.length)) * 100 });
    }
    feeds.forEach((f, si) => adaptMixedFeeds(this.sessions[si]!, f));
    return {
      feeds,
      info: { name, peft_type: payload.peft_type, modules: updates.length, rank: payload.rank, modules_to_save: heads, bytes, gpu_bytes: gpuBytes, materialized: true, scale },
      scalable,
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

  /** The hooked sessions (mixed-feeds.ts stacks their feeds). */
  hookedSessions(): readonly HookedSession[] {
    return this.sessions;
  }

  /** `entry`'s feeds per hooked session, re-materialized first if evicted (call it pinned). */
  feedsOf(entry: Entry): Promise<Feeds[]> {
    return this.ensure(entry);
  }

  /** The entry runs starting now use. */
  currentEntry(): Entry {
    return this.current;
  }

  /** Make `name` the active adapter (a one-name list is accepted, like PEFT's); enables adapters. */
  set_adapter(name: string | readonly string[]): void {
    const one = Array.isArray(name) && name.length === 1 ? (name[0] as unknown) : name;
    if (Array.isArray(one)) throw new PluginError(`set_adapter takes one adapter (got ${one.length}); combine several with add_weighted_adapter`);
    if (typeof one !== 'string') throw new PluginError('set_adapter needs a name (disable_adapters() for the base model)');
    const a = this.entryFor(one);
    a.lastUse = ++this.clock;
    this.current = a;
    this.selected = a;
    // Warm an evicted adapter now (runs starting before it is ready wait for it).
    if (!a.feeds) this.ensure(a).catch(() => undefined);
  }

  /** Exact base model from the next run on; `enable_adapters()` brings the active adapter back. */
  disable_adapters(): void {
    this.current = this.base;
  }

  /** Run the active adapter again (after `disable_adapters()`). */
  enable_adapters(): void {
    if (!this.selected) throw new PluginError(`no active adapter to enable (set_adapter one first; loaded: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    this.set_adapter(this.selected.name!);
  }

  /**
   * PEFT's `active_adapters()`: the adapter `set_adapter` chose (kept while adapters are disabled;
   * `active_adapter` is what runs use now, null while disabled). Empty when none.
   */
  active_adapters(): string[] {
    return this.selected ? [this.selected.name!] : [];
  }

  /** Remove adapters (one name or a list) and release their memory; runs in progress finish first. */
  delete_adapter(name: string | readonly string[]): void {
    const names = typeof name === 'string' ? [name] : [...name];
    for (const n of names) this.entryFor(n);
    for (const n of names) {
      const e = this.adapters.get(n)!;
      this.adapters.delete(n);
      if (this.current === e) this.disable_adapters();
      if (this.selected === e) this.selected = null;
      this.releaseGpu(e);
    }
  }

  /** Older name of `delete_adapter`. */
  unload_adapter(name: string): void {
    this.delete_adapter(name);
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
    e.scalable = undefined;
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
