/**
 * Packed linears: one product whose output columns hold several PEFT modules side by side, as
 * onnxruntime-genai's model builder exports them — `qkv_proj` (q | k | v columns, one MatMul or
 * MatMulNBits feeding GroupQueryAttention's packed query input, or a Split) and `gate_up_proj`
 * (gate | up halves, Phi-3's layout). Module names there follow the builder (`…layers.N.attn.o_proj`),
 * where PEFT says `…layers.N.self_attn.o_proj`.
 *
 * An adapter on `q_proj` lands on q's column range: each slice gets its own branch (x·A_i)·B_i
 * [.., width_i] with its own graph inputs, exactly as an unpacked module would (the registry sees
 * `tensorpeft.<…q_proj>.A/B` and never knows the product is shared); the slices' deltas are
 * concatenated in column order (a zero block for a slice no target names) and added to the packed
 * output once. Disabled (ρ = 0 everywhere) the delta is all zeros and base + 0 = base, bit for bit;
 * the cost is one Concat of the deltas and one Add on top of the per-slice products.
 */
import onnxProto from 'onnx-proto';
import type { FoundLinear } from './rewrite-types.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** One module's column range in a packed product. */
export interface PackedSlice {
  /** The module path PEFT names (`model.layers.0.self_attn.q_proj`), in this graph's prefix. */
  graphPath: string;
  offset: number;
  width: number;
}

/** The genai builder's `…layers.N.attn.…` is HF's `…layers.N.self_attn.…`; undefined when the path has no such segment. */
export function genaiAliasPath(graphPath: string): string | undefined {
  const a = graphPath.replace(/(^|\.)(layers\.\d+)\.attn\./, '$1$2.self_attn.');
  return a === graphPath ? undefined : a;
}

const PACKED: Record<string, readonly string[]> = {
  qkv_proj: ['q_proj', 'k_proj', 'v_proj'],
  gate_up_proj: ['gate_proj', 'up_proj'],
};

/** protobufjs int64 fields arrive as number or Long. */
function num(d: unknown): number {
  if (typeof d === 'number') return d;
  if (d && typeof (d as { toNumber?: () => number }).toNumber === 'function') return (d as { toNumber: () => number }).toNumber();
  return Number(d);
}

function attrInt(nd: NodeProto, name: string): number | undefined {
  const a = (nd.attribute ?? []).find((x) => x.name === name);
  return a ? num(a.i) : undefined;
}

/** int64 values of a constant: an initializer or a `Constant` node's `value`. */
function constInts(name: string, nodes: readonly NodeProto[], inits: readonly TensorProto[]): number[] | undefined {
  const fromTensor = (t: TensorProto | null | undefined): number[] | undefined => {
    if (!t || t.dataType !== onnx.TensorProto.DataType.INT64) return undefined;
    if (t.int64Data && t.int64Data.length > 0) return t.int64Data.map(num);
    if (t.rawData && t.rawData.length % 8 === 0) {
      const copy = Uint8Array.from(t.rawData);
      return Array.from(new BigInt64Array(copy.buffer), Number);
    }
    return undefined;
  };
  const init = inits.find((t) => t.name === name);
  if (init) return fromTensor(init);
  const c = nodes.find((n) => n.opType === 'Constant' && n.output?.[0] === name);
  return c ? fromTensor((c.attribute ?? []).find((a) => a.name === 'value')?.t) : undefined;
}

/**
 * Column widths of a packed q|k|v product of `m` columns, from what reads it: GroupQueryAttention's
 * packed query (its `num_heads` / `kv_num_heads` give the head split) or a Split with constant
 * sizes — looking through one bias Add (the builder's packed `qkv_proj/Add`).
 */
function qkvWidths(output: string, m: number, nodes: readonly NodeProto[], inits: readonly TensorProto[]): number[] | undefined {
  const readers = (t: string): NodeProto[] => nodes.filter((n) => (n.input ?? []).includes(t));
  let rs = readers(output);
  if (rs.length === 1 && rs[0]!.opType === 'Add') rs = readers(rs[0]!.output![0]!);
  for (const r of rs) {
    if (r.opType === 'GroupQueryAttention' && r.input?.[0] !== undefined && (r.input[1] ?? '') === '') {
      const nh = attrInt(r, 'num_heads');
      const nkv = attrInt(r, 'kv_num_heads');
      if (!nh || !nkv || m % (nh + 2 * nkv) !== 0) return undefined;
      const hd = m / (nh + 2 * nkv);
      return [nh * hd, nkv * hd, nkv * hd];
    }
    if (r.opType === 'Split' && r.input?.[1]) {
      const sizes = constInts(r.input[1], nodes, inits);
      if (sizes && sizes.length === 3 && sizes.reduce((a, b) => a + b, 0) === m) return sizes;
    }
  }
  return undefined;
}

/**
 * The module slices of a packed linear (undefined for a linear that is not packed, or whose split
 * cannot be read from the graph).
 */
