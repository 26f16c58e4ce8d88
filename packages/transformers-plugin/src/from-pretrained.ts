/** One-step loading: rewrite, load the model, attach the registry, load the adapters. */
import { checkTargetModules } from './target-modules.js';
import { PluginError } from './errors.js';
import { enableAdapters, failureMark, failuresSince, type CacheEnv } from './cache.js';
import type { RewriteCacheOption } from './rewrite-cache.js';
import { attachAdapters } from './attach.js';
import { withTempRewriteDir } from './temp-rewrite-dir.js';
import type { GpuMaterializer } from './ort-feeds.js';
import type { DeviceOption } from './device-branch-dtype.js';
import type { BranchDtype } from './rewrite-types.js';
import type { AdapterMethods, AdapterProgressCallback, AdapterSource, AttachOptions, LoadAdapterOptions } from './types.js';

/** One entry of `from_pretrained`'s `adapters` with load options: `{ source: 'user/repo', revision: 'v2', scale: 0.5 }`. */
export interface AdapterEntry extends Omit<LoadAdapterOptions, 'adapter_name' | 'progress_callback'> {
  source: AdapterSource;
}

function isEntry(x: unknown): x is AdapterEntry {
  if (typeof x !== 'object' || x === null || !('source' in x)) return false;
  const p = Object.getPrototypeOf(x) as unknown;
  return p === Object.prototype || p === null;
}

/** Loader with a static `from_pretrained` (AutoModelForSequenceClassification, …). */
export interface PretrainedLoader<M> {
  from_pretrained(id: string, options?: Record<string, unknown>): Promise<M>;
}

