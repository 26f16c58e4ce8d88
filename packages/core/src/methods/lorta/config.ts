import { z } from 'zod';
import { peftCommonFields, targetModulesSchema } from '../common.js';

/**
 * LoRTA config (`peft_type: "LORTA"`). Strict: unknown fields are rejected, apart from PEFT's
 * common fields. Defaults follow the reference PEFT port's `LorTaConfig`
 * (ihounie/lorta, `peft/src/peft/tuners/lorta/config.py`): r = 8, lora_alpha = 8, init_scale = 0.
 */
export const lortaConfigSchema = z
  .object({
    peft_type: z.literal('LORTA'),
    /** CP rank shared by all five factors (default 8, the reference port's default). */
    r: z.number().int().positive().default(8),
    /** Scaling numerator: s = lora_alpha / r (default 8, the reference port's default). */
    lora_alpha: z.number().positive().default(8),
    /** Modules to adapt; all must be square d → d (default `["query", "value"]`). */
    target_modules: targetModulesSchema.default(['query', 'value']),
    /**
     * The reference's `init_scale`: the C factors use kaiming-uniform with a = √5 · init_scale, i.e.
     * U(±√(6 / ((1 + 5·init_scale²) · r))). Default 0 (the port's default and every published run
     * script) gives U(±√(6/r)).
     */
    init_scale: z.number().min(0).default(0),
    /** Dropout on the adapter input during training (default 0; no effect on the weights). */
    lora_dropout: z.number().min(0).max(1).default(0),
    ...peftCommonFields,
  })
  .strict();

export type LortaConfig = z.infer<typeof lortaConfigSchema>;
