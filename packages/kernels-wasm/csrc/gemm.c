/*
 * Register-tiled float32 GEMM, the workhorse of merge, branch apply and TT contraction:
 *
 *   C[i, j] (+)= alpha · Σ_k L[i·lda + k] · R(j, k),   0 ≤ i < M, 0 ≤ j < N, 0 ≤ k < K
 *
 * L is row-major with contiguous k. R(j, k) = R[j·rsj + k·rsk]. When rsj == 1 (R is a row-major
 * [K, N] matrix, the NN case) full 8-column panels are read in place and only a ragged last panel
 * is copied; otherwise (the NT case, e.g. A′ in W += s·B′A′ᵀ) R is packed into zero-padded
 * panels [⌈N/8⌉][K][8] in `scratch`. The micro-kernel keeps a 4×8 tile of C in eight f32x4
 * registers: per k it loads two R vectors, splats four L values, and does 8 multiplies + 8 adds.
 * Ragged tiles (M % 4, N % 8) run the same kernel (rows clamped, panel zero-padded) and store
 * only the valid elements. Accumulation is float32 in k order; alpha is applied once per element.
 */
#include "common.h"

#define MR 4
#define NR 8

/* d[0..n) (+)= the first n lanes of v, n ≤ 4. */
static inline void store_lanes(float *d, f4 v, int n, int accumulate) {
  if (n == 4) {
    wasm_v128_store(d, accumulate ? wasm_f32x4_add(v, wasm_v128_load(d)) : v);
    return;
  }
  switch (n) {
  case 3: {
    const float x = wasm_f32x4_extract_lane(v, 2);
    d[2] = accumulate ? d[2] + x : x;
  }
    /* fall through */
  case 2: {
    const float x = wasm_f32x4_extract_lane(v, 1);
    d[1] = accumulate ? d[1] + x : x;
  }
    /* fall through */
  case 1: {
    const float x = wasm_f32x4_extract_lane(v, 0);
    d[0] = accumulate ? d[0] + x : x;
  }
    /* fall through */
  default:
    break;
  }
}

/* One row of a tile, nr ≤ 8 valid columns. */
static inline void store_row(float *d, f4 lo, f4 hi, int nr, int accumulate) {
  store_lanes(d, lo, nr < 4 ? nr : 4, accumulate);
  if (nr > 4) store_lanes(d + 4, hi, nr - 4, accumulate);
}

static inline __attribute__((always_inline)) void micro_4x8(int K, const float *a0, const float *a1,
                                                            const float *a2, const float *a3, const float *b,
                                                            int bs, float alpha, float *C, int ldc, int mr, int nr,
                                                            int accumulate) {
  f4 c00 = wasm_f32x4_splat(0.f), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00;
  for (int k = 0; k < K; k++) {
    const f4 b0 = wasm_v128_load(b);
    const f4 b1 = wasm_v128_load(b + 4);
    b += bs;
    f4 x = wasm_v128_load32_splat(a0 + k);
    c00 = wasm_f32x4_add(c00, wasm_f32x4_mul(x, b0));
    c01 = wasm_f32x4_add(c01, wasm_f32x4_mul(x, b1));
    x = wasm_v128_load32_splat(a1 + k);
    c10 = wasm_f32x4_add(c10, wasm_f32x4_mul(x, b0));
    c11 = wasm_f32x4_add(c11, wasm_f32x4_mul(x, b1));
    x = wasm_v128_load32_splat(a2 + k);
    c20 = wasm_f32x4_add(c20, wasm_f32x4_mul(x, b0));
    c21 = wasm_f32x4_add(c21, wasm_f32x4_mul(x, b1));
    x = wasm_v128_load32_splat(a3 + k);
    c30 = wasm_f32x4_add(c30, wasm_f32x4_mul(x, b0));
    c31 = wasm_f32x4_add(c31, wasm_f32x4_mul(x, b1));
  }
  if (alpha != 1.f) {
    const f4 al = wasm_f32x4_splat(alpha);
    c00 = wasm_f32x4_mul(c00, al);
    c01 = wasm_f32x4_mul(c01, al);
    c10 = wasm_f32x4_mul(c10, al);
    c11 = wasm_f32x4_mul(c11, al);
    c20 = wasm_f32x4_mul(c20, al);
    c21 = wasm_f32x4_mul(c21, al);
    c30 = wasm_f32x4_mul(c30, al);
    c31 = wasm_f32x4_mul(c31, al);
  }
  if (mr == MR && nr == NR) {
    float *r0 = C, *r1 = C + ldc, *r2 = C + 2 * ldc, *r3 = C + 3 * ldc;
    if (accumulate) {
      c00 = wasm_f32x4_add(c00, wasm_v128_load(r0));
      c01 = wasm_f32x4_add(c01, wasm_v128_load(r0 + 4));
      c10 = wasm_f32x4_add(c10, wasm_v128_load(r1));
      c11 = wasm_f32x4_add(c11, wasm_v128_load(r1 + 4));
      c20 = wasm_f32x4_add(c20, wasm_v128_load(r2));
      c21 = wasm_f32x4_add(c21, wasm_v128_load(r2 + 4));
      c30 = wasm_f32x4_add(c30, wasm_v128_load(r3));
      c31 = wasm_f32x4_add(c31, wasm_v128_load(r3 + 4));
    }
    wasm_v128_store(r0, c00);
    wasm_v128_store(r0 + 4, c01);
    wasm_v128_store(r1, c10);
    wasm_v128_store(r1 + 4, c11);
    wasm_v128_store(r2, c20);
    wasm_v128_store(r2 + 4, c21);
    wasm_v128_store(r3, c30);
    wasm_v128_store(r3 + 4, c31);
    return;
  }
  /* Ragged tile: store the valid lanes only (no stack buffer: the kernels use no shadow stack,
   * so instances sharing one memory across threads need no per-thread stacks). */
  store_row(C, c00, c01, nr, accumulate);
  if (mr > 1) store_row(C + ldc, c10, c11, nr, accumulate);
  if (mr > 2) store_row(C + 2 * ldc, c20, c21, nr, accumulate);
  if (mr > 3) store_row(C + 3 * ldc, c30, c31, nr, accumulate);
}

