/*
 * CP (Khatri–Rao) expansion for LoRTA's B′: out[(h·p + j), k] = outer[h, k] · inner[j, k] · scale[k]
 * for inner [p, r], outer [q, r]; a null scale means 1. Output [q·p, r].
 */
#include "common.h"

void TP_EXPORT(tp_cp)(float *dst, const float *inner, int p, const float *outer, int q, int r, const float *scale) {
  for (int h = 0; h < q; h++) {
    const float *o = outer + h * r;
    for (int j = 0; j < p; j++) {
      const float *in = inner + j * r;
      float *d = dst + (h * p + j) * r;
      int k = 0;
      for (; k + 4 <= r; k += 4) {
        f4 v = wasm_f32x4_mul(wasm_v128_load(o + k), wasm_v128_load(in + k));
        if (scale) v = wasm_f32x4_mul(v, wasm_v128_load(scale + k));
        wasm_v128_store(d + k, v);
      }
      for (; k < r; k++) d[k] = o[k] * in[k] * (scale ? scale[k] : 1.f);
    }
  }
}
