/**
 * LoRTA materialization. Module (layer l, type t): A′ = A, and, head-contiguous,
 * B′[h·(d/H) + j, k] = B[j, k] · C_H[h, k] · C_L[l, k] · C_M[t, k]; ρ = r, s = lora_alpha / r.
 */
import type { MaterializeJob } from '../../backend/types.js';
import type { TensorMap } from '../../tensor.js';
import { data, typesInOrder } from '../common.js';
import type { ParamPlan } from '../types.js';
import type { LortaConfig } from './config.js';
import { LORTA_KEYS } from './plan.js';

export function lortaScale(c: LortaConfig): number {
  return c.use_rslora ? c.lora_alpha / Math.sqrt(c.r) : c.lora_alpha / c.r;
}

export function lortaJobs(c: LortaConfig, plan: ParamPlan, params: TensorMap): MaterializeJob[] {
  const r = c.r;
  const H = plan.numHeads;
  const A = data(params, LORTA_KEYS.A);
  const B = data(params, LORTA_KEYS.B);
  const CH = data(params, LORTA_KEYS.C_H);
  const CL = data(params, LORTA_KEYS.C_L);
  const CM = data(params, LORTA_KEYS.C_M);
  const types = typesInOrder(plan.modules);
  const s = lortaScale(c);
  return plan.modules.map((m) => {
    const d = m.n;
    const t = types.indexOf(m.type);
    const scale = new Float32Array(r);
    for (let k = 0; k < r; k++) scale[k] = CL[m.layer * r + k]! * CM[t * r + k]!;
    const dense = { kind: 'dense' as const, src: A, rows: d, cols: r, takeRows: d, takeCols: r };
    // GQA k/v (m = Hkv·d/H < d, see plan.ts): kv head g takes the head-factor row of query head g·H/Hkv.
    const p = d / H;
    const heads = m.m / p;
    let outer = CH;
    if (heads !== H) {
      outer = new Float32Array(heads * r);
      for (let g = 0; g < heads; g++) outer.set(CH.subarray(g * (H / heads) * r, (g * (H / heads) + 1) * r), g * r);
    }
    const headBlocks = { kind: 'cp' as const, inner: B, p, outer, q: heads, r, scale };
    return {
      path: m.path,
      n: m.n,
      m: m.m,
      rho: r,
      s,
      // head_side 'input' (the PEFT port): the head blocks index input columns, A spans the output.
      ...(c.head_side === 'input' ? { a: headBlocks, b: dense } : { a: dense, b: headBlocks }),
    };
  });
}
