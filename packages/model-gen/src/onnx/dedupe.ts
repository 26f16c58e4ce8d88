/**
 * torch.onnx's initializer de-duplication: bit-identical parameters (same element type, dims and
 * bytes) are stored once, under the name that comes first, and every other name becomes the output
 * of an `Identity` node reading it, so nodes keep reading the state-dict names. Exported models built
 * from a config (biases 0, LayerNorm γ = 1) or with an untrained head carry many of these aliases —
 * e.g. `bert.pooler.dense.bias` as `Identity(bert.embeddings.LayerNorm.bias)`.
 */
import type { Graph, GraphNode } from './graph.js';
import { bucketKey, bytesOf, sameBytes } from './identical-initializers.js';

/** A new graph with duplicate initializers replaced by `Identity` aliases (`g` is not modified). */
export function dedupeInitializers(g: Graph): Graph {
  // Bucket by a cheap key (type, dims, byte length, a few sample bytes); compare in full within it.
  const buckets = new Map<string, string[]>();
  const alias = new Map<string, string>();
  for (const [name, t] of g.initializers) {
    const b = bytesOf(t);
    const key = bucketKey(t);
    const list = buckets.get(key) ?? [];
    const hit = list.find((k) => sameBytes(bytesOf(g.initializers.get(k)!), b));
    if (hit !== undefined) alias.set(name, hit);
    else {
      list.push(name);
      buckets.set(key, list);
    }
  }
  if (alias.size === 0) return g;
  const identities: GraphNode[] = [];
  let i = 0;
  for (const [name, kept] of alias) {
    identities.push({ op: 'Identity', name: i === 0 ? '/Identity' : `/Identity_${i}`, inputs: [kept], outputs: [name], attrs: {} });
    i++;
  }
  const initializers = new Map([...g.initializers].filter(([name]) => !alias.has(name)));
  return { ...g, nodes: [...identities, ...g.nodes], initializers };
}
