/**
 * Finite-difference check of one gradient rule: a small graph y = op(x…) with loss L = Σ w ⊙ y
 * (w a random fixed weighting, so every output element matters), differentiated by
 * `buildGradientGraph`, against central differences of L evaluated by onnxruntime-node in float32.
 */
import * as ort from 'onnxruntime-node';
import { Prng } from '@tensorpeft/core';
import { buildGradientGraph } from '../gradient.js';
import { A, type NodeProto, onnx, type TensorProto } from '../onnx.js';
import { probeShapes, type OrtLike, type OrtTensorLike } from '../probe.js';

export const ORT = ort as unknown as OrtLike;

export interface CheckInput {
  dims: number[];
  /** float (default) or int64 (indices, conditions as bool). */
  dtype?: 'float32' | 'int64' | 'bool';
  /** Values (default: uniform in (−1, 1), or `gen`). */
  data?: number[];
  /** Differentiate with respect to this input. */
  trainable?: boolean;
  /** Feed as an initializer instead of an input (constants such as Slice starts). */
  constant?: boolean;
}

export interface CheckResult {
  /** Directional derivatives: analytic (gradient · v) and central difference, per random direction. */
  pairs: Array<{ analytic: number; fd: number }>;
  /** Σ |w ⊙ y|: the scale of L, which bounds its float32 rounding. */
  scale: number;
  grads: Map<string, Float32Array>;
}

function tensorProto(name: string, c: CheckInput): TensorProto {
  const d = c.data ?? [];
  if (c.dtype === 'int64') return { name, dataType: onnx.TensorProto.DataType.INT64, dims: c.dims, int64Data: d };
  return { name, dataType: onnx.TensorProto.DataType.FLOAT, dims: c.dims, floatData: d };
}

function feed(c: CheckInput, data: number[]): OrtTensorLike {
  if (c.dtype === 'int64') return new ORT.Tensor('int64', BigInt64Array.from(data.map((v) => BigInt(v))), c.dims);
  if (c.dtype === 'bool') return new ORT.Tensor('bool', Uint8Array.from(data), c.dims);
  return new ORT.Tensor('float32', Float32Array.from(data), c.dims);
}

const DTYPE = { float32: 1, int64: 7, bool: 9 } as const;

function model(nodes: NodeProto[], inputs: Record<string, CheckInput>, outputs: string[], extraInputs: Array<[string, number]> = []): onnxProto {
  const inits: TensorProto[] = [];
  const vis: Array<{ name: string; type: { tensorType: { elemType: number } } }> = [];
  for (const [name, c] of Object.entries(inputs)) {
    if (c.constant) inits.push(tensorProto(name, c));
    else vis.push({ name, type: { tensorType: { elemType: DTYPE[c.dtype ?? 'float32'] } } });
  }
  for (const [name, t] of extraInputs) vis.push({ name, type: { tensorType: { elemType: t } } });
  return onnx.ModelProto.fromObject({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'check', node: nodes, initializer: inits, input: vis, output: outputs.map((name) => ({ name, type: { tensorType: { elemType: 1 } } })) },
  });
}
type onnxProto = ReturnType<typeof onnx.ModelProto.fromObject>;

async function run(bytes: Uint8Array, feeds: Record<string, OrtTensorLike>, names: string[]): Promise<Float32Array[]> {
  const s = await ORT.InferenceSession.create(bytes, { graphOptimizationLevel: 'disabled' });
  try {
    const r = await s.run(feeds);
    return names.map((n) => Float32Array.from(r[n]!.data as Float32Array));
  } finally {
    await s.release?.();
  }
}

/**
 * Check the gradient of `nodes` (output `y`) with respect to the trainable inputs, along
 * `directions` random unit directions. Returns the pairs; the caller asserts the tolerance.
 */
