/** dtype.ts: float32 → float16 feeds for the plugin's fp16 inputs, and fp16 initializers read back. */
import { describe, expect, test } from 'vitest';
import fc from 'fast-check';
import { toFloat16 } from '@tensorpeft/core';
import { castFeedsToInputTypes, fromHalfBits, halfInitToFloats, toHalfBits } from './dtype.js';
import { PluginError } from './errors.js';

describe('float16 conversion', () => {
  test('toHalfBits rounds like core’s toFloat16 (round to nearest even) and fromHalfBits is exact', () => {
    fc.assert(
      fc.property(fc.array(fc.float({ noNaN: true, min: -70000, max: 70000 }), { minLength: 1, maxLength: 64 }), (xs) => {
        const src = Float32Array.from(xs);
        const back = fromHalfBits(toHalfBits(src));
        for (let i = 0; i < src.length; i++) expect(back[i]).toBe(toFloat16(src[i]!));
      }),
    );
  });

  test('halfInitToFloats reads raw_data and int32_data fp16 initializers', () => {
    const bits = toHalfBits(Float32Array.of(1.5, -2, 0.1));
    const raw = new Uint8Array(bits.buffer.slice(0));
    expect(Array.from(halfInitToFloats({ name: 'w', dataType: 10, dims: [3], rawData: raw }, undefined))).toEqual(Array.from(fromHalfBits(bits)));
    expect(Array.from(halfInitToFloats({ name: 'w', dataType: 10, dims: [3], int32Data: Array.from(bits) }, undefined))).toEqual(Array.from(fromHalfBits(bits)));
  });
});

describe('castFeedsToInputTypes', () => {
  const session = {
    inputMetadata: [
      { name: 'input_ids', type: 'int64' },
      { name: 'tensorpeft.m.A', type: 'float16' },
      { name: 'tensorpeft.m.B', type: 'float32' },
    ],
  };
  const made: Array<{ bits: Uint16Array; dims: readonly number[] }> = [];
  const make = (bits: Uint16Array, dims: readonly number[]): unknown => {
    const t = { type: 'float16', bits, dims };
    made.push(t);
    return t;
  };

  test('converts float32 feeds of float16 inputs once per tensor object; other feeds pass through', async () => {
    const seen: Array<Record<string, unknown>> = [];
    const run = castFeedsToInputTypes(session, async (feeds) => (seen.push(feeds), {}), 'tensorpeft.', make);
    const A = { type: 'float32', data: Float32Array.of(0.1, 0.2), dims: [2, 1] };
    const B = { type: 'float32', data: Float32Array.of(3), dims: [1, 1] };
    const ids = { type: 'int64', data: BigInt64Array.of(1n), dims: [1, 1] };
    await run({ input_ids: ids, 'tensorpeft.m.A': A, 'tensorpeft.m.B': B });
    await run({ input_ids: ids, 'tensorpeft.m.A': A, 'tensorpeft.m.B': B });
    expect(made.length).toBe(1);
    expect(Array.from(fromHalfBits(made[0]!.bits))).toEqual([toFloat16(0.1), toFloat16(0.2)]);
    expect(made[0]!.dims).toEqual([2, 1]);
    for (const f of seen) {
      expect(f['tensorpeft.m.A']).toBe(made[0]);
      expect(f['tensorpeft.m.B']).toBe(B);
      expect(f['input_ids']).toBe(ids);
    }
  });

  test('a GPU-resident float32 feed of a float16 input is refused with a PluginError', async () => {
    const run = castFeedsToInputTypes(session, async () => ({}), 'tensorpeft.', make);
    await expect(run({ 'tensorpeft.m.A': { type: 'float32', data: undefined, dims: [2, 1], location: 'gpu-buffer' } })).rejects.toThrow(PluginError);
  });

  test('a session without float16 inputs keeps its run function', () => {
    const run = async (): Promise<Record<string, unknown>> => ({});
    expect(castFeedsToInputTypes({ inputMetadata: [{ name: 'tensorpeft.m.A', type: 'float32' }] }, run, 'tensorpeft.', make)).toBe(run);
  });
});
