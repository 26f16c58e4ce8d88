import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkGradient, mismatch, type CheckInput } from '../test-utils/fd-check.js';
import type { NodeProto } from '../onnx.js';
import { registerGradient, gradientRule } from './registry.js';

const node = (op: string, inputs: string[], attrs: NodeProto['attribute'] = []): NodeProto => ({ name: `t/${op}`, opType: op, input: inputs, output: ['y'], attribute: attrs });

/** A random shape of rank 1–3 with sizes 2–4, and a second shape broadcastable to it (leading axes dropped, some sizes set to 1). */
const broadcastPair = fc
  .array(fc.integer({ min: 2, max: 4 }), { minLength: 1, maxLength: 3 })
  .chain((a) => fc.tuple(fc.constant(a), fc.array(fc.boolean(), { minLength: a.length, maxLength: a.length }), fc.integer({ min: 0, max: a.length - 1 })))
  .map(([a, ones, drop]) => ({ a, b: a.slice(drop).map((d, i) => (ones[i + drop] ? 1 : d)) }));

describe('binary elementwise rules (numpy broadcasting) match central differences', () => {
  for (const op of ['Add', 'Sub', 'Mul', 'Div']) {
    it(`${op}: both inputs, random broadcast shapes`, async () => {
      await fc.assert(
        fc.asyncProperty(broadcastPair, fc.boolean(), fc.integer({ min: 1, max: 1000 }), async ({ a, b }, swap, seed) => {
          const [da, db] = swap ? [b, a] : [a, b];
          const n = db.reduce((p, q) => p * q, 1);
          // Div: keep the divisor away from 0 so L is smooth within the FD step.
          const bData = op === 'Div' ? Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * (0.8 + 0.1 * (i % 5))) : undefined;
          const inputs: Record<string, CheckInput> = { a: { dims: da, trainable: true }, b: { dims: db, trainable: true, ...(bData ? { data: bData } : {}) } };
          const r = await checkGradient([node(op, ['a', 'b'])], inputs, 'y', { seed });
          expect(mismatch(r)).toEqual([]);
        }),
        { numRuns: 4, seed: 14 },
      );
    });
  }

  it('Pow with a constant exponent (2 and 3, as RMSNorm and gelu_new use)', async () => {
    for (const p of [2, 3]) {
      const r = await checkGradient([node('Pow', ['x', 'p'])], { x: { dims: [3, 4], trainable: true }, p: { dims: [], data: [p], constant: true } }, 'y', { seed: p });
      expect(mismatch(r)).toEqual([]);
    }
  });
});

describe('unary rules match central differences', () => {
  const positive = (n: number): number[] => Array.from({ length: n }, (_, i) => 0.5 + 0.1 * (i % 7));
  const cases: Array<[string, number[] | undefined]> = [
    ['Sqrt', positive(12)],
    ['Neg', undefined],
    ['Reciprocal', positive(12)],
    ['Erf', undefined],
    ['Tanh', undefined],
    ['Sigmoid', undefined],
    ['Exp', undefined],
    ['Log', positive(12)],
    // Away from the kink at 0 by more than the FD step.
    ['Relu', Array.from({ length: 12 }, (_, i) => (i % 2 ? 1 : -1) * (0.1 + 0.07 * i))],
  ];
  for (const [op, data] of cases) {
    it(op, async () => {
      const r = await checkGradient([node(op, ['x'])], { x: { dims: [3, 4], trainable: true, ...(data ? { data } : {}) } }, 'y', { seed: op.length });
      expect(mismatch(r)).toEqual([]);
      expect(Math.abs(r.pairs[0]!.fd)).toBeGreaterThan(1e-3);
    });
  }
});

describe('the check itself', () => {
  it('catches a wrong rule (Tanh with the sign flipped)', async () => {
    const good = gradientRule('Tanh')!;
    registerGradient({ ...good, grad: (c) => [c.e.one('Neg', [good.grad(c)[0]!])] });
    try {
      const r = await checkGradient([node('Tanh', ['x'])], { x: { dims: [3, 4], trainable: true } }, 'y', { seed: 3 });
      expect(mismatch(r).length).toBe(r.pairs.length);
    } finally {
      registerGradient(good);
    }
  });
});
