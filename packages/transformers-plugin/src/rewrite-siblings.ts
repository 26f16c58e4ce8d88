/**
 * Sibling fusion (issue 12, branch overhead per generated token), graph side: targeted linears that
 * read the SAME input tensor (q/k/v after the input norm, gate/up after the post-attention norm,
 * the column slices of a packed genai `qkv_proj` / `gate_up_proj`) share one pair of products
 *
 *     x → MatMul [A′₁ | A′₂ | A′₃] → h [.., Σρ] → MatMul blockdiag(s₁B′₁ᵀ, s₂B′₂ᵀ, s₃B′₃ᵀ) → [.., Σm] → Split
 *
 * instead of one (x·A′ᵢ)·B′ᵢ pair per module. Why: at decode (M = 1) the branch's products are a
 * few thousand multiply-adds each, and onnxruntime's per-node cost is what a branch costs (profiled
 * on the SmolLM-shaped LLaMA q4: a branch MatMul ≈ 8 µs of kernel time for ~10⁴ MACs, an Add ≈ 5 µs;
 * scripts/profile-branch-nodes.mts). Fusing q/k/v and gate/up takes a LLaMA layer's 14 branch
 * MatMuls to 8 (+2 Splits); the per-module Adds stay, so that the deltas still land where
 * rewrite.ts puts them (the residual operand before a SkipLayerNormalization chain, the fp16 join,
 * a packed product's Concat). Measured on the CPU EP, the whole decode step was not resolvably faster
 * (scripts/step-ratio.mts; README, sibling fusion), so the plugin leaves it off by default.
 *
 * A post-pass over what rewriteModel already wrote (like mixed-rewrite.ts), opt-in
 * (`RewriteOptions.fuseSiblings`): it finds each branch as MatMul(x, `tensorpeft.<path>.A`) read
 * only by MatMul(·, `tensorpeft.<path>.B`), groups the pairs of one graph by x, and replaces every
 * group of two or more with the fused products. The second product's output is split back into
 * the member deltas under their old names, so every consumer is untouched; where the deltas only
 * feed one Concat in the same order (a packed product whose slices are all targeted), the fused
 * product writes the Concat's output directly and the Split and Concat go.
 *
 * The fused inputs are named after their members, so the registry can feed them from the graph
 * alone (a rewrite-cache hit in another process included): `tensorpeft.siblings:<path>=<m>,….A`
 * [n, ρ_g] and `….B` [ρ_g, Σm] (one symbolic rank dim per group, as rewrite.ts gives per module).
 * The block-diagonal second product does Σρ·Σm multiply-adds instead of Σρᵢmᵢ (3× on q/k/v with
 * equal ranks): at decode that is ~10⁴ more, far below one node's overhead; on a long prefill it
 * is a few % of the base linear's own work at usual ranks. Disabled (every ρᵢ = 0) the fused
 * product is zeros and base + 0 = base, bit for bit, as before.
 */
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import type { BranchInfo } from './rewrite-types.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;
type ValueInfo = onnxProto.onnx.IValueInfoProto;

/** Prefix of the fused inputs (`tensorpeft.siblings:<path>=<m>,<path>=<m>.A|B`). */
export const SIBLINGS_PREFIX = 'tensorpeft.siblings:';
/** Prefix of the fused groups' symbolic rank dims (`rho_s0`, …). */
const GROUP_RANK_DIM = 'rho_s';

const INT64 = onnx.TensorProto.DataType.INT64;
const INT = onnx.AttributeProto.AttributeType.INT;
const INTS = onnx.AttributeProto.AttributeType.INTS;

/** One module of a fused group: its path and output width m (its columns of the fused output, in order). */
export interface SiblingMember {
  path: string;
  m: number;
}

/** A fused input pair and its members (parsed back from the names by `parseSiblingInput`). */
export interface SiblingGroup {
  inputA: string;
  inputB: string;
  members: SiblingMember[];
}

/** The fused input names of `members`. */
export function siblingInputNames(members: readonly SiblingMember[]): { inputA: string; inputB: string } {
  const key = `${SIBLINGS_PREFIX}${members.map((x) => `${x.path}=${x.m}`).join(',')}`;
  return { inputA: `${key}.A`, inputB: `${key}.B` };
}

