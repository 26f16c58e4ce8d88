/**
 * Convert a LoRA adapter into a tensor-method adapter (TRAC, LoRETTA, LoRTA, TensLoRA) by fitting
 * the method's tensors to the LoRA's updates, without the base model or data:
 *
 *   minimize  Σ_modules ‖ΔW_lora − ΔW_fit‖²_F / Σ_modules ‖ΔW_lora‖²_F
 *
 * evaluated on the factors only (never an m × n matrix). Steps: pick the model shape (a preset
 * with the real head count when the LoRA's base model is known), choose ranks within the budget
 * (each fitter proposes a few candidates; every candidate is initialized from the target's
 * structure and the one with the lowest initial error wins), alternating least squares where the
 * method has closed-form block updates, then L-BFGS (or Adam) with analytic gradients.
 *
 * Reported errors are relative Frobenius norms ‖ΔW_lora − ΔW_fit‖_F / ‖ΔW_lora‖_F over all
 * modules together, the quantity `diffAdapters(…).rel_fro` reports.
 */
import type { Backend } from '../backend/types.js';
import { ConfigError, ShapeMismatchError } from '../errors.js';
import { configForShape, type Adapter, type StorageDtype } from '../io/adapter.js';
import { shapeFromHubId } from '../io/manifest.js';
import { countParams } from '../methods/generic.js';
import { getMethod } from '../methods/registry.js';
import type { BaseAdapterConfig, ParamPlan } from '../methods/types.js';
import { selectModules, type ModelShape } from '../model/shape.js';
import type { TensorMap } from '../tensor.js';
import { lorettaFitter } from './fit-loretta.js';
import { lortaFitter } from './fit-lorta.js';
import { tensloraFitter } from './fit-tenslora.js';
import { tracFitter } from './fit-trac.js';
import type { FitContext, MethodFitter } from './fitter.js';
import { lossFunction, ParamVector, relError2 } from './model.js';
import { adam, lbfgs } from './optim.js';
import { svdTruncation, targetSpectra } from './svd-baseline.js';
import { loraTarget, type Target } from './target.js';

export const CONVERT_TARGETS = ['trac', 'lorta', 'tenslora', 'loretta'] as const;
export type ConvertTarget = (typeof CONVERT_TARGETS)[number];

const FITTERS: Record<ConvertTarget, MethodFitter> = {
  trac: tracFitter,
  loretta: lorettaFitter,
  lorta: lortaFitter,
  tenslora: tensloraFitter,
};

/** transformers.js-style progress report. */
export interface ConvertProgress {
  status: 'prepare' | 'search' | 'init' | 'als' | 'fit' | 'done';
  /** Overall progress in percent, 0…100. */
  progress: number;
  /** Relative error ‖ΔW_lora − ΔW_fit‖_F / ‖ΔW_lora‖_F at this point, when known. */
  rel_error?: number;
  iteration?: number;
  message?: string;
}

export interface ConvertOptions {
  /** Target method: `trac`, `lorta`, `tenslora`, `loretta` (CLI name or peft_type). */
  to: string;
  /** Largest number of trainable parameters of the result. */
  budget?: number;
  /** Budget = floor(LoRA trainable parameters / ratio). */
  ratio?: number;
  /**
   * Fixed adapter_config.json fields of the result (e.g. TensLoRA `construction`, TRAC `variant`,
   * `controller_activation`). With a budget, the rank fields are chosen by the search and must
   * not be given; without one, the config (with the method's defaults) is fitted as is.
   */
  config?: Record<string, unknown>;
  /** Model shape (otherwise: the preset of the LoRA's base model when it matches, else the LoRA's own modules). */
  shape?: ModelShape;
  /** Seed of every random choice (default 0): the same seed gives the same bytes. */
  seed?: number;
  /** Gradient-phase iterations (default 200). */
  iters?: number;
  /** Alternating least-squares sweeps for methods that have them (LoRTA, TensLoRA; default 30). */
  alsSweeps?: number;
  /** Gradient optimizer (default `lbfgs`). */
  optimizer?: 'lbfgs' | 'adam';
  /** Also fit tensors the method keeps frozen during training (TRAC's G2/O2; default true). */
  fitFrozen?: boolean;
  /** TRAC only: init of the shared cores, `joint` (default) or `average` (see fit-trac.ts). */
  tracInit?: 'joint' | 'average';
  /** Storage dtype of the result (default fp32). */
  dtype?: StorageDtype;
  backend?: Backend;
  progress?: (p: ConvertProgress) => void;
}

