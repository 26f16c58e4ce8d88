/**
 * An independent binary16 reference for the float16 results (half.ts): rounding written from the
 * format's definition (spacing 2^(e−10) in binade e ≥ −14, 2⁻²⁴ below), in float64, and the
 * criterion WGSL allows for an inexact conversion (either adjacent binary16 value).
 */
import { expect } from 'vitest';

/** binary16 bits → value (float64, exact). */
export function halfValue(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0x1f) return f ? NaN : sign * Infinity;
  return sign * (e === 0 ? f * 2 ** -24 : (1024 + f) * 2 ** (e - 25));
}

/** The two binary16 values adjacent to x (equal when x is representable), and the nearest-even one. */
export function halfNeighbours(x: number): { lo: number; hi: number; nearest: number } {
  if (Number.isNaN(x)) return { lo: NaN, hi: NaN, nearest: NaN };
  const a = Math.abs(x);
  const sign = x < 0 ? -1 : 1;
  // Round-to-nearest-even sends [65520, ∞) to ∞ and (65504, 65520) to 65504: the kernel writes exactly that.
  if (a >= 65520) return { lo: sign * Infinity, hi: sign * Infinity, nearest: sign * Infinity };
  if (a > 65504) return { lo: sign * 65504, hi: sign * 65504, nearest: sign * 65504 };
  let e = -14;
  while (e < 15 && a >= 2 ** (e + 1)) e++;
  const ulp = 2 ** (e - 10);
  const q = a / ulp; // exact: a power-of-two division of a float32 value
  const [fl, ce] = [Math.floor(q), Math.ceil(q)];
  const even = q - fl === 0.5 ? (fl % 2 === 0 ? fl : ce) : Math.round(q);
  return { lo: sign * fl * ulp, hi: sign * ce * ulp, nearest: sign * even * ulp };
}

export interface Tally {
  checked: number;
  nearest: number;
}

export function expectHalf(got: Uint16Array, want: Float32Array, what: string, t: Tally): void {
  expect(got.length, what).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const v = halfValue(got[i]!);
    const { lo, hi, nearest } = halfNeighbours(want[i]!);
    if (!(v === lo || v === hi)) throw new Error(`${what}[${i}]: float32 ${want[i]} became binary16 ${v} (0x${got[i]!.toString(16)}), not one of its neighbours ${lo}, ${hi}`);
    t.checked++;
    if (v === nearest) t.nearest++;
  }
}
