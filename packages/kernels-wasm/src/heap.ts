/**
 * The kernels' linear memory as seen from TypeScript. Every call lays out its own data from the
 * heap base upwards (calls are synchronous, so they never overlap), growing memory when needed;
 * memory is never shrunk (`WasmBackend.release()` drops the whole instance).
 */
import { WasmKernelError } from './errors.js';
import type { KernelExports } from './loader.js';

const PAGE = 65536;
/** wasm32 addresses 4 GiB; the binary is linked with that maximum. */
export const MAX_BYTES = 4 * 1024 * 1024 * 1024;

export const align16 = (bytes: number): number => Math.ceil(bytes / 16) * 16;

export class Heap {
  readonly base: number;
  private buf: ArrayBuffer | undefined;
  private f32view = new Float32Array(0);
  private i32view = new Int32Array(0);

  constructor(readonly k: KernelExports) {
    this.base = align16(k.__heap_base.value as number);
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
