/**
 * VeRA materialization: ΔW = diag(λ_b) · vera_B[:m, :] · diag(λ_d) · vera_A[:, :n], so
 * A′ = (diag(λ_d) · vera_A[:, :n])ᵀ `[n, r]`, B′ = diag(λ_b) · vera_B[:m, :] `[m, r]`, s = 1.
 */
import type { MaterializeJob } from '../../backend/types.js';
import { ShapeMismatchError } from '../../errors.js';
import type { TensorMap } from '../../tensor.js';
import { data } from '../common.js';
import type { ParamPlan } from '../types.js';
import type { VeraConfig } from './config.js';
import { lambdaBKey, lambdaDKey, VERA_A_KEY, VERA_B_KEY } from './plan.js';

export function veraJobs(c: VeraConfig, plan: ParamPlan, params: TensorMap): MaterializeJob[] {
  const A = params.get(VERA_A_KEY);
  const B = params.get(VERA_B_KEY);
  if (!A || A.shape.length !== 2) throw new ShapeMismatchError('vera_A must be 2-D [r, n_max]', { tensor: VERA_A_KEY, expected: '[r, n_max]', found: A?.shape ?? 'nothing' });
  if (!B || B.shape.length !== 2) throw new ShapeMismatchError('vera_B must be 2-D [m_max, r]', { tensor: VERA_B_KEY, expected: '[m_max, r]', found: B?.shape ?? 'nothing' });
  const [r, nMax] = A.shape as [number, number];
  const [mMax] = B.shape as [number, number];
  return plan.modules.map((m) => ({
    path: m.path,
    n: m.n,
    m: m.m,
    rho: c.r,
    s: 1,
    a: {
      kind: 'dense',
      src: A.data,
      rows: r,
      cols: nMax,
      takeRows: c.r,
      takeCols: m.n,
      transpose: true,
      colScale: data(params, lambdaDKey(m.path)),
    },
    b: {
      kind: 'dense',
      src: B.data,
      rows: mMax,
      cols: c.r,
      takeRows: m.m,
      takeCols: c.r,
      rowScale: data(params, lambdaBKey(m.path)),
    },
  }));
}
