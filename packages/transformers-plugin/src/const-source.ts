/**
 * Where a node input's constant comes from. Exports do not always feed a linear its weight
 * initializer directly:
 * - torch.onnx de-duplicates bit-identical initializers and keeps the other names as `Identity`
 *   outputs (a bias or head weight then reads `Identity(<the kept tensor>)`);
 * - exports without constant folding read `W.t()` as `Transpose(W)` of the `[out, in]` parameter.
 * `constSource` follows such chains (Identity any number of times, at most one 2-D Transpose) back to
 * the initializer, so the rewrite and the offline merge see the tensor and its layout.
 */
import type onnxProto from 'onnx-proto';

type NodeProto = onnxProto.onnx.INodeProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export interface ConstSource {
  /** The initializer holding the values. */
  init: TensorProto;
  /** The values reach the reader transposed (a `Transpose` with perm [1, 0] on the way). */
  transposed: boolean;
  /** Index of the node that reads the initializer itself (the reader, or the first Identity/Transpose of the chain), and which of its inputs. */
  readerNode: number;
  readerInput: number;
  /** Whether the chain passes through an `Identity` (the tensor name read is an alias). */
  aliased: boolean;
}

export interface GraphIndex {
  inits: ReadonlyMap<string, TensorProto>;
  /** Producer node index of each node output. */
  producer: ReadonlyMap<string, number>;
  nodes: readonly NodeProto[];
}

export function indexGraph(nodes: readonly NodeProto[], initializers: readonly TensorProto[]): GraphIndex {
  const inits = new Map<string, TensorProto>();
  for (const t of initializers) inits.set(t.name!, t);
  const producer = new Map<string, number>();
  nodes.forEach((nd, i) => {
    for (const o of nd.output ?? []) producer.set(o, i);
  });
  return { inits, producer, nodes };
}

function isPlainTranspose2d(nd: NodeProto): boolean {
  const perm = (nd.attribute ?? []).find((a) => a.name === 'perm');
  const p = (perm?.ints ?? []).map(Number);
  return p.length === 2 && p[0] === 1 && p[1] === 0;
}

/** The constant input `index` of node `nodeIndex` reads, or undefined when it is computed. */
export function constSource(ix: GraphIndex, nodeIndex: number, index: number): ConstSource | undefined {
  let readerNode = nodeIndex;
  let readerInput = index;
  let name = ix.nodes[nodeIndex]?.input?.[index];
  let transposed = false;
  let aliased = false;
  // A chain longer than the graph would be a cycle: the model is malformed, not a constant.
  for (let hops = 0; name !== undefined && hops <= ix.nodes.length; hops++) {
    const init = ix.inits.get(name);
    if (init && !ix.producer.has(name)) return { init, transposed, readerNode, readerInput, aliased };
    const p = ix.producer.get(name);
    if (p === undefined) return undefined;
    const nd = ix.nodes[p]!;
    if ((nd.domain ?? '') !== '' || (nd.input ?? []).length !== 1) return undefined;
    if (nd.opType === 'Identity') aliased = true;
    else if (nd.opType === 'Transpose' && !transposed && isPlainTranspose2d(nd)) transposed = true;
    else return undefined;
    readerNode = p;
    readerInput = 0;
    name = nd.input![0];
  }
  return undefined;
}
