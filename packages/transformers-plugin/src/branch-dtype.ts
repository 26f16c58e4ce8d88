/**
 * fp32 side branches on fp16 graphs (`RewriteOptions.branchDtype: 'float32'`).
 *
 * On an fp16 graph (`model_fp16`, `model_q4f16`) the branch `y += (x·A′)·B′` is by default declared
 * and computed in fp16. onnxruntime's CPU execution providers (onnxruntime-node `cpu`, ORT-web
 * `wasm`) have no fp16 MatMul: ORT then inserts Casts converting A′, B′ and x to fp32 and the delta
 * back, on every run — A′ and B′ are whole weight-sized tensors, cast again each decode step.
 * With `float32`, A′/B′ are graph inputs of type float32 (fed as the registry materializes them,
 * no conversion), x is cast to fp32 once per distinct tensor (q, k and v reading the same hidden
 * state share one Cast, see `input` below), both products run in fp32 and only the [.., m] delta
 * is cast to fp16 just before it joins the base product (on the CPU EP, ORT then drops that Cast
 * and the one it inserts before the fp32-run Add: the delta joins unrounded) (through the same join rules as an fp16 delta: addDelta, the
 * fp16-neighbour join, the SkipLayerNormalization residual operand, per-slice packed branches).
 *
 * Disabled (ρ = 0) the delta is exact zeros, Cast to fp16 is exact zeros, and base + 0 = base bit
 * for bit as before. With an adapter the branch is more precise than the fp16 one (fp32 products and
 * one rounding of the delta instead of fp16 inputs).
 *
 * The plugin picks the precision from the transformers.js `device` a file is loaded on
 * (`branchDtypeForDevice`): fp32 branches on the CPU providers, the activation dtype elsewhere
 * (WebGPU, CUDA, DirectML, CoreML and WebNN have fp16 kernels; `auto`/`gpu` may pick any of them).
 */
import onnxProto from 'onnx-proto';
import type { BranchDtype, FoundLinear } from './rewrite-types.js';

const { onnx } = onnxProto;
type NodeProto = onnxProto.onnx.INodeProto;

/** Element type of a branch's inputs A′/B′ (and of its products) for linear dtype `activation`. */
export function branchInputDtype(activation: 'float32' | 'float16', branchDtype: BranchDtype | undefined): 'float32' | 'float16' {
  return branchDtype === 'float32' ? 'float32' : activation;
}

/** How one graph's branches read x and hand back their delta, in the precision chosen. */
export interface BranchPrecision {
  /** The tensor the branch's first MatMul reads: `l.input`, or its fp32 Cast (one per distinct x in this graph). */
  input(l: FoundLinear): string;
  /**
   * The delta to add to `l`'s product: `delta` itself, or (fp32 branch on an fp16 linear) a Cast of
   * it to fp16, appended to `ns` and named `<delta>_fp16`.
   */
  output(l: FoundLinear, ns: NodeProto[], delta: string): string;
  /** Element type the branch computes in for linear `l` (A′/B′, the delta, a packed product's zero blocks). */
  dtype(l: FoundLinear): 'float32' | 'float16';
}

/**
 * The branch precision of one graph (the main graph or a subgraph): `nodes` are the graph's nodes
 * before any insertion, `addBefore(i, ns)` places nodes before node i. A Cast of x goes right before
 * the first node reading x, which always comes after x is produced, whatever order the linears are
 * rewritten in.
 */
export function branchPrecision(nodes: readonly NodeProto[], addBefore: (i: number, ns: NodeProto[]) => void, branchDtype: BranchDtype | undefined): BranchPrecision {
  const widened = (l: FoundLinear): boolean => branchDtype === 'float32' && l.dtype === 'float16';
  const casts = new Map<string, string>();
  let firstReader: Map<string, number> | undefined;
  const INT = onnx.AttributeProto.AttributeType.INT;
  return {
    input(l) {
      if (!widened(l)) return l.input;
      const known = casts.get(l.input);
      if (known !== undefined) return known;
      if (!firstReader) {
        firstReader = new Map();
        nodes.forEach((nd, i) => {
          for (const x of nd.input ?? []) if (!firstReader!.has(x)) firstReader!.set(x, i);
        });
      }
      // The linear itself reads x, so some node does.
      const at = firstReader.get(l.input) ?? 0;
      // x → Sum(x) → Cast(fp32), not a bare Cast: onnxruntime's CPU EP runs an fp16-capable node
      // (LayerNormalization, …) in fp32 when all its fp16 neighbours lack fp16 kernels (its
      // "isolated fp16 node" rule), and a Cast reading x has one — x's producer would then round to
      // fp16 and the base output move (GPT-2/BERT fp16: 2e-4–1.6e-3 with adapters disabled).
      // Single-input Sum has no fp16 CPU kernel: it keeps the producer isolated like the base
      // MatMul does, runs in fp32 on ORT's shared cast of x, and ORT drops the Cast pair after it
      // (RemoveDuplicateCastTransformer): the branch reads the fp32 x the base MatMul reads.
      const out = `${l.input}/tensorpeft_fp32`;
      const pass = `${l.input}/tensorpeft_pass`;
      addBefore(at, [
        { name: `/tensorpeft/pass_fp32/${l.input}`, opType: 'Sum', input: [l.input], output: [pass] },
        { name: `/tensorpeft/cast_fp32/${l.input}`, opType: 'Cast', input: [pass], output: [out], attribute: [{ name: 'to', type: INT, i: onnx.TensorProto.DataType.FLOAT }] },
      ]);
      casts.set(l.input, out);
      return out;
    },
    output(l, ns, delta) {
      if (!widened(l)) return delta;
      const out = `${delta}_fp16`;
      ns.push({ name: `${delta}/Cast_fp16`, opType: 'Cast', input: [delta], output: [out], attribute: [{ name: 'to', type: INT, i: onnx.TensorProto.DataType.FLOAT16 }] });
      return out;
    },
    dtype: (l) => branchInputDtype(l.dtype, branchDtype),
  };
}

export { branchDtypeForDevice, type DeviceOption } from './device-branch-dtype.js';
