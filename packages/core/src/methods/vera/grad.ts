/**
 * VeRA's differentiable model: A′ = (diag(λ_d) · vera_A[:, :n])ᵀ, B′ = diag(λ_b) · vera_B[:m, :],
 * s = 1, as the materialization. vera_A and vera_B are frozen random projections shared by every
 * module (they get gradients only if a caller asks, by giving them a gradient buffer); λ_b, λ_d
 * are the trainable per-module scalings.
 */
import { type DifferentiableMethod, type DifferentiableModel } from '../differentiable.js';
import type { ParamPlan } from '../types.js';
import type { VeraConfig } from './config.js';
import { lambdaBKey, lambdaDKey, VERA_A_KEY, VERA_B_KEY } from './plan.js';

function veraModel(c: VeraConfig, plan: ParamPlan): DifferentiableModel {
  const r = c.r;
  const aSpec = plan.params.find((p) => p.key === VERA_A_KEY)!;
  const nMax = aSpec.shape[1]!;
  return {
    plan,
    forward(get) {
      const VA = get(VERA_A_KEY); // [r, nMax]
      const VB = get(VERA_B_KEY); // [mMax, r]
      const updates = plan.modules.map((m) => {
        const ld = get(lambdaDKey(m.path));
        const lb = get(lambdaBKey(m.path));
        const A = new Float64Array(m.n * r);
        for (let i = 0; i < m.n; i++) for (let k = 0; k < r; k++) A[i * r + k] = VA[k * nMax + i]! * ld[k]!;
        const B = new Float64Array(m.m * r);
        for (let o = 0; o < m.m; o++) for (let k = 0; k < r; k++) B[o * r + k] = lb[o]! * VB[o * r + k]!;
        return { A, B, s: 1, rho: r };
      });
      return { updates, cache: undefined };
    },
    backward(get, _cache, dA, dB, grad) {
      const VA = get(VERA_A_KEY);
      const VB = get(VERA_B_KEY);
      const gVA = grad(VERA_A_KEY);
      const gVB = grad(VERA_B_KEY);
      plan.modules.forEach((m, idx) => {
        const ld = get(lambdaDKey(m.path));
        const lb = get(lambdaBKey(m.path));
        const gld = grad(lambdaDKey(m.path));
        const glb = grad(lambdaBKey(m.path));
        const da = dA[idx]!;
        const db = dB[idx]!;
        for (let i = 0; i < m.n; i++) for (let k = 0; k < r; k++) {
          const d = da[i * r + k]!;
          if (gld) gld[k]! += d * VA[k * nMax + i]!;
          if (gVA) gVA[k * nMax + i]! += d * ld[k]!;
        }
        for (let o = 0; o < m.m; o++) for (let k = 0; k < r; k++) {
          const d = db[o * r + k]!;
          if (glb) glb[o]! += d * VB[o * r + k]!;
          if (gVB) gVB[o * r + k]! += d * lb[o]!;
        }
      });
    },
  };
}

export const veraDifferentiable: DifferentiableMethod = {
  peftType: 'VERA',
  model: (config, plan) => veraModel(config as unknown as VeraConfig, plan),
};
