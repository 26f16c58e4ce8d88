/**
 * Resident buffers: float32 arrays that live in the wasm backend's linear memory across calls.
 *
 * Core's `Backend.merge(W, …)` takes a JS `Float32Array`; when W is an ordinary JS array the wasm
 * backend must stream it through wasm memory (copy in, update, copy back), and those two copies
 * cost about a quarter of a rank-16 merge. A caller that keeps its weights in wasm memory — a
 * merge-mode plugin holding the base weights it merges adapters into — avoids them:
 *
 * ```ts
 * const w = backend.allocResident(m * n);   // zero-filled, owned by the caller until free()
 * w.view.set(weightFromCheckpoint);           // fill it (once)
 * await backend.merge(w.view, 'out_in', u);   // in place, no copies
 * use(w.view);                                // read it: ALWAYS re-read .view after a backend call
 * w.free();
 * ```
 *
 * `merge` recognises a resident W by `W.buffer === memory.buffer` and the range lying inside a
 * live resident buffer; any other array (a JS array, a stale view) takes the copying path, so a
 * resident view is never required for correctness, only for speed.
 *
 * Memory growth: any backend call (and `allocResident`) may grow wasm memory, which detaches every
 * view of the old (non-shared) buffer — a held `Float32Array` then has length 0. Hence `view` is a
 * getter that re-makes the view when memory has grown: read it after each `await` instead of
 * keeping it. A detached view passed to `merge` fails with the usual shape error (length 0).
 * Allocate all resident buffers up front (or call `backend.reserve(bytes)`) to keep growth rare.
 * `release()` on the backend frees every resident buffer (their `view` then throws).
 * Like every other call, `allocResident` must not run while a threaded `materialize` is still in
 * flight (its data sits in the scratch region that a new resident buffer would take over).
 */
import { WasmKernelError } from './errors.js';
import type { Heap } from './heap.js';

export class ResidentBuffer {
  private cached: Float32Array | undefined;
  private freed = false;

  /** @internal — use `WasmBackend.allocResident`. */
  constructor(
    private readonly heap: Heap,
    /** Byte offset in wasm memory. */
    readonly byteOffset: number,
    /** Length in floats. */
    readonly length: number,
  ) {}

  /** A view of the buffer in the current wasm memory (re-made after memory growth). */
  get view(): Float32Array {
    if (this.freed) throw new WasmKernelError('resident buffer used after free()', { found: `offset ${this.byteOffset}` });
    if (this.heap.released) throw new WasmKernelError('resident buffer used after the backend released its memory', { found: `offset ${this.byteOffset}` });
    const buf = this.heap.k.memory.buffer;
    if (!this.cached || this.cached.buffer !== buf) this.cached = new Float32Array(buf, this.byteOffset, this.length);
    return this.cached;
  }

  get isFreed(): boolean {
    return this.freed;
  }

  /** Give the memory back to the backend (idempotent); the view must not be used afterwards. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.cached = undefined;
    if (!this.heap.released) this.heap.freeResident(this.byteOffset);
  }
}
