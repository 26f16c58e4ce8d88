/**
 * Adapters as data: a method, its parsed config, the parameter plan for a model shape, the
 * tensors, and the `modules_to_save` extras. Conversion to and from the two files of an adapter
 * folder (`adapter_config.json`, `adapter_model.safetensors`). Browser-safe: no Node imports here
 * (file and network access live in load.ts).
 *
 * Everything here is method-generic: the method supplies schema, plan, jobs and (optionally)
 * inferShape; nothing branches on `peft_type`.
 */
import type { Backend, ModuleUpdate } from '../backend/types.js';
import { getBackend } from '../backend/registry.js';
import { AdapterFormatError, ConfigError, TensorPeftError } from '../errors.js';
import { checkParams, countParams, initParams, materialize, parseMethodConfig } from '../methods/generic.js';
import { getMethod, listMethods } from '../methods/registry.js';
import { targetedModules } from '../methods/common.js';
import type { AdapterMethod, BaseAdapterConfig, ParamPlan } from '../methods/types.js';
import type { ModelShape } from '../model/shape.js';
import type { TensorMap } from '../tensor.js';
import { SAFETENSORS_TO_DTYPE, type SafetensorsDtype, type StorageDtype } from './dtype.js';
import { checkConfigDepth, parseJsonFile, stableStringify } from './json.js';
import { manifestMetadata, sameModules, shapeFromHubId, shapeFromManifest } from './manifest.js';
import { layoutSafetensors, parseSafetensors, writeSafetensors } from './safetensors.js';

export type { StorageDtype } from './dtype.js';

export const CONFIG_FILE = 'adapter_config.json';
export const WEIGHTS_FILE = 'adapter_model.safetensors';

export interface Adapter {
  /** The method, from the registry by `config.peft_type`. */
  method: AdapterMethod<any>;
  /** adapter_config.json parsed by the method's schema (defaults filled, extra PEFT fields kept). */
  config: BaseAdapterConfig;
  plan: ParamPlan;
  /** The method's tensors: exactly the plan's keys. */
  params: TensorMap;
  /** Tensors outside the plan: `modules_to_save` modules (classifier heads), kept and re-saved whole. */
  extras: TensorMap;
  /** The model shape the plan was made for. */
  shape: ModelShape;
  /** Storage dtype (read from the file, or chosen at creation). */
  dtype: StorageDtype;
  /** Folder or URL the adapter was read from. */
  source?: string;
}

/** Join a folder/URL and a file name for messages and reads. */
export function joinLocation(base: string | undefined, name: string): string {
  if (base === undefined || base === '') return name;
  return base.endsWith('/') ? `${base}${name}` : `${base}/${name}`;
}

function withFile<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof TensorPeftError && e.details.file === undefined) throw e.withDetails({ file });
    throw e;
  }
}

export interface CreateAdapterOptions {
  method: string | AdapterMethod<any>;
  /** adapter_config.json fields, merged over `{peft_type}`. */
  config?: Record<string, unknown>;
  shape: ModelShape;
  seed?: number;
  /** Fill zero-initialized tensors with small noise so ΔW ≠ 0 (demos, tests). */
  nonzero?: boolean;
  dtype?: StorageDtype;
}

/**
 * Parse a method config for a model shape and plan it, with the defaults a user of that model
 * expects: `target_modules` = the shape's PEFT default targets, `base_model_name_or_path` = the
 * shape's name, `fan_in_fan_out` = true when every target is a Conv1D-style `[in, out]` weight (as
 * PEFT does). Fields given in `userConfig` win.
 */
