/**
 * Reverse-mode differentiation of an ONNX graph into an ONNX graph: the forward nodes, then the
 * backward nodes that each op's rule emits, with outputs loss (+ kept outputs) and ∂loss/∂(every
 * requested input). Only activation gradients are formed: frozen initializers never lie on a path
 * from a trainable input, so no weight gradient is ever computed.
 *
 * Pruning: a value is differentiable when it is float and depends on a trainable input (forward
 * reach); a node needs a rule when one of its differentiable outputs reaches the loss (backward
 * reach). Shape, comparisons, casts to integers, position and mask paths drop out that way.
 */
import { NoGradientRuleError, TrainingGraphError } from './errors.js';
import { A, Emitter, type ModelProto, type NodeProto, num, onnx, type TensorProto, tensorValues } from './onnx.js';
import { straightThroughQ8 } from './rules/quantized.js';
import { gradientRule } from './rules/registry.js';
import type { GradContext } from './rules/types.js';
import type { ShapeMap } from './probe.js';

export const GRAD_PREFIX = 'grad.';

export interface GradientOptions {
  /** Scalar graph output to differentiate. */
  loss: string;
  /** Graph inputs to differentiate with respect to (adapter factors, head parameters). */
  wrt: readonly string[];
  /** Dims and element types of every value, from `probeShapes` on the same graph. */
  shapes: ShapeMap;
  /** Graph outputs to keep besides the loss (logits). Others are dropped. */
  keep?: readonly string[];
}

export interface GradientGraph {
  model: ModelProto;
  bytes: Uint8Array;
  loss: string;
  /** Output name of ∂loss/∂input, by input name (`grad.<input>`). */
  grads: Map<string, string>;
  /** MatMulInteger chains differentiated straight-through (q8 models). */
  straightThrough: string[];
}

const FLOAT_TYPES = new Set(['float32', 'float', 'float16', 'float64']);

