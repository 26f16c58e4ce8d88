/**
 * The load-time rewrite: a transformers.js `env.customCache` that answers every `.onnx` file with
 * the adapter side branches added (and its external-data side files as buffers), and keeps the
 * rewrite failures transformers.js would otherwise hide.
 */
import { shapeFromHfConfig } from '@tensorpeft/core';
import { PluginError } from './errors.js';
import { decodeModel, rewriteModel } from './rewrite.js';
import { shapeForFile } from './encoder-decoder.js';
import { selectTargets } from './target-modules.js';
import type { BranchDtype, RewriteResult } from './rewrite-types.js';
import { branchDtypeForDevice, type DeviceOption } from './device-branch-dtype.js';
import { resolveRewriteStore, type RewriteCacheOption } from './rewrite-cache.js';
import { loadRewrite, ownedBytesResponse } from './rewrite-load.js';
import { DATA_FILE_RE, externalLocations, siblingKey } from './external-data.js';
// IS_NODE: Node, where transformers.js asks the cache twice for a file (see `enableAdapters`).
import { IS_NODE, isUrl, readModelFile } from './model-files.js';

/** The part of transformers.js' `env` the plugin uses. */
export interface CacheEnv {
  useCustomCache: boolean;
  customCache: unknown;
  allowRemoteModels?: boolean;
  /** transformers.js' switch for `localModelPath` reads (off by default in browsers). */
  allowLocalModels?: boolean;
  /** transformers.js' Hub host and path template (to recognise its cache keys for a file). */
  remoteHost?: string;
  remotePathTemplate?: string;
}

export interface CacheLike {
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
  /**
   * Branch mode: rewrite for mixed-adapter batches (stacked adapter inputs gathered per row, so
   * `adapter_names` can give each batch row its own adapter; mixed-rewrite.ts). Default false.
   */
  mixedBatches?: boolean;
  /**
   * The transformers.js `device` the models will be loaded on (a device, or one per file name as
   * transformers.js takes it); picks `branchDtype` per file. Default: transformers.js' default device
   * (`cpu` in Node, `wasm` in browsers).
   */
  device?: DeviceOption;
  /**
   * Branch mode, fp16 graphs: the side branches' precision (`RewriteOptions.branchDtype`). Default:
   * from `device` — `float32` on the CPU providers (`cpu`, `wasm`), which have no fp16 MatMul, else
   * `activation` (fp16 branches for WebGPU and the other GPU providers).
   */
  branchDtype?: BranchDtype;
  /**
   * Branch mode: targeted linears reading the same tensor (q/k/v, gate/up, packed slices) share one
   * pair of branch products (`RewriteOptions.fuseSiblings`, rewrite-siblings.ts; fewer nodes per
   * decode step). Default false: on onnxruntime's CPU EP it measured no faster at rank ≤ 16 and
   * slower at rank 64 (README, sibling fusion). Ignored with `mixedBatches`; not for GPU-fed
   * adapters (`load_adapter(…, { gpu })`), whose GPU buffers cannot be assembled into the fused inputs.
   */
  fuseSiblings?: boolean;
  /**
   * Only these linears get a branch (PEFT's list form of `target_modules`: a path equal to a name or
   * ending with `.name`; target-modules.ts). Default: every linear of the model, so any adapter fits.
   * Fewer branches, fewer nodes per run; an adapter on another module is then refused at load_adapter.
   */
  targetModules?: readonly string[];
  /** Called with each rewritten file and what was rewritten (`cached`: taken from the rewrite cache). */
  onRewrite?: (file: string, result: Omit<RewriteResult, 'bytes'> & { cached?: boolean }) => void;
  /**
   * Cache rewritten models (branch mode; off by default): `true` for the runtime's default store (Node:
   * `$XDG_CACHE_HOME/tensorpeft/rewrites` or `~/.cache/tensorpeft/rewrites`; browsers: Cache Storage
   * `tensorpeft-rewrites`), a folder path (Node), or a `RewriteStore`. See rewrite-cache.ts.
   */
  rewriteCache?: RewriteCacheOption;
}

const OURS = Symbol.for('tensorpeft.customCache');

/** Load-time rewrite failures (most recent last, a few kept): transformers.js hides them (see `match`). */
export const FAILURES: Array<{ key: string; error: unknown }> = [];
let failureCount = 0;

/** How many load-time rewrite failures were recorded so far (a mark for `failuresSince`). */
export function failureMark(): number {
  return failureCount;
}

function recordFailure(key: string, error: unknown): void {
  failureCount++;
  FAILURES.push({ key, error });
  while (FAILURES.length > 8) FAILURES.shift();
}

/** Failures recorded after the `since`-th one (by `failureCount`). */
export function failuresSince(since: number): unknown[] {
  const n = Math.min(failureCount - since, FAILURES.length);
  return FAILURES.slice(FAILURES.length - n).map((f) => f.error);
}

