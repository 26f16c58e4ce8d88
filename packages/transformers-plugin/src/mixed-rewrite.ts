/**
 * Mixed-adapter batches, graph side (issue 16): one run over a batch whose rows each use their own
 * adapter, as Punica/S-LoRA's gathered (SGMV-style) LoRA does on GPUs, in plain ONNX ops that every
 * onnxruntime EP has (Gather, batched MatMul, Reshape, Where).
 *
 * Applied to a graph that `rewriteModel` already gave side branches (opt-in, `mixedBatches`). Every
 * branch input becomes a stack over adapter slots — `tensorpeft.<path>.A: [slots, n, rho]`,
 * `tensorpeft.<path>.B: [slots, rho, m]` (s folded into B as before) — and one int64 input
 * `tensorpeft.mixed.rows: [rows]` names each batch row's slot. Per module:
 *
 *     x [b, …, n] → Reshape [rows, −1, n] → MatMul Gather(A, rows) → MatMul Gather(B, rows) → Reshape [b, …, m]
 *
 * then the branch's own Add (into the output or the residual) is unchanged. Slot 0 of a stack is
 * zeros ("no adapter"), and ranks are padded with zero columns to the largest of the set: exact,
 * since a zero column adds exact zeros; a row on slot 0 gets `y + 0 = y`, the base output bit for bit.
 * `rows` of length 1 applies one slot to the whole batch: single-adapter runs feed the adapter's own
 * tensors as a one-slot stack ([1, n, ρ], no copy) and `rows = [0]`.
 *
 * Head overrides (modules_to_save Gemms, `tensorpeft.param.*: [slots, …dims]`) become per row too:
 * the override product uses each row's gathered weight and bias, and `Where(mask[rows], override,
 * base)` with `tensorpeft.mixed.head.<weight>: bool [slots]` (true where the slot's adapter replaces
 * that head) picks the base Gemm's own output, bit for bit, on the other rows.
 *
 * The reshape to [rows, −1, n] needs rows to be the leading (batch-major) dimension of every linear's
 * input: true of transformer linears ([b, t, n], or [b·t, n] for GPT-2's Conv1D Gemm, or [b, n]
 * for pooled heads). Works inside If/Loop/Scan subgraphs (merged decoders): the gathers and shape
 * constants live on the main graph and are read as outer-scope values.
 */
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import type { BranchInfo, MergedInfo, ParamInfo } from './rewrite-types.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

/** Prefix of the mixed-batch inputs (`tensorpeft.mixed.rows`, `tensorpeft.mixed.head.<weight>`). */
export const MIXED_PREFIX = 'tensorpeft.mixed.';
/** int64 [rows]: each batch row's adapter slot (length 1: one slot for the whole batch). */
export const MIXED_ROWS = `${MIXED_PREFIX}rows`;
/** bool [slots] per overridable head (named by its weight's graph input): the slot replaces that head. */
export const MIXED_HEAD_PREFIX = `${MIXED_PREFIX}head.`;
/** Symbolic dims: the slot count of every stack, and the row count. */
export const SLOTS_DIM = 'mixed_slots';
export const ROWS_DIM = 'mixed_rows';

const INT64 = onnx.TensorProto.DataType.INT64;
const BOOL = onnx.TensorProto.DataType.BOOL;
const INT = onnx.AttributeProto.AttributeType.INT;
const INTS = onnx.AttributeProto.AttributeType.INTS;

const SCOPE = '/tensorpeft/mixed';

/** Main-graph helpers shared by all branches: `[rows, −1, k]` shapes, constants. */
class Shared {
  readonly nodes: NodeProto[] = [];
  readonly inits: TensorProto[] = [];
  private readonly made = new Set<string>();
  readonly rowsLen = `${SCOPE}/rows_len`;

  constructor() {
    this.nodes.push({ name: `${SCOPE}/Shape_rows`, opType: 'Shape', input: [MIXED_ROWS], output: [this.rowsLen] });
  }

  private const64(name: string, values: number[]): string {
    if (!this.made.has(name)) {
      this.made.add(name);
      this.inits.push({ name, dataType: INT64, dims: [values.length], int64Data: values });
    }
    return name;
  }

  /** int64 tensor `[rows, −1, k]`. */
  rowsShape(k: number): string {
    const out = `${SCOPE}/shape_rows_${k}`;
    if (!this.made.has(out)) {
      this.made.add(out);
      const tail = this.const64(`${SCOPE}/tail_${k}`, [-1, k]);
      this.nodes.push({ name: `${SCOPE}/Concat_shape_${k}`, opType: 'Concat', input: [this.rowsLen, tail], output: [out], attribute: [{ name: 'axis', type: INT, i: 0 }] });
    }
    return out;
  }