/* Pack R(j, k) for j in [j0, j0 + nr) into one zero-padded panel [K][8]. */
static void pack_panel(float *dst, const float *R, int j0, int nr, int K, int rsj, int rsk) {
  if (nr == NR && rsj == 1) {
    for (int k = 0; k < K; k++) {
      const float *src = R + k * rsk + j0;
      wasm_v128_store(dst + k * NR, wasm_v128_load(src));
      wasm_v128_store(dst + k * NR + 4, wasm_v128_load(src + 4));
    }
    return;
  }
  for (int k = 0; k < K; k++)
    for (int jj = nr; jj < NR; jj++) dst[k * NR + jj] = 0.f;
  for (int jj = 0; jj < nr; jj++) {
    const float *src = R + (j0 + jj) * rsj;
    for (int k = 0; k < K; k++) dst[k * NR + jj] = src[k * rsk];
  }
}

void TP_EXPORT(tp_pack_panels)(float *dst, const float *R, int N, int K, int rsj, int rsk) {
  for (int p = 0; p * NR < N; p++) pack_panel(dst + p * K * NR, R, p * NR, tp_min(NR, N - p * NR), K, rsj, rsk);
}

/* One 8-column panel of C against all row blocks. */
static void panel_rows(int M, int K, float alpha, const float *L, int lda, const float *b, int bs, float *C, int ldc,
                       int nr, int accumulate) {
  for (int i0 = 0; i0 < M; i0 += MR) {
    const int mr = tp_min(MR, M - i0);
    const float *a0 = L + i0 * lda;
    const float *a1 = mr > 1 ? a0 + lda : a0;
    const float *a2 = mr > 2 ? a0 + 2 * lda : a0;
    const float *a3 = mr > 3 ? a0 + 3 * lda : a0;
    micro_4x8(K, a0, a1, a2, a3, b, bs, alpha, C + i0 * ldc, ldc, mr, nr, accumulate);
  }
}

static void zero_or_keep(int M, int N, float *C, int ldc, int accumulate) {
  if (accumulate) return;
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) C[i * ldc + j] = 0.f;
}

void TP_EXPORT(tp_gemm_packed)(int M, int N, int K, float alpha, const float *L, int lda, const float *Rp, float *C,
                               int ldc, int accumulate) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_or_keep(M, N, C, ldc, accumulate);
  for (int p = 0; p * NR < N; p++)
    panel_rows(M, K, alpha, L, lda, Rp + p * K * NR, NR, C + p * NR, ldc, tp_min(NR, N - p * NR), accumulate);
}

/*
 * Scratch: K·8 floats when rsj == 1 (the ragged last panel), else ⌈N/8⌉·8·K floats (all panels).
 */
void TP_EXPORT(tp_gemm)(int M, int N, int K, float alpha, const float *L, int lda, const float *R, int rsj, int rsk,
                        float *C, int ldc, int accumulate, float *scratch) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) return zero_or_keep(M, N, C, ldc, accumulate);
  if (rsj != 1) {
    tp_pack_panels(scratch, R, N, K, rsj, rsk);
    tp_gemm_packed(M, N, K, alpha, L, lda, scratch, C, ldc, accumulate);
    return;
  }
  const int full = N / NR;
  for (int p = 0; p < full; p++) panel_rows(M, K, alpha, L, lda, R + p * NR, rsk, C + p * NR, ldc, NR, accumulate);
  if (full * NR < N) {
    pack_panel(scratch, R, full * NR, N - full * NR, K, rsj, rsk);
    panel_rows(M, K, alpha, L, lda, scratch, NR, C + full * NR, ldc, N - full * NR, accumulate);
  }
}
