// onnx-proto's public types (ModelProto in rewriteModel / decodeModel) name the global `Long` of
// @types/long without referencing it: without this line, projects that list their own `types` and
// check libraries (skipLibCheck: false) fail with TS2304 "Cannot find name 'Long'".
/// <reference types="long" preserve="true" />
/**
 * @tensorpeft/transformers-plugin — attach and hot-swap tensor-compressed PEFT adapters on
 * transformers.js models: a load-time ONNX rewrite (side branch y += (x·A)·B per targeted linear,
 * overridable head parameters) and an adapter registry feeding the branch inputs per run.
 *
 * Browser-safe: this entry holds the plugin, the rewrite and the merge only. `verify` and
 * `runPluginBench` read files and live in '@tensorpeft/transformers-plugin/node'.
 */
export {
  findLinears,
  graphPathOfNode,
  matchTarget,
  pathsMatch,
  rewriteModel,
  INPUT_PREFIX,
  MERGE_PREFIX,
  baseWeightOf,
  PARAM_PREFIX,
  RANK_DIM,
  OVERRIDE_DIM,
  type BranchInfo,
  type MergedInfo,
  type FoundLinear,
  type ParamInfo,
  type RewriteOptions,
  type RewriteResult,
  type OnnxModel,
} from './public-rewrite.js';
export {
  AdapterRegistry,
  attachAdapters,
  configKeyFor,
  enableAdapters,
  from_pretrained,
  type AdapterCallOptions,
  type AdapterEntry,
  type AdapterMemoryInfo,
  type AdapterMethods,
  type AdapterProgressCallback,
  type AdapterProgressInfo,
  type AttachOptions,
  type AdapterSource,
  type CacheEnv,
  type EnableOptions,
  type FromPretrainedOptions,
  type GpuMaterializer,
  type GpuModuleUpdateLike,
  type LoadAdapterOptions,
  type LoadedAdapterInfo,
  type PretrainedLoader,
  type WeightedAdapterOptions,
  type WithAdapters,
} from './plugin.js';
export { mergeModel } from './merge.js';
export { REWRITE_VERSION, cacheStorageRewriteStore, folderRewriteStore, type RewriteCacheOption, type RewriteMeta, type RewriteStore } from './rewrite-cache.js';
export { ModelFormatError, PluginError } from './errors.js';
// Node-only helpers (node:fs, onnxruntime-node): import them from '@tensorpeft/transformers-plugin/node'.