  c(name: string, values: number[]): string {
    return this.const64(`${SCOPE}/${name}`, values);
  }

  /** `Gather(input, rows)` on axis 0, computed once on the main graph. */
  gathered(input: string): string {
    const out = `${SCOPE}/gathered/${input}`;
    if (!this.made.has(out)) {
      this.made.add(out);
      this.nodes.push({ name: `${SCOPE}/Gather/${input}`, opType: 'Gather', input: [input, MIXED_ROWS], output: [out], attribute: [{ name: 'axis', type: INT, i: 0 }] });
    }
    return out;
  }
}

/** Nodes computing `Shape(x)[:-1] ++ [k]` into `out` (in x's own graph). */
function leadingShape(sh: Shared, scope: string, x: string, k: number, out: string): NodeProto[] {
  return [
    { name: `${scope}/Shape_x`, opType: 'Shape', input: [x], output: [`${scope}/xshape`] },
    { name: `${scope}/Slice_lead`, opType: 'Slice', input: [`${scope}/xshape`, sh.c('zero', [0]), sh.c('minus1', [-1]), sh.c('zero', [0])], output: [`${scope}/lead`] },
    { name: `${scope}/Concat_out`, opType: 'Concat', input: [`${scope}/lead`, sh.c(`k_${k}`, [k])], output: [out], attribute: [{ name: 'axis', type: INT, i: 0 }] },
  ];
}

function retypeStack(g: GraphProto, name: string): void {
  const v = (g.input ?? []).find((x) => x.name === name);
  const dims = v?.type?.tensorType?.shape?.dim;
  if (!v || !dims || dims.length !== 2) throw new PluginError(`mixed batches: graph input ${name} is not a 2-D branch input`);
  v.type!.tensorType!.shape!.dim = [{ dimParam: SLOTS_DIM }, ...dims];
}

/** A head parameter input `[override, …dims]` gathered per row: its first dim becomes the slot dim. */
function retypeSlots(g: GraphProto, name: string): void {
  const dims = (g.input ?? []).find((x) => x.name === name)?.type?.tensorType?.shape?.dim;
  if (!dims || dims.length === 0) throw new PluginError(`mixed batches: graph input ${name} has no shape`);
  dims[0] = { dimParam: SLOTS_DIM };
}

/**
 * Replace the two MatMuls of each branch in `nodes` (one graph) by their per-row form; recurse into
 * subgraphs. Per module: MatMul(x3, A[rows]) → MatMul(·, B[rows]) → Reshape to the shape of the
 * tensor the delta is added to (Shape of the Add's other operand). x3 = x as [rows, −1, n] is
 * shared by the modules reading the same x (q, k, v): few extra nodes per module, which is what a
 * tiny model's token step pays for.
 */
