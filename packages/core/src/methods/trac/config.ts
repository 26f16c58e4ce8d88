/**
 * TRAC config (`peft_type: "TRAC"`). Strict: a field that is neither listed here nor one of PEFT's
 * common fields is rejected with its own name as the error's field.
 *
 * Defaults reproduce the paper's RoBERTa-base GLUE setup as run by the official code
 * (BangguoYe/TRAC: `examples/bert/src/train_glue.py` + `scripts/run_glue.sh`, shapes and ranks from
 * `trac/tensor_cfg.py`): r = 16, lora_alpha = 32, query+value, 768 → [8, 8, 12], A ranks
 * [1, 8, 12], B ranks [1, 24, 36] (asymmetry k = 3), softmax controllers initialized to ones.
 * See README.md in this folder for the full field list and the parameter counts.
 */
import { z } from 'zod';
import { alphaSchema, isBoundedPositiveIntList, MAX_CONFIG_FACTOR, MAX_CONFIG_RANK, peftCommonFields, rankSchema, targetModulesSchema, type ShapeForDim } from '../common.js';

export const TRAC_VARIANTS = ['trac', 'shared_tt', 'frozen', 'all_trainable'] as const;
export type TracVariant = (typeof TRAC_VARIANTS)[number];

export const TRAC_ACTIVATIONS = ['linear', 'softmax', 'exp'] as const;
export type TracActivation = (typeof TRAC_ACTIVATIONS)[number];

export const TRAC_INITS = ['tt_normal', 'tt_uniform', 'kaiming_normal', 'kaiming_uniform'] as const;
export type TracInit = (typeof TRAC_INITS)[number];

/**
 * Default `tensor_shape`: the official code's hidden-size table (`HIDDEN_SIZE_TO_TENSOR_SHAPE` in
 * `trac/tensor_cfg.py`). Other dimensions (e.g. an FFN's 3072) must be given explicitly.
 */
export const DEFAULT_TRAC_TENSOR_SHAPE: Record<string, number[]> = {
  '768': [8, 8, 12],
  '1024': [8, 8, 16],
  '1280': [8, 8, 20],
  '4096': [16, 16, 16],
  '5120': [16, 16, 20],
};

/** Default TT ranks of A by input dimension: `HIDDEN_SIZE_TO_TENSOR_RANK_A` in `trac/tensor_cfg.py`. */
export const DEFAULT_TRAC_RANK_A: Record<string, number[]> = {
  '768': [1, 8, 12],
  '1024': [1, 8, 12],
  '1280': [1, 12, 24],
  '4096': [1, 12, 24],
  '5120': [1, 15, 30],
};

/** Default TT ranks of B by output dimension: `HIDDEN_SIZE_TO_TENSOR_RANK_B` (3× A's, the asymmetry k = 3). */
export const DEFAULT_TRAC_RANK_B: Record<string, number[]> = {
  '768': [1, 24, 36],
  '1024': [1, 24, 36],
  '1280': [1, 36, 72],
  '4096': [1, 36, 72],
  '5120': [1, 45, 90],
};

const DIM_KEY = /^\d+$/;

function isPositiveIntList(v: unknown): v is number[] {
  return isBoundedPositiveIntList(v, MAX_CONFIG_FACTOR);
}

/**
 * A list-or-map field (`[a, b, c]` or `{"768": [a, b, c]}`) whose lists must pass `check`
 * (returning an error message or undefined). Issues point at the offending map entry, so the
 * error names e.g. `tensor_shape.3072`.
 */
function listOrMapField(describe: string, check: (v: number[]) => string | undefined): z.ZodType<ShapeForDim, z.ZodTypeDef, unknown> {
  return z.unknown().transform((v, ctx): ShapeForDim => {
    const bad = (message: string, path: (string | number)[] = []) => {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message, path });
      return z.NEVER;
    };
    if (Array.isArray(v)) {
      if (!isPositiveIntList(v)) return bad(`must be ${describe} (positive integers ≤ ${MAX_CONFIG_FACTOR})`);
      const err = check(v);
      return err ? bad(err) : [...v];
    }
    if (v !== null && typeof v === 'object') {
      const out: Record<string, number[]> = {};
      for (const [k, entry] of Object.entries(v as Record<string, unknown>)) {
        if (!DIM_KEY.test(k)) return bad(`map keys must be dimensions like "768", found key "${k}"`, [k]);
        if (!isPositiveIntList(entry)) return bad(`must be ${describe} (positive integers ≤ ${MAX_CONFIG_FACTOR})`, [k]);
        const err = check(entry);
        if (err) return bad(err, [k]);
        out[k] = [...entry];
      }
      return out;
    }
    return bad(`must be ${describe} or a map {"<dimension>": ${describe}}`);
  });
}

