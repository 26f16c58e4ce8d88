import { z } from 'zod';
import { alphaSchema, MAX_CONFIG_SCALE, peftCommonFields, rankSchema, targetModulesSchema } from '../common.js';

/**
 * LoRTA config (`peft_type: "LORTA"`). Strict: unknown fields are rejected, apart from PEFT's
 * common fields. Defaults follow the reference PEFT port's `LorTaConfig`
 * (ihounie/lorta, `peft/src/peft/tuners/lorta/config.py`): r = 8, lora_alpha = 8, init_scale = 0.
 */
export const lortaConfigSchema = z
  .object({
    peft_type: z.literal('LORTA'),
    /** CP rank shared by all five factors (default 8, the reference port's default). */
    r: rankSchema.default(8),
    /** Scaling numerator: s = lora_alpha / r (default 8, the reference port's default). */
    lora_alpha: alphaSchema.default(8),
    /** Modules to adapt; all must be square d → d (default `["query", "value"]`). */
    target_modules: targetModulesSchema.default(['query', 'value']),
    /**
     * The reference's `init_scale`: the C factors use kaiming-uniform with a = √5 · init_scale, i.e.
     * U(±√(6 / ((1 + 5·init_scale²) · r))). Default 0 (the port's default and every published run
     * script) gives U(±√(6/r)).
     */
    init_scale: z.number().finite().min(0).max(MAX_CONFIG_SCALE).default(0),
    /** Dropout on the adapter input during training (default 0; no effect on the weights). */
    lora_dropout: z.number().min(0).max(1).default(0),
    /**
     * Which side of ΔW the heads index. `output` (default): the paper's orientation, heads are
     * blocks of output rows. `input`: the official PEFT port's layout (ihounie/lorta
     * `peft/src/peft/tuners/lorta`), which applies `x @ dWᵀ` with `dW = cat_h(A·diag(c_h)·B)` along
     * columns, so heads are blocks of input columns and `A` spans the output (ΔW is the transpose
     * of the paper's form). Imported port checkpoints use `input`.
     */
    head_side: z.enum(['output', 'input']).default('output'),
    /** The port's rank-stabilized scaling: s = lora_alpha / √r instead of lora_alpha / r (default false). */
    use_rslora: z.boolean().default(false),
    // Fields the PEFT port writes into every adapter_config.json. Accepted so its files load;
    // those that would change ΔW are only accepted at their no-op values.
    /** The port's init switch (informative: tensors are read from the file). */
    init_lora_weights: z.union([z.boolean(), z.string()]).optional(),
    /** Must be empty: per-module ranks do not exist in a single CP decomposition. */
    rank_pattern: z.object({}).strict().nullable().optional(),
    /** Must be empty: per-module alphas are not modelled. */
    alpha_pattern: z.object({}).strict().nullable().optional(),
    /** DoRA is not modelled: must be false. */
    use_dora: z.literal(false).optional(),
    /** Must be null (layer replication is not modelled). */
    layer_replication: z.null().optional(),
    /** Informative (training-time parallelism / quantized init settings of the port). */
    megatron_config: z.unknown().optional(),
    megatron_core: z.string().nullable().optional(),
    loftq_config: z.unknown().optional(),
    ...peftCommonFields,
  })
  .strict();

export type LortaConfig = z.infer<typeof lortaConfigSchema>;
