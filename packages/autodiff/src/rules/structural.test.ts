import { describe, expect, it } from 'vitest';
import { A, type NodeProto } from '../onnx.js';
import { checkGradient, mismatch, type CheckInput } from '../test-utils/fd-check.js';

const node = (op: string, inputs: string[], attrs: NodeProto['attribute'] = [], outputs = ['y']): NodeProto => ({ name: `t/${op}`, opType: op, input: inputs, output: outputs, attribute: attrs });
const c64 = (data: number[], dims = [data.length]): CheckInput => ({ dims, data, dtype: 'int64', constant: true });

async function expectOk(nodes: NodeProto[], inputs: Record<string, CheckInput>, seed = 1, y = 'y'): Promise<void> {
  const r = await checkGradient(nodes, inputs, y, { seed });
  expect(mismatch(r)).toEqual([]);
  expect(r.pairs.some((p) => Math.abs(p.fd) > 1e-3)).toBe(true);
}

describe('softmax, normalization and reductions match central differences', () => {
  it('Softmax on the last and a middle axis', async () => {
    await expectOk([node('Softmax', ['x'], [A.int('axis', -1)])], { x: { dims: [2, 3, 4], trainable: true } });
    await expectOk([node('Softmax', ['x'], [A.int('axis', 1)])], { x: { dims: [2, 3, 4], trainable: true } }, 2);
  });
  it('LogSoftmax', async () => {
    await expectOk([node('LogSoftmax', ['x'], [A.int('axis', -1)])], { x: { dims: [3, 5], trainable: true } });
  });
  it('LayerNormalization over the last axis, with scale and bias', async () => {
    await expectOk([node('LayerNormalization', ['x', 's', 'b'], [A.int('axis', -1), A.float('epsilon', 1e-5)])], {
      x: { dims: [2, 3, 6], trainable: true },
      s: { dims: [6], constant: true },
      b: { dims: [6], constant: true },
    });
  });
  it('ReduceMean (axes attribute, keepdims 1 and 0) and ReduceSum (axes input, all axes)', async () => {
    await expectOk([node('ReduceMean', ['x'], [A.ints('axes', [-1]), A.int('keepdims', 1)])], { x: { dims: [2, 3, 4], trainable: true } });
    await expectOk([node('ReduceMean', ['x'], [A.ints('axes', [0, 2]), A.int('keepdims', 0)])], { x: { dims: [2, 3, 4], trainable: true } }, 2);
    await expectOk([node('ReduceSum', ['x', 'ax'], [A.int('keepdims', 0)])], { x: { dims: [2, 3, 4], trainable: true }, ax: c64([1]) }, 3);
    await expectOk([node('ReduceSum', ['x'], [A.int('keepdims', 1)])], { x: { dims: [2, 3], trainable: true } }, 4);
  });
});

describe('shape and data-movement rules match central differences', () => {
  it('Reshape, Flatten, Squeeze, Unsqueeze, Identity, Cast', async () => {
    await expectOk([node('Reshape', ['x', 's'])], { x: { dims: [2, 3, 4], trainable: true }, s: c64([0, -1]) });
    await expectOk([node('Flatten', ['x'], [A.int('axis', 2)])], { x: { dims: [2, 3, 4], trainable: true } });
    await expectOk([node('Squeeze', ['x', 'a'])], { x: { dims: [2, 1, 4], trainable: true }, a: c64([1]) });
    await expectOk([node('Unsqueeze', ['x', 'a'])], { x: { dims: [2, 4], trainable: true }, a: c64([0, 2]) });
    await expectOk([node('Identity', ['x'])], { x: { dims: [5], trainable: true } });
    await expectOk([node('Cast', ['x'], [A.int('to', 1)])], { x: { dims: [5], trainable: true } });
  });
  it('Transpose with a permutation and with the default (reversed) one', async () => {
    await expectOk([node('Transpose', ['x'], [A.ints('perm', [0, 2, 3, 1])])], { x: { dims: [2, 3, 4, 2], trainable: true } });
    await expectOk([node('Transpose', ['x'])], { x: { dims: [2, 3, 4], trainable: true } });
  });
  it('Expand (repeat_kv style, and rank-growing)', async () => {
    await expectOk([node('Expand', ['x', 's'])], { x: { dims: [2, 1, 3], trainable: true }, s: c64([2, 4, 3]) });
    await expectOk([node('Expand', ['x', 's'])], { x: { dims: [3], trainable: true }, s: c64([2, 3]) });
  });
  it('Concat (all inputs, one trainable) and Split (an output unused)', async () => {
    await expectOk([node('Concat', ['a', 'b'], [A.int('axis', -1)])], { a: { dims: [2, 3], trainable: true }, b: { dims: [2, 2], trainable: true } });
    await expectOk([node('Concat', ['a', 'b'], [A.int('axis', 0)])], { a: { dims: [2, 3], trainable: true }, b: { dims: [1, 3] } }, 2);
    await expectOk([node('Split', ['x', 's'], [A.int('axis', 2)], ['y', 'z', 'w'])], { x: { dims: [2, 2, 6], trainable: true }, s: c64([2, 1, 3]) }, 3, 'y');
  });
  it('Slice: positive, negative and out-of-range starts/ends, on chosen axes', async () => {
    await expectOk([node('Slice', ['x', 's', 'e', 'a'])], { x: { dims: [2, 8], trainable: true }, s: c64([0]), e: c64([4]), a: c64([1]) });
    await expectOk([node('Slice', ['x', 's', 'e', 'a'])], { x: { dims: [2, 3, 8], trainable: true }, s: c64([4]), e: c64([Number.MAX_SAFE_INTEGER]), a: c64([-1]) }, 2);
    await expectOk([node('Slice', ['x', 's', 'e'])], { x: { dims: [5, 4], trainable: true }, s: c64([-3, 1]), e: c64([-1, 3]) }, 3);
  });
});

