/**
 * TRAC's differentiable model: per module and side, a 3-core tensor train (G1 per module, G2 and
 * G3 shared per matrix type), G3 gated by the module's controllers through their activation.
 * Gradients reach G1, G3 and the controllers; G2 (frozen in variant `trac`) gets one only when the
 * caller asks for it (convert's `fitFrozen`), since `grad(key)` is undefined for fixed tensors.
 */
import { ttBackward, ttForward } from '../../convert/tt.js';
import { addInto, type DifferentiableMethod, type DifferentiableModel, type UniversalUpdate } from '../differentiable.js';
import type { ParamPlan, PlannedModule } from '../types.js';
import type { TracActivation, TracConfig } from './config.js';
import { controllerKey, coreKey, hasControllers, sideGeometry, type Side } from './plan.js';

/** σ(v) in float64: linear v; softmax len(v)·softmax(v); exp e^v. */
export function activate64(kind: TracActivation, v: ArrayLike<number>): Float64Array {
  const out = new Float64Array(v.length);
  if (kind === 'linear') {
    for (let i = 0; i < v.length; i++) out[i] = v[i]!;
  } else if (kind === 'exp') {
    for (let i = 0; i < v.length; i++) out[i] = Math.exp(v[i]!);
  } else {
    let max = -Infinity;
    for (let i = 0; i < v.length; i++) max = Math.max(max, v[i]!);
    let sum = 0;
    for (let i = 0; i < v.length; i++) sum += out[i] = Math.exp(v[i]! - max);
    for (let i = 0; i < v.length; i++) out[i] = (v.length * out[i]!) / sum;
  }
  return out;
}

/** ∂L/∂v from ∂L/∂σ(v). */
function activateBackward(kind: TracActivation, g: Float64Array, dg: Float64Array): Float64Array {
  const dv = new Float64Array(g.length);
  if (kind === 'linear') dv.set(dg);
  else if (kind === 'exp') for (let i = 0; i < g.length; i++) dv[i] = dg[i]! * g[i]!;
  else {
    // g = L·p: ∂g_i/∂v_j = g_i (δ_ij − p_j), p_j = g_j / L.
    const L = g.length;
    let dot = 0;
    for (let i = 0; i < L; i++) dot += dg[i]! * g[i]!;
    for (let j = 0; j < L; j++) dv[j] = dg[j]! * g[j]! - (g[j]! / L) * dot;
  }
  return dv;
}

export interface SideInfo {
  side: Side;
  sizes: [number, number, number];
  ranks: [number, number, number, number];
  keys: [string, string, string];
  gate?: { rank: string; mode: string };
}

export function sideInfo(c: TracConfig, mod: PlannedModule, side: Side): SideInfo {
  const g = sideGeometry(c, side, side === 'A' ? mod.n : mod.m, mod.path);
  const info: SideInfo = {
    side,
    sizes: g.sizes,
    ranks: g.ranks,
    keys: [coreKey(c, mod, side, 1), coreKey(c, mod, side, 2), coreKey(c, mod, side, 3)],
  };
  if (hasControllers(c)) info.gate = { rank: controllerKey(mod.path, side, 'rank'), mode: controllerKey(mod.path, side, 'mode') };
  return info;
}

/** G̃3[a, i, j] = gb[a]·gd[i]·G3[a, i, j]. */
function gateCore(G3: Float64Array, gb: Float64Array, gd: Float64Array, r2: number, d3: number, r: number): Float64Array {
  const out = new Float64Array(G3.length);
  for (let a = 0; a < r2; a++) for (let i = 0; i < d3; i++) {
    const f = gb[a]! * gd[i]!;
    const o = (a * d3 + i) * r;
    for (let j = 0; j < r; j++) out[o + j] = f * G3[o + j]!;
  }
  return out;
}

function tracModel(c: TracConfig, plan: ParamPlan): DifferentiableModel {
  const r = c.r;
  const s = c.lora_alpha / c.r;
  const act = c.controller_activation;
  const infos = plan.modules.map((mod) => ({ mod, a: sideInfo(c, mod, 'A'), b: sideInfo(c, mod, 'B') }));
  type SideCache = { lefts: Float64Array[]; cores: Float64Array[]; gb?: Float64Array; gd?: Float64Array };
  const fwdSide = (get: (k: string) => Float64Array, info: SideInfo): { out: Float64Array; cache: SideCache } => {
    const G1 = get(info.keys[0]);
    const G2 = get(info.keys[1]);
    let G3 = get(info.keys[2]);
    let gb: Float64Array | undefined;
    let gd: Float64Array | undefined;
    if (info.gate) {
      gb = activate64(act, get(info.gate.rank));
      gd = activate64(act, get(info.gate.mode));
      G3 = gateCore(G3, gb, gd, info.ranks[2], info.sizes[2], r);
    }
    const cores = [G1, G2, G3];
    const f = ttForward(cores, info.sizes, info.ranks);
    return { out: f.out, cache: { lefts: f.lefts, cores, ...(gb ? { gb, gd } : {}) } };
  };
  const bwdSide = (get: (k: string) => Float64Array, info: SideInfo, cache: SideCache, dOut: Float64Array, grad: (k: string) => Float64Array | undefined) => {
    const gs = ttBackward(cache.cores, info.sizes, info.ranks, cache.lefts, dOut);
    addInto(grad(info.keys[0]), gs[0]!);
    addInto(grad(info.keys[1]), gs[1]!);
    const dG3t = gs[2]!;
    if (!info.gate) {
      addInto(grad(info.keys[2]), dG3t);
      return;
    }
    const G3 = get(info.keys[2]);
    const gb = cache.gb!;
    const gd = cache.gd!;
    const r2 = info.ranks[2];
    const d3 = info.sizes[2];
    const gG3 = grad(info.keys[2]);
    const dgb = new Float64Array(r2);
    const dgd = new Float64Array(d3);
    for (let a = 0; a < r2; a++) for (let i = 0; i < d3; i++) {
      const o = (a * d3 + i) * r;
      let acc = 0;
      for (let j = 0; j < r; j++) acc += dG3t[o + j]! * G3[o + j]!;
      dgb[a]! += acc * gd[i]!;
      dgd[i]! += acc * gb[a]!;
      if (gG3) {
        const f = gb[a]! * gd[i]!;
        for (let j = 0; j < r; j++) gG3[o + j]! += f * dG3t[o + j]!;
      }
    }
    addInto(grad(info.gate.rank), activateBackward(act, gb, dgb));
    addInto(grad(info.gate.mode), activateBackward(act, gd, dgd));
  };
  return {
    plan,
    forward(get) {
      const cache: { a: SideCache; b: SideCache }[] = [];
      const updates: UniversalUpdate[] = infos.map((x) => {
        const fa = fwdSide(get, x.a);
        const fb = fwdSide(get, x.b);
        cache.push({ a: fa.cache, b: fb.cache });
        return { A: fa.out, B: fb.out, s, rho: r };
      });
      return { updates, cache };
    },
    backward(get, cache, dA, dB, grad) {
      const cc = cache as { a: SideCache; b: SideCache }[];
      infos.forEach((x, i) => {
        bwdSide(get, x.a, cc[i]!.a, dA[i]!, grad);
        bwdSide(get, x.b, cc[i]!.b, dB[i]!, grad);
      });
    },
  };
}

export const tracDifferentiable: DifferentiableMethod = {
  peftType: 'TRAC',
  model: (config, plan) => tracModel(config as unknown as TracConfig, plan),
};
