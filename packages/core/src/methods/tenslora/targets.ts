/**
 * TensLoRA's default targets: the query, key and value projections (the official code adapts
 * exactly these three and aggregates them on its `qkv` mode, in this order).
 */
import { moduleName, type ModelShape } from '../../model/shape.js';

/** Module names of q, k, v in the architectures we know, with their row on the qkv mode. */
export const QKV_ROW: Record<string, number> = { query: 0, q_proj: 0, q_lin: 0, key: 1, k_proj: 1, k_lin: 1, value: 2, v_proj: 2, v_lin: 2 };

/** The q, k, v module names of a shape, in qkv order; undefined when it has no separate q, k, v (GPT-2's fused c_attn). */
export function qkvTargets(shape: ModelShape): string[] | undefined {
  const names = [...new Set(shape.modules.map((m) => moduleName(m.path)).filter((n) => n in QKV_ROW))].sort((a, b) => QKV_ROW[a]! - QKV_ROW[b]!);
  return names.length === 3 ? names : undefined;
}