export function configForShape<C extends BaseAdapterConfig>(
  method: AdapterMethod<C>,
  userConfig: Record<string, unknown>,
  shape: ModelShape,
  source?: string,
): { config: C; plan: ParamPlan } {
  const raw: Record<string, unknown> = { peft_type: method.peftType };
  if (shape.nameOrPath !== undefined) raw.base_model_name_or_path = shape.nameOrPath;
  // A method with targets of its own on this shape (TensLoRA: q, k, v) wins over the model's PEFT default.
  const targets = method.defaultTargets?.(shape) ?? shape.defaultTargets;
  if (targets.length > 0) raw.target_modules = [...targets];
  Object.assign(raw, userConfig);
  raw.peft_type = method.peftType;
  let config = parseMethodConfig(method, raw, source);
  // Tables keyed by dimension (TRAC, LoRETTA): entries for this model's dimensions they lack.
  if (method.dimDefaults) {
    let dims: { n: number; m: number }[] = [];
    try {
      dims = targetedModules(config.target_modules, shape, (config as { layers_to_transform?: number | number[] | null }).layers_to_transform).map((x) => ({ n: x.in, m: x.out }));
    } catch {
      dims = []; // the plan below reports bad targets
    }
    const add = Object.entries(method.dimDefaults(config, dims)).filter(([k]) => !(k in userConfig));
    if (add.length) {
      Object.assign(raw, Object.fromEntries(add));
      config = parseMethodConfig(method, raw, source);
    }
  }
  const plan = method.plan(config, shape);
  // Like PEFT (which switches it on for Conv1D targets), record fan_in_fan_out when every target
  // stores its weight [in, out] — if the method's schema has the field.
  if (raw.fan_in_fan_out === undefined && plan.modules.length > 0 && plan.modules.every((m) => m.fanInFanOut)) {
    const r = method.schema.safeParse({ ...raw, fan_in_fan_out: true });
    if (r.success) config = r.data;
  }
  return { config, plan };
}

/**
 * A freshly initialized adapter. `target_modules` defaults to the shape's PEFT default targets,
 * `base_model_name_or_path` to the shape's name, `fan_in_fan_out` to true when every target is a
 * Conv1D-style `[in, out]` weight (as PEFT does); the seed defaults to `config.seed` or 0.
 */
export function createAdapter(opts: CreateAdapterOptions): Adapter {
  const method = typeof opts.method === 'string' ? getMethod(opts.method) : opts.method;
  const { config, plan } = configForShape(method, opts.config ?? {}, opts.shape);
  const cfgSeed = (config as Record<string, unknown>).seed;
  const seed = opts.seed ?? (typeof cfgSeed === 'number' ? cfgSeed : 0);
  const params = initParams(plan, { seed, nonzero: opts.nonzero ?? false });
  return { method, config, plan, params, extras: new Map(), shape: opts.shape, dtype: opts.dtype ?? 'fp32' };
}

/**
 * Same tensors (keys, shapes, kinds), modules and rank. With `modelFacts`, also the same
 * numHeads/numLayers (what a manifest must reproduce); a method's inferShape is trusted to recover
 * whatever of those its jobs need (LoRA needs neither, and PEFT LoRA files stay manifest-free).
 */
function samePlan(p: ParamPlan, q: ParamPlan, modelFacts: boolean): boolean {
  if (p.rank !== q.rank) return false;
  if (modelFacts && (p.numHeads !== q.numHeads || p.numLayers !== q.numLayers)) return false;
  if (!sameModules(p.modules, q.modules) || p.params.length !== q.params.length) return false;
  const byKey = new Map(p.params.map((s) => [s.key, s]));
  return q.params.every((s) => {
    const o = byKey.get(s.key);
    return o !== undefined && o.kind === s.kind && o.shape.length === s.shape.length && o.shape.every((d, i) => d === s.shape[i]);
  });
}

function tryPlan(a: Adapter, shape: ModelShape | undefined): ParamPlan | undefined {
  if (!shape) return undefined;
  try {
    return a.method.plan(a.config, shape);
  } catch {
    return undefined;
  }
}

/**
 * safetensors metadata for an adapter: `{"format": "pt"}` alone when the file is self-describing
 * (the method's inferShape rebuilds the same plan from the tensors, as for plain LoRA), otherwise
 * plus a model-shape manifest. The manifest lists the planned modules; if re-planning from that
 * manifest would not reproduce the plan, every module of the shape is listed instead.
 */
