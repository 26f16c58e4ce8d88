import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
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
    ['roberta', 'onnx/model.onnx', undefined],
    ['roberta', 'onnx/model_quantized.onnx', undefined],
    ['llama', 'onnx/model.onnx', 'feature-extraction'],
    ['llama', 'onnx/model_quantized.onnx', 'feature-extraction'],
    ['vit', 'onnx/model.onnx', undefined],
    ['vit', 'onnx/model_quantized.onnx', undefined],
  ] as const) {
    test(`${arch} ${task ?? 'default task'} ${file}: a branch per target linear, before its bias Add (or in the residual of a SkipLayerNorm chain); ρ = 0 gives the exact base output`, async () => {
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
      // Graph structure: the branch Add writes the linear's original output, which the bias Add reads;
      // except where bias Add → residual Add → LayerNormalization follows (onnxruntime's
      // SkipLayerNormalization chain), where it writes the residual operand that Add reads instead.
      const g = onnx.ModelProto.decode(r.bytes).graph!;
      const nodes = g.node!;
      const readers = (t: string): typeof nodes => nodes.filter((n) => (n.input ?? []).includes(t));
      let skipSites = 0;
      for (const l of expected) {
        const add = nodes.findIndex((n) => n.name === `/tensorpeft/${l.peftPath}/Add`);
        expect(add).toBeGreaterThan(0);
        const bias = l.biasNode ? nodes.findIndex((n) => n.name === l.biasNode) : -1;
        const res = bias >= 0 ? readers(nodes[bias]!.output![0]!) : [];
        const skip = res.length === 1 && res[0]!.opType === 'Add' && readers(res[0]!.output![0]!).map((n) => n.opType).join() === 'LayerNormalization';
        if (skip) {
          skipSites++;
          expect(nodes[add]!.output).toEqual([`/tensorpeft/${l.peftPath}/residual`]);
          expect(res[0]!.input).toContain(nodes[add]!.output![0]);
          expect(nodes.indexOf(res[0]!)).toBeGreaterThan(add);
          // x·W → bias Add untouched, as in the base.
          expect(nodes[bias]!.input).toContain(l.output);
          expect(nodes.some((n) => (n.output ?? []).includes(l.output) && !n.name!.startsWith('/tensorpeft/'))).toBe(true);
        } else {
          expect(nodes[add]!.output).toEqual([l.output]);
          if (bias >= 0) {
            expect(bias).toBeGreaterThan(add);
            expect(nodes[bias]!.input).toContain(l.output);
          }
        }
      }
      // Post-LN encoders end every block's attention and FFN output in that chain; pre-LN ViT only
      // its last FFN output (into the final LayerNorm); LLaMA has no biases.
      expect(skipSites).toBe({ bert: 4, distilbert: 4, roberta: 4, vit: 1, llama: 0 }[arch]);
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

  test("vit and roberta fp32: onnxruntime's default level fuses the same SkipLayerNormalizations, bias included, in the rewritten graph as in the base", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'tp-rewrite-sln-'));
    try {
      for (const arch of ['vit', 'roberta'] as const) {
        const m = makeModel({ arch, size: 'tiny', numLabels: 3 });
        const bytes = m.files.get('onnx/model.onnx')!;
        const r = rewriteModel(bytes, { targets: m.shape.modules.map((x) => x.path) });
        // SkipLayerNormalization inputs: input, skip, gamma, beta[, bias]; 5 = the bias Add folded in.
        const fused = async (b: Uint8Array, name: string): Promise<number[]> => {
          const file = path.join(dir, `${arch}-${name}.onnx`);
          await ort.InferenceSession.create(b, { optimizedModelFilePath: file });
          const g = onnx.ModelProto.decode(await readFile(file)).graph!;
          return g.node!.filter((n) => n.opType === 'SkipLayerNormalization').map((n) => (n.input ?? []).filter((x) => x !== '').length);
        };
        const base = await fused(bytes, 'base');
        expect(base.length).toBeGreaterThan(0);
        expect(base).toContain(5);
        expect(await fused(r.bytes, 'rewritten')).toEqual(base);
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

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
