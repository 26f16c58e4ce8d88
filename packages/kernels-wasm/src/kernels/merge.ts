/**
 * Merge `W += s · B′ A′ᵀ` for both weight layouts, as one GEMM `C += s · L · Rᵀ` with K = ρ:
 *   out_in: W is [m, n]: C = W, L = B′ [m, ρ], R = A′ [n, ρ];
 *   in_out: W is [n, m] (GPT-2 Conv1D): C = W, L = A′, R = B′.
 * R is packed into 8-wide panels once. Two ways for W:
 *   - resident (W is a view of a live resident buffer in wasm memory, src/resident.ts): updated
 *     in place, in row chunks of about `RESIDENT_CHUNK_BYTES` so each chunk's rows stay hot in L2 across
 *     the 8-wide panels — no copies at all;
 *   - a JS array: streamed through wasm in row chunks of about `CHUNK_BYTES` — copied in, updated
 *     while hot in cache, copied back (exactly one read and one write of W per chunk, nothing
 *     else) — so a 4096×4096 weight never needs 64 MiB of wasm memory.
 */
import type { ModuleUpdate, WeightLayout } from '@tensorpeft/core';
import { WasmKernelError } from '../errors.js';
import { align16, type Heap } from '../heap.js';
import { packedFloats } from './gemm.js';
import { checkUpdate } from './apply.js';
import { fail } from './shape.js';

/**
 * Row chunk of a JS-owned W (copied in, updated, copied back). 64 KiB–512 KiB measured within
 * noise of each other on the README's machine (the copies are memory-bound either way); 128 KiB
 * leaves room in a 1 MiB L2 for the packed panels of a 4096-wide R (256 KiB).
 */
export const CHUNK_BYTES = 128 * 1024;

export function chunkRows(rows: number, cols: number): number {
  const r = Math.floor(CHUNK_BYTES / 4 / Math.max(cols, 1) / 4) * 4;
  return Math.min(rows, Math.max(4, r));
}

/**
 * Row chunk of a resident W, updated in place: the kernel walks a chunk panel by panel, so the
 * chunk's rows must stay in L2 across its ⌈N/8⌉ panels. 256–512 KiB measured best (4096×4096:
 * 512 KiB 12.8 ms; one unchunked call 17.7 ms — each row is then evicted between panels).
 */
export const RESIDENT_CHUNK_BYTES = 512 * 1024;
export function residentRows(rows: number, cols: number): number {
  const r = Math.floor(RESIDENT_CHUNK_BYTES / 4 / Math.max(cols, 1) / 4) * 4;
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
  const inWasm = W.buffer === heap.k.memory.buffer;
  const resident = inWasm && heap.isResident(W.byteOffset, W.byteLength);
  if (inWasm && !resident) {
    // A view of wasm memory that is not (inside) a live resident buffer — e.g. kept after
    // free(): per-call scratch may overlap it, so neither path could be correct.
    throw new WasmKernelError('merge: W is a view of wasm memory outside any live resident buffer', {
      expected: 'a JS Float32Array or the view of a live ResidentBuffer',
      found: `bytes [${W.byteOffset}, ${W.byteOffset + W.byteLength})`,
    });
  }
  // Offsets survive memory growth (views do not): take W's before `ensure`.
  const wOff = W.byteOffset;
  const lOff = heap.base;
  const rOff = lOff + align16(L.length * 4);
  const pOff = rOff + align16(R.length * 4);
  const cOff = pOff + align16(packedFloats(N, rho) * 4);
  heap.ensure(resident ? cOff : cOff + rows * N * 4);
  heap.write(lOff, L);
  heap.write(rOff, R);
  const k = heap.k;
  k.tp_pack_panels(pOff, rOff, N, rho, rho, 1);
  if (resident) {
    const rrows = residentRows(M, N);
    for (let i0 = 0; i0 < M; i0 += rrows) {
      const r = Math.min(rrows, M - i0);
      k.tp_gemm_packed(r, N, rho, s, lOff + i0 * rho * 4, rho, pOff, wOff + i0 * N * 4, N, 1);
    }
    return;
  }
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
