/**
 * Model shapes: the linear modules of a transformer that adapters can target, with their
 * dimensions, independent of any weights.
 */
import { ConfigError } from '../errors.js';

/** One linear module of the base model, as PEFT sees it. */
export interface LinearModule {
  /** Module path as it appears in PEFT keys after `base_model.model.`, e.g. `bert.encoder.layer.0.attention.self.query`. */
  path: string;
  /** Matrix type: the module's path within its layer, e.g. `attention.self.query`, `attn.c_attn`. */
  type: string;
  /** Layer index (0-based). */
  layer: number;
  /** Input features n. */
  in: number;
  /** Output features m. */
  out: number;
  /** True for GPT-2 style `Conv1D` whose weight is stored `[in, out]`. */
  fanInFanOut: boolean;
}

export interface ModelShape {
  /** HF `model_type` (bert, roberta, distilbert, gpt2, llama, vit) or `unknown` when read off an adapter. */
  modelType: string;
  /** Name to record as `base_model_name_or_path`, when known. */
  nameOrPath?: string;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  intermediateSize: number;
  /** Every targetable linear module of the transformer layers, layer-major. */
  modules: LinearModule[];
  /** PEFT's default `target_modules` for this architecture. */
  defaultTargets: string[];
}

/** Last component of a dotted module path. */
export function moduleName(path: string): string {
  const i = path.lastIndexOf('.');
  return i < 0 ? path : path.slice(i + 1);
}

const LAYER_CONTAINERS = new Set(['layer', 'layers', 'h', 'block', 'blocks']);

/**
 * Split a module path into (layer, type) the way PEFT's `layers_pattern` does: the first integer
 * component that follows a layer container (`layer`, `layers`, `h`, `block(s)`) is the layer index,
 * and what follows it is the type. Paths outside a layer get layer 0 and their full path as type.
 */
export function splitLayerPath(path: string): { layer: number; type: string } {
  const parts = path.split('.');
  for (let i = 1; i < parts.length; i++) {
    const p = parts[i]!;
    if (/^\d+$/.test(p) && LAYER_CONTAINERS.has(parts[i - 1]!)) {
      return { layer: Number(p), type: parts.slice(i + 1).join('.') || moduleName(path) };
    }
  }
  return { layer: 0, type: path };
}

/**
 * PEFT's `target_modules` matching: a list matches a module whose path equals an entry or ends
 * with `.` + entry; a string is a regular expression that must match the whole path;
 * `"all-linear"` selects every module of the shape.
 */
export function matchesTarget(path: string, target: string | readonly string[]): boolean {
  if (typeof target === 'string') {
    if (target === 'all-linear') return true;
    let re: RegExp;
    try {
      re = new RegExp(`^(?:${target})$`);
    } catch {
      throw new ConfigError('target_modules is not a valid regular expression', {
        field: 'target_modules',
        expected: 'a list of module names, "all-linear", or a regular expression',
        found: target,
      });
    }
    return re.test(path);
  }
  return target.some((t) => path === t || path.endsWith(`.${t}`));
}

/** Modules of `shape` selected by `target`, in model order. */
export function selectModules(shape: ModelShape, target: string | readonly string[]): LinearModule[] {
  return shape.modules.filter((m) => matchesTarget(m.path, target));
}
