/**
 * LLaMA in the layout of onnxruntime-genai's model builder (`builder.py` / `builders/base.py`,
 * `-e cpu` defaults), for `layout: 'genai'`. Written from the builder's source (read, not copied):
 *
 * - Attention: GroupQueryAttention (com.microsoft) fed by one packed `qkv_proj` MatMul (q | k | v
 *   output columns; `use_packed_matmul` is on by default for GQA), with the rotary embedding inside
 *   the op (`do_rotary = 1` on `cos_cache` / `sin_cache` [context, head_dim / 2]; the builder then
 *   drops `position_ids` from the inputs), `seqlens_k` / `total_sequence_length` from the
 *   attention mask (`/model/attn_mask_reformat/attn_mask_subgraph/…`: ReduceSum − 1 and
 *   Shape[1], both cast to int32), past/present KV of [batch, kv_heads, seq, head_dim].
 * - Norms: `SimplifiedLayerNormalization` for the first input norm, then
 *   `SkipSimplifiedLayerNormalization` (com.microsoft) folding each residual add (output 3 carries
 *   the residual stream), the last one (`final_norm_layernorm`) with output 0 only.
 * - MLP: separate `gate_proj` / `up_proj` MatMuls (the builder's `make_mlp_proj`; a checkpoint's packed
 *   `gate_up_proj` is unpacked first), SiLU as Sigmoid + Mul, `/model/layers.N/mlp/Mul`, `down_proj`.
 * - Names: nodes `/model/layers.N/attn/qkv_proj/MatMul`, outputs `<node>/output_0`, weights
 *   `<node path with dots>.weight` stored [in, out] (`model.layers.0.attn.qkv_proj.MatMul.weight`),
 *   constants as `Constant` nodes `/model/constant_nodes/INT64/[1]` writing `/model/constants/INT64/[1]`,
 *   `/lm_head/MatMul` writing `logits`; opset 21, IR 10, producer `onnxruntime-genai`.
 * - Dtypes: `fp16` is `-p fp16 -e webgpu` (the same as `-e cuda`): io_dtype float16 (`set_io_dtype`), so
 *   the embedding, every weight, norm, rotary cache, KV cache and the logits are fp16 from the first
 *   Gather on, with no Cast anywhere (input_ids / attention_mask stay int64, the mask subgraph int32),
 *   and GroupQueryAttention stays the attention op (`is_gqa_supported` lists (webgpu, fp16) and
 *   (cuda, fp16)). `-p fp16 -e cpu` is not made: (cpu, fp16) is neither a GQA nor a packed-Attention
 *   configuration there, so the builder falls back to MultiHeadAttention on separate q/k/v MatMuls
 *   with RotaryEmbedding nodes, a `position_ids` input, a 4D additive causal mask and a `repeat_kv`
 *   subgraph for GQA models — another graph (see the README).
 * - Dtypes: `int4` → MatMulNBits (onnxruntime's MatMulNBitsQuantizer as the builder's `to_nbits`
 *   runs it: block 32, symmetric, `accuracy_level` 4 on cpu/webgpu) on every MatMul, lm_head
 *   included. `q4` is `-p int4 -e cpu` (fp32 I/O); `q4f16` is `-p int4 -e webgpu` (the same graph
 *   with fp16 I/O, weights, norms and caches: GQA runs fp16 there).
 *
 * Weights are drawn exactly as the standard llama builder draws them (`Ctx.values`, keyed by the
 * PEFT parameter name), so a genai folder and an optimum folder of the same seed hold the same model.
 */
import { f32BitsToF16Bits } from '@tensorpeft/core';
import type { ModelDims } from '../spec.js';
import { Ctx, transpose, type GraphLinear } from './ctx.js';
import onnxProto from 'onnx-proto';
import { modelProto, type AttrValue, type DType, type Graph, type TensorData } from '../onnx/graph.js';
import { quantizeQ4Graph } from '../onnx/quant4.js';

export const GENAI_DTYPES = ['fp16', 'q4', 'q4f16'] as const;
export type GenaiDtype = (typeof GENAI_DTYPES)[number];

