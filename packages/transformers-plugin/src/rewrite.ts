/**
 * Load-time ONNX graph rewrite (pure: bytes → bytes).
 *
 * For every linear whose node path maps (by path suffix) to a PEFT module path, a side branch
 * `y += (x · A) · B` is added after the base product (MatMul, Gemm, or the q8 pattern
 * DynamicQuantizeLinear → MatMulInteger → Cast → Mul) — i.e. before the bias Add of MatMul exports —
 * with graph inputs `tensorpeft.<path>.A: [n, rho]` and `tensorpeft.<path>.B: [rho, m]` (fp32, symbolic
 * rank). Feeding ρ = 0 tensors gives the exact base output. One exception keeps that exact under
 * onnxruntime's default (extended) fusions: where x·W → Add(bias) → Add(residual) → LayerNormalization
 * (what onnxruntime folds into one SkipLayerNormalization, bias included), the branch is added to the
 * residual operand instead (`x·W + b + (residual + δ)`), leaving the fused chain as in the base.
 * Packed products (onnxruntime-genai's `qkv_proj`, a packed `gate_up_proj`) get one branch per
 * targeted column slice, concatenated and added once (rewrite-packed.ts); genai's `layers.N.attn`
 * names match PEFT's `layers.N.self_attn` targets (`matchTarget`).
 *
 * Every other Gemm with named (state-dict) parameters — task heads, the tensors PEFT keeps in
 * `modules_to_save` — gets its weight and bias made overridable: graph inputs
 * `tensorpeft.param.<initializer>: [override, …dims]` feed a second product x·Wᵀ + b next to the
 * untouched base Gemm, and the first `out` columns of `Concat([x·Wᵀ + b, base], axis 1)` pick the override when one row is
 * fed and the base output, bit for bit, when none is (override = 0). Replacing the weight itself
 * (Concat/Gather on W) is not bit-exact: ORT then runs the base Gemm on a non-constant weight, whose
 * kernel rounds differently (≈ 3e-7 on base-size DistilBERT).
 */
import onnxProto from 'onnx-proto';
import { ModelFormatError, PluginError } from './errors.js';
import { externalLocations, isExternal, readExternalBytes } from './external-data.js';
import { constSource, indexGraph } from './const-source.js';
import { halfInitToFloats } from './dtype.js';
import { toMixedBatches } from './mixed-rewrite.js';
import { fuseSiblings } from './rewrite-siblings.js';
import { genaiAliasPath, packedDeltaNodes, packedSlices, type SliceBranch } from './rewrite-packed.js';
import { branchInputDtype, branchPrecision, type BranchPrecision } from './branch-dtype.js';
import type { BranchDtype, BranchInfo, FoundLinear, MergedInfo, ParamInfo, RewriteOptions, RewriteResult } from './rewrite-types.js';

export type { BranchInfo, FoundLinear, MergedInfo, ParamInfo, RewriteOptions, RewriteResult } from './rewrite-types.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export const INPUT_PREFIX = 'tensorpeft.';
export const PARAM_PREFIX = 'tensorpeft.param.';
/** Merge mode: `tensorpeft.merge.<token>.<module path>` is the whole weight of a targeted fp32 linear, fed per run. */
export const MERGE_PREFIX = 'tensorpeft.merge.';
/** Prefix of the symbolic rank dims (`rho_0`, `rho_1`, …: one per module). */
export const RANK_DIM = 'rho';
/** Prefix of the symbolic override dims of head parameters (`override_0`, …). */
export const OVERRIDE_DIM = 'override';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const FLOAT16 = onnx.TensorProto.DataType.FLOAT16;
const INT8 = onnx.TensorProto.DataType.INT8;
const UINT8 = onnx.TensorProto.DataType.UINT8;
const INT64 = onnx.TensorProto.DataType.INT64;






/**
 * Base weights of merge-mode rewrites, by graph input name (the token in the name is unique per
 * rewrite): the registry reads W0 from here when it hooks a session.
 */
const BASE_WEIGHTS = new Map<string, { data: Float32Array; layout: 'in_out' | 'out_in' }>();

/** W0 (and its layout) of a merge-mode weight input (see `MergedInfo.input`). */
export function baseWeightOf(input: string): { data: Float32Array; layout: 'in_out' | 'out_in' } | undefined {
  return BASE_WEIGHTS.get(input);
}

let rewriteCounter = 0;

/**
 * Check an initializer's data against its dims before any typed view is made of it: a file may
 * declare dims its raw/typed data does not hold (a view of a length that is not a multiple of the
 * element size is an untyped RangeError; a short one would be read past).
 */
export function checkInitData(t: TensorProto, elemBytes: number, bytes: number | undefined, file: string): number {
  const dims = (t.dims ?? []).map(num);
  let count = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new ModelFormatError(`${file}: initializer ${JSON.stringify(t.name ?? '')} has dims [${dims.join(', ')}], expected non-negative integers`);
    count *= d;
  }
  if (!Number.isSafeInteger(count)) throw new ModelFormatError(`${file}: initializer ${JSON.stringify(t.name ?? '')} has ${dims.join(' × ')} elements, more than a model can hold`);
  if (bytes !== undefined && bytes !== count * elemBytes) {
    throw new ModelFormatError(`${file}: initializer ${JSON.stringify(t.name ?? '')} has dims [${dims.join(', ')}] (${count * elemBytes} bytes at ${elemBytes} per element) but ${bytes} bytes of data`);
  }
  return count;
}

