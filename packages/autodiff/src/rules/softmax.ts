/** Softmax and LogSoftmax along one axis (opset ≥ 13 semantics). */
import { A, attrInt } from '../onnx.js';
import type { GradContext, GradRule } from './types.js';

function axisOf(c: GradContext): number {
  const r = c.rank(c.x[0]!);
  const a = attrInt(c.node, 'axis', -1);
  return a < 0 ? a + r : a;
}

export const softmaxRules: GradRule[] = [
  {
    // ∂x = y ⊙ (dy − Σ_axis dy ⊙ y)
    op: 'Softmax',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const y = c.y[0]!;
      const dy = c.dy(0)!;
      const s = e.one('ReduceSum', [e.one('Mul', [dy, y]), e.constI64([axisOf(c)])], [A.int('keepdims', 1)]);
      return [e.one('Mul', [y, e.one('Sub', [dy, s])])];
    },
  },
  {
    // ∂x = dy − exp(y) ⊙ Σ_axis dy
    op: 'LogSoftmax',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const dy = c.dy(0)!;
      const s = e.one('ReduceSum', [dy, e.constI64([axisOf(c)])], [A.int('keepdims', 1)]);
      return [e.one('Sub', [dy, e.one('Mul', [e.one('Exp', [c.y[0]!]), s])])];
    },
  },
];
