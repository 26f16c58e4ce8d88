/** MatMul (numpy semantics, ranks ≥ 2) and Gemm. */
import { A, attrFloat, attrInt } from '../onnx.js';
import type { GradContext, GradRule } from './types.js';

/** Swap the last two axes. */
function swapLast(c: GradContext, t: string): string {
  const r = c.rank(t);
  const perm = Array.from({ length: r }, (_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return c.e.one('Transpose', [t], [A.ints('perm', perm)]);
}

function scaled(c: GradContext, t: string, s: number): string {
  return s === 1 ? t : c.e.one('Mul', [t, c.e.constF32(s)]);
}

export const linearRules: GradRule[] = [
  {
    // y = a · b: ∂a = dy · bᵀ, ∂b = aᵀ · dy, each summed over the batch axes it was broadcast along.
    op: 'MatMul',
    inputs: [0, 1],
    grad: (c) => {
      const e = c.e;
      const [a, b] = c.x as [string, string];
      const ra = c.rank(a);
      const rb = c.rank(b);
      if (ra < 2 || rb < 2) throw c.unsupported('MatMul with a 1-D operand');
      const dy = c.dy(0)!;
      const yd = c.dims(c.y[0]!);
      const lead = yd.slice(0, -2);
      const ad = c.dims(a);
      const bd = c.dims(b);
      let da: string | undefined;
      let db: string | undefined;
      // Rows of a tensor with its batch axes folded: [-1, last dim], read at run time (the probe's
      // sizes, an adapter rank among them, are not the run's).
      const rows = (t: string): string => e.one('Concat', [e.constI64([-1]), e.one('Shape', [t], [A.int('start', -1)])], [A.int('axis', 0)]);
      if (c.needs(0)) {
        if (rb === 2) {
          // A 2-D b (a frozen weight or an adapter factor): dy · bᵀ as one Gemm with transB over the
          // folded rows, so bᵀ is never materialized (a Transpose of every weight on every step).
          // a's batch axes are y's, so no unbroadcast is needed: reshape back to Shape(a).
          da = e.one('Reshape', [e.one('Gemm', [e.one('Reshape', [dy, rows(dy)]), b], [A.int('transB', 1)]), e.one('Shape', [a])]);
        } else da = c.unbroadcast(e.one('MatMul', [dy, swapLast(c, b)]), a, [...lead, ...ad.slice(-2)]);
      }
      if (c.needs(1)) {
        if (rb === 2 && ra > 2) {
          // A 2-D b (a weight or an adapter factor) shared over the batch: fold the batch axes of a
          // and dy into rows, so aᵀ · dy is one [k, rows] × [rows, n] product instead of a batch of them.
          const a2 = e.one('Reshape', [a, rows(a)]);
          const dy2 = e.one('Reshape', [dy, rows(dy)]);
          db = e.one('Gemm', [a2, dy2], [A.int('transA', 1)]);
        } else {
          db = c.unbroadcast(e.one('MatMul', [swapLast(c, a), dy]), b, [...lead, ...bd.slice(-2)]);
        }
      }
      return [da, db];
    },
  },
  {
    // y = α·op(A)·op(B) + β·C, op = transpose when transA / transB.
    op: 'Gemm',
    inputs: [0, 1, 2],
    grad: (c) => {
      const e = c.e;
      const [a, b, cc] = c.x as [string, string, string | undefined];
      const alpha = attrFloat(c.node, 'alpha', 1);
      const beta = attrFloat(c.node, 'beta', 1);
      const tA = attrInt(c.node, 'transA', 0);
      const tB = attrInt(c.node, 'transB', 0);
      const dy = c.dy(0)!;
      const out: Array<string | undefined> = [undefined, undefined, undefined];
      if (c.needs(0)) {
        // ∂op(A) = dy · op(B)ᵀ; ∂A = that, or its transpose when transA.
        out[0] = tA === 0 ? e.one('Gemm', [dy, b], [A.int('transB', tB === 0 ? 1 : 0), A.float('alpha', alpha)]) : e.one('Gemm', [b, dy], [A.int('transA', tB), A.int('transB', 1), A.float('alpha', alpha)]);
      }
      if (c.needs(1)) {
        out[1] = tB === 0 ? e.one('Gemm', [a, dy], [A.int('transA', tA === 0 ? 1 : 0), A.float('alpha', alpha)]) : e.one('Gemm', [dy, a], [A.int('transA', 1), A.int('transB', tA), A.float('alpha', alpha)]);
      }
      if (cc && c.needs(2)) out[2] = c.unbroadcast(scaled(c, dy, beta), cc, c.dims(c.y[0]!));
      return out;
    },
  },
];