export async function checkGradient(nodes: NodeProto[], inputs: Record<string, CheckInput>, y: string, opts: { seed: number; directions?: number; h?: number }): Promise<CheckResult> {
  const rng = new Prng(opts.seed, 'fd-check');
  const values: Record<string, number[]> = {};
  for (const [name, c] of Object.entries(inputs)) {
    const n = c.dims.reduce((a, b) => a * b, 1);
    values[name] = c.data ?? Array.from({ length: n }, () => 2 * rng.uniform() - 1);
    c.data = values[name];
  }
  const feedsAt = (over: Record<string, number[]> = {}): Record<string, OrtTensorLike> => {
    const f: Record<string, OrtTensorLike> = {};
    for (const [name, c] of Object.entries(inputs)) if (!c.constant) f[name] = feed(c, over[name] ?? values[name]!);
    return f;
  };
  // y's dims, then the weighted loss L = Σ w ⊙ y.
  const [y0] = await run(onnx.ModelProto.encode(model(nodes, inputs, [y])).finish(), feedsAt(), [y]);
  const probe0 = await probeShapes(model(nodes, inputs, [y]), feedsAt(), ORT);
  const yDims = probe0.get(y)!.dims;
  const w = Array.from({ length: y0!.length }, () => 2 * rng.uniform() - 1);
  const lossNodes: NodeProto[] = [
    ...nodes,
    { name: 'loss/Mul', opType: 'Mul', input: [y, 'loss.w'], output: ['loss.wy'] },
    { name: 'loss/ReduceSum', opType: 'ReduceSum', input: ['loss.wy'], output: ['loss'], attribute: [A.int('keepdims', 0)] },
  ];
  const wInput: CheckInput = { dims: yDims, data: w, constant: true };
  const full = { ...inputs, 'loss.w': wInput };
  const lossModel = model(lossNodes, full, ['loss']);
  const shapes = await probeShapes(lossModel, feedsAt(), ORT);
  const trainable = Object.entries(inputs).filter(([, c]) => c.trainable).map(([n]) => n);
  const gg = buildGradientGraph(lossModel, { loss: 'loss', wrt: trainable, shapes });
  const gradNames = trainable.map((t) => gg.grads.get(t)!);
  const outs = await run(gg.bytes, feedsAt(), gradNames);
  const grads = new Map(trainable.map((t, i) => [t, outs[i]!]));
  const lossBytes = onnx.ModelProto.encode(lossModel).finish();
  const scale = y0!.reduce((a, v, i) => a + Math.abs(v * w[i]!), 0);
  const h = opts.h ?? 1e-2;
  const pairs: CheckResult['pairs'] = [];
  for (let d = 0; d < (opts.directions ?? 2); d++) {
    const dir: Record<string, number[]> = {};
    let norm = 0;
    for (const t of trainable) {
      dir[t] = values[t]!.map(() => rng.normal());
      norm += dir[t]!.reduce((a, v) => a + v * v, 0);
    }
    norm = Math.sqrt(norm);
    let analytic = 0;
    const plus: Record<string, number[]> = {};
    const minus: Record<string, number[]> = {};
    for (const t of trainable) {
      const v = dir[t]!.map((x) => x / norm);
      const g = grads.get(t)!;
      v.forEach((x, i) => (analytic += x * g[i]!));
      plus[t] = values[t]!.map((x, i) => x + h * v[i]!);
      minus[t] = values[t]!.map((x, i) => x - h * v[i]!);
    }
    const [lp] = await run(lossBytes, feedsAt(plus), ['loss']);
    const [lm] = await run(lossBytes, feedsAt(minus), ['loss']);
    pairs.push({ analytic, fd: (lp![0]! - lm![0]!) / (2 * h) });
  }
  return { pairs, scale, grads };
}

/**
 * Tolerance of a directional derivative (unit direction, step h = 1e-2, inputs O(1)):
 * - rounding: L is a float32 sum of n ≤ ~200 products, so its error is ≲ n·2⁻²⁴·Σ|w⊙y| ≈ 1e-5·scale;
 *   divided by 2h that is ≤ 5e-4·scale (the bound below takes 1e-3·scale);
 * - truncation: central differences err by h²/6·|L‴| ≈ 2e-5·|L‴|, well inside 1e-2·|fd| + 1e-4 for
 *   the smooth ops here with O(1) inputs;
 * - the analytic side is float32 too (≲ 1e-6 relative).
 * A wrong rule (sign, factor, transposition, missed broadcast sum) is off by O(|fd|) and fails.
 */
export function mismatch(r: CheckResult): Array<{ analytic: number; fd: number; allowed: number }> {
  const bad: Array<{ analytic: number; fd: number; allowed: number }> = [];
  for (const p of r.pairs) {
    const allowed = 1e-3 * r.scale + 1e-2 * Math.abs(p.fd) + 1e-4;
    if (!(Math.abs(p.analytic - p.fd) <= allowed)) bad.push({ ...p, allowed });
  }
  return bad;
}
