/** Method-independent operations over a ParamPlan: config parsing, init, counts, checks, materialize. */
import type { Backend, ModuleUpdate } from '../backend/types.js';
import { ConfigError, NonFiniteError, ShapeMismatchError } from '../errors.js';
import type { ModelShape } from '../model/shape.js';
import { tensor, type TensorMap } from '../tensor.js';
import { streamFor } from '../util/prng.js';
import type { AdapterMethod, BaseAdapterConfig, InitSpec, ParamCounts, ParamPlan, ParamSpec } from './types.js';

/** Validate a raw adapter_config.json value with the method's schema (defaults filled). */
export function parseMethodConfig<C extends BaseAdapterConfig>(method: AdapterMethod<C>, raw: unknown, file?: string): C {
  const r = method.schema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    if (issue.code === 'unrecognized_keys') {
      // `.strict()` schemas report unknown keys at the object's own path; name the keys instead.
      throw new ConfigError(`unknown ${method.peftType} field`, {
        file,
        field: [...issue.path, issue.keys.join(', ')].join('.'),
        expected: `one of the documented fields (${knownKeys(method.schema).join(', ')})`,
        found: issue.keys,
      });
    }
    const field = issue.path.join('.') || undefined;
    const found =
      field && raw && typeof raw === 'object' ? (issue.path.reduce<any>((o, k) => (o == null ? o : o[k]), raw) ?? 'nothing') : undefined;
    throw new ConfigError(`invalid ${method.peftType} config: ${issue.message}`, { file, field, found });
  }
  return r.data;
}

/** Top-level keys of an object schema, looking through effects (refine/transform) wrappers. */
function knownKeys(schema: unknown): string[] {
  let s = schema as { _def?: { schema?: unknown; innerType?: unknown }; shape?: Record<string, unknown> } | undefined;
  for (let i = 0; i < 8 && s; i++) {
    if (s.shape && typeof s.shape === 'object') return Object.keys(s.shape);
    s = (s._def?.schema ?? s._def?.innerType) as typeof s;
  }
  return [];
}

export function countParams(plan: ParamPlan): ParamCounts {
  let trainable = 0;
  let frozen = 0;
  for (const p of plan.params) {
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (p.kind === 'trainable') trainable += n;
    else frozen += n;
  }
  return { trainable, frozen, stored: trainable + frozen };
}

function fillInit(spec: InitSpec, shape: number[], seed: number, key: string): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  switch (spec.dist) {
    case 'zeros':
      return out;
    case 'ones':
      return out.fill(1);
    case 'const':
      return out.fill(spec.value);
    case 'normal': {
      const g = streamFor(seed, key);
      for (let i = 0; i < n; i++) out[i] = g.normal() * spec.std;
      return out;
    }
    case 'uniform': {
      const g = streamFor(seed, key);
      for (let i = 0; i < n; i++) out[i] = (2 * g.uniform() - 1) * spec.bound;
      return out;
    }
    case 'orthonormal': {
      if (shape.length !== 2) {
        throw new ShapeMismatchError('orthonormal init needs a 2-D [rows, cols] tensor', { tensor: key, found: shape });
      }
      if (shape[0]! < shape[1]!) {
        // Wider than tall (a TensLoRA rank above its mode's size): orthonormal rows, as torch's
        // orthogonal_ gives — the transpose of an orthonormal-columns draw.
        const [rows, cols] = shape as [number, number];
        const t = fillInit(spec, [cols, rows], seed, key);
        for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = t[j * rows + i]!;
        return out;
      }
      const [rows, cols] = shape as [number, number];
      const g = streamFor(seed, key);
      const m = new Float64Array(n);
      for (let i = 0; i < n; i++) m[i] = g.normal();
      // Modified Gram–Schmidt on columns, twice for numerical orthogonality.
      for (let pass = 0; pass < 2; pass++) {
        for (let c = 0; c < cols; c++) {
          for (let p = 0; p < c; p++) {
            let dot = 0;
            for (let r = 0; r < rows; r++) dot += m[r * cols + c]! * m[r * cols + p]!;
            for (let r = 0; r < rows; r++) m[r * cols + c]! -= dot * m[r * cols + p]!;
          }
          let norm = 0;
          for (let r = 0; r < rows; r++) norm += m[r * cols + c]! ** 2;
          norm = Math.sqrt(norm);
          for (let r = 0; r < rows; r++) m[r * cols + c]! /= norm;
        }
      }
      for (let i = 0; i < n; i++) out[i] = m[i]!;
      return out;
    }
  }
}

