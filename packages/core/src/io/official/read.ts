/** Helpers importers share: reading the official config and state dict, and a shape from the modules found. */
import { AdapterFormatError, ConfigError, ShapeMismatchError } from '../../errors.js';
import { splitLayerPath, moduleName, type LinearModule, type ModelShape } from '../../model/shape.js';
import type { Tensor, TensorMap } from '../../tensor.js';
import { parseJsonFile } from '../json.js';
import { parseSafetensors } from '../safetensors.js';
import { readTorchStateDict } from '../torch/checkpoint.js';
import type { OfficialFiles } from './types.js';

export const OFFICIAL_CONFIG = 'adapter_config.json';
export const OFFICIAL_BIN = 'adapter_model.bin';
export const OFFICIAL_SAFETENSORS = 'adapter_model.safetensors';

export function location(f: OfficialFiles, name: string): string {
  if (!f.source) return name;
  return f.source.endsWith(name) ? f.source : `${f.source.replace(/\/+$/, '')}/${name}`;
}

/** The official adapter_config.json as an object, or undefined when there is none. */
export function officialConfig(f: OfficialFiles): Record<string, unknown> | undefined {
  const b = f.files.get(OFFICIAL_CONFIG);
  if (!b) return undefined;
  const v = parseJsonFile(b, location(f, OFFICIAL_CONFIG));
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new ConfigError('adapter config must be a JSON object', { file: location(f, OFFICIAL_CONFIG), found: typeof v });
  return v as Record<string, unknown>;
}

/** PEFT-style weights: `adapter_model.safetensors` if present, else the torch `adapter_model.bin`. */
export function officialStateDict(f: OfficialFiles, allowNonFinite = false): { tensors: TensorMap; file: string } {
  const st = f.files.get(OFFICIAL_SAFETENSORS);
  if (st) {
    const file = location(f, OFFICIAL_SAFETENSORS);
    const parsed = parseSafetensors(st, file, { allowNonFinite });
    const tensors: TensorMap = new Map();
    for (const [k, t] of parsed.tensors) tensors.set(k, { shape: t.shape, data: t.data });
    return { tensors, file };
  }
  const bin = f.files.get(OFFICIAL_BIN);
  if (bin) {
    const file = location(f, OFFICIAL_BIN);
    return { tensors: readTorchStateDict(bin, { file, allowNonFinite }), file };
  }
  throw new AdapterFormatError('no adapter weights in the official folder', { file: f.source, expected: `${OFFICIAL_SAFETENSORS} or ${OFFICIAL_BIN}`, found: [...f.files.keys()] });
}

/** Get a tensor with an expected rank (number of dims), or throw naming the key. */
export function need(sd: TensorMap, key: string, dims: number, file: string): Tensor {
  const t = sd.get(key);
  if (!t) throw new ShapeMismatchError('official checkpoint is missing a tensor', { file, tensor: key, expected: `${dims}-D tensor`, found: 'nothing' });
  if (t.shape.length !== dims) throw new ShapeMismatchError('official tensor has an unexpected number of dimensions', { file, tensor: key, expected: `${dims}-D`, found: t.shape });
  return t;
}

/** A model shape holding just the modules an official file adapts (layer-major order). */
/** Largest module dimension an official file may imply (real models stay far below; a file cannot make us allocate more). */
export const MAX_OFFICIAL_DIM = 1 << 20;

export function shapeFromModules(mods: { path: string; n: number; m: number }[], facts: { numHeads?: number; numLayers?: number; nameOrPath?: string } = {}): ModelShape {
  for (const x of mods) {
    if (!(Number.isSafeInteger(x.n) && Number.isSafeInteger(x.m) && x.n >= 1 && x.m >= 1 && x.n <= MAX_OFFICIAL_DIM && x.m <= MAX_OFFICIAL_DIM)) {
      throw new ShapeMismatchError('official tensors imply a module dimension out of range', { field: x.path, expected: `1 … ${MAX_OFFICIAL_DIM}`, found: [x.n, x.m] });
    }
  }
  const modules: LinearModule[] = mods.map((x) => {
    const { layer, type } = splitLayerPath(x.path);
    return { path: x.path, type, layer, in: x.n, out: x.m, fanInFanOut: false };
  });
  modules.sort((a, b) => a.layer - b.layer);
  const layers = modules.length ? Math.max(...modules.map((m) => m.layer)) + 1 : 0;
  return {
    modelType: 'unknown',
    ...(facts.nameOrPath ? { nameOrPath: facts.nameOrPath } : {}),
    hiddenSize: modules[0]?.in ?? 0,
    numLayers: facts.numLayers ?? layers,
    numHeads: facts.numHeads ?? 1,
    numKvHeads: facts.numHeads ?? 1,
    intermediateSize: Math.max(0, ...modules.map((m) => Math.max(m.in, m.out))),
    modules,
    defaultTargets: [...new Set(modules.map((m) => moduleName(m.path)))],
  };
}

/**
 * Check that a given model shape has each module with the dims the file implies; returns the
 * shape (so the adapter is planned on the real model).
 */
export function checkShapeHas(shape: ModelShape, mods: { path: string; n: number; m: number }[], file: string): ModelShape {
  const byPath = new Map(shape.modules.map((m) => [m.path, m]));
  for (const x of mods) {
    const m = byPath.get(x.path);
    if (!m) throw new ShapeMismatchError('the official file adapts a module the model does not have', { file, field: x.path, expected: 'a module of --model', found: 'nothing' });
    if (m.in !== x.n || m.out !== x.m) throw new ShapeMismatchError('module dimensions differ from the model', { file, field: x.path, expected: [m.in, m.out], found: [x.n, x.m] });
  }
  return shape;
}

/** A `modules_to_save` name for a leftover key: the path component(s) up to and including `name`. */
export function modulesToSaveOf(key: string, names: readonly string[]): string | undefined {
  const rest = key.replace(/^base_model\.model\./, '');
  const parts = rest.split('.');
  for (const n of names) {
    const i = parts.indexOf(n);
    if (i >= 0) return parts.slice(0, i + 1).join('.');
  }
  return undefined;
}