/** The members a fused input name holds (undefined for any other name). */
export function parseSiblingInput(name: string): { members: SiblingMember[]; side: 'A' | 'B' } | undefined {
  if (!name.startsWith(SIBLINGS_PREFIX)) return undefined;
  const side = name.endsWith('.A') ? 'A' : name.endsWith('.B') ? 'B' : undefined;
  if (!side) return undefined;
  const body = name.slice(SIBLINGS_PREFIX.length, -2);
  const members: SiblingMember[] = [];
  for (const part of body.split(',')) {
    const eq = part.lastIndexOf('=');
    const m = Number(part.slice(eq + 1));
    if (eq <= 0 || !Number.isSafeInteger(m) || m <= 0) return undefined;
    members.push({ path: part.slice(0, eq), m });
  }
  return members.length >= 2 ? { members, side } : undefined;
}

/** A branch pair found in a graph. */
interface Pair {
  info: BranchInfo;
  /** Indices of MatMul_A and MatMul_B in the graph's node list. */
  a: number;
  b: number;
  x: string;
  delta: string;
}

/** protobufjs int64 fields arrive as number or Long. */
function num(d: unknown): number {
  if (typeof d === 'number') return d;
  if (d && typeof (d as { toNumber?: () => number }).toNumber === 'function') return (d as { toNumber: () => number }).toNumber();
  return Number(d);
}

/** The default domain's opset (Split takes its sizes as an input from 13 on, as an attribute before). */
function opsetOf(model: ModelProto): number {
  const o = (model.opsetImport ?? []).find((x) => (x.domain ?? '') === '' || x.domain === 'ai.onnx');
  return o?.version === undefined || o.version === null ? 13 : num(o.version);
}

/**
 * Fuse sibling branches of every graph of `model` (main graph and If/Loop/Scan subgraphs), in
 * place; `branches` are rewriteModel's (their per-module inputs are dropped from the graph where no
 * node reads them any more). Returns the fused groups (each once, even where two subgraphs share
 * one, as a merged decoder's branches do).
 */
