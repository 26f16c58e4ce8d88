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

/** Output rows of a GQA k/v projection that LoRTA accepts (Hkv·d/H), or d when the model has no GQA. */
export function gqaKvOut(c: LortaConfig, shape: ModelShape): number {
  const H = shape.numHeads;
  const Hkv = shape.numKvHeads;
  const gqa = Hkv > 0 && Hkv < H && H % Hkv === 0 && c.head_side === 'output';
  return gqa ? Hkv * (shape.hiddenSize / H) : shape.hiddenSize;
}

/**
 * LoRTA's default targets: the model's PEFT default when every one of them fits (square, or GQA
 * k/v); otherwise (GPT-2's fused `c_attn`, 768 → 2304) the square attention output projection.
 */
export function lortaDefaultTargets(shape: ModelShape): string[] | undefined {
  const d = shape.hiddenSize;
  const H = shape.numHeads;
  const kv = shape.numKvHeads > 0 && shape.numKvHeads < H ? shape.numKvHeads * (d / H) : d;
  const ok = (m: { in: number; out: number }) => m.in === d && (m.out === d || m.out === kv);
  const chosen = shape.modules.filter((m) => shape.defaultTargets.some((t) => m.path === t || m.path.endsWith(`.${t}`)));
  if (chosen.length > 0 && chosen.every(ok)) return undefined;
  const square = [...new Set(shape.modules.filter((m) => m.in === d && m.out === d && /(attn|attention)/.test(m.type)).map((m) => m.type))];
  return square.length ? square : undefined;
}

export function planLorta(c: LortaConfig, shape: ModelShape): ParamPlan {
  const mods = targetedModules(c.target_modules, shape, c.layers_to_transform);
  const d = shape.hiddenSize;
  const H = shape.numHeads;
  const L = shape.numLayers;
  // Grouped-query attention (documented extension): k/v with Hkv < H heads of d/H rows are allowed
  // when the heads sit on the output side; kv head g uses the head-factor row of the first query
  // head of its group (g·H/Hkv), so the paper's form holds exactly where heads line up.
  const kvOut = gqaKvOut(c, shape);
  for (const m of mods) {
    if (m.in !== d || (m.out !== d && m.out !== kvOut)) {
      throw new ShapeMismatchError(`LoRTA needs square hidden-size modules (in, out) = (d, d)${kvOut !== d ? ` or GQA k/v (d, ${kvOut})` : ''}; module ${m.path} is not`, {
        field: m.path,
        expected: kvOut !== d ? [d, `${d} or ${kvOut}`] : [d, d],
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