export interface ConvertCandidate {
  config: Record<string, unknown>;
  params: number;
  init_rel_error: number;
}

export interface ConvertResult {
  adapter: Adapter;
  /** Trainable parameters of the LoRA source. */
  params_before: number;
  /** Trainable parameters of the result. */
  params_after: number;
  /** Stored parameters of the result (trainable + frozen). */
  params_after_stored: number;
  /**
   * Parameters the budget pays for: trainable ones plus frozen ones whose values the fit chose
   * (TRAC's G2/O2 unless fitFrozen is false). This is what is compared with the budget.
   */
  params_fitted: number;
  budget: number | null;
  /** Relative error of the fit (float64, before rounding to the storage dtype). */
  rel_error: number;
  /** Relative error right after initialization (and rank choice). */
  init_rel_error: number;
  /** Best truncated-SVD LoRA with the budget (or with params_after when no budget was given). */
  svd_rel_error: number;
  /** Best truncated-SVD LoRA with params_after_stored parameters (differs for TRAC, whose frozen cores are stored). */
  svd_rel_error_stored: number;
  /** The rank fields chosen (or given). */
  chosen: Record<string, unknown>;
  candidates: ConvertCandidate[];
  iterations: number;
  seconds: number;
}

/** Resolve a target method name; ConfigError naming `to` for anything else. */
export function conversionTarget(to: string): ConvertTarget {
  const lower = to.toLowerCase();
  if ((CONVERT_TARGETS as readonly string[]).includes(lower)) return lower as ConvertTarget;
  throw new ConfigError('unknown conversion target', { field: 'to', expected: CONVERT_TARGETS.join(' | '), found: to });
}

/**
 * The model shape to plan the result with: `explicit` if given (it must contain every LoRA module
 * with the same sizes), else the preset of the LoRA's `base_model_name_or_path` when it contains
 * every module with the same sizes (so head counts are real), else the LoRA's own shape.
 */
export function conversionShape(src: Adapter, explicit?: ModelShape): ModelShape {
  const fits = (shape: ModelShape): string | undefined => {
    const byPath = new Map(shape.modules.map((m) => [m.path, m]));
    for (const m of src.plan.modules) {
      const o = byPath.get(m.path);
      if (!o || o.in !== m.n || o.out !== m.m) return m.path;
    }
    return undefined;
  };
  if (explicit) {
    const bad = fits(explicit);
    if (bad) {
      throw new ShapeMismatchError('the model shape does not contain this LoRA module with the same sizes', {
        field: bad,
        expected: 'a module of the given model with the LoRA’s (in, out)',
        found: 'missing or different',
      });
    }
    return explicit;
  }
  if (src.shape.modelType !== 'unknown') return src.shape;
  const preset = shapeFromHubId(typeof src.config.base_model_name_or_path === 'string' ? src.config.base_model_name_or_path : undefined);
  if (preset && !fits(preset)) return { ...preset, nameOrPath: src.config.base_model_name_or_path ?? preset.nameOrPath };
  return src.shape;
}

/** Config fields carried over from the LoRA (targets, base model, task, heads to save). */
function baseFields(src: Adapter, shape: ModelShape): Record<string, unknown> {
  const c = src.config;
  const paths = src.plan.modules.map((m) => m.path);
  const selected = selectModules(shape, c.target_modules).map((m) => m.path);
  const layers = c.layers_to_transform;
  const sameTargets = layers === undefined || layers === null ? selected.length === paths.length && selected.every((p, i) => p === paths[i]) : false;
  const out: Record<string, unknown> = { target_modules: sameTargets ? c.target_modules : paths };
  for (const k of ['base_model_name_or_path', 'task_type', 'modules_to_save', 'fan_in_fan_out', 'revision'] as const) {
    if (c[k] !== undefined) out[k] = c[k];
  }
  return out;
}

