/**
 * GPT-2 and LLaMA graphs. The causal LM is exported "with past" like optimum's
 * `text-generation-with-past`: inputs `input_ids`, `attention_mask` (past + current length),
 * `position_ids`, `past_key_values.{i}.key|value` [batch, kv_heads, past, head_dim]; outputs
 * `logits` and `present.{i}.key|value`. transformers.js' `generate()` always feeds the cache back
 * (it ignores `use_cache`), so a no-cache decoder would see only the newest token from the second
 * step on. The bare models (feature-extraction) have no cache, as optimum exports them.
 */
import type { ModelDims, Task } from '../spec.js';
import { type Ctx, scopeOf, transpose } from './ctx.js';

const B = 'batch_size';
const S = 'sequence_length';
const P = 'past_sequence_length';
const T = 'past_sequence_length + sequence_length';

interface DecoderIO {
  ids: string;
  mask: string;
  positions: string;
  withPast: boolean;
}

function decoderInputs(ctx: Ctx, d: ModelDims, task: Task): DecoderIO {
  const b = ctx.b;
  const withPast = task === 'causal-lm';
  const ids = b.input('input_ids', 'int64', [B, S]);
  const mask = b.input('attention_mask', 'int64', [B, withPast ? T : S]);
  const positions = b.input('position_ids', 'int64', [B, S]);
  if (withPast) {
    const hd = d.hiddenSize / d.numHeads;
    for (let l = 0; l < d.numLayers; l++) {
      b.input(`past_key_values.${l}.key`, 'float32', [B, d.numKvHeads, P, hd]);
      b.input(`past_key_values.${l}.value`, 'float32', [B, d.numKvHeads, P, hd]);
    }
  }
  return { ids, mask, positions, withPast };
}

/** Concatenate the cache (when exported with past) and name the result `present.{l}.{kind}`. */
function withCache(ctx: Ctx, io: DecoderIO, x: string, l: number, kind: 'key' | 'value', scope: string, d: ModelDims): string {
  if (!io.withPast) return x;
  const name = `present.${l}.${kind}`;
  ctx.b.node('Concat', scope, [`past_key_values.${l}.${kind}`, x], { axis: 2 }, name);
  ctx.b.output(name, 'float32', [B, d.numKvHeads, T, d.hiddenSize / d.numHeads]);
  return name;
}

function finishDecoder(ctx: Ctx, io: DecoderIO, h: string, d: ModelDims, lmHead: () => string): void {
  // Graph outputs in optimum's order: logits (or last_hidden_state) first, then present.*.
  const presents = ctx.b.graph.outputs.splice(0);
  if (io.withPast) ctx.finish(lmHead(), 'logits', [B, S, d.vocabSize]);
  else ctx.finish(h, 'last_hidden_state', [B, S, d.hiddenSize]);
  ctx.b.graph.outputs.push(...presents);
}

