/*
 * Batched materialization: one call runs a whole program of kernel steps, so materializing every
 * module of an adapter crosses the JS/wasm boundary once. The TypeScript side (src/kernels/<kernel>.ts)
 * compiles each MatExpr into these steps, lays out inputs, outputs and scratch in linear memory,
 * and writes the program as int32 words; pointers are byte offsets (0 = none), floats are passed
 * as their IEEE bit patterns.
 *
 *   GEMM      M N K alpha L lda R rsj rsk C ldc accumulate scratch      (gemm.c)
 *   GATE      dst src rank mode rLeft size rRight                      (tt.c)
 *   DENSE     dst src srcCols oR oC transpose rowScale colScale        (dense.c)
 *   CP        dst inner p outer q r scale                              (cp.c)
 *   MODEPROD  dst src before rk after U rows scratch                   (tucker.c)
 *   PERMUTE   dst src ndim outDims[ndim] srcStrides[ndim]              (tucker.c)
 *
 * Returns 0, or −(1 + word index) of the first word that is not a known op code (or an op that
 * runs past the end of the program).
 */
#include "common.h"

enum { OP_GEMM = 1, OP_GATE = 2, OP_DENSE = 3, OP_CP = 4, OP_MODEPROD = 5, OP_PERMUTE = 6 };

#define P(i) ((float *)(uintptr_t)(uint32_t)w[(i)])
#define I(i) (w[(i)])

int32_t TP_EXPORT(tp_abi_version)(void) { return TP_ABI_VERSION; }

int32_t TP_EXPORT(tp_run)(const int32_t *prog, int32_t len) {
  int32_t pc = 0;
  while (pc < len) {
    const int32_t *w = prog + pc + 1;
    const int32_t left = len - pc - 1;
    switch (prog[pc]) {
    case OP_GEMM:
      if (left < 13) return -(pc + 1);
      tp_gemm(I(0), I(1), I(2), tp_f32_from_bits(I(3)), P(4), I(5), P(6), I(7), I(8), P(9), I(10), I(11), P(12));
      pc += 14;
      break;
    case OP_GATE:
      if (left < 7) return -(pc + 1);
      tp_tt_gate(P(0), P(1), P(2), P(3), I(4), I(5), I(6));
      pc += 8;
      break;
    case OP_DENSE:
      if (left < 8) return -(pc + 1);
      tp_dense(P(0), P(1), I(2), I(3), I(4), I(5), P(6), P(7));
      pc += 9;
      break;
    case OP_CP:
      if (left < 7) return -(pc + 1);
      tp_cp(P(0), P(1), I(2), P(3), I(4), I(5), P(6));
      pc += 8;
      break;
    case OP_MODEPROD:
      if (left < 8) return -(pc + 1);
      tp_mode_product(P(0), P(1), I(2), I(3), I(4), P(5), I(6), P(7));
      pc += 9;
      break;
    case OP_PERMUTE: {
      if (left < 3) return -(pc + 1);
      const int32_t nd = I(2);
      if (nd < 1 || nd > 16 || left < 3 + 2 * nd) return -(pc + 1);
      tp_permute(P(0), P(1), nd, w + 3, w + 3 + nd);
      pc += 4 + 2 * nd;
      break;
    }
    default:
      return -(pc + 1);
    }
  }
  return 0;
}