export interface FromPretrainedOptions extends Record<string, unknown> {
  /**
   * Adapters to load: name → source (Hub id, URL, folder, Files, bytes, Adapter), or `{ source, revision?,
   * scale?, … }` with `load_adapter` options. Loaded in order; the first becomes active.
   */
  adapters?: Record<string, AdapterSource | AdapterEntry>;
  /** `branch` (default) or `merge` (fp32 models; see `EnableOptions.mode`). */
  mode?: 'branch' | 'merge';
  /**
   * Rewrite for mixed-adapter batches (`model(inputs, { adapter_names })`, branch mode): `true`, or
   * `{ max_adapters }` (most distinct adapters per call, default 8). Off by default.
   */
  mixed_batches?: boolean | { max_adapters?: number };
  /**
   * Branch mode, fp16 graphs (`dtype: 'fp16' | 'q4f16'`): the side branches' precision. Default:
   * from transformers.js' `device` (passed through to it as well) — `float32` on `cpu` / `wasm`
   * (no fp16 MatMul there: fp32 adapter inputs, no per-run casts of A′/B′), `activation` (fp16) on
   * WebGPU and other GPU devices. See `EnableOptions.branchDtype`.
   */
  branch_dtype?: BranchDtype;
  /**
   * Branch mode: linears reading the same tensor share one pair of branch products (see
   * `EnableOptions.fuseSiblings`). Default false (no faster on the CPU EP as measured); not with
   * `mixed_batches` (ignored) or GPU-fed adapters (refused at run time).
   */
  fuse_siblings?: boolean;
  /**
   * Only these linears get an adapter branch (PEFT's list form, e.g. `['q_proj', 'v_proj']`; see
   * `EnableOptions.targetModules`). Default: every linear, so any adapter can be loaded. A branch
   * costs its nodes on every run even when no adapter uses it: an app whose adapters all target the
   * same modules runs faster naming them; an adapter on another module is refused at `load_adapter`.
   */
  target_modules?: readonly string[];
  /** Cache the rewritten model (off by default; see `EnableOptions.rewriteCache`). */
  rewrite_cache?: RewriteCacheOption;
  /** LRU byte budget for materialized adapters (see `AttachOptions`). */
  max_adapter_bytes?: number;
  /** Sessions on ORT-web's WebGPU EP; a backend GPU-feeds the adapters (see `AttachOptions.webgpu`). */
  webgpu?: GpuMaterializer | true;
  /**
   * Also load the model without the rewrite and run it while no adapter is active (see
   * `AttachOptions.base_sessions`): the disabled model costs what plain transformers.js costs per
   * run, for a second copy of the weights in memory. Default false.
   */
  base_session?: boolean;
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
  const { adapters, max_adapter_bytes, mode, webgpu, rewrite_cache, mixed_batches, base_session, branch_dtype, fuse_siblings, target_modules, ...rest } = options;
  const targetModules = target_modules === undefined ? undefined : checkTargetModules(target_modules);
  const mixed = mixed_batches === undefined || mixed_batches === false ? undefined : mixed_batches === true ? {} : mixed_batches;
  const since = failureMark();
  // No rewrite_cache (Node): a temporary one for this load only (temp-rewrite-dir.ts), so a local
  // model is rewritten file to file and read by ONNX Runtime from the path; removed after the load.
  const model = await withTempRewriteDir(async (tmp) => {
    const cacheOpt = rewrite_cache !== undefined ? { rewriteCache: rewrite_cache } : tmp !== undefined && (mode ?? 'branch') === 'branch' ? { rewriteCache: tmp } : {};
    // The device picks the branch precision per file (branch-dtype.ts); transformers.js gets it too (in `rest`).
    const precision = { ...(rest.device === undefined ? {} : { device: rest.device as DeviceOption }), ...(branch_dtype === undefined ? {} : { branchDtype: branch_dtype }) };
    const restore = enableAdapters(env, { ...(mode ? { mode } : {}), ...cacheOpt, ...(mixed ? { mixedBatches: true } : {}), ...precision, ...(fuse_siblings === true ? { fuseSiblings: true } : {}), ...(targetModules ? { targetModules } : {}) });
    try {
      return await loader.from_pretrained(id, rest);
    } catch (e) {
      // The rewrite's typed error (e.g. a bad external data reference) rather than what ORT then
      // says about the file transformers.js fell back to.
      throw failuresSince(since).find((f) => f instanceof PluginError) ?? e;
    } finally {
      restore();
    }
  });
  // transformers.js fell back to the unrewritten file: the model would run without adapter inputs.
  const failed = failuresSince(since);
  if (failed.length > 0) throw failed[0];
  // base_session: the same model loaded plainly (the rewrite is off again here), run while no adapter is active.
  const twin = base_session ? await loadTwin(model, loader, id, rest) : undefined;
  const m = attachAdapters(model, { ...(max_adapter_bytes === undefined ? {} : { max_adapter_bytes }), ...(webgpu === undefined ? {} : { webgpu }), ...(mixed ? { mixed_batches: mixed } : {}), ...(twin ? { base_sessions: twin } : {}) });
  const cb = options.progress_callback as AdapterProgressCallback | undefined;
  let first = true;
  for (const [name, src] of Object.entries(adapters ?? {})) {
    const { source, ...opts } = isEntry(src) ? src : { source: src };
    await m.load_adapter(source, { ...opts, adapter_name: name, ...(cb ? { progress_callback: cb } : {}) });
    if (first) m.set_adapter(name);
    first = false;
  }
  return m;
}

/** The sessions of `id` loaded without the rewrite; disposed with `model`. */
async function loadTwin(model: object, loader: PretrainedLoader<object>, id: string, options: Record<string, unknown>): Promise<NonNullable<AttachOptions['base_sessions']>> {
  const plain = (await loader.from_pretrained(id, options)) as { sessions?: NonNullable<AttachOptions['base_sessions']>; dispose?: () => Promise<unknown> };
  if (!plain.sessions) throw new PluginError('base_session: the plainly loaded model has no sessions');
  const m = model as { dispose?: () => Promise<unknown> };
  const dispose = m.dispose?.bind(model);
  if (dispose) Object.defineProperty(model, 'dispose', { configurable: true, writable: true, value: async () => Promise.all([dispose(), plain.dispose?.()]) });
  return plain.sessions;
}
