/** Concat, Split, Slice: a gradient splits, concatenates, or zero-pads dy. */
import { A, attrInt, attrInts } from '../onnx.js';
import type { GradContext, GradRule } from './types.js';

function normAxis(c: GradContext, name: string, a: number): number {
  return a < 0 ? a + c.rank(name) : a;
}

/** Size of `t` along `axis`, as a 1-element int64 tensor computed at run time. */
function dimOf(c: GradContext, t: string, axis: number): string {
  return c.e.one('Gather', [c.e.one('Shape', [t]), c.e.constI64([axis])], [A.int('axis', 0)]);
}

export const slicingRules: GradRule[] = [
  {
    op: 'Concat',
    inputs: 'all',
    grad: (c) => {
      const axis = normAxis(c, c.y[0]!, attrInt(c.node, 'axis', 0));
      const sizes = c.e.one('Concat', c.x.map((x) => dimOf(c, x, axis)), [A.int('axis', 0)]);
      const parts = c.e.node('Split', [c.dy(0)!, sizes], [A.int('axis', axis)], c.x.length);
      return c.x.map((_, i) => (c.needs(i) ? parts[i] : undefined));
    },
  },
  {
    op: 'Split',
    inputs: [0],
    grad: (c) => {
      const axis = normAxis(c, c.x[0]!, attrInt(c.node, 'axis', 0));
      return [c.e.one('Concat', c.y.map((_, i) => c.dyOrZeros(i)), [A.int('axis', axis)])];
    },
  },
  {
    // Unit steps only: ∂x = dy zero-padded by (start, dim − end) on each sliced axis, with start and
    // end clamped to [0, dim] at run time exactly as Slice clamps them.
    op: 'Slice',
    inputs: [0],
    grad: (c) => {
      const e = c.e;
      const x = c.x[0]!;
      const r = c.rank(x);
      if (attrInts(c.node, 'starts') !== undefined) throw c.unsupported('Slice with attribute starts/ends (opset < 10)');
      const starts = c.constInts(c.x[1]!);
      const ends = c.constInts(c.x[2]!);
      const axes = c.x[3] ? c.constInts(c.x[3]).map((a) => (a < 0 ? a + r : a)) : starts.map((_, i) => i);
      const steps = c.x[4] ? c.constInts(c.x[4]) : starts.map(() => 1);
      if (steps.some((s) => s !== 1)) throw c.unsupported(`Slice with steps ${JSON.stringify(steps)} (only unit steps have a rule)`);
      const zero = e.constI64([0]);
      const begin: string[] = Array.from({ length: r }, () => zero);
      const after: string[] = Array.from({ length: r }, () => zero);
      const clampIdx = (v: number, dim: string): string => {
        // Slice's own rule: negative counts from the end, then clamp to [0, dim]. Large ends
        // (INT64_MAX) stay large, so they are clamped to dim before any arithmetic.
        if (v >= 0) return e.one('Min', [e.constI64([Math.min(v, 2 ** 53)]), dim]);
        return e.one('Max', [e.one('Add', [e.constI64([Math.max(v, -(2 ** 53))]), dim]), zero]);
      };
      axes.forEach((ax, i) => {
        const dim = dimOf(c, x, ax);
        const s = clampIdx(starts[i]!, dim);
        const en = e.one('Max', [clampIdx(ends[i]!, dim), s]);
        begin[ax] = s;
        after[ax] = e.one('Sub', [dim, en]);
      });
      const pads = e.one('Concat', [...begin, ...after], [A.int('axis', 0)]);
      return [e.one('Pad', [c.dy(0)!, pads, e.constF32(0)], [A.str('mode', 'constant')])];
    },
  },
];
