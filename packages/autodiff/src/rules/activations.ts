/** Erf, Tanh, Sigmoid, Relu: elementwise activations, their derivatives from x or y. */
import type { GradRule } from './types.js';

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

export const activationRules: GradRule[] = [
  {
    // erf′(x) = 2/√π · exp(−x²)
    op: 'Erf',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const x = c.x[0]!;
      const g = e.one('Exp', [e.one('Neg', [e.one('Mul', [x, x])])]);
      return [e.one('Mul', [c.dy(0)!, e.one('Mul', [g, e.constF32(TWO_OVER_SQRT_PI)])])];
    },
  },
  {
    // tanh′ = 1 − y²
    op: 'Tanh',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const y = c.y[0]!;
      return [e.one('Mul', [c.dy(0)!, e.one('Sub', [e.constF32(1), e.one('Mul', [y, y])])])];
    },
  },
  {
    // σ′ = y · (1 − y)
    op: 'Sigmoid',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const y = c.y[0]!;
      return [e.one('Mul', [c.dy(0)!, e.one('Mul', [y, e.one('Sub', [e.constF32(1), y])])])];
    },
  },
  {
    // The subgradient 0 at x = 0, as torch uses.
    op: 'Relu',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      return [e.one('Where', [e.one('Greater', [c.x[0]!, e.constF32(0)]), c.dy(0)!, e.constF32(0)])];
    },
  },
];
