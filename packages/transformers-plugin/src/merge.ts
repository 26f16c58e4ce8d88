/**
 * Offline merge (the independent reference for `verify`): the fp32 ONNX model with each targeted
 * weight initializer replaced by `W0 + ΔW` (ΔW = s · B′ A′ᵀ, `[m, n]`, written in the
 * initializer's own layout: `[in, out]` for MatMul / Conv1D Gemm, `[out, in]` for Gemm transB=1)
 * and each `modules_to_save` tensor replacing its initializer. No graph inputs are added.
 *
 * External data (`model.onnx` + `model.onnx_data`): with `external` (side file bytes by the
 * `location` the initializers name), W0 of an external weight is read from it through
 * external-data.ts' checked reader, and the merged weight is written inline (`raw_data`,
 * `data_location` DEFAULT, `external_data` cleared): the merged values are not in the side file, and
 * writing a new side file would double the disk/memory footprint for gigabyte models. Weights the
 * merge does not touch keep their references, so the merged `.onnx` loads next to the same, unchanged
 * side file. Memory: the side files as given, plus one fp32 copy per merged weight (kept inline in
 * the merged `.onnx`, which grows by those weights' size).
 */
import type { ModuleUpdate, TensorMap } from '@tensorpeft/core';
import { ShapeMismatchError } from '@tensorpeft/core';
import onnxProto from 'onnx-proto';
import { PluginError } from './errors.js';
import { isExternal, readExternalBytes } from './external-data.js';
import { constSource, indexGraph } from './const-source.js';
import { findLinears, findLinearsIn, num, pathsMatch, type FoundLinear } from './rewrite.js';
import { genaiAliasPath, mergeIntoSlice, packedSlices } from './rewrite-packed.js';

const { onnx } = onnxProto;
type TensorProto = onnxProto.onnx.ITensorProto;

export interface MergeOptions {
  /**
   * Files of the model's ONNX external data, by the `location` its initializers name (as
   * `rewriteModel`'s `external`). Needed only when a merged weight is external.
   */
  external?: ReadonlyMap<string, Uint8Array>;
}

function floatsOf(t: TensorProto, external: ReadonlyMap<string, Uint8Array> | undefined): Float32Array {
  // Reinterpreting fp16/int8 bytes as fp32 would "merge" into garbage without any error.
  if (t.dataType !== onnx.TensorProto.DataType.FLOAT) throw new PluginError(`offline merge: weight ${t.name} is not fp32 (data type ${t.dataType}); mergeModel merges the fp32 model`);
  if (isExternal(t)) {
    // Without the side files the weight's bytes are not in `bytes` (an empty read would "merge" into zeros).
    if (!external) throw new PluginError(`offline merge: weight ${t.name} is ONNX external data; pass its side files to mergeModel (external)`);
    // A fresh, 4-byte aligned copy, its range checked against the file (the reference is untrusted).
    const b = readExternalBytes(t, external);
    return new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4);
  }
  if (t.rawData && t.rawData.length > 0) {
    const raw = t.rawData;
    const copy = new Uint8Array(raw.length);
    copy.set(raw);
    return new Float32Array(copy.buffer);
  }
  return Float32Array.from(t.floatData ?? []);
}

function setFloats(t: TensorProto, data: Float32Array): void {
  t.rawData = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  t.floatData = [];
  // Merged values live inline: a reference left behind would make ORT load W0 from the side file.
  t.dataLocation = onnx.TensorProto.DataLocation.DEFAULT;
  t.externalData = [];
}

function peftParamName(key: string): string {
  const k = key.startsWith('base_model.model.') ? key.slice('base_model.model.'.length) : key;
  return k.replace('.modules_to_save.default.', '.');
}

/** Linears of the subgraphs of `nodes` (recursively), each seeing its outer scopes' initializers. */
function subgraphLinears(nodes: readonly onnxProto.onnx.INodeProto[], outer: readonly TensorProto[]): FoundLinear[] {
  const out: FoundLinear[] = [];
  for (const nd of nodes)
    for (const a of nd.attribute ?? [])
      for (const sg of a.g ? [a.g] : (a.graphs ?? [])) {
        const visible = [...outer, ...(sg.initializer ?? [])];
        out.push(...findLinearsIn(sg.node ?? [], visible), ...subgraphLinears(sg.node ?? [], visible));
      }
  return out;
}

