/**
 * LoRETTA defaults for dimensions the official table (`TRANSFORMERS_HIDDEN_SIZE_TO_TENSOR_SHAPE`)
 * lacks for the chosen r (SmolLM2 576, Qwen2.5 896, Llama-3.2 2048, GQA k/v widths, FFN widths,
 * tiny models), documented in README.md: A's n·r map gets `[n1, n2, n3, r]` and B's r·m map
 * `[r, m1, m2, m3]`, with `n1·n2·n3` the most balanced factorization of the dimension (the same
 * rule as TRAC's; the table's r = 8, 768 entry `[8, 8, 12, 8]` has this form). Given entries are
 * never changed.
 */
import { balancedFactors } from '../../util/factor.js';
import type { LorettaConfig } from './config.js';

export function lorettaDimDefaults(c: LorettaConfig, dims: readonly { n: number; m: number }[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [field, cur, side] of [
    ['tensor_shape_a', c.tensor_shape_a, 'n'],
    ['tensor_shape_b', c.tensor_shape_b, 'm'],
  ] as const) {
    if (Array.isArray(cur)) continue;
    const map = { ...cur };
    const missing = [...new Set(dims.map((x) => x[side]))].filter((d) => !map[String(d)]);
    for (const d of missing) map[String(d)] = side === 'n' ? [...balancedFactors(d, 3), c.r] : [c.r, ...balancedFactors(d, 3)];
    if (missing.length) out[field] = map;
  }
  return out;
}
