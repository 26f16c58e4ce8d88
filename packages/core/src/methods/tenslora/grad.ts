/**
 * TensLoRA's differentiable model: per tensor group a Tucker core with factor matrices (in, out or
 * out_head × heads, qkv, depth); each module's A′ is the group's input factor and B′ the core
 * contracted with the module's trailing-mode rows and the output factors. Every tensor is trainable.
 */
import { matmul } from '../../convert/linalg.js';
import { addInto, type DifferentiableMethod, type DifferentiableModel, type UniversalUpdate } from '../differentiable.js';
import type { ParamPlan } from '../types.js';
import type { ModeName, TensloraConfig } from './config.js';
import { coreName, factorName, tensloraLayout, type TensorGroup } from './plan.js';

/** Row of B′ for head h, position j within the head (the head layout of the output dimension). */
export function outRow(layout: 'contiguous' | 'interleaved', j: number, h: number, p: number, H: number): number {
  return layout === 'contiguous' ? h * p + j : j * H + h;
}

function tensloraModel(c: TensloraConfig, plan: ParamPlan): DifferentiableModel {
  const layout = tensloraLayout(c, plan.modules, plan.numHeads, plan.numLayers);
  const H = plan.numHeads;
  const mods = plan.modules.map((mod) => {
    const g = layout.groupOf.get(mod.path)!;
    return { mod, g, t: layout.types.indexOf(mod.type) };
  });
  const idx = (g: TensorGroup, mode: ModeName) => g.modes.indexOf(mode);
  /** Trailing-mode weights w = U_qkv[t] ⊗ U_depth[l] and the sizes involved. */
  const trail = (get: (k: string) => Float64Array, g: TensorGroup, t: number, l: number) => {
    const qi = idx(g, 'qkv');
    const di = idx(g, 'depth');
    const Rq = qi >= 0 ? g.ranks[qi]! : 1;
    const Rd = di >= 0 ? g.ranks[di]! : 1;
    const uq = qi >= 0 ? get(g.key(factorName('qkv'))).subarray(t * Rq, (t + 1) * Rq) : new Float64Array([1]);
    const ud = di >= 0 ? get(g.key(factorName('depth'))).subarray(l * Rd, (l + 1) * Rd) : new Float64Array([1]);
    const w = new Float64Array(Rq * Rd);
    for (let a = 0; a < Rq; a++) for (let b = 0; b < Rd; b++) w[a * Rd + b] = uq[a]! * ud[b]!;
    return { w, uq, ud, Rq, Rd, qi, di };
  };
  return {
    plan,
    forward(get) {
      const cache: { K: Float64Array; w: Float64Array; T1?: Float64Array }[] = [];
      const updates: UniversalUpdate[] = mods.map(({ mod, g, t }) => {
        const Rin = g.ranks[0]!;
        const core = get(g.key(coreName));
        const { w } = trail(get, g, t, mod.layer);
        const P = w.length;
        const Ro = core.length / (Rin * P);
        const K = matmul(core, w, Rin * Ro, P, 1); // [Rin, Ro]
        const A = get(g.key(factorName('in')));
        const B = new Float64Array(mod.m * Rin);
        let T1: Float64Array | undefined;
        if (g.modes.includes('out')) {
          const Uo = get(g.key(factorName('out')));
          const Rout = Ro;
          for (let i = 0; i < mod.m; i++) for (let a = 0; a < Rin; a++) {
            let s = 0;
            for (let b = 0; b < Rout; b++) s += Uo[i * Rout + b]! * K[a * Rout + b]!;
            B[i * Rin + a] = s;
          }
        } else {
          const Uoh = get(g.key(factorName('out_head')));
          const Uh = get(g.key(factorName('heads')));
          const Roh = g.ranks[idx(g, 'out_head')]!;
          const RH = g.ranks[idx(g, 'heads')]!;
          const p = mod.m / H;
          // T1[a, b, h] = Σ_e K[a, b, e] U_H[h, e]
          T1 = new Float64Array(Rin * Roh * H);
          for (let a = 0; a < Rin; a++) for (let b = 0; b < Roh; b++) for (let h = 0; h < H; h++) {
            let s = 0;
            for (let e = 0; e < RH; e++) s += K[(a * Roh + b) * RH + e]! * Uh[h * RH + e]!;
            T1[(a * Roh + b) * H + h] = s;
          }
          for (let h = 0; h < H; h++) for (let j = 0; j < p; j++) {
            const row = outRow(c.head_layout, j, h, p, H);
            for (let a = 0; a < Rin; a++) {
              let s = 0;
              for (let b = 0; b < Roh; b++) s += Uoh[j * Roh + b]! * T1[(a * Roh + b) * H + h]!;
              B[row * Rin + a] = s;
            }
          }
        }
        cache.push(T1 ? { K, w, T1 } : { K, w });
        return { A, B, s: c.scaling, rho: Rin };
      });
      return { updates, cache };
    },
    backward(get, cache, dA, dB, grad) {
      const cc = cache as { K: Float64Array; w: Float64Array; T1?: Float64Array }[];
      mods.forEach(({ mod, g, t }, i) => {
        const Rin = g.ranks[0]!;
        const { K, w, T1 } = cc[i]!;
        const P = w.length;
        const Ro = K.length / Rin;
        addInto(grad(g.key(factorName('in'))), dA[i]!);
        const dBi = dB[i]!;
        const dK = new Float64Array(Rin * Ro);
        if (g.modes.includes('out')) {
          const Uo = get(g.key(factorName('out')));
          const gUo = grad(g.key(factorName('out')));
          for (let r = 0; r < mod.m; r++) for (let a = 0; a < Rin; a++) {
            const d = dBi[r * Rin + a]!;
            if (d === 0) continue;
            for (let b = 0; b < Ro; b++) {
              dK[a * Ro + b]! += d * Uo[r * Ro + b]!;
              if (gUo) gUo[r * Ro + b]! += d * K[a * Ro + b]!;
            }
          }
        } else {
          const Uoh = get(g.key(factorName('out_head')));
          const Uh = get(g.key(factorName('heads')));
          const gUoh = grad(g.key(factorName('out_head')));
          const gUh = grad(g.key(factorName('heads')));
          const Roh = g.ranks[idx(g, 'out_head')]!;
          const RH = g.ranks[idx(g, 'heads')]!;
          const p = mod.m / H;
          const dT1 = new Float64Array(Rin * Roh * H);
          for (let h = 0; h < H; h++) for (let j = 0; j < p; j++) {
            const row = outRow(c.head_layout, j, h, p, H);
            for (let a = 0; a < Rin; a++) {
              const d = dBi[row * Rin + a]!;
              if (d === 0) continue;
              for (let b = 0; b < Roh; b++) {
                dT1[(a * Roh + b) * H + h]! += d * Uoh[j * Roh + b]!;
                if (gUoh) gUoh[j * Roh + b]! += d * T1![(a * Roh + b) * H + h]!;
              }
            }
          }
          for (let a = 0; a < Rin; a++) for (let b = 0; b < Roh; b++) for (let h = 0; h < H; h++) {
            const d = dT1[(a * Roh + b) * H + h]!;
            if (d === 0) continue;
            for (let e = 0; e < RH; e++) {
              dK[(a * Roh + b) * RH + e]! += d * Uh[h * RH + e]!;
              if (gUh) gUh[h * RH + e]! += d * K[(a * Roh + b) * RH + e]!;
            }
          }
        }
        // K = core[Rin·Ro, P] · w
        const core = get(g.key(coreName));
        const gCore = grad(g.key(coreName));
        const dw = new Float64Array(P);
        for (let q = 0; q < Rin * Ro; q++) {
          const d = dK[q]!;
          if (d === 0) continue;
          for (let x = 0; x < P; x++) {
            if (gCore) gCore[q * P + x]! += d * w[x]!;
            dw[x]! += d * core[q * P + x]!;
          }
        }
        const tr = trail(get, g, t, mod.layer);
        if (tr.qi >= 0) {
          const gq = grad(g.key(factorName('qkv')));
          if (gq) for (let a = 0; a < tr.Rq; a++) for (let b = 0; b < tr.Rd; b++) gq[t * tr.Rq + a]! += dw[a * tr.Rd + b]! * tr.ud[b]!;
        }
        if (tr.di >= 0) {
          const gd = grad(g.key(factorName('depth')));
          if (gd) for (let a = 0; a < tr.Rq; a++) for (let b = 0; b < tr.Rd; b++) gd[mod.layer * tr.Rd + b]! += dw[a * tr.Rd + b]! * tr.uq[a]!;
        }
      });
    },
  };
}

export const tensloraDifferentiable: DifferentiableMethod = {
  peftType: 'TENSLORA',
  model: (config, plan) => tensloraModel(config as unknown as TensloraConfig, plan),
};
