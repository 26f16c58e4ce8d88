/*
 * Tucker reconstruction steps (TensLoRA).
 *
 * Mode product: for a tensor viewed as [before, rk, after] and U [rows, rk],
 *   dst[b, i, c] = Σ_a U[i, a] · src[b, a, c]      (a vector is rows = 1)
 * Every sum runs over a = 0 … rk − 1 in order, in float32, from 0, on every path below (GEMM, SIMD
 * vector loops): the results are bit-identical to a plain scalar loop over a, and within the
 * selftest's Σ R_k + 1 bound.
 *
 * Permute: dst is row-major over outDims; its element at multi-index (o_0 … o_{d−1}) is
 *   src[Σ_t o_t · srcStrides[t]].
 */
#include "common.h"

/*
 * Vector contraction (rows = 1) with after > 1: dst[b, c] = Σ_a u[a] · src[b, a, c], vectorized
 * over c, four f32x4 accumulators (16 columns) at a time. This stays a loop of its own: as a GEMM
 * it would have M = 1, and the 4×8 micro-kernel would compute three dummy rows per tile (8 of its
 * 16 vector multiply-adds per k wasted), while this loop uses every lane it loads.
 */
static void vector_product(float *dst, const float *src, int before, int rk, int after, const float *u) {
  for (int b = 0; b < before; b++) {
    const float *t = src + b * rk * after;
    float *d = dst + b * after;
    int c = 0;
    for (; c + 16 <= after; c += 16) {
      f4 s0 = wasm_f32x4_splat(0.f), s1 = s0, s2 = s0, s3 = s0;
      for (int a = 0; a < rk; a++) {
        const f4 x = wasm_f32x4_splat(u[a]);
        const float *row = t + a * after + c;
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(x, wasm_v128_load(row)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(x, wasm_v128_load(row + 4)));
        s2 = wasm_f32x4_add(s2, wasm_f32x4_mul(x, wasm_v128_load(row + 8)));
        s3 = wasm_f32x4_add(s3, wasm_f32x4_mul(x, wasm_v128_load(row + 12)));
      }
      wasm_v128_store(d + c, s0);
      wasm_v128_store(d + c + 4, s1);
      wasm_v128_store(d + c + 8, s2);
      wasm_v128_store(d + c + 12, s3);
    }
    /* after = 8 is common (TensLoRA's 8-way heads mode): one 8-wide block, not two 4-wide ones. */
    for (; c + 8 <= after; c += 8) {
      f4 s0 = wasm_f32x4_splat(0.f), s1 = s0;
      for (int a = 0; a < rk; a++) {
        const f4 x = wasm_f32x4_splat(u[a]);
        const float *row = t + a * after + c;
        s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(x, wasm_v128_load(row)));
        s1 = wasm_f32x4_add(s1, wasm_f32x4_mul(x, wasm_v128_load(row + 4)));
      }
      wasm_v128_store(d + c, s0);
      wasm_v128_store(d + c + 4, s1);
    }
    for (; c + 4 <= after; c += 4) {
      f4 s0 = wasm_f32x4_splat(0.f);
      for (int a = 0; a < rk; a++) s0 = wasm_f32x4_add(s0, wasm_f32x4_mul(wasm_f32x4_splat(u[a]), wasm_v128_load(t + a * after + c)));
      wasm_v128_store(d + c, s0);
    }
    for (; c < after; c++) {
      float s = 0.f;
      for (int a = 0; a < rk; a++) s += u[a] * t[a * after + c];
      d[c] = s;
    }
  }
}

/*
 * Vector contraction of the last mode (rows = 1, after = 1): dst[b] = Σ_a u[a] · src[b·rk + a], a
 * matrix-vector product with the matrix rows contiguous in a. As a GEMM it would be N = 1, one
 * useful column of the 8-wide tile; instead four b go in the four lanes: a 4×4 block (rows b…b+3,
 * columns a…a+3) is loaded as four f32x4 and transposed with shuffles (as in dense.c) into one
 * vector per a, so each lane still accumulates its own b in a order from 0 (bit-identical to the
 * scalar loop). Ragged a (rk % 4) are gathered lane by lane, ragged b (before % 4) are scalar.
 */
