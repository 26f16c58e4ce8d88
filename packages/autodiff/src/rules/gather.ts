/** Gather, GatherElements and Where: gradients scatter (with addition) or select dy. */
import { A, attrInt } from '../onnx.js';
import type { GradRule } from './types.js';

export const gatherRules: GradRule[] = [
  {
    // y = data.take(indices, axis). ∂data: zeros of data's shape with dy added at the gathered
    // positions (ScatterND with reduction add, so repeated indices accumulate). ScatterND indexes the
    // leading axis, so data is viewed with `axis` first and dy with the index dims first.
    op: 'Gather',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const [data, idx] = c.x as [string, string];
      const r = c.rank(data);
      const ri = c.rank(idx);
      const a0 = attrInt(c.node, 'axis', 0);
      const ax = a0 < 0 ? a0 + r : a0;
      const range = (from: number, n: number): number[] => Array.from({ length: n }, (_, i) => from + i);
      const dyPerm = [...range(ax, ri), ...range(0, ax), ...range(ax + ri, r - ax - 1)];
      const dataPerm = [ax, ...range(0, ax), ...range(ax + 1, r - ax - 1)];
      const dyT = ax === 0 ? c.dy(0)! : e.one('Transpose', [c.dy(0)!], [A.ints('perm', dyPerm)]);
      const shapeT = e.one('Gather', [e.one('Shape', [data]), e.constI64(dataPerm)], [A.int('axis', 0)]);
      const zeros = e.one('ConstantOfShape', [shapeT], [A.tensor('value', { dataType: 1, dims: [1], floatData: [0] })]);
      // Negative indices count from the end, as in Gather.
      const n = e.one('Gather', [shapeT, e.constI64([0], [])], [A.int('axis', 0)]);
      const i64 = e.one('Cast', [idx], [A.int('to', 7)]);
      const pos = e.one('Where', [e.one('Less', [i64, e.constI64([0], [])]), e.one('Add', [i64, n]), i64]);
      const sc = e.one('ScatterND', [zeros, e.one('Unsqueeze', [pos, e.constI64([-1])]), dyT], [A.str('reduction', 'add')]);
      if (ax === 0) return [sc];
      const inv = new Array<number>(r);
      dataPerm.forEach((p, i) => (inv[p] = i));
      return [e.one('Transpose', [sc], [A.ints('perm', inv)])];
    },
  },
  {
    op: 'GatherElements',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const [data, idx] = c.x as [string, string];
      const zeros = e.one('ConstantOfShape', [e.one('Shape', [data])], [A.tensor('value', { dataType: 1, dims: [1], floatData: [0] })]);
      const axis = attrInt(c.node, 'axis', 0);
      return [e.one('ScatterElements', [zeros, idx, c.dy(0)!], [A.int('axis', axis), A.str('reduction', 'add')])];
    },
  },
  {
    op: 'Where',
    inputs: [1, 2],
    grad: (c) => {
      const e = c.e;
      const [cond, a, b] = c.x as [string, string, string];
      const dy = c.dy(0)!;
      const zero = e.constF32(0);
      const yd = c.dims(c.y[0]!);
      return [
        undefined,
        c.needs(1) ? c.unbroadcast(e.one('Where', [cond, dy, zero]), a, yd) : undefined,
        c.needs(2) ? c.unbroadcast(e.one('Where', [cond, zero, dy]), b, yd) : undefined,
      ];
    },
  },
];