/** Every tensor name that some node input or graph output reads, with its readers. */
function readersOf(g: onnxProto.onnx.IGraphProto): Map<string, Array<{ node: number; input: number }>> {
  const r = new Map<string, Array<{ node: number; input: number }>>();
  (g.node ?? []).forEach((nd, i) =>
    (nd.input ?? []).forEach((x, j) => {
      if (x === '') return;
      const l = r.get(x);
      if (l) l.push({ node: i, input: j });
      else r.set(x, [{ node: i, input: j }]);
    }),
  );
  for (const o of g.output ?? []) {
    const l = r.get(o.name!);
    if (l) l.push({ node: -1, input: -1 });
    else r.set(o.name!, [{ node: -1, input: -1 }]);
  }
  return r;
}

function cloneInit(t: TensorProto, name: string): TensorProto {
  return { ...t, name, dims: [...(t.dims ?? [])], ...(t.externalData ? { externalData: t.externalData.map((e) => ({ ...e })) } : {}) };
}

/**
 * Merge `updates` (and `extras`, PEFT `modules_to_save` tensors by key) into fp32 model bytes.
 * `opts.external`: the side files of an external-data model (see the file comment).
 *
 * Aliased tensors (torch.onnx's de-duplicated initializers, read through `Identity` nodes, and
 * weights read through a `Transpose`; see const-source.ts) are followed back to their initializer;
 * a merged or replaced tensor that other names share is split off first, so only the named module
 * changes.
 */
