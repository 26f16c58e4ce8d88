/**
 * TensLoRA (Marmoret et al. 2025): LoRA updates aggregated into higher-order tensors (over heads,
 * matrix types and/or depth) with a Tucker factorization per tensor. See README.md.
 */
import type { AdapterMethod } from '../types.js';
import { tensloraConfigSchema, type TensloraConfig } from './config.js';
import { tensloraJobs } from './materialize.js';
import { planTenslora } from './plan.js';
import { tensloraImporter } from './import.js';
import { qkvTargets } from './targets.js';

export const tenslora: AdapterMethod<TensloraConfig> = {
  peftType: 'TENSLORA',
  cliName: 'tenslora',
  description: 'TensLoRA (Marmoret et al. 2025): Tucker-factorized updates aggregated over heads, q/k/v types and depth',
  schema: tensloraConfigSchema,
  plan: planTenslora,
  jobs: tensloraJobs,
  importOfficial: tensloraImporter,
  defaultTargets: qkvTargets,
};

export type { TensloraConfig } from './config.js';
export { CONSTRUCTIONS, modesOf, type Construction, type ModeName } from './config.js';
