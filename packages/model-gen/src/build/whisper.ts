/**
 * Whisper (WhisperForConditionalGeneration) as optimum exports it for transformers.js: two files.
 *
 * - `encoder_model.onnx`: optimum exports `model.get_encoder()` (a WhisperEncoder), so node and
 *   parameter names are relative to the encoder: `/conv1/Conv`, `/layers.0/self_attn/q_proj/MatMul`,
 *   `layers.0.self_attn.q_proj.bias`. Input `input_features [batch_size, feature_size,
 *   encoder_sequence_length]`, output `last_hidden_state`. Conv1d(k 3, pad 1) → GELU →
 *   Conv1d(k 3, stride 2, pad 1) → GELU → [B, T, d] + `embed_positions.weight` → pre-LN layers → `layer_norm`.
 * - `decoder_model_merged.onnx`: the decoder is exported from the whole model (optimum passes the
 *   full WhisperForConditionalGeneration for the decoder parts), so names carry `model.decoder`:
 *   `/model/decoder/layers.0/encoder_attn/q_proj/MatMul`; `proj_out` (tied to `embed_tokens`) is a
 *   MatMul on a transposed anonymous copy. Two exports — without past (first step: cross-attention
 *   keys/values computed from `encoder_hidden_states`) and with past (they are read from
 *   `past_key_values.N.encoder.*`) — merged like optimum's `merge_decoders`: an `If` on
 *   `use_cache_branch`, bit-identical initializers of the two stored once on the main graph, and
 *   the outputs the with-past export lacks (`present.N.encoder.*`) filled by empty `Constant`s
 *   (axis 0 of size 0, other symbolic axes 1). transformers.js then keeps the encoder cache it already
 *   holds for those (`getPastKeyValues`).
 *
 * Attention as HF's WhisperAttention: q/v/out projections with bias, `k_proj` without; the decoder's
 * self-attention is causal over past + current tokens (no attention mask input: optimum's Whisper
 * decoder has none), cross-attention unmasked. Positions: learned tables, the decoder's sliced from
 * the past length.
 */
import type { ModelDims } from '../spec.js';
import { Ctx, F32_MIN, scopeOf, transpose, type GraphLinear, type StateDict } from './ctx.js';
import { i64, type Graph, type TensorData, type ValueInfo } from '../onnx/graph.js';
import { bucketKey, bytesOf, sameBytes } from '../onnx/identical-initializers.js';

const B = 'batch_size';

/** Whisper's dimensions beyond core's ArchDims. */
export interface WhisperDims extends ModelDims {
  numMelBins: number;
  /** Encoder positions (input frames = 2 ×). */
  maxSourcePositions: number;
  /** Decoder positions. */
  maxTargetPositions: number;
  /** Special tokens: `<|endoftext|>` (bos/eos/pad), `<|startoftranscript|>`, `<|notimestamps|>`. */
  endOfText: number;
  startOfTranscript: number;
  noTimestamps: number;
}

/**
 * tiny: 32 wide, 2 + 2 layers, 4 heads, 8 mel bins, 16 encoder positions (32 input frames); its
 * vocabulary and special ids come from the generated tokenizer (whisper-tokenizer.ts).
 * base: the shape of openai/whisper-tiny.en (384 wide, 4 + 4 layers, 6 heads, 80 mel bins, 1500 / 448
 * positions, 51864 tokens, its special-token ids).
 */
