/** Adapter files: safetensors, dtypes, adapter folders, export to LoRA, diff. */
export {
  CONFIG_FILE,
  WEIGHTS_FILE,
  adapterFromBytes,
  adapterMetadata,
  adapterStats,
  adapterToFiles,
  configForShape,
  createAdapter,
  materializeAdapter,
  modulesToSaveName,
  parseAdapterConfig,
  type Adapter,
  type AdapterFromBytesInput,
  type AdapterStats,
  type CreateAdapterOptions,
} from './adapter.js';
export { loadAdapter, saveAdapter, type LoadAdapterOptions } from './load.js';
export {
  DEFAULT_CONNECT_TIMEOUT_MS,
  DEFAULT_IDLE_TIMEOUT_MS,
  DEFAULT_TIMEOUT_MS,
  DEFAULT_MAX_BYTES,
  fetchBytes,
  type FetchBytesOptions,
  type RedirectPolicy,
} from './fetch.js';
export {
  DEFAULT_REMOTE_HOST,
  DEFAULT_REMOTE_PATH_TEMPLATE,
  hubFileUrl,
  isHubRepoId,
  readAdapterFiles,
  type AdapterFileInputs,
  type AdapterFiles,
  type AdapterLocation,
  type FileProgress,
  type HubOptions,
  type ReadAdapterOptions,
} from './source.js';
export { exportToLora } from './export.js';
export { diffAdapters, type DiffOptions, type DiffResult } from './diff.js';
export {
  MAX_HEADER_BYTES,
  layoutSafetensors,
  parseSafetensors,
  readSafetensorsHeader,
  writeSafetensors,
  type ParseOptions,
  type ParsedSafetensors,
  type SafetensorsEntry,
  type SafetensorsTensor,
  type WriteOptions,
} from './safetensors.js';
export {
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  bf16BitsToF32Bits,
  toBfloat16,
  toFloat16,
  type SafetensorsDtype,
  type StorageDtype,
} from './dtype.js';
export { MANIFEST_MODEL, MANIFEST_MODULES, presetForHubId, shapeFromManifest } from './manifest.js';
export { stableStringify } from './json.js';
export * from './torch/index.js';
export * from './official/index.js';