export function buildGpt2(ctx: Ctx, d: ModelDims, task: Task): void {
  const b = ctx.b;
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const hd = H / nh;
  const io = decoderInputs(ctx, d, task);
  const wte = ctx.embedding(io.ids, ctx.p('wte'), d.vocabSize, H, 1 / Math.sqrt(H));
  const wpe = ctx.embedding(io.positions, ctx.p('wpe'), d.maxPositions, H, 1 / Math.sqrt(H));
  let h = b.node('Add', scopeOf(ctx.root), [wte, wpe]);
  const bias = ctx.causalBias(io.ids, io.mask, scopeOf(ctx.root));
  for (let l = 0; l < d.numLayers; l++) {
    const pre = ctx.p(`h.${l}`);
    const attnScope = scopeOf(`${pre}.attn`);
    const x1 = ctx.layerNorm(h, `${pre}.ln_1`, H, d.layerNormEps);
    const qkv = ctx.conv1d(x1, `${pre}.attn.c_attn`, H, 3 * H);
    const [q, k, v] = b.nodeN('Split', attnScope, [qkv, b.constI64(attnScope, [H, H, H])], 3, { axis: 2 }) as [string, string, string];
    const qh = ctx.splitHeads(q, attnScope, nh, hd);
    const kh = withCache(ctx, io, ctx.splitHeads(k, attnScope, nh, hd), l, 'key', attnScope, d);
    const vh = withCache(ctx, io, ctx.splitHeads(v, attnScope, nh, hd), l, 'value', attnScope, d);
    const kT = b.node('Transpose', attnScope, [kh], { perm: [0, 1, 3, 2] });
    const a = ctx.mergeHeads(ctx.attend(qh, kT, vh, bias, attnScope, hd), attnScope, H);
    h = b.node('Add', scopeOf(pre), [ctx.conv1d(a, `${pre}.attn.c_proj`, H, H), h]);
    const x2 = ctx.layerNorm(h, `${pre}.ln_2`, H, d.layerNormEps);
    const m = ctx.geluNew(ctx.conv1d(x2, `${pre}.mlp.c_fc`, H, d.intermediateSize), scopeOf(`${pre}.mlp.act`));
    h = b.node('Add', scopeOf(pre), [h, ctx.conv1d(m, `${pre}.mlp.c_proj`, d.intermediateSize, H)]);
  }
  h = ctx.layerNorm(h, ctx.p('ln_f'), H, d.layerNormEps);
  finishDecoder(ctx, io, h, d, () => {
    // lm_head is tied to wte: the exporter stores a transposed copy as an anonymous MatMul weight.
    const wteW = ctx.state.get(ctx.p('wte.weight'))!;
    ctx.state.set('lm_head.weight', wteW);
    return tiedHead(ctx, h, wteW.data as Float32Array, d.vocabSize, H);
  });
}

function tiedHead(ctx: Ctx, h: string, w: Float32Array, V: number, H: number): string {
  const name = ctx.b.anonParam('MatMul', { dtype: 'float32', dims: [H, V], data: transpose(w, V, H) });
  const y = ctx.b.node('MatMul', '/lm_head', [h, name]);
  ctx.linears.push({ path: 'lm_head', peftPath: 'lm_head', kind: 'head', op: 'MatMul', node: ctx.b.lastNode, output: y, input: h, weight: name, weightLayout: 'in_out', in: H, out: V });
  return y;
}

