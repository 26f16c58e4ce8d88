/**
 * mergeModel on shared tensors: a weight read by two linears (directly and through an Identity
 * alias) is split off before merging, so only the named module changes; a modules_to_save tensor
 * that other names alias keeps their old values.
 */
import { describe, expect, test } from 'vitest';
import onnxProto from 'onnx-proto';
import { encodeModel, type Graph, type TensorData } from '@tensorpeft/model-gen';

const f32 = (dims: number[], v: number[]): TensorData => ({ dtype: 'float32', dims, data: Float32Array.from(v) });
import { mergeModel } from './merge.js';

const { onnx } = onnxProto;

// x [1, 2] → a: MatMul(x, W) and b: MatMul(x, Identity(W)); c = Add(x, bias) and d = Add(x, Identity(bias)).
function shared(): Uint8Array {
  const W = f32([2, 2], [1, 2, 3, 4]);
  const g: Graph = {
    name: 'g',
    opset: 17,
    initializers: new Map([
      ['W', W],
      ['bias', f32([2], [0.5, -0.5])],
    ]),
    inputs: [{ name: 'x', dtype: 'float32', dims: [1, 2] }],
    outputs: ['ya', 'yb', 'yc', 'yd'].map((name) => ({ name, dtype: 'float32' as const, dims: [1, 2] })),
    nodes: [
      { op: 'Identity', name: '/Identity', inputs: ['W'], outputs: ['b.weight_alias'], attrs: {} },
      { op: 'Identity', name: '/Identity_1', inputs: ['bias'], outputs: ['d.bias'], attrs: {} },
      { op: 'MatMul', name: '/a/MatMul', inputs: ['x', 'W'], outputs: ['ya'], attrs: {} },
      { op: 'MatMul', name: '/b/MatMul', inputs: ['x', 'b.weight_alias'], outputs: ['yb'], attrs: {} },
      { op: 'Add', name: '/c/Add', inputs: ['x', 'bias'], outputs: ['yc'], attrs: {} },
      { op: 'Add', name: '/d/Add', inputs: ['x', 'd.bias'], outputs: ['yd'], attrs: {} },
    ],
  };
  return encodeModel(g);
}

/** The values node `name` reads at input `i`, following Identity nodes to the initializer. */
function valuesRead(bytes: Uint8Array, name: string, i: number): number[] {
  const g = onnx.ModelProto.decode(bytes).graph!;
  let t = g.node!.find((n) => n.name === name)!.input![i]!;
  for (;;) {
    const init = g.initializer!.find((x) => x.name === t);
    if (init) return Array.from(new Float32Array(Uint8Array.from(init.rawData!).buffer));
    t = g.node!.find((n) => n.output!.includes(t))!.input![0]!;
  }
}

describe('mergeModel with shared tensors', () => {
  test('a weight shared by two linears: merging one leaves the other as it was', () => {
    // ΔW = s · B A^T with n = m = 2, ρ = 1: A = [1, 0], B = [0, 1], s = 10 → ΔW[out 1, in 0] = 10, i.e. W[in 0, out 1] += 10.
    const out = mergeModel(shared(), [{ path: 'a', n: 2, m: 2, rho: 1, s: 10, A: Float32Array.of(1, 0), B: Float32Array.of(0, 1) }]);
    expect(valuesRead(out, '/a/MatMul', 1)).toEqual([1, 12, 3, 4]);
    expect(valuesRead(out, '/b/MatMul', 1)).toEqual([1, 2, 3, 4]);
  });

  test('modules_to_save on an aliased tensor replaces it under its own name; on the kept tensor, the alias keeps the old values', () => {
    const byAlias = mergeModel(shared(), [], new Map([['base_model.model.d.bias', { shape: [2], data: Float32Array.of(7, 8) }]]));
    expect(valuesRead(byAlias, '/d/Add', 1)).toEqual([7, 8]);
    expect(valuesRead(byAlias, '/c/Add', 1)).toEqual([0.5, -0.5]);
    const byKept = mergeModel(shared(), [], new Map([['base_model.model.bias', { shape: [2], data: Float32Array.of(7, 8) }]]));
    expect(valuesRead(byKept, '/c/Add', 1)).toEqual([7, 8]);
    expect(valuesRead(byKept, '/d/Add', 1)).toEqual([0.5, -0.5]);
  });
});
