/**
 * The kernels' linear memory as seen from TypeScript:
 *
 *   [0, __heap_base)          stack and static data of the module
 *   [__heap_base, residentEnd) resident buffers (`allocResident`): caller-owned arrays that live
 *                              in wasm memory across calls (e.g. weights a merge-mode plugin keeps
 *                              there so `merge` updates them in place, without copies)
 *   [base, …)                  per-call scratch: every call lays out its own data from `base`
 *                              upwards (calls are synchronous, so they never overlap)
 *
 * Memory grows when needed and is never shrunk (`WasmBackend.release()` drops the whole instance).
 */
import { WasmKernelError } from './errors.js';
import type { KernelExports } from './loader.js';

const PAGE = 65536;
/** wasm32 addresses 4 GiB; the binary is linked with that maximum. */
export const MAX_BYTES = 4 * 1024 * 1024 * 1024;

export const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

/** Resident buffers start on a cache line. */
const RESIDENT_ALIGN = 64;
const alignTo = (bytes: number, a: number): number => Math.ceil(bytes / a) * a;

export class Heap {
  private readonly heapBase: number;
  /** End of the resident region (= start of per-call scratch, `base`). */
  private residentEnd: number;
  /** Live resident blocks: byte offset → byte length (rounded up to RESIDENT_ALIGN). */
  private readonly live = new Map<number, number>();
  /** Freed blocks below residentEnd, sorted by offset, coalesced: [offset, bytes]. */
  private holes: Array<[number, number]> = [];
  /** Set when the owning backend drops this instance (`release()`): resident buffers are gone. */
  released = false;
  private buf: ArrayBuffer | undefined;
  private f32view = new Float32Array(0);
  private i32view = new Int32Array(0);

  constructor(readonly k: KernelExports) {
    this.heapBase = alignTo(k.__heap_base.value as number, RESIDENT_ALIGN);
    this.residentEnd = this.heapBase;
  }

  /** Start of per-call scratch: above every resident buffer. */
  get base(): number {
    return this.residentEnd;
  }

  /**
   * Reserve `bytes` (> 0) of resident memory, zero-filled; returns its byte offset. First fit in
   * freed holes, else at the end of the resident region (which moves per-call scratch up).
   */
  allocResident(bytes: number): number {
    const size = alignTo(Math.max(bytes, 1), RESIDENT_ALIGN);
    let at = -1;
    for (let i = 0; i < this.holes.length; i++) {
      const [off, len] = this.holes[i]!;
      if (len < size) continue;
      at = off;
      if (len === size) this.holes.splice(i, 1);
      else this.holes[i] = [off + size, len - size];
      break;
    }
    if (at < 0) {
      at = this.residentEnd;
      this.ensure(at + size);
      this.residentEnd = at + size;
    }
    this.live.set(at, size);
    this.f32.fill(0, at / 4, (at + size) / 4);
    return at;
  }

  /** Give a resident block back (no-op when it is not live). */
  freeResident(at: number): void {
    const size = this.live.get(at);
    if (size === undefined) return;
    this.live.delete(at);
    this.holes.push([at, size]);
    this.holes.sort((a, b) => a[0] - b[0]);
    const merged: Array<[number, number]> = [];
    for (const h of this.holes) {
      const last = merged[merged.length - 1];
      if (last && last[0] + last[1] === h[0]) last[1] += h[1];
      else merged.push([h[0], h[1]]);
    }
    // A hole at the top shrinks the resident region.
    const top = merged[merged.length - 1];
    if (top && top[0] + top[1] === this.residentEnd) {
      this.residentEnd = top[0];
      merged.pop();
    }
    this.holes = merged;
  }

  /** Is bytes [at, at + bytes) inside one live resident block? */
  isResident(at: number, bytes: number): boolean {
    for (const [off, len] of this.live) if (at >= off && at + bytes <= off + len) return true;
    return false;
  }

  /** Bytes held by live resident blocks. */
  get residentBytes(): number {
    let n = 0;
    for (const len of this.live.values()) n += len;
    return n;
  }

  /** Make bytes [0, end) addressable. */
  ensure(end: number): void {
    const mem = this.k.memory;
    const have = mem.buffer.byteLength;
    if (end <= have) return;
    if (end > MAX_BYTES) {
      throw new WasmKernelError('wasm32 memory cannot hold this call', { expected: `≤ ${MAX_BYTES} bytes`, found: `${end} bytes` });
    }
    try {
      mem.grow(Math.ceil((end - have) / PAGE));
    } catch (e) {
      throw new WasmKernelError('wasm memory could not grow', { expected: `${end} bytes`, found: (e as Error).message });
    }
  }

  private refresh(): void {
    const b = this.k.memory.buffer;
    if (b !== this.buf) {
      this.buf = b;
      this.f32view = new Float32Array(b);
      this.i32view = new Int32Array(b);
    }
  }

  /** A float32 view of all memory (re-made after growth: old views are detached). */
  get f32(): Float32Array {
    this.refresh();
    return this.f32view;
  }

  get i32(): Int32Array {
    this.refresh();
    return this.i32view;
  }

  write(byteOffset: number, data: Float32Array): void {
    this.f32.set(data, byteOffset / 4);
  }

  /** A fresh copy of `len` floats at `byteOffset`. */
  read(byteOffset: number, len: number): Float32Array {
    return this.f32.slice(byteOffset / 4, byteOffset / 4 + len);
  }
}
