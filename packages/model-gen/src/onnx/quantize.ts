/**
 * q8 variant of a graph, the way transformers.js' `quantize.py` (onnxruntime's `ONNXQuantizer` in
 * IntegerOps mode, dynamic, `MatMulConstBOnly`) produces `model_quantized.onnx`:
 *
 * - every `MatMul` whose B is a float initializer becomes
 *   `DynamicQuantizeLinear(A)` → `MatMulInteger` → `Cast` → `Mul(scales)`, named like onnxruntime
 *   does (`<node>_quant`, `<A>_QuantizeLinear`, `<W>_quantized`, `<W>_scale`, `<W>_zero_point`);
 *   the final `Mul` writes the MatMul's original output name, so downstream nodes are unchanged.
 *   Weights are signed int8, symmetric, per output column, reduced range ([-64, 64]).
 * - every `Gather` from a float initializer (embedding tables) gathers from a uint8 copy
 *   (asymmetric, per tensor) and is followed by `DequantizeLinear`.
 * - `Gemm` (classifier heads, GPT-2 Conv1D), `Conv` and activation × activation MatMuls stay fp32,
 *   as in onnxruntime's dynamic quantization (`IntegerOpsRegistry` has no Gemm entry).
 */
import type { Graph, GraphNode, TensorData } from './graph.js';

/** numpy's round (half to even), as onnxruntime's quantizer uses. */
function roundEven(x: number): number {
  const r = Math.round(x); // ties go up: r − x = 0.5 exactly on a tie
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** Symmetric int8 per-column quantization of a [K, N] matrix with reduced range. */
export function quantizeWeightPerColumn(w: TensorData): { q: Int8Array; scale: Float32Array; zeroPoint: Int8Array } {
  const [K, N] = w.dims as [number, number];
  const d = w.data as Float32Array;
  const qmax = 64; // reduce_range: 7 bits, symmetric [-64, 64]
  const absMax = new Float32Array(N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const a = Math.abs(d[k * N + n]!);
      if (a > absMax[n]!) absMax[n] = a;
    }
  }
  const scale = new Float32Array(N);
  // onnxruntime: scale = (rmax − rmin) / (qmax − qmin) with rmin = −rmax; 1.0 for an all-zero column.
  for (let n = 0; n < N; n++) scale[n] = absMax[n] === 0 ? 1 : Math.fround((2 * absMax[n]!) / (2 * qmax));
  const q = new Int8Array(K * N);
  for (let k = 0; k < K; k++) {
    for (let n = 0; n < N; n++) {
      const v = roundEven(d[k * N + n]! / scale[n]!);
      q[k * N + n] = v > qmax ? qmax : v < -qmax ? -qmax : v;
    }
  }
  return { q, scale, zeroPoint: new Int8Array(N) };
}

/** How `quantizeDynamic` quantizes MatMul weights. */
export interface DynamicQuantOptions {
  /** `int8` (QInt8: symmetric) or `uint8` (QUInt8: asymmetric, as onnxruntime makes unsigned weights). */
  weightType: 'int8' | 'uint8';
  /** One scale (and zero point) per output column, or one per tensor. */
  perChannel: boolean;
  /** 7-bit range ([−64, 64] / [0, 127]). */
  reduceRange: boolean;
}

/**
 * `model_quantized.onnx` (q8) as generated here: int8, per column, reduced range. transformers.js'
 * `int8` and `uint8` modes use its script's defaults instead: per tensor, full range.
 */
export const Q8_OPTIONS: DynamicQuantOptions = { weightType: 'int8', perChannel: true, reduceRange: true };
export const INT8_OPTIONS: DynamicQuantOptions = { weightType: 'int8', perChannel: false, reduceRange: false };
export const UINT8_OPTIONS: DynamicQuantOptions = { weightType: 'uint8', perChannel: false, reduceRange: false };

/**
 * onnxruntime's `quantize_data` for a [K, N] weight: per column or per tensor; symmetric int8 has
 * qmin = −qmax (scale = 2·absmax / (qmax − qmin), zero point 0), asymmetric uint8 widens [min, max]
 * to include 0 (scale = (max − min) / (qmax − qmin), zero point round(qmin − min / scale)); values
 * round half to even and are clamped.
 */
