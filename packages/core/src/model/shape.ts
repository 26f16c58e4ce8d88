/**
 * Model shapes: the linear modules of a transformer that adapters can target, with their
 * dimensions, independent of any weights.
 */
import { RE2JS } from 're2js';
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
 * Longest `target_modules` regex accepted. Real patterns are a few dozen characters; the cap keeps
 * compilation (linear in the pattern, but not free) bounded for a hostile config.
 */
export const MAX_TARGET_PATTERN_LENGTH = 4096;

/**
 * A `target_modules` predicate, compiled once: a list matches a module whose path equals an entry
 * or ends with `.` + entry; a string is a regular expression that must match the whole path
 * (PEFT's `re.fullmatch`); `"all-linear"` selects every module.
 *
 * Regexes come from untrusted files, so they run on RE2 (re2js, linear time in pattern and path)
 * rather than the backtracking `RegExp`, where `(.*)*X` takes time exponential in the path length.
 * RE2 has no look-around or back-references; such a pattern, a syntax error, or one longer than
 * MAX_TARGET_PATTERN_LENGTH is a ConfigError naming `target_modules`.
 */
export function compileTarget(target: string | readonly string[]): (path: string) => boolean {
  if (typeof target !== 'string') {
    // Configs reach here from importers too, sometimes before their schema ran: check the type.
    if (!Array.isArray(target) || !target.every((t) => typeof t === 'string')) {
      throw new ConfigError('target_modules must be a list of module names or a string', {
        field: 'target_modules',
        expected: 'string[] | string',
        found: Array.isArray(target) ? 'a list with non-string entries' : typeof target,
      });
    }
    return (path) => target.some((t) => path === t || path.endsWith(`.${t}`));
  }
  if (target === 'all-linear') return () => true;
  const bad = (why: string): never => {
    throw new ConfigError(`target_modules is not a usable regular expression: ${why}`, {
      field: 'target_modules',
      expected: `a list of module names, "all-linear", or an RE2 regular expression of ≤ ${MAX_TARGET_PATTERN_LENGTH} characters`,
      found: target.length > 80 ? `${target.slice(0, 80)}… (${target.length} characters)` : target,
    });
  };
  if (target.length > MAX_TARGET_PATTERN_LENGTH) bad('too long');
  let re: RE2JS;
  try {
    re = RE2JS.compile(target);
  } catch (e) {
    // RE2JS syntax errors quote the offending fragment: keep the message short.
    const msg = e instanceof Error ? e.message : String(e);
    return bad(msg.length > 120 ? `${msg.slice(0, 120)}…` : msg);
  }
  return (path) => re.matches(path);
}

/** PEFT's `target_modules` matching for one path (see compileTarget). */
export function matchesTarget(path: string, target: string | readonly string[]): boolean {
  return compileTarget(target)(path);
}

/** Modules of `shape` selected by `target`, in model order. */
export function selectModules(shape: ModelShape, target: string | readonly string[]): LinearModule[] {
  const match = compileTarget(target);
  return shape.modules.filter((m) => match(m.path));
}
