/**
 * Model-shape manifest stored in the safetensors `__metadata__` of the adapters we write, so that
 * a file can be planned again without the base model:
 *
 * - `tensorpeft.modules`: JSON `{ "<module path>": [n, m, fanInFanOut ? 1 : 0], … }`
 * - `tensorpeft.model`: JSON `{ model_type, hidden_size, num_layers, num_heads, num_kv_heads, intermediate_size }`
 *
 * plus `"format": "pt"` as PEFT writes. Self-describing files (plain LoRA) carry only `format`.
 */
import { AdapterFormatError } from '../errors.js';
import { PRESETS, presetShape } from '../model/presets.js';
import { moduleName, splitLayerPath, type LinearModule, type ModelShape } from '../model/shape.js';
import type { PlannedModule } from '../methods/types.js';
import { maxOf } from '../util/reduce.js';
import { scanJson } from './json-scan.js';
import { MAX_HEADER_TENSORS } from './safetensors.js';

export const MANIFEST_MODULES = 'tensorpeft.modules';
export const MANIFEST_MODEL = 'tensorpeft.model';

interface ModelJson {
  model_type: string;
  hidden_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  intermediate_size: number;
}

/** Metadata entries describing `modules` (and the model dimensions of `shape`). */
export function manifestMetadata(shape: ModelShape, modules: readonly { path: string; n: number; m: number; fanInFanOut: boolean }[]): Record<string, string> {
  const mods: Record<string, [number, number, number]> = {};
  for (const m of modules) mods[m.path] = [m.n, m.m, m.fanInFanOut ? 1 : 0];
  const model: ModelJson = {
    model_type: shape.modelType,
    hidden_size: shape.hiddenSize,
    num_layers: shape.numLayers,
    num_heads: shape.numHeads,
    num_kv_heads: shape.numKvHeads,
    intermediate_size: shape.intermediateSize,
  };
  return { format: 'pt', [MANIFEST_MODULES]: JSON.stringify(mods), [MANIFEST_MODEL]: JSON.stringify(model) };
}

