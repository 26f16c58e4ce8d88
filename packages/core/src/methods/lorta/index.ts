/**
 * LoRTA (Hounie et al. 2024): one 5-mode CP decomposition of all attention updates over
 * (input, output-within-head, head, layer, matrix type). See README.md.
 */
import type { AdapterMethod } from '../types.js';
import { lortaConfigSchema, type LortaConfig } from './config.js';
import { lortaJobs } from './materialize.js';
import { lortaDefaultTargets, planLorta } from './plan.js';
import { lortaImporter } from './import.js';
import { exportLortaOfficial } from './export-official.js';

export const lorta: AdapterMethod<LortaConfig> = {
  peftType: 'LORTA',
  cliName: 'lorta',
  description: 'LoRTA (Hounie et al. 2024): 5-mode CP over input, head output, heads, layers and matrix types',
  schema: lortaConfigSchema,
  plan: planLorta,
  jobs: lortaJobs,
  importOfficial: { ...lortaImporter, exportFiles: exportLortaOfficial },
  defaultTargets: lortaDefaultTargets,
};

export type { LortaConfig } from './config.js';