const threeFactors = listOrMapField('a list of exactly 3 factors [n1, n2, n3]', (v) =>
  v.length === 3 ? undefined : `tensor_shape needs exactly 3 factors [n1, n2, n3] (TT order 3), found ${v.length}: [${v.join(', ')}]`,
);

const ttRanks = listOrMapField('TT ranks [1, r1, r2]', (v) => {
  if (v.length !== 3) return `TT ranks must be [1, r1, r2] (3 entries), found ${v.length}: [${v.join(', ')}]`;
  if (v.some((x) => x > MAX_CONFIG_RANK)) return `TT ranks must be ≤ ${MAX_CONFIG_RANK}, found [${v.join(', ')}]`;
  if (v[0] !== 1) return `TT ranks must start with 1 ([1, r1, r2]), found leading ${v[0]}`;
  return undefined;
});

/** Every field of the TRAC config with its default. */
export const tracConfigFields = {
  peft_type: z.literal('TRAC'),
  /** LoRA rank r: A is [n, r], B is [m, r] (default 16, the paper's RoBERTa runs). */
  r: rankSchema.default(16),
  /** Scaling numerator: s = lora_alpha / r (default 32, the official GLUE/ViT scripts' value). */
  lora_alpha: alphaSchema.default(32),
  /** Modules to adapt (default `["query", "value"]`, as in the paper's RoBERTa runs). */
  target_modules: targetModulesSchema.default(['query', 'value']),
  /**
   * How a dimension d is folded into three factors n1·n2·n3 = d (n1 slowest). A list is used for
   * every dimension; a map is looked up by the dimension as a string (A by n, B by m). Default:
   * the official hidden-size table `{"768":[8,8,12], "1024":[8,8,16], "1280":[8,8,20],
   * "4096":[16,16,16], "5120":[16,16,20]}`.
   */
  tensor_shape: threeFactors.default(DEFAULT_TRAC_TENSOR_SHAPE),
  /**
   * TT ranks of A, `[1, r1, r2]` (list, or map by n). Default: the official table by dimension
   * (768, 1024 → [1, 8, 12]; 1280, 4096 → [1, 12, 24]; 5120 → [1, 15, 30]); see `tracDimDefaults`
   * for dimensions it lacks.
   */
  tensor_rank_a: ttRanks.default(DEFAULT_TRAC_RANK_A),
  /** TT ranks of B, `[1, s1, s2]` (list, or map by m). Default: the official table (3× A's, k = 3). */
  tensor_rank_b: ttRanks.default(DEFAULT_TRAC_RANK_B),
  /**
   * Controller activation σ: `linear` σ(v) = v (init ones), `softmax` σ(v) = len(v)·softmax(v)
   * (init ones), `exp` σ(v) = exp(v) (init zeros). Default `softmax`: the official RoBERTa GLUE
   * script sets `vector_activation='softmax'`.
   */
  controller_activation: z.enum(TRAC_ACTIVATIONS).default('softmax'),
  /**
   * The paper's ablations: `trac` (G1/O1 per module, G2/O2 frozen shared, G3/O3 trainable shared,
   * controllers), `shared_tt` (no controllers), `frozen` (G3/O3 frozen too), `all_trainable`
   * (every core per module and trainable, no controllers = TT-LoRA). Default `trac`.
   */
  variant: z.enum(TRAC_VARIANTS).default('trac'),
  /** Core init: `tt_normal` (default, the official `TTNorm`), `tt_uniform`, `kaiming_normal`, `kaiming_uniform`. */
  init: z.enum(TRAC_INITS).default('tt_normal'),
  /**
   * Tensor order N in the TT init std of the *shared* cores (G2, G3, O2, O3). Default 3 (the
   * paper); the official code effectively uses 4 (it counts the rank mode). Per-module cores
   * always use N = 3.
   */
  init_order_shared: z.number().int().positive().max(64).default(3),
  /** Dropout on the adapter input during training (default 0; no effect on the weights). */
  lora_dropout: z.number().min(0).max(1).default(0),
  /** Seed the tensors were initialized with (informative only; optional). */
  seed: z.number().int().min(0).max(0xffffffff).optional(),
  ...peftCommonFields,
};


export const tracConfigSchema = z
  .object(tracConfigFields)
  .strict();

export type TracConfig = z.infer<typeof tracConfigSchema>;
