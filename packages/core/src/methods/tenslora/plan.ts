/**
 * TensLoRA tensor plan: which aggregated tensors exist, their modes, dimensions and Tucker ranks.
 * The same layout function serves `plan` and `jobs`, so they cannot disagree.
 */
import { maxOf } from '../../util/reduce.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import type { ModelShape } from '../../model/shape.js';
import { moduleKey, product, sharedKey, targetedModules, toPlanned, typesInOrder } from '../common.js';
import type { ParamPlan, ParamSpec, PlannedModule } from '../types.js';
import { flagsOf, modesOf, type ModeName, type TensloraConfig } from './config.js';

/** One Tucker-factorized tensor and the modules it serves. */
export interface TensorGroup {
  /** `adapter`, `layer_<l>`, the matrix type, or the module path (construction `att`). */
  id: string;
  /** safetensors key of a member: `core` or `U_<mode>`. */
  key: (name: string) => string;
  /** Set for per-module tensors (construction `att`). */
  module?: string;
  /** Set for shared tensors. */
  shared?: string;
  modules: PlannedModule[];
  /** Input / output features common to every member module. */
  n: number;
  m: number;
  modes: ModeName[];
  dims: number[];
  ranks: number[];
}

export interface TensloraLayout {
  types: string[];
  groups: TensorGroup[];
  /** Group of each module path. */
  groupOf: Map<string, TensorGroup>;
}

export const coreName = 'core';
export const factorName = (mode: ModeName): string => `U_${mode}`;

function groupKeying(
  c: TensloraConfig,
  mod: PlannedModule,
): { id: string; key: (name: string) => string; module?: string; shared?: string } {
  const f = flagsOf(c.construction);
  if (!f.qkv && !f.depth) {
    return { id: mod.path, key: (name) => moduleKey(mod.path, `tenslora_${name}`), module: mod.path };
  }
  if (f.qkv && !f.depth) {
    const id = `layer_${mod.layer}`;
    return { id, key: (name) => sharedKey(`tenslora.${id}.${name}`), shared: id };
  }
  if (!f.qkv && f.depth) {
    return { id: mod.type, key: (name) => sharedKey(`tenslora.${mod.type}.${name}`), shared: mod.type };
  }
  return { id: 'adapter', key: (name) => sharedKey(`tenslora.${name}`), shared: 'adapter' };
}

/**
 * Group the planned modules into tensors and resolve dimensions and ranks. Throws
 * ShapeMismatchError naming the module when aggregated modules differ in (in, out), and
 * ConfigError naming the mode when a rank exceeds its mode's size.
 */
export function tensloraLayout(c: TensloraConfig, mods: readonly PlannedModule[], numHeads: number, numLayers: number): TensloraLayout {
  const types = typesInOrder(mods);
  const modes = modesOf(c.construction);
  const byId = new Map<string, TensorGroup>();
  const groupOf = new Map<string, TensorGroup>();
  for (const mod of mods) {
    const k = groupKeying(c, mod);
    let g = byId.get(k.id);
    if (!g) {
      const dims = modes.map((mode) => {
        switch (mode) {
          case 'in':
            return mod.n;
          case 'out':
            return mod.m;
          case 'out_head':
            return mod.m / numHeads;
          case 'heads':
            return numHeads;
          case 'qkv':
            return types.length;
          case 'depth':
            return numLayers;
        }
      });
      const ranks = modes.map((mode, i) => {
        const dim = dims[i]!;
        if (typeof c.ranks === 'number') return c.ranks_above_size ? c.ranks : Math.min(c.ranks, dim);
        const r = c.ranks[i]!;
        if (r > dim && !c.ranks_above_size) {
          throw new ConfigError(`TensLoRA rank of mode ${mode} exceeds the mode's size (factors have orthonormal columns)`, {
            field: `ranks.${i}`,
            expected: `≤ ${dim} (size of mode ${mode} of tensor ${k.id})`,
            found: r,
          });
        }
        return r;
      });
      g = { ...k, modules: [], n: mod.n, m: mod.m, modes, dims, ranks };
      byId.set(k.id, g);
    } else if (mod.n !== g.n || mod.m !== g.m) {
      throw new ShapeMismatchError(
        `TensLoRA construction ${c.construction} aggregates modules into one tensor, so they must share (in, out) features; module ${mod.path} differs from ${g.modules[0]!.path}`,
        { field: mod.path, expected: `(in, out) = (${g.n}, ${g.m})`, found: `(in, out) = (${mod.n}, ${mod.m})` },
      );
    }
    g.modules.push(mod);
    groupOf.set(mod.path, g);
  }
  return { types, groups: [...byId.values()], groupOf };
}

/** Parameter count of one Tucker tensor: ∏ R_i + Σ dim_i · R_i. */
export function tuckerCount(dims: readonly number[], ranks: readonly number[]): number {
  return product(ranks) + dims.reduce((acc, d, i) => acc + d * ranks[i]!, 0);
}

export function planTenslora(c: TensloraConfig, shape: ModelShape): ParamPlan {
  const lin = targetedModules(c.target_modules, shape, c.layers_to_transform);
  const f = flagsOf(c.construction);
  if (f.att) {
    const d = shape.hiddenSize;
    for (const m of lin) {
      if (m.out !== d) {
        throw new ShapeMismatchError(
          `TensLoRA construction ${c.construction} splits the output into ${shape.numHeads} heads of d/H = ${d / shape.numHeads} rows, so targets need out = d; module ${m.path} does not`,
          { field: m.path, expected: `(in, out) = (${m.in}, ${d})`, found: `(in, out) = (${m.in}, ${m.out})` },
        );
      }
    }
  }
  const mods = lin.map(toPlanned);
  const layout = tensloraLayout(c, mods, shape.numHeads, shape.numLayers);
  const params: ParamSpec[] = [];
  for (const g of layout.groups) {
    const where = g.module !== undefined ? { module: g.module } : { shared: g.shared! };
    params.push({ key: g.key(coreName), shape: [...g.ranks], kind: 'trainable', ...where, init: { dist: 'zeros' }, zeroInit: true });
    g.modes.forEach((mode, i) => {
      params.push({ key: g.key(factorName(mode)), shape: [g.dims[i]!, g.ranks[i]!], kind: 'trainable', ...where, init: { dist: 'orthonormal' } });
    });
  }
  const rank = maxOf(layout.groups.map((g) => g.ranks[0]!));
  return { peftType: 'TENSLORA', rank, modules: mods, params, numHeads: shape.numHeads, numLayers: shape.numLayers };
}
