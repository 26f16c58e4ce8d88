/**
 * What a target method contributes to a conversion: which rank configurations fit a budget, how
 * to initialize its tensors from the target's structure, its differentiable model, and
 * (optionally) method-specific alternating least-squares sweeps.
 */
import { maxOf } from '../util/reduce.js';
import type { ModelShape } from '../model/shape.js';
import type { ParamPlan } from '../methods/types.js';
import type { FitModel } from './model.js';
import type { Target } from './target.js';

export interface FitContext {
  target: Target;
  shape: ModelShape;
  seed: number;
  /**
   * Fit the method's frozen tensors too (TRAC's shared G2/O2). They are stored in the file, so a
   * conversion may choose their values; false keeps them at the method's seeded random init.
   */
  fitFrozen: boolean;
  /** Fields every candidate config starts from (targets, base model, task, user overrides). */
  base: Record<string, unknown>;
  /** Memo of candidate-independent intermediate results (factor SVDs, first TT-SVD steps). */
  memo: Map<string, unknown>;
  /** TRAC init of the shared cores: `joint` (stacked TT-SVD, default) or `average` (per-module TT-SVDs averaged). */
  tracInit?: 'joint' | 'average';
}

export interface Candidate {
  /** The rank fields this candidate sets (merged over ctx.base). */
  config: Record<string, unknown>;
  /** Trainable parameters (formula; checked against the real plan). */
  params: number;
  /** The fitter's own cheap estimate of the relative squared error, used to shortlist. */
  proxy?: number;
}

export interface InitResult {
  values: Map<string, Float64Array>;
}

export interface MethodFitter {
  /** Method CLI name (`trac`, `loretta`, `lorta`, `tenslora`). */
  readonly name: string;
  /** Config fields the budget search chooses (a user config must not fix them when a budget is given). */
  readonly rankFields: readonly string[];
  /** Fields the conversion sets besides the ranks when the user does not (r, lora_alpha, …). */
  defaults(ctx: FitContext): Record<string, unknown>;
  /**
   * Rank configurations whose trainable count is ≤ budget, best first by the fitter's proxy (a
   * short list: the caller initializes each and keeps the lowest error).
   */
  candidates(ctx: FitContext, budget: number): Candidate[];
  /** Initial values of every plan tensor (float64), from the target's structure. */
  init(ctx: FitContext, config: Record<string, unknown>, plan: ParamPlan): InitResult;
  model(ctx: FitContext, config: Record<string, unknown>, plan: ParamPlan): FitModel;
  /** Keys the optimizers may change. */
  fitted(ctx: FitContext, plan: ParamPlan): Set<string>;
  /** Alternating least-squares sweeps (in place), when the method has closed-form block updates. */
  als?(ctx: FitContext, config: Record<string, unknown>, plan: ParamPlan, values: Map<string, Float64Array>, sweeps: number, onSweep?: (k: number) => void): void;
}

/** A balanced factorization d = a·b·c (a ≤ b ≤ c, smallest largest factor, then largest smallest). */
export function factor3(d: number): [number, number, number] {
  let best: [number, number, number] = [1, 1, d];
  for (let a = 1; a * a * a <= d; a++) {
    if (d % a) continue;
    const rest = d / a;
    for (let b = a; b * b <= rest; b++) {
      if (rest % b) continue;
      const c = rest / b;
      const cand: [number, number, number] = [a, b, c];
      if (c < best[2] || (c === best[2] && a > best[0])) best = cand;
    }
  }
  return best;
}

/** The target modules' distinct input / output dimensions. */
export function dims(target: Target): { ins: number[]; outs: number[] } {
  return {
    ins: [...new Set(target.modules.map((m) => m.n))],
    outs: [...new Set(target.modules.map((m) => m.m))],
  };
}

/** The (single) LoRA rank and scale of the source: max rank over modules, scale of the first. */
export function sourceRank(target: Target): { r: number; s: number } {
  return { r: maxOf(target.modules.map((m) => m.r)), s: target.modules[0]?.s ?? 1 };
}

/** One choice of a group in a multiple-choice knapsack. */
export interface Choice<T> {
  cost: number;
  err: number;
  pick: T;
}

/** The Pareto front of choices: increasing cost, strictly decreasing error. */
export function paretoFront<T>(choices: readonly Choice<T>[]): Choice<T>[] {
  const sorted = [...choices].sort((a, b) => a.cost - b.cost || a.err - b.err);
  const out: Choice<T>[] = [];
  for (const c of sorted) if (out.length === 0 || c.err < out[out.length - 1]!.err) out.push(c);
  return out;
}

/**
 * Exact multiple-choice knapsack over Pareto fronts: one choice per group, total cost ≤ budget,
 * minimizing the summed error (fronts are merged pairwise and pruned to their Pareto fronts).
 * Returns the combined front (best within budget = its last entry), empty when nothing fits.
 */
export function combineChoices<T>(groups: readonly (readonly Choice<T>[])[], budget: number): Choice<T[]>[] {
  let cur: Choice<T[]>[] = [{ cost: 0, err: 0, pick: [] }];
  for (const g of groups) {
    const front = paretoFront(g);
    const next: Choice<T[]>[] = [];
    for (const a of cur) for (const b of front) if (a.cost + b.cost <= budget) next.push({ cost: a.cost + b.cost, err: a.err + b.err, pick: [...a.pick, b.pick] });
    cur = paretoFront(next);
    if (cur.length === 0) return [];
  }
  return cur;
}

/** 1…max, dense at small values and geometric-ish beyond (keeps rank tables small). */
export function rankLadder(max: number): number[] {
  const out: number[] = [];
  for (let q = 1; q <= max; ) {
    out.push(q);
    q += q < 12 ? 1 : Math.max(2, Math.round(q / 6));
  }
  if (out[out.length - 1] !== max && max >= 1) out.push(max);
  return out;
}

/** Memoize `make()` under `key` in ctx.memo. */
export function memo<T>(ctx: FitContext, key: string, make: () => T): T {
  if (ctx.memo.has(key)) return ctx.memo.get(key) as T;
  const v = make();
  ctx.memo.set(key, v);
  return v;
}