export function mergeModel(bytes: Uint8Array, updates: readonly ModuleUpdate[], extras: TensorMap = new Map(), opts: MergeOptions = {}): Uint8Array {
  const model = onnx.ModelProto.decode(bytes);
  const g = model.graph!;
  const inits = new Map<string, TensorProto>();
  for (const t of g.initializer ?? []) inits.set(t.name!, t);
  const float = (l: FoundLinear): boolean => l.op === 'MatMul' || l.op === 'Gemm';
  const linears = findLinears(model).filter(float);
  // Linears inside subgraphs (merged decoders: the same module in both If branches, on one shared
  // main-graph weight), merged once per weight, in place.
  const inSubgraphs = subgraphLinears(g.node ?? [], g.initializer ?? []).filter(float);
  const nodes = g.node ?? [];
  let split = 0;
  /** The initializer `reader` reads, as a tensor no other reader shares (cloned and re-pointed if shared). */
  const exclusive = (name: string, reader: { node: number; input: number }): TensorProto => {
    const t = inits.get(name)!;
    if ((readersOf(g).get(name) ?? []).length <= 1) return t;
    const copy = cloneInit(t, `${name}/tensorpeft_merged_${split++}`);
    g.initializer!.push(copy);
    inits.set(copy.name!, copy);
    const nd = nodes[reader.node]!;
    nd.input = (nd.input ?? []).map((x, j) => (j === reader.input ? copy.name! : x));
    return copy;
  };
  // Packed products (genai `qkv_proj`, `gate_up_proj`): a module is a column slice of one weight.
  const packed = linears.flatMap((l) => (packedSlices(l, nodes, g.initializer ?? []) ?? []).map((slice) => ({ l, slice })));
  // genai exports say `layers.N.attn` where PEFT says `layers.N.self_attn`.
  const names = (l: FoundLinear, path: string): boolean => pathsMatch(path, l.graphPath) || pathsMatch(path, genaiAliasPath(l.graphPath) ?? '');
  for (const u of updates) {
    const slices = packed.filter((p) => pathsMatch(u.path, p.slice.graphPath));
    if (slices.length > 0) {
      if (slices.length !== 1) throw new PluginError(`merge: module ${u.path} matches ${slices.length} packed slices of the model`);
      const { l, slice } = slices[0]!;
      if (l.n !== u.n || slice.width !== u.m) throw new ShapeMismatchError(`merge: module ${u.path} is [${u.m}, ${u.n}] in the adapter but [${slice.width}, ${l.n}] in the model (columns ${slice.offset}… of ${l.node})`);
      const t = exclusive(l.weight, { node: l.weightReader, input: l.weightReaderInput });
      const w = floatsOf(t, opts.external);
      mergeIntoSlice(w, l.weightLayout, l.n, l.m, slice, u);
      setFloats(t, w);
      continue;
    }
    const main = linears.filter((l) => names(l, u.path));
    const sub = inSubgraphs.filter((l) => names(l, u.path));
    const subWeights = new Set(sub.map((l) => l.weight));
    const count = main.length + subWeights.size;
    if (count !== 1) throw new PluginError(`merge: module ${u.path} matches ${count} linears of the model`);
    const l = main[0] ?? sub[0]!;
    if (sub.some((x) => x.weightLayout !== l.weightLayout)) throw new PluginError(`merge: module ${u.path} reads its weight in two layouts in the model's subgraphs`);
    if (l.n !== u.n || l.m !== u.m) throw new ShapeMismatchError(`merge: module ${u.path} is [${u.m}, ${u.n}] in the adapter but [${l.m}, ${l.n}] in the model`);
    const t = main.length === 1 ? exclusive(l.weight, { node: l.weightReader, input: l.weightReaderInput }) : inits.get(l.weight);
    if (!t) throw new PluginError(`merge: the weight ${l.weight} of module ${u.path} is not an initializer of the main graph`);
    const w = floatsOf(t, opts.external);
    const { n, m, rho, s, A, B } = u;
    for (let o = 0; o < m; o++) {
      for (let i = 0; i < n; i++) {
        let acc = 0;
        for (let r = 0; r < rho; r++) acc += B[o * rho + r]! * A[i * rho + r]!;
        const idx = l.weightLayout === 'in_out' ? i * m + o : o * n + i;
        w[idx] = w[idx]! + s * acc;
      }
    }
    setFloats(t, w);
  }
  // Split-off copies are plain objects; the encoder wants TensorProto messages.
  const encode = (): Uint8Array => {
    g.initializer = (g.initializer ?? []).map((t) => (t instanceof onnx.TensorProto ? t : onnx.TensorProto.fromObject(t)));
    return onnx.ModelProto.encode(model).finish();
  };
  if (extras.size === 0) return encode();
  // modules_to_save tensors by the name the graph reads: an initializer, or an Identity alias of one.
  const aliases = new Map<string, number>();
  nodes.forEach((nd, i) => {
    if (nd.opType === 'Identity' && (nd.domain ?? '') === '' && constSource(indexGraph(nodes, g.initializer ?? []), i, 0)) aliases.set(nd.output![0]!, i);
  });
  const dropNodes = new Set<number>();
  for (const [key, tensor] of extras) {
    const name = peftParamName(key);
    // The exact name first: a suffix match alone would also pick `bias` for `d.bias`.
    const names = [...inits.keys(), ...aliases.keys()];
    const exact = names.filter((k) => k === name);
    const hits = exact.length > 0 ? exact : names.filter((k) => pathsMatch(name, k));
    if (hits.length !== 1) throw new PluginError(`merge: modules_to_save tensor ${name} matches ${hits.length} initializers`);
    const hit = hits[0]!;
    const aliasNode = aliases.get(hit);
    const orig = aliasNode === undefined ? inits.get(hit)! : constSource(indexGraph(nodes, g.initializer ?? []), aliasNode, 0)!.init;
    const dims = (orig.dims ?? []).map(num);
    if (dims.length !== tensor.shape.length || dims.some((d, i) => d !== tensor.shape[i])) {
      throw new ShapeMismatchError(`merge: ${name} is [${tensor.shape.join(', ')}] in the adapter but [${dims.join(', ')}] in the model`);
    }
    // Other names aliasing `hit` (Identity nodes reading it) keep the old values.
    const keepOld = (readersOf(g).get(hit) ?? []).filter((r) => r.node >= 0 && nodes[r.node]!.opType === 'Identity');
    if (keepOld.length > 0) {
      const copy = cloneInit(orig, `${hit}/tensorpeft_base`);
      g.initializer!.push(copy);
      for (const r of keepOld) nodes[r.node]!.input = [copy.name!];
    }
    if (aliasNode === undefined) {
      setFloats(inits.get(hit)!, Float32Array.from(tensor.data));
    } else {
      // The alias becomes an initializer of its own, under its state-dict name.
      dropNodes.add(aliasNode);
      const t: TensorProto = { name: hit, dataType: onnx.TensorProto.DataType.FLOAT, dims };
      setFloats(t, Float32Array.from(tensor.data));
      g.initializer!.push(t);
      inits.set(hit, t);
      aliases.delete(hit);
    }
  }
  g.node = nodes.filter((_, i) => !dropNodes.has(i));
  return encode();
}
