/**
 * LoRETTA-rep (Yang et al. 2024): LoRA whose two factor matrices are each stored as a tensor train
 * with small internal rank. See README.md and docs/methods.md (repository root) (LoRETTA-rep).
 */
import type { AdapterMethod } from '../types.js';
import { lorettaConfigSchema, type LorettaConfig } from './config.js';
import { lorettaJobs } from './materialize.js';
import { planLoretta } from './plan.js';
import { lorettaImporter } from './import.js';
import { lorettaDimDefaults } from './defaults.js';

export type { LorettaConfig } from './config.js';
export { lorettaConfigSchema, lorettaConfigFields, REFERENCE_TENSOR_SHAPES, defaultLorettaShapes } from './config.js';

export const loretta: AdapterMethod<LorettaConfig> = {
  peftType: 'LORETTA',
  cliName: 'loretta',
  description: 'LoRETTA-rep: LoRA factors A and B each reparameterized as a small tensor train',
  schema: lorettaConfigSchema,
  plan: planLoretta,
  jobs: lorettaJobs,
  importOfficial: lorettaImporter,
  dimDefaults: lorettaDimDefaults,
};
