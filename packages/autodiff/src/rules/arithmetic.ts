/** Add, Sub, Mul, Div, Pow, Sqrt, Neg, Reciprocal, Exp, Log: elementwise with numpy broadcasting. */
import type { GradRule } from './types.js';

export const arithmeticRules: GradRule[] = [
  {
    op: 'Add',
    inputs: [0, 1],
    grad: (c) => {
      const dy = c.dy(0)!;
      const yd = c.dims(c.y[0]!);
      return [c.needs(0) ? c.unbroadcast(dy, c.x[0]!, yd) : undefined, c.needs(1) ? c.unbroadcast(dy, c.x[1]!, yd) : undefined];
    },
  },
  {
    op: 'Sub',
    inputs: [0, 1],
    grad: (c) => {
      const dy = c.dy(0)!;
      const yd = c.dims(c.y[0]!);
      return [c.needs(0) ? c.unbroadcast(dy, c.x[0]!, yd) : undefined, c.needs(1) ? c.unbroadcast(c.e.one('Neg', [dy]), c.x[1]!, yd) : undefined];
    },
  },
  {
    op: 'Mul',
    inputs: [0, 1],
    grad: (c) => {
      const dy = c.dy(0)!;
      const [a, b] = c.x as [string, string];
      const yd = c.dims(c.y[0]!);
      return [c.needs(0) ? c.unbroadcast(c.e.one('Mul', [dy, b]), a, yd) : undefined, c.needs(1) ? c.unbroadcast(c.e.one('Mul', [dy, a]), b, yd) : undefined];
    },
  },
  {
    // y = a / b: ∂a = dy / b, ∂b = −dy · a / b² = −dy · y / b.
    op: 'Div',
    inputs: [0, 1],
    grad: (c) => {
      const dy = c.dy(0)!;
      const [a, b] = c.x as [string, string];
      const yd = c.dims(c.y[0]!);
      const e = c.e;
      return [
        c.needs(0) ? c.unbroadcast(e.one('Div', [dy, b]), a, yd) : undefined,
        c.needs(1) ? c.unbroadcast(e.one('Neg', [e.one('Div', [e.one('Mul', [dy, c.y[0]!]), b])]), b, yd) : undefined,
      ];
    },
  },
  {
    // y = x^p with a constant (non-trainable) exponent: ∂x = dy · p · x^(p−1).
    op: 'Pow',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const [x, p] = c.x as [string, string];
      const pm1 = e.one('Sub', [p, e.constF32(1)]);
      const d = e.one('Mul', [c.dy(0)!, e.one('Mul', [p, e.one('Pow', [x, pm1])])]);
      return [c.unbroadcast(d, x, c.dims(c.y[0]!))];
    },
  },
  { op: 'Sqrt', inputs: [0], grad: (c) => [c.e.one('Div', [c.e.one('Mul', [c.dy(0)!, c.e.constF32(0.5)]), c.y[0]!])] },
  { op: 'Neg', inputs: [0], grad: (c) => [c.e.one('Neg', [c.dy(0)!])] },
  { op: 'Reciprocal', inputs: [0], grad: (c) => [c.e.one('Neg', [c.e.one('Mul', [c.dy(0)!, c.e.one('Mul', [c.y[0]!, c.y[0]!])])])] },
  { op: 'Exp', inputs: [0], grad: (c) => [c.e.one('Mul', [c.dy(0)!, c.y[0]!])] },
  { op: 'Log', inputs: [0], grad: (c) => [c.e.one('Div', [c.dy(0)!, c.x[0]!])] },
];