function rewriteBranches(nodes: NodeProto[], byA: ReadonlyMap<string, BranchInfo>, sh: Shared, done: Set<string>): NodeProto[] {
  const out: NodeProto[] = [];
  const pendingB = new Map<string, { info: BranchInfo; x: string; xA: string; scope: string }>();
  const x3Of = new Map<string, string>();
  const shapeOf = new Map<string, string>();
  const consumers = new Map<string, NodeProto[]>();
  for (const nd of nodes) for (const i of nd.input ?? []) consumers.set(i, [...(consumers.get(i) ?? []), nd]);
  for (const nd of nodes) {
    for (const a of nd.attribute ?? []) {
      if (a.g) a.g.node = rewriteBranches([...(a.g.node ?? [])], byA, sh, done).map((n) => onnx.NodeProto.fromObject(n));
      for (const sg of a.graphs ?? []) sg.node = rewriteBranches([...(sg.node ?? [])], byA, sh, done).map((n) => onnx.NodeProto.fromObject(n));
    }
    const ins = nd.input ?? [];
    const info = nd.opType === 'MatMul' && ins.length === 2 ? byA.get(ins[1]!) : undefined;
    if (info) {
      const scope = `${SCOPE}/${info.path}`;
      const x = ins[0]!;
      const xA = `${scope}/xA`;
      let x3 = x3Of.get(`${x}|${info.n}`);
      if (x3 === undefined) {
        x3 = `${scope}/x3`;
        x3Of.set(`${x}|${info.n}`, x3);
        out.push({ name: `${scope}/Reshape_x`, opType: 'Reshape', input: [x, sh.rowsShape(info.n)], output: [x3] });
      }
      out.push({ name: `${scope}/MatMul_A`, opType: 'MatMul', input: [x3, sh.gathered(info.inputA)], output: [xA] });
      // The branch's second MatMul reads this node's output.
      pendingB.set(nd.output![0]!, { info, x, xA, scope });
      done.add(info.inputA);
      continue;
    }
    const p = nd.opType === 'MatMul' && ins.length === 2 ? pendingB.get(ins[0]!) : undefined;
    if (p && ins[1] === p.info.inputB) {
      const { scope, info } = p;
      const delta = nd.output![0]!;
      out.push({ name: `${scope}/MatMul_B`, opType: 'MatMul', input: [p.xA, sh.gathered(info.inputB)], output: [`${scope}/d3`] });
      // The delta is added to a tensor of its shape (the base product, or the residual): take that
      // tensor's shape; else (fp16 joins) x's leading dims and m.
      const use = consumers.get(delta) ?? [];
      const add = use.length === 1 && use[0]!.opType === 'Add' && (use[0]!.input ?? []).length === 2 ? use[0]! : undefined;
      const other = add ? add.input!.find((i) => i !== delta) : undefined;
      let dshape: string;
      if (other !== undefined) {
        dshape = shapeOf.get(other) ?? `${scope}/dshape`;
        if (!shapeOf.has(other)) {
          shapeOf.set(other, dshape);
          out.push({ name: `${scope}/Shape_sum`, opType: 'Shape', input: [other], output: [dshape] });
        }
      } else {
        dshape = `${scope}/dshape`;
        out.push(...leadingShape(sh, scope, p.x, info.m, dshape));
      }
      out.push({ name: `${scope}/Reshape_delta`, opType: 'Reshape', input: [`${scope}/d3`, dshape], output: [delta] });
      done.add(info.inputB);
      continue;
    }
    out.push(nd);
  }
  return out;
}

/**
 * The nodes of head override `weight` (graph input) as rewriteModel builds them in fp32 graphs
 * (Concat/Slice form); undefined for the fp16 form (an arithmetic correction, see rewrite.ts), which
 * is left as it is: such a head is overridden for a whole batch only (mixed-feeds.ts refuses a
 * mixed call in which an adapter replaces it).
 */
function headPattern(nodes: readonly NodeProto[], weight: string): { scope: string; x: string; base: string; y: string; layout: 'out_in' | 'in_out'; bias?: string } | undefined {
  const reader = nodes.find((n) => (n.input ?? []).includes(weight));
  const name = reader?.name ?? '';
  const scope = name.slice(0, name.lastIndexOf('/'));
  const inScope = (op: string): NodeProto | undefined => nodes.find((n) => n.name === `${scope}/${op}`);
  const mm = inScope('MatMul');
  const concat = inScope('Concat');
  const slice = inScope('Slice');
  if (!reader || !scope.startsWith('/tensorpeft/param/') || !mm) throw new PluginError(`mixed batches: no override product found for head parameter ${weight}`);
  if (!concat || !slice) return undefined;
  const biasNode = inScope('Flatten_bias');
  return {
    scope,
    x: mm.input![0]!,
    base: concat.input![1]!,
    y: slice.output![0]!,
    layout: reader.opType === 'Flatten' ? 'out_in' : 'in_out',
    ...(biasNode ? { bias: biasNode.input![0]! } : {}),
  };
}

/**
 * Turn a branch-mode rewrite (`rewriteModel`'s result, `model` still decoded) into its mixed-batch
 * form, in place (see the module comment). `params`: the overridable head parameters it made.
 */
