/**
 * The rewrite indexes each tensor's consumers once, in time linear in the graph: a hostile (or
 * just unusual) model where one tensor feeds 100,000 nodes must not make it quadratic (issue 15,
 * D14: 20,000 consumers took 8.5 s, so 100,000 took minutes).
 */
import { describe, expect, test } from 'vitest';
import { makeModel } from '@tensorpeft/model-gen';
import onnxProto from 'onnx-proto';
import { decodeModel, rewriteModel } from './rewrite.js';

const { onnx } = onnxProto;

describe('rewrite on a tensor with many consumers', () => {
  test('D14: 100,000 extra consumers of the first linear\'s input leave the branches unchanged', () => {
    const m = makeModel({ arch: 'bert', size: 'tiny' });
    const bytes = m.files.get('onnx/model.onnx')!;
    const targets = m.shape.modules.map((x) => x.path);
    const plain = rewriteModel(bytes, { targets });

    const model = decodeModel(bytes);
    const g = model.graph!;
    const firstLinear = g.node!.find((n) => n.opType === 'MatMul')!;
    const shared = firstLinear.input![0]!;
    const extra = Array.from({ length: 100_000 }, (_, i) => onnx.NodeProto.create({ opType: 'Identity', name: `fanout_${i}`, input: [shared], output: [`fanout_out_${i}`] }));
    g.node = [...g.node!, ...extra];

    const wide = rewriteModel(model, { targets });
    expect(wide.branches.map((b) => [b.path, b.n, b.m])).toEqual(plain.branches.map((b) => [b.path, b.n, b.m]));
    expect(wide.params.length).toBe(plain.params.length);
  });
});
