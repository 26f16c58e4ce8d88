/**
 * The differentiable side of a method: its tensors (float64, by safetensors key) → every module's
 * universal form (A′ [n, ρ], B′ [m, ρ], s), and back-propagation of ∂/∂A′, ∂/∂B′ to the tensors.
 * `convert` fits these models to a LoRA; the trainer (`@tensorpeft/autodiff`) chains them after
 * the ONNX training graph's ∂L/∂A, ∂L/∂B. One `grad.ts` per method folder; `grads.ts` registers them.
 */
import { ConfigError } from '../errors.js';
import type { ParamPlan } from './types.js';

/** Read access to the current value of a tensor. */
export type Getter = (key: string) => Float64Array;
/** Gradient accumulator of a tensor, or undefined when the tensor is held fixed. */
export type GradGetter = (key: string) => Float64Array | undefined;

/** One module's universal form in float64. */
export interface UniversalUpdate {
  /** `[n, ρ]`. */
  A: Float64Array;
  /** `[m, ρ]`. */
  B: Float64Array;
  s: number;
  rho: number;
}

export interface DifferentiableModel {
  plan: ParamPlan;
  /** Universal form of every planned module (in `plan.modules` order). */
  forward(get: Getter): { updates: UniversalUpdate[]; cache: unknown };
  /** Accumulate into `grad(key)` the gradient of the loss given ∂/∂A′ and ∂/∂B′ per module. */
  backward(get: Getter, cache: unknown, dA: Float64Array[], dB: Float64Array[], grad: GradGetter): void;
}

/** A method's differentiable model, keyed by `peft_type`. */
export interface DifferentiableMethod {
  peftType: string;
  model(config: Record<string, unknown>, plan: ParamPlan): DifferentiableModel;
}

const byType = new Map<string, DifferentiableMethod>();

export function registerDifferentiable(m: DifferentiableMethod): void {
  byType.set(m.peftType, m);
}

/** A registered differentiable method (the built-in ones are looked up in `grads.ts`). */
export function differentiableOf(peftType: string, builtIn: readonly string[] = []): DifferentiableMethod {
  const m = byType.get(peftType);
  if (!m) throw new ConfigError('method has no differentiable model', { field: 'peft_type', expected: [...builtIn, ...byType.keys()].join(' | '), found: peftType });
  return m;
}

/** dst += src (no-op when dst is undefined: a fixed tensor). */
export function addInto(dst: Float64Array | undefined, src: ArrayLike<number>): void {
  if (!dst) return;
  for (let i = 0; i < dst.length; i++) dst[i]! += src[i]!;
}
