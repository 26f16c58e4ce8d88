/**
 * VeRA (Kopiczko et al. 2024), file-compatible with HF PEFT (`peft_type: "VERA"`): shared frozen
 * random projections `vera_A [r, n_max]`, `vera_B [m_max, r]` and per-module trainable scaling
 * vectors `vera_lambda_b [m]` (init 0) and `vera_lambda_d [r]` (init `d_initial`). See README.md.
 */
import type { AdapterMethod } from '../types.js';
import { veraConfigSchema, type VeraConfig } from './config.js';
import { veraJobs } from './materialize.js';
import { planVera } from './plan.js';

export const vera: AdapterMethod<VeraConfig> = {
  peftType: 'VERA',
  cliName: 'vera',
  description: 'VeRA (Kopiczko et al. 2024): shared frozen random projections + per-module scaling vectors, HF PEFT compatible',
  schema: veraConfigSchema,
  plan: planVera,
  jobs: veraJobs,
};

export type { VeraConfig } from './config.js';
