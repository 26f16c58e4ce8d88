/*
 * Tucker reconstruction steps (TensLoRA).
 *
 * Mode product: for a tensor viewed as [before, rk, after] and U [rows, rk],
 *   dst[b, i, c] = Σ_a U[i, a] · src[b, a, c]      (a vector is rows = 1)
 * vectorized over c, four f32x4 accumulators at a time, summed in a order.
 *
 * Permute: dst is row-major over outDims; its element at multi-index (o_0 … o_{d−1}) is
 *   src[Σ_t o_t · srcStrides[t]].
 */
#include "common.h"

void TP_EXPORT(tp_mode_product)(float *dst, const float *src, int before, int rk, int after, const float *U, int rows) {
  for (int b = 0; b < before; b++) {
    const float *t = src + b * rk * after;
    for (int i = 0; i < rows; i++) {
      const float *u = U + i * rk;
      float *d = dst + (b * rows + i) * after;
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
