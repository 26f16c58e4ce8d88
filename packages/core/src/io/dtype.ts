/**
 * Storage dtypes: float32 ↔ IEEE half (fp16) and ↔ bfloat16, round-to-nearest-even, with
 * subnormals, ±Inf and NaN. Byte order is always little-endian (safetensors), read and written
 * through DataView or explicit byte shuffling so the code is correct on big-endian hosts too.
 *
 * The float32 → half conversion is a port of NumPy's `npy_floatbits_to_halfbits` (bit exact,
 * ties-to-even, including the subnormal range); inputs are float32 values (a JS number is first
 * rounded to float32, as every tensor here is a Float32Array).
 */

export type StorageDtype = 'fp32' | 'fp16' | 'bf16';
/** safetensors dtype names this project reads and writes. */
export type SafetensorsDtype = 'F32' | 'F16' | 'BF16';

export const DTYPE_TO_SAFETENSORS: Record<StorageDtype, SafetensorsDtype> = { fp32: 'F32', fp16: 'F16', bf16: 'BF16' };
export const SAFETENSORS_TO_DTYPE: Record<SafetensorsDtype, StorageDtype> = { F32: 'fp32', F16: 'fp16', BF16: 'bf16' };
export const ITEMSIZE: Record<SafetensorsDtype, number> = { F32: 4, F16: 2, BF16: 2 };

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** True on little-endian hosts (every current JS engine, but we do not assume it). */
export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Bits of the float32 nearest to `x`. */
export function float32Bits(x: number): number {
  f32[0] = x;
  return u32[0]!;
}

/** The float32 with bit pattern `bits`. */
export function float32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0]!;
}

/** float32 bits → IEEE half bits, round to nearest, ties to even (NumPy's algorithm). */
export function f32BitsToF16Bits(f: number): number {
  const hSgn = (f >>> 16) & 0x8000;
  const fExp = f & 0x7f800000;
  // Exponent overflow or Inf/NaN.
  if (fExp >= 0x47800000) {
    if (fExp === 0x7f800000) {
      const fSig = f & 0x007fffff;
      if (fSig !== 0) {
        // NaN: keep the top payload bits, but make sure it stays a NaN.
        let ret = 0x7c00 + (fSig >>> 13);
        if (ret === 0x7c00) ret++;
        return hSgn | ret;
      }
      return hSgn | 0x7c00;
    }
    return hSgn | 0x7c00;
  }
  // Exponent underflow: subnormal half or signed zero.
  if (fExp <= 0x38000000) {
    if (fExp < 0x33000000) return hSgn;
    const e = fExp >>> 23;
    let fSig = 0x00800000 + (f & 0x007fffff);
    fSig = fSig >>> (113 - e);
    // Round: add half an ulp unless this is an exact tie with an even result (the shift may have
    // dropped up to 11 low bits, so those are checked in the original).
    if ((fSig & 0x3fff) !== 0x1000 || (f & 0x7ff) !== 0) fSig += 0x1000;
    // A carry into the exponent (subnormal → smallest normal) is the correct result.
    return hSgn + (fSig >>> 13);
  }
  // Normal range.
  const hExp = (fExp - 0x38000000) >>> 13;
  let fSig = f & 0x007fffff;
  if ((fSig & 0x3fff) !== 0x1000) fSig += 0x1000;
  // A carry from the significand increments the exponent; 0x7c00 (Inf) is the correct overflow.
  return hSgn + ((fSig >>> 13) + hExp);
}

/** IEEE half bits → float32 bits (exact). */
export function f16BitsToF32Bits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  let sig = h & 0x3ff;
  if (exp === 0) {
    if (sig === 0) return sign >>> 0;
    // Subnormal: normalize.
    let e = -1;
    do {
      e++;
      sig <<= 1;
    } while ((sig & 0x400) === 0);
    return (sign | ((127 - 15 - e) << 23) | ((sig & 0x3ff) << 13)) >>> 0;
  }
  if (exp === 0x1f) return (sign | 0x7f800000 | (sig << 13)) >>> 0;
  return (sign | ((exp + 112) << 23) | (sig << 13)) >>> 0;
}

