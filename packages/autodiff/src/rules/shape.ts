/**
 * Ops that move elements without changing them: Reshape, Flatten, Squeeze, Unsqueeze, Identity,
 * Cast (float → float), Transpose, Expand. Their gradients reshape, permute back, or sum.
 */
import { A, attrInt, attrInts, DT } from '../onnx.js';
import type { GradContext, GradRule } from './types.js';

/** ∂x = dy reshaped to x's shape (the op only changed the shape). */
const reshapeBack = (c: GradContext): string[] => [c.e.one('Reshape', [c.dy(0)!, c.e.one('Shape', [c.x[0]!])])];

export const shapeRules: GradRule[] = [
  { op: 'Reshape', inputs: [0], grad: reshapeBack },
  { op: 'Flatten', inputs: [0], grad: reshapeBack },
  { op: 'Squeeze', inputs: [0], grad: reshapeBack },
  { op: 'Unsqueeze', inputs: [0], grad: reshapeBack },
  { op: 'Identity', inputs: [0], grad: (c) => [c.dy(0)!] },
  {
    // A float → float Cast passes the gradient; casts to integers end a differentiable path before
    // any rule is asked (their outputs are not float).
    op: 'Cast',
    inputs: [0],
    grad: (c) => {
      if (attrInt(c.node, 'to', DT.FLOAT) !== DT.FLOAT) throw c.unsupported('Cast to a type other than float32 on a trainable path');
      return [c.dy(0)!];
    },
  },
  {
    op: 'Transpose',
    inputs: [0],
    grad: (c) => {
      const r = c.rank(c.x[0]!);
      const perm = attrInts(c.node, 'perm') ?? Array.from({ length: r }, (_, i) => r - 1 - i);
      const inv = new Array<number>(r);
      perm.forEach((p, i) => (inv[p] = i));
      return [c.e.one('Transpose', [c.dy(0)!], [A.ints('perm', inv)])];
    },
  },
  { op: 'Expand', inputs: [0], grad: (c) => [c.unbroadcast(c.dy(0)!, c.x[0]!, c.dims(c.y[0]!))] },
];
