/**
 * The transformers.js dtype files (`dtypes` option): the patterns and names of the quantizers they
 * imitate, and weights that decode back to the fp32 ones within each format's step. The decoders
 * here are written from the contrib-op specs (MatMulNBits, MatMulBnb4), independently of the
 * encoders in src/onnx/.
 */
import { describe, expect, it } from 'vitest';
import { f16BitsToF32Bits } from '@tensorpeft/core';
import { decodeModel, makeModel, NF4 } from './index.js';

type Onnx = ReturnType<typeof decodeModel>;
const m = makeModel({ arch: 'llama', size: 'tiny', seed: 2, dtypes: ['fp16', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] });
const file = (dt: string): Onnx => decodeModel(m.files.get(`onnx/model_${dt}.onnx`)!);
const init = (g: Onnx, name: string) => g.graph!.initializer!.find((t) => t.name === name)!;
const bytes = (t: ReturnType<typeof init>): Uint8Array => t.rawData!;
const f32 = (t: ReturnType<typeof init>): Float32Array => new Float32Array(Uint8Array.from(bytes(t)).buffer);
const half = (b: Uint8Array): Float32Array => {
  const h = new Uint16Array(Uint8Array.from(b).buffer);
  const out = new Float32Array(h.length);
  const u = new Uint32Array(out.buffer);
  h.forEach((v, i) => (u[i] = f16BitsToF32Bits(v)));
  return out;
};

const q = m.linears.find((l) => l.peftPath === 'model.layers.0.self_attn.q_proj')!;
// The fp32 weight [in, out] = [K, N] as the MatMul reads it.
const W = f32(init(decodeModel(m.files.get('onnx/model.onnx')!), q.weight));
const [K, N] = [q.in, q.out];

describe('dtype files', () => {
  it('q4: MatMulNBits <node>_Q4 on <W>_Q4 [N, K/32, 16] and <W>_scales, symmetric (no zero points); decodes within half a step (one where the −8 … 7 range clamps)', () => {
    const g = file('q4');
    const nd = g.graph!.node!.find((n) => n.name === `${q.node}_Q4`)!;
    expect([nd.opType, nd.domain, nd.input, nd.output]).toEqual(['MatMulNBits', 'com.microsoft', [q.input, `${q.weight}_Q4`, `${q.weight}_scales`], [q.output]]);
    const attrs = Object.fromEntries(nd.attribute!.map((a) => [a.name, Number(a.i)]));
    expect(attrs).toEqual({ K, N, bits: 4, block_size: 32 });
    const B = init(g, `${q.weight}_Q4`);
    expect(B.dims!.map(Number)).toEqual([N, K / 32, 16]);
    const scales = f32(init(g, `${q.weight}_scales`));
    const packed = bytes(B);
    let worst = 0;
    for (let n = 0; n < N; n++)
      for (let k = 0; k < K; k++) {
        const b = Math.floor(k / 32);
        const byte = packed[(n * (K / 32) + b) * 16 + Math.floor((k % 32) / 2)]!;
        const code = k % 2 === 0 ? byte & 15 : byte >> 4;
        const s = scales[n * (K / 32) + b]!;
        const err = Math.abs((code - 8) * s - W[k * N + n]!) / Math.abs(s);
        // Codes span −8 … 7 steps with the block's extreme at −8: a value beyond 7.5 steps on the
        // other side clamps to 15 (at most one step off, since |v| ≤ 8 steps).
        if (W[k * N + n]! / s > 7.5) expect(code).toBe(15);
        else worst = Math.max(worst, err);
        expect(err).toBeLessThanOrEqual(1 + 1e-6);
      }
    expect(worst).toBeLessThanOrEqual(0.5 + 1e-6);
    expect(g.opsetImport!.some((o) => o.domain === 'com.microsoft')).toBe(true);
  });

  it('q4f16: the q4 graph converted to fp16 — fp16 scales, float32 I/O through Cast nodes named as onnxconverter-common names them', () => {
    const g = file('q4f16');
    expect(init(g, `${q.weight}_scales`).dataType).toBe(10);
    const names = new Set(g.graph!.node!.map((n) => n.name));
    expect(names.has('past_key_values.0.key_fp16')).toBe(true);
    expect(names.has('logits_fp16_input_cast0')).toBe(true);
    expect(g.graph!.input!.find((v) => v.name === 'past_key_values.0.key')!.type!.tensorType!.elemType).toBe(1);
    expect(g.graph!.output!.find((v) => v.name === 'logits')!.type!.tensorType!.elemType).toBe(1);
  });

  it('fp16: float initializers and constants in half precision, clamped to ±1e4 (the −finfo.max mask fill becomes −1e4); Cast(to=float) blocked and followed by a cast back', () => {
    const g = file('fp16');
    const w = half(bytes(init(g, q.weight)));
    for (let i = 0; i < W.length; i++) expect(Math.abs(w[i]! - W[i]!)).toBeLessThanOrEqual(Math.abs(W[i]!) * 2 ** -11 + 2 ** -25);
    const fills = g.graph!.node!.filter((n) => n.opType === 'Constant' && n.attribute![0]!.t!.dataType === 10).map((n) => half(n.attribute![0]!.t!.rawData!)[0]);
    expect(fills).toContain(-10000);
    expect(fills.every((v) => Math.abs(v!) <= 10000)).toBe(true);
    const cast = g.graph!.node!.find((n) => n.opType === 'Cast' && n.name!.endsWith('_output_cast0'))!;
    expect(Number(cast.attribute![0]!.i)).toBe(10);
  });

  it('int8 / uint8: MatMulInteger with one scale and zero point per tensor, full range (transformers.js script defaults); int8 symmetric, uint8 asymmetric', () => {
    for (const [dt, type] of [
      ['int8', 3],
      ['uint8', 2],
    ] as const) {
      const g = file(dt);
      const Wq = init(g, `${q.weight}_quantized`);
      expect(Wq.dataType, dt).toBe(type);
      const s = init(g, `${q.weight}_scale`);
      const zp = init(g, `${q.weight}_zero_point`);
      expect([s.dims!.length, zp.dims!.length]).toEqual([0, 0]);
      const scale = f32(s)[0]!;
      const z = dt === 'int8' ? new Int8Array(Uint8Array.from(bytes(zp)).buffer)[0]! : bytes(zp)[0]!;
      const codes = dt === 'int8' ? new Int8Array(Uint8Array.from(bytes(Wq)).buffer) : Uint8Array.from(bytes(Wq));
      if (dt === 'int8') expect(z).toBe(0);
      let worst = 0;
      for (let i = 0; i < W.length; i++) worst = Math.max(worst, Math.abs((codes[i]! - z) * scale - W[i]!));
      expect(worst).toBeLessThanOrEqual(scale * 0.5 + 1e-7);
      expect(g.graph!.node!.some((n) => n.opType === 'MatMulInteger' && n.name === `${q.node}_quant`)).toBe(true);
    }
  });

  it('bnb4: MatMulBnb4 <node>_Bnb4 (NF4, block 64) on Wᵀ flattened; decodes to the nearest NF4 level of each value / absmax', () => {
    const g = file('bnb4');
    const nd = g.graph!.node!.find((n) => n.name === `${q.node}_Bnb4`)!;
    expect([nd.opType, nd.domain, nd.input]).toEqual(['MatMulBnb4', 'com.microsoft', [q.input, `${q.weight}_Bnb4`, `${q.weight}_absmax`]]);
    expect(Object.fromEntries(nd.attribute!.map((a) => [a.name, Number(a.i)]))).toEqual({ K, N, block_size: 64, quant_type: 1 });
    const packed = bytes(init(g, `${q.weight}_Bnb4`));
    const absmax = f32(init(g, `${q.weight}_absmax`));
    expect(packed.length).toBe((K * N) / 2);
    for (let i = 0; i < K * N; i++) {
      const code = i % 2 === 0 ? packed[i >> 1]! >> 4 : packed[i >> 1]! & 15;
      const v = W[(i % K) * N + Math.floor(i / K)]! / absmax[Math.floor(i / 64)]!;
      const gap = Math.abs(NF4[code]! - v);
      for (const level of NF4) expect(gap).toBeLessThanOrEqual(Math.abs(level - v) + 1e-6);
    }
  });
});