export function whisperDims(size: 'tiny' | 'base'): WhisperDims {
  const none = { imageSize: 0, patchSize: 0, numChannels: 0, ropeTheta: 0, typeVocabSize: 0, layerNormEps: 1e-5 };
  if (size === 'tiny') {
    return { hiddenSize: 32, numLayers: 2, numHeads: 4, numKvHeads: 4, intermediateSize: 64, ...none, vocabSize: 0, maxPositions: 32, numMelBins: 8, maxSourcePositions: 16, maxTargetPositions: 32, endOfText: 0, startOfTranscript: 0, noTimestamps: 0 };
  }
  return {
    hiddenSize: 384,
    numLayers: 4,
    numHeads: 6,
    numKvHeads: 6,
    intermediateSize: 1536,
    ...none,
    vocabSize: 51864,
    maxPositions: 448,
    numMelBins: 80,
    maxSourcePositions: 1500,
    maxTargetPositions: 448,
    endOfText: 50256,
    startOfTranscript: 50257,
    noTimestamps: 50362,
    shapeOf: 'openai/whisper-tiny.en',
  };
}

/** WhisperAttention's projections and heads; keys/values given (cache, cross-attention) or projected. */
function attention(ctx: Ctx, x: string, path: string, d: WhisperDims, kv: { k: string; v: string }, bias: string): string {
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const hd = H / nh;
  const s = scopeOf(path);
  const q = ctx.splitHeads(ctx.linear(x, `${path}.q_proj`, H, H), s, nh, hd);
  const kT = ctx.b.node('Transpose', s, [kv.k], { perm: [0, 1, 3, 2] });
  const a = ctx.mergeHeads(ctx.attend(q, kT, kv.v, bias, s, hd), s, H);
  return ctx.linear(a, `${path}.out_proj`, H, H);
}

/** k_proj (no bias) and v_proj of `x`, split into heads [B, nh, T, hd]. */
function projectKv(ctx: Ctx, x: string, path: string, d: WhisperDims): { k: string; v: string } {
  const H = d.hiddenSize;
  const s = scopeOf(path);
  return {
    k: ctx.splitHeads(ctx.linear(x, `${path}.k_proj`, H, H, { bias: false }), s, d.numHeads, H / d.numHeads),
    v: ctx.splitHeads(ctx.linear(x, `${path}.v_proj`, H, H), s, d.numHeads, H / d.numHeads),
  };
}

function mlp(ctx: Ctx, h: string, pre: string, d: WhisperDims): string {
  const x = ctx.layerNorm(h, `${pre}.final_layer_norm`, d.hiddenSize, d.layerNormEps);
  const a = ctx.gelu(ctx.linear(x, `${pre}.fc1`, d.hiddenSize, d.intermediateSize), scopeOf(`${pre}.activation_fn`));
  return ctx.b.node('Add', scopeOf(pre), [h, ctx.linear(a, `${pre}.fc2`, d.intermediateSize, d.hiddenSize)]);
}

/** The encoder graph (WhisperEncoder as the exported root; PEFT paths under `model.encoder`). */
export function buildWhisperEncoder(seed: number, d: WhisperDims): { graph: Graph; ctx: Ctx } {
  const ctx = new Ctx('main_graph', { seed, root: '', taskRoot: 'model.encoder' });
  const b = ctx.b;
  const H = d.hiddenSize;
  const feats = b.input('input_features', 'float32', [B, 'feature_size', 'encoder_sequence_length']);
  const conv = (x: string, name: string, inC: number, stride: number): string => {
    const bound = 1 / Math.sqrt(inC * 3);
    const w = ctx.param(`${name}.weight`, [H, inC, 3], { uniform: bound });
    const bias = ctx.param(`${name}.bias`, [H], { uniform: bound });
    return b.node('Conv', `/${name}`, [x, w, bias], { dilations: [1], group: 1, kernel_shape: [3], pads: [1, 1], strides: [stride] });
  };
  const c1 = ctx.gelu(conv(feats, 'conv1', d.numMelBins, 1), '');
  const c2 = ctx.gelu(conv(c1, 'conv2', H, 2), '');
  const t = b.node('Transpose', '', [c2], { perm: [0, 2, 1] });
  // The whole table is added: the encoder takes exactly 2 × max_source_positions frames.
  const pos = ctx.param('embed_positions.weight', [d.maxSourcePositions, H], { uniform: 0.35 });
  let h = b.node('Add', '', [t, pos]);
  const zero = b.constF32('', 0);
  for (let l = 0; l < d.numLayers; l++) {
    const pre = `layers.${l}`;
    const x = ctx.layerNorm(h, `${pre}.self_attn_layer_norm`, H, d.layerNormEps);
    const a = attention(ctx, x, `${pre}.self_attn`, d, projectKv(ctx, x, `${pre}.self_attn`, d), zero);
    h = b.node('Add', scopeOf(pre), [h, a]);
    h = mlp(ctx, h, pre, d);
  }
  h = ctx.layerNorm(h, 'layer_norm', H, d.layerNormEps);
  ctx.finish(h, 'last_hidden_state', [B, 'encoder_sequence_length / 2', H]);
  return { graph: ctx.b.graph, ctx };
}

