import { describe, expect, test } from 'vitest';
import { makeModel } from '@tensorpeft/model-gen';
import * as ort from 'onnxruntime-node';
import onnxProto from 'onnx-proto';
import { findLinears, rewriteModel } from './rewrite.js';

const { onnx } = onnxProto;

function feedsFor(session: ort.InferenceSession, ids: number[][]): Record<string, ort.Tensor> {
  const b = ids.length;
  const t = ids[0]!.length;
  const flat = BigInt64Array.from(ids.flat().map(BigInt));
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    const name = meta.name;
    if (name === 'input_ids') feeds[name] = new ort.Tensor('int64', flat, [b, t]);
    else if (name === 'attention_mask' || name === 'token_type_ids') feeds[name] = new ort.Tensor('int64', new BigInt64Array(b * t).fill(name === 'attention_mask' ? 1n : 0n), [b, t]);
    else if (name === 'position_ids') feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: b * t }, (_, i) => BigInt(i % t)), [b, t]);
    else if (name === 'pixel_values') feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: b * 3 * 32 * 32 }, (_, i) => Math.sin(i)), [b, 3, 32, 32]);
  }
  return feeds;
}

function zeroFeeds(session: ort.InferenceSession): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const meta of session.inputMetadata) {
    if (!meta.name.startsWith('tensorpeft.')) continue;
    const shape = (meta as unknown as { shape: ReadonlyArray<number | string> }).shape.map((d) => (typeof d === 'number' ? d : 0));
    feeds[meta.name] = new ort.Tensor('float32', new Float32Array(0), shape);
  }
  return feeds;
}

describe('rewriteModel', () => {
  for (const [arch, file, task] of [
    ['bert', 'onnx/model.onnx', undefined],
    ['bert', 'onnx/model_quantized.onnx', undefined],
    ['distilbert', 'onnx/model.onnx', 'feature-extraction'],
    ['distilbert', 'onnx/model_quantized.onnx', 'sequence-classification'],
    ['roberta', 'onnx/model_quantized.onnx', undefined],
    ['llama', 'onnx/model.onnx', 'feature-extraction'],
    ['llama', 'onnx/model_quantized.onnx', 'feature-extraction'],
    ['vit', 'onnx/model_quantized.onnx', undefined],
  ] as const) {
    test(`${arch} ${task ?? 'default task'} ${file}: a branch per target linear, before its bias Add; ρ = 0 gives the exact base output`, async () => {
      const m = makeModel({ arch, size: 'tiny', ...(task ? { task } : {}), numLabels: 3 });
      const bytes = m.files.get(file)!;
      const targets = m.shape.modules.map((x) => x.path);
      const r = rewriteModel(bytes, { targets });
      expect(r.branches.map((b) => b.path).sort()).toEqual([...targets].sort());
      const expected = m.linears.filter((l) => l.kind === 'target');
      for (const b of r.branches) {
        const l = expected.find((x) => x.peftPath === b.path)!;
        expect(b.n).toBe(l.in);
        expect(b.m).toBe(l.out);
        expect(b.inputA).toBe(`tensorpeft.${b.path}.A`);
      }
      // Graph structure: the branch Add writes the linear's original output, which the bias Add reads.
      const g = onnx.ModelProto.decode(r.bytes).graph!;
      const nodes = g.node!;
      for (const l of expected) {
        const add = nodes.findIndex((n) => n.name === `/tensorpeft/${l.peftPath}/Add`);
        expect(add).toBeGreaterThan(0);
        expect(nodes[add]!.output).toEqual([l.output]);
        if (l.biasNode) {
          const bias = nodes.findIndex((n) => n.name === l.biasNode);
          expect(bias).toBeGreaterThan(add);
          expect(nodes[bias]!.input).toContain(l.output);
        }
      }
      const heads = m.linears.filter((l) => l.kind === 'head').flatMap((l) => [l.weight, ...(l.bias ? [l.bias] : [])]);
      expect(r.params.map((p) => p.name).sort()).toEqual(heads.sort());
      expect(() => rewriteModel(r.bytes, { targets })).toThrow(/already rewritten/);
      const a = await ort.InferenceSession.create(bytes);
      const b = await ort.InferenceSession.create(r.bytes);
      const ids = [[2, 5, 9, 11, 3], [2, 7, 8, 4, 3]];
      const outA = await a.run(feedsFor(a, ids));
      const outB = await b.run({ ...feedsFor(b, ids), ...zeroFeeds(b) });
      for (const k of a.outputNames) expect(Array.from(outB[k]!.data as Float32Array)).toEqual(Array.from(outA[k]!.data as Float32Array));
    });
  }

  for (const conv of ['Gemm', 'MatMul'] as const) {
    test(`gpt2 Conv1D as ${conv} (fp32 and q8): fused c_attn [32 → 96], c_proj, mlp`, () => {
      const m = makeModel({ arch: 'gpt2', size: 'tiny', gpt2Conv1d: conv });
      const targets = m.shape.modules.map((x) => x.path);
      for (const file of ['onnx/model.onnx', 'onnx/model_quantized.onnx']) {
        const r = rewriteModel(m.files.get(file)!, { targets });
        expect(r.branches.length).toBe(targets.length);
        const cattn = r.branches.find((b) => b.path === 'transformer.h.0.attn.c_attn')!;
        expect([cattn.n, cattn.m]).toEqual([32, 96]);
        const proj = r.branches.find((b) => b.path === 'transformer.h.1.mlp.c_proj')!;
        expect([proj.n, proj.m]).toEqual([128, 32]);
        // lm_head (tied, anonymous weight) is neither a target nor an overridable head.
        expect(r.params).toEqual([]);
      }
      const lin = findLinears(onnxProto.onnx.ModelProto.decode(m.files.get('onnx/model_quantized.onnx')!));
      expect(lin.some((l) => l.op === (conv === 'Gemm' ? 'Gemm' : 'MatMulInteger') && l.graphPath === 'transformer.h.0.attn.c_attn')).toBe(true);
    });
  }
});
