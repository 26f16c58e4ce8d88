/**
 * TensLoRA materialization. For module (type t, layer l) of tensor 𝒢 ×₁ U_in ×₂ … :
 * contract the `qkv` mode with row t of U_qkv and the `depth` mode with row l of U_depth, keep
 * the `in` mode (A′ = U_in, ρ = R_in), expand the output modes with their factors and permute
 * so that B′ is `[m, R_in]`; for `att`, row = h·(d/H) + j (`contiguous`) or j·H + h
 * (`interleaved`). s = `scaling`.
 */
import type { MatExpr, MaterializeJob, TuckerMode } from '../../backend/types.js';
import { ConfigError } from '../../errors.js';
import type { TensorMap } from '../../tensor.js';
import { data } from '../common.js';
import type { ParamPlan } from '../types.js';
import type { TensloraConfig } from './config.js';
import { coreName, factorName, gqaRows, tensloraLayout } from './plan.js';

/** Rows `heads` (blocks of `p` rows each, or single rows when p = 1) of a [rows, R] factor. */
function pickRows(U: Float32Array, R: number, heads: readonly number[], p: number): Float32Array {
  const out = new Float32Array(heads.length * p * R);
  heads.forEach((h, g) => out.set(U.subarray(h * p * R, (h + 1) * p * R), g * p * R));
  return out;
}

export function tensloraJobs(c: TensloraConfig, plan: ParamPlan, params: TensorMap): MaterializeJob[] {
  const layout = tensloraLayout(c, plan.modules, plan.numHeads, plan.numLayers);
  return plan.modules.map((mod) => {
    const g = layout.groupOf.get(mod.path);
    if (!g) throw new ConfigError('module has no TensLoRA tensor', { field: mod.path });
    const t = layout.types.indexOf(mod.type);
    // GQA k/v in a q-sized tensor: keep the first query head of each kv group (plan.ts, gqaRows).
    const kvHeads = gqaRows(g.n, g.m, plan.numHeads, mod.m);
    const ops: TuckerMode[] = [];
    // Positions (in the surviving-mode list) of the output modes, to build the permutation.
    let outPos = -1;
    let headPos = -1;
    let outHeadPos = -1;
    let surviving = 0;
    g.modes.forEach((mode, i) => {
      const R = g.ranks[i]!;
      const U = data(params, g.key(factorName(mode)));
      switch (mode) {
        case 'in':
          ops.push({ op: 'keep' });
          surviving++;
          break;
        case 'out':
          if (kvHeads) ops.push({ op: 'matrix', U: pickRows(U, R, kvHeads, g.m / plan.numHeads), rows: mod.m });
          else ops.push({ op: 'matrix', U, rows: g.dims[i]! });
          outPos = surviving++;
          break;
        case 'out_head':
          ops.push({ op: 'matrix', U, rows: g.dims[i]! });
          outHeadPos = surviving++;
          break;
        case 'heads':
          if (kvHeads) ops.push({ op: 'matrix', U: pickRows(U, R, kvHeads, 1), rows: kvHeads.length });
          else ops.push({ op: 'matrix', U, rows: g.dims[i]! });
          headPos = surviving++;
          break;
        case 'qkv':
          ops.push({ op: 'vector', v: U.subarray(t * R, (t + 1) * R) });
          break;
        case 'depth':
          ops.push({ op: 'vector', v: U.subarray(mod.layer * R, (mod.layer + 1) * R) });
          break;
      }
    });
    // `in` is always surviving mode 0.
    const order =
      outPos >= 0 ? [outPos, 0] : c.head_layout === 'contiguous' ? [headPos, outHeadPos, 0] : [outHeadPos, headPos, 0];
    const rIn = g.ranks[0]!;
    const b: MatExpr = { kind: 'tucker', core: data(params, g.key(coreName)), coreDims: [...g.ranks], modes: ops, order, rows: mod.m, cols: rIn };
    const a: MatExpr = { kind: 'dense', src: data(params, g.key(factorName('in'))), rows: mod.n, cols: rIn, takeRows: mod.n, takeCols: rIn };
    return { path: mod.path, n: mod.n, m: mod.m, rho: rIn, s: c.scaling, a, b };
  });
}
