/**
 * A small in-memory ONNX graph (nodes, initializers, typed inputs/outputs) with the naming scheme
 * of torch.onnx exports, encoded to bytes with the `onnx-proto` protobuf bindings.
 *
 * Naming, as in optimum/torch exports:
 * - nodes are named `<scope>/<OpType>` (then `_1`, `_2`, … for repeats in the same scope), where the
 *   scope is the module path with `/` separators: `/bert/encoder/layer.0/attention/self/query/MatMul`;
 * - a node's outputs are `<node name>_output_<i>`;
 * - parameters keep their state-dict names (`bert.encoder.layer.0.attention.self.query.bias`), except
 *   weights that the exporter had to transpose for a MatMul: those are anonymous, `onnx::MatMul_<N>`.
 */
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

export type DType = 'float32' | 'float16' | 'int64' | 'int32' | 'int8' | 'uint8' | 'bool';

/** float16 tensors hold IEEE half bit patterns in a Uint16Array. */
export type TypedData = Float32Array | Uint16Array | BigInt64Array | Int32Array | Int8Array | Uint8Array;

export interface TensorData {
  dtype: DType;
  dims: number[];
  data: TypedData;
}

/** `{ graph }`: a subgraph attribute (If's then_branch / else_branch). */
export type AttrValue = number | number[] | string | TensorData | { float: number } | { floats: number[] } | { graph: Graph };

export interface GraphNode {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
  domain?: string;
}

/** A graph input/output: dims are numbers or symbolic names (`batch_size`). */
export interface ValueInfo {
  name: string;
  dtype: DType;
  dims: Array<number | string>;
}

export interface Graph {
  name: string;
  nodes: GraphNode[];
  /** Initializers in insertion order. */
  initializers: Map<string, TensorData>;
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  /** Default-domain opset. */
  opset: number;
  /** Extra opset imports (e.g. `com.microsoft`). */
  extraOpsets?: Array<{ domain: string; version: number }>;
}

const DTYPE_CODE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float16: onnx.TensorProto.DataType.FLOAT16,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  int8: onnx.TensorProto.DataType.INT8,
  uint8: onnx.TensorProto.DataType.UINT8,
  bool: onnx.TensorProto.DataType.BOOL,
};

export function dtypeCode(d: DType): number {
  return DTYPE_CODE[d];
}

export function f32(dims: number[], data: Float32Array | number[]): TensorData {
  return { dtype: 'float32', dims, data: data instanceof Float32Array ? data : Float32Array.from(data) };
}

export function i64(dims: number[], data: number[]): TensorData {
  return { dtype: 'int64', dims, data: BigInt64Array.from(data.map((v) => BigInt(v))) };
}

/** Builds a graph with torch-export naming. */
export class GraphBuilder {
  readonly graph: Graph;
  private readonly scopeCounts = new Map<string, number>();
  private anon = 0;
  /** Name of the node added last. */
  lastNode = '';

  constructor(name: string, opset = 17) {
    this.graph = { name, nodes: [], initializers: new Map(), inputs: [], outputs: [], opset };
  }

  input(name: string, dtype: DType, dims: Array<number | string>): string {
    this.graph.inputs.push({ name, dtype, dims });
    return name;
  }

  output(name: string, dtype: DType, dims: Array<number | string>): void {
    this.graph.outputs.push({ name, dtype, dims });
  }

  /** Add a named initializer (a parameter under its state-dict name); returns its name. */
  param(name: string, t: TensorData): string {
    if (this.graph.initializers.has(name)) throw new Error(`duplicate initializer ${name}`);
    this.graph.initializers.set(name, t);
    return name;
  }

  /** Add an anonymous initializer named like the exporter's folded constants: `onnx::<Op>_<N>`. */
  anonParam(op: string, t: TensorData): string {
    this.anon += 1;
    return this.param(`onnx::${op}_${this.anon}`, t);
  }

  /** Node name for `op` in `scope` (`/bert/encoder/layer.0/attention/self/query` or '' for root). */
  private nodeName(scope: string, op: string): string {
    const key = `${scope}/${op}`;
    const n = this.scopeCounts.get(key) ?? 0;
    this.scopeCounts.set(key, n + 1);
    return n === 0 ? key : `${key}_${n}`;
  }