export function adapterMetadata(a: Adapter): Record<string, string> {
  if (a.method.inferShape) {
    const shapes = new Map<string, readonly number[]>();
    for (const [k, t] of a.params) shapes.set(k, t.shape);
    for (const [k, t] of a.extras) shapes.set(k, t.shape);
    let inferred: ModelShape | undefined;
    try {
      inferred = a.method.inferShape(a.config, shapes);
    } catch {
      inferred = undefined;
    }
    const p = tryPlan(a, inferred);
    if (p && samePlan(p, a.plan, false)) return { format: 'pt' };
  }
  const planned = manifestMetadata(a.shape, a.plan.modules);
  const p = tryPlan(a, shapeFromManifest(planned));
  if (p && samePlan(p, a.plan, true)) return planned;
  return manifestMetadata(
    a.shape,
    a.shape.modules.map((m) => ({ path: m.path, n: m.in, m: m.out, fanInFanOut: m.fanInFanOut })),
  );
}

function allTensors(a: Adapter): TensorMap {
  const all: TensorMap = new Map(a.params);
  for (const [k, t] of a.extras) {
    if (all.has(k)) throw new AdapterFormatError('extra tensor has the same key as a method tensor', { tensor: k });
    all.set(k, t);
  }
  return all;
}

/** The two files of an adapter folder. */
export function adapterToFiles(a: Adapter, opts: { dtype?: StorageDtype } = {}): { configJson: string; safetensors: Uint8Array } {
  checkParams(a.plan, a.params);
  const safetensors = writeSafetensors(allTensors(a), { dtype: opts.dtype ?? a.dtype, metadata: adapterMetadata(a) });
  return { configJson: stableStringify(a.config), safetensors };
}

/** Which `modules_to_save` entry a tensor key belongs to (longest matching name), if any. */
export function modulesToSaveName(key: string, names: readonly string[]): string | undefined {
  const prefix = 'base_model.model.';
  if (!key.startsWith(prefix)) return undefined;
  const rest = key.slice(prefix.length);
  let best: string | undefined;
  for (const n of names) {
    if (n && (rest.startsWith(`${n}.`) || rest.includes(`.${n}.`)) && (best === undefined || n.length > best.length)) best = n;
  }
  return best;
}

export interface AdapterFromBytesInput {
  config: string | Uint8Array | object;
  safetensors: Uint8Array;
  /** Folder or URL, used in error messages and kept as `Adapter.source`. */
  source?: string;
  /** Model shape to plan with (otherwise: manifest, method.inferShape, preset by base model id). */
  shape?: ModelShape;
  /** Accept NaN/Inf tensor values. */
  allowNonFinite?: boolean;
}

/** Parse an adapter_config.json value into (method, config), errors naming the file. */
export function parseAdapterConfig(input: string | Uint8Array | object, file = CONFIG_FILE): { method: AdapterMethod<any>; config: BaseAdapterConfig } {
  const raw = typeof input === 'string' || input instanceof Uint8Array ? parseJsonFile(input, file) : input;
  // Extra fields are kept and written back on save: bound their nesting now (text was checked by parseJsonFile).
  if (!(typeof input === 'string' || input instanceof Uint8Array)) checkConfigDepth(raw, file);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError('adapter config must be a JSON object', { file, expected: 'object', found: Array.isArray(raw) ? 'array' : raw === null ? 'null' : typeof raw });
  }
  const peftType = (raw as Record<string, unknown>).peft_type;
  if (peftType === undefined || peftType === null) {
    throw new ConfigError('adapter config has no peft_type', {
      file,
      field: 'peft_type',
      expected: listMethods()
        .map((m) => m.peftType)
        .join(' | '),
      found: 'nothing',
    });
  }
  if (typeof peftType !== 'string') throw new ConfigError('peft_type must be a string', { file, field: 'peft_type', expected: 'string', found: peftType });
  const method = withFile(file, () => getMethod(peftType));
  const config = parseMethodConfig(method, raw, file) as BaseAdapterConfig;
  return { method, config };
}

/** Storage dtype of a file: the dtype of the method tensors, fp32 when they are mixed. */
function storageDtype(dtypes: Iterable<SafetensorsDtype>): StorageDtype {
  const set = new Set(dtypes);
  if (set.size === 1) return SAFETENSORS_TO_DTYPE[[...set][0]!];
  return 'fp32';
}

