/**
 * The playground's logic without the DOM: the shipped-adapter manifest, picking the two files of a
 * dropped adapter, output formatting, error rendering. Unit-tested in logic.test.ts.
 */
import { DatasetError, NoGradientRuleError, TrainingGraphError } from '@tensorpeft/autodiff';
import { AdapterFormatError, ConfigError, FetchError, ModelShapeError, NonFiniteError, ShapeMismatchError, TensorPeftError } from '@tensorpeft/core';

/** A problem with what the user gave the playground (files, manifest), shown like core's typed errors. */
export class PlaygroundFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PlaygroundFileError';
  }
}

export interface ManifestAdapter {
  name: string;
  /** Id of the embedded model this adapter was made for (`Manifest.models[].id`). */
  model: string;
  /** Folder, relative to the generated/ folder (the parent of adapters/index.json). */
  path: string;
  peft_type: string;
  modules: number;
  rank: number;
  trainable: number;
  frozen: number;
  stored: number;
  bytes: number;
  /** A real adapter file made by someone else (HF PEFT), not generated here. */
  real: boolean;
  origin: string;
}

/**
 * transformers.js dtypes the playground offers (`from_pretrained(…, { dtype })`): fp32 and q8 for
 * every embedded model, the others (model-gen's `EXTRA_DTYPES`) for the tiny one.
 */
