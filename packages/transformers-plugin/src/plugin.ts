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
  loadAdapter,
  materializeAdapter,
  shapeFromHfConfig,
  type Adapter,
  type AdapterFromBytesInput,
  type Backend,
  type ModuleUpdate,
} from '@tensorpeft/core';
import { Tensor } from '@huggingface/transformers';
import { INPUT_PREFIX, PARAM_PREFIX, pathsMatch, rewriteModel, type RewriteResult } from './rewrite.js';

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
  /** Called with each rewritten file and what was rewritten. */
  onRewrite?: (file: string, result: Omit<RewriteResult, 'bytes'>) => void;
}

const OURS = Symbol.for('tensorpeft.customCache');

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
  const cache: CacheLike = {
    async match(key: string) {
      const path = key.split('?')[0]!;
      if (!path.endsWith('.onnx')) return prev ? prev.match(key) : undefined;
      const known = lookup(key);
      if (known) return new Response(known as Uint8Array<ArrayBuffer>);
      const cfgBytes = await readSource(configKeyFor(key), env, prev);
      const bytes = await readSource(key, env, prev);
      if (!bytes || !cfgBytes) return undefined;
      const shape = shapeFromHfConfig(JSON.parse(new TextDecoder().decode(cfgBytes)));
      const r = rewriteModel(bytes, { targets: shape.modules.map((m) => m.path) });
      opts.onRewrite?.(key, { branches: r.branches, params: r.params });
      memo.set(key, r.bytes);
      while (memo.size > 2) memo.delete(memo.keys().next().value!);
      return new Response(r.bytes as Uint8Array<ArrayBuffer>);
    },
    async put(key: string, res: Response) {
      if (prev) await prev.put(key, res);
    },
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

interface SessionModule {
  path: string;
  inputA: string;
  inputB: string;
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
}

export interface LoadedAdapterInfo {
  name: string;
  peft_type: string;
  modules: number;
  rank: number;
  modules_to_save: string[];
  /** Bytes of the materialized tensors held for this adapter. */
  bytes: number;
}

interface LoadedAdapter {
  info: LoadedAdapterInfo;
  /** Per hooked session: the complete adapter feeds. */
  feeds: Feeds[];
}

export interface LoadAdapterOptions {
  /** Backend for materialization (default: core's best registered one). */
  backend?: Backend;
  /** Replace an adapter already loaded under this name (default false: an error). */
  replace?: boolean;
}

export type AdapterSource = string | Adapter | AdapterFromBytesInput;

/** Methods added to a model (or pipeline) by `attachAdapters`, named like PEFT's. */
export interface AdapterMethods {
  load_adapter(name: string, source: AdapterSource, opts?: LoadAdapterOptions): Promise<LoadedAdapterInfo>;
  set_adapter(name: string): void;
  disable_adapters(): void;
  unload_adapter(name: string): void;
  list_adapters(): LoadedAdapterInfo[];
  readonly active_adapter: string | null;
}

function fmt(dims: readonly number[]): string {
  return `[${dims.join(', ')}]`;
}

function stripPeftKey(key: string): string {
  let k = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  k = k.replace('.modules_to_save.default.', '.');
  return k;
}

/** The adapter registry for one transformers.js model's sessions. */
export class AdapterRegistry {
  private readonly sessions: HookedSession[] = [];
  private readonly adapters = new Map<string, LoadedAdapter>();
  private active: string | null = null;
  /** Feeds used by runs starting now (swapped atomically). */
  private current: Feeds[];

  constructor(sessions: SessionLike[]) {
    for (const s of sessions) this.hook(s);
    if (this.sessions.length === 0) {
      throw new Error('no session of this model has adapter inputs: call enableAdapters(env) before loading the model');
    }
    this.current = this.sessions.map((h) => h.baseFeeds);
  }

  private hook(session: SessionLike): void {
    const all = [...session.inputNames];
    const ours = all.filter((n) => n.startsWith(INPUT_PREFIX));
    if (ours.length === 0) return;
    const meta = new Map((session.inputMetadata ?? []).map((m) => [m.name, m.shape ?? []]));
    const dimsOf = (name: string): ReadonlyArray<number | string> => {
      const d = meta.get(name);
      if (!d) throw new Error(`session has no input metadata for ${name} (onnxruntime ≥ 1.22 needed)`);
      return d;
    };
    const modules: SessionModule[] = [];
    const params: SessionParam[] = [];
    const baseFeeds: Feeds = {};
    for (const name of ours) {
      if (name.startsWith(PARAM_PREFIX)) {
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
        baseFeeds[name] = ortTensor(new Float32Array(0), [n, 0]);
        baseFeeds[inputB] = ortTensor(new Float32Array(0), [0, m]);
      }
    }
    const hooked: HookedSession = { session, modules, params, baseFeeds };
    const idx = this.sessions.length;
    this.sessions.push(hooked);
    const visible = all.filter((n) => !n.startsWith(INPUT_PREFIX));
    const run = session.run.bind(session);
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
        const extra = self.current[idx]!;
        return run({ ...feeds, ...extra }, ...rest);
      },
    });
  }

  get active_adapter(): string | null {
    return this.active;
  }

  /** Materialize an adapter (any method), check it against the model, keep its feeds under `name`. */
  async load_adapter(name: string, source: AdapterSource, opts: LoadAdapterOptions = {}): Promise<LoadedAdapterInfo> {
    if (this.adapters.has(name) && !opts.replace) throw new Error(`an adapter named "${name}" is already loaded (unload it first, or pass { replace: true })`);
    const adapter: Adapter =
      typeof source === 'string' ? await loadAdapter(source) : 'method' in source && 'plan' in source ? source : adapterFromBytes(source as AdapterFromBytesInput);
    const updates = await materializeAdapter(adapter, opts.backend);
    const loaded = this.build(name, adapter, updates);
    this.adapters.set(name, loaded);
    if (this.active === name) this.current = loaded.feeds;
    return loaded.info;
  }

  private build(name: string, adapter: Adapter, updates: ModuleUpdate[]): LoadedAdapter {
    let bytes = 0;
    const feeds: Feeds[] = this.sessions.map((h) => ({ ...h.baseFeeds }));
    // Check every module against every hooked session before keeping anything.
    const prepared: Array<{ u: ModuleUpdate; A: Float32Array; Bt: Float32Array }> = [];
    for (const u of updates) {
      let found = false;
      for (const h of this.sessions) {
        const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
        if (!mod) continue;
        found = true;
        if (mod.n !== u.n || mod.m !== u.m) {
          throw new Error(`adapter "${name}" does not fit this model: module ${u.path} has weight [out, in] = ${fmt([u.m, u.n])} in the adapter but ${fmt([mod.m, mod.n])} in the model`);
        }
      }
      if (!found) {
        throw new Error(`adapter "${name}" does not fit this model: module ${u.path} (weight [out, in] = ${fmt([u.m, u.n])}) is not a linear of the model`);
      }
      // B′ [m, ρ] → s·B′ᵀ [ρ, m].
      const Bt = new Float32Array(u.rho * u.m);
      for (let i = 0; i < u.m; i++) for (let r = 0; r < u.rho; r++) Bt[r * u.m + i] = u.s * u.B[i * u.rho + r]!;
      prepared.push({ u, A: u.A, Bt });
      bytes += (u.A.length + Bt.length) * 4;
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
        if (!same) throw new Error(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} is ${fmt(t.shape)} in the adapter but ${fmt(p.dims)} in the model`);
        feeds[si]![p.input] = ortTensor(Float32Array.from(t.data), [1, ...p.dims]);
      }
      if (!found) throw new Error(`adapter "${name}" does not fit this model: modules_to_save tensor ${pname} (${fmt(t.shape)}) has no overridable parameter in the model`);
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
          throw new Error(`adapter "${name}" does not fit this model: modules_to_save gives ${sib} but not ${p.name} (${fmt(p.dims)} in the model)`);
        }
      }
    });
    for (const { u, A, Bt } of prepared) {
      this.sessions.forEach((h, si) => {
        const mod = h.modules.find((x) => x.path === u.path) ?? h.modules.find((x) => pathsMatch(u.path, x.path));
        if (!mod) return;
        feeds[si]![mod.inputA] = ortTensor(A, [u.n, u.rho]);
        feeds[si]![mod.inputB] = ortTensor(Bt, [u.rho, u.m]);
      });
    }
    return {
      feeds,
      info: { name, peft_type: adapter.config.peft_type, modules: updates.length, rank: adapter.plan.rank, modules_to_save: heads, bytes },
    };
  }

  set_adapter(name: string): void {
    const a = this.adapters.get(name);
    if (!a) throw new Error(`no adapter named "${name}" is loaded (loaded: ${[...this.adapters.keys()].join(', ') || 'none'})`);
    this.active = name;
    this.current = a.feeds;
  }

  /** Exact base model from the next run on. */
  disable_adapters(): void {
    this.active = null;
    this.current = this.sessions.map((h) => h.baseFeeds);
  }

  unload_adapter(name: string): void {
    if (!this.adapters.delete(name)) throw new Error(`no adapter named "${name}" is loaded`);
    if (this.active === name) this.disable_adapters();
  }

  list_adapters(): LoadedAdapterInfo[] {
    return [...this.adapters.values()].map((a) => ({ ...a.info, modules_to_save: [...a.info.modules_to_save] }));
  }
}

interface ModelLike {
  sessions: Record<string, SessionLike>;
}

const REGISTRY = Symbol.for('tensorpeft.registry');

/**
 * Attach the adapter registry to a transformers.js model (from `AutoModel*.from_pretrained`, loaded
 * after `enableAdapters(env)`) or a pipeline (its `.model`). Adds `load_adapter`, `set_adapter`,
 * `disable_adapters`, `unload_adapter`, `list_adapters`, `active_adapter` to the object and returns it.
 */
export function attachAdapters<T extends object>(target: T): T & AdapterMethods {
  const model = ('sessions' in target ? target : (target as { model?: unknown }).model) as ModelLike | undefined;
  if (!model || (typeof model !== 'object' && typeof model !== 'function') || !('sessions' in model)) throw new Error('attachAdapters expects a transformers.js model or pipeline');
  const holder = model as unknown as Record<symbol, AdapterRegistry | undefined>;
  const reg = holder[REGISTRY] ?? new AdapterRegistry(Object.values(model.sessions));
  holder[REGISTRY] = reg;
  const t = target as T & AdapterMethods;
  Object.defineProperties(t, {
    load_adapter: { value: reg.load_adapter.bind(reg), configurable: true },
    set_adapter: { value: reg.set_adapter.bind(reg), configurable: true },
    disable_adapters: { value: reg.disable_adapters.bind(reg), configurable: true },
    unload_adapter: { value: reg.unload_adapter.bind(reg), configurable: true },
    list_adapters: { value: reg.list_adapters.bind(reg), configurable: true },
    active_adapter: { get: () => reg.active_adapter, configurable: true },
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
  const { adapters, ...rest } = options;
  const restore = enableAdapters(env);
  let model: M;
  try {
    model = await loader.from_pretrained(id, rest);
  } finally {
    restore();
  }
  const m = attachAdapters(model);
  let first = true;
  for (const [name, src] of Object.entries(adapters ?? {})) {
    await m.load_adapter(name, src);
    if (first) m.set_adapter(name);
    first = false;
  }
  return m;
}