function toTensors(plan: ParamPlan, values: Map<string, Float64Array>): TensorMap {
  const out: TensorMap = new Map();
  for (const p of plan.params) {
    const v = values.get(p.key);
    if (!v) throw new ConfigError('internal: fit produced no value for a tensor', { tensor: p.key });
    out.set(p.key, { shape: [...p.shape], data: Float32Array.from(v) });
  }
  return out;
}

const now = (): number => (typeof performance !== 'undefined' ? performance.now() : Date.now());

/** Fit a tensor-method adapter to a LoRA adapter. See the module comment. */
export async function convertLora(src: Adapter, opts: ConvertOptions): Promise<ConvertResult> {
  const t0 = now();
  const report = opts.progress ?? (() => undefined);
  const to = conversionTarget(opts.to);
  const fitter = FITTERS[to];
  const method = getMethod(to);
  report({ status: 'prepare', progress: 0 });
  const target: Target = await loraTarget(src, opts.backend);
  const shape = conversionShape(src, opts.shape);
  const user = { ...(opts.config ?? {}) };
  delete user.peft_type;
  const ctx: FitContext = {
    target,
    shape,
    seed: opts.seed ?? 0,
    fitFrozen: opts.fitFrozen ?? true,
    base: { ...baseFields(src, shape), ...user },
    memo: new Map(),
  };
  if (opts.tracInit) ctx.tracInit = opts.tracInit;

  let budget: number | null = null;
  if (opts.budget !== undefined && opts.ratio !== undefined) {
    throw new ConfigError('give either a budget or a ratio, not both', { field: 'budget', found: { budget: opts.budget, ratio: opts.ratio } });
  }
  if (opts.budget !== undefined) {
    if (!(Number.isInteger(opts.budget) && opts.budget > 0)) throw new ConfigError('budget must be a positive integer', { field: 'budget', found: opts.budget });
    budget = opts.budget;
  } else if (opts.ratio !== undefined) {
    if (!(opts.ratio > 0)) throw new ConfigError('ratio must be positive', { field: 'ratio', found: opts.ratio });
    budget = Math.floor(target.params / opts.ratio);
    if (budget < 1) throw new ConfigError('ratio leaves no parameters', { field: 'ratio', expected: `≤ ${target.params}`, found: opts.ratio });
  }

  const planFor = (fields: Record<string, unknown>) => configForShape(method, { ...ctx.base, ...fields }, shape);
  const candidates: ConvertCandidate[] = [];
  let best: { config: BaseAdapterConfig; plan: ParamPlan; values: Map<string, Float64Array>; err2: number; fields: Record<string, unknown> } | undefined;

  /** Parameters a budget pays for: trainable ones and any frozen ones the fit sets. */
  const budgetCount = (plan: ParamPlan): number => {
    const fitted = fitter.fitted(ctx, plan);
    return plan.params.reduce((a, p) => a + (p.kind === 'trainable' || fitted.has(p.key) ? p.shape.reduce((x, y) => x * y, 1) : 0), 0);
  };
  const tryCandidate = (fields: Record<string, unknown>) => {
    const { config, plan } = planFor(fields);
    const params = budgetCount(plan);
    if (budget !== null && params > budget) return; // formula drift would show in tests; never exceed
    const { values } = fitter.init(ctx, config as Record<string, unknown>, plan);
    const model = fitter.model(ctx, config as Record<string, unknown>, plan);
    const err2 = relError2(model, target, values);
    candidates.push({ config: fields, params, init_rel_error: Math.sqrt(err2) });
    if (!best || err2 < best.err2) best = { config, plan, values, err2, fields };
  };

  if (budget !== null) {
    const fixed = fitter.rankFields.filter((f) => user[f] !== undefined);
    if (fixed.length > 0) {
      throw new ConfigError('with a budget the conversion chooses the ranks; do not also give them', {
        field: fixed[0],
        expected: `no ${fixed.join(', ')} in the config (or no budget)`,
        found: user[fixed[0]!],
      });
    }
    report({ status: 'search', progress: 2 });
    const cands = fitter.candidates(ctx, budget);
    if (cands.length === 0) {
      throw new ConfigError(`budget too small for any ${method.peftType} configuration`, {
        field: opts.ratio !== undefined ? 'ratio' : 'budget',
        expected: `a budget of at least the smallest ${method.peftType} adapter for these modules`,
        found: budget,
      });
    }
    cands.forEach((c, i) => {
      tryCandidate({ ...fitter.defaults(ctx), ...c.config });
      report({ status: 'search', progress: 2 + (8 * (i + 1)) / cands.length });
    });
    if (!best) {
      throw new ConfigError(`budget too small for any ${method.peftType} configuration`, { field: 'budget', found: budget });
    }
  } else {
    tryCandidate({ ...fitter.defaults(ctx), ...user });
  }
  const chosen = best!;
  report({ status: 'init', progress: 10, rel_error: Math.sqrt(chosen.err2) });

  const cfg = chosen.config as Record<string, unknown>;
  const model = fitter.model(ctx, cfg, chosen.plan);
  const values = chosen.values;
  const sweeps = opts.alsSweeps ?? 30;
  if (fitter.als && sweeps > 0) {
    fitter.als(ctx, cfg, chosen.plan, values, sweeps, (k) => {
      const p: ConvertProgress = { status: 'als', progress: 10 + (30 * k) / sweeps, iteration: k };
      if (opts.progress) p.rel_error = Math.sqrt(relError2(model, target, values));
      report(p);
    });
  }
  const pv = new ParamVector(chosen.plan, values, fitter.fitted(ctx, chosen.plan));
  const theta = pv.pack();
  const iters = opts.iters ?? 200;
  let iterations = 0;
  if (iters > 0 && pv.size > 0) {
    const loss = lossFunction(model, target, pv);
    const before = loss(theta, new Float64Array(theta.length));
    const start = Float64Array.from(theta);
    const onIter = (it: number, l: number) => {
      report({ status: 'fit', progress: 40 + (59 * it) / iters, iteration: it, rel_error: Math.sqrt(Math.max(l, 0)) });
    };
    const res = (opts.optimizer ?? 'lbfgs') === 'adam' ? adam(loss, theta, { iters, onIter }) : lbfgs(loss, theta, { iters, onIter });
    iterations = res.iters;
    if (!(res.loss <= before)) theta.set(start);
    pv.unpack(theta);
  }
  const err2 = relError2(model, target, values);
  const params = toTensors(chosen.plan, values);
  const adapter: Adapter = {
    method,
    config: chosen.config,
    plan: chosen.plan,
    params,
    extras: new Map(src.extras),
    shape,
    dtype: opts.dtype ?? 'fp32',
  };
  const counts = countParams(chosen.plan);
  const spectra = targetSpectra(target);
  const svdBudget = budget ?? budgetCount(chosen.plan);
  const result: ConvertResult = {
    adapter,
    params_before: target.params,
    params_after: counts.trainable,
    params_after_stored: counts.stored,
    params_fitted: budgetCount(chosen.plan),
    budget,
    rel_error: Math.sqrt(err2),
    init_rel_error: Math.sqrt(chosen.err2),
    svd_rel_error: svdTruncation(target, svdBudget, spectra).rel_error,
    svd_rel_error_stored: svdTruncation(target, Math.max(counts.stored, svdBudget), spectra).rel_error,
    chosen: Object.fromEntries(fitter.rankFields.filter((f) => cfg[f] !== undefined).map((f) => [f, cfg[f]])),
    candidates,
    iterations,
    seconds: (now() - t0) / 1000,
  };
  report({ status: 'done', progress: 100, rel_error: result.rel_error });
  return result;
}