export interface InitOptions {
  seed?: number;
  /** Fill the zero-initialized tensors with small seeded noise so that ΔW ≠ 0. */
  nonzero?: boolean;
}

/** Initialize every tensor of the plan from its InitSpec (deterministic per (seed, key)). */
export function initParams(plan: ParamPlan, opts: InitOptions = {}): TensorMap {
  const seed = opts.seed ?? 0;
  const params: TensorMap = new Map();
  for (const p of plan.params) {
    const spec: InitSpec = opts.nonzero && p.zeroInit ? { dist: 'normal', std: p.nonzeroStd ?? 0.02 } : p.init;
    params.set(p.key, tensor([...p.shape], fillInit(spec, p.shape, seed, p.key)));
  }
  return params;
}

/** Check that `params` has exactly the plan's tensors with the plan's shapes. */
export function checkParams(plan: ParamPlan, params: TensorMap, file?: string): void {
  for (const p of plan.params) {
    const t = params.get(p.key);
    if (!t) throw new ShapeMismatchError('adapter is missing a tensor', { file, tensor: p.key, expected: p.shape, found: 'nothing' });
    if (t.shape.length !== p.shape.length || t.shape.some((d, i) => d !== p.shape[i])) {
      throw new ShapeMismatchError('tensor has the wrong shape', { file, tensor: p.key, expected: p.shape, found: t.shape });
    }
  }
}

export function specByKey(plan: ParamPlan): Map<string, ParamSpec> {
  return new Map(plan.params.map((p) => [p.key, p]));
}

/** Materialize (A′, B′, s) for every module of an adapter. */
export async function materialize<C extends BaseAdapterConfig>(
  method: AdapterMethod<C>,
  config: C,
  plan: ParamPlan,
  params: TensorMap,
  backend: Backend,
): Promise<ModuleUpdate[]> {
  checkParams(plan, params);
  const updates = await backend.materialize(method.jobs(config, plan, params));
  for (const u of updates) checkUpdateFinite(u);
  return updates;
}

const FLOAT32_MAX = 3.4028234663852886e38;

/** Largest Euclidean norm of the ρ-long rows of a row-major [rows, ρ] matrix (float64), or NaN. */
function maxRowNorm(x: Float32Array, rho: number): number {
  if (!(rho > 0)) return 0;
  let best = 0;
  for (let o = 0; o < x.length; o += rho) {
    let ss = 0;
    for (let k = 0; k < rho; k++) ss += x[o + k]! * x[o + k]!;
    if (ss !== ss) return NaN;
    if (ss > best * best) best = Math.sqrt(ss);
  }
  return best;
}

/**
 * Finite stored values can overflow once multiplied (TT/CP cores, a 1e20 factor): an update must
 * be finite, and every entry of ΔW = s·B′A′ᵀ representable in float32, which Cauchy–Schwarz
 * bounds by |s|·max‖B′ᵢ‖·max‖A′ⱼ‖ — checked in O(size), without forming ΔW.
 */
export function checkUpdateFinite(u: ModuleUpdate): void {
  const bound = Math.abs(u.s) * maxRowNorm(u.A, u.rho) * maxRowNorm(u.B, u.rho);
  if (!(bound <= FLOAT32_MAX)) {
    throw new NonFiniteError('materialized update is not finite in float32', {
      field: u.path,
      expected: `|s|·max‖B′ row‖·max‖A′ row‖ ≤ ${FLOAT32_MAX.toExponential(3)}`,
      found: Number.isNaN(bound) ? 'NaN/Inf in A′, B′ or s' : bound.toExponential(3),
    });
  }
}

/** Plan with the model shape (convenience). */
export function planFor<C extends BaseAdapterConfig>(method: AdapterMethod<C>, config: C, shape: ModelShape): ParamPlan {
  return method.plan(config, shape);
}
