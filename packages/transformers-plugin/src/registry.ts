/**
 * The adapter registry of one transformers.js model: hooks its sessions' `run`, keeps each loaded
 * adapter's feeds (re-materialized after an LRU eviction), and swaps them atomically per run.
 */
import { adapterFromBytes, loadAdapter, getBackend, ShapeMismatchError, type Adapter, type AdapterFromBytesInput, type Backend, type ModuleUpdate, type WeightLayout } from '@tensorpeft/core';
import { PluginError } from './errors.js';
import { INPUT_PREFIX, MERGE_PREFIX, PARAM_PREFIX, baseWeightOf, pathsMatch } from './rewrite.js';
import { FAILURES } from './cache.js';
import { gpuBufferBytes, materializeAny, ortGpuTensor, ortTensor, releaseAll, type AnyUpdate, type Feeds, type GpuMaterializer, type GpuModuleUpdateLike, type HookedSession, type OrtTensor, type SessionLike, type SessionModule, type SessionParam } from './ort-feeds.js';
import { loadSourceWithProgress } from './adapter-source.js';
import type { AdapterMemoryInfo, AdapterProgressCallback, AdapterSource, AttachOptions, LoadAdapterOptions, LoadedAdapterInfo } from './types.js';

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

export const VIEW = Symbol.for('tensorpeft.view');

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