/** Causal bias [S, T] (broadcast over batch and heads): query i, at absolute position past + i, sees keys ≤ past + i. */
function causalBias(ctx: Ctx, ids: string, past: string | undefined, scope: string): string {
  const b = ctx.b;
  const S = b.node('Gather', scope, [b.node('Shape', scope, [ids]), b.constant(scope, i64([], [1]))], { axis: 0 });
  const P = past ?? b.constant(scope, i64([], [0]));
  const T = b.node('Add', scope, [P, S]);
  const one = b.constant(scope, i64([], [1]));
  const kpos = b.node('Range', scope, [b.constant(scope, i64([], [0])), T, one]);
  const qpos = b.node('Unsqueeze', scope, [b.node('Range', scope, [P, T, one]), b.constI64(scope, [1])]);
  const allowed = b.node('LessOrEqual', scope, [kpos, qpos]);
  return b.node('Where', scope, [allowed, b.constF32(scope, 0), b.constF32(scope, F32_MIN)]);
}

/** One decoder export: without past (`withPast` false: the first step) or with it. */
export function buildWhisperDecoder(seed: number, d: WhisperDims, withPast: boolean): { graph: Graph; ctx: Ctx } {
  const ctx = new Ctx('main_graph', { seed, root: 'model', taskRoot: 'model' });
  const b = ctx.b;
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const hd = H / nh;
  const L = d.numLayers;
  const ids = b.input('input_ids', 'int64', [B, 'decoder_sequence_length']);
  const enc = b.input('encoder_hidden_states', 'float32', [B, 'encoder_sequence_length / 2', H]);
  const pastDims = (kind: 'decoder' | 'encoder'): Array<number | string> => [B, nh, kind === 'decoder' ? 'past_decoder_sequence_length' : 'encoder_sequence_length_out', hd];
  if (withPast) {
    for (let l = 0; l < L; l++) {
      for (const kind of ['decoder', 'encoder'] as const) {
        b.input(`past_key_values.${l}.${kind}.key`, 'float32', pastDims(kind));
        b.input(`past_key_values.${l}.${kind}.value`, 'float32', pastDims(kind));
      }
    }
  }
  const ds = scopeOf('model.decoder');
  const past = withPast ? b.node('Gather', ds, [b.node('Shape', ds, ['past_key_values.0.decoder.key']), b.constant(ds, i64([], [2]))], { axis: 0 }) : undefined;
  const S = b.node('Gather', ds, [b.node('Shape', ds, [ids]), b.constant(ds, i64([], [1]))], { axis: 0 });
  const start = past ?? b.constant(ds, i64([], [0]));
  const unsq = (x: string): string => b.node('Unsqueeze', ds, [x, b.constI64(ds, [0])]);
  const tok = ctx.embedding(ids, 'model.decoder.embed_tokens', d.vocabSize, H, 1 / Math.sqrt(H));
  const posTable = ctx.param('model.decoder.embed_positions.weight', [d.maxTargetPositions, H], { uniform: 0.35 });
  const pos = b.node('Slice', scopeOf('model.decoder.embed_positions'), [posTable, unsq(start), unsq(b.node('Add', ds, [start, S])), b.constI64(ds, [0])]);
  let h = b.node('Add', ds, [tok, pos]);
  const bias = causalBias(ctx, ids, past, ds);
  const zero = b.constF32(ds, 0);
  const presentDims = (kind: 'decoder' | 'encoder'): Array<number | string> => [B, nh, kind === 'decoder' ? (withPast ? 'past_decoder_sequence_length + 1' : 'decoder_sequence_length') : 'encoder_sequence_length_out', hd];
  const presents: ValueInfo[] = [];
  // The node computing a cache tensor writes the graph output directly (nothing reads it yet).
  const present = (x: string, l: number, kind: 'decoder' | 'encoder', kv: 'key' | 'value'): string => {
    const name = `present.${l}.${kind}.${kv}`;
    const producer = b.graph.nodes.find((n) => n.outputs.includes(x))!;
    producer.outputs = producer.outputs.map((o) => (o === x ? name : o));
    presents.push({ name, dtype: 'float32', dims: presentDims(kind) });
    return name;
  };
  for (let l = 0; l < L; l++) {
    const pre = `model.decoder.layers.${l}`;
    const sa = scopeOf(`${pre}.self_attn`);
    const x = ctx.layerNorm(h, `${pre}.self_attn_layer_norm`, H, d.layerNormEps);
    const own = projectKv(ctx, x, `${pre}.self_attn`, d);
    const cat = (t: string, kv: 'key' | 'value'): string => (withPast ? b.node('Concat', sa, [`past_key_values.${l}.decoder.${kv}`, t], { axis: 2 }) : t);
    const selfKv = { k: present(cat(own.k, 'key'), l, 'decoder', 'key'), v: present(cat(own.v, 'value'), l, 'decoder', 'value') };
    h = b.node('Add', scopeOf(pre), [h, attention(ctx, x, `${pre}.self_attn`, d, selfKv, bias)]);
    const x2 = ctx.layerNorm(h, `${pre}.encoder_attn_layer_norm`, H, d.layerNormEps);
    let crossKv: { k: string; v: string };
    if (withPast) crossKv = { k: `past_key_values.${l}.encoder.key`, v: `past_key_values.${l}.encoder.value` };
    else {
      const p = projectKv(ctx, enc, `${pre}.encoder_attn`, d);
      crossKv = { k: present(p.k, l, 'encoder', 'key'), v: present(p.v, l, 'encoder', 'value') };
    }
    h = b.node('Add', scopeOf(pre), [h, attention(ctx, x2, `${pre}.encoder_attn`, d, crossKv, zero)]);
    h = mlp(ctx, h, pre, d);
  }
  h = ctx.layerNorm(h, 'model.decoder.layer_norm', H, d.layerNormEps);
  // proj_out is tied to embed_tokens: the exporter stores a transposed copy as an anonymous MatMul weight.
  const wte = ctx.state.get('model.decoder.embed_tokens.weight')!;
  ctx.state.set('proj_out.weight', wte);
  const wT = b.anonParam('MatMul', { dtype: 'float32', dims: [H, d.vocabSize], data: transpose(wte.data as Float32Array, d.vocabSize, H) });
  const logits = b.node('MatMul', '/proj_out', [h, wT]);
  ctx.linears.push({ path: 'proj_out', peftPath: 'proj_out', kind: 'head', op: 'MatMul', node: b.lastNode, output: logits, input: h, weight: wT, weightLayout: 'in_out', in: H, out: d.vocabSize } satisfies GraphLinear);
  ctx.finish(logits, 'logits', [B, 'decoder_sequence_length', d.vocabSize]);
  b.graph.outputs.push(...presents);
  return { graph: b.graph, ctx };
}