export function fuseSiblings(model: ModelProto, branches: readonly BranchInfo[]): SiblingGroup[] {
  const g = model.graph!;
  const byA = new Map(branches.map((b) => [b.inputA, b]));
  const declared = new Map<string, SiblingGroup>();
  const inputs = new Map((g.input ?? []).map((v) => [v.name!, v]));
  const opset = opsetOf(model);
  let counter = 0;
  const declare = (members: SiblingMember[], n: number, like: ValueInfo): SiblingGroup => {
    const names = siblingInputNames(members);
    const known = declared.get(names.inputA);
    if (known) return known;
    const elemType = like.type?.tensorType?.elemType ?? onnx.TensorProto.DataType.FLOAT;
    const rank = `${GROUP_RANK_DIM}${declared.size}`;
    const total = members.reduce((s, x) => s + x.m, 0);
    const vi = (name: string, dims: Array<number | string>): ValueInfo => ({
      name,
      type: { tensorType: { elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
    });
    g.input!.push(onnx.ValueInfoProto.fromObject(vi(names.inputA, [n, rank])));
    g.input!.push(onnx.ValueInfoProto.fromObject(vi(names.inputB, [rank, total])));
    const group = { ...names, members };
    declared.set(names.inputA, group);
    return group;
  };
  const fuseGraph = (graph: GraphProto): void => {
    const nodes = [...(graph.node ?? [])];
    const readers = new Map<string, number[]>();
    nodes.forEach((nd, i) => {
      for (const x of nd.input ?? []) {
        const l = readers.get(x);
        if (l) l.push(i);
        else readers.set(x, [i]);
      }
    });
    const outputs = new Set((graph.output ?? []).map((v) => v.name!));
    const byX = new Map<string, Pair[]>();
    nodes.forEach((nd, i) => {
      if (nd.opType !== 'MatMul' || (nd.domain ?? '') !== '') return;
      const info = byA.get(nd.input?.[1] ?? '');
      const xA = nd.output?.[0];
      if (!info || xA === undefined || outputs.has(xA)) return;
      const r = readers.get(xA) ?? [];
      const b = r.length === 1 ? r[0]! : -1;
      const nb = nodes[b];
      if (!nb || nb.opType !== 'MatMul' || nb.input?.[0] !== xA || nb.input?.[1] !== info.inputB) return;
      const x = nd.input![0]!;
      const l = byX.get(x) ?? [];
      l.push({ info, a: i, b, x, delta: nb.output![0]! });
      byX.set(x, l);
    });
    const drop = new Set<number>();
    const before = new Map<number, NodeProto[]>();
    for (const [x, pairs] of byX) {
      if (pairs.length < 2) continue;
      const members = pairs.map((p) => ({ path: p.info.path, m: p.info.m }));
      const n = pairs[0]!.info.n;
      if (pairs.some((p) => p.info.n !== n)) throw new PluginError(`sibling branches reading ${x} disagree on the input width: ${pairs.map((p) => `${p.info.path} ${p.info.n}`).join(', ')}`);
      const like = inputs.get(pairs[0]!.info.inputA);
      if (!like) throw new PluginError(`branch input ${pairs[0]!.info.inputA} is not declared on the main graph`);
      const group = declare(members, n, like);
      const scope = `/tensorpeft/siblings${counter++}`;
      const ns: NodeProto[] = [
        { name: `${scope}/MatMul_A`, opType: 'MatMul', input: [x, group.inputA], output: [`${scope}/xA`] },
      ];
      for (const p of pairs) drop.add(p.a).add(p.b);
      // The deltas' consumers: one Concat (last axis) of exactly these deltas in this order takes the
      // fused product as it is (a packed product with every slice targeted).
      const deltas = pairs.map((p) => p.delta);
      const cr = readers.get(deltas[0]!) ?? [];
      const concat = cr.length === 1 ? nodes[cr[0]!] : undefined;
      const axis = concat ? (concat.attribute ?? []).find((a) => a.name === 'axis') : undefined;
      const lastAxis = axis !== undefined && num(axis.i) === -1;
      const direct =
        concat !== undefined &&
        concat.opType === 'Concat' &&
        lastAxis &&
        (concat.input ?? []).length === deltas.length &&
        deltas.every((d, k) => concat.input![k] === d && (readers.get(d) ?? []).length === 1 && !outputs.has(d));
      if (direct) {
        ns.push({ name: `${scope}/MatMul_B`, opType: 'MatMul', input: [`${scope}/xA`, group.inputB], output: [concat.output![0]!] });
        drop.add(cr[0]!);
      } else {
        ns.push({ name: `${scope}/MatMul_B`, opType: 'MatMul', input: [`${scope}/xA`, group.inputB], output: [`${scope}/delta`] });
        const sizes = members.map((mm) => mm.m);
        if (opset >= 13) {
          const split = `${scope}/split`;
          const t: TensorProto = { name: split, dataType: INT64, dims: [sizes.length], int64Data: sizes };
          graph.initializer = [...(graph.initializer ?? []), onnx.TensorProto.fromObject(t)];
          ns.push({ name: `${scope}/Split`, opType: 'Split', input: [`${scope}/delta`, split], output: deltas, attribute: [{ name: 'axis', type: INT, i: -1 }] });
        } else {
          ns.push({ name: `${scope}/Split`, opType: 'Split', input: [`${scope}/delta`], output: deltas, attribute: [{ name: 'axis', type: INT, i: -1 }, { name: 'split', type: INTS, ints: sizes }] });
        }
      }
      // At the first member's MatMul_A: x and the graph inputs are all the fused nodes read, and
      // every consumer of a member delta came after that member's own MatMul_A.
      const first = Math.min(...pairs.map((p) => p.a));
      before.set(first, ns);
    }
    if (drop.size > 0) {
      const out: NodeProto[] = [];
      nodes.forEach((nd, i) => {
        for (const x of before.get(i) ?? []) out.push(x);
        if (!drop.has(i)) out.push(nd);
      });
      graph.node = out.map((nd) => (nd instanceof onnx.NodeProto ? nd : onnx.NodeProto.fromObject(nd)));
    }
    // Subgraphs (after this graph's own pass: their nodes are untouched by it).
    for (const nd of graph.node ?? []) for (const a of nd.attribute ?? []) for (const sg of a.g ? [a.g] : (a.graphs ?? [])) fuseGraph(sg);
  };
  fuseGraph(g);
  if (declared.size === 0) return [];
  // Per-module inputs no node reads any more (in any graph) leave the graph.
  const read = new Set<string>();
  const scan = (graph: GraphProto): void => {
    for (const nd of graph.node ?? []) {
      for (const x of nd.input ?? []) read.add(x);
      for (const a of nd.attribute ?? []) for (const sg of a.g ? [a.g] : (a.graphs ?? [])) scan(sg);
    }
  };
  scan(g);
  const perModule = new Set(branches.flatMap((b) => [b.inputA, b.inputB]));
  g.input = (g.input ?? []).filter((v) => !perModule.has(v.name!) || read.has(v.name!));
  return [...declared.values()];
}
