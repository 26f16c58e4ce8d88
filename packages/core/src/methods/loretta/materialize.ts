/**
 * LoRETTA-rep materialization: A′ = TT_A viewed as [n, r]; B′ = (TT_B viewed as [r, m])ᵀ, i.e. a
 * `tt` expression with rows = r, cols = m and transpose; s = lora_alpha / r, ρ = r.
 */
import type { MaterializeJob, TTCore } from '../../backend/types.js';
import { ConfigError, ShapeMismatchError } from '../../errors.js';
import type { TensorMap } from '../../tensor.js';
import type { ParamPlan } from '../types.js';
import type { LorettaConfig } from './config.js';
import { lorettaCoreKey, lorettaFactors, type Side } from './plan.js';

function core(params: TensorMap, key: string): TTCore {
  const t = params.get(key);
  if (!t) throw new ConfigError('missing tensor', { tensor: key });
  if (t.shape.length !== 3) throw new ShapeMismatchError('a TT core must be 3-D [rLeft, size, rRight]', { tensor: key, found: t.shape });
  return { data: t.data, rLeft: t.shape[0]!, size: t.shape[1]!, rRight: t.shape[2]! };
}

export function lorettaJobs(c: LorettaConfig, plan: ParamPlan, params: TensorMap): MaterializeJob[] {
  const s = c.lora_alpha / c.r;
  const cores = (mod: { path: string; n: number; m: number }, side: Side): TTCore[] =>
    lorettaFactors(c, side, mod).map((_, k) => core(params, lorettaCoreKey(mod.path, side, k)));
  return plan.modules.map((mod) => ({
    path: mod.path,
    n: mod.n,
    m: mod.m,
    rho: c.r,
    s,
    a: { kind: 'tt', cores: cores(mod, 'A'), rows: mod.n, cols: c.r },
    b: { kind: 'tt', cores: cores(mod, 'B'), rows: c.r, cols: mod.m, transpose: true },
  }));
}
