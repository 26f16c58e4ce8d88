import { z } from 'zod';
import { alphaSchema, peftCommonFields, rankSchema, targetModulesSchema } from '../common.js';

/**
 * LoRA config: the fields of PEFT's `LoraConfig` that change the math. PEFT writes many more
 * (dora, loftq, …); they are preserved (passthrough) but not interpreted, except that features
 * that change the math and that we do not implement are rejected.
 */
export const loraConfigSchema = z
  .object({
    peft_type: z.literal('LORA'),
    r: rankSchema.default(8),
    lora_alpha: alphaSchema.default(8),
    target_modules: targetModulesSchema.default(['query', 'value']),
    use_rslora: z.boolean().default(false),
    use_dora: z.literal(false, { errorMap: () => ({ message: 'DoRA is not supported' }) }).optional(),
    rank_pattern: z.record(z.number()).refine((v) => Object.keys(v).length === 0, 'rank_pattern is not supported').optional(),
    alpha_pattern: z.record(z.number()).refine((v) => Object.keys(v).length === 0, 'alpha_pattern is not supported').optional(),
    lora_dropout: z.number().min(0).max(1).optional(),
    ...peftCommonFields,
  })
  .passthrough();

export type LoraConfig = z.infer<typeof loraConfigSchema>;
