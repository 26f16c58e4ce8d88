/** Pieces every method's config and plan share: PEFT's common config fields, targets, key names. */
import { z } from 'zod';
import { ConfigError, ShapeMismatchError } from '../errors.js';
import { selectModules, type LinearModule, type ModelShape } from '../model/shape.js';
import type { PlannedModule } from './types.js';

/**
 * Bounds of numbers in configs, which come from untrusted files: JSON's `1e400` parses as
 * Infinity, and a finite but absurd value is as harmful (NaN outputs, huge allocations at init).
 * Ranks and tensor-shape factors beyond these sizes describe no real adapter (the largest models
 * have dimensions of tens of thousands); scales beyond ±1e6 would make ΔW dwarf W by orders of
 * magnitude, and are refused rather than passed on as overflowing outputs.
 */
export const MAX_CONFIG_RANK = 65_536;
export const MAX_CONFIG_FACTOR = 1 << 20;
export const MAX_CONFIG_SCALE = 1e6;

/** A rank (r, tensor ranks): a positive integer ≤ MAX_CONFIG_RANK. */
export const rankSchema = z.number().int().positive().max(MAX_CONFIG_RANK);
/** A scaling numerator or multiplier: finite, |x| ≤ MAX_CONFIG_SCALE. */
export const scaleSchema = z.number().finite().min(-MAX_CONFIG_SCALE).max(MAX_CONFIG_SCALE);
/** A positive scaling numerator (lora_alpha): finite, 0 < x ≤ MAX_CONFIG_SCALE. */
export const alphaSchema = z.number().finite().positive().max(MAX_CONFIG_SCALE);

/** True for a non-empty list of positive integers, each ≤ `max`. */
export function isBoundedPositiveIntList(v: unknown, max: number): v is number[] {
  return Array.isArray(v) && v.length > 0 && v.every((x) => typeof x === 'number' && Number.isInteger(x) && x > 0 && x <= max);
}

/** `target_modules`: a list of module names/suffixes, a regex string, or `"all-linear"`. */
export const targetModulesSchema = z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]);

/**
 * Fields of PEFT's `PeftConfig` that every adapter_config.json may carry. They are accepted and
 * preserved as given (we do not interpret them beyond `modules_to_save`).
 */
export const peftCommonFields = {
  base_model_name_or_path: z.string().nullable().optional(),
  revision: z.string().nullable().optional(),
  task_type: z.string().nullable().optional(),
  inference_mode: z.boolean().optional(),
  auto_mapping: z.unknown().optional(),
  peft_version: z.string().optional(),
  modules_to_save: z.array(z.string()).nullable().optional(),
  layers_to_transform: z.union([z.number().int(), z.array(z.number().int())]).nullable().optional(),
  layers_pattern: z.union([z.string(), z.array(z.string())]).nullable().optional(),
  fan_in_fan_out: z.boolean().optional(),
  bias: z.string().optional(),
};

/** Map-or-list fields (`tensor_shape: [8,8,12]` or `{"768":[8,8,12]}`) resolved for a dimension. */
export const shapeForDimSchema = z.union([
  z.array(z.number().int().positive().max(MAX_CONFIG_FACTOR)).min(1),
  z.record(z.string().regex(/^\d+$/, 'keys must be dimensions like "768"'), z.array(z.number().int().positive().max(MAX_CONFIG_FACTOR)).min(1)),
]);
export type ShapeForDim = z.infer<typeof shapeForDimSchema>;

/** Resolve a list-or-map field for dimension `dim`; throws naming the field and module. */
export function resolveForDim(value: ShapeForDim, dim: number, field: string, module: string): number[] {
  if (Array.isArray(value)) return value;
  const v = value[String(dim)];
  if (!v) {
    throw new ConfigError(`no ${field} entry for dimension ${dim} of module ${module}`, {
      field: `${field}.${dim}`,
      expected: `a key "${dim}"`,
      found: Object.keys(value),
    });
  }
  return v;
}

/** The modules a config targets; throws ConfigError when nothing matches. */
export function targetedModules(target: string | string[], shape: ModelShape, layersToTransform?: number | number[] | null): LinearModule[] {
  let mods = selectModules(shape, target);
  if (layersToTransform !== undefined && layersToTransform !== null) {
    const keep = new Set(Array.isArray(layersToTransform) ? layersToTransform : [layersToTransform]);
    mods = mods.filter((m) => keep.has(m.layer));
  }
  // Methods index per-layer factors by `layer`: a module outside the model's layers (a hand-made
  // manifest or shape) must be refused here, not read past a tensor later.
  for (const m of mods) {
    if (!(Number.isSafeInteger(m.layer) && m.layer >= 0 && m.layer < shape.numLayers)) {
      throw new ShapeMismatchError(`module ${m.path} is in layer ${m.layer}, outside the model's ${shape.numLayers} layers`, {
        field: m.path,
        expected: `layer < ${shape.numLayers}`,
        found: m.layer,
      });
    }
  }
  if (mods.length === 0) {
    throw new ConfigError('target_modules matches no module of the model', {
      field: 'target_modules',
      expected: `names among ${[...new Set(shape.modules.map((m) => m.type.split('.').pop()))].join(', ')}`,
      found: target,
    });
  }
  return mods;
}

export function toPlanned(m: LinearModule): PlannedModule {
  return { path: m.path, type: m.type, layer: m.layer, n: m.in, m: m.out, fanInFanOut: m.fanInFanOut };
}

/** Key of a per-module tensor, PEFT style: `base_model.model.<path>.<suffix>`. */
export function moduleKey(path: string, suffix: string): string {
  return `base_model.model.${path}.${suffix}`;
}

/** Key of a tensor shared by the whole adapter or a matrix type: `base_model.<name>`. */
export function sharedKey(name: string): string {
  return `base_model.${name}`;
}

/** Distinct matrix types of the planned modules, in order of first appearance. */
export function typesInOrder(mods: readonly { type: string }[]): string[] {
  return [...new Set(mods.map((m) => m.type))];
}

export function product(xs: readonly number[]): number {
  return xs.reduce((a, b) => a * b, 1);
}

/** Get a tensor's data or throw (params are checked against the plan before jobs run). */
export function data(params: ReadonlyMap<string, { data: Float32Array }>, key: string): Float32Array {
  const t = params.get(key);
  if (!t) throw new ConfigError('missing tensor', { tensor: key });
  return t.data;
}
