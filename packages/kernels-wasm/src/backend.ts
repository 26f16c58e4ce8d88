/**
 * The wasm backend: core's `Backend` interface over the SIMD kernels. Each method validates
 * shapes like the JS reference (same ShapeMismatchError messages), lays its data out in wasm
 * memory and makes one call (merge: one per row chunk of W). `materialize` may also spread an
 * adapter's modules over worker threads sharing that memory (src/threads.ts).
 */
import type { Backend, MatExpr, MaterializeJob, ModuleUpdate, WeightLayout } from '@tensorpeft/core';
import { Heap } from './heap.js';
import { WasmKernelError } from './errors.js';
import { applyWasm } from './kernels/apply.js';
import { DEFAULT_MAX_CALL_BYTES, evaluateWasm, materializeThreaded, materializeWasm } from './kernels/materialize.js';
import { mergeWasm } from './kernels/merge.js';
import { ResidentBuffer } from './resident.js';
import { compileKernels, DEFAULT_MT_WASM_URL, describe, instantiateKernels, type WasmSource } from './loader.js';
import { availableThreads, DEFAULT_WORKER_URL, ThreadPool } from './threads.js';

export interface WasmBackendOptions {
  /** The kernels binary: bytes, URL, Response or compiled Module (default: the one shipped next to the loader). */
  source?: WasmSource;
  /**
   * Threads for `materialize` (opt-in, default 1): a number, or `'auto'` for up to 4 where shared
   * memory and module workers are available (in browsers only when cross-origin isolated).
   * Threads need the threaded build (`threadedSource`, default the shipped `kernels-mt.wasm`;
   * with a custom `source` and no `threadedSource`, 'auto' means 1). On the 2-vCPU machines the
   * README's numbers come from they pay for TensLoRA and LoRETTA, not for TRAC or VeRA (see
   * README), so they are off unless asked for.
   */
  threads?: number | 'auto';
  threadedSource?: WasmSource;
  /** Worker script (default: `kernels-worker.js` next to the loader). */
  workerUrl?: URL;
  /** Split `materialize` into several calls when one would need more wasm memory than this (default 64 MiB). */
  maxCallBytes?: number;
}

const SHARED_MAX_PAGES = 32768; // 2 GiB, the threaded build's maximum

export class WasmBackend implements Backend {
  readonly name = 'wasm';
  private heap: Heap | undefined;
  private pending: Promise<Heap> | undefined;
  private pool: ThreadPool | undefined;
  private poolStart: Promise<void> | undefined;
  /** Why threads are off (undefined when they are on or were not asked for). */
  threadsUnavailable: string | undefined;

  private constructor(
    private readonly module: WebAssembly.Module,
    private readonly file: string,
    private readonly maxCallBytes: number,
    heap: Heap,
    private readonly memory?: WebAssembly.Memory,
  ) {
    this.heap = heap;
  }

  /**
   * Compile and instantiate; rejects with a WasmLoadError when the binary is missing or broken.
   * Worker threads start in the background; until they are up (`threadsReady()`), calls run on
   * the calling thread, and if they cannot start they stay off (see `threadsUnavailable`).
   */
  static async create(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
    const maxCallBytes = opts.maxCallBytes ?? DEFAULT_MAX_CALL_BYTES;
    let want = opts.threads ?? 1;
    if (want === 'auto') want = opts.source !== undefined && opts.threadedSource === undefined ? 1 : await availableThreads();
    if (want > 1) {
      let mt: { module: WebAssembly.Module; memory: WebAssembly.Memory; heap: Heap } | undefined;
      let why = '';
      try {
        const module = await compileKernels(opts.threadedSource, DEFAULT_MT_WASM_URL);
        const memory = new WebAssembly.Memory({ initial: 64, maximum: SHARED_MAX_PAGES, shared: true } as WebAssembly.MemoryDescriptor);
        mt = { module, memory, heap: new Heap(await instantiateKernels(module, describe(opts.threadedSource, DEFAULT_MT_WASM_URL), memory)) };
      } catch (e) {
        why = (e as Error).message;
      }
      if (mt) {
        const b = new WasmBackend(mt.module, describe(opts.threadedSource, DEFAULT_MT_WASM_URL), maxCallBytes, mt.heap, mt.memory);
        b.startPool(want - 1, opts.workerUrl ?? DEFAULT_WORKER_URL);
        return b;
      }
      const b = await WasmBackend.create({ ...opts, threads: 1 });
      b.threadsUnavailable = `threaded kernels unavailable: ${why}`;
      return b;
    }
    const module = await compileKernels(opts.source);
    const file = describe(opts.source);
    return new WasmBackend(module, file, maxCallBytes, new Heap(await instantiateKernels(module, file)));
  }

