/**
 * Branch apply for a batch of rows, `Y[rows, m] += s · (X[rows, n] · A′) · B′ᵀ`: inputs copied
 * in, one call of csrc/apply.c (two GEMMs through the ρ-wide bottleneck), Y copied back.
 */
import type { ModuleUpdate } from '@tensorpeft/core';
import { align16, type Heap } from '../heap.js';
import { fail } from './shape.js';

export function checkUpdate(u: ModuleUpdate): void {
  if (u.A.length !== u.n * u.rho) fail(`A′ of ${u.path} must be [n, ρ]`, [u.n, u.rho], u.A.length);
  if (u.B.length !== u.m * u.rho) fail(`B′ of ${u.path} must be [m, ρ]`, [u.m, u.rho], u.B.length);
}

export function applyWasm(heap: Heap, X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): void {
  checkUpdate(u);
  const { n, m, rho, s, A, B } = u;
  if (X.length !== rows * n) fail('branch input X', [rows, n], X.length);
  if (Y.length !== rows * m) fail('branch output Y', [rows, m], Y.length);
  if (rows === 0 || m === 0 || rho === 0) return;
  const xOff = heap.base;
  const aOff = xOff + align16(X.length * 4);
  const bOff = aOff + align16(A.length * 4);
  const yOff = bOff + align16(B.length * 4);
  const tOff = yOff + align16(Y.length * 4);
  const sOff = tOff + align16(rows * rho * 4);
  const scratch = Math.max(8 * n, Math.ceil(m / 8) * 8 * rho);
  heap.ensure(sOff + scratch * 4);
  heap.write(xOff, X);
  heap.write(aOff, A);
  heap.write(bOff, B);
  heap.write(yOff, Y);
  heap.k.tp_apply(rows, n, m, rho, s, xOff, aOff, bOff, yOff, tOff, sOff);
  Y.set(heap.f32.subarray(yOff / 4, yOff / 4 + Y.length));
}
