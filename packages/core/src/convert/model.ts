/**
 * The fitting seam between a tensor method and the generic objective. A `FitModel` maps the
 * method's tensors (float64, keyed by their safetensors keys, exactly the target plan's tensors)
 * to every module's universal form (A′, B′, s) and back-propagates ∂/∂A′, ∂/∂B′ to the tensors.
 * The objective is Σ_modules ‖ΔW_target − ΔW_fit‖²_F / Σ ‖ΔW_target‖²_F, evaluated factored.
 */
import type { ParamPlan } from '../methods/types.js';
import type { LossFn } from './optim.js';
import { moduleError, type FitUpdate, type Target } from './target.js';

// The seam itself lives with the methods (each method's `grad.ts`), shared with training.
export type { Getter, GradGetter } from '../methods/differentiable.js';
import type { DifferentiableModel, Getter, GradGetter } from '../methods/differentiable.js';
export type FitModel = DifferentiableModel;

/** Flat parameter vector over the fitted tensors; the others stay at their values. */
export class ParamVector {
  readonly offsets = new Map<string, { off: number; len: number }>();
  readonly size: number;
  constructor(
    readonly plan: ParamPlan,
    readonly values: Map<string, Float64Array>,
    readonly fitted: ReadonlySet<string>,
  ) {
    let off = 0;
    for (const p of plan.params) {
      if (!fitted.has(p.key)) continue;
      const len = p.shape.reduce((a, b) => a * b, 1);
      this.offsets.set(p.key, { off, len });
      off += len;
    }
    this.size = off;
  }

  pack(): Float64Array {
    const theta = new Float64Array(this.size);
    for (const [key, { off }] of this.offsets) theta.set(this.values.get(key)!, off);
    return theta;
  }

  unpack(theta: Float64Array): void {
    for (const [key, { off, len }] of this.offsets) this.values.set(key, Float64Array.from(theta.subarray(off, off + len)));
  }

  getter(theta: Float64Array): Getter {
    return (key) => {
      const o = this.offsets.get(key);
      if (o) return theta.subarray(o.off, o.off + o.len);
      const v = this.values.get(key);
      if (!v) throw new Error(`internal: no value for ${key}`);
      return v;
    };
  }

  gradGetter(grad: Float64Array): GradGetter {
    return (key) => {
      const o = this.offsets.get(key);
      return o ? grad.subarray(o.off, o.off + o.len) : undefined;
    };
  }
}

/** Σ errors² of the fitted updates (plan order) against the target, matched by path. */
export function totalError2(target: Target, plan: ParamPlan, updates: readonly FitUpdate[]): number {
  const idx = new Map(plan.modules.map((m, i) => [m.path, i]));
  let e = 0;
  for (const t of target.modules) e += moduleError(t, updates[idx.get(t.path)!]!, false).err2;
  return e;
}

/** Relative squared error of the model at the current values. */
export function relError2(model: FitModel, target: Target, values: Map<string, Float64Array>): number {
  const get: Getter = (k) => values.get(k)!;
  const { updates } = model.forward(get);
  return target.norm2 > 0 ? Math.max(totalError2(target, model.plan, updates), 0) / target.norm2 : 0;
}

/** The loss function over a ParamVector: relative squared error and its gradient. */
export function lossFunction(model: FitModel, target: Target, pv: ParamVector): LossFn {
  const idx = new Map(model.plan.modules.map((m, i) => [m.path, i]));
  const order = target.modules.map((t) => idx.get(t.path)!);
  const denom = target.norm2 > 0 ? target.norm2 : 1;
  return (theta, grad) => {
    grad.fill(0);
    const get = pv.getter(theta);
    const { updates, cache } = model.forward(get);
    const dA: Float64Array[] = new Array(updates.length);
    const dB: Float64Array[] = new Array(updates.length);
    let e = 0;
    target.modules.forEach((t, i) => {
      const j = order[i]!;
      const r = moduleError(t, updates[j]!, true);
      e += r.err2;
      dA[j] = r.dA!;
      dB[j] = r.dB!;
    });
    for (const d of dA) for (let i = 0; i < d.length; i++) d[i]! /= denom;
    for (const d of dB) for (let i = 0; i < d.length; i++) d[i]! /= denom;
    model.backward(get, cache, dA, dB, pv.gradGetter(grad));
    return e / denom;
  };
}
