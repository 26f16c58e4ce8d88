/**
 * `target_modules`: which linears get an adapter branch at load time. By default every linear of the
 * model's shape gets one, so any adapter can be hot-swapped in; a branch costs its nodes on every run
 * even at rank 0 (about 3 small nodes per module, dominated by per-node cost in decode: README,
 * "Branch overhead per token"), so an app whose adapters all target q/v can say so and pay for those.
 *
 * Matching is PEFT's list form of `target_modules` (a module is targeted when its path equals a
 * name or ends with `.` + name: `q_proj` targets `model.layers.3.self_attn.q_proj`). PEFT's other
 * form, one string taken as a regular expression, is not accepted: a pattern from an app's config
 * could backtrack without bound.
 */
import { PluginError } from './errors.js';

/** Checks a `target_modules` value: a non-empty array of non-empty strings. */
export function checkTargetModules(names: unknown): readonly string[] {
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new PluginError(`target_modules must be a non-empty list of module names (PEFT's list form, e.g. ["q_proj", "v_proj"]), got ${JSON.stringify(names)}`);
  }
  return names as readonly string[];
}

/** Whether module `path` is targeted by `names` (PEFT: equal, or ends with `.name`). */
export function isTargeted(path: string, names: readonly string[]): boolean {
  return names.some((n) => path === n || path.endsWith(`.${n}`));
}

/**
 * The module paths of `paths` that `names` target; a PluginError when they target none of them
 * (`source`: the config the paths come from, for the message).
 */
export function selectTargets(paths: readonly string[], names: readonly string[], source: string): string[] {
  const picked = paths.filter((p) => isTargeted(p, names));
  if (picked.length === 0) {
    const leaves = [...new Set(paths.map((p) => p.slice(p.lastIndexOf('.') + 1)))];
    throw new PluginError(`target_modules ${JSON.stringify(names)} match no linear of the model (${source}); its linears end in: ${leaves.join(', ')}`);
  }
  return picked;
}