function posInt(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

/** Rebuild a ModelShape from a manifest; undefined when the metadata has none. */
export function shapeFromManifest(metadata: Record<string, string>, file?: string, nameOrPath?: string | null): ModelShape | undefined {
  const rawMods = metadata[MANIFEST_MODULES];
  if (rawMods === undefined) return undefined;
  const bad = (field: string, expected: string, found: unknown): never => {
    throw new AdapterFormatError('invalid model-shape manifest in safetensors metadata', { file, field: `__metadata__.${field}`, expected, found });
  };
  // Structure first ({path: [n, m, f]} is 2 deep; at most one module per tensor a file may hold).
  const scan = scanJson(rawMods, { maxDepth: 2, maxTopLevelMembers: MAX_HEADER_TENSORS });
  if (!scan.ok) return bad(MANIFEST_MODULES, `{path: [n, m, fanInFanOut]} with ≤ ${MAX_HEADER_TENSORS} modules`, scan.limit === 'depth' ? `nesting depth ${scan.found}` : 'more modules');
  let mods: unknown;
  try {
    mods = JSON.parse(rawMods);
  } catch (e) {
    return bad(MANIFEST_MODULES, 'JSON object', (e as Error).message);
  }
  if (typeof mods !== 'object' || mods === null || Array.isArray(mods)) return bad(MANIFEST_MODULES, '{path: [n, m, fanInFanOut]}', rawMods.slice(0, 60));
  const modules: LinearModule[] = [];
  for (const [path, v] of Object.entries(mods as Record<string, unknown>)) {
    if (!Array.isArray(v) || v.length !== 3 || !posInt(v[0]) || !posInt(v[1]) || (v[2] !== 0 && v[2] !== 1)) {
      bad(`${MANIFEST_MODULES}.${path}`, '[n, m, 0|1]', v);
    }
    const [n, m, f] = v as [number, number, number];
    const { layer, type } = splitLayerPath(path);
    modules.push({ path, type, layer, in: n, out: m, fanInFanOut: f === 1 });
  }
  if (modules.length === 0) bad(MANIFEST_MODULES, 'at least one module', '{}');

  let model: Partial<ModelJson> = {};
  const rawModel = metadata[MANIFEST_MODEL];
  if (rawModel !== undefined) {
    if (!scanJson(rawModel, { maxDepth: 1 }).ok) bad(MANIFEST_MODEL, 'a flat JSON object', 'nested values');
    try {
      model = JSON.parse(rawModel) as Partial<ModelJson>;
    } catch (e) {
      bad(MANIFEST_MODEL, 'JSON object', (e as Error).message);
    }
    if (typeof model !== 'object' || model === null || Array.isArray(model)) bad(MANIFEST_MODEL, 'JSON object', rawModel.slice(0, 60));
    for (const k of ['hidden_size', 'num_layers', 'num_heads', 'num_kv_heads', 'intermediate_size'] as const) {
      if (model[k] !== undefined && !posInt(model[k])) bad(`${MANIFEST_MODEL}.${k}`, 'a positive integer', model[k]);
    }
    if (model.model_type !== undefined && typeof model.model_type !== 'string') bad(`${MANIFEST_MODEL}.model_type`, 'string', model.model_type);
  }
  const heads = model.num_heads ?? 1;
  const hidden = model.hidden_size ?? modules[0]!.in;
  const lastLayer = maxOf(modules.map((m) => m.layer));
  // The facts must be consistent with the modules: methods index per-layer and per-head factors
  // by them (a layer index past num_layers would read past C_L and give NaN).
  if (model.num_layers !== undefined && lastLayer >= model.num_layers) {
    const m = modules.find((x) => x.layer === lastLayer)!;
    bad(`${MANIFEST_MODEL}.num_layers`, `> ${lastLayer} (module ${m.path} is in layer ${m.layer})`, model.num_layers);
  }
  if (hidden % heads !== 0) bad(`${MANIFEST_MODEL}.num_heads`, `a divisor of hidden_size ${hidden}`, heads);
  const kv = model.num_kv_heads ?? heads;
  if (heads % kv !== 0) bad(`${MANIFEST_MODEL}.num_kv_heads`, `a divisor of num_heads ${heads}`, kv);
  return {
    modelType: model.model_type ?? 'unknown',
    ...(nameOrPath ? { nameOrPath } : {}),
    hiddenSize: hidden,
    numLayers: model.num_layers ?? lastLayer + 1,
    numHeads: heads,
    numKvHeads: kv,
    intermediateSize: model.intermediate_size ?? maxOf(modules.map((m) => Math.max(m.in, m.out))),
    modules,
    defaultTargets: [...new Set(modules.map((m) => moduleName(m.path)))],
  };
}

/** True when two module lists describe the same modules (path, n, m, layout), in any order. */
export function sameModules(a: readonly PlannedModule[], b: readonly PlannedModule[]): boolean {
  if (a.length !== b.length) return false;
  const byPath = new Map(a.map((m) => [m.path, m]));
  return b.every((m) => {
    const o = byPath.get(m.path);
    return o !== undefined && o.n === m.n && o.m === m.m && o.fanInFanOut === m.fanInFanOut;
  });
}

/**
 * The built-in preset whose Hub id is `id` (`openai-community/gpt2`), or whose id without the
 * organization is (`gpt2`, `distilbert-base-uncased`). Returns the preset name.
 */
export function presetForHubId(id: string | null | undefined): string | undefined {
  if (!id) return undefined;
  const want = id.replace(/\/+$/, '');
  for (const [name, p] of Object.entries(PRESETS)) if (p.hub === want) return name;
  for (const [name, p] of Object.entries(PRESETS)) if (p.hub.split('/').pop() === want) return name;
  return undefined;
}

/** ModelShape of the preset matching a Hub id (see presetForHubId). */
export function shapeFromHubId(id: string | null | undefined): ModelShape | undefined {
  const name = presetForHubId(id);
  return name === undefined ? undefined : presetShape(name);
}