export function buildLlama(ctx: Ctx, d: ModelDims, task: Task): void {
  const b = ctx.b;
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const nkv = d.numKvHeads;
  const hd = H / nh;
  const io = decoderInputs(ctx, d, task);
  let h = ctx.embedding(io.ids, ctx.p('embed_tokens'), d.vocabSize, H, 1 / Math.sqrt(H));
  const bias = ctx.causalBias(io.ids, io.mask, scopeOf(ctx.root));

  // Rotary embedding: cos/sin of position · inv_freq, duplicated halves, [B, 1, S, hd].
  const rs = scopeOf(ctx.p('rotary_emb'));
  const invFreq = new Float32Array(hd / 2);
  for (let i = 0; i < hd / 2; i++) invFreq[i] = 1 / Math.pow(d.ropeTheta, (2 * i) / hd);
  const pos = b.node('Unsqueeze', rs, [b.node('Cast', rs, [io.positions], { to: 1 }), b.constI64(rs, [2])]);
  const freqs = b.node('Mul', rs, [pos, b.constant(rs, { dtype: 'float32', dims: [1, 1, hd / 2], data: invFreq })]);
  const emb = b.node('Concat', rs, [freqs, freqs], { axis: -1 });
  const cos = b.node('Unsqueeze', rs, [b.node('Cos', rs, [emb]), b.constI64(rs, [1])]);
  const sin = b.node('Unsqueeze', rs, [b.node('Sin', rs, [emb]), b.constI64(rs, [1])]);
  const rope = (x: string, scope: string): string => {
    const x1 = b.node('Slice', scope, [x, b.constI64(scope, [0]), b.constI64(scope, [hd / 2]), b.constI64(scope, [3])]);
    const x2 = b.node('Slice', scope, [x, b.constI64(scope, [hd / 2]), b.constI64(scope, [hd]), b.constI64(scope, [3])]);
    const rot = b.node('Concat', scope, [b.node('Neg', scope, [x2]), x1], { axis: -1 });
    return b.node('Add', scope, [b.node('Mul', scope, [x, cos]), b.node('Mul', scope, [rot, sin])]);
  };
  // repeat_kv: [B, nkv, T, hd] → [B, nh, T, hd].
  const repeatKv = (x: string, scope: string): string => {
    if (nkv === nh) return x;
    const u = b.node('Unsqueeze', scope, [x, b.constI64(scope, [2])]);
    const sh = b.node('Shape', scope, [x]);
    const bT = (i: number): string => b.node('Gather', scope, [sh, b.constI64(scope, [i])], { axis: 0 });
    const target = b.node('Concat', scope, [bT(0), b.constI64(scope, [nkv, nh / nkv]), bT(2), b.constI64(scope, [hd])], { axis: 0 });
    const e = b.node('Expand', scope, [u, target]);
    return b.node('Reshape', scope, [e, b.node('Concat', scope, [bT(0), b.constI64(scope, [nh]), bT(2), b.constI64(scope, [hd])], { axis: 0 })]);
  };

  const kvOut = (H / nh) * nkv;
  for (let l = 0; l < d.numLayers; l++) {
    const pre = ctx.p(`layers.${l}`);
    const as = scopeOf(`${pre}.self_attn`);
    const x = ctx.rmsNorm(h, `${pre}.input_layernorm`, H, d.layerNormEps);
    const q = rope(ctx.splitHeads(ctx.linear(x, `${pre}.self_attn.q_proj`, H, H, { bias: false }), as, nh, hd), as);
    const k = rope(ctx.splitHeads(ctx.linear(x, `${pre}.self_attn.k_proj`, H, kvOut, { bias: false }), as, nkv, hd), as);
    const v = ctx.splitHeads(ctx.linear(x, `${pre}.self_attn.v_proj`, H, kvOut, { bias: false }), as, nkv, hd);
    const kAll = withCache(ctx, io, k, l, 'key', as, d);
    const vAll = withCache(ctx, io, v, l, 'value', as, d);
    const kT = b.node('Transpose', as, [repeatKv(kAll, as)], { perm: [0, 1, 3, 2] });
    const a = ctx.mergeHeads(ctx.attend(q, kT, repeatKv(vAll, as), bias, as, hd), as, H);
    h = b.node('Add', scopeOf(pre), [h, ctx.linear(a, `${pre}.self_attn.o_proj`, H, H, { bias: false })]);
    const x2 = ctx.rmsNorm(h, `${pre}.post_attention_layernorm`, H, d.layerNormEps);
    const gate = ctx.linear(x2, `${pre}.mlp.gate_proj`, H, d.intermediateSize, { bias: false });
    const actScope = scopeOf(`${pre}.mlp.act_fn`);
    const act = b.node('Mul', actScope, [gate, b.node('Sigmoid', actScope, [gate])]);
    const up = ctx.linear(x2, `${pre}.mlp.up_proj`, H, d.intermediateSize, { bias: false });
    const m = b.node('Mul', scopeOf(`${pre}.mlp`), [act, up]);
    h = b.node('Add', scopeOf(pre), [h, ctx.linear(m, `${pre}.mlp.down_proj`, d.intermediateSize, H, { bias: false })]);
  }
  h = ctx.rmsNorm(h, ctx.p('norm'), H, d.layerNormEps);
  finishDecoder(ctx, io, h, d, () => ctx.linear(h, 'lm_head', H, d.vocabSize, { bias: false, kind: 'head' }));
}
