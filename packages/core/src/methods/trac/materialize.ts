/**
 * TRAC materialization: per module, A′ = TT(G1, G2, G̃3) viewed as [n, r] and B′ = TT(O1, O2, Õ3)
 * viewed as [m, r] (mode 1 slowest), s = lora_alpha / r, ρ = r. The controller activation σ is
 * applied here, in JS, and the backend only multiplies by the resulting gate vectors.
 */
import type { MatExpr, MaterializeJob, TTCore, TTGate } from '../../backend/types.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import type { TensorMap } from '../../tensor.js';
import type { ParamPlan } from '../types.js';
import type { TracActivation, TracConfig } from './config.js';
import { controllerKey, coreKey, hasControllers, type CoreIndex, type Side } from './plan.js';

/** σ(v): `linear` v, `softmax` len(v)·softmax(v) (max-shifted), `exp` exp(v). */
export function activate(kind: TracActivation, v: Float32Array): Float32Array {
  const out = new Float32Array(v.length);
  switch (kind) {
    case 'linear':
      out.set(v);
      return out;
    case 'exp':
      for (let i = 0; i < v.length; i++) out[i] = Math.exp(v[i]!);
      return out;
    case 'softmax': {
      let max = -Infinity;
      for (const x of v) max = Math.max(max, x);
      let sum = 0;
      const e = new Float64Array(v.length);
      for (let i = 0; i < v.length; i++) sum += e[i] = Math.exp(v[i]! - max);
      for (let i = 0; i < v.length; i++) out[i] = (v.length * e[i]!) / sum;
      return out;
    }
  }
}

function core(params: TensorMap, key: string): TTCore {
  const t = params.get(key);
  if (!t) throw new ConfigError('missing tensor', { tensor: key });
  if (t.shape.length !== 3) throw new ShapeMismatchError('a TT core must be 3-D [rLeft, size, rRight]', { tensor: key, found: t.shape });
  return { data: t.data, rLeft: t.shape[0]!, size: t.shape[1]!, rRight: t.shape[2]! };
}

function vector(params: TensorMap, key: string): Float32Array {
  const t = params.get(key);
  if (!t) throw new ConfigError('missing tensor', { tensor: key });
  return t.data;
}

export function tracJobs(c: TracConfig, plan: ParamPlan, params: TensorMap): MaterializeJob[] {
  const s = c.lora_alpha / c.r;
  const gated = hasControllers(c);
  const side = (mod: { path: string; type: string }, which: Side, rows: number): MatExpr => {
    const cores = ([1, 2, 3] as CoreIndex[]).map((k) => core(params, coreKey(c, mod, which, k)));
    const expr: MatExpr = { kind: 'tt', cores, rows, cols: c.r };
    if (gated) {
      const gate: TTGate = {
        rank: activate(c.controller_activation, vector(params, controllerKey(mod.path, which, 'rank'))),
        mode: activate(c.controller_activation, vector(params, controllerKey(mod.path, which, 'mode'))),
      };
      expr.gate = gate;
    }
    return expr;
  };
  return plan.modules.map((mod) => ({
    path: mod.path,
    n: mod.n,
    m: mod.m,
    rho: c.r,
    s,
    a: side(mod, 'A', mod.n),
    b: side(mod, 'B', mod.m),
  }));
}
