/**
 * LoRA's differentiable model: A′ = lora_Aᵀ, B′ = lora_B, s = alpha / r (alpha / √r with rsLoRA),
 * exactly the materialization's; both factors trainable.
 */
import { addInto, type DifferentiableMethod, type DifferentiableModel } from '../differentiable.js';
import { moduleKey } from '../common.js';
import type { ParamPlan } from '../types.js';
import type { LoraConfig } from './config.js';
import { loraScale } from './index.js';

function loraModel(c: LoraConfig, plan: ParamPlan): DifferentiableModel {
  const r = c.r;
  const s = loraScale(c);
  const keys = plan.modules.map((m) => ({ m, a: moduleKey(m.path, 'lora_A.weight'), b: moduleKey(m.path, 'lora_B.weight') }));
  return {
    plan,
    forward(get) {
      const updates = keys.map(({ m, a, b }) => {
        const la = get(a); // [r, n]
        const A = new Float64Array(m.n * r);
        for (let k = 0; k < r; k++) for (let i = 0; i < m.n; i++) A[i * r + k] = la[k * m.n + i]!;
        return { A, B: Float64Array.from(get(b)), s, rho: r };
      });
      return { updates, cache: undefined };
    },
    backward(_get, _cache, dA, dB, grad) {
      keys.forEach(({ m, a, b }, idx) => {
        const g = grad(a);
        const d = dA[idx]!;
        if (g) for (let k = 0; k < r; k++) for (let i = 0; i < m.n; i++) g[k * m.n + i]! += d[i * r + k]!;
        addInto(grad(b), dB[idx]!);
      });
    },
  };
}

export const loraDifferentiable: DifferentiableMethod = {
  peftType: 'LORA',
  model: (config, plan) => loraModel(config as unknown as LoraConfig, plan),
};