/** The builder's `accuracy_level` default for the cpu and webgpu execution providers. */
export const GENAI_ACCURACY_LEVEL = 4;

const B = 'batch_size';
const S = 'sequence_length';
const P = 'past_sequence_length';
const T = 'total_sequence_length';

const f32buf = new Float32Array(1);
const u32buf = new Uint32Array(f32buf.buffer);

/** float32 → fp16 bit patterns, round to nearest even, no clamping (torch's `.to(float16)`). */
function half(src: Float32Array): Uint16Array {
  const out = new Uint16Array(src.length);
  for (let i = 0; i < src.length; i++) {
    f32buf[0] = src[i]!;
    out[i] = f32BitsToF16Bits(u32buf[0]!);
  }
  return out;
}

/** The values fp16 storage keeps (what the builder's fp16 weights hold before int4 quantization). */
function roundHalf(src: Float32Array): Float32Array {
  return widen(half(src));
}

function halfBitsToNumber(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** Builds the genai graph: explicit node names and `<node>/output_0` outputs, as the builder writes them. */
class GenaiGraph {
  readonly g: Graph = { name: 'main_graph', nodes: [], initializers: new Map(), inputs: [], outputs: [], opset: 21, extraOpsets: [{ domain: 'com.microsoft', version: 1 }] };
  private readonly constants = new Set<string>();

  node(op: string, name: string, inputs: string[], attrs: Record<string, AttrValue> = {}, opts: { outputs?: string[]; domain?: string } = {}): string {
    const outputs = opts.outputs ?? [`${name}/output_0`];
    this.g.nodes.push({ op, name, inputs, outputs, attrs, ...(opts.domain ? { domain: opts.domain } : {}) });
    return outputs[0]!;
  }

  /** `/model/constants/INT64/[1]`-style constants, each made once by a `Constant` node where first used. */
  constI64(value: number | number[]): string {
    const text = Array.isArray(value) ? `[${value.join(', ')}]` : String(value);
    const name = `/model/constants/INT64/${text}`;
    if (!this.constants.has(name)) {
      this.constants.add(name);
      const vals = Array.isArray(value) ? value : [value];
      const t: TensorData = { dtype: 'int64', dims: Array.isArray(value) ? [value.length] : [], data: BigInt64Array.from(vals.map((v) => BigInt(v))) };
      this.node('Constant', name.replace('/constants/', '/constant_nodes/'), [], { value: t }, { outputs: [name] });
    }
    return name;
  }

  init(name: string, t: TensorData): string {
    this.g.initializers.set(name, t);
    return name;
  }
}

export interface GenaiBuild {
  graph: Graph;
  /** Parameters by PEFT (state-dict) name, torch layout: the same tensors the optimum layout holds. */
  ctx: Ctx;
  /** Packed linears appear once per packed node (`model.layers.N.attn.qkv_proj`). */
  linears: GraphLinear[];
}

/**
 * The genai LLaMA graph (causal LM with past). `io`: the builder's io_dtype — float32 for
 * `-e cpu`, float16 for the q4f16 (`-e webgpu`) export, whose weights are then fp16 before the
 * int4 pass; the int4 pass itself is `genaiDtypeGraph`.
 */
export function buildGenaiLlama(d: ModelDims, seed: number, io: 'float32' | 'float16' = 'float32'): GenaiBuild {
  const ctx = new Ctx('main_graph', { seed, root: 'model', taskRoot: 'model' });
  const gb = new GenaiGraph();
  const g = gb.g;
  const H = d.hiddenSize;
  const nh = d.numHeads;
  const nkv = d.numKvHeads;
  const hd = H / nh;
  const nq = nh * hd;
  const nk = nkv * hd;
  const I = d.intermediateSize;
  const L = d.numLayers;
  const V = d.vocabSize;
  const dt: DType = io;
  const store = (v: Float32Array): Float32Array => (io === 'float16' ? roundHalf(v) : v);
  const tensor = (dims: number[], v: Float32Array): TensorData => (io === 'float16' ? { dtype: 'float16', dims, data: half(v) } : { dtype: 'float32', dims, data: v });
  const linears: GraphLinear[] = [];

  // I/O as the builder declares them (head_dim as a number: see the README on `kv_cache_dim`).
  g.inputs.push({ name: 'input_ids', dtype: 'int64', dims: [B, S] }, { name: 'attention_mask', dtype: 'int64', dims: [B, T] });
  for (let l = 0; l < L; l++) {
    g.inputs.push({ name: `past_key_values.${l}.key`, dtype: dt, dims: [B, nkv, P, hd] }, { name: `past_key_values.${l}.value`, dtype: dt, dims: [B, nkv, P, hd] });
  }
  g.outputs.push({ name: 'logits', dtype: dt, dims: [B, S, V] });
  for (let l = 0; l < L; l++) {
    g.outputs.push({ name: `present.${l}.key`, dtype: dt, dims: [B, nkv, T, hd] }, { name: `present.${l}.value`, dtype: dt, dims: [B, nkv, T, hd] });
  }

  // seqlens_k = Σ mask − 1 and total_sequence_length = mask.shape[1], both int32 (GQA's inputs).
  const mb = '/model/attn_mask_reformat/attn_mask_subgraph';
  const sum = gb.node('ReduceSum', `${mb}/ReduceSum`, ['attention_mask', gb.constI64([1])], { keepdims: 0 });
  const sub = gb.node('Sub', `${mb}/Sub`, [sum, gb.constI64([1])]);
  const seqlensK = gb.node('Cast', `${mb}/Sub/Cast`, [sub], { to: 6 });
  const shape = gb.node('Shape', `${mb}/Shape`, ['attention_mask']);
  const total = gb.node('Gather', `${mb}/Gather`, [shape, gb.constI64(1)], { axis: 0 });
  const totalLen = gb.node('Cast', `${mb}/Gather/Cast`, [total], { to: 6 });

  // Embedding (std 1/√H, as the optimum builder draws it).
  const emb = ctx.values('model.embed_tokens.weight', [V, H], { uniform: (1 / Math.sqrt(H)) * Math.sqrt(3) });
  gb.init('model.embed_tokens.weight', tensor([V, H], store(emb)));
  let root = gb.node('Gather', '/model/embed_tokens/Gather', ['model.embed_tokens.weight', 'input_ids']);
  let skip = root;

  // Rotary caches for GQA's do_rotary: cos/sin of t · inv_freq over the context, [context, hd / 2].
  const ctxLen = d.maxPositions;
  const cos = new Float32Array(ctxLen * (hd / 2));
  const sin = new Float32Array(ctxLen * (hd / 2));
  for (let t = 0; t < ctxLen; t++)
    for (let i = 0; i < hd / 2; i++) {
      const invFreq = Math.fround(1 / Math.pow(d.ropeTheta, Math.fround((2 * i) / hd)));
      const a = Math.fround(t * invFreq);
      cos[t * (hd / 2) + i] = Math.cos(a);
      sin[t * (hd / 2) + i] = Math.sin(a);
    }
  gb.init('cos_cache', tensor([ctxLen, hd / 2], cos));
  gb.init('sin_cache', tensor([ctxLen, hd / 2], sin));

  const norm = (path: string, name: string): string => gb.init(name, tensor([H], store(ctx.values(path, [H], 'ln_weight'))));
  /** A Linear's [out, in] weight(s) → one MatMul on the [in, Σout] concatenation, named as the builder names it. */
  const matmul = (x: string, scope: string, parts: Array<{ path: string; out: number }>, inF: number, output?: string): string => {
    const outF = parts.reduce((a, p) => a + p.out, 0);
    const packed = new Float32Array(outF * inF);
    let row = 0;
    for (const p of parts) {
      packed.set(ctx.values(`${p.path}.weight`, [p.out, inF], { uniform: 1 / Math.sqrt(inF) }), row * inF);
      row += p.out;
    }
    const name = `${scope}/MatMul`;
    const w = gb.init(`${name.slice(1).replace(/\//g, '.')}.weight`, tensor([inF, outF], store(transpose(packed, outF, inF))));
    const y = gb.node('MatMul', name, [x, w], {}, output ? { outputs: [output] } : {});
    const path = scope.slice(1).replace(/\//g, '.');
    linears.push({ path, peftPath: path, kind: path === 'lm_head' ? 'head' : 'target', op: 'MatMul', node: name, output: y, input: x, weight: w, weightLayout: 'in_out', in: inF, out: outF });
    return y;
  };

  for (let l = 0; l < L; l++) {
    const pre = `/model/layers.${l}`;
    const peft = `model.layers.${l}`;
    // input_layernorm: plain for layer 0, else the skip form that adds the previous MLP output.
    let x: string;
    const inW = norm(`${peft}.input_layernorm.weight`, `${peft}.input_layernorm.weight`);
    if (l === 0) {
      x = gb.node('SimplifiedLayerNormalization', `${pre}/input_layernorm/LayerNorm`, [root, inW], { axis: -1, epsilon: { float: d.layerNormEps }, stash_type: 1 }, { outputs: [`${pre}/input_layernorm/output_0`] });
    } else {
      const outs = [`${pre}/input_layernorm/output_0`, '', '', `${pre}/input_layernorm/output_3`];
      x = gb.node('SkipSimplifiedLayerNormalization', `${pre}/input_layernorm/SkipLayerNorm`, [root, skip, inW], { epsilon: { float: d.layerNormEps } }, { outputs: outs, domain: 'com.microsoft' });
      root = outs[3]!;
    }
    const qkv = matmul(
      x,
      `${pre}/attn/qkv_proj`,
      [
        { path: `${peft}.self_attn.q_proj`, out: nq },
        { path: `${peft}.self_attn.k_proj`, out: nk },
        { path: `${peft}.self_attn.v_proj`, out: nk },
      ],
      H,
    );
    const attn = gb.node(
      'GroupQueryAttention',
      `${pre}/attn/GroupQueryAttention`,
      [qkv, '', '', `past_key_values.${l}.key`, `past_key_values.${l}.value`, seqlensK, totalLen, 'cos_cache', 'sin_cache'],
      { num_heads: nh, kv_num_heads: nkv, scale: { float: 1 / Math.sqrt(hd) }, local_window_size: -1, softcap: { float: 0 }, do_rotary: 1, rotary_interleaved: 0 },
      { outputs: [`${pre}/attn/GroupQueryAttention/output_0`, `present.${l}.key`, `present.${l}.value`], domain: 'com.microsoft' },
    );
    skip = matmul(attn, `${pre}/attn/o_proj`, [{ path: `${peft}.self_attn.o_proj`, out: H }], nq);
    const postW = norm(`${peft}.post_attention_layernorm.weight`, `${peft}.post_attention_layernorm.weight`);
    const postOuts = [`${pre}/post_attention_layernorm/output_0`, '', '', `${pre}/post_attention_layernorm/output_3`];
    const x2 = gb.node('SkipSimplifiedLayerNormalization', `${pre}/post_attention_layernorm/SkipLayerNorm`, [root, skip, postW], { epsilon: { float: d.layerNormEps } }, { outputs: postOuts, domain: 'com.microsoft' });
    root = postOuts[3]!;
    const gate = matmul(x2, `${pre}/mlp/gate_proj`, [{ path: `${peft}.mlp.gate_proj`, out: I }], H);
    const up = matmul(x2, `${pre}/mlp/up_proj`, [{ path: `${peft}.mlp.up_proj`, out: I }], H);
    const sig = gb.node('Sigmoid', `${pre}/mlp/act_fn/Sigmoid`, [gate]);
    const act = gb.node('Mul', `${pre}/mlp/act_fn/Mul`, [gate, sig]);
    const m = gb.node('Mul', `${pre}/mlp/Mul`, [act, up]);
    skip = matmul(m, `${pre}/mlp/down_proj`, [{ path: `${peft}.mlp.down_proj`, out: H }], I);
  }
  // Final norm: a skip norm numbered after the last layer, output 0 only.
  const fW = norm('model.norm.weight', `model.layers.${L}.final_norm_layernorm.weight`);
  const h = gb.node('SkipSimplifiedLayerNormalization', `/model/layers.${L}/final_norm_layernorm/SkipLayerNorm`, [root, skip, fW], { epsilon: { float: d.layerNormEps } }, { outputs: [`/model/layers.${L}/final_norm_layernorm/output_0`], domain: 'com.microsoft' });
  matmul(h, '/lm_head', [{ path: 'lm_head', out: V }], H, 'logits');
  return { graph: g, ctx, linears };
}

/**
 * The int4 export (`-p int4`): every MatMul → MatMulNBits as the builder's `to_nbits` pass makes it
 * (onnxruntime's MatMulNBitsQuantizer: `<node>_Q4` on `<W>_Q4` / `<W>_scales`, block 32, symmetric),
 * with `accuracy_level` 4. On an fp16 graph the weights are quantized from their fp16 values and the
 * scales stored in fp16.
 */
export function genaiQ4Graph(g: Graph): Graph {
  const half16 = g.inputs.some((v) => v.dtype === 'float16');
  // quantizeQ4Graph takes float32 weights: give it the fp16 values as float32, then store back.
  const widened: Graph = half16 ? { ...g, initializers: new Map([...g.initializers].map(([k, t]) => [k, t.dtype === 'float16' ? { dtype: 'float32' as const, dims: t.dims, data: widen(t.data as Uint16Array) } : t])) } : g;
  const q = quantizeQ4Graph(widened);
  const nodes = q.nodes.map((n) => (n.op === 'MatMulNBits' ? { ...n, attrs: { ...n.attrs, accuracy_level: GENAI_ACCURACY_LEVEL } } : n));
  const initializers = half16 ? new Map([...q.initializers].map(([k, t]) => [k, t.dtype === 'float32' ? { dtype: 'float16' as const, dims: t.dims, data: half(t.data as Float32Array) } : t])) : q.initializers;
  return { ...q, nodes, initializers };
}

function widen(h: Uint16Array): Float32Array {
  const out = new Float32Array(h.length);
  for (let i = 0; i < h.length; i++) out[i] = halfBitsToNumber(h[i]!);
  return out;
}

/**
 * genai_config.json as the builder writes it (`make_genai_config`) for this model, the decoder
 * `filename` relative to the config (the folder root here: `onnx/model.onnx`).
 */
export function genaiConfig(d: ModelDims, tok: { bos: number; eos: number }, filename: string): Record<string, unknown> {
  const hd = d.hiddenSize / d.numHeads;
  return {
    model: {
      bos_token_id: tok.bos,
      context_length: d.maxPositions,
      decoder: {
        session_options: { log_id: 'onnxruntime-genai', provider_options: [] },
        filename,
        head_size: hd,
        hidden_size: d.hiddenSize,
        inputs: { input_ids: 'input_ids', attention_mask: 'attention_mask', past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' },
        outputs: { logits: 'logits', present_key_names: 'present.%d.key', present_value_names: 'present.%d.value' },
        num_attention_heads: d.numHeads,
        num_hidden_layers: d.numLayers,
        num_key_value_heads: d.numKvHeads,
      },
      eos_token_id: tok.eos,
      pad_token_id: tok.eos,
      type: 'llama',
      vocab_size: d.vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1,
      max_length: d.maxPositions,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: true,
      repetition_penalty: 1,
      temperature: 1,
      top_k: 50,
      top_p: 1,
    },
  };
}

/** Encode as the builder saves its models: IR 10, producer `onnxruntime-genai`. */
export function encodeGenai(g: Graph): Uint8Array {
  const m = modelProto(g, { name: 'onnxruntime-genai', version: '' });
  m.irVersion = 10;
  return onnxProto.onnx.ModelProto.encode(onnxProto.onnx.ModelProto.fromObject(m)).finish();
}