describe('merged-decoder layout', () => {
  it('one If (optimum::if) on use_cache_branch; both subgraphs hold the decoder and read the main graph weights; refused for non-decoders', () => {
    const md = makeModel({ arch: 'gpt2', size: 'tiny', seed: 2, layout: 'merged-decoder', quantized: false });
    const g = decodeModel(md.files.get('onnx/model.onnx')!).graph!;
    expect(g.node!.map((n) => [n.opType, n.name])).toEqual([['If', 'optimum::if']]);
    const cond = g.input!.find((v) => v.name === 'use_cache_branch')!;
    expect(cond.type!.tensorType!.elemType).toBe(9);
    expect(g.node![0]!.output).toEqual(g.output!.map((v) => v.name));
    const flat = decodeModel(makeModel({ arch: 'gpt2', size: 'tiny', seed: 2, quantized: false }).files.get('onnx/model.onnx')!).graph!;
    // The weights stay on the main graph, byte for byte the flat export's.
    expect(g.initializer!.map((t) => t.name)).toEqual(flat.initializer!.map((t) => t.name));
    for (const a of g.node![0]!.attribute!) {
      expect(['then_branch', 'else_branch']).toContain(a.name);
      expect(a.g!.initializer ?? []).toEqual([]);
      expect(a.g!.node!.length).toBe(flat.node!.length);
      expect(a.g!.output!.map((v) => v.name)).toEqual(flat.output!.map((v) => `${v.name}${a.name === 'then_branch' ? '_with_past' : '_without_past'}`));
    }
    expect(md.inputs.map((v) => v.name)).toContain('use_cache_branch');
    expect(() => makeModel({ arch: 'bert', layout: 'merged-decoder' })).toThrow(/merged-decoder layout needs a decoder/);
  });
});