function initFloats(t: TensorProto, external: ReadonlyMap<string, Uint8Array> | undefined, file = 'model'): Float32Array {
  // fp16 weights (fp16 graphs) are decoded exactly; the plugin feeds them back as fp16 (dtype.ts).
  if (t.dataType === FLOAT16) {
    if (!isExternal(t)) checkInitData(t, 2, t.rawData && t.rawData.length > 0 ? t.rawData.length : 2 * (t.int32Data?.length ?? 0), file);
    else if (external) checkInitData(t, 2, readExternalBytes(t, external).byteLength, file);
    return halfInitToFloats(t, external);
  }
  if (isExternal(t)) {
    if (!external) throw new PluginError(`merge mode needs the base weight ${t.name}, which is ONNX external data: pass its file (external) to rewriteModel`);
    const b = readExternalBytes(t, external);
    checkInitData(t, 4, b.byteLength, file);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  checkInitData(t, 4, t.rawData && t.rawData.length > 0 ? t.rawData.length : 4 * (t.floatData?.length ?? 0), file);
  if (t.rawData && t.rawData.length > 0) {
    const copy = new Uint8Array(t.rawData.length);
    copy.set(t.rawData);
    return new Float32Array(copy.buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}


export function num(d: unknown): number {
  if (typeof d === 'number') return d;
  if (d && typeof (d as { toNumber?: () => number }).toNumber === 'function') return (d as { toNumber: () => number }).toNumber();
  return Number(d);
}

/** Module path of a node named like torch exports (`/bert/encoder/layer.0/attention/self/query/MatMul` → `bert.encoder.layer.0.attention.self.query`). */
export function graphPathOfNode(name: string): string {
  const parts = name.split('/').filter((p) => p !== '');
  parts.pop();
  return parts.join('.');
}

/** Does PEFT path `peft` name the same module as graph path `graph` (equal, or one a dotted suffix of the other)? */
export function pathsMatch(peft: string, graph: string): boolean {
  if (peft === '' || graph === '') return false;
  return peft === graph || peft.endsWith(`.${graph}`) || graph.endsWith(`.${peft}`);
}

function attrInt(node: NodeProto, name: string, dflt: number): number {
  const a = (node.attribute ?? []).find((x) => x.name === name);
  return a ? num(a.i) : dflt;
}

/** Every linear with a constant 2-D weight: fp32 MatMul, Gemm (transA = 0), q8 MatMulInteger. */
export function findLinears(model: ModelProto): FoundLinear[] {
  const g = model.graph!;
  return findLinearsIn(g.node ?? [], g.initializer ?? []);
}

/** The linears of one graph's `nodes`, with `initializers` visible (a subgraph's own and its outer scopes'). */
export function findLinearsIn(nodes: readonly NodeProto[], initializers: readonly TensorProto[]): FoundLinear[] {
  const ix = indexGraph(nodes, initializers);
  const producer = ix.producer;
  const consumers = new Map<string, number[]>();
  nodes.forEach((nd, i) => {
    for (const x of nd.input ?? []) {
      const l = consumers.get(x);
      if (l) l.push(i);
      else consumers.set(x, [i]);
    }
  });
  const only = (t: string, op: string): number | undefined => {
    const c = consumers.get(t);
    if (!c || c.length !== 1) return undefined;
    return nodes[c[0]!]!.opType === op ? c[0] : undefined;
  };
  const out: FoundLinear[] = [];
  nodes.forEach((nd, i) => {
    if ((nd.opType === 'MatMulNBits' || nd.opType === 'MatMulBnb4') && nd.domain === 'com.microsoft') {
      // 4-bit weight-only (q4, q4f16, bnb4): y = x·dequant(B) [+ bias], B packed; K, N from the
      // attributes, the activation dtype from the scales (MatMulNBits) / absmax (MatMulBnb4) — T1.
      const w = ix.inits.get(nd.input?.[1] ?? '');
      const scales = ix.inits.get(nd.input?.[2] ?? '');
      const K = attrInt(nd, 'K', 0);
      const N = attrInt(nd, 'N', 0);
      if (!w || !scales || K <= 0 || N <= 0) return;
      const dtype = scales.dataType === FLOAT16 ? 'float16' : scales.dataType === FLOAT ? 'float32' : undefined;
      if (!dtype) return;
      out.push({ graphPath: graphPathOfNode(nd.name ?? ''), node: nd.name!, op: nd.opType, input: nd.input![0]!, dtype, output: nd.output![0]!, outputNodeIndex: i, weight: w.name!, weightLayout: 'in_out', weightReader: i, weightReaderInput: 1, n: K, m: N });
      return;
    }
    // The weight may reach the node through Identity aliases or a Transpose (see const-source.ts).
    const src = constSource(ix, i, 1);
    const w = src?.init;
    if (!src || !w || (w.dims ?? []).length !== 2) return;
    const [d0, d1] = (w.dims ?? []).map(num) as [number, number];
    const graphPath = graphPathOfNode(nd.name ?? '');
    const reader = { weightReader: src.readerNode, weightReaderInput: src.readerInput };
    const alias = nd.input![1] !== w.name ? { weightAlias: nd.input![1]! } : {};
    const fdt = w.dataType === FLOAT ? 'float32' : w.dataType === FLOAT16 ? 'float16' : undefined;
    if (nd.opType === 'MatMul' && fdt) {
      // MatMul(x, Transpose(W [out, in])) is x·Wᵀ: the initializer is [out, in].
      const t = src.transposed;
      out.push({ graphPath, node: nd.name!, op: 'MatMul', input: nd.input![0]!, dtype: fdt, output: nd.output![0]!, outputNodeIndex: i, weight: w.name!, weightLayout: t ? 'out_in' : 'in_out', n: t ? d1 : d0, m: t ? d0 : d1, ...reader, ...alias });
    } else if (nd.opType === 'Gemm' && fdt && attrInt(nd, 'transA', 0) === 0) {
      // transB and a Transpose on the way cancel out.
      const transB = (attrInt(nd, 'transB', 0) === 1) !== src.transposed;
      const f: FoundLinear = {
        graphPath,
        node: nd.name!,
        op: 'Gemm',
        input: nd.input![0]!,
        dtype: fdt,
        output: nd.output![0]!,
        outputNodeIndex: i,
        weight: w.name!,
        weightLayout: transB ? 'out_in' : 'in_out',
        n: transB ? d1 : d0,
        m: transB ? d0 : d1,
        ...reader,
        ...alias,
      };
      const c = nd.input?.[2];
      const bsrc = c ? constSource(ix, i, 2) : undefined;
      if (c && bsrc && !bsrc.transposed) {
        f.bias = bsrc.init.name!;
        if (c !== f.bias) f.biasAlias = c;
      }
      out.push(f);
    } else if (nd.opType === 'MatMulInteger' && (w.dataType === INT8 || w.dataType === UINT8) && !src.transposed) {
      // x → DynamicQuantizeLinear → MatMulInteger → Cast → Mul (writes the original MatMul output).
      const q = producer.get(nd.input![0]!);
      if (q === undefined || nodes[q]!.opType !== 'DynamicQuantizeLinear') return;
      const cast = only(nd.output![0]!, 'Cast');
      if (cast === undefined) return;
      const mul = only(nodes[cast]!.output![0]!, 'Mul');
      if (mul === undefined) return;
      out.push({
        graphPath,
        node: nd.name!,
        op: 'MatMulInteger',
        input: nodes[q]!.input![0]!,
        dtype: 'float32',
        output: nodes[mul]!.output![0]!,
        outputNodeIndex: mul,
        weight: w.name!,
        weightLayout: 'in_out',
        n: d0,
        m: d1,
        ...reader,
      });
    }
  });
  return out;
}

/** The PEFT path among `targets` naming graph path `graphPath` (exact match first, else the unique suffix match). */
export function matchTarget(graphPath: string, targets: readonly string[]): string | undefined {
  const direct = matchPath(graphPath, targets);
  if (direct !== undefined) return direct;
  // onnxruntime-genai exports name attention `layers.N.attn` where PEFT says `layers.N.self_attn`.
  const alias = genaiAliasPath(graphPath);
  return alias === undefined ? undefined : matchPath(alias, targets);
}

function matchPath(graphPath: string, targets: readonly string[]): string | undefined {
  if (targets.includes(graphPath)) return graphPath;
  const hits = targets.filter((t) => pathsMatch(t, graphPath));
  return hits.length === 1 ? hits[0] : undefined;
}

function floatInput(name: string, dims: Array<number | string>, dtype: 'float32' | 'float16' = 'float32'): onnxProto.onnx.IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType: dtype === 'float16' ? FLOAT16 : FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function initDims(inits: readonly TensorProto[]): Map<string, number[]> {
  return new Map(inits.map((t) => [t.name!, (t.dims ?? []).map(num)]));
}

/**
 * Default-domain ops onnxruntime's CPU EP runs on fp16 tensors without casting (type-agnostic data
 * movement). A fp16 MatMulNBits feeding one of them keeps its own fp16 kernel (see the join in
 * rewriteModel).
 */
const FP16_CPU_DATA_OPS = new Set(['Reshape', 'Transpose', 'Concat', 'Slice', 'Split', 'Squeeze', 'Unsqueeze', 'Gather', 'Expand', 'Flatten', 'Identity', 'Tile', 'Cast', 'Shape']);

/**
 * com.microsoft ops with fp16 CPU kernels that read 4-bit products in onnxruntime-genai exports
 * (GroupQueryAttention after `qkv_proj`, SkipSimplifiedLayerNormalization after `o_proj`/`down_proj`):
 * like FP16_CPU_DATA_OPS, a fp16 MatMulNBits feeding one runs in fp16 in the base.
 */
const FP16_CPU_CONTRIB_OPS = new Set(['GroupQueryAttention', 'SkipSimplifiedLayerNormalization', 'SkipLayerNormalization', 'RotaryEmbedding', 'MatMulNBits']);

/** Where a linear's output runs into onnxruntime's SkipLayerNormalization pattern (see `skipLayerNormPattern`). */
interface SkipLayerNormSite {
  /** Index of the residual Add. */
  resAdd: number;
  /** The residual Add's other operand, and its input index. */
  residual: string;
  residualIndex: number;
}

/**
 * Finds, for a linear, the chain onnxruntime's SkipLayerNormFusion folds whole (x·W's bias included):
 * x·W → Add(1-D constant bias) → Add(residual) → LayerNormalization, each tensor read once and none a
 * graph output (the fusion's own conditions). Shapes are left to onnxruntime: where it does not fuse,
 * the branch in the residual operand is still the same sum, computed in the base's order.
 */
function skipLayerNormPattern(
  nodes: readonly NodeProto[],
  initializers: ReadonlySet<string>,
  graphOutputs: ReadonlySet<string>,
  dims: ReadonlyMap<string, number[]>,
): (l: FoundLinear) => SkipLayerNormSite | undefined {
  const consumers = new Map<string, number[]>();
  nodes.forEach((nd, i) => {
    // Append in place: copying the list per consumer made this quadratic (issue 15, D14).
    for (const x of nd.input ?? []) {
      const l = consumers.get(x);
      if (l) l.push(i);
      else consumers.set(x, [i]);
    }
  });
  const single = (t: string, op: string): number | undefined => {
    const c = consumers.get(t);
    if (!c || c.length !== 1 || graphOutputs.has(t)) return undefined;
    const nd = nodes[c[0]!]!;
    return nd.opType === op && (nd.domain ?? '') === '' ? c[0] : undefined;
  };
  return (l) => {
    const biasAdd = single(l.output, 'Add');
    if (biasAdd === undefined) return undefined;
    const bIn = nodes[biasAdd]!.input ?? [];
    const bias = bIn.find((x) => x !== l.output);
    if (bIn.length !== 2 || bias === undefined || !initializers.has(bias) || dims.get(bias)?.length !== 1) return undefined;
    const biased = nodes[biasAdd]!.output![0]!;
    const resAdd = single(biased, 'Add');
    if (resAdd === undefined) return undefined;
    const rIn = nodes[resAdd]!.input ?? [];
    const residualIndex = rIn.findIndex((x) => x !== biased);
    const residual = rIn[residualIndex];
    if (rIn.length !== 2 || residual === undefined || initializers.has(residual)) return undefined;
    if (single(nodes[resAdd]!.output![0]!, 'LayerNormalization') === undefined) return undefined;
    return { resAdd, residual, residualIndex };
  };
}

/** Where branches are inserted in one graph (the main graph or a subgraph). */
interface BranchSite {
  nodes: NodeProto[];
  addAfter(i: number, ns: NodeProto[]): void;
  addBefore(i: number, ns: NodeProto[]): void;
  addInit(t: TensorProto): void;
  skipLayerNormOf(l: FoundLinear): SkipLayerNormSite | undefined;
  keepsFp16Neighbour(l: FoundLinear): boolean;
  /** How branches read x and hand back their delta (fp32 branches on fp16 graphs: branch-dtype.ts). */
  precision: BranchPrecision;
  /** The graph's nodes with the insertions in place. */
  ordered(): NodeProto[];
}

/** `inits`: the initializers visible in the graph (a subgraph sees its outer scopes' too). */
function branchSite(nodes: NodeProto[], inits: readonly TensorProto[], outputs: readonly onnxProto.onnx.IValueInfoProto[], addInit: (t: TensorProto) => void, branchDtype?: BranchDtype): BranchSite {
  const inserts = new Map<number, NodeProto[]>();
  const addAfter = (i: number, ns: NodeProto[]): void => {
    inserts.set(i, [...(inserts.get(i) ?? []), ...ns]);
  };
  const insertsBefore = new Map<number, NodeProto[]>();
  const addBefore = (i: number, ns: NodeProto[]): void => {
    insertsBefore.set(i, [...(insertsBefore.get(i) ?? []), ...ns]);
  };
  const skipLayerNormOf = skipLayerNormPattern(nodes, new Set(inits.map((t) => t.name!)), new Set(outputs.map((v) => v.name!)), initDims(inits));
  // Consumers of each tensor (for the fp16 join rule below).
  const readers = new Map<string, NodeProto[]>();
  for (const nd of nodes)
    for (const x of nd.input ?? []) {
      const l = readers.get(x);
      if (l) l.push(nd);
      else readers.set(x, [nd]);
    }
  const keepsFp16Neighbour = (l: FoundLinear): boolean =>
    l.dtype === 'float16' &&
    l.op === 'MatMulNBits' &&
    (readers.get(l.output) ?? []).some((nd) => (FP16_CPU_DATA_OPS.has(nd.opType ?? '') && (nd.domain ?? '') === '') || (FP16_CPU_CONTRIB_OPS.has(nd.opType ?? '') && nd.domain === 'com.microsoft'));
  return {
    nodes,
    addAfter,
    addBefore,
    addInit,
    skipLayerNormOf,
    keepsFp16Neighbour,
    precision: branchPrecision(nodes, addBefore, branchDtype),
    ordered: () => {
      const ordered: NodeProto[] = [];
      nodes.forEach((nd, i) => {
        for (const x of insertsBefore.get(i) ?? []) ordered.push(x);
        ordered.push(nd);
        for (const x of inserts.get(i) ?? []) ordered.push(x);
      });
      return ordered;
    },
  };
}

/** Add `y += (x·A)·B` for linear `l` of `site` (module `path`, graph inputs `inputA`/`inputB`). */
function insertBranch(site: BranchSite, l: FoundLinear, path: string, inputA: string, inputB: string): void {
  const scope = `/tensorpeft/${path}`;
  const delta: NodeProto[] = [
    { name: `${scope}/MatMul_A`, opType: 'MatMul', input: [site.precision.input(l), inputA], output: [`${scope}/xA`] },
    { name: `${scope}/MatMul_B`, opType: 'MatMul', input: [`${scope}/xA`, inputB], output: [`${scope}/delta`] },
  ];
  // Hook: an fp32 branch on an fp16 linear hands back its delta cast to fp16 (branch-dtype.ts).
  const d = site.precision.output(l, delta, `${scope}/delta`);
  const skip = site.skipLayerNormOf(l);
  if (skip) {
    // x·W → Add(b) → Add(residual) → LayerNormalization is what onnxruntime fuses into one
    // SkipLayerNormalization taking x·W, the residual and b, summed (x·W + residual) + b. Any node
    // between x·W and that Add chain stops the bias from fusing ((x·W + b) + residual: 1–2 ulps off
    // the base), so the branch goes into the residual operand instead: x·W + (residual + δ) + b is
    // the same sum, and residual + 0 = residual keeps the fused graph bit-exact when disabled.
    const resAdd = site.nodes[skip.resAdd]!;
    const shifted = `${scope}/residual`;
    delta.push({ name: `${scope}/Add`, opType: 'Add', input: [skip.residual, d], output: [shifted] });
    resAdd.input = (resAdd.input ?? []).map((x, i) => (i === skip.residualIndex ? shifted : x));
    site.addBefore(skip.resAdd, delta);
  } else {
    addDelta(site, l, scope, delta, d, site.keepsFp16Neighbour(l));
  }
}

/**
 * Add `deltaName` (computed by `delta`'s nodes) to linear `l`'s product: the product now writes
 * `<output>/tensorpeft_base` and the sum takes the original output name.
 */
function addDelta(site: BranchSite, l: FoundLinear, scope: string, delta: NodeProto[], deltaName: string, fp16Join: boolean): void {
  const base = `${l.output}/tensorpeft_base`;
  const producerNode = site.nodes[l.outputNodeIndex]!;
  producerNode.output = (producerNode.output ?? []).map((o) => (o === l.output ? base : o));
  if (fp16Join) {
    // onnxruntime's CPU EP runs an fp16 node in fp32 when all its fp16 neighbours need casts (its
    // "isolated fp16 node" rule). MatMulNBits has an fp16 kernel; here it feeds a node that has
    // one too (Reshape, …), so in the base it runs in fp16 and rounds its output. An Add (no fp16
    // kernel) as its only consumer would make it isolated, computed in fp32: 1 ulp off the base.
    // The join keeps an fp16-capable consumer (Unsqueeze → Concat) and sums over the stacked
    // pair: base + 0 = base when disabled, whichever precision the ReduceSum runs in.
    const axes0 = `${scope}/axes0`;
    site.addInit({ name: axes0, dataType: INT64, dims: [1], int64Data: [0] });
    const INT = onnx.AttributeProto.AttributeType.INT;
    delta.push({ name: `${scope}/Unsqueeze_base`, opType: 'Unsqueeze', input: [base, axes0], output: [`${scope}/base1`] });
    delta.push({ name: `${scope}/Unsqueeze_delta`, opType: 'Unsqueeze', input: [deltaName, axes0], output: [`${scope}/delta1`] });
    delta.push({ name: `${scope}/Concat`, opType: 'Concat', input: [`${scope}/base1`, `${scope}/delta1`], output: [`${scope}/pair`], attribute: [{ name: 'axis', type: INT, i: 0 }] });
    delta.push({ name: `${scope}/ReduceSum`, opType: 'ReduceSum', input: [`${scope}/pair`, axes0], output: [l.output], attribute: [{ name: 'keepdims', type: INT, i: 0 }] });
  } else {
    delta.push({ name: `${scope}/Add`, opType: 'Add', input: [base, deltaName], output: [l.output] });
  }
  site.addAfter(l.outputNodeIndex, delta);
}

/**
 * Packed linear `l` (see rewrite-packed.ts): when some target names one of its column slices, add
 * the per-slice branches and their sum into the product, declare each slice's inputs through
 * `declare`, and return true; false when `l` is not packed or no slice is targeted.
 */
function insertPacked(
  site: BranchSite,
  l: FoundLinear,
  nodes: readonly NodeProto[],
  inits: readonly TensorProto[],
  targets: readonly string[],
  seen: Map<string, string>,
  declare: (slice: SliceBranch, path: string) => BranchInfo,
): boolean {
  const slices = packedSlices(l, nodes, inits);
  if (!slices) return false;
  const branches: SliceBranch[] = slices.map((s) => {
    const path = matchTarget(s.graphPath, targets);
    return path === undefined ? { ...s } : { ...s, path };
  });
  if (branches.every((b) => b.path === undefined)) return false;
  for (const b of branches) {
    if (b.path === undefined) continue;
    if (seen.has(b.path)) throw new PluginError(`module ${b.path} maps to two graph nodes: ${seen.get(b.path)} and ${l.node}`);
    seen.set(b.path, l.node);
    const info = declare(b, b.path);
    b.inputA = info.inputA;
    b.inputB = info.inputB;
  }
  const { nodes: ns, delta: packed } = packedDeltaNodes(l, branches, (t) => site.addInit(t), { x: site.precision.input(l), dtype: site.precision.dtype(l) });
  const delta = site.precision.output(l, ns, packed);
  // fp16 4-bit products feed GroupQueryAttention, which runs fp16 on the CPU EP: the same join as
  // for fp16-capable data-movement readers keeps the product in fp16 (see insertBranch).
  addDelta(site, l, `/tensorpeft/packed/${l.graphPath}`, ns, delta, site.keepsFp16Neighbour(l));
  return true;
}

/**
 * Branches in the subgraphs of `nodes` (If's then/else branches, Loop/Scan bodies), recursively: every
 * linear matching a target gets a branch reading the main graph's inputs (`declare` adds them once
 * per module). Initializers of outer scopes are visible inside, as ONNX scoping has it (merged
 * decoders keep the shared weights on the main graph).
 */
function rewriteSubgraphs(nodes: readonly NodeProto[], outer: readonly TensorProto[], targets: readonly string[], declare: (l: FoundLinear, path: string) => BranchInfo, branchDtype?: BranchDtype): void {
  for (const nd of nodes) {
    for (const a of nd.attribute ?? []) {
      const subs = a.g ? [a.g] : (a.graphs ?? []);
      for (const sg of subs) {
        const visible = [...outer, ...(sg.initializer ?? [])];
        const sub = [...(sg.node ?? [])];
        const linears = findLinearsIn(sub, visible);
        const site = branchSite(sub, visible, sg.output ?? [], (t) => (sg.initializer = [...(sg.initializer ?? []), t]), branchDtype);
        const seen = new Map<string, string>();
        for (const l of linears) {
          const path = matchTarget(l.graphPath, targets);
          if (path === undefined) continue;
          if (seen.has(path)) throw new PluginError(`module ${path} maps to two nodes of subgraph ${sg.name}: ${seen.get(path)} and ${l.node}`);
          seen.set(path, l.node);
          const info = declare(l, path);
          insertBranch(site, l, path, info.inputA, info.inputB);
        }
        rewriteSubgraphs(sub, visible, targets, declare, branchDtype);
        sg.node = site.ordered().map((n) => onnx.NodeProto.fromObject(n));
        sg.initializer = (sg.initializer ?? []).map((t) => (t instanceof onnx.TensorProto ? t : onnx.TensorProto.fromObject(t)));
      }
    }
  }
}

/** Decode ONNX bytes (the plugin decodes once when it must look at a model before rewriting it). */
export function decodeModel(bytes: Uint8Array, file = 'model'): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    // protobufjs throws plain Errors/RangeErrors ("invalid wire type", "index out of range").
    throw new ModelFormatError(`${file}: not an ONNX model (${bytes.length} bytes do not decode as a ModelProto: ${(e as Error).message})`);
  }
  if (!model.graph) throw new ModelFormatError(`${file}: the ONNX model has no graph`);
  return model;
}

/**
 * Rewrite model bytes (or an already decoded model, which is modified in place); see the module
 * comment. Throws if a target maps to two graph linears, or (PluginError, naming the tensor) if an
 * external data reference is malformed or leaves the model folder.
 */
export function rewriteModel(
  bytes: Uint8Array | ModelProto,
  opts: RewriteOptions,
  // Hook for proto-splice.ts: encodes the rewritten model (there: with the untouched initializer
  // fields spliced through from the source bytes instead of re-encoded).
  encode: (model: ModelProto) => Uint8Array = (m) => onnx.ModelProto.encode(m).finish(),
): RewriteResult {
  const file = opts.modelFile ?? 'model';
  const model = bytes instanceof Uint8Array ? decodeModel(bytes, file) : bytes;
  if (!model.graph) throw new ModelFormatError(`${file}: the ONNX model has no graph`);
  const g = model.graph;
  // Checked even in branch mode, where ORT reads them: a bad reference is a typed error here rather
  // than a native one (or a read outside the model folder) at session creation.
  externalLocations(g);
  if ((g.input ?? []).some((v) => (v.name ?? '').startsWith(INPUT_PREFIX))) throw new PluginError('model graph was already rewritten by tensorpeft (it has tensorpeft.* inputs)');
  const linears = findLinears(model);
  const nodes = [...(g.node ?? [])];
  const site = branchSite(nodes, g.initializer ?? [], g.output ?? [], (t) => g.initializer!.push(t), opts.branchDtype);
  const branches: BranchInfo[] = [];
  const seen = new Map<string, string>();
  const heads: FoundLinear[] = [];
  const merged: MergedInfo[] = [];
  const token = `${Date.now().toString(36)}${(rewriteCounter++).toString(36)}`;
  const initByName = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) initByName.set(t.name!, t);
  const uses = new Map<string, number>();
  for (const nd of nodes) for (const x of nd.input ?? []) uses.set(x, (uses.get(x) ?? 0) + 1);
  const dropInits = new Set<string>();
  /** Graph inputs A [n, ρ] and B [ρ, m] of module `path` (m: the module's own output width). */
  const declareBranch = (l: FoundLinear, path: string, m: number): BranchInfo => {
    const inputA = `${INPUT_PREFIX}${path}.A`;
    const inputB = `${INPUT_PREFIX}${path}.B`;
    // One rank dim per module: an adapter may leave modules out (ρ = 0 there) or use other ranks per
    // module, and ORT plans buffers as if equal dim names had equal sizes.
    const rankDim = `${RANK_DIM}_${branches.length}`;
    // In the activation dtype: an fp16 graph gets fp16 adapter inputs (the plugin converts, dtype.ts),
    // unless its branches run in fp32 (branchDtype, branch-dtype.ts).
    g.input!.push(floatInput(inputA, [l.n, rankDim], branchInputDtype(l.dtype, opts.branchDtype)));
    g.input!.push(floatInput(inputB, [rankDim, m], branchInputDtype(l.dtype, opts.branchDtype)));
    const info = { path, graphPath: l.graphPath, node: l.node, inputA, inputB, n: l.n, m };
    branches.push(info);
    return info;
  };
  for (const l of linears) {
    const path = matchTarget(l.graphPath, opts.targets);
    // Hook: packed products (genai `qkv_proj`, `gate_up_proj`) get one branch per targeted column slice (rewrite-packed.ts).
    if (path === undefined && insertPacked(site, l, nodes, g.initializer ?? [], opts.targets, seen, (sl, p) => declareBranch(l, p, sl.width))) continue;
    if (path === undefined) {
      // A module target_modules left out: untouched (not a head whose weights could be overridden).
      if (!opts.untargeted || matchTarget(l.graphPath, opts.untargeted) === undefined) heads.push(l);
      continue;
    }
    if (seen.has(path)) throw new PluginError(`module ${path} maps to two graph nodes: ${seen.get(path)} and ${l.node}`);
    seen.set(path, l.node);
    // Merge mode replaces float weights only; quantized products (q8, q4, bnb4) keep branches.
    if (opts.mode === 'merge' && (l.op === 'MatMul' || l.op === 'Gemm')) {
      const input = `${MERGE_PREFIX}${token}.${path}`;
      const t = initByName.get(l.weight)!;
      const dims = (t.dims ?? []).map(num) as [number, number];
      BASE_WEIGHTS.set(input, { data: initFloats(t, opts.external, file), layout: l.weightLayout });
      // The node reading the initializer (the linear, or the Identity/Transpose in between).
      const rd = nodes[l.weightReader]!;
      rd.input = (rd.input ?? []).map((x, i) => (i === l.weightReaderInput ? input : x));
      if (uses.get(l.weight) === 1) dropInits.add(l.weight);
      g.input!.push(floatInput(input, dims, l.dtype));
      merged.push({ path, graphPath: l.graphPath, node: l.node, input, layout: l.weightLayout, dims, n: l.n, m: l.m });
      continue;
    }
    const inputA = `${INPUT_PREFIX}${path}.A`;
    const inputB = `${INPUT_PREFIX}${path}.B`;
    insertBranch(site, l, path, inputA, inputB);
    declareBranch(l, path, l.m);
  }

  const params: ParamInfo[] = [];
  if (opts.overridableHeads ?? true) {
    const inits = new Map<string, TensorProto>();
    for (const t of g.initializer ?? []) inits.set(t.name!, t);
    const axes1 = '/tensorpeft/param/axes1';
    const zeroIdx = '/tensorpeft/param/zero';
    const INT = onnx.AttributeProto.AttributeType.INT;
    const INTS = onnx.AttributeProto.AttributeType.INTS;
    let added = false;
    for (const l of heads) {
      // Gemm heads with named parameters and plain alpha = beta = 1 (what torch exports for nn.Linear).
      // Named by what the Gemm reads: the state-dict name, even where it is an Identity alias of a
      // de-duplicated tensor (PEFT's modules_to_save keys use that name).
      const wName = l.weightAlias ?? l.weight;
      const bName = l.biasAlias ?? l.bias;
      if (l.op !== 'Gemm' || wName.startsWith('onnx::') || (bName !== undefined && bName.startsWith('onnx::'))) continue;
      const nd = nodes[l.outputNodeIndex]!;
      const fattr = (name: string): number => {
        const a = (nd.attribute ?? []).find((x) => x.name === name);
        return a ? (a.f ?? 1) : 1;
      };
      if (fattr('alpha') !== 1 || fattr('beta') !== 1) continue;
      const wt = inits.get(l.weight)!;
      if (wt.dataType !== FLOAT && wt.dataType !== FLOAT16) continue;
      const wDims = (wt.dims ?? []).map(num);
      const wIn = `${PARAM_PREFIX}${wName}`;
      const scope = `/tensorpeft/param/${l.graphPath}`;
      const overDim = `${OVERRIDE_DIM}_${params.length}`;
      g.input!.push(floatInput(wIn, [overDim, ...wDims], l.dtype));
      params.push({ name: wName, input: wIn, dims: wDims });
      // Base path untouched (same kernel, same constant weights as the base model); the override
      // path computes x·Wᵀ + b from the fed tensors; the first `out` columns of [override, base] are the
      // override when one row is fed and the base output, bit for bit, when none is.
      const base = `${l.output}/tensorpeft_base`;
      nd.output = (nd.output ?? []).map((o) => (o === l.output ? base : o));
      // Override product on 2-D tensors (no broadcasting over an empty batch): W [k, …] → [in, k·out],
      // x·W → [B, k·out] (+ b [1, k·out]), Concat with the base [B, out] on axis 1, first `out` columns.
      const ns: NodeProto[] = [];
      if (l.weightLayout === 'out_in') {
        ns.push({ name: `${scope}/Flatten`, opType: 'Flatten', input: [wIn], output: [`${scope}/w2`], attribute: [{ name: 'axis', type: INT, i: 2 }] });
        ns.push({ name: `${scope}/Transpose`, opType: 'Transpose', input: [`${scope}/w2`], output: [`${scope}/w`], attribute: [{ name: 'perm', type: INTS, ints: [1, 0] }] });
      } else {
        ns.push({ name: `${scope}/Transpose`, opType: 'Transpose', input: [wIn], output: [`${scope}/wt`], attribute: [{ name: 'perm', type: INTS, ints: [1, 0, 2] }] });
        ns.push({ name: `${scope}/Flatten`, opType: 'Flatten', input: [`${scope}/wt`], output: [`${scope}/w`], attribute: [{ name: 'axis', type: INT, i: 1 }] });
      }
      ns.push({ name: `${scope}/MatMul`, opType: 'MatMul', input: [l.input, `${scope}/w`], output: [`${scope}/xw`] });
      let over = `${scope}/xw`;
      if (l.bias) {
        const bt = inits.get(l.bias)!;
        const bDims = (bt.dims ?? []).map(num);
        const bIn = `${PARAM_PREFIX}${bName}`;
        g.input!.push(floatInput(bIn, [overDim, ...bDims], l.dtype));
        params.push({ name: bName!, input: bIn, dims: bDims });
        ns.push({ name: `${scope}/Flatten_bias`, opType: 'Flatten', input: [bIn], output: [`${scope}/b`], attribute: [{ name: 'axis', type: INT, i: 0 }] });
        ns.push({ name: `${scope}/Add`, opType: 'Add', input: [over, `${scope}/b`], output: [`${scope}/xwb`] });
        over = `${scope}/xwb`;
      }
      if (l.dtype === 'float16') {
        // fp16 graphs: onnxruntime's CPU EP runs fp16 arithmetic it has no fp16 kernel for in fp32
        // (casts it inserts, then drops between such nodes), so the base Gemm's output reaches its
        // consumer unrounded; Concat/Slice do have fp16 kernels and would round it there. An
        // arithmetic correction keeps the chain: y = base + Σ_k (override_k − base) over the k ∈ {0, 1}
        // fed rows — an empty sum (nothing fed) adds exact zeros; one row gives the override (within
        // one rounding of |base|, far below fp16's own error).
        const shape3 = `${scope}/shape3`;
        g.initializer!.push({ name: shape3, dataType: INT64, dims: [3], int64Data: [0, -1, l.m] });
        ns.push({ name: `${scope}/Reshape`, opType: 'Reshape', input: [over, shape3], output: [`${scope}/over3`] });
        ns.push({ name: `${scope}/Unsqueeze`, opType: 'Unsqueeze', input: [base, axes1], output: [`${scope}/base3`] });
        ns.push({ name: `${scope}/Sub`, opType: 'Sub', input: [`${scope}/over3`, `${scope}/base3`], output: [`${scope}/diff`] });
        ns.push({ name: `${scope}/ReduceSum`, opType: 'ReduceSum', input: [`${scope}/diff`, axes1], output: [`${scope}/corr`], attribute: [{ name: 'keepdims', type: INT, i: 0 }] });
        ns.push({ name: `${scope}/Add_override`, opType: 'Add', input: [base, `${scope}/corr`], output: [l.output] });
      } else {
        const ends = `${scope}/ends`;
        g.initializer!.push({ name: ends, dataType: INT64, dims: [1], int64Data: [l.m] });
        ns.push({ name: `${scope}/Concat`, opType: 'Concat', input: [over, base], output: [`${scope}/both`], attribute: [{ name: 'axis', type: INT, i: 1 }] });
        ns.push({ name: `${scope}/Slice`, opType: 'Slice', input: [`${scope}/both`, zeroIdx, ends, axes1], output: [l.output] });
      }
      site.addAfter(l.outputNodeIndex, ns);
      added = true;
    }
    if (added) {
      g.initializer!.push({ name: zeroIdx, dataType: INT64, dims: [1], int64Data: [0] });
      g.initializer!.push({ name: axes1, dataType: INT64, dims: [1], int64Data: [1] });
    }
  }

  // Linears inside If/Loop/Scan subgraphs (merged decoders): branches only, their inputs declared
  // on the main graph once per module and read by the subgraphs as outer-scope values.
  rewriteSubgraphs(nodes, g.initializer ?? [], opts.targets, (l, path) => {
    const known = branches.find((b) => b.path === path);
    if (known) {
      if (known.n !== l.n || known.m !== l.m) throw new PluginError(`module ${path} is [${l.m}, ${l.n}] in a subgraph but [${known.m}, ${known.n}] elsewhere`);
      return known;
    }
    const inputA = `${INPUT_PREFIX}${path}.A`;
    const inputB = `${INPUT_PREFIX}${path}.B`;
    const rankDim = `${RANK_DIM}_${branches.length}`;
    g.input!.push(floatInput(inputA, [l.n, rankDim], branchInputDtype(l.dtype, opts.branchDtype)));
    g.input!.push(floatInput(inputB, [rankDim, l.m], branchInputDtype(l.dtype, opts.branchDtype)));
    const info = { path, graphPath: l.graphPath, node: l.node, inputA, inputB, n: l.n, m: l.m };
    branches.push(info);
    return info;
  }, opts.branchDtype);
  g.node = site.ordered().map((n) => onnx.NodeProto.fromObject(n));
  g.input = (g.input ?? []).map((v) => onnx.ValueInfoProto.fromObject(v));
  g.initializer = (g.initializer ?? []).filter((t) => !dropInits.has(t.name!)).map((t) => (t instanceof onnx.TensorProto ? t : onnx.TensorProto.fromObject(t)));
  // Hook: per-row adapters (mixed-rewrite.ts), opt-in.
  // Hook: branches reading one tensor share their products (rewrite-siblings.ts), opt-in; not with mixed batches.
  if (opts.fuseSiblings && !opts.mixedBatches) fuseSiblings(model, branches);
  if (opts.mixedBatches) toMixedBatches(model, branches, params, merged);
  return { bytes: encode(model), branches, params, merged };
}
