/**
 * q8 straight-through: onnxruntime's dynamic quantization writes x·W as
 * DynamicQuantizeLinear(x) → MatMulInteger(x_q, W_q, x_zp, W_zp) → Cast → Mul(x_scale · W_scale).
 * Rounding has no useful derivative, so the backward pass treats the chain as x · W̃ with the
 * dequantized weight W̃ = (W_q − W_zp) · W_scale, as QLoRA back-propagates through its frozen 4-bit
 * base. This is a view transform: the forward graph keeps the q8 nodes; the gradient walker sees a
 * MatMul(x, W̃) writing the chain's output, and the MatMul rule does the rest.
 */
import { Emitter, type ModelProto, type NodeProto, onnx, type TensorProto, tensorValues } from '../onnx.js';

export interface ViewResult {
  nodes: NodeProto[];
  /** Chains replaced (MatMulInteger node names). */
  replaced: string[];
}

export function straightThroughQ8(nodes: readonly NodeProto[], inits: ReadonlyMap<string, TensorProto>, e: Emitter): ViewResult {
  const producer = new Map<string, NodeProto>();
  const consumers = new Map<string, NodeProto[]>();
  for (const n of nodes) {
    for (const o of n.output ?? []) producer.set(o, n);
    for (const x of n.input ?? []) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  }
  const only = (t: string, op: string): NodeProto | undefined => {
    const cs = consumers.get(t) ?? [];
    return cs.length === 1 && cs[0]!.opType === op ? cs[0] : undefined;
  };
  const drop = new Set<NodeProto>();
  const replacement = new Map<NodeProto, NodeProto>();
  const replaced: string[] = [];
  for (const m of nodes) {
    if (m.opType !== 'MatMulInteger') continue;
    const [xq, wq, , wz] = m.input ?? [];
    const q = producer.get(xq ?? '');
    const w = inits.get(wq ?? '');
    if (!q || q.opType !== 'DynamicQuantizeLinear' || !w || (w.dims ?? []).length !== 2) continue;
    const cast = only(m.output![0]!, 'Cast');
    const mul = cast && only(cast.output![0]!, 'Mul');
    if (!cast || !mul) continue;
    // W_scale: the initializer factor of the scales product Mul(x_scale, W_scale).
    const scales = producer.get((mul.input ?? []).find((i) => i !== cast.output![0]) ?? '');
    const wScale = scales && scales.opType === 'Mul' ? (scales.input ?? []).map((i) => inits.get(i)).find((t) => t !== undefined) : undefined;
    if (!wScale) continue;
    const [K, N] = (w.dims ?? []).map(Number) as [number, number];
    const qv = tensorValues(w);
    const sv = tensorValues(wScale);
    const zv = wz && inits.get(wz) ? tensorValues(inits.get(wz)!) : [0];
    const deq = new Float32Array(K * N);
    for (let k = 0; k < K; k++) {
      for (let n = 0; n < N; n++) {
        const s = sv.length === 1 ? sv[0]! : sv[n]!;
        const z = zv.length === 1 ? zv[0]! : zv[n]!;
        deq[k * N + n] = (qv[k * N + n]! - z) * s;
      }
    }
    const wt = e.tensorF32(`${m.name}/dequantized_weight`, deq, [K, N]);
    drop.add(cast);
    drop.add(mul);
    replacement.set(m, { name: m.name, opType: 'MatMul', input: [q.input![0]!, wt], output: [mul.output![0]!], attribute: [] });
    replaced.push(m.name!);
  }
  const out: NodeProto[] = [];
  for (const n of nodes) {
    if (drop.has(n)) continue;
    out.push(replacement.get(n) ?? n);
  }
  return { nodes: out, replaced };
}

/**
 * The float reference of a q8 model: every straight-through chain replaced by x · W̃ in the forward
 * graph too. Its exact gradient is what the straight-through backward of the q8 graph approximates
 * (they differ only by the 8-bit rounding of the activations in the q8 forward).
 */
export function dequantizedReference(model: ModelProto): ModelProto {
  const m = onnx.ModelProto.decode(onnx.ModelProto.encode(model).finish());
  const g = m.graph!;
  const inits = new Map((g.initializer ?? []).map((t) => [t.name!, t]));
  const e = new Emitter('/tensorpeft/dequantized');
  const view = straightThroughQ8(g.node ?? [], inits, e);
  g.node = view.nodes.map((n) => onnx.NodeProto.fromObject(n));
  g.initializer = [...(g.initializer ?? []), ...e.inits.map((t) => onnx.TensorProto.fromObject(t))];
  return m;
}