describe('gather and select rules match central differences', () => {
  it('Gather: first token (scalar index on axis 1), repeated indices on axis 0, negative index', async () => {
    await expectOk([node('Gather', ['x', 'i'], [A.int('axis', 1)])], { x: { dims: [2, 3, 4], trainable: true }, i: c64([0], []) });
    await expectOk([node('Gather', ['x', 'i'], [A.int('axis', 0)])], { x: { dims: [4, 3], trainable: true }, i: c64([1, 3, 1, 0], [2, 2]) }, 2);
    await expectOk([node('Gather', ['x', 'i'], [A.int('axis', 2)])], { x: { dims: [2, 3, 4], trainable: true }, i: c64([-1, 0]) }, 3);
  });
  it('GatherElements (the cross-entropy pick)', async () => {
    await expectOk([node('GatherElements', ['x', 'i'], [A.int('axis', -1)])], { x: { dims: [3, 5], trainable: true }, i: c64([4, 0, 2], [3, 1]) });
  });
  it('Where: both branches trainable, one broadcast', async () => {
    await expectOk([node('Where', ['c', 'a', 'b'])], {
      c: { dims: [2, 3], dtype: 'bool', data: [1, 0, 1, 1, 0, 0], constant: false },
      a: { dims: [2, 3], trainable: true },
      b: { dims: [3], trainable: true },
    });
  });
});

describe('linear rules match central differences', () => {
  it('MatMul: 3-D × 2-D (a linear and an adapter factor), batched 4-D × 4-D (attention), broadcast batch', async () => {
    await expectOk([node('MatMul', ['a', 'b'])], { a: { dims: [2, 3, 4], trainable: true }, b: { dims: [4, 5], trainable: true } });
    await expectOk([node('MatMul', ['a', 'b'])], { a: { dims: [2, 2, 3, 4], trainable: true }, b: { dims: [2, 2, 4, 3], trainable: true } }, 2);
    await expectOk([node('MatMul', ['a', 'b'])], { a: { dims: [2, 3, 4], trainable: true }, b: { dims: [1, 4, 2], trainable: true } }, 3);
  });
  it('Gemm with every transA/transB, alpha, beta and a broadcast C', async () => {
    let seed = 10;
    for (const tA of [0, 1]) {
      for (const tB of [0, 1]) {
        const a = tA ? [4, 3] : [3, 4];
        const b = tB ? [5, 4] : [4, 5];
        await expectOk([node('Gemm', ['a', 'b', 'c'], [A.int('transA', tA), A.int('transB', tB), A.float('alpha', 0.7), A.float('beta', 1.3)])], {
          a: { dims: a, trainable: true },
          b: { dims: b, trainable: true },
          c: { dims: [5], trainable: true },
        }, seed++);
      }
    }
  });
});

describe('ops without a rule', () => {
  it('an op on the trainable path without a rule is a NoGradientRuleError naming the node', async () => {
    const nodes = [node('Cos', ['x'], [], ['c']), { name: 't/Mul', opType: 'Mul', input: ['c', 'x'], output: ['y'] }];
    await expect(checkGradient(nodes, { x: { dims: [3], trainable: true } }, 'y', { seed: 1 })).rejects.toMatchObject({ name: 'NoGradientRuleError', code: 'NO_GRADIENT_RULE', message: expect.stringContaining('t/Cos') });
  });
  it('a trainable path into an input the rule does not differentiate (Pow exponent)', async () => {
    await expect(checkGradient([node('Pow', ['x', 'p'])], { x: { dims: [3], data: [1, 2, 3] }, p: { dims: [3], trainable: true } }, 'y', { seed: 1 })).rejects.toThrow(/Pow has no gradient for input 1/);
  });
  it('ops off the trainable path need no rule (Cos of a constant-only branch is pruned)', async () => {
    const nodes = [node('Cos', ['k'], [], ['c']), { name: 't/Mul', opType: 'Mul', input: ['c', 'x'], output: ['y'] }];
    const r = await checkGradient(nodes, { x: { dims: [3], trainable: true }, k: { dims: [3] } }, 'y', { seed: 1 });
    expect(mismatch(r)).toEqual([]);
  });
});
