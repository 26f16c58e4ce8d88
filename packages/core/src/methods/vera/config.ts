import { z } from 'zod';
import { peftCommonFields, rankSchema, scaleSchema, targetModulesSchema } from '../common.js';

/**
 * VeRA config: the fields of PEFT's `VeraConfig` (peft 0.20). PEFT writes more than we read
 * (`init_weights`, …); unknown fields are preserved (passthrough) but not interpreted.
 *
 * Defaults are PEFT's (`src/peft/tuners/vera/config.py`), except `target_modules`, which PEFT
 * resolves per architecture (the LoRA mapping); we default to `["query", "value"]` like LoRA.
 */
export const veraConfigSchema = z
  .object({
    peft_type: z.literal('VERA'),
    /** Rank of the shared random projections (PEFT default 256). */
    r: rankSchema.default(256),
    /** Modules to adapt (default `["query", "value"]`). */
    target_modules: targetModulesSchema.default(['query', 'value']),
    /**
     * PEFT seeds torch's CPU generator with this key to draw `vera_A`/`vera_B` (default 0). We
     * record it for compatibility; our own projections come from the project PRNG (init seed).
     */
    projection_prng_key: z.number().int().default(0),
    /**
     * Must be `true` (PEFT's default): the projections are always stored in the file, because
     * torch's generator cannot be reproduced bit-exactly outside torch.
     */
    save_projection: z
      .boolean()
      .default(true)
      .refine((v) => v === true, {
        message:
          'save_projection must be true (expected true): vera_A/vera_B are always stored in the adapter, because the ' +
          "projections PEFT would regenerate from projection_prng_key come from torch's CPU generator, which cannot be " +
          'reproduced bit-exactly here',
      }),
    /** Initial value of every `vera_lambda_d` entry (PEFT default 0.1). */
    d_initial: scaleSchema.default(0.1),
    /** Dropout on the adapter input during training (default 0; no effect on the weights). */
    vera_dropout: z.number().min(0).max(1).default(0),
    /** PEFT's flag (default true); we always use the default initialization. */
    init_weights: z.boolean().optional(),
    ...peftCommonFields,
  })
  .passthrough();

export type VeraConfig = z.infer<typeof veraConfigSchema>;
