/**
 * TRAC defaults for dimensions the official tables (`trac/tensor_cfg.py`) do not list — SmolLM2's
 * 576, Qwen2.5's 896 / 1536, Llama-3.2's 2048, GQA k/v widths, FFN widths, tiny test models.
 *
 * Rule (documented in README.md):
 * - `tensor_shape[d]` = the most balanced ascending factorization d = n1·n2·n3 (smallest largest
 *   factor, then largest smallest; it reproduces the table's 768, 1024, 4096 and 5120 entries);
 * - `tensor_rank_a[d]` / `tensor_rank_b[d]` = the table entry of the nearest listed dimension
 *   (ties: the smaller), each rank then capped at the largest TT rank a [n1, n2, n3, r] tensor
 *   can have (r1 ≤ n1, r2 ≤ min(n1·n2, n3·r)), so small models get no idle rank.
 * Entries the user gives (a list, or a map with that dimension) are never changed.
 */
import { balancedFactors } from '../../util/factor.js';
import { DEFAULT_TRAC_RANK_A, DEFAULT_TRAC_RANK_B, type TracConfig } from './config.js';

/** Ranks for dimension d from a table by nearest listed dimension, capped for the shape. */
export function derivedRanks(table: Record<string, number[]>, d: number, sizes: readonly number[], r: number): number[] {
  const dims = Object.keys(table).map(Number);
  const near = dims.reduce((best, x) => (Math.abs(x - d) < Math.abs(best - d) || (Math.abs(x - d) === Math.abs(best - d) && x < best) ? x : best), dims[0]!);
  const [, r1, r2] = table[String(near)]!;
  const [n1, n2, n3] = sizes as [number, number, number];
  const c1 = Math.min(r1!, n1);
  return [1, c1, Math.min(r2!, c1 * n2, n3 * r)];
}

/**
 * Entries to add for the dimensions of the targeted modules (input dims for A, output dims for B)
 * that the config's maps lack. Returns only fields that changed.
 */
export function tracDimDefaults(c: TracConfig, dims: readonly { n: number; m: number }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (Array.isArray(c.tensor_shape) && Array.isArray(c.tensor_rank_a) && Array.isArray(c.tensor_rank_b)) return out;
  const shapeMap = Array.isArray(c.tensor_shape) ? undefined : { ...c.tensor_shape };
  const sizesOf = (d: number): number[] => (Array.isArray(c.tensor_shape) ? c.tensor_shape : (shapeMap![String(d)] ?? balancedFactors(d, 3)));
  const all = [...new Set(dims.flatMap((x) => [x.n, x.m]))];
  if (shapeMap) {
    const missing = all.filter((d) => !shapeMap[String(d)]);
    for (const d of missing) shapeMap[String(d)] = balancedFactors(d, 3);
    if (missing.length) out.tensor_shape = shapeMap;
  }
  for (const [field, cur, table, side] of [
    ['tensor_rank_a', c.tensor_rank_a, DEFAULT_TRAC_RANK_A, 'n'],
    ['tensor_rank_b', c.tensor_rank_b, DEFAULT_TRAC_RANK_B, 'm'],
  ] as const) {
    if (Array.isArray(cur)) continue;
    const map = { ...cur };
    const missing = [...new Set(dims.map((x) => x[side]))].filter((d) => !map[String(d)]);
    for (const d of missing) map[String(d)] = derivedRanks(table, d, sizesOf(d), c.r);
    if (missing.length) out[field] = map;
  }
  return out;
}