/** An adapter from the bytes of its two files. */
export function adapterFromBytes(input: AdapterFromBytesInput): Adapter {
  const cfgFile = joinLocation(input.source, CONFIG_FILE);
  const stFile = joinLocation(input.source, WEIGHTS_FILE);
  const { method, config } = parseAdapterConfig(input.config, cfgFile);
  const parsed = parseSafetensors(input.safetensors, stFile, { allowNonFinite: input.allowNonFinite ?? false });
  const nameOrPath = typeof config.base_model_name_or_path === 'string' && config.base_model_name_or_path ? config.base_model_name_or_path : undefined;
  const named = (s: ModelShape | undefined): ModelShape | undefined => (s && nameOrPath && s.nameOrPath === undefined ? { ...s, nameOrPath } : s);

  const shapes = new Map<string, readonly number[]>();
  for (const [k, t] of parsed.tensors) shapes.set(k, t.shape);
  const shape =
    input.shape ??
    shapeFromManifest(parsed.metadata, stFile, nameOrPath) ??
    named(method.inferShape ? withFile(stFile, () => method.inferShape!(config, shapes)) : undefined) ??
    shapeFromHubId(nameOrPath);
  if (!shape) {
    throw new AdapterFormatError('cannot tell the model shape this adapter was made for', {
      file: stFile,
      field: 'base_model_name_or_path',
      expected: 'a tensorpeft.modules manifest in the file, a known base model id, or an explicit model shape',
      found: nameOrPath ?? 'nothing',
    });
  }
  const plan = withFile(cfgFile, () => method.plan(config, shape));

  const params: TensorMap = new Map();
  const planKeys = new Set(plan.params.map((p) => p.key));
  const paramDtypes: SafetensorsDtype[] = [];
  for (const key of planKeys) {
    const t = parsed.tensors.get(key);
    if (t) {
      params.set(key, { shape: t.shape, data: t.data });
      paramDtypes.push(t.dtype);
    }
  }
  checkParams(plan, params, stFile);

  const mts = [...new Set(config.modules_to_save ?? [])];
  const extras: TensorMap = new Map();
  for (const [key, t] of parsed.tensors) {
    if (planKeys.has(key)) continue;
    if (modulesToSaveName(key, mts) === undefined) {
      throw new AdapterFormatError(`tensor is neither part of the ${method.peftType} plan nor of modules_to_save`, {
        file: stFile,
        tensor: key,
        expected: mts.length ? `a plan tensor or base_model.model.<${mts.join('|')}>.…` : 'a plan tensor',
        found: t.shape,
      });
    }
    extras.set(key, { shape: t.shape, data: t.data });
  }
  const adapter: Adapter = { method, config, plan, params, extras, shape, dtype: storageDtype(paramDtypes) };
  if (input.source !== undefined) adapter.source = input.source;
  return adapter;
}

export interface AdapterStats {
  peft_type: string;
  modules: number;
  rank: number;
  trainable: number;
  frozen: number;
  stored: number;
  /** Size of adapter_model.safetensors as stored (in `dtype`). */
  bytes: number;
  modules_to_save: { name: string; params: number }[];
  base_model_name_or_path: string | null;
  dtype: StorageDtype;
}

export function adapterStats(a: Adapter): AdapterStats {
  const counts = countParams(a.plan);
  const bytes = layoutSafetensors(allTensors(a), { dtype: a.dtype, metadata: adapterMetadata(a) }).total;
  const names = [...new Set(a.config.modules_to_save ?? [])];
  const groups = new Map<string, number>();
  for (const [key, t] of a.extras) {
    const name = modulesToSaveName(key, names) ?? key;
    groups.set(name, (groups.get(name) ?? 0) + t.data.length);
  }
  const order = [...names.filter((n) => groups.has(n)), ...[...groups.keys()].filter((n) => !names.includes(n))];
  return {
    peft_type: a.config.peft_type,
    modules: a.plan.modules.length,
    rank: a.plan.rank,
    ...counts,
    bytes,
    modules_to_save: order.map((name) => ({ name, params: groups.get(name)! })),
    base_model_name_or_path: a.config.base_model_name_or_path ?? null,
    dtype: a.dtype,
  };
}

/** (A′, B′, s) for every module (default backend: the best registered one). */
export async function materializeAdapter(a: Adapter, backend?: Backend): Promise<ModuleUpdate[]> {
  return materialize(a.method, a.config, a.plan, a.params, backend ?? (await getBackend()));
}
