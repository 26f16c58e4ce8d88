/**
 * @tensorpeft/transformers-plugin — attach and hot-swap tensor-compressed PEFT adapters on
 * transformers.js models: a load-time ONNX rewrite (side branch y += (x·A)·B per targeted linear,
 * overridable head parameters) and an adapter registry feeding the branch inputs per run.
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
} from './rewrite.js';
export {
  AdapterRegistry,
  attachAdapters,
  configKeyFor,
  enableAdapters,
  from_pretrained,
  type AdapterMemoryInfo,
  type AdapterMethods,
  type AdapterProgressCallback,
  type AdapterProgressInfo,
  type AttachOptions,
  type AdapterSource,
  type CacheEnv,
  type EnableOptions,
  type FromPretrainedOptions,
  type LoadAdapterOptions,
  type LoadedAdapterInfo,
  type PretrainedLoader,
} from './plugin.js';
export { mergeModel } from './merge.js';
export { verify, DEFAULT_TEXTS, type VerifyOptions, type VerifyResult } from './verify.js';
export { runPluginBench, type PluginBenchOptions, type PluginBenchRow } from './bench.js';
