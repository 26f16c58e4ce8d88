/**
 * LoRETTA-rep config (`peft_type: "LORETTA"`). Strict: a field that is neither listed here nor one
 * of PEFT's common fields is rejected with its own name as the error's field.
 *
 * Defaults follow the official code (yifanycc/loretta): `LorettaRepConfig` (r = 8,
 * tensor_rank = 5), the README / run scripts (lora_alpha = 16, i.e. `rep_alpha`), and the
 * tensor-shape table in `loretta/utils/tensor_util.py`, which is keyed by r and then by the
 * dimension. See README.md in this folder.
 */
import { z } from 'zod';
import { alphaSchema, isBoundedPositiveIntList, MAX_CONFIG_FACTOR, peftCommonFields, rankSchema, targetModulesSchema, type ShapeForDim } from '../common.js';

/**
 * The official tensor shapes (`TRANSFORMERS_HIDDEN_SIZE_TO_TENSOR_SHAPE` in `loretta/utils/tensor_util.py`:
 * r ∈ {5, 8, 16, 32, 64, 128}, dimensions 768 … 8192): `[r][dim]` is a factorization of `dim · r`,
 * used for A (keyed by n, product n·r) and for B (keyed by m, product r·m) alike.
 */
export const REFERENCE_TENSOR_SHAPES: Record<number, Record<string, number[]>> = {
  5: { '768': [5, 8, 12, 8], '1024': [4, 8, 5, 8, 4], '1280': [4, 8, 5, 8, 5], '1536': [4, 8, 5, 8, 6], '1600': [5, 8, 5, 8, 5], '2304': [5, 8, 8, 4, 9], '4096': [16, 16, 5, 4, 4], '5120': [5, 8, 10, 8, 8], '8192': [4, 16, 16, 10, 4] },
  8: { '768': [8, 8, 12, 8], '1024': [4, 8, 8, 8, 4], '1280': [4, 8, 8, 8, 5], '1536': [4, 8, 8, 8, 6], '1600': [5, 8, 8, 8, 5], '2304': [8, 8, 8, 4, 9], '4096': [16, 16, 8, 4, 4], '5120': [8, 8, 10, 8, 8], '8192': [4, 16, 16, 16, 4] },
  16: { '768': [8, 16, 12, 8], '1024': [4, 8, 16, 8, 4], '1280': [4, 8, 16, 8, 5], '1536': [4, 8, 16, 8, 6], '1600': [5, 8, 16, 8, 5], '2304': [8, 8, 8, 8, 9], '4096': [16, 16, 16, 4, 4], '5120': [8, 16, 10, 8, 8], '8192': [4, 16, 16, 16, 8] },
  // r = 32 and 64: only the official entries whose factors multiply to dim·r (the others, e.g. r = 32 with
  // 1024 → [4, 8, 16, 8, 4] = 1024·16, make the official reshape fail, so they are left out here).
  32: { '768': [4, 8, 12, 8, 8], '2304': [8, 8, 16, 8, 9] },
  64: { '768': [8, 8, 12, 8, 8], '1024': [4, 8, 8, 8, 8, 4], '1280': [4, 8, 8, 8, 8, 5], '1536': [4, 8, 8, 8, 8, 6], '1600': [5, 8, 8, 8, 8, 5], '4096': [16, 16, 16, 4, 4, 4], '5120': [5, 8, 8, 16, 8, 8], '8192': [4, 16, 16, 16, 8, 4] },
  128: { '768': [8, 16, 12, 8, 8], '1024': [4, 8, 16, 8, 8, 4], '1280': [4, 8, 16, 8, 8, 5], '1536': [4, 8, 16, 8, 8, 6], '1600': [5, 8, 16, 8, 8, 5], '4096': [16, 16, 16, 8, 4, 4], '5120': [5, 8, 16, 16, 8, 8], '8192': [4, 16, 16, 16, 16, 4] },
};

const DIM_KEY = /^\d+$/;

