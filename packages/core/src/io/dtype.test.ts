import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bf16BitsToF32Bits,
  decodeToFloat32,
  encodeFromFloat32,
  f16BitsToF32Bits,
  f32BitsToBf16Bits,
  f32BitsToF16Bits,
  float32Bits,
  float32FromBits,
  toBfloat16,
  toFloat16,
} from './dtype.js';

const h = (x: number): number => f32BitsToF16Bits(float32Bits(x));
const fromH = (bits: number): number => float32FromBits(f16BitsToF32Bits(bits));
const b = (x: number): number => f32BitsToBf16Bits(float32Bits(x));
const fromB = (bits: number): number => float32FromBits(bf16BitsToF32Bits(bits));

/** Independent oracle: round a float32 value to half with ties-to-even using float64 arithmetic. */
function refHalf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  if (x === 0 || !Number.isFinite(x)) return x;
  const ax = Math.abs(x);
  let e = Math.floor(Math.log2(ax));
  if (2 ** e > ax) e -= 1;
  if (2 ** (e + 1) <= ax) e += 1;
  const ulp = 2 ** (Math.max(e, -14) - 10);
  const q = ax / ulp; // exact: scaling by a power of two
  let r = Math.floor(q);
  const frac = q - r;
  if (frac > 0.5 || (frac === 0.5 && r % 2 === 1)) r += 1;
  const v = r * ulp;
  return Math.sign(x) * (v >= 65520 ? Infinity : v);
}