async function readSource(key: string, env: CacheEnv, prev: CacheLike | null): Promise<Uint8Array | undefined> {
  if (prev) {
    const r = await prev.match(key);
    if (r) return new Uint8Array(await r.arrayBuffer());
  }
  return readModelFile(key, env);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * `<remoteHost><remotePathTemplate with id and revision><file>` → `<id>/<file>` (with the defaults:
 * `https://huggingface.co/<id>/resolve/<rev>/onnx/model.onnx` → `<id>/onnx/model.onnx`), matched
 * against transformers.js' own `env.remoteHost` / `env.remotePathTemplate` (a host with a path
 * prefix, a mirror's template); other URLs: their path without a `/resolve/<rev>/` segment.
 */
function hubRelative(key: string, env: CacheEnv): string | undefined {
  if (!isUrl(key)) return undefined;
  const host = env.remoteHost;
  const template = env.remotePathTemplate;
  if (host && template) {
    const pattern = escapeRe(template.replace(/^\/+/, ''))
      .replace(escapeRe('{model}'), '(.+?)')
      .replace(escapeRe('{revision}'), '[^/]+');
    const m = new RegExp(`^${escapeRe(host.replace(/\/+$/, ''))}/+${pattern}/*(.+)$`).exec(key.split('?')[0]!);
    if (m) return decodeURIComponent(`${m[1]}/${m[2]}`);
  }
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
  // (A string: the rewritten file's path, handed to transformers.js in Node; see rewrite-load.ts.)
  const memo = new Map<string, Uint8Array | string>();
  const lookup = (key: string): Uint8Array | string | undefined => {
    const hit = memo.get(key);
    if (hit) return hit;
    const rel = hubRelative(key, env);
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
    const rel = hubRelative(key, env);
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
  // transformers.js takes a string answer as the file's path (what it gives ONNX Runtime in Node).
  const cache: { match(key: string): Promise<Response | string | undefined>; put: CacheLike['put'] } = {
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
  const answer = async (key: string): Promise<Response | string | undefined> => {
    const path = key.split('?')[0]!;
    if (DATA_FILE_RE.test(path)) {
      const bytes = await sideFile(key);
      return bytes ? ownedBytesResponse(bytes) : undefined;
    }
    if (!path.endsWith('.onnx')) return prev ? prev.match(key) : undefined;
    const known = lookup(key);
    if (known !== undefined) return typeof known === 'string' ? known : ownedBytesResponse(known);
    const cfgBytes = await readSource(configKeyFor(key), env, prev);
    if (!cfgBytes) return undefined;
    // Encoder–decoder folders: each file gets its own stack's modules (encoder-decoder.ts).
    const whole = shapeFromHfConfig(JSON.parse(new TextDecoder().decode(cfgBytes)));
    // target_modules is checked against the whole model (an encoder–decoder file may hold none of them).
    const chosen = opts.targetModules ? new Set(selectTargets(whole.modules.map((m) => m.path), opts.targetModules, configKeyFor(key))) : undefined;
    const fileShape = shapeForFile(path, whole);
    const shape = chosen ? { ...fileShape, modules: fileShape.modules.filter((m) => chosen.has(m.path)) } : fileShape;
    // The linears left without a branch are neither branches nor overridable heads.
    const untargeted = chosen ? { untargeted: fileShape.modules.filter((m) => !chosen.has(m.path)).map((m) => m.path) } : {};
    const mode = opts.mode ?? 'branch';
    if (mode === 'branch') {
      // Spliced rewrite, the original read once; through the rewrite cache when enabled, a Node
      // hit being the cached file's path (rewrite-load.ts).
      const targets = shape.modules.map((m) => m.path);
      const mixed = opts.mixedBatches ? { mixedBatches: true } : {};
      // Sibling fusion (part of the cache key through cacheMode); mixed batches stay per module.
      const fuse = opts.fuseSiblings === true && !opts.mixedBatches;
      // The branch precision is part of the rewrite cache key (rewrite-load.ts → rewriteKeyOf).
      const branchDtype = opts.branchDtype ?? branchDtypeForDevice(opts.device, path);
      const r = await loadRewrite({
        read: () => readSource(key, env, prev),
        opts: { targets, ...untargeted, mode, modelFile: path, ...mixed, branchDtype, ...(fuse ? { fuseSiblings: true } : {}) },
        store: resolveRewriteStore(opts.rewriteCache, IS_NODE),
        cacheMode: opts.mixedBatches ? `${mode}+mixed` : fuse ? `${mode}+siblings` : mode,
        localFile: IS_NODE && !prev && !isUrl(key) && env.allowLocalModels !== false ? key : undefined,
        acceptsFile: IS_NODE,
      });
      if (!r) return undefined;
      opts.onRewrite?.(key, { ...r.meta, ...(r.cached === undefined ? {} : { cached: r.cached }) });
      const out = r.file ?? r.bytes!;
      memo.set(key, out);
      while (memo.size > 2) memo.delete(memo.keys().next().value!);
      return typeof out === 'string' ? out : ownedBytesResponse(out);
    }
    const bytes = await readSource(key, env, prev);
    if (!bytes) return undefined;
    const model = decodeModel(bytes, path);
    // Merge mode feeds W0 (+ ΔW) from JS, so it needs the base weights' bytes: for external data
    // they are in the side files, read through the same path as the .onnx (locations checked first).
    let external: Map<string, Uint8Array> | undefined;
    if (mode === 'merge') {
      external = new Map();
      for (const location of externalLocations(model.graph ?? {})) {
        const dataKey = siblingKey(key, location);
        const data = await sideFile(dataKey);
        if (!data) throw new PluginError(`merge mode: cannot read ${dataKey}, the ONNX external data file (${location}) holding base weights of ${key}`);
        external.set(location, data);
      }
    }
    const r = rewriteModel(model, { targets: shape.modules.map((m) => m.path), ...untargeted, mode, modelFile: path, ...(external ? { external } : {}), ...(opts.mixedBatches ? { mixedBatches: true } : {}) });
    opts.onRewrite?.(key, { branches: r.branches, params: r.params, merged: r.merged });
    memo.set(key, r.bytes);
    while (memo.size > 2) memo.delete(memo.keys().next().value!);
    return ownedBytesResponse(r.bytes);
  };
  (cache as unknown as Record<symbol, unknown>)[OURS] = true;
  env.useCustomCache = true;
  env.customCache = cache;
  return () => {
    env.useCustomCache = prevUse;
    env.customCache = prevCache;
  };
}
