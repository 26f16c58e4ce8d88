/**
 * Small helpers over onnx-proto's plain objects: attribute readers, constant lookup, and the
 * `Emitter` that appends uniquely named nodes and constants to a graph under construction.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;
export type ModelProto = onnxProto.onnx.ModelProto;
export type NodeProto = onnxProto.onnx.INodeProto;
export type TensorProto = onnxProto.onnx.ITensorProto;
export type AttributeProto = onnxProto.onnx.IAttributeProto;
export type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

export const DT = onnx.TensorProto.DataType;
const AT = onnx.AttributeProto.AttributeType;

export function num(d: unknown): number {
  if (typeof d === 'number') return d;
  if (d && typeof (d as { toNumber?: () => number }).toNumber === 'function') return (d as { toNumber: () => number }).toNumber();
  return Number(d);
}

export function attr(node: NodeProto, name: string): AttributeProto | undefined {
  return (node.attribute ?? []).find((a) => a.name === name);
}

export function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? num(a.i) : dflt;
}

export function attrFloat(node: NodeProto, name: string, dflt: number): number {
  const a = attr(node, name);
  return a ? (a.f ?? dflt) : dflt;
}

export function attrInts(node: NodeProto, name: string): number[] | undefined {
  const a = attr(node, name);
  return a ? (a.ints ?? []).map(num) : undefined;
}

export const A = {
  int: (name: string, i: number): AttributeProto => ({ name, type: AT.INT, i }),
  ints: (name: string, ints: number[]): AttributeProto => ({ name, type: AT.INTS, ints }),
  float: (name: string, f: number): AttributeProto => ({ name, type: AT.FLOAT, f }),
  str: (name: string, s: string): AttributeProto => ({ name, type: AT.STRING, s: new TextEncoder().encode(s) }),
  tensor: (name: string, t: TensorProto): AttributeProto => ({ name, type: AT.TENSOR, t }),
};

/** Values of an integer or float tensor proto (raw_data or typed fields). */
export function tensorValues(t: TensorProto): number[] {
  const raw = t.rawData;
  if (raw && raw.length > 0) {
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    switch (t.dataType) {
      case DT.INT64:
        return Array.from(new BigInt64Array(copy.buffer), Number);
      case DT.INT32:
        return Array.from(new Int32Array(copy.buffer));
      case DT.FLOAT:
        return Array.from(new Float32Array(copy.buffer));
      case DT.INT8:
        return Array.from(new Int8Array(copy.buffer));
      case DT.UINT8:
        return Array.from(copy);
      default:
        return [];
    }
  }
  if (t.dataType === DT.INT64) return (t.int64Data ?? []).map(num);
  if (t.dataType === DT.FLOAT) return (t.floatData ?? []).map(Number);
  return (t.int32Data ?? []).map(Number);
}

/** Appends nodes with unique names (`<prefix>/<Op>_<k>`) and caches constant initializers. */
export class Emitter {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private k = 0;
  private readonly consts = new Map<string, string>();

  constructor(readonly prefix: string) {}

  /** Add a node; returns its `nOut` output names. */
  node(op: string, inputs: string[], attrs: AttributeProto[] = [], nOut = 1, domain = ''): string[] {
    const name = `${this.prefix}/${op}_${this.k++}`;
    const output = Array.from({ length: nOut }, (_, i) => `${name}:${i}`);
    this.nodes.push({ name, opType: op, input: inputs, output, attribute: attrs, domain });
    return output;
  }

  one(op: string, inputs: string[], attrs: AttributeProto[] = []): string {
    return this.node(op, inputs, attrs)[0]!;
  }

  constI64(values: number[], dims: number[] = [values.length]): string {
    return this.constant(DT.INT64, values, dims);
  }

  constF32(values: number | number[], dims?: number[]): string {
    const v = typeof values === 'number' ? [values] : values;
    return this.constant(DT.FLOAT, v, dims ?? (typeof values === 'number' ? [] : [v.length]));
  }

  private constant(dataType: number, values: number[], dims: number[]): string {
    const key = `${dataType}|${dims.join(',')}|${values.join(',')}`;
    const hit = this.consts.get(key);
    if (hit) return hit;
    const name = `${this.prefix}/const_${this.consts.size}`;
    const bytes = dataType === DT.INT64 ? new Uint8Array(BigInt64Array.from(values.map((x) => BigInt(x))).buffer) : new Uint8Array(Float32Array.from(values).buffer);
    this.inits.push({ name, dataType, dims, rawData: bytes });
    this.consts.set(key, name);
    return name;
  }

  /** Add a float initializer with given data (e.g. a dequantized weight for a straight-through rule). */
  tensorF32(base: string, data: Float32Array, dims: number[]): string {
    const name = `${this.prefix}/${base}`;
    this.inits.push({ name, dataType: DT.FLOAT, dims, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  }
}
