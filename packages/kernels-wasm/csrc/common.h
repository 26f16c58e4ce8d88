/*
 * Shared declarations of the TensorPEFT wasm kernels. Freestanding C (no libc): float32 row-major
 * arrays addressed by byte offsets into the module's one linear memory, which the TypeScript
 * side lays out (inputs, outputs, scratch) before each call. Shape logic lives in TypeScript;
 * these loops take sizes and strides and do no allocation.
 */
#ifndef TP_COMMON_H
#define TP_COMMON_H

#include <stdint.h>
#include <wasm_simd128.h>

#define TP_EXPORT(name) __attribute__((export_name(#name))) name

/* Version of the calling convention (op codes, argument order); the loader checks it. */
#define TP_ABI_VERSION 2

typedef v128_t f4;

static inline float tp_f32_from_bits(int32_t bits) {
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

static inline int tp_min(int a, int b) { return a < b ? a : b; }

/* gemm.c — C[M,N] (row stride ldc) (+)= alpha · L[M,K] · R(K,N), see gemm.c. */
void tp_gemm(int M, int N, int K, float alpha, const float *L, int lda, const float *R, int rsj, int rsk,
             float *C, int ldc, int accumulate, float *scratch);
void tp_pack_panels(float *dst, const float *R, int N, int K, int rsj, int rsk);
void tp_gemm_packed(int M, int N, int K, float alpha, const float *L, int lda, const float *Rp, float *C, int ldc,
                    int accumulate);

/* tt.c */
void tp_tt_gate(float *dst, const float *src, const float *rank, const float *mode, int rLeft, int size, int rRight);

/* dense.c */
void tp_dense(float *dst, const float *src, int srcCols, int oR, int oC, int transpose, const float *rowScale,
              const float *colScale);

/* cp.c */
void tp_cp(float *dst, const float *inner, int p, const float *outer, int q, int r, const float *scale);

/* tucker.c */
void tp_mode_product(float *dst, const float *src, int before, int rk, int after, const float *U, int rows,
                     float *scratch);
void tp_permute(float *dst, const float *src, int ndim, const int32_t *outDims, const int32_t *srcStrides);

#endif
