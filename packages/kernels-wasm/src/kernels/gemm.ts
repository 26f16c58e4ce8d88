/**
 * GEMM step (csrc/gemm.c): `C[M, N] (+)= alpha · L[M, K] · R(K, N)` with L row-major (row stride
 * `lda`), R(j, k) at `R[j·rsj + k·rsk]`. With rsj = 1 (row-major [K, N], the NN case) R is read in
 * place and only a ragged last panel is copied; otherwise all of R is packed into 8-wide panels.
 */
import { OP, type Program, type Ptr } from '../program.js';

/** Floats of scratch `tp_gemm` needs. */
export function gemmScratchFloats(N: number, K: number, rsj: number): number {
  return rsj === 1 ? (N % 8 === 0 ? 0 : 8 * K) : Math.ceil(N / 8) * 8 * K;
}

/** Floats of packed panels for an [N, K]-shaped right operand (`tp_pack_panels`). */
export const packedFloats = (N: number, K: number): number => Math.ceil(N / 8) * 8 * K;

export interface GemmStep {
  M: number;
  N: number;
  K: number;
  alpha: number;
  L: Ptr;
  lda: number;
  R: Ptr;
  rsj: number;
  rsk: number;
  C: Ptr;
  ldc: number;
  accumulate: boolean;
}

export function emitGemm(p: Program, g: GemmStep): void {
  const sf = gemmScratchFloats(g.N, g.K, g.rsj);
  const scratch = sf > 0 ? p.temp(sf) : null;
  p.op(OP.GEMM, g.M, g.N, g.K, { f32: g.alpha }, g.L, g.lda, g.R, g.rsj, g.rsk, g.C, g.ldc, g.accumulate ? 1 : 0, scratch);
}
