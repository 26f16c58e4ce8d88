/**
 * TRAC (tensor-train across-layer compression, ICLR 2026): each LoRA factor is a 3-core tensor
 * train whose middle core is frozen and shared per matrix type, whose last core is trainable and
 * shared per matrix type (gated per module by two controller vectors), and whose first core is
 * per module. See README.md and docs/methods.md (repository root) (TRAC).
 */
import type { AdapterMethod } from '../types.js';
import { tracConfigSchema, type TracConfig } from './config.js';
import { tracJobs } from './materialize.js';
import { planTrac } from './plan.js';
import { tracImporter } from './import.js';
import { exportTracOfficial } from './export-official.js';
import { tracDimDefaults } from './defaults.js';

export type { TracConfig } from './config.js';
export { tracConfigSchema, tracConfigFields, TRAC_VARIANTS, TRAC_ACTIVATIONS, TRAC_INITS, DEFAULT_TRAC_TENSOR_SHAPE } from './config.js';

export const trac: AdapterMethod<TracConfig> = {
  peftType: 'TRAC',
  cliName: 'trac',
  description: 'TRAC: LoRA factors as tensor trains with per-type shared cores and per-module controllers',
  schema: tracConfigSchema,
  plan: planTrac,
  jobs: tracJobs,
  importOfficial: { ...tracImporter, exportFiles: exportTracOfficial },
  dimDefaults: tracDimDefaults,
};
