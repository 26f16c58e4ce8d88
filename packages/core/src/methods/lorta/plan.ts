/**
 * LoRTA tensor plan: one 5-mode CP decomposition for the whole model, factors
 * `A [d, r]` (input), `B [d/H, r]` (output within a head), `C_H [H, r]`, `C_L [L, r]`, `C_M [M, r]`.
 */
import { ShapeMismatchError } from '../../errors.js';
import type { ModelShape } from '../../model/shape.js';
import { sharedKey, targetedModules, toPlanned, typesInOrder } from '../common.js';
import type { ParamPlan, ParamSpec } from '../types.js';
import type { LortaConfig } from './config.js';

export const LORTA_KEYS = {
  A: sharedKey('lorta_A'),
  B: sharedKey('lorta_B'),
  C_H: sharedKey('lorta_C_H'),
  C_L: sharedKey('lorta_C_L'),
  C_M: sharedKey('lorta_C_M'),
} as const;

/** Bound of kaiming-uniform with negative slope `a` on fan_in `fan`: √(6 / ((1 + a²)·fan)). */
export function kaimingUniformBound(a: number, fan: number): number {
  return Math.sqrt(6 / ((1 + a * a) * fan));
}

export function planLorta(c: LortaConfig, shape: ModelShape): ParamPlan {
  const mods = targetedModules(c.target_modules, shape, c.layers_to_transform);
  const d = shape.hiddenSize;
  const H = shape.numHeads;
  const L = shape.numLayers;
  for (const m of mods) {
    if (m.in !== d || m.out !== d) {
      throw new ShapeMismatchError(`LoRTA needs square hidden-size modules (in, out) = (d, d); module ${m.path} is not`, {
        field: m.path,
        expected: [d, d],
        found: [m.in, m.out],
      });
    }
  }
  const M = typesInOrder(mods).length;
  const r = c.r;
  // The reference initializes A [d, r] with kaiming-uniform a = √5 (fan_in = r): U(±1/√r), and
  // each C [·, r] with a = √5·init_scale (fan_in = r). B starts at zero so that ΔW = 0.
  const cBound = kaimingUniformBound(Math.sqrt(5) * c.init_scale, r);
  const params: ParamSpec[] = [
    { key: LORTA_KEYS.A, shape: [d, r], kind: 'trainable', shared: 'adapter', init: { dist: 'uniform', bound: 1 / Math.sqrt(r) } },
    { key: LORTA_KEYS.B, shape: [d / H, r], kind: 'trainable', shared: 'adapter', init: { dist: 'zeros' }, zeroInit: true },
    { key: LORTA_KEYS.C_H, shape: [H, r], kind: 'trainable', shared: 'adapter', init: { dist: 'uniform', bound: cBound } },
    { key: LORTA_KEYS.C_L, shape: [L, r], kind: 'trainable', shared: 'adapter', init: { dist: 'uniform', bound: cBound } },
    { key: LORTA_KEYS.C_M, shape: [M, r], kind: 'trainable', shared: 'adapter', init: { dist: 'uniform', bound: cBound } },
  ];
  return { peftType: 'LORTA', rank: r, modules: mods.map(toPlanned), params, numHeads: H, numLayers: L };
}
