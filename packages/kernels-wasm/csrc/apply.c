/*
 * Branch apply for a batch of rows: Y[rows, m] += s · (X[rows, n] · A′[n, ρ]) · B′[m, ρ]ᵀ.
 * Two GEMMs through the ρ-wide bottleneck T[rows, ρ]: T = X·A′ (NN, A′ read in place), then
 * Y += s·T·B′ᵀ (NT, B′ packed). Scratch: max(8·n, ⌈m/8⌉·8·ρ) floats (a ragged panel of A′, then
 * the packed B′).
 */
#include "common.h"

void TP_EXPORT(tp_apply)(int rows, int n, int m, int rho, float s, const float *X, const float *A, const float *B, float *Y,
                         float *T, float *scratch) {
  tp_gemm(rows, rho, n, 1.f, X, n, A, 1, rho, T, rho, 0, scratch);
  tp_gemm(rows, m, rho, s, T, rho, B, rho, 1, Y, m, 1, scratch);
}