/** float32 bits → bfloat16 bits, round to nearest, ties to even; NaN stays a (quiet) NaN. */
export function f32BitsToBf16Bits(f: number): number {
  if ((f & 0x7f800000) === 0x7f800000 && (f & 0x007fffff) !== 0) return ((f >>> 16) | 0x0040) & 0xffff;
  const lsb = (f >>> 16) & 1;
  // No overflow past 32 bits: the largest non-NaN pattern is 0xff800000 (−Inf).
  return Math.floor(((f >>> 0) + 0x7fff + lsb) / 65536) & 0xffff;
}

export function bf16BitsToF32Bits(h: number): number {
  return ((h & 0xffff) << 16) >>> 0;
}

/** Nearest half to `x` (as a number). */
export function toFloat16(x: number): number {
  return float32FromBits(f16BitsToF32Bits(f32BitsToF16Bits(float32Bits(x))));
}

/** Nearest bfloat16 to `x` (as a number). */
export function toBfloat16(x: number): number {
  return float32FromBits(bf16BitsToF32Bits(f32BitsToBf16Bits(float32Bits(x))));
}

let halfTable: Float32Array | undefined;
/** All 65,536 half values as float32 (256 KiB, built once on first use). */
function halfToFloatTable(): Float32Array {
  if (!halfTable) {
    const t = new Float32Array(65536);
    const bits = new Uint32Array(t.buffer);
    for (let h = 0; h < 65536; h++) bits[h] = f16BitsToF32Bits(h);
    halfTable = t;
  }
  return halfTable;
}

/**
 * Decode `count` little-endian elements of `dtype` starting at `bytes[offset]` into a fresh
 * Float32Array. No alignment is required of `offset`.
 */
export function decodeToFloat32(bytes: Uint8Array, offset: number, count: number, dtype: SafetensorsDtype): Float32Array {
  const out = new Float32Array(count);
  if (dtype === 'F32') {
    if (HOST_LITTLE_ENDIAN) {
      new Uint8Array(out.buffer).set(bytes.subarray(offset, offset + 4 * count));
    } else {
      const dv = new DataView(bytes.buffer, bytes.byteOffset + offset, 4 * count);
      for (let i = 0; i < count; i++) out[i] = dv.getFloat32(4 * i, true);
    }
    return out;
  }
  if (dtype === 'F16') {
    const table = halfToFloatTable();
    for (let i = 0, p = offset; i < count; i++, p += 2) out[i] = table[bytes[p]! | (bytes[p + 1]! << 8)]!;
    return out;
  }
  // BF16: the two bytes are the high half of the float32 pattern.
  const bits = new Uint32Array(out.buffer);
  for (let i = 0, p = offset; i < count; i++, p += 2) bits[i] = ((bytes[p]! | (bytes[p + 1]! << 8)) << 16) >>> 0;
  return out;
}

/** Encode float32 values as little-endian `dtype` into `dst` at `offset`. */
export function encodeFromFloat32(src: Float32Array, dtype: SafetensorsDtype, dst: Uint8Array, offset: number): void {
  if (dtype === 'F32') {
    if (HOST_LITTLE_ENDIAN) {
      dst.set(new Uint8Array(src.buffer, src.byteOffset, src.byteLength), offset);
    } else {
      const dv = new DataView(dst.buffer, dst.byteOffset + offset, 4 * src.length);
      for (let i = 0; i < src.length; i++) dv.setFloat32(4 * i, src[i]!, true);
    }
    return;
  }
  // Read float32 bit patterns (host order, consistent with the Float32Array) without copying.
  const bits = src.byteOffset % 4 === 0 ? new Uint32Array(src.buffer, src.byteOffset, src.length) : new Uint32Array(Float32Array.from(src).buffer);
  const conv = dtype === 'F16' ? f32BitsToF16Bits : f32BitsToBf16Bits;
  for (let i = 0, p = offset; i < bits.length; i++, p += 2) {
    const h = conv(bits[i]!);
    dst[p] = h & 0xff;
    dst[p + 1] = h >>> 8;
  }
}
