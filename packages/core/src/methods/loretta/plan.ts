/**
 * LoRETTA-rep tensor plan: per module two tensor trains with ranks [1, t, …, t, 1]:
 * A's over `tensor_shape_a` (product n·r, viewed row-major as [n, r] = A′) and B's over
 * `tensor_shape_b` (product r·m, viewed row-major as [r, m]; B′ is its transpose).
 */
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import type { ModelShape } from '../../model/shape.js';
import { moduleKey, product, targetedModules, toPlanned, type ShapeForDim } from '../common.js';
import type { ParamPlan, ParamSpec } from '../types.js';
import type { LorettaConfig } from './config.js';

export type Side = 'A' | 'B';

/** Key of core k (0-based) of factor `side`: `base_model.model.<path>.loretta_A.core<k>`. */
export function lorettaCoreKey(path: string, side: Side, k: number): string {
  return moduleKey(path, `loretta_${side}.core${k}`);
}

/** TT ranks [1, t, …, t, 1] for `order` cores. */
export function ttRanks(order: number, t: number): number[] {
  return Array.from({ length: order + 1 }, (_, i) => (i === 0 || i === order ? 1 : t));
}

/** Core shapes `[t_k, f_k, t_{k+1}]`. */
export function coreShapes(factors: readonly number[], t: number): number[][] {
  const ranks = ttRanks(factors.length, t);
  return factors.map((f, k) => [ranks[k]!, f, ranks[k + 1]!]);
}

/**
 * Std of core k: the official `TensorTrain` draws N(0, 1)/√t_{k+1} · (1/(in+out))^{1/(2·order)},
 * i.e. variance (1/t_{k+1})·(1/(in+out))^{1/order} as METHODS.md writes it. (in, out) is the
 * wrapped map's: (n, r) for A and (r, m) for B.
 */
export function lorettaStd(tRight: number, inF: number, outF: number, order: number): number {
  return Math.sqrt((1 / tRight) * Math.pow(1 / (inF + outF), 1 / order));
}

/** Resolve `tensor_shape_a` (by n, product n·r) or `tensor_shape_b` (by m, product r·m) for a module. */
export function lorettaFactors(c: LorettaConfig, side: Side, mod: { path: string; n: number; m: number }): number[] {
  const field = side === 'A' ? 'tensor_shape_a' : 'tensor_shape_b';
  const value: ShapeForDim = side === 'A' ? c.tensor_shape_a : c.tensor_shape_b;
  const dim = side === 'A' ? mod.n : mod.m;
  const want = dim * c.r;
  const what = side === 'A' ? `n·r = ${mod.n}·${c.r}` : `r·m = ${c.r}·${mod.m}`;
  let factors: number[] | undefined;
  if (Array.isArray(value)) factors = value;
  else {
    factors = value[String(dim)];
    if (!factors) {
      throw new ConfigError(`no ${field} entry for ${side === 'A' ? 'input' : 'output'} dimension ${dim} of module ${mod.path}`, {
        field: `${field}.${dim}`,
        expected: `a key "${dim}" with factors of ${what} = ${want}` + (Object.keys(value).length === 0 ? ` (no built-in default for r = ${c.r})` : ''),
        found: Object.keys(value),
      });
    }
  }
  if (product(factors) !== want) {
    throw new ShapeMismatchError(`${field} for module ${mod.path} does not multiply to ${what} = ${want}`, {
      field: Array.isArray(value) ? field : `${field}.${dim}`,
      expected: `factors with product ${want}`,
      found: `[${factors.join(', ')}] (product ${product(factors)})`,
    });
  }
  return factors;
}

export function planLoretta(c: LorettaConfig, shape: ModelShape): ParamPlan {
  const mods = targetedModules(c.target_modules, shape, c.layers_to_transform).map(toPlanned);
  const params: ParamSpec[] = [];
  for (const mod of mods) {
    for (const side of ['A', 'B'] as const) {
      const factors = lorettaFactors(c, side, mod);
      const [inF, outF] = side === 'A' ? [mod.n, c.r] : [c.r, mod.m];
      const shapes = coreShapes(factors, c.tensor_rank);
      shapes.forEach((shp, k) => {
        const std = lorettaStd(shp[2]!, inF, outF, factors.length);
        const spec: ParamSpec = { key: lorettaCoreKey(mod.path, side, k), shape: shp, kind: 'trainable', module: mod.path, init: { dist: 'normal', std } };
        if (side === 'B' && k === shapes.length - 1 && c.zero_init_b) {
          spec.init = { dist: 'zeros' };
          spec.zeroInit = true;
          spec.nonzeroStd = std;
        }
        params.push(spec);
      });
    }
  }
  return { peftType: 'LORETTA', rank: c.r, modules: mods, params, numHeads: shape.numHeads, numLayers: shape.numLayers };
}