/**
 * optimum's `merge_decoders(decoder, decoder_with_past)`: one `If` (`optimum::if`) on
 * `use_cache_branch` [1] — then: with past, else: without — over the union of both exports' inputs;
 * initializers that are bit-identical in the two (same type, dims, bytes) stored once on the main
 * graph under the no-past export's name, the others kept (renamed on a clash); outputs missing from
 * the with-past export produced there by an empty `Constant` (dims: 0 on axis 0, 1 on symbolic axes).
 * Neither input is modified.
 */
export function mergeDecoders(noPast: Graph, withPast: Graph): Graph {
  const inits = new Map(noPast.initializers);
  const bucket = new Map<string, string[]>();
  for (const [name, t] of noPast.initializers) {
    const k = bucketKey(t);
    bucket.set(k, [...(bucket.get(k) ?? []), name]);
  }
  const rename = new Map<string, string>();
  for (const [name, t] of withPast.initializers) {
    const same = (bucket.get(bucketKey(t)) ?? []).find((n) => sameBytes(bytesOf(noPast.initializers.get(n)!), bytesOf(t)));
    if (same !== undefined) {
      if (same !== name) rename.set(name, same);
      continue;
    }
    let fresh = name;
    for (let i = 1; inits.has(fresh); i++) fresh = `${name}_merged_${i}`;
    if (fresh !== name) rename.set(name, fresh);
    inits.set(fresh, t);
  }
  const rn = (x: string): string => rename.get(x) ?? x;
  const withOut = new Set(withPast.outputs.map((o) => o.name));
  const fill = noPast.outputs.filter((o) => !withOut.has(o.name));
  const thenBranch: Graph = {
    name: 'with_past',
    nodes: [
      ...withPast.nodes.map((n) => ({ ...n, inputs: n.inputs.map(rn) })),
      ...fill.map((o, i) => {
        const dims = o.dims.map((x, j) => (j === 0 ? 0 : typeof x === 'string' ? 1 : x));
        const empty: TensorData = { dtype: 'float32', dims, data: new Float32Array(0) };
        return { op: 'Constant', name: `Constant_${withPast.nodes.length + 1 + i}`, inputs: [], outputs: [o.name], attrs: { value: empty } };
      }),
    ],
    initializers: new Map(),
    inputs: [],
    // In the no-past export's order (If requires both branches to list the same outputs).
    outputs: noPast.outputs.map((o) => ({ ...o })),
    opset: withPast.opset,
  };
  const elseBranch: Graph = { name: 'no_past', nodes: noPast.nodes, initializers: new Map(), inputs: [], outputs: noPast.outputs.map((o) => ({ ...o })), opset: noPast.opset };
  const inputs = [...noPast.inputs, ...withPast.inputs.filter((v) => !noPast.inputs.some((u) => u.name === v.name)), { name: 'use_cache_branch', dtype: 'bool' as const, dims: [1] }];
  const extra = [...(noPast.extraOpsets ?? []), ...(withPast.extraOpsets ?? []).filter((o) => !(noPast.extraOpsets ?? []).some((p) => p.domain === o.domain))];
  return {
    name: 'merged',
    nodes: [{ op: 'If', name: 'optimum::if', inputs: ['use_cache_branch'], outputs: noPast.outputs.map((o) => o.name), attrs: { then_branch: { graph: thenBranch }, else_branch: { graph: elseBranch } } }],
    initializers: inits,
    inputs,
    outputs: noPast.outputs.map((o) => ({ ...o })),
    opset: noPast.opset,
    ...(extra.length > 0 ? { extraOpsets: extra } : {}),
  };
}

/** Task-model (PEFT) names of the encoder's parameters: `layers.0.…` → `model.encoder.layers.0.…`. */
export function whisperState(encoder: Ctx, decoder: Ctx): StateDict {
  const out: StateDict = new Map();
  for (const [k, t] of encoder.state) out.set(`model.encoder.${k}`, t);
  for (const [k, t] of decoder.state) out.set(k, t);
  return out;
}