  /**
   * Add a node; returns its output names. `outputs` may name outputs explicitly (graph outputs);
   * otherwise they are `<node name>_output_<i>`.
   */
  nodeN(
    op: string,
    scope: string,
    inputs: string[],
    nOut: number,
    attrs: Record<string, AttrValue> = {},
    outputs?: string[],
  ): string[] {
    const name = this.nodeName(scope, op);
    const outs = outputs ?? Array.from({ length: nOut }, (_, i) => `${name}_output_${i}`);
    this.graph.nodes.push({ op, name, inputs, outputs: outs, attrs });
    this.lastNode = name;
    return outs;
  }

  node(op: string, scope: string, inputs: string[], attrs: Record<string, AttrValue> = {}, output?: string): string {
    return this.nodeN(op, scope, inputs, 1, attrs, output === undefined ? undefined : [output])[0]!;
  }

  /** A `Constant` node in `scope` (torch exports keep small constants as Constant nodes). */
  constant(scope: string, t: TensorData): string {
    return this.node('Constant', scope, [], { value: t });
  }

  constI64(scope: string, values: number[], dims: number[] = [values.length]): string {
    return this.constant(scope, i64(dims, values));
  }

  constF32(scope: string, value: number): string {
    return this.constant(scope, f32([], [value]));
  }
}

function bytesOf(t: TensorData): Uint8Array {
  // Little-endian hosts (every platform Node and browsers run on in practice) store typed arrays in
  // ONNX's raw_data byte order already.
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function tensorProto(name: string, t: TensorData): onnxProto.onnx.ITensorProto {
  const expected = t.dims.reduce((a, b) => a * b, 1);
  if (expected !== t.data.length) throw new Error(`tensor ${name}: dims ${JSON.stringify(t.dims)} do not match ${t.data.length} values`);
  return { name, dims: t.dims, dataType: DTYPE_CODE[t.dtype], rawData: bytesOf(t) };
}

function attrProto(name: string, v: AttrValue): onnxProto.onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: use { float } for float values`);
    return { name, type: T.INT, i: v };
  }
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('graph' in v) return { name, type: T.GRAPH, g: graphProto(v.graph) };
  if ('floats' in v) return { name, type: T.FLOATS, floats: v.floats };
  return { name, type: T.TENSOR, t: tensorProto('', v) };
}

function valueInfo(v: ValueInfo): onnxProto.onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: DTYPE_CODE[v.dtype],
        shape: { dim: v.dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

export const PRODUCER = { name: 'tensorpeft-model-gen', version: '0.1.0' };

/** Encode a graph as an ONNX ModelProto (IR version 8). */
export function encodeModel(g: Graph, producer = PRODUCER): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.fromObject(modelProto(g, producer))).finish();
}

/** The ModelProto of a graph (initializers inline, as raw_data), before encoding. */
export function modelProto(g: Graph, producer = PRODUCER): onnxProto.onnx.IModelProto {
  return {
    irVersion: 8,
    producerName: producer.name,
    producerVersion: producer.version,
    opsetImport: [{ domain: '', version: g.opset }, ...(g.extraOpsets ?? [])],
    graph: graphProto(g),
  };
}

/** The GraphProto of a graph (also a subgraph: then its initializers and inputs are usually empty). */
function graphProto(g: Graph): onnxProto.onnx.IGraphProto {
  return {
    name: g.name,
    node: g.nodes.map((n) => ({
      opType: n.op,
      name: n.name,
      input: n.inputs,
      output: n.outputs,
      domain: n.domain ?? '',
      attribute: Object.entries(n.attrs).map(([k, v]) => attrProto(k, v)),
    })),
    initializer: [...g.initializers].map(([name, t]) => tensorProto(name, t)),
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
  };
}

/** Decode ONNX bytes (for tests and tools that inspect generated models). */
export function decodeModel(bytes: Uint8Array): onnxProto.onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}