static void vector_last(float *dst, const float *src, int before, int rk, const float *u) {
  int b = 0;
  for (; b + 4 <= before; b += 4) {
    const float *r0 = src + b * rk, *r1 = r0 + rk, *r2 = r1 + rk, *r3 = r2 + rk;
    f4 s = wasm_f32x4_splat(0.f);
    int a = 0;
    for (; a + 4 <= rk; a += 4) {
      const f4 x0 = wasm_v128_load(r0 + a), x1 = wasm_v128_load(r1 + a), x2 = wasm_v128_load(r2 + a), x3 = wasm_v128_load(r3 + a);
      const f4 lo01 = wasm_i32x4_shuffle(x0, x1, 0, 4, 1, 5), lo23 = wasm_i32x4_shuffle(x2, x3, 0, 4, 1, 5);
      const f4 hi01 = wasm_i32x4_shuffle(x0, x1, 2, 6, 3, 7), hi23 = wasm_i32x4_shuffle(x2, x3, 2, 6, 3, 7);
      s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(u[a]), wasm_i32x4_shuffle(lo01, lo23, 0, 1, 4, 5)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(u[a + 1]), wasm_i32x4_shuffle(lo01, lo23, 2, 3, 6, 7)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(u[a + 2]), wasm_i32x4_shuffle(hi01, hi23, 0, 1, 4, 5)));
      s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(u[a + 3]), wasm_i32x4_shuffle(hi01, hi23, 2, 3, 6, 7)));
    }
    for (; a < rk; a++) s = wasm_f32x4_add(s, wasm_f32x4_mul(wasm_f32x4_splat(u[a]), wasm_f32x4_make(r0[a], r1[a], r2[a], r3[a])));
    wasm_v128_store(dst + b, s);
  }
  for (; b < before; b++) {
    const float *r = src + b * rk;
    float s = 0.f;
    for (int a = 0; a < rk; a++) s += u[a] * r[a];
    dst[b] = s;
  }
}

/*
 * The mode product as GEMMs on reshaped views of src and dst (gemm.c's 4×8 register tile):
 *
 * - after == 1 (the mode is the last one), rows > 1: src is a row-major [before, rk] matrix S and
 *   dst = S · Uᵀ [before, rows], ONE GEMM with M = before, N = rows, K = rk, L = S (contiguous
 *   k), R(j, k) = U[j·rk + k] (NT: tp_gemm packs U, which is small, into ⌈rows/8⌉ zero-padded
 *   8-wide panels in scratch). A vector there (rows = 1) is vector_last above.
 * - rows > 1, after > 1: for each b, dst_b [rows, after] = U [rows, rk] · src_b [rk, after], an
 *   NN GEMM with M = rows, N = after, K = rk: full 8-column panels of src_b are read in place and
 *   only a ragged last panel (after % 8 columns) is copied, zero-padded, into scratch; rows that
 *   are not a multiple of 4 run the same kernel with the tile's rows clamped (see gemm.c).
 * - rows == 1, after > 1: vector_product above.
 *
 * Scratch (floats): ⌈rows/8⌉·8·rk when after == 1 and rows > 1; 8·rk when rows > 1, after > 1
 * and after % 8; none otherwise (may then be null). It must not overlap src, dst or U.
 */
void TP_EXPORT(tp_mode_product)(float *dst, const float *src, int before, int rk, int after, const float *U, int rows,
                                float *scratch) {
  if (before <= 0 || after <= 0 || rows <= 0) return;
  if (after == 1 && rows == 1) {
    vector_last(dst, src, before, rk, U);
    return;
  }
  if (after == 1) {
    tp_gemm(before, rows, rk, 1.f, src, rk, U, rk, 1, dst, rows, 0, scratch);
    return;
  }
  if (rows == 1) {
    vector_product(dst, src, before, rk, after, U);
    return;
  }
  for (int b = 0; b < before; b++)
    tp_gemm(rows, after, rk, 1.f, U, rk, src + b * rk * after, 1, after, dst + b * rows * after, after, 0, scratch);
}

/* Recursion instead of an index array: no shadow-stack memory (see gemm.c). */
static float *permute_rec(float *dst, const float *src, int d, int ndim, const int32_t *outDims, const int32_t *srcStrides) {
  const int n = outDims[d], stride = srcStrides[d];
  if (d == ndim - 1) {
    for (int c = 0; c < n; c++) dst[c] = src[c * stride];
    return dst + n;
  }
  for (int i = 0; i < n; i++) dst = permute_rec(dst, src + i * stride, d + 1, ndim, outDims, srcStrides);
  return dst;
}

void TP_EXPORT(tp_permute)(float *dst, const float *src, int ndim, const int32_t *outDims, const int32_t *srcStrides) {
  if (ndim <= 0) return;
  permute_rec(dst, src, 0, ndim, outDims, srcStrides);
}
