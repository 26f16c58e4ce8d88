/**
 * fp16 variant of a graph (`model_fp16.onnx`), the way transformers.js' quantization script makes
 * it: onnxconverter-common's `convert_float_to_float16` (transformers.js keeps a copy in its
 * scripts) with `keep_io_types=True` and its default op block list:
 *
 * - float initializers and float `Constant` values become fp16, magnitudes clamped into
 *   [1e-7, 1e4] first (0, ±Inf and NaN kept), so torch's `finfo(float32).min` mask fill becomes −1e4;
 * - float graph inputs stay float32 and are cast once, by a `Cast` named like its output
 *   `<input>_fp16`; float graph outputs stay float32: their producer writes `<output>_fp16` and
 *   `<output>_fp16_input_cast0` casts it back;
 * - blocked ops keep float32: `Cast` is on the list (transformers.js added it), so a `Cast(to=float)`
 *   keeps its type and is followed by `<node>_output_cast0` (to fp16), its float input (if any) is
 *   preceded by `<node>_input_cast0` (to float); `CumSum`, `Min`, `Max`, `TopK`, `Resize`
 *   get the same treatment when they see floats (in these graphs they only see integers).
 * Everything else (MatMul, Gemm, LayerNormalization, Softmax, attention arithmetic, MatMulNBits
 * activations and scales) runs in fp16. Activation dtypes are inferred op by op (`inferTypes`),
 * standing in for the ONNX shape inference the converter runs first.
 */
import { f16BitsToF32Bits, f32BitsToF16Bits } from '@tensorpeft/core';
import type { DType, Graph, GraphNode, TensorData } from './graph.js';

const MIN_POSITIVE = 1e-7;
const MAX_FINITE = 1e4;

/** Ops kept in float32 with casts around them (onnxconverter-common's default list as transformers.js uses it, those that can occur here). */
const BLOCKED = new Set(['Cast', 'CumSum', 'Min', 'Max', 'TopK', 'Resize', 'Upsample', 'RoiAlign', 'NonMaxSuppression', 'RandomNormalLike', 'RandomUniformLike']);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 values → fp16 bit patterns after the converter's clamping. */
export function toHalfClamped(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    let v = src[i]!;
    const a = Math.abs(v);
    if (a > 0 && a < MIN_POSITIVE) v = Math.sign(v) * MIN_POSITIVE;
    else if (a > MAX_FINITE && a !== Infinity) v = Math.sign(v) * MAX_FINITE;
    f32[0] = v;
    out[i] = f32BitsToF16Bits(u32[0]!);
  }
  return out;
}

/** fp16 bit patterns → float32 values (exact). */
export function fromHalf(src: Uint16Array): Float32Array {
  const out = new Float32Array(src.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < src.length; i++) bits[i] = f16BitsToF32Bits(src[i]!);
  return out;
}

function halfTensor(t: TensorData): TensorData {
  return t.dtype === 'float32' ? { dtype: 'float16', dims: [...t.dims], data: toHalfClamped(t.data as Float32Array) } : t;
}

const CAST_TO: Record<number, DType> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 2: 'uint8', 3: 'int8' };

/** Element type of every tensor of `g` (inputs, initializers, node outputs), inferred op by op. */
export function inferTypes(g: Graph): Map<string, DType> {
  const ty = new Map<string, DType>();
  for (const v of g.inputs) ty.set(v.name, v.dtype);
  for (const [k, t] of g.initializers) ty.set(k, t.dtype);
  for (const n of g.nodes) {
    const first = ty.get(n.inputs[0] ?? '') ?? 'float32';
    const set = (d: DType | DType[]): void => n.outputs.forEach((o, i) => ty.set(o, Array.isArray(d) ? d[i]! : d));
    switch (n.op) {
      case 'Constant':
        set((n.attrs['value'] as TensorData).dtype);
        break;
      case 'Cast':
        set(CAST_TO[n.attrs['to'] as number] ?? 'float32');
        break;
      case 'Shape':
        set('int64');
        break;
      case 'Equal':
      case 'Not':
      case 'And':
      case 'Or':
      case 'Less':
      case 'LessOrEqual':
      case 'Greater':
      case 'GreaterOrEqual':
        set('bool');
        break;
      case 'Where':
        set(ty.get(n.inputs[1]!) ?? 'float32');
        break;
      case 'DynamicQuantizeLinear':
        set(['uint8', 'float32', 'uint8']);
        break;
      case 'MatMulInteger':
        set('int32');
        break;
      default:
        set(first);
    }
  }
  return ty;
}

/** A new graph: the fp16 variant of `g` with float32 I/O (`g` is not modified). */
export function convertToFloat16(g: Graph): Graph {
  const ty = inferTypes(g);
  const isFloat = (t: string): boolean => ty.get(t) === 'float32';
  const rename = new Map<string, string>();
  const head: GraphNode[] = [];
  for (const v of g.inputs) {
    if (v.dtype !== 'float32') continue;
    const c = `${v.name}_fp16`;
    head.push({ op: 'Cast', name: c, inputs: [v.name], outputs: [c], attrs: { to: 10 } });
    rename.set(v.name, c);
  }
  const outputs = new Set(g.outputs.filter((v) => v.dtype === 'float32').map((v) => v.name));
  const nodes: GraphNode[] = [...head];
  for (const n0 of g.nodes) {
    const n: GraphNode = { ...n0, inputs: n0.inputs.map((x) => rename.get(x) ?? x), outputs: [...n0.outputs], attrs: { ...n0.attrs } };
    if (n.op === 'Constant' && (n.attrs['value'] as TensorData).dtype === 'float32') n.attrs['value'] = halfTensor(n.attrs['value'] as TensorData);
    const tail: GraphNode[] = [];
    if (BLOCKED.has(n.op) && (n.domain ?? '') === '') {
      n.inputs.forEach((x, i) => {
        if (!isFloat(n0.inputs[i]!)) return;
        const c = `${n.name}_input_cast_${i}`;
        nodes.push({ op: 'Cast', name: `${n.name}_input_cast${i}`, inputs: [x], outputs: [c], attrs: { to: 1 } });
        n.inputs[i] = c;
      });
      n.outputs.forEach((o, i) => {
        if (!isFloat(o) || outputs.has(o)) return;
        const c = `${n.name}_output_cast_${i}`;
        n.outputs[i] = c;
        tail.push({ op: 'Cast', name: `${n.name}_output_cast${i}`, inputs: [c], outputs: [o], attrs: { to: 10 } });
      });
    }
    n.outputs.forEach((o, i) => {
      if (!outputs.has(o) || (BLOCKED.has(n.op) && isFloat(o))) return;
      n.outputs[i] = `${o}_fp16`;
      tail.push({ op: 'Cast', name: `${o}_fp16_input_cast0`, inputs: [`${o}_fp16`], outputs: [o], attrs: { to: 1 } });
    });
    nodes.push(n, ...tail);
  }
  // Nodes reading a graph output (a decoder's present.* feeding nothing else here; kept general).
  for (const n of nodes) n.inputs = n.inputs.map((x) => (outputs.has(x) ? `${x}_fp16` : x));
  const initializers = new Map<string, TensorData>();
  for (const [k, t] of g.initializers) initializers.set(k, halfTensor(t));
  return { ...g, nodes, initializers };
}
