/**
 * LayerNormalization (ONNX opset 17) with respect to X. Scale and bias are frozen base weights
 * (a path to them from a trainable input cannot exist); the decomposed forms (RMSNorm, LayerNorm
 * written out as ReduceMean/Sub/Pow/Sqrt/Div) need no rule of their own.
 */
import { A, attrFloat, attrInt } from '../onnx.js';
import type { GradRule } from './types.js';

export const normalizationRules: GradRule[] = [
  {
    // With x̂ = (x − μ)·σ⁻¹ and g = dy ⊙ scale (means over the normalized axes):
    // ∂x = σ⁻¹ ⊙ (g − mean(g) − x̂ ⊙ mean(g ⊙ x̂)).
    op: 'LayerNormalization',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const [x, scale] = c.x as [string, string];
      const r = c.rank(x);
      const a0 = attrInt(c.node, 'axis', -1);
      const axis = a0 < 0 ? a0 + r : a0;
      const axes = A.ints('axes', Array.from({ length: r - axis }, (_, i) => axis + i));
      const mean = (t: string): string => e.one('ReduceMean', [t], [axes, A.int('keepdims', 1)]);
      const xc = e.one('Sub', [x, mean(x)]);
      const v = mean(e.one('Mul', [xc, xc]));
      const inv = e.one('Reciprocal', [e.one('Sqrt', [e.one('Add', [v, e.constF32(attrFloat(c.node, 'epsilon', 1e-5))])])]);
      const xhat = e.one('Mul', [xc, inv]);
      const g = e.one('Mul', [c.dy(0)!, scale]);
      const t = e.one('Sub', [e.one('Sub', [g, mean(g)]), e.one('Mul', [xhat, mean(e.one('Mul', [g, xhat]))])]);
      return [e.one('Mul', [inv, t])];
    },
  },
];
