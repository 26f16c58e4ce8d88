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
  // A group's output size is its widest member's: on grouped-query attention, k/v (Hkv·d/H rows)
  // join q (d rows) as a row selection of the tensor (see gqaRows), so the widest must come first.
  const members = new Map<string, PlannedModule[]>();
  for (const mod of mods) {
    const id = groupKeying(c, mod).id;
    members.set(id, [...(members.get(id) ?? []), mod]);
  }
  const widest = new Map<string, PlannedModule>();
  for (const [id, ms] of members) {
    const w = ms.reduce((a, b) => (b.m > a.m ? b : a));
    // Only when the narrower members line up with it as GQA k/v; otherwise the first member leads.
    const lines = ms.every((x) => x.n === w.n && (x.m === w.m || gqaRows(w.n, w.m, numHeads, x.m) !== undefined));
    widest.set(id, lines ? w : ms[0]!);
  }
  for (const mod0 of mods) {
    const k = groupKeying(c, mod0);
    const mod = byId.has(k.id) ? mod0 : widest.get(k.id)!;
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
    }
    if (mod0.n !== g.n || (mod0.m !== g.m && gqaRows(g.n, g.m, numHeads, mod0.m) === undefined)) {
      throw new ShapeMismatchError(
        `TensLoRA construction ${c.construction} aggregates modules into one tensor, so they must share (in, out) features (or be GQA k/v of Hkv heads); module ${mod0.path} differs from ${widest.get(k.id)!.path}`,
        { field: mod0.path, expected: `(in, out) = (${g.n}, ${g.m})`, found: `(in, out) = (${mod0.n}, ${mod0.m})` },
      );
    }
    g.modules.push(mod0);
    groupOf.set(mod0.path, g);
  }
  return { types, groups: [...byId.values()], groupOf };
}

/**
 * Grouped-query attention (documented extension): a k/v module with m = Hkv·(M/H) rows in a tensor
 * whose output has M = H·(M/H) rows keeps, of each group of H/Hkv query heads, the first one:
 * kv row g·(M/H) + j ↔ tensor output row (g·H/Hkv)·(M/H) + j. Returns the kept head indices, or
 * undefined when the sizes do not line up that way.
 */
export function gqaRows(groupN: number, groupM: number, numHeads: number, m: number): number[] | undefined {
  // Only a square (q-like, d → d) tensor output can host k/v rows.
  if (m === groupM || groupN !== groupM) return undefined;
  if (groupM % numHeads !== 0) return undefined;
  const p = groupM / numHeads;
  if (m % p !== 0) return undefined;
  const kv = m / p;
  if (kv < 1 || numHeads % kv !== 0) return undefined;
  return Array.from({ length: kv }, (_, g) => g * (numHeads / kv));
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
      if (m.out !== d && gqaRows(d, d, shape.numHeads, m.out) === undefined) {
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