function isPositiveIntList(v: unknown): v is number[] {
  return isBoundedPositiveIntList(v, MAX_CONFIG_FACTOR);
}

/** `[f1, …, fK]` or `{"<dim>": [f1, …, fK]}`; issues point at the offending map entry. */
const factorsField: z.ZodType<ShapeForDim, z.ZodTypeDef, unknown> = z.unknown().transform((v, ctx): ShapeForDim => {
  const bad = (message: string, path: (string | number)[] = []) => {
    ctx.addIssue({ code: z.ZodIssueCode.custom, message, path });
    return z.NEVER;
  };
  const what = `a list of positive integer factors [f1, …, fK], each ≤ ${MAX_CONFIG_FACTOR}`;
  if (Array.isArray(v)) return isPositiveIntList(v) ? [...v] : bad(`must be ${what}`);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, number[]> = {};
    for (const [k, entry] of Object.entries(v as Record<string, unknown>)) {
      if (!DIM_KEY.test(k)) return bad(`map keys must be dimensions like "768", found key "${k}"`, [k]);
      if (!isPositiveIntList(entry)) return bad(`must be ${what}`, [k]);
      out[k] = [...entry];
    }
    return out;
  }
  return bad(`must be ${what} or a map {"<dimension>": [f1, …, fK]}`);
});

/** Every field of the LoRETTA config with its default. */
export const lorettaConfigFields = {
  peft_type: z.literal('LORETTA'),
  /** LoRA bottleneck rank r: A′ is [n, r], B′ is [m, r] (default 8, `LorettaRepConfig`). */
  r: rankSchema.default(8),
  /** Scaling numerator: s = lora_alpha / r (default 16, the official README and run scripts). */
  lora_alpha: alphaSchema.default(16),
  /** Internal TT rank t: every core is [t_{k−1}, f_k, t_k] with ranks [1, t, …, t, 1] (default 5). */
  tensor_rank: rankSchema.default(5),
  /**
   * Tensor shape of A's n×r map, a factorization of n·r (reshaped row-major to [n, r]). A list is
   * used for every module; a map is looked up by the module's input dimension n (as a string).
   * Default: the official table for this r (keys 768, 1024, 2304, 4096, 5120; r ∈ {5, 8, 16, 32}).
   */
  tensor_shape_a: factorsField.optional(),
  /**
   * Tensor shape of B's r×m map, a factorization of r·m (reshaped row-major to [r, m], B′ = its
   * transpose). A map is looked up by the module's output dimension m. Default as tensor_shape_a.
   */
  tensor_shape_b: factorsField.optional(),
  /** Modules to adapt (default `["query", "value"]`). */
  target_modules: targetModulesSchema.default(['query', 'value']),
  /**
   * Zero the last core of B so that ΔW = 0 at step 0 (default false: the official code has no
   * zero init, so a fresh LoRETTA adapter already changes the model).
   */
  zero_init_b: z.boolean().default(false),
  /** Dropout on the adapter input during training (default 0; no effect on the weights). */
  lora_dropout: z.number().min(0).max(1).default(0),
  /** Seed the tensors were initialized with (informative only; optional). */
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  ...peftCommonFields,
};


/** The official shape table for rank r (empty when r has none: shapes must then be given). */
export function defaultLorettaShapes(r: number): Record<string, number[]> {
  const t = REFERENCE_TENSOR_SHAPES[r];
  return t ? Object.fromEntries(Object.entries(t).map(([k, v]) => [k, [...v]])) : {};
}

export const lorettaConfigSchema = z
  .object(lorettaConfigFields)
  .strict()
  .transform((v) => ({
    ...v,
    tensor_shape_a: v.tensor_shape_a ?? defaultLorettaShapes(v.r),
    tensor_shape_b: v.tensor_shape_b ?? defaultLorettaShapes(v.r),
  }));

export type LorettaConfig = z.infer<typeof lorettaConfigSchema>;
