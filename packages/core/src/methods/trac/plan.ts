/**
 * TRAC tensor plan. Per module and per LoRA factor (A over n, B over m) a 3-core tensor train:
 *
 *   A: G1 [1, n1, r1] · G2 [r1, n2, r2] · G̃3 [r2, n3, r]   (G̃3 gated by controllers b ∈ R^{r2}, d ∈ R^{n3})
 *   B: O1 [1, m1, s1] · O2 [s1, m2, s2] · Õ3 [s2, m3, r]   (Õ3 gated by b′ ∈ R^{s2}, d′ ∈ R^{m3})
 *
 * Sharing is keyed by the module's matrix type (its path within the layer, `attention.self.query`).
 * Which cores are per module / shared / trainable / frozen depends on the variant (README.md).
 */
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import type { ModelShape } from '../../model/shape.js';
import { moduleKey, product, resolveForDim, sharedKey, targetedModules, toPlanned } from '../common.js';
import type { InitSpec, ParamKind, ParamPlan, ParamSpec, PlannedModule } from '../types.js';
import type { TracConfig } from './config.js';

export type Side = 'A' | 'B';
export type CoreIndex = 1 | 2 | 3;

/** Tensor names: `trac_A_G{k}` for A's cores, `trac_B_O{k}` for B's, `trac_{A,B}_{b,d}` for controllers. */
export function coreName(side: Side, k: CoreIndex): string {
  return side === 'A' ? `trac_A_G${k}` : `trac_B_O${k}`;
}

/** Whether core k of a module lives under the module (true) or once per matrix type (false). */
export function corePerModule(c: TracConfig, k: CoreIndex): boolean {
  return c.variant === 'all_trainable' || k === 1;
}

/** safetensors key of core k (1-based) of factor `side` for module `mod`. */
export function coreKey(c: TracConfig, mod: { path: string; type: string }, side: Side, k: CoreIndex): string {
  const name = coreName(side, k);
  return corePerModule(c, k) ? moduleKey(mod.path, name) : sharedKey(`${name}.${mod.type}`);
}

export function hasControllers(c: TracConfig): boolean {
  return c.variant === 'trac' || c.variant === 'frozen';
}

/** Controller keys: `rank` (b, length r2 / s2) and `mode` (d, length n3 / m3). */
export function controllerKey(path: string, side: Side, which: 'rank' | 'mode'): string {
  return moduleKey(path, `trac_${side}_${which === 'rank' ? 'b' : 'd'}`);
}

/** Kind of core k under the variant. */
export function coreKind(c: TracConfig, k: CoreIndex): ParamKind {
  switch (c.variant) {
    case 'all_trainable':
      return 'trainable';
    case 'frozen':
      return k === 1 ? 'trainable' : 'frozen';
    default:
      return k === 2 ? 'frozen' : 'trainable';
  }
}

/**
 * The core of B that starts at zero so that ΔW = 0: O3, except in the `frozen` variant where O3 is
 * frozen (a frozen zero core would pin B to 0 for ever), so the trainable per-module O1 is zeroed.
 */
export function zeroCore(c: TracConfig): CoreIndex {
  return c.variant === 'frozen' ? 1 : 3;
}

/** Factor geometry of one side: mode sizes [d1, d2, d3] and TT ranks [1, r1, r2, r]. */
export interface SideGeometry {
  dim: number;
  sizes: [number, number, number];
  ranks: [number, number, number, number];
}

/** The three core shapes `[rLeft, size, rRight]` of a side. */
export function coreShapes(g: SideGeometry): [number[], number[], number[]] {
  const [d1, d2, d3] = g.sizes;
  const [q0, q1, q2, q3] = g.ranks;
  return [
    [q0, d1, q1],
    [q1, d2, q2],
    [q2, d3, q3],
  ];
}

/** Resolve and validate `tensor_shape` and the TT ranks of one side for a module. */
export function sideGeometry(c: TracConfig, side: Side, dim: number, module: string): SideGeometry {
  const sizes = resolveForDim(c.tensor_shape, dim, 'tensor_shape', module);
  const what = side === 'A' ? `input dimension n = ${dim}` : `output dimension m = ${dim}`;
  if (sizes.length !== 3) {
    throw new ConfigError(`tensor_shape for ${what} of module ${module} must have exactly 3 factors`, {
      field: 'tensor_shape',
      expected: '[n1, n2, n3]',
      found: sizes,
    });
  }
  if (product(sizes) !== dim) {
    throw new ShapeMismatchError(`tensor_shape for ${what} of module ${module} does not multiply to ${dim}`, {
      field: Array.isArray(c.tensor_shape) ? 'tensor_shape' : `tensor_shape.${dim}`,
      expected: `factors with product ${dim}`,
      found: `[${sizes.join(', ')}] (product ${product(sizes)})`,
    });
  }
  const rankField = side === 'A' ? 'tensor_rank_a' : 'tensor_rank_b';
  const ranks = resolveForDim(side === 'A' ? c.tensor_rank_a : c.tensor_rank_b, dim, rankField, module);
  if (ranks.length !== 3 || ranks[0] !== 1) {
    throw new ConfigError(`${rankField} for module ${module} must be [1, r1, r2]`, { field: rankField, expected: '[1, r1, r2]', found: ranks });
  }
  return { dim, sizes: [sizes[0]!, sizes[1]!, sizes[2]!], ranks: [1, ranks[1]!, ranks[2]!, c.r] };
}

