/**
 * transformers.js integration, re-exported from the modules that hold it: the load-time rewrite
 * through `env.customCache` (cache.ts), the adapter registry whose sessions get a `run` wrapper
 * adding the adapter inputs (registry.ts), the call hooks (attach.ts), one-step loading
 * (from-pretrained.ts) and the public types (types.ts).
 *
 * The registry is method-agnostic: an adapter is materialized by core into (A′, B′, s) per module
 * path; the plugin folds s into B′ᵀ and feeds `A: [n, ρ]`, `B: [ρ, m]`.
 */
export { configKeyFor, enableAdapters, type CacheEnv, type EnableOptions } from './cache.js';
export type { GpuMaterializer, GpuModuleUpdateLike } from './ort-feeds.js';
export { AdapterRegistry } from './registry.js';
export { attachAdapters } from './attach.js';
export { from_pretrained, type AdapterEntry, type FromPretrainedOptions, type PretrainedLoader } from './from-pretrained.js';
export type {
  AdapterCallOptions,
  AdapterMemoryInfo,
  AdapterMethods,
  AdapterProgressCallback,
  AdapterProgressInfo,
  AdapterSource,
  AttachOptions,
  LoadAdapterOptions,
  LoadedAdapterInfo,
  WeightedAdapterOptions,
  WithAdapters,
} from './types.js';
