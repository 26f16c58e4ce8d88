/**
 * Merged decoder (`layout: 'merged-decoder'`), the layout of optimum's legacy
 * `decoder_model_merged.onnx`: one `If` node on a boolean input `use_cache_branch` [1] chooses between
 * two subgraphs — the decoder with past key/values (then) and without (else) — and writes the model's
 * outputs. The subgraphs have no inputs and no initializers of their own: they read the main graph's
 * inputs and its shared initializers as outer-scope values (optimum's merge moves the initializers the
 * two decoders share to the main graph). transformers.js feeds `use_cache_branch` whenever a session
 * has that input (false on the first step, when the cache is empty).
 *
 * Both branches here run the same decoder (the one exported with past, which handles a past of length
 * 0), where optimum's else branch is the no-past export; what matters for the adapter plugin is the
 * structure — every linear twice, inside subgraphs, on outer-scope weights.
 */
import type { Graph } from './graph.js';

/** The merged-decoder variant of a decoder graph exported with past (`g` is not modified). */
export function mergedDecoder(g: Graph): Graph {
  if (!g.inputs.some((v) => v.name.startsWith('past_key_values.'))) throw new Error('mergedDecoder: the graph has no past_key_values inputs (a decoder exported with past is needed)');
  const outs = new Set(g.outputs.map((v) => v.name));
  // Subgraph outputs get their own names: the If node's outputs carry the model's output names.
  const branch = (suffix: string): Graph => {
    const rn = (x: string): string => (outs.has(x) ? `${x}${suffix}` : x);
    return {
      name: `${g.name}${suffix}`,
      nodes: g.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rn), outputs: n.outputs.map(rn) })),
      initializers: new Map(),
      inputs: [],
      outputs: g.outputs.map((v) => ({ ...v, name: rn(v.name) })),
      opset: g.opset,
    };
  };
  return {
    ...g,
    nodes: [
      {
        op: 'If',
        name: 'optimum::if',
        inputs: ['use_cache_branch'],
        outputs: g.outputs.map((v) => v.name),
        attrs: { then_branch: { graph: branch('_with_past') }, else_branch: { graph: branch('_without_past') } },
      },
    ],
    inputs: [...g.inputs, { name: 'use_cache_branch', dtype: 'bool', dims: [1] }],
  };
}