export const DTYPES = ['fp32', 'q8', 'fp16', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;
export type Dtype = (typeof DTYPES)[number];

/** What the WebGPU adapter offers that a dtype may need. */
export interface GpuCaps {
  /** `shader-f16` is among the adapter's features (WGSL f16: fp16 activations on the WebGPU EP). */
  shaderF16: boolean;
}

/**
 * Why `dtype` cannot run on `device`, or undefined when it can. fp16 activations (fp16, q4f16) on
 * the WebGPU EP need the adapter's `shader-f16` feature (transformers.js refuses fp16 without it,
 * and ORT's fp16 WebGPU kernels are WGSL f16). The wasm EP runs every dtype (CPU kernels, the
 * com.microsoft MatMulNBits / MatMulBnb4 included).
 */
export function dtypeUnavailable(dtype: Dtype, device: 'wasm' | 'webgpu', gpu: GpuCaps | undefined): string | undefined {
  if (device !== 'webgpu') return undefined;
  if (!gpu) return 'no WebGPU adapter';
  if ((dtype === 'fp16' || dtype === 'q4f16') && !gpu.shaderF16) return 'fp16 activations need the GPU feature shader-f16, which this adapter lacks';
  return undefined;
}

export interface ManifestModel {
  id: string;
  arch: string;
  size: string;
  description: string;
  labels: string[];
  modules: number;
  /** Bytes of each ONNX file shipped (`onnxFileFor(dtype)`: fp32 = onnx/model.onnx, q8 = onnx/model_quantized.onnx, q4 = onnx/model_q4.onnx, …). */
  dtypes: Partial<Record<Dtype, number>>;
  /** adapter_config.json fields the Train panel starts from, by peft_type (e.g. tensor shapes that fit a tiny model). */
  methodConfigs: Record<string, Record<string, unknown>>;
}

export interface Manifest {
  models: ManifestModel[];
  adapters: ManifestAdapter[];
}

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const NAME = /^[a-z0-9_-]+$/i;

/** Validate adapters/index.json (written by scripts/prepare-assets.mjs). */
export function parseManifest(v: unknown): Manifest {
  const bad = (why: string): never => {
    throw new PlaygroundFileError(`adapters/index.json: ${why}`);
  };
  if (!isObj(v) || !Array.isArray(v.models) || !Array.isArray(v.adapters)) bad('expected { models[], adapters[] }');
  const o = v as { models: unknown[]; adapters: unknown[] };
  if (o.models.length === 0) bad('no models');
  const ids = new Set<string>();
  const models = o.models.map((m, i): ManifestModel => {
    if (!isObj(m) || typeof m.id !== 'string' || !NAME.test(m.id) || !Array.isArray(m.labels) || !isObj(m.dtypes)) bad(`model ${i} needs id, labels, dtypes`);
    const mm = m as Record<string, unknown> & { id: string; labels: unknown[]; dtypes: Record<string, unknown> };
    if (ids.has(mm.id)) bad(`duplicate model id ${mm.id}`);
    ids.add(mm.id);
    const dtypes: Partial<Record<Dtype, number>> = {};
    for (const d of DTYPES) if (typeof mm.dtypes[d] === 'number') dtypes[d] = mm.dtypes[d] as number;
    if (Object.keys(dtypes).length === 0) bad(`model ${mm.id} has no ONNX file of a known dtype (${DTYPES.join(', ')})`);
    const str = (k: string): string => (typeof mm[k] === 'string' ? (mm[k] as string) : '');
    const methodConfigs: Record<string, Record<string, unknown>> = {};
    if (mm.method_configs !== undefined) {
      if (!isObj(mm.method_configs)) bad(`model ${mm.id}: method_configs must be an object`);
      for (const [k, c] of Object.entries(mm.method_configs as Record<string, unknown>)) {
        if (!isObj(c)) bad(`model ${mm.id}: method_configs.${k} must be an object`);
        methodConfigs[k] = c as Record<string, unknown>;
      }
    }
    return { id: mm.id, arch: str('arch'), size: str('size'), description: str('description'), labels: mm.labels.map(String), modules: typeof mm.modules === 'number' ? mm.modules : 0, dtypes, methodConfigs };
  });
  const names = new Set<string>();
  const adapters = o.adapters.map((a, i): ManifestAdapter => {
    if (!isObj(a) || typeof a.name !== 'string' || typeof a.path !== 'string' || typeof a.peft_type !== 'string' || typeof a.model !== 'string') {
      bad(`adapter ${i} needs name, model, path, peft_type`);
    }
    const aa = a as Record<string, unknown> & { name: string; path: string; peft_type: string; model: string };
    if (!NAME.test(aa.name) || aa.name === 'base') bad(`bad adapter name ${JSON.stringify(aa.name)}`);
    if (names.has(aa.name)) bad(`duplicate adapter name ${aa.name}`);
    if (!ids.has(aa.model)) bad(`adapter ${aa.name} is for unknown model ${aa.model}`);
    names.add(aa.name);
    const num = (k: string): number => (typeof aa[k] === 'number' ? (aa[k] as number) : 0);
    return {
      name: aa.name,
      model: aa.model,
      path: aa.path,
      peft_type: aa.peft_type,
      modules: num('modules'),
      rank: num('rank'),
      trainable: num('trainable'),
      frozen: num('frozen'),
      stored: num('stored'),
      bytes: num('bytes'),
      real: aa.real === true,
      origin: typeof aa.origin === 'string' ? aa.origin : '',
    };
  });
  return { models, adapters };
}

/**
 * Which adapters to try on a model: on an embedded model, the shipped adapters made for it; on a
 * Hub model, every shipped adapter (the app cannot know which fit: the plugin's shape check
 * decides); then, on any model, the adapters the user added (dropped, picked or by URL).
 */
export function adapterCandidates(manifest: Manifest, modelId: string, hub: boolean, userAdded: Iterable<string>): string[] {
  const shipped = manifest.adapters.filter((a) => hub || a.model === modelId).map((a) => a.name);
  const out = [...shipped];
  for (const n of userAdded) if (!out.includes(n)) out.push(n);
  return out;
}

/** `onnx/model.onnx 120.3 / 255.5 MiB (47 %)`, or without total when the size is unknown. */
export function formatProgress(file: string, loaded: number, total: number): string {
  if (total > 0) return `${file} ${formatBytes(loaded)} / ${formatBytes(total)} (${Math.min(100, Math.floor((loaded / total) * 100))} %)`;
  return `${file} ${formatBytes(loaded)}`;
}

/** ONNX file name transformers.js loads for a dtype. */
export function onnxFileFor(dtype: Dtype): string {
  if (dtype === 'fp32') return 'onnx/model.onnx';
  return dtype === 'q8' ? 'onnx/model_quantized.onnx' : `onnx/model_${dtype}.onnx`;
}

export interface NamedBytes {
  /** File name, or the relative path inside a dropped folder (`emotion/adapter_config.json`). */
  name: string;
  bytes: Uint8Array;
}

export interface PickedAdapter {
  /** Suggested registry name: the folder's name, else the config's peft_type (lower case). */
  name: string;
  config: Uint8Array;
  safetensors: Uint8Array;
  /** Shown in error messages (folder or "dropped files"). */
  source: string;
}

const baseName = (p: string): string => p.split(/[\\/]/).pop() ?? p;

/**
 * The two files of an adapter among dropped/picked files: `adapter_config.json` (or the only
 * `.json`) and `adapter_model.safetensors` (or the only `.safetensors`). Other files are ignored.
 */
export function pickAdapterFiles(files: readonly NamedBytes[]): PickedAdapter {
  if (files.length === 0) throw new PlaygroundFileError('no files: drop adapter_config.json and adapter_model.safetensors (or their folder)');
  const choose = (exact: string, ext: string): NamedBytes | undefined => {
    const named = files.filter((f) => baseName(f.name) === exact);
    if (named.length === 1) return named[0];
    if (named.length > 1) throw new PlaygroundFileError(`more than one ${exact}: drop one adapter at a time`);
    const byExt = files.filter((f) => baseName(f.name).toLowerCase().endsWith(ext));
    if (byExt.length === 1) return byExt[0];
    if (byExt.length > 1) throw new PlaygroundFileError(`more than one ${ext} file and none named ${exact}`);
    return undefined;
  };
  const cfg = choose('adapter_config.json', '.json');
  const st = choose('adapter_model.safetensors', '.safetensors');
  const got = files.map((f) => baseName(f.name)).join(', ');
  if (!cfg) throw new PlaygroundFileError(`adapter_config.json is missing (got ${got})`);
  if (!st) throw new PlaygroundFileError(`adapter_model.safetensors is missing (got ${got})`);
  const folder = cfg.name.includes('/') ? cfg.name.split('/').slice(-2, -1)[0] : undefined;
  let name = folder ?? '';
  if (!name) {
    try {
      const pt = (JSON.parse(new TextDecoder().decode(cfg.bytes)) as { peft_type?: unknown }).peft_type;
      if (typeof pt === 'string') name = pt.toLowerCase();
    } catch {
      // the plugin reports the bad JSON with core's ConfigError
    }
  }
  return { name: sanitizeName(name || 'dropped'), config: cfg.bytes, safetensors: st.bytes, source: folder ?? 'dropped' };
}

/** A registry-safe name. */
export function sanitizeName(s: string): string {
  const n = s.replace(/[^a-z0-9_-]+/gi, '-').replace(/^-+|-+$/g, '').slice(0, 40);
  return n && n !== 'base' ? n : 'adapter';
}

/** `name`, or `name-2`, `name-3`, … — the first one not in `taken`. */
export function uniqueName(name: string, taken: Iterable<string>): string {
  const set = new Set(taken);
  set.add('base');
  if (!set.has(name)) return name;
  for (let i = 2; ; i++) if (!set.has(`${name}-${i}`)) return `${name}-${i}`;
}

/** Core's typed errors, most specific first (names survive minification this way too). */
const TYPED: Array<[new (...a: never[]) => Error, string]> = [
  [AdapterFormatError, 'AdapterFormatError'],
  [ConfigError, 'ConfigError'],
  [ShapeMismatchError, 'ShapeMismatchError'],
  [ModelShapeError, 'ModelShapeError'],
  [NonFiniteError, 'NonFiniteError'],
  [FetchError, 'FetchError'],
  [DatasetError, 'DatasetError'],
  [TrainingGraphError, 'TrainingGraphError'],
  [NoGradientRuleError, 'NoGradientRuleError'],
  [PlaygroundFileError, 'PlaygroundFileError'],
  [TensorPeftError, 'TensorPeftError'],
];

/** `Name: message` for any thrown value (core's typed errors by their class). */
export function describeError(e: unknown): string {
  if (e instanceof Error) {
    const typed = TYPED.find(([C]) => e instanceof C)?.[1];
    // A subclass of TensorPeftError from another package (kernels-wgsl's WebGpuError, …) keeps its
    // own name when it has one (the build keeps class names).
    const own = e.name && e.name !== 'Error' && /^[A-Z]\w*Error$/.test(e.name) ? e.name : undefined;
    const name = (typed === 'TensorPeftError' ? own : undefined) ?? typed ?? own ?? 'Error';
    return `${name}: ${e.message}`;
  }
  return `Error: ${String(e)}`;
}

export function formatBytes(n: number): string {
  if (!Number.isFinite(n)) return '—';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export function formatCount(n: number): string {
  return Number.isFinite(n) ? n.toLocaleString('en-US') : '—';
}

/** ms with a unit fitting its size (µs below 1 ms). */
export function formatMs(ms: number | undefined): string {
  if (ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 2 : 1)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}

export function softmax(logits: readonly number[]): number[] {
  if (logits.length === 0) return [];
  const max = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / sum);
}

export interface LabelScore {
  label: string;
  logit: number;
  prob: number;
}

/** Labels with logits and probabilities, most likely first (ties: label order). */
export function rankLabels(logits: readonly number[], labels: readonly string[]): LabelScore[] {
  const p = softmax(logits);
  return logits
    .map((logit, i) => ({ label: labels[i] ?? `LABEL_${i}`, logit, prob: p[i]!, i }))
    .sort((a, b) => b.prob - a.prob || a.i - b.i)
    .map(({ label, logit, prob }) => ({ label, logit, prob }));
}

export function maxAbsDiff(a: readonly number[], b: readonly number[]): number {
  if (a.length !== b.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Keyboard shortcut → choice: `0` base, `1`…`9` the n-th adapter; undefined otherwise. */
export function shortcutChoice(key: string, names: readonly string[]): string | undefined {
  if (!/^[0-9]$/.test(key)) return undefined;
  const k = Number(key);
  if (k === 0) return 'base';
  return names[k - 1];
}

/** Largest adapter file the URL field downloads (each of the two files). */
export const URL_MAX_BYTES = 64 * 1024 * 1024;

/**
 * An adapter folder URL typed by the user: resolved against the page (relative paths work), only
 * http(s), with one of the two file names taken as its folder; returns the folder URL (ending in
 * `/`) and a registry name suggested by its last path segment.
 */
export function resolveAdapterUrl(input: string, page: string): { folder: string; name: string } {
  const s = input.trim();
  if (!s) throw new PlaygroundFileError('adapter URL is empty');
  let u: URL;
  try {
    u = new URL(s, page);
  } catch {
    throw new PlaygroundFileError(`not a URL: ${s}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new PlaygroundFileError(`adapter URL must be http(s): ${s}`);
  u.pathname = u.pathname.replace(/\/(adapter_config\.json|adapter_model\.safetensors)$/, '/');
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  const seg = u.pathname.split('/').filter(Boolean).pop() ?? '';
  return { folder: u.href, name: sanitizeName(seg || u.hostname) };
}

/** A Hub repository id (`org/name` or `name`), checked before any request is made from it. */
export function checkHubId(input: string): string {
  const id = input.trim();
  if (!/^[A-Za-z0-9][\w.-]{0,95}(\/[A-Za-z0-9][\w.-]{0,95})?$/.test(id) || id.includes('..')) {
    throw new PlaygroundFileError(`not a Hub model id: ${JSON.stringify(input)} (expected org/name, e.g. Xenova/distilbert-base-uncased-finetuned-sst-2-english)`);
  }
  return id;
}

/** URL of a file of a Hub model, as transformers.js builds it (`env.remoteHost` + `env.remotePathTemplate`). */
export function hubFileUrl(host: string, template: string, id: string, file: string, revision = 'main'): string {
  const base = host.endsWith('/') ? host : `${host}/`;
  let p = template.replaceAll('{model}', id).replaceAll('{revision}', encodeURIComponent(revision));
  if (!p.endsWith('/')) p += '/';
  return `${base}${p}${file}`;
}
