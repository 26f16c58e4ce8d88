import { z } from 'zod';
import { peftCommonFields, rankSchema, scaleSchema, targetModulesSchema } from '../common.js';

/** The seven tensor constructions of TensLoRA (Marmoret et al. 2025), named as in the reference. */
export const CONSTRUCTIONS = ['att', 'qkv', 'depth', 'att_qkv', 'att_depth', 'qkv_depth', 'att_qkv_depth'] as const;
export type Construction = (typeof CONSTRUCTIONS)[number];

/**
 * Modes of an aggregated update tensor:
 * - `in`: input features n;
 * - `out`: output features m (constructions without `att`);
 * - `out_head`, `heads`: the output split as (d/H, H) (constructions with `att`);
 * - `qkv`: the targeted matrix types (M of them; 3 for q, k, v in the paper);
 * - `depth`: the layers (L).
 */
export type ModeName = 'in' | 'out' | 'out_head' | 'heads' | 'qkv' | 'depth';

export interface ConstructionFlags {
  att: boolean;
  qkv: boolean;
  depth: boolean;
}

export function flagsOf(c: Construction): ConstructionFlags {
  const parts = c.split('_');
  return { att: parts.includes('att'), qkv: parts.includes('qkv'), depth: parts.includes('depth') };
}

/** Mode list of a construction, in the reference's order: in, out | (out_head, heads), [qkv], [depth]. */
export function modesOf(c: Construction): ModeName[] {
  const f = flagsOf(c);
  const modes: ModeName[] = ['in'];
  if (f.att) modes.push('out_head', 'heads');
  else modes.push('out');
  if (f.qkv) modes.push('qkv');
  if (f.depth) modes.push('depth');
  return modes;
}

/**
 * TensLoRA config (`peft_type: "TENSLORA"`). Strict: unknown fields are rejected, apart from
 * PEFT's common fields. Defaults: see README.md (reference: ax-le/TensLoRA training scripts).
 */
export const tensloraConfigSchema = z
  .object({
    peft_type: z.literal('TENSLORA'),
    /**
     * Which updates are aggregated into one tensor (default `qkv_depth`, the construction the
     * paper reports as best; the reference has no default).
     */
    construction: z.enum(CONSTRUCTIONS).default('qkv_depth'),
    /**
     * Tucker ranks, one per mode in `modesOf(construction)` order, each ≤ its mode's size. A single
     * integer r means min(r, size) for every mode (default 4, the reference scripts' default).
     */
    ranks: z.union([rankSchema, z.array(rankSchema).min(1)]).default(4),
    /** Plain multiplier s of the update (default 1, the reference's default). */
    scaling: scaleSchema.default(1),
    /** Modules to adapt (default `["query", "key", "value"]`, the reference's targets). */
    target_modules: targetModulesSchema.default(['query', 'key', 'value']),
    /**
     * Row order of the output for `att` constructions: `contiguous` (default; row = h·(d/H) + j,
     * the heads as the attention code slices them) or `interleaved` (row = j·H + h, the
     * reference's `tl.unfold` order).
     */
    head_layout: z.enum(['contiguous', 'interleaved']).default('contiguous'),
    /**
     * Ranks above a mode's size, as the reference allows (its default `n_components = 4` on the
     * 3-entry qkv mode). `false` (default): an integer rank is clamped to min(r, size) and a list
     * entry above its size is a ConfigError. `true`: ranks are used as given; a factor wider than
     * tall starts with orthonormal rows (torch's `orthogonal_`). Imported reference files that
     * need it set it.
     */
    ranks_above_size: z.boolean().default(false),
    ...peftCommonFields,
  })
  .strict()
  .superRefine((v, ctx) => {
    if (Array.isArray(v.ranks)) {
      const modes = modesOf(v.construction);
      if (v.ranks.length !== modes.length) {
        ctx.addIssue({
          code: z.ZodIssueCode.custom,
          path: ['ranks'],
          message: `construction ${v.construction} has ${modes.length} modes (${modes.join(', ')}), so ranks needs ${modes.length} entries (expected ${modes.length}, found ${v.ranks.length})`,
        });
      }
    }
  });

export type TensloraConfig = z.infer<typeof tensloraConfigSchema>;