/** The gradient graph of `model` (not modified). */
export function buildGradientGraph(model: ModelProto, opts: GradientOptions): GradientGraph {
  const g = model.graph!;
  const inputs = new Set((g.input ?? []).map((v) => v.name!));
  for (const w of opts.wrt) if (!inputs.has(w)) throw new TrainingGraphError('trainable tensor is not a graph input', { tensor: w });
  if (!(g.output ?? []).some((o) => o.name === opts.loss) && !(g.node ?? []).some((n) => (n.output ?? []).includes(opts.loss))) {
    throw new TrainingGraphError('loss is not a value of the graph', { tensor: opts.loss });
  }
  const inits = new Map<string, TensorProto>((g.initializer ?? []).map((t) => [t.name!, t]));
  const e = new Emitter('/tensorpeft/grad');
  const view = straightThroughQ8(g.node ?? [], inits, e);
  const nodes = view.nodes;

  // Constant nodes and initializers, for attribute-like inputs (Slice starts, ReduceSum axes).
  const constNodes = new Map<string, TensorProto>();
  for (const n of g.node ?? []) if (n.opType === 'Constant') {
    const v = (n.attribute ?? []).find((a) => a.name === 'value')?.t;
    if (v) constNodes.set(n.output![0]!, v);
  }
  const extraDims = new Map<string, number[]>(e.inits.map((t) => [t.name!, (t.dims ?? []).map(num)]));
  const dimsOf = (name: string): number[] => {
    const s = opts.shapes.get(name);
    if (s) return s.dims;
    const t = inits.get(name) ?? constNodes.get(name);
    if (t) return (t.dims ?? []).map(num);
    const x = extraDims.get(name);
    if (x) return x;
    throw new TrainingGraphError('no shape for a value on the training path (probe the graph first)', { tensor: name });
  };
  const isFloat = (name: string): boolean => {
    const s = opts.shapes.get(name);
    if (s) return FLOAT_TYPES.has(s.dtype);
    const t = inits.get(name) ?? constNodes.get(name);
    return t !== undefined && t.dataType === onnx.TensorProto.DataType.FLOAT;
  };

  // Forward reach from the trainable inputs.
  const live = new Set<string>(opts.wrt);
  for (const n of nodes) {
    if (!(n.input ?? []).some((x) => live.has(x))) continue;
    for (const o of n.output ?? []) if (o && isFloat(o)) live.add(o);
  }
  // Backward reach from the loss, through live values only.
  const reach = new Set<string>([opts.loss]);
  const needed: NodeProto[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i]!;
    if (!(n.output ?? []).some((o) => reach.has(o) && live.has(o))) continue;
    needed.push(n);
    for (const x of n.input ?? []) if (live.has(x)) reach.add(x);
  }
  const onPath = (x: string): boolean => live.has(x) && reach.has(x);

  // Backward pass in reverse topological order (`needed` is already reversed).
  const contrib = new Map<string, string[]>();
  const add = (name: string, grad: string): void => {
    contrib.set(name, [...(contrib.get(name) ?? []), grad]);
  };
  const total = (name: string): string | undefined => {
    const cs = contrib.get(name);
    if (!cs || cs.length === 0) return undefined;
    if (cs.length === 1) return cs[0];
    const s = e.one('Sum', cs);
    contrib.set(name, [s]);
    return s;
  };
  add(opts.loss, e.one('Expand', [e.constF32(1), e.one('Shape', [opts.loss])]));

  for (const n of needed) {
    const rule = gradientRule(n.opType!, n.domain ?? '');
    const xs = (n.input ?? []).map((x) => x ?? '');
    const ys = (n.output ?? []).map((y) => y ?? '');
    const needs = xs.map((x) => x !== '' && onPath(x));
    const where = { tensor: n.name ?? ys[0], field: n.opType ?? undefined };
    if (!rule) throw new NoGradientRuleError(`no gradient rule for ${n.domain ? `${n.domain}.` : ''}${n.opType} on the path from a trainable input to the loss`, { ...where, found: n.name });
    needs.forEach((nd, i) => {
      if (nd && rule.inputs !== 'all' && !rule.inputs.includes(i)) throw new NoGradientRuleError(`${n.opType} has no gradient for input ${i} (${xs[i]}), which depends on a trainable input`, { ...where, found: n.name });
    });
    const dys = ys.map((y) => (onPath(y) ? total(y) : undefined));
    const ctx: GradContext = {
      e,
      node: n,
      x: xs,
      y: ys,
      dy: (i) => dys[i],
      dyOrZeros: (i) => dys[i] ?? e.one('ConstantOfShape', [e.one('Shape', [ys[i]!])], [A.tensor('value', { dataType: 1, dims: [1], floatData: [0] })]),
      needs: (i) => needs[i] === true,
      dims: dimsOf,
      rank: (name) => dimsOf(name).length,
      constInts: (name) => {
        const t = inits.get(name) ?? constNodes.get(name);
        if (!t) throw new TrainingGraphError(`${n.opType} input is not a constant, which its gradient rule needs`, { ...where, found: name });
        return tensorValues(t);
      },
      initializer: (name) => inits.get(name),
      unbroadcast: (grad, x, gDims) => unbroadcast(e, grad, x, dimsOf(x), gDims),
      unsupported: (why) => new NoGradientRuleError(`${n.opType}: ${why}`, { ...where, found: n.name }),
    };
    const out = rule.grad(ctx);
    needs.forEach((nd, i) => {
      const gi = out[i];
      if (nd && gi) add(xs[i]!, gi);
    });
  }

  // Outputs: loss, kept outputs, then one gradient per trainable input (zeros when none reaches it).
  const grads = new Map<string, string>();
  const gradOutputs: onnxValueInfo[] = [];
  for (const w of opts.wrt) {
    const name = `${GRAD_PREFIX}${w}`;
    const t = total(w) ?? e.one('ConstantOfShape', [e.one('Shape', [w])], [A.tensor('value', { dataType: 1, dims: [1], floatData: [0] })]);
    e.nodes.push({ name: `/tensorpeft/grad/out/${w}`, opType: 'Identity', input: [t], output: [name], attribute: [] });
    grads.set(w, name);
    gradOutputs.push(floatOutput(name));
  }
  const keep = new Set([opts.loss, ...(opts.keep ?? [])]);
  const out = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const og = out.graph!;
  const kept = (og.output ?? []).filter((o) => keep.has(o.name!));
  if (!kept.some((o) => o.name === opts.loss)) kept.unshift(onnx.ValueInfoProto.fromObject(floatOutput(opts.loss)));
  og.output = [...kept, ...gradOutputs.map((v) => onnx.ValueInfoProto.fromObject(v))];
  og.node = [...(og.node ?? []), ...e.nodes.map((n) => onnx.NodeProto.fromObject(n))];
  og.initializer = [...(og.initializer ?? []), ...e.inits.map((t) => onnx.TensorProto.fromObject(t))];
  ensureOpset(out, 17);
  return { model: out, bytes: onnx.ModelProto.encode(out).finish(), loss: opts.loss, grads, straightThrough: view.replaced };
}

type onnxValueInfo = { name: string; type: { tensorType: { elemType: number } } };

function floatOutput(name: string): onnxValueInfo {
  return { name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } };
}

/** The backward uses ops of opset 16–17 (ScatterND/ScatterElements with reduction); older models are lifted. */
function ensureOpset(m: ModelProto, v: number): void {
  const imp = (m.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  if (imp && num(imp.version) < v) throw new TrainingGraphError('model opset is too old for the gradient graph', { expected: `>= ${v}`, found: num(imp.version) });
}

/** Sum `g` (dims gDims) down to x's dims: leading axes, and axes where x has size 1 and g does not. */
export function unbroadcast(e: Emitter, g: string, x: string, xDims: readonly number[], gDims: readonly number[]): string {
  if (xDims.length === gDims.length && xDims.every((d, i) => d === gDims[i])) return g;
  const lead = gDims.length - xDims.length;
  const axes: number[] = [];
  for (let i = 0; i < gDims.length; i++) {
    if (i < lead) axes.push(i);
    else if (xDims[i - lead] === 1 && gDims[i] !== 1) axes.push(i);
  }
  const s = axes.length ? e.one('ReduceSum', [g, e.constI64(axes)], [A.int('keepdims', 1)]) : g;
  return e.one('Reshape', [s, e.one('Shape', [x])]);
}