describe('fp16', () => {
  it('encodes known bit patterns', () => {
    expect(h(1)).toBe(0x3c00);
    expect(h(-2)).toBe(0xc000);
    expect(h(0.1)).toBe(0x2e66);
    expect(h(65504)).toBe(0x7bff); // largest half
    expect(h(65519)).toBe(0x7bff); // below the midpoint to 65536
    expect(h(65520)).toBe(0x7c00); // tie between 65504 and 2^16 → even → overflow to Inf
    expect(h(1e6)).toBe(0x7c00);
    expect(h(-1e6)).toBe(0xfc00);
    expect(h(2 ** -14)).toBe(0x0400); // smallest normal
    expect(h(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(h(1023 * 2 ** -24)).toBe(0x03ff); // largest subnormal
    expect(h(2 ** -25)).toBe(0x0000); // tie between 0 and 2^-24 → even (0)
    expect(h(float32FromBits(float32Bits(2 ** -25) + 1))).toBe(0x0001); // just above the tie
    expect(h(3 * 2 ** -25)).toBe(0x0002); // tie between 1 and 2 ulps → even (2)
    expect(h(1e-10)).toBe(0x0000);
    expect(h(-0)).toBe(0x8000);
    expect(h(Infinity)).toBe(0x7c00);
    expect(h(-Infinity)).toBe(0xfc00);
    const nan = h(NaN);
    expect(nan & 0x7c00).toBe(0x7c00);
    expect(nan & 0x03ff).not.toBe(0);
  });

  it('rounds ties to even in the normal range', () => {
    expect(h(1 + 2 ** -11)).toBe(0x3c00); // tie: 1.0 (even) vs 1+2^-10
    expect(h(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie: 0x3c01 vs 0x3c02 (even)
    expect(h(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01); // above the tie
    expect(h(2047 * 2 ** -11)).toBe(0x3bff); // exact
    expect(h(1 - 2 ** -12)).toBe(0x3c00); // tie between 0x3bff (odd) and 1.0: carries into the exponent
  });

  it('decodes known bit patterns', () => {
    expect(fromH(0x3c00)).toBe(1);
    expect(fromH(0x7bff)).toBe(65504);
    expect(fromH(0x0001)).toBe(2 ** -24);
    expect(fromH(0x03ff)).toBe(1023 * 2 ** -24);
    expect(fromH(0x0400)).toBe(2 ** -14);
    expect(Object.is(fromH(0x8000), -0)).toBe(true);
    expect(fromH(0x7c00)).toBe(Infinity);
    expect(fromH(0xfc00)).toBe(-Infinity);
    expect(fromH(0x7e00)).toBeNaN();
  });

  it('round-trips every non-NaN half exactly', () => {
    for (let bits = 0; bits < 65536; bits++) {
      if ((bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0) {
        expect(Number.isNaN(fromH(bits))).toBe(true);
        continue;
      }
      if (f32BitsToF16Bits(f16BitsToF32Bits(bits)) !== bits) throw new Error(`half 0x${bits.toString(16)} does not round-trip`);
    }
  });

  it('matches an independent ties-to-even oracle (property)', () => {
    fc.assert(
      fc.property(fc.float({ noNaN: true }), (x) => {
        expect(toFloat16(x)).toBe(refHalf(x));
      }),
      { numRuns: 20000 },
    );
  });

  it('round trip error ≤ 2^-11 relative in the normal range (property)', () => {
    fc.assert(
      fc.property(fc.float({ min: 2 ** -14, max: 65504, noNaN: true }), fc.boolean(), (x, neg) => {
        const v = neg ? -x : x;
        const r = toFloat16(v);
        expect(Math.abs(r - v)).toBeLessThanOrEqual(Math.abs(v) * 2 ** -11);
      }),
      { numRuns: 20000 },
    );
  });
});

describe('bf16', () => {
  it('encodes and decodes known bit patterns', () => {
    expect(b(1)).toBe(0x3f80);
    expect(b(-2)).toBe(0xc000);
    expect(b(1 + 2 ** -8)).toBe(0x3f80); // tie → even
    expect(b(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie → even
    expect(b(1 + 2 ** -8 + 2 ** -20)).toBe(0x3f81);
    expect(b(Infinity)).toBe(0x7f80);
    expect(b(-Infinity)).toBe(0xff80);
    expect(b(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to Inf
    expect(b(-0)).toBe(0x8000);
    expect(b(2 ** -133)).toBe(0x0001); // float32 subnormals keep their top bits
    const nan = b(NaN);
    expect(nan & 0x7f80).toBe(0x7f80);
    expect(nan & 0x7f).not.toBe(0);
    expect(fromB(0x3f80)).toBe(1);
    expect(fromB(0x4049)).toBe(3.140625);
    expect(fromB(0xff80)).toBe(-Infinity);
  });

  it('round trip error ≤ 2^-8 relative for normal values (property)', () => {
    fc.assert(
      fc.property(fc.float({ min: 2 ** -126, max: Math.fround(3e38), noNaN: true }), (x) => {
        expect(Math.abs(toBfloat16(x) - x)).toBeLessThanOrEqual(Math.abs(x) * 2 ** -8);
      }),
      { numRuns: 20000 },
    );
  });
});

describe('byte encoding', () => {
  it('is little-endian and alignment-free for every dtype', () => {
    const src = new Float32Array([1, -2, 0.5, 65504]);
    for (const dt of ['F32', 'F16', 'BF16'] as const) {
      const size = dt === 'F32' ? 4 : 2;
      const buf = new Uint8Array(3 + src.length * size); // odd offset on purpose
      encodeFromFloat32(src, dt, buf, 3);
      expect([...decodeToFloat32(buf, 3, src.length, dt)]).toEqual(dt === 'BF16' ? [1, -2, 0.5, 65536] : [1, -2, 0.5, 65504]);
    }
    const buf = new Uint8Array(2);
    encodeFromFloat32(new Float32Array([1]), 'F16', buf, 0);
    expect([...buf]).toEqual([0x00, 0x3c]);
    const b4 = new Uint8Array(4);
    encodeFromFloat32(new Float32Array([1]), 'F32', b4, 0);
    expect([...b4]).toEqual([0x00, 0x00, 0x80, 0x3f]);
  });
});
