/**
 * LoRETTA's differentiable model (LoRETTA_adp): per module, lora_A and lora_B each a tensor train
 * over the factored dimension (ranks 1, t, …, t, 1), contracted to A′ [n, r] and B′ [m, r];
 * s = lora_alpha / r. Every core is trainable.
 */
import { ttBackward, ttForward } from '../../convert/tt.js';
import { addInto, type DifferentiableMethod, type DifferentiableModel, type UniversalUpdate } from '../differentiable.js';
import type { ParamPlan } from '../types.js';
import type { LorettaConfig } from './config.js';
import { lorettaCoreKey, lorettaFactors } from './plan.js';

/** TT ranks [1, t, …, t, 1] of a K-core train. */
export function ranksOf(K: number, t: number): number[] {
  return Array.from({ length: K + 1 }, (_, i) => (i === 0 || i === K ? 1 : t));
}

function lorettaModel(c: LorettaConfig, plan: ParamPlan): DifferentiableModel {
  const s = c.lora_alpha / c.r;
  const geo = plan.modules.map((mod) => {
    const a = lorettaFactors(c, 'A', mod);
    const b = lorettaFactors(c, 'B', mod);
    return {
      mod,
      a: { sizes: a, ranks: ranksOf(a.length, c.tensor_rank), keys: a.map((_, k) => lorettaCoreKey(mod.path, 'A', k)) },
      b: { sizes: b, ranks: ranksOf(b.length, c.tensor_rank), keys: b.map((_, k) => lorettaCoreKey(mod.path, 'B', k)) },
    };
  });
  return {
    plan,
    forward(get) {
      const cache: { la: Float64Array[]; lb: Float64Array[] }[] = [];
      const updates: UniversalUpdate[] = geo.map((g) => {
        const fa = ttForward(g.a.keys.map(get), g.a.sizes, g.a.ranks);
        const fb = ttForward(g.b.keys.map(get), g.b.sizes, g.b.ranks);
        cache.push({ la: fa.lefts, lb: fb.lefts });
        const { m } = g.mod;
        const B = new Float64Array(m * c.r);
        for (let j = 0; j < c.r; j++) for (let o = 0; o < m; o++) B[o * c.r + j] = fb.out[j * m + o]!;
        return { A: fa.out, B, s, rho: c.r };
      });
      return { updates, cache };
    },
    backward(get, cache, dA, dB, grad) {
      const cc = cache as { la: Float64Array[]; lb: Float64Array[] }[];
      geo.forEach((g, i) => {
        const { m } = g.mod;
        const gA = ttBackward(g.a.keys.map(get), g.a.sizes, g.a.ranks, cc[i]!.la, dA[i]!);
        const dX = new Float64Array(c.r * m);
        const d = dB[i]!;
        for (let o = 0; o < m; o++) for (let j = 0; j < c.r; j++) dX[j * m + o] = d[o * c.r + j]!;
        const gB = ttBackward(g.b.keys.map(get), g.b.sizes, g.b.ranks, cc[i]!.lb, dX);
        g.a.keys.forEach((k, j) => addInto(grad(k), gA[j]!));
        g.b.keys.forEach((k, j) => addInto(grad(k), gB[j]!));
      });
    },
  };
}

export const lorettaDifferentiable: DifferentiableMethod = {
  peftType: 'LORETTA',
  model: (config, plan) => lorettaModel(config as unknown as LorettaConfig, plan),
};
