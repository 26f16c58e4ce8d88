/**
 * `layout: 'genai'` (onnxruntime-genai builder layout, build/genai.ts): names and packing as the
 * builder writes them, and the same model as the standard (optimum) layout of the same seed — run
 * side by side in onnxruntime-node (logits within fp32 rounding) and through transformers.js'
 * generate() with the KV cache (same greedy tokens). The standard layout is built by other code
 * (build/decoders.ts: separate q/k/v MatMuls, decomposed RMSNorm/RoPE, explicit causal mask), so an
 * error in the packing, the rotary caches or the GQA wiring shows up as a mismatch.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ConfigError } from '@tensorpeft/core';
import { decodeModel, makeModel, writeModel, type GeneratedModel } from './index.js';
import { fromHalf } from './onnx/float16.js';

const SEED = 4;
let root: string;
let genai: GeneratedModel;
let standard: GeneratedModel;
beforeAll(async () => {
  root = await mkdtemp(path.join(tmpdir(), 'mg-genai-'));
  genai = await writeModel({ arch: 'llama', size: 'tiny', seed: SEED, layout: 'genai', dtypes: ['fp16', 'q4', 'q4f16'] }, path.join(root, 'genai'));
  standard = await writeModel({ arch: 'llama', size: 'tiny', seed: SEED, quantized: false, dtypes: ['fp16'] }, path.join(root, 'standard'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

type Onnx = ReturnType<typeof decodeModel>;
const graphOf = (m: GeneratedModel, file: string): Onnx => decodeModel(m.files.get(file)!);
const node = (g: Onnx, name: string) => g.graph!.node!.find((n) => n.name === name);
const attrs = (n: NonNullable<ReturnType<typeof node>>): Record<string, number> => Object.fromEntries(n.attribute!.map((a) => [a.name!, a.f ? Number(a.f) : Number(a.i ?? 0)]));
const floats = (g: Onnx, name: string): Float32Array => new Float32Array(Uint8Array.from(g.graph!.initializer!.find((t) => t.name === name)!.rawData!).buffer);

describe('genai layout', () => {
  test('nodes, weights and I/O named as the builder names them; q|k|v packed by output column', () => {
    const g = graphOf(genai, 'onnx/model.onnx');
    expect(g.producerName).toBe('onnxruntime-genai');
    expect(g.opsetImport!.map((o) => [o.domain, Number(o.version)])).toEqual([
      ['', 21],
      ['com.microsoft', 1],
    ]);
    expect(g.graph!.input!.map((v) => v.name)).toEqual(['input_ids', 'attention_mask', 'past_key_values.0.key', 'past_key_values.0.value', 'past_key_values.1.key', 'past_key_values.1.value']);
    expect(g.graph!.output!.map((v) => v.name)).toEqual(['logits', 'present.0.key', 'present.0.value', 'present.1.key', 'present.1.value']);
    const gqa = node(g, '/model/layers.0/attn/GroupQueryAttention')!;
    expect([gqa.opType, gqa.domain]).toEqual(['GroupQueryAttention', 'com.microsoft']);
    // Packed query input, no separate key/value, cos/sin caches for the in-op rotary embedding.
    expect(gqa.input).toEqual(['/model/layers.0/attn/qkv_proj/MatMul/output_0', '', '', 'past_key_values.0.key', 'past_key_values.0.value', '/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast/output_0', '/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast/output_0', 'cos_cache', 'sin_cache']);
    expect(gqa.output).toEqual(['/model/layers.0/attn/GroupQueryAttention/output_0', 'present.0.key', 'present.0.value']);
    expect(attrs(gqa)).toMatchObject({ num_heads: 4, kv_num_heads: 2, do_rotary: 1, local_window_size: -1 });
    expect(node(g, '/model/layers.0/input_layernorm/LayerNorm')!.opType).toBe('SimplifiedLayerNormalization');
    expect(node(g, '/model/layers.1/input_layernorm/SkipLayerNorm')!.opType).toBe('SkipSimplifiedLayerNormalization');
    expect(node(g, '/model/layers.2/final_norm_layernorm/SkipLayerNorm')!.output).toEqual(['/model/layers.2/final_norm_layernorm/output_0']);
    for (const mm of ['attn/o_proj', 'mlp/gate_proj', 'mlp/up_proj', 'mlp/down_proj']) expect(node(g, `/model/layers.0/${mm}/MatMul`)!.opType).toBe('MatMul');
    expect(node(g, '/lm_head/MatMul')!.output).toEqual(['logits']);
    expect(node(g, '/model/constant_nodes/INT64/[1]')!.output).toEqual(['/model/constants/INT64/[1]']);

    // model.layers.0.attn.qkv_proj.MatMul.weight is [in, q + k + v]: column j of the packed weight is
    // row j of q_proj.weight, then k_proj's, then v_proj's (torch layout [out, in] in `weights`).
    const W = floats(g, 'model.layers.0.attn.qkv_proj.MatMul.weight');
    const H = 64;
    const cols = 64 + 32 + 32;
    let c = 0;
    let wrong = 0;
    for (const [mod, out] of [['q_proj', 64], ['k_proj', 32], ['v_proj', 32]] as const) {
      const w = genai.weights.get(`model.layers.0.self_attn.${mod}.weight`)!.data as Float32Array;
      for (let o = 0; o < out; o++, c++) for (let i = 0; i < H; i++) if (W[i * cols + c] !== w[o * H + i]) wrong++;
    }
    expect([c, wrong]).toEqual([cols, 0]);
    // The same parameters as the optimum layout of the same seed.
    expect([...genai.weights.keys()].sort()).toEqual([...standard.weights.keys()].sort());
    const differ = [...standard.weights].filter(([k, t]) => Buffer.compare(Buffer.from((genai.weights.get(k)!.data as Float32Array).buffer), Buffer.from((t.data as Float32Array).buffer)) !== 0);
    expect(differ.map(([k]) => k)).toEqual([]);
  });

  test('q4 / q4f16: MatMulNBits with accuracy_level 4 on every MatMul (lm_head included); q4f16 has fp16 I/O', () => {
    const q4 = graphOf(genai, 'onnx/model_q4.onnx');
    const qkv = node(q4, '/model/layers.0/attn/qkv_proj/MatMul_Q4')!;
    expect(qkv.input).toEqual(['/model/layers.0/input_layernorm/output_0', 'model.layers.0.attn.qkv_proj.MatMul.weight_Q4', 'model.layers.0.attn.qkv_proj.MatMul.weight_scales']);
    expect(attrs(qkv)).toEqual({ K: 64, N: 128, bits: 4, block_size: 32, accuracy_level: 4 });
    expect(q4.graph!.node!.filter((n) => n.opType === 'MatMul')).toEqual([]);
    expect(node(q4, '/lm_head/MatMul_Q4')!.output).toEqual(['logits']);
    const h = graphOf(genai, 'onnx/model_q4f16.onnx');
    const FLOAT16 = 10;
    expect(h.graph!.input!.filter((v) => v.name!.startsWith('past')).every((v) => v.type!.tensorType!.elemType === FLOAT16)).toBe(true);
    expect(h.graph!.output!.every((v) => v.type!.tensorType!.elemType === FLOAT16)).toBe(true);
    expect(h.graph!.initializer!.find((t) => t.name === 'model.layers.0.attn.qkv_proj.MatMul.weight_scales')!.dataType).toBe(FLOAT16);
    expect(h.graph!.node!.some((n) => n.opType === 'Cast' && n.name!.includes('fp16'))).toBe(false);
  });

  test('fp16 (`-p fp16 -e webgpu`): the fp32 graph node for node, GroupQueryAttention kept, fp16 from the embedding on, no Cast', () => {
    const g = graphOf(genai, 'onnx/model.onnx');
    const h = graphOf(genai, 'onnx/model_fp16.onnx');
    const FLOAT = 1;
    const FLOAT16 = 10;
    // Same nodes in the same order with the same wiring: only the float dtype differs.
    expect(h.graph!.node!.map((n) => [n.name, n.opType, n.input, n.output])).toEqual(g.graph!.node!.map((n) => [n.name, n.opType, n.input, n.output]));
    expect(node(h, '/model/layers.1/attn/GroupQueryAttention')!.domain).toBe('com.microsoft');
    expect(h.graph!.node!.filter((n) => n.opType === 'Cast').map((n) => n.name)).toEqual(['/model/attn_mask_reformat/attn_mask_subgraph/Sub/Cast', '/model/attn_mask_reformat/attn_mask_subgraph/Gather/Cast']);
    const types = (vs: NonNullable<Onnx['graph']>['input']) => vs!.map((v) => [v.name, v.type!.tensorType!.elemType]);
    expect(types(h.graph!.input)).toEqual(types(g.graph!.input).map(([n, t]) => [n, t === FLOAT ? FLOAT16 : t]));
    expect(types(h.graph!.output)).toEqual(types(g.graph!.output).map(([n, t]) => [n, t === FLOAT ? FLOAT16 : t]));
    const floatInits = h.graph!.initializer!.filter((t) => t.dataType === FLOAT || t.dataType === FLOAT16);
    expect(floatInits.length).toBeGreaterThan(10);
    expect(floatInits.every((t) => t.dataType === FLOAT16)).toBe(true);
    // Each fp16 weight is its fp32 value rounded to half (round to nearest even, the builder's `.to(float16)`).
    const w32 = floats(g, 'model.layers.0.attn.qkv_proj.MatMul.weight');
    const w16 = fromHalf(new Uint16Array(Uint8Array.from(h.graph!.initializer!.find((t) => t.name === 'model.layers.0.attn.qkv_proj.MatMul.weight')!.rawData!).buffer));
    let worst = 0;
    for (let i = 0; i < w32.length; i++) worst = Math.max(worst, Math.abs(w16[i]! - w32[i]!) / Math.abs(w32[i]!));
    expect(worst).toBeLessThanOrEqual(2 ** -11);
    expect(worst).toBeGreaterThan(0);
  });

  test("genai_config.json as the builder writes it; refused for other architectures and the q8/int8 dtypes", () => {
    const cfg = JSON.parse(new TextDecoder().decode(genai.files.get('genai_config.json')!)) as { model: Record<string, unknown> & { decoder: Record<string, unknown> }; search: Record<string, unknown> };
    expect(cfg.model.decoder).toMatchObject({ filename: 'onnx/model.onnx', head_size: 16, hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2 });
    expect(cfg.model.decoder['inputs']).toEqual({ input_ids: 'input_ids', attention_mask: 'attention_mask', past_key_names: 'past_key_values.%d.key', past_value_names: 'past_key_values.%d.value' });
    expect(cfg.model.type).toBe('llama');
    expect(cfg.search).toMatchObject({ past_present_share_buffer: true, max_length: 128 });
    expect([...genai.files.keys()].sort()).toEqual(['config.json', 'genai_config.json', 'generation_config.json', 'onnx/model.onnx', 'onnx/model_fp16.onnx', 'onnx/model_q4.onnx', 'onnx/model_q4f16.onnx', 'tokenizer.json', 'tokenizer_config.json']);
    expect(() => makeModel({ arch: 'gpt2', layout: 'genai' })).toThrow(ConfigError);
    expect(() => makeModel({ arch: 'llama', layout: 'genai', dtypes: ['int8'] })).toThrow(ConfigError);
  });

  test('onnxruntime-node: the same logits as the optimum layout of the same seed (fp32, prompt then one cached step); q4 / q4f16 within 4-bit error', async () => {
    const ids = [5n, 17n, 42n, 9n, 100n, 3n];
    const empty = (half = false): Record<string, ort.Tensor> => {
      const f: Record<string, ort.Tensor> = {};
      for (let l = 0; l < 2; l++) for (const k of ['key', 'value']) f[`past_key_values.${l}.${k}`] = half ? new ort.Tensor('float16', new Uint16Array(0), [1, 2, 0, 16]) : new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 16]);
      return f;
    };
    const feeds = (tokens: bigint[], past: number, cache: Record<string, ort.Tensor>, positions: boolean): Record<string, ort.Tensor> => ({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(tokens), [1, tokens.length]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(past + tokens.length).fill(1n), [1, past + tokens.length]),
      ...(positions ? { position_ids: new ort.Tensor('int64', BigInt64Array.from(tokens.map((_, i) => BigInt(past + i))), [1, tokens.length]) } : {}),
      ...cache,
    });
    const step = async (m: GeneratedModel, positions: boolean): Promise<Float32Array[]> => {
      const s = await ort.InferenceSession.create(m.files.get('onnx/model.onnx')!);
      const a = await s.run(feeds(ids, 0, empty(), positions));
      const cache: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(a)) if (k.startsWith('present')) cache[k.replace('present', 'past_key_values')] = v;
      const b = await s.run(feeds([77n], ids.length, cache, positions));
      return [a['logits']!.data as Float32Array, b['logits']!.data as Float32Array];
    };
    const [g1, g2] = await step(genai, false);
    const [s1, s2] = await step(standard, true);
    let d = 0;
    let scale = 0;
    for (const [x, y] of [[g1!, s1!], [g2!, s2!]] as const) {
      expect(x.length).toBe(y.length);
      for (let i = 0; i < x.length; i++) {
        d = Math.max(d, Math.abs(x[i]! - y[i]!));
        scale = Math.max(scale, Math.abs(y[i]!));
      }
    }
    // Two layers of fp32 sums over ≤ 128 terms in a different order (packed MatMul, fused norms,
    // the kernel's own softmax): a few ulps of the logits' scale (~2), measured 7e-7.
    expect(d).toBeLessThan(1e-5 * Math.max(1, scale));
    expect(scale).toBeGreaterThan(0.5);
    // 4-bit weights: the model-gen README's measured LLaMA error (≈ 0.4 on logits of scale ≈ 2);
    // a wrong packing or dequantization would be of the logits' own scale.
    // fp16: the same model in half precision. Weights rounded to 2⁻¹¹ relative and every activation
    // stored in fp16 (u = 2⁻¹¹ per rounding, a few dozen roundings along a path through two layers with
    // RMSNorm and GQA) moves logits of scale ≈ 2 by ~1e-3 (measured 1.8e-3); 1e-2·scale leaves a
    // 10× margin, while a wrong weight, cache or wiring moves them by their own scale.
    {
      const s = await ort.InferenceSession.create(genai.files.get('onnx/model_fp16.onnx')!);
      const a = await s.run(feeds(ids, 0, empty(true), false));
      const cache: Record<string, ort.Tensor> = {};
      for (const [k, v] of Object.entries(a)) if (k.startsWith('present')) cache[k.replace('present', 'past_key_values')] = v;
      const b = await s.run(feeds([77n], ids.length, cache, false));
      let e = 0;
      for (const [out, ref] of [[a['logits']!, g1!], [b['logits']!, g2!]] as const) {
        expect(out.type).toBe('float16');
        const v = fromHalf(out.data as Uint16Array);
        for (let i = 0; i < v.length; i++) e = Math.max(e, Math.abs(v[i]! - ref[i]!));
      }
      console.log(JSON.stringify({ genai_fp16_vs_fp32_max_abs_diff: e, logits_scale: scale }));
      expect(e).toBeLessThan(1e-2 * scale);
    }
    for (const [file, half] of [['onnx/model_q4.onnx', false], ['onnx/model_q4f16.onnx', true]] as const) {
      const s = await ort.InferenceSession.create(genai.files.get(file)!);
      const out = (await s.run(feeds(ids, 0, empty(half), false)))['logits']!;
      const v = half ? fromHalf(out.data as Uint16Array) : (out.data as Float32Array);
      let e = 0;
      for (let i = 0; i < v.length; i++) e = Math.max(e, Math.abs(v[i]! - g1![i]!));
      expect(e, file).toBeLessThan(0.3 * scale);
    }
  });

  test('transformers.js: generate() with the KV cache gives the optimum layout\'s greedy tokens (fp32, fp16)', async () => {
    const tf = await import('@huggingface/transformers');
    const saved = { allowRemoteModels: tf.env.allowRemoteModels, localModelPath: tf.env.localModelPath };
    tf.env.allowRemoteModels = false;
    tf.env.localModelPath = `${root}/`;
    try {
      const tok = await tf.AutoTokenizer.from_pretrained('genai');
      const inputs = tok('the quick brown fox');
      const gen = async (id: string, dtype: 'fp32' | 'fp16'): Promise<number[]> => {
        const m = await tf.AutoModelForCausalLM.from_pretrained(id, { dtype });
        const out = (await m.generate({ ...inputs, max_new_tokens: 10, do_sample: false })) as { tolist: () => bigint[][] };
        await m.dispose();
        return out.tolist()[0]!.map(Number);
      };
      const ref = await gen('standard', 'fp32');
      expect(await gen('genai', 'fp32')).toEqual(ref);
      // fp16: transformers.js loads model_fp16.onnx (fp16 past/present, fp16 logits) and decodes with
      // the cache; the same model as the standard layout's fp16 export of the same weights.
      const half = await gen('genai', 'fp16');
      expect(half.length).toBe(ref.length);
      expect(half).toEqual(await gen('standard', 'fp16'));
    } finally {
      Object.assign(tf.env, saved);
    }
  });
});