/**
 * Init of a core with shape [rLeft, size, rRight] (`order` = N in the TT formula).
 * - `tt_normal`: N(0, σ²), σ = (1/√rRight)·(1/(n+m))^{1/(2N)} (the official `TTNorm`);
 * - `tt_uniform`: U(−σ, σ) with the same σ (the official `TTUnif`);
 * - `kaiming_normal` / `kaiming_uniform`: N(0, 2/fan_in) / U(±√(2/fan_in)) with fan_in = n for A's
 *   cores and r for B's (the official `KaimingNorm` / `KaimingUnif`, whose uniform bound is √(2/fan_in)).
 */
export function coreInit(c: TracConfig, side: Side, rRight: number, n: number, m: number, order: number): InitSpec {
  switch (c.init) {
    case 'tt_normal':
      return { dist: 'normal', std: ttStd(rRight, n, m, order) };
    case 'tt_uniform':
      return { dist: 'uniform', bound: ttStd(rRight, n, m, order) };
    case 'kaiming_normal':
      return { dist: 'normal', std: Math.sqrt(2 / (side === 'A' ? n : c.r)) };
    case 'kaiming_uniform':
      return { dist: 'uniform', bound: Math.sqrt(2 / (side === 'A' ? n : c.r)) };
  }
}

/** σ_k = (1/√r_k)·(1/(n+m))^{1/(2N)}. */
export function ttStd(rRight: number, n: number, m: number, order: number): number {
  return (1 / Math.sqrt(rRight)) * Math.pow(1 / (n + m), 1 / (2 * order));
}

/** Controller init: ones for `linear` and `softmax` (σ(1) = 1 either way), zeros for `exp`. */
export function controllerInit(c: TracConfig): InitSpec {
  return c.controller_activation === 'exp' ? { dist: 'zeros' } : { dist: 'ones' };
}

export function planTrac(c: TracConfig, shape: ModelShape): ParamPlan {
  const mods = targetedModules(c.target_modules, shape, c.layers_to_transform).map(toPlanned);
  const params: ParamSpec[] = [];
  const typeDims = new Map<string, PlannedModule>();
  const controllers = hasControllers(c);

  const pushCore = (mod: PlannedModule, side: Side, k: CoreIndex, g: SideGeometry, perModule: boolean) => {
    const shp = coreShapes(g)[k - 1]!;
    const order = perModule ? 3 : c.init_order_shared;
    const init = coreInit(c, side, shp[2]!, mod.n, mod.m, order);
    const spec: ParamSpec = {
      key: coreKey(c, mod, side, k),
      shape: shp,
      kind: coreKind(c, k),
      ...(perModule ? { module: mod.path } : { shared: mod.type }),
      init,
    };
    if (side === 'B' && k === zeroCore(c)) {
      spec.init = { dist: 'zeros' };
      spec.zeroInit = true;
      // `init --nonzero` fills it as the other cores would be filled (TT-normal σ), not a fixed 0.02.
      spec.nonzeroStd = ttStd(shp[2]!, mod.n, mod.m, order);
    }
    params.push(spec);
  };

  for (const mod of mods) {
    const gA = sideGeometry(c, 'A', mod.n, mod.path);
    const gB = sideGeometry(c, 'B', mod.m, mod.path);
    const first = typeDims.get(mod.type);
    if (!first) {
      typeDims.set(mod.type, mod);
      if (c.variant !== 'all_trainable') {
        for (const k of [2, 3] as const) pushCore(mod, 'A', k, gA, false);
        for (const k of [2, 3] as const) pushCore(mod, 'B', k, gB, false);
      }
    } else if (first.n !== mod.n || first.m !== mod.m) {
      throw new ShapeMismatchError(`modules of matrix type ${mod.type} differ in shape, so they cannot share TRAC cores`, {
        field: mod.path,
        expected: `${first.n} → ${first.m} (as ${first.path})`,
        found: `${mod.n} → ${mod.m}`,
      });
    }
    const ks: CoreIndex[] = c.variant === 'all_trainable' ? [1, 2, 3] : [1];
    for (const k of ks) pushCore(mod, 'A', k, gA, true);
    for (const k of ks) pushCore(mod, 'B', k, gB, true);
    if (controllers) {
      for (const [side, g] of [
        ['A', gA],
        ['B', gB],
      ] as const) {
        params.push({ key: controllerKey(mod.path, side, 'rank'), shape: [g.ranks[2]], kind: 'trainable', module: mod.path, init: controllerInit(c) });
        params.push({ key: controllerKey(mod.path, side, 'mode'), shape: [g.sizes[2]], kind: 'trainable', module: mod.path, init: controllerInit(c) });
      }
    }
  }
  return { peftType: 'TRAC', rank: c.r, modules: mods, params, numHeads: shape.numHeads, numLayers: shape.numLayers };
}
