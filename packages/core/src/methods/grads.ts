/** The built-in methods' differentiable models (one line per method), and the lookup over them and any registered later. */
import { differentiableOf, type DifferentiableMethod, type DifferentiableModel } from './differentiable.js';
import { loraDifferentiable } from './lora/grad.js';
import { lorettaDifferentiable } from './loretta/grad.js';
import { lortaDifferentiable } from './lorta/grad.js';
import { tensloraDifferentiable } from './tenslora/grad.js';
import { tracDifferentiable } from './trac/grad.js';
import { veraDifferentiable } from './vera/grad.js';
import type { ParamPlan } from './types.js';

const BUILT_IN: readonly DifferentiableMethod[] = [tracDifferentiable, loraDifferentiable, veraDifferentiable, lorettaDifferentiable, lortaDifferentiable, tensloraDifferentiable];

/** The differentiable model of a parsed config's method for a plan (ConfigError for a method without one). */
export function differentiableModel(config: Record<string, unknown>, plan: ParamPlan): DifferentiableModel {
  const m = BUILT_IN.find((x) => x.peftType === plan.peftType) ?? differentiableOf(plan.peftType, BUILT_IN.map((x) => x.peftType));
  return m.model(config, plan);
}
