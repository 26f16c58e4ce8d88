/**
 * The project's own seeded PRNG, documented so any implementation (JS, C, WGSL, Python) can
 * reproduce the same bytes.
 *
 * - Stream per tensor: `streamFor(seed, key)` hashes the UTF-8 key with FNV-1a (32-bit), mixes it
 *   with the seed through splitmix32, and seeds xoshiro128** with four successive splitmix32
 *   outputs. Keying by tensor name means adding a tensor never changes the values of another.
 *   Exactly (all arithmetic mod 2³², `sm(st)` = splitmix32: `st += 0x9e3779b9; z = st;
 *   z = (z ^ z>>>16)·0x85ebca6b; z = (z ^ z>>>13)·0xc2b2ae35; return z ^ z>>>16`):
 *   `st = seed ^ fnv1a(key); st = sm(st) ^ (seed·0x27d4eb2d); a, b, c, d = sm(st), sm(st), sm(st),
 *   sm(st)` (if all four are 0, a = 1), then the standard xoshiro128** step with state (a, b, c, d).
 * - `uniform()` = (next() >>> 8) · 2⁻²⁴: 24 bits, exactly representable in float32, in [0, 1).
 * - `normal()` = Marsaglia's polar method on 53-bit doubles, with our own `ln` built only from
 *   +, −, ×, ÷ (IEEE-exact everywhere), because `Math.log` may differ in the last ulp between
 *   JavaScript engines. No `Math.log/sin/cos/exp` is used, so the stream is identical across
 *   engines; `Math.sqrt` is correctly rounded by IEEE 754.
 */

// ln 2 split as in fdlibm: LN2_HI has only 32 significant bits, so e · LN2_HI is exact for every
// exponent a double can have (|e| ≤ 1075 needs 11 more bits).
const LN2_HI = 6.93147180369123816490e-1;
const LN2_LO = 1.90821492927058770002e-10;

/**
 * Natural logarithm of x > 0 using only exactly-rounded arithmetic (+, −, ×, ÷), accurate to about
 * one ulp (fdlibm's scheme with the Taylor series of atanh instead of its minimax polynomial):
 * x = 2^e · (1 + f) with 1 + f ∈ [1/√2, √2), so f = x − 1 is exact (Sterbenz); s = f / (2 + f);
 * ln(1 + f) = 2·atanh(s) = f − hfsq + s·(hfsq + R) with hfsq = f²/2 and
 * R = Σ_{k≥1} 2·s^{2k}/(2k+1). Keeping f exact and rounding only the small correction terms is
 * what keeps the error near one ulp (a plain `2·Σ z^{2k+1}/(2k+1)` loses several ulps).
 */
export function detLn(x: number): number {
  if (!(x > 0) || !Number.isFinite(x)) throw new RangeError(`detLn: argument must be finite and > 0, got ${x}`);
  let e = 0;
  // Bring x into [1/√2, √2) by exact power-of-two scaling.
  while (x >= 1.4142135623730951) {
    x *= 0.5;
    e += 1;
  }
  while (x < 0.7071067811865476) {
    x *= 2;
    e -= 1;
  }
  const f = x - 1;
  const s = f / (2 + f);
  const s2 = s * s;
  // |s| ≤ 0.1716, s² ≤ 0.0295: 12 terms take R below 2^-60 relative; evaluated by Horner from the
  // smallest term.
  let R = 0;
  for (let k = 12; k >= 1; k--) R = s2 * (2 / (2 * k + 1) + R);
  const hfsq = 0.5 * f * f;
  return e * LN2_HI - (hfsq - (s * (hfsq + R) + e * LN2_LO) - f);
}

function fnv1a(key: string): number {
  const bytes = new TextEncoder().encode(key);
  let h = 0x811c9dc5;
  for (const b of bytes) {
    h ^= b;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) >>> 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
  return (z ^ (z >>> 16)) >>> 0;
}

/** xoshiro128** generator with float helpers. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number, key = '') {
    if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff) {
      throw new RangeError(`seed must be an integer in [0, 2^32), got ${seed}`);
    }
    const st = { s: (seed ^ fnv1a(key)) >>> 0 };
    // Mix the seed once more so seed and key collisions are unlikely.
    st.s = (splitmix32(st) ^ Math.imul(seed, 0x27d4eb2d)) >>> 0;
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next raw 32-bit unsigned integer. */
  next(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.b << 9) >>> 0;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d >>> 0, 11);
    this.a >>>= 0;
    this.b >>>= 0;
    this.c >>>= 0;
    return result;
  }

  /** Uniform in [0, 1) with 24 random bits (exact in float32). */
  uniform(): number {
    return (this.next() >>> 8) * 5.9604644775390625e-8;
  }

  /** Uniform in (−1, 1) with 53 random bits. */
  private symmetric53(): number {
    const hi = this.next() >>> 5; // 27 bits
    const lo = this.next() >>> 6; // 26 bits
    const u = (hi * 67108864 + lo) / 9007199254740992; // [0, 1)
    return 2 * u - 1;
  }

  /** Standard normal N(0, 1) (Marsaglia polar method). */
  normal(): number {
    for (;;) {
      const u = this.symmetric53();
      const v = this.symmetric53();
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        // The second value of the pair is discarded on purpose: one normal per draw keeps the
        // stream position a simple function of how many values were requested.
        return u * Math.sqrt((-2 * detLn(s)) / s);
      }
    }
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** A generator for one named tensor of an adapter. */
export function streamFor(seed: number, key: string): Prng {
  return new Prng(seed >>> 0, key);
}
