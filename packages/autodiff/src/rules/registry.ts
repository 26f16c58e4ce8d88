/** Gradient rules by op type (and domain): every family's rules registered once. */
import { activationRules } from './activations.js';
import { arithmeticRules } from './arithmetic.js';
import { gatherRules } from './gather.js';
import { linearRules } from './linear.js';
import { normalizationRules } from './normalization.js';
import { reduceRules } from './reduce.js';
import { shapeRules } from './shape.js';
import { slicingRules } from './slicing.js';
import { softmaxRules } from './softmax.js';
import type { GradRule } from './types.js';

const RULES = new Map<string, GradRule>();

function key(op: string, domain = ''): string {
  return `${domain === 'ai.onnx' ? '' : domain}::${op}`;
}

/** Register a rule (a later registration for the same op replaces the earlier one). */
export function registerGradient(rule: GradRule): void {
  RULES.set(key(rule.op, rule.domain), rule);
}

export function gradientRule(op: string, domain = ''): GradRule | undefined {
  return RULES.get(key(op, domain));
}

/** Op types with a rule (default domain), for docs and error messages. */
export function gradientOps(): string[] {
  return [...RULES.values()].map((r) => (r.domain ? `${r.domain}.${r.op}` : r.op)).sort();
}

for (const r of [...arithmeticRules, ...activationRules, ...softmaxRules, ...normalizationRules, ...reduceRules, ...shapeRules, ...slicingRules, ...gatherRules, ...linearRules]) registerGradient(r);