export function quantizeWeight(w: TensorData, o: DynamicQuantOptions): { q: Int8Array | Uint8Array; scale: Float32Array; zeroPoint: Int8Array | Uint8Array } {
  if (o.weightType === 'int8' && o.perChannel && o.reduceRange) return quantizeWeightPerColumn(w);
  const [K, N] = w.dims as [number, number];
  const d = w.data as Float32Array;
  const signed = o.weightType === 'int8';
  const [qmin, qmax] = signed ? (o.reduceRange ? [-64, 64] : [-127, 127]) : o.reduceRange ? [0, 127] : [0, 255];
  const groups = o.perChannel ? N : 1;
  const scale = new Float32Array(groups);
  const zp = new Float64Array(groups);
  for (let gi = 0; gi < groups; gi++) {
    let lo = 0;
    let hi = 0;
    for (let k = 0; k < K; k++)
      for (let n = o.perChannel ? gi : 0; n < (o.perChannel ? gi + 1 : N); n++) {
        const v = d[k * N + n]!;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
    if (signed) {
      const a = Math.max(-lo, hi);
      lo = -a;
      hi = a;
    }
    const s = hi === lo ? 1 : Math.fround((hi - lo) / (qmax - qmin));
    scale[gi] = s;
    zp[gi] = signed ? 0 : roundEven(qmin - lo / s);
  }
  const q = signed ? new Int8Array(K * N) : new Uint8Array(K * N);
  for (let k = 0; k < K; k++)
    for (let n = 0; n < N; n++) {
      const gi = o.perChannel ? n : 0;
      const v = roundEven(d[k * N + n]! / scale[gi]!) + zp[gi]!;
      q[k * N + n] = Math.min(qmax, Math.max(qmin, v));
    }
  return { q, scale, zeroPoint: signed ? Int8Array.from(zp) : Uint8Array.from(zp) };
}

/** Asymmetric uint8 per-tensor quantization (activation type), for embedding tables. */
export function quantizeUint8(t: TensorData): { q: Uint8Array; scale: number; zeroPoint: number } {
  const d = t.data as Float32Array;
  let lo = 0;
  let hi = 0;
  for (const v of d) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const scale = hi === lo ? 1 : Math.fround((hi - lo) / 255);
  const zeroPoint = Math.max(0, Math.min(255, roundEven(-lo / scale)));
  const q = new Uint8Array(d.length);
  for (let i = 0; i < d.length; i++) q[i] = Math.max(0, Math.min(255, roundEven(d[i]! / scale) + zeroPoint));
  return { q, scale, zeroPoint };
}

/** Return a new graph: the q8 variant of `g` (`g` is not modified; unchanged tensors are shared). */
export function quantizeDynamic(g: Graph, opts: DynamicQuantOptions = Q8_OPTIONS): Graph {
  const inits = new Map(g.initializers);
  const isFloatInit = (name: string): boolean => inits.get(name)?.dtype === 'float32';
  const nodes: GraphNode[] = [];
  const dynQuantized = new Set<string>();
  const replaced = new Set<string>();
  const newInits = new Map<string, Array<[string, TensorData]>>();

  for (const n of g.nodes) {
    if (n.op === 'MatMul' && isFloatInit(n.inputs[1]!) && inits.get(n.inputs[1]!)!.dims.length === 2 && !isFloatInit(n.inputs[0]!)) {
      const a = n.inputs[0]!;
      const w = n.inputs[1]!;
      const out = n.outputs[0]!;
      if (!dynQuantized.has(a)) {
        dynQuantized.add(a);
        nodes.push({ op: 'DynamicQuantizeLinear', name: `${a}_QuantizeLinear`, inputs: [a], outputs: [`${a}_quantized`, `${a}_scale`, `${a}_zero_point`], attrs: {} });
      }
      if (!replaced.has(w)) {
        replaced.add(w);
        const { q, scale, zeroPoint } = quantizeWeight(inits.get(w)!, opts);
        const dims = inits.get(w)!.dims;
        // Per tensor: scalar scale and zero point, as onnxruntime writes them.
        const qd = opts.perChannel ? [dims[1]!] : [];
        newInits.set(w, [
          [`${w}_quantized`, { dtype: opts.weightType, dims: [...dims], data: q }],
          [`${w}_scale`, { dtype: 'float32', dims: qd, data: scale }],
          [`${w}_zero_point`, { dtype: opts.weightType, dims: qd, data: zeroPoint }],
        ]);
      }
      const qName = `${n.name}_quant`;
      const mmOut = `${out}_output_quantized`;
      nodes.push({ op: 'MatMulInteger', name: qName, inputs: [`${a}_quantized`, `${w}_quantized`, `${a}_zero_point`, `${w}_zero_point`], outputs: [mmOut], attrs: {} });
      nodes.push({ op: 'Cast', name: `${mmOut}_cast`, inputs: [mmOut], outputs: [`${mmOut}_cast_output`], attrs: { to: 1 } });
      nodes.push({ op: 'Mul', name: `${qName}_scales_mul`, inputs: [`${a}_scale`, `${w}_scale`], outputs: [`${qName}_scales_mul:0`], attrs: {} });
      nodes.push({ op: 'Mul', name: `${qName}_output_scale_mul`, inputs: [`${mmOut}_cast_output`, `${qName}_scales_mul:0`], outputs: [out], attrs: {} });
      continue;
    }
    if (n.op === 'Gather' && isFloatInit(n.inputs[0]!) && (n.attrs['axis'] ?? 0) === 0) {
      const w = n.inputs[0]!;
      const out = n.outputs[0]!;
      if (!replaced.has(w)) {
        replaced.add(w);
        const { q, scale, zeroPoint } = quantizeUint8(inits.get(w)!);
        newInits.set(w, [
          [`${w}_quantized`, { dtype: 'uint8', dims: [...inits.get(w)!.dims], data: q }],
          [`${w}_scale`, { dtype: 'float32', dims: [], data: Float32Array.of(scale) }],
          [`${w}_zero_point`, { dtype: 'uint8', dims: [], data: Uint8Array.of(zeroPoint) }],
        ]);
      }
      nodes.push({ ...n, name: `${n.name}_quant`, inputs: [`${w}_quantized`, ...n.inputs.slice(1)], outputs: [`${out}_quantized`] });
      nodes.push({ op: 'DequantizeLinear', name: `${out}_DequantizeLinear`, inputs: [`${out}_quantized`, `${w}_scale`, `${w}_zero_point`], outputs: [out], attrs: {} });
      continue;
    }
    nodes.push(n);
  }

  // Quantized weights take the place of their float originals; a float weight still read by an
  // unquantized node (none in our graphs) would be kept.
  const stillUsed = new Set(nodes.flatMap((n) => n.inputs));
  const initializers = new Map<string, TensorData>();
  for (const [name, t] of inits) {
    const repl = newInits.get(name);
    if (stillUsed.has(name)) initializers.set(name, t);
    if (repl) for (const [k, v] of repl) initializers.set(k, v);
  }
  return { ...g, nodes, initializers };
}