export function toMixedBatches(model: ModelProto, branches: readonly BranchInfo[], params: readonly ParamInfo[], merged: readonly MergedInfo[] = []): void {
  if (merged.length > 0) throw new PluginError('mixed batches need branch mode: merge mode feeds one merged weight per module for the whole batch');
  const g = model.graph!;
  const sh = new Shared();
  const byA = new Map(branches.map((b) => [b.inputA, b]));
  const done = new Set<string>();
  let nodes = rewriteBranches([...(g.node ?? [])], byA, sh, done);
  for (const b of branches) {
    if (!done.has(b.inputA) || !done.has(b.inputB)) throw new PluginError(`mixed batches: no side branch found for module ${b.path} (${b.inputA})`);
    retypeStack(g, b.inputA);
    retypeStack(g, b.inputB);
  }
  const newInputs: onnxProto.onnx.IValueInfoProto[] = [
    { name: MIXED_ROWS, type: { tensorType: { elemType: INT64, shape: { dim: [{ dimParam: ROWS_DIM }] } } } },
  ];
  // Heads: one per weight input (a bias rides with its weight).
  const inputs = new Set(params.map((p) => p.input));
  for (const p of params) {
    const pat = (() => {
      const reader = nodes.find((n) => (n.input ?? []).includes(p.input));
      return reader && !(reader.name ?? '').endsWith('/Flatten_bias') ? headPattern(nodes, p.input) : undefined;
    })();
    if (!pat) continue;
    if (pat.bias !== undefined && !inputs.has(pat.bias)) throw new PluginError(`mixed batches: head ${p.name}'s bias input ${pat.bias} is not an overridable parameter`);
    retypeSlots(g, p.input);
    if (pat.bias !== undefined) retypeSlots(g, pat.bias);
    const [d0, d1] = p.dims as [number, number];
    const nIn = pat.layout === 'out_in' ? d1 : d0;
    const out = pat.layout === 'out_in' ? d0 : d1;
    const scope = `${SCOPE}/head/${p.name}`;
    const mask = `${MIXED_HEAD_PREFIX}${p.input}`;
    newInputs.push({ name: mask, type: { tensorType: { elemType: BOOL, shape: { dim: [{ dimParam: SLOTS_DIM }] } } } });
    const ns: NodeProto[] = [];
    let w = sh.gathered(p.input);
    if (pat.layout === 'out_in') {
      ns.push({ name: `${scope}/Transpose`, opType: 'Transpose', input: [w], output: [`${scope}/wt`], attribute: [{ name: 'perm', type: INTS, ints: [0, 2, 1] }] });
      w = `${scope}/wt`;
    }
    ns.push({ name: `${scope}/Reshape_x`, opType: 'Reshape', input: [pat.x, sh.rowsShape(nIn)], output: [`${scope}/x3`] });
    ns.push({ name: `${scope}/MatMul`, opType: 'MatMul', input: [`${scope}/x3`, w], output: [`${scope}/xw`] });
    let over = `${scope}/xw`;
    if (pat.bias !== undefined) {
      ns.push({ name: `${scope}/Unsqueeze_bias`, opType: 'Unsqueeze', input: [sh.gathered(pat.bias), sh.c('one', [1])], output: [`${scope}/b3`] });
      ns.push({ name: `${scope}/Add_bias`, opType: 'Add', input: [over, `${scope}/b3`], output: [`${scope}/xwb`] });
      over = `${scope}/xwb`;
    }
    ns.push({ name: `${scope}/Reshape_base`, opType: 'Reshape', input: [pat.base, sh.rowsShape(out)], output: [`${scope}/base3`] });
    ns.push({ name: `${scope}/Reshape_mask`, opType: 'Reshape', input: [sh.gathered(mask), sh.c('mask_shape', [-1, 1, 1])], output: [`${scope}/mask3`] });
    ns.push({ name: `${scope}/Where`, opType: 'Where', input: [`${scope}/mask3`, over, `${scope}/base3`], output: [`${scope}/y3`] });
    ns.push({ name: `${scope}/Shape_base`, opType: 'Shape', input: [pat.base], output: [`${scope}/yshape`] });
    ns.push({ name: `${scope}/Reshape_y`, opType: 'Reshape', input: [`${scope}/y3`, `${scope}/yshape`], output: [pat.y] });
    // Drop rewriteModel's override nodes of this head; ours go where its Slice was.
    const at = nodes.findIndex((n) => (n.output ?? []).includes(pat.y));
    const kept: NodeProto[] = [];
    nodes.forEach((n, i) => {
      if (i === at) kept.push(...ns);
      if (!(n.name ?? '').startsWith(`${pat.scope}/`)) kept.push(n);
    });
    nodes = kept;
  }
  // Shared nodes first: they read graph inputs and initializers only.
  g.node = [...sh.nodes, ...nodes].map((n) => onnx.NodeProto.fromObject(n));
  g.initializer = [...(g.initializer ?? []), ...sh.inits.map((t) => onnx.TensorProto.fromObject(t))];
  g.input = [...(g.input ?? []), ...newInputs.map((v) => onnx.ValueInfoProto.fromObject(v))];
}
