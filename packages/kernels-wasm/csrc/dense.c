/*
 * Dense sub-block with optional transpose and row/column scaling (VeRA, LoRA, TensLoRA's U_in,
 * and the copies/transposes of TT results):
 *
 *   out[i, j] = v · rowScale[i] · colScale[j],  v = transpose ? src[j·srcCols + i] : src[i·srcCols + j]
 *
 * for the [oR, oC] output; a null (0) scale pointer means 1. Transposes go through 4×4 register
 * blocks (f32x4 shuffles).
 */
#include "common.h"

static inline f4 scale_vec(const float *s, int j) { return s ? wasm_v128_load(s + j) : wasm_f32x4_splat(1.f); }

void TP_EXPORT(tp_dense)(float *dst, const float *src, int srcCols, int oR, int oC, int transpose,
                         const float *rowScale, const float *colScale) {
  if (!transpose) {
    for (int i = 0; i < oR; i++) {
      const float rs = rowScale ? rowScale[i] : 1.f;
      const f4 rv = wasm_f32x4_splat(rs);
      const float *s = src + i * srcCols;
      float *d = dst + i * oC;
      int j = 0;
      for (; j + 4 <= oC; j += 4)
        wasm_v128_store(d + j, wasm_f32x4_mul(wasm_f32x4_mul(wasm_v128_load(s + j), rv), scale_vec(colScale, j)));
      for (; j < oC; j++) d[j] = s[j] * rs * (colScale ? colScale[j] : 1.f);
    }
    return;
  }
  /* out[i, j] = src[j, i]: 4×4 blocks, then ragged edges element by element. */
  const int i4 = oR & ~3, j4 = oC & ~3;
  for (int i = 0; i < i4; i += 4) {
    const f4 r0 = wasm_f32x4_splat(rowScale ? rowScale[i] : 1.f);
    const f4 r1 = wasm_f32x4_splat(rowScale ? rowScale[i + 1] : 1.f);
    const f4 r2 = wasm_f32x4_splat(rowScale ? rowScale[i + 2] : 1.f);
    const f4 r3 = wasm_f32x4_splat(rowScale ? rowScale[i + 3] : 1.f);
    for (int j = 0; j < j4; j += 4) {
      /* s_t = src row j+t, columns i..i+3. */
      const f4 s0 = wasm_v128_load(src + (j + 0) * srcCols + i);
      const f4 s1 = wasm_v128_load(src + (j + 1) * srcCols + i);
      const f4 s2 = wasm_v128_load(src + (j + 2) * srcCols + i);
      const f4 s3 = wasm_v128_load(src + (j + 3) * srcCols + i);
      const f4 t0 = wasm_i32x4_shuffle(s0, s1, 0, 4, 1, 5);
      const f4 t1 = wasm_i32x4_shuffle(s2, s3, 0, 4, 1, 5);
      const f4 t2 = wasm_i32x4_shuffle(s0, s1, 2, 6, 3, 7);
      const f4 t3 = wasm_i32x4_shuffle(s2, s3, 2, 6, 3, 7);
      const f4 o0 = wasm_i32x4_shuffle(t0, t1, 0, 1, 4, 5);
      const f4 o1 = wasm_i32x4_shuffle(t0, t1, 2, 3, 6, 7);
      const f4 o2 = wasm_i32x4_shuffle(t2, t3, 0, 1, 4, 5);
      const f4 o3 = wasm_i32x4_shuffle(t2, t3, 2, 3, 6, 7);
      const f4 cs = scale_vec(colScale, j);
      wasm_v128_store(dst + (i + 0) * oC + j, wasm_f32x4_mul(wasm_f32x4_mul(o0, r0), cs));
      wasm_v128_store(dst + (i + 1) * oC + j, wasm_f32x4_mul(wasm_f32x4_mul(o1, r1), cs));
      wasm_v128_store(dst + (i + 2) * oC + j, wasm_f32x4_mul(wasm_f32x4_mul(o2, r2), cs));
      wasm_v128_store(dst + (i + 3) * oC + j, wasm_f32x4_mul(wasm_f32x4_mul(o3, r3), cs));
    }
  }
  for (int i = 0; i < oR; i++) {
    const float rs = rowScale ? rowScale[i] : 1.f;
    for (int j = i < i4 ? j4 : 0; j < oC; j++) dst[i * oC + j] = src[j * srcCols + i] * rs * (colScale ? colScale[j] : 1.f);
  }
}
