/**
 * Merge `W += s · B′ A′ᵀ` for both weight layouts, as one GEMM `C += s · L · Rᵀ` with K = ρ:
 *   out_in: W is [m, n]: C = W, L = B′ [m, ρ], R = A′ [n, ρ];
 *   in_out: W is [n, m] (GPT-2 Conv1D): C = W, L = A′, R = B′.
 * R is packed into 8-wide panels once; W, which lives in JS memory, streams through wasm in
 * row chunks of about `CHUNK_BYTES` (copied in, updated in cache, copied back), so a 4096×4096
 * weight never needs 64 MiB of wasm memory and each chunk is updated while it is hot in L2.
 */
import type { ModuleUpdate, WeightLayout } from '@tensorpeft/core';
import { align16, type Heap } from '../heap.js';
import { packedFloats } from './gemm.js';
import { checkUpdate } from './apply.js';
import { fail } from './shape.js';

export const CHUNK_BYTES = 128 * 1024;

export function chunkRows(rows: number, cols: number): number {
  const r = Math.floor(CHUNK_BYTES / 4 / Math.max(cols, 1) / 4) * 4;
  return Math.min(rows, Math.max(4, r));
}

export function mergeWasm(heap: Heap, W: Float32Array, layout: WeightLayout, u: ModuleUpdate): void {
  checkUpdate(u);
  const { n, m, rho, s, A, B } = u;
  if (W.length !== n * m) fail(`weight of ${u.path}`, [m, n], W.length);
  if (layout !== 'out_in' && layout !== 'in_out') fail('weight layout', 'out_in | in_out', layout);
  if (rho === 0 || W.length === 0) return;
  const [M, N, L, R] = layout === 'out_in' ? [m, n, B, A] : [n, m, A, B];
  const rows = chunkRows(M, N);
  const lOff = heap.base;
  const rOff = lOff + align16(L.length * 4);
  const pOff = rOff + align16(R.length * 4);
  const cOff = pOff + align16(packedFloats(N, rho) * 4);
  heap.ensure(cOff + rows * N * 4);
  heap.write(lOff, L);
  heap.write(rOff, R);
  const k = heap.k;
  k.tp_pack_panels(pOff, rOff, N, rho, rho, 1);
  const f32 = heap.f32;
  const c = cOff / 4;
  for (let i0 = 0; i0 < M; i0 += rows) {
    const r = Math.min(rows, M - i0);
    const w = W.subarray(i0 * N, (i0 + r) * N);
    f32.set(w, c);
    k.tp_gemm_packed(r, N, rho, s, lOff + i0 * rho * 4, rho, pOff, cOff, N, 1);
    w.set(f32.subarray(c, c + r * N));
  }
}