export function packedSlices(l: FoundLinear, nodes: readonly NodeProto[], inits: readonly TensorProto[]): PackedSlice[] | undefined {
  const dot = l.graphPath.lastIndexOf('.');
  const leaf = l.graphPath.slice(dot + 1);
  const names = PACKED[leaf];
  if (!names) return undefined;
  const parent = l.graphPath.slice(0, dot + 1);
  const widths = leaf === 'qkv_proj' ? qkvWidths(l.output, l.m, nodes, inits) : l.m % 2 === 0 ? [l.m / 2, l.m / 2] : undefined;
  if (!widths) return undefined;
  let offset = 0;
  return names.map((name, i) => {
    const path = `${parent}${name}`;
    const s = { graphPath: genaiAliasPath(path) ?? path, offset, width: widths[i]! };
    offset += widths[i]!;
    return s;
  });
}

/** A slice with its graph inputs, when a target names it. */
export interface SliceBranch extends PackedSlice {
  path?: string;
  inputA?: string;
  inputB?: string;
}

/**
 * The nodes computing the packed delta [.., m] of `l` (each targeted slice's (x·A)·B, zero blocks
 * for the others, concatenated in column order) and the name of the delta tensor; the caller adds
 * it to the base product. Zero blocks are `ConstantOfShape(x.shape[:-1] ++ [width])` in the
 * activation dtype, so any batch/sequence shape works and no NaN of x can leak into them.
 */
export function packedDeltaNodes(
  l: FoundLinear,
  slices: readonly SliceBranch[],
  addInit: (t: TensorProto) => void,
  // The x the slices' products read and the dtype they compute in (fp32 branches on fp16 graphs:
  // branch-dtype.ts); the zero blocks take the same dtype, so the Concat joins one type.
  branch: { x: string; dtype: 'float32' | 'float16' } = { x: l.input, dtype: l.dtype },
): { nodes: NodeProto[]; delta: string } {
  const scope = `/tensorpeft/packed/${l.graphPath}`;
  const ns: NodeProto[] = [];
  const parts: string[] = [];
  const INT = onnx.AttributeProto.AttributeType.INT;
  let lead: string | undefined;
  for (const s of slices) {
    if (s.path !== undefined && s.inputA !== undefined && s.inputB !== undefined) {
      const ss = `/tensorpeft/${s.path}`;
      ns.push({ name: `${ss}/MatMul_A`, opType: 'MatMul', input: [branch.x, s.inputA], output: [`${ss}/xA`] });
      ns.push({ name: `${ss}/MatMul_B`, opType: 'MatMul', input: [`${ss}/xA`, s.inputB], output: [`${ss}/delta`] });
      parts.push(`${ss}/delta`);
      continue;
    }
    if (lead === undefined) {
      lead = `${scope}/lead_dims`;
      addInit({ name: `${scope}/zero`, dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [0] });
      addInit({ name: `${scope}/minus_one`, dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [-1] });
      ns.push({ name: `${scope}/Shape`, opType: 'Shape', input: [l.input], output: [`${scope}/x_shape`] });
      ns.push({ name: `${scope}/Slice`, opType: 'Slice', input: [`${scope}/x_shape`, `${scope}/zero`, `${scope}/minus_one`], output: [lead] });
    }
    const w = `${scope}/width_${s.offset}`;
    addInit({ name: w, dataType: onnx.TensorProto.DataType.INT64, dims: [1], int64Data: [s.width] });
    ns.push({ name: `${scope}/Concat_shape_${s.offset}`, opType: 'Concat', input: [lead, w], output: [`${scope}/zeros_shape_${s.offset}`], attribute: [{ name: 'axis', type: INT, i: 0 }] });
    const zero: TensorProto =
      branch.dtype === 'float16' ? { dataType: onnx.TensorProto.DataType.FLOAT16, dims: [1], int32Data: [0] } : { dataType: onnx.TensorProto.DataType.FLOAT, dims: [1], floatData: [0] };
    ns.push({
      name: `${scope}/ConstantOfShape_${s.offset}`,
      opType: 'ConstantOfShape',
      input: [`${scope}/zeros_shape_${s.offset}`],
      output: [`${scope}/zeros_${s.offset}`],
      attribute: [{ name: 'value', type: onnx.AttributeProto.AttributeType.TENSOR, t: zero }],
    });
    parts.push(`${scope}/zeros_${s.offset}`);
  }
  const delta = `${scope}/delta`;
  ns.push({ name: `${scope}/Concat_delta`, opType: 'Concat', input: parts, output: [delta], attribute: [{ name: 'axis', type: INT, i: -1 }] });
  return { nodes: ns, delta };
}

/**
 * Merge ΔW (s · B′A′ᵀ, [width, n]) into a slice's columns of a packed weight `w` (fp32, in the
 * initializer's layout: [n, m] `in_out` or [m, n] `out_in`), in place.
 */
export function mergeIntoSlice(w: Float32Array, layout: 'in_out' | 'out_in', n: number, m: number, slice: PackedSlice, u: { rho: number; s: number; A: ArrayLike<number>; B: ArrayLike<number> }): void {
  const { rho, s, A, B } = u;
  for (let o = 0; o < slice.width; o++) {
    const col = slice.offset + o;
    for (let i = 0; i < n; i++) {
      let acc = 0;
      for (let r = 0; r < rho; r++) acc += B[o * rho + r]! * A[i * rho + r]!;
      const idx = layout === 'in_out' ? i * m + col : col * n + i;
      w[idx] = w[idx]! + s * acc;
    }
  }
}
