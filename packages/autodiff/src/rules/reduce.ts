/** ReduceMean and ReduceSum (axes as attribute before opset 18 for ReduceMean, as input from opset 13 for ReduceSum). */
import { A, attrInt, attrInts } from '../onnx.js';
import type { GradContext } from './types.js';
import type { GradRule } from './types.js';

function reducedAxes(c: GradContext): number[] {
  const r = c.rank(c.x[0]!);
  let axes = attrInts(c.node, 'axes');
  if (axes === undefined && c.x[1]) axes = c.constInts(c.x[1]);
  if (axes === undefined || axes.length === 0) {
    if (attrInt(c.node, 'noop_with_empty_axes', 0) === 1) return [];
    return Array.from({ length: r }, (_, i) => i);
  }
  return axes.map((a) => (a < 0 ? a + r : a)).sort((p, q) => p - q);
}

/** dy broadcast back over the reduced axes to x's shape. */
function spread(c: GradContext): string {
  const e = c.e;
  const x = c.x[0]!;
  const axes = reducedAxes(c);
  let g = c.dy(0)!;
  if (attrInt(c.node, 'keepdims', 1) === 0 && axes.length > 0) g = e.one('Unsqueeze', [g, e.constI64(axes)]);
  return e.one('Expand', [g, e.one('Shape', [x])]);
}

export const reduceRules: GradRule[] = [
  { op: 'ReduceSum', inputs: [0], grad: (c) => [spread(c)] },
  {
    // ∂x = dy / (number of reduced elements) = dy · size(y) / size(x), sizes read at run time.
    op: 'ReduceMean',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const f = (t: string): string => e.one('Cast', [e.one('Size', [t])], [A.int('to', 1)]);
      return [e.one('Mul', [spread(c), e.one('Div', [f(c.y[0]!), f(c.x[0]!)])])];
    },
  },
];
