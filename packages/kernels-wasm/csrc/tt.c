/*
 * TT chain support. A chain step is a plain GEMM (the running [P, r] result times the next core
 * viewed as [r, size·rRight]), done by gemm.c; this file holds the controller gate of the last
 * core (TRAC): dst[a, i, j] = src[a, i, j] · (rank[a] · mode[i]).
 */
#include "common.h"

void TP_EXPORT(tp_tt_gate)(float *dst, const float *src, const float *rank, const float *mode, int rLeft, int size,
                           int rRight) {
  for (int a = 0; a < rLeft; a++) {
    for (int i = 0; i < size; i++) {
      const float g = rank[a] * mode[i];
      const f4 gv = wasm_f32x4_splat(g);
      const float *s = src + (a * size + i) * rRight;
      float *d = dst + (a * size + i) * rRight;
      int j = 0;
      for (; j + 4 <= rRight; j += 4) wasm_v128_store(d + j, wasm_f32x4_mul(wasm_v128_load(s + j), gv));
      for (; j < rRight; j++) d[j] = s[j] * g;
    }
  }
}