  private startPool(workers: number, url: URL): void {
    const memory = this.memory!;
    this.poolStart = ThreadPool.create(this.module, memory, workers, url).then(
      (pool) => {
        this.pool = pool;
      },
      (e: unknown) => {
        this.threadsUnavailable = (e as Error).message;
      },
    );
  }

  /** Resolves when worker threads are up or known to be unavailable; returns the thread count. */
  async threadsReady(): Promise<number> {
    await this.poolStart;
    return this.threads;
  }

  /** Threads `materialize` uses now (1 = the calling thread only). */
  get threads(): number {
    return this.pool?.healthy ? this.pool.size + 1 : 1;
  }

  /** Bytes of wasm memory currently held. */
  get memoryBytes(): number {
    return this.heap ? this.heap.k.memory.buffer.byteLength : 0;
  }

  /**
   * Drop the instance, its memory and the worker threads (wasm memory never shrinks); the next
   * call instantiates the already compiled module again, single-threaded.
   */
  release(): void {
    if (this.heap) this.heap.released = true;
    this.pool?.terminate();
    this.pool = undefined;
    this.heap = undefined;
    this.pending = undefined;
  }

  private async ready(): Promise<Heap> {
    if (this.heap) return this.heap;
    const memory = this.memory ? new WebAssembly.Memory({ initial: 64, maximum: SHARED_MAX_PAGES, shared: true } as WebAssembly.MemoryDescriptor) : undefined;
    this.pending ??= instantiateKernels(this.module, this.file, memory).then((k) => (this.heap = new Heap(k)));
    return this.pending;
  }

  /**
   * A float32 buffer of `length` elements (zero-filled) that lives in wasm memory until `free()`:
   * what a caller that merges adapters into weights it keeps (a merge-mode plugin) should hold its
   * weights in, so that `merge(buf.view, …)` updates them in place without copying W in and out
   * (see src/resident.ts). Re-read `buf.view` after every backend call: memory growth detaches
   * old views. Synchronous once the backend is instantiated (always, after `create()`, until
   * `release()`).
   */
  allocResident(length: number): ResidentBuffer {
    if (!Number.isInteger(length) || length < 0) throw new WasmKernelError('resident buffer length', { expected: 'an integer ≥ 0', found: length });
    const heap = this.syncHeap();
    return new ResidentBuffer(heap, heap.allocResident(length * 4), length);
  }

  /**
   * Grow wasm memory now so that resident buffers of `bytes` more bytes plus per-call scratch fit
   * without growth later (growth detaches views; see `allocResident`).
   */
  reserve(bytes: number): void {
    const heap = this.syncHeap();
    heap.ensure(heap.base + bytes);
  }

  private syncHeap(): Heap {
    if (!this.heap) throw new WasmKernelError('wasm backend was released; resident buffers need a live instance (call an async method first)', {});
    return this.heap;
  }

  async evaluate(expr: MatExpr): Promise<Float32Array> {
    return evaluateWasm(await this.ready(), expr);
  }

  async materialize(jobs: readonly MaterializeJob[]): Promise<ModuleUpdate[]> {
    const heap = await this.ready();
    if (this.pool?.healthy) return materializeThreaded(heap, this.pool, jobs, this.maxCallBytes);
    return materializeWasm(heap, jobs, this.maxCallBytes);
  }

  async merge(W: Float32Array, layout: WeightLayout, u: ModuleUpdate): Promise<void> {
    mergeWasm(await this.ready(), W, layout, u);
  }

  async apply(X: Float32Array, Y: Float32Array, rows: number, u: ModuleUpdate): Promise<void> {
    applyWasm(await this.ready(), X, Y, rows, u);
  }
}

export function createWasmBackend(opts: WasmBackendOptions = {}): Promise<WasmBackend> {
  return WasmBackend.create(opts);
}
