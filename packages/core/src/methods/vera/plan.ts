/** VeRA tensor plan: shared frozen projections sized by the largest targeted module, plus per-module scaling vectors. */
import type { ModelShape } from '../../model/shape.js';
import { maxOf } from '../../util/reduce.js';
import { moduleKey, sharedKey, targetedModules, toPlanned } from '../common.js';
import type { ParamPlan, ParamSpec } from '../types.js';
import type { VeraConfig } from './config.js';

export const VERA_A_KEY = sharedKey('vera_A');
export const VERA_B_KEY = sharedKey('vera_B');

export const lambdaBKey = (path: string): string => moduleKey(path, 'vera_lambda_b');
export const lambdaDKey = (path: string): string => moduleKey(path, 'vera_lambda_d');

/**
 * PEFT's `_kaiming_init`: kaiming-uniform with gain √2 on the tensor's fan_in (its second
 * dimension for a 2-D tensor), so the bound is √(6 / fan_in): `n_max` for `vera_A [r, n_max]`,
 * `r` for `vera_B [m_max, r]`.
 */
export function kaimingBound(fanIn: number): number {
  return Math.sqrt(6 / fanIn);
}

export function planVera(c: VeraConfig, shape: ModelShape): ParamPlan {
  const mods = targetedModules(c.target_modules, shape, c.layers_to_transform);
  const nMax = maxOf(mods.map((m) => m.in));
  const mMax = maxOf(mods.map((m) => m.out));
  const params: ParamSpec[] = [
    { key: VERA_A_KEY, shape: [c.r, nMax], kind: 'frozen', shared: 'adapter', init: { dist: 'uniform', bound: kaimingBound(nMax) } },
    { key: VERA_B_KEY, shape: [mMax, c.r], kind: 'frozen', shared: 'adapter', init: { dist: 'uniform', bound: kaimingBound(c.r) } },
  ];
  for (const m of mods) {
    params.push({
      key: lambdaBKey(m.path),
      shape: [m.out],
      kind: 'trainable',
      module: m.path,
      init: { dist: 'zeros' },
      zeroInit: true,
    });
    params.push({
      key: lambdaDKey(m.path),
      shape: [c.r],
      kind: 'trainable',
      module: m.path,
      init: { dist: 'const', value: c.d_initial },
    });
  }
  return { peftType: 'VERA', rank: c.r, modules: mods.map(toPlanned), params, numHeads: shape.numHeads, numLayers: shape.numLayers };
}
